"""unik events [NAME] [--core CORE] [-n N] [-f]: the flight recorder's
last events (kernel/flight.c), live or from a core, decoded by
introspect/helpers/flight.py from the ring in memory (MEMREAD live)."""
from __future__ import annotations

import time

from ..registry import Command, UsageError
from ._core import core_args, open_core

FOLLOW_POLL = 0.5               # seconds between reads of the ring with -f


def args(p):
    core_args(p)
    p.add_argument("-n", dest="count", type=int, default=40, metavar="N",
                   help="the last N events (default 40; 0: every event kept)")
    p.add_argument("-f", dest="follow", action="store_true",
                   help="then keep printing new events (live only; Ctrl-C ends); "
                        "the MEMREAD requests -f itself makes are not shown")


def run(ctx, args):
    from introspect.helpers import flight
    if args.count < 0:
        raise UsageError(f"bad -n {args.count}", "give a count >= 0 (0: every event kept)")
    prog = open_core(args)
    if prog is not None and args.follow:
        prog.close()
        raise UsageError("-f follows a live instance; a core does not change",
                         "drop -f, or give an instance NAME")
    if prog is None:
        from introspect.program import Program
        prog = Program.live(ctx.name(args))
    with prog:
        evs = flight.events(prog, limit=args.count or None)
        st = flight.status(prog)
        if args.json:
            ctx.json({"source": args.core or prog.name, **st, "events": evs})
        else:
            if not st["on"]:
                ctx.err.write("unik: the flight recorder is off (booted with unik.flight=0)\n")
            ctx.write(flight.render(evs) if evs else "(no events recorded)")
        if args.follow:
            _follow(ctx, args, prog, evs[-1]["seq"] + 1 if evs else st["recorded"])


def _follow(ctx, args, prog, since: int) -> None:
    """Print events from seq `since` on as they come, until Ctrl-C."""
    from introspect.helpers import flight
    try:
        while True:
            time.sleep(FOLLOW_POLL)
            evs = flight.events(prog, since=since)
            if not evs:
                continue
            since = evs[-1]["seq"] + 1
            evs = [e for e in evs if not _own(e)]
            if args.json:
                for e in evs:
                    ctx.json(e)
            elif evs:
                ctx.write(flight.render(evs))
    except KeyboardInterrupt:
        pass


def _own(e: dict) -> bool:
    """A MEMREAD request: -f's own reading of the ring."""
    return e["kind"] == "CHAN_REQUEST" and e["text"].startswith("MEMREAD ")


COMMAND = Command("events", "the flight recorder: the kernel's recent events (live or a core)",
                  run, args=args, instance="optional",
                  epilog="each line: seconds since boot, the thread running, the event.\n"
                         "kinds: sched switch/wakeup/sleep/thread-create/thread-exit, mem "
                         "page-fail/heap-fail/heap-large, chan request/reject/connect, "
                         "panic (net rx/tx/tcp-state once the network records them).\n"
                         "examples:\n  unik events demo -n 20\n  unik events --core crash.core\n"
                         "  unik events demo -f")
