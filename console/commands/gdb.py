"""`unik gdb [NAME] [ACTIONS...]`: drive gdb against an instance's gdbstub.

Actions run in the order given, in one gdb session; when they are done (or
on error or Ctrl-C) the session detaches and the guest runs on.  `-i` hands
the terminal to an interactive gdb instead; `unik gdb NAME detach` releases
an instance another unik gdb (or a dead one) holds.
"""
import argparse
import os

from ..registry import Command


class _Ordered(argparse.Action):
    """Appends (action, value) to args.actions, keeping command-line order."""

    def __call__(self, parser, ns, values, option_string=None):
        acts = list(getattr(ns, "actions", None) or [])
        acts.append((self.dest, values))
        ns.actions = acts


def args(p):
    p.add_argument("verb", nargs="?", choices=["detach"],
                   help="detach: release an instance a gdb holds and resume it")
    add = lambda *a, **k: p.add_argument(*a, action=_Ordered, **k)  # noqa: E731
    add("-b", "--break", dest="break", metavar="FUNC",
        help="hardware breakpoint at FUNC; continue until it is hit")
    add("-c", "--continue", dest="continue", nargs=0, help="continue to the next breakpoint hit")
    add("-s", "--step", dest="step", nargs=0, help="one source line, into calls")
    add("-n", "--next", dest="next", nargs=0, help="one source line, over calls")
    add("-r", "--regs", dest="regs", nargs=0, help="the general registers")
    add("--bt", dest="bt", nargs=0, help="the backtrace")
    add("-p", "--print", dest="print", metavar="EXPR", help="evaluate a C expression")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="exec an interactive gdb, symbols loaded and attached")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to wait for a breakpoint hit (default 10)")
    p.set_defaults(actions=[])


def run(ctx, args):
    from introspect import gdb as G
    if getattr(args, "name", None) == "detach" and not args.verb:
        args.name, args.verb = None, "detach"
    inst = ctx.find(args)
    if args.verb == "detach":
        did = G.release(inst)
        return ctx.json({"instance": inst.name, "done": did}) if args.json \
            else ctx.write(f"{inst.name}: {did}")
    if args.interactive:
        if ctx.interactive:
            from introspect.errors import UnikError
            raise UnikError("unik gdb -i cannot run inside unik shell (it replaces the process)",
                            f"run it from a terminal: unik gdb {inst.name} -i")
        return _interactive(ctx, inst, G)
    out = []
    with G.Session(inst, timeout=max(5.0, args.timeout)) as s:
        out.append(("attached", {"frame": s.where()}))
        _show(ctx, args, *out[-1])
        for act, val in args.actions:
            out.append((act, _do(s, act, val, args.timeout)))
            _show(ctx, args, *out[-1])
        if not args.actions:
            out.append(("bt", s.backtrace()))
            _show(ctx, args, *out[-1])
    if args.json:
        ctx.json({"instance": inst.name,
                  "results": [{"action": a, "result": r} for a, r in out],
                  "detached": True})
    else:
        ctx.write(f"detached; {inst.name} runs on")


def _do(s, act, val, timeout):
    """Run one action on the session; return its JSON-able result."""
    if act == "break":
        r = s.break_at(val, timeout)
        r["bt"] = s.backtrace()
        return r
    if act == "continue":
        return s.cont(timeout)
    if act in ("step", "next"):
        return s.step(act)
    if act == "regs":
        return s.registers()
    if act == "bt":
        return s.backtrace()
    if act == "print":
        return {"expr": val, "value": s.evaluate(val)}
    raise AssertionError(act)


def _show(ctx, args, act, r):
    """Print one result compactly (nothing with --json: printed at the end)."""
    from introspect.gdb import frame_text
    if args.json:
        return
    if act == "attached":
        ctx.write(f"stopped at {frame_text(r['frame'])}")
    elif act == "break":
        ctx.write(f"breakpoint {r['breakpoint']} hit: {frame_text(r['frame'])}")
        _show_bt(ctx, r["bt"])
    elif act in ("continue", "step", "next"):
        ctx.write(f"{act}: {r['reason']} at {frame_text(r['frame'])}")
    elif act == "regs":
        items = list(r.items())
        for i in range(0, len(items), 4):
            ctx.write("  ".join(f"{k:>7} {v:<14}" for k, v in items[i:i + 4]).rstrip())
    elif act == "bt":
        _show_bt(ctx, r)
    elif act == "print":
        ctx.write(f"{r['expr']} = {r['value']}")


def _show_bt(ctx, frames):
    from introspect.gdb import frame_text
    for f in frames:
        ctx.write(f"  #{f.get('level', '?'):<2} {frame_text(f)}")


def _interactive(ctx, inst, G):
    """Replace this process with an interactive gdb (its pid stays ours, so
    the marker names it while it lives)."""
    from introspect.errors import UnikError
    held = G.read_marker(inst.dir)
    if held:
        raise G.GdbError(f"instance {inst.name} is held by another gdb (pid {held['pid']})",
                         f"unik gdb {inst.name} detach releases it")
    if not (inst.dir / G.SOCK).exists():
        raise UnikError(f"instance {inst.name} has no gdbstub", "boot it again")
    G._write_marker(inst.dir, interactive=True)
    argv = G.interactive_argv(inst.kernel, inst.dir / G.SOCK)
    ctx.out.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        G._clear_marker(inst.dir)
        raise UnikError(f"cannot run gdb: {e.strerror}", "apt-get install gdb") from None


COMMAND = Command("gdb", "drive gdb against an instance: break, step, regs, bt, print",
                  run, args=args, instance="optional",
                  epilog="Actions run in order, then gdb detaches and the instance runs on,\n"
                         "e.g.: unik gdb demo-1 --break sched_tick --regs -p 'sched_cur->name'\n"
                         "While stopped, the probe channel cannot answer: unik ps says so.")
