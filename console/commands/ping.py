"""`unik ping`: the guest pings HOST; the host prints what the guest saw.

    unik ping [NAME] HOST [-c COUNT] [-i INTERVAL] [-s SIZE] [-W TIMEOUT]

The kernel sends the ICMP echo requests with lwIP's raw API and times the
replies with its own clock (kernel/net/lwip/ping.c); each reply prints as
iputils' ping prints it, and the summary (transmitted, received, loss,
min/avg/max/mdev) comes from the kernel's totals.  Ctrl-C or -c ends it.
Exit 0 when a reply came, 1 when none did (as ping).  --json: one JSON
object per event (reply, timeout, send_error, done), then the totals.  With QEMU's user
networking the gateway 10.0.2.2 answers.
"""
from __future__ import annotations

import json

from ..registry import Command, UsageError

EXIT_NO_REPLY = 1


def args(p):
    p.add_argument("first", metavar="NAME|HOST",
                   help="the instance (optional: the only running one), then HOST")
    p.add_argument("host", nargs="?", metavar="HOST", help="the IPv4 address to ping")
    p.add_argument("-c", dest="count", type=int, default=None, metavar="COUNT",
                   help="stop after COUNT requests (default: until Ctrl-C)")
    p.add_argument("-i", dest="interval", type=float, default=1.0, metavar="INTERVAL",
                   help="seconds between requests (default 1, at least 0.01)")
    p.add_argument("-s", dest="size", type=int, default=56, metavar="SIZE",
                   help="data bytes per request (default 56, at most 1472)")
    p.add_argument("-W", dest="timeout", type=float, default=10.0, metavar="TIMEOUT",
                   help="seconds each request waits for its reply (default 10)")


def check(a) -> tuple[str | None, str]:
    """(instance, host) from the words; bad values raise UsageError."""
    from introspect import protocol as P
    name, host = (a.first, a.host) if a.host is not None else (None, a.first)
    if a.count is not None and a.count <= 0:
        raise UsageError(f"unik ping: -c {a.count}: the count must be at least 1",
                         "e.g. -c 3")
    if not a.interval * 1000 >= P.NET_PING_INTERVAL_MIN or a.interval > 3600:
        raise UsageError(f"unik ping: -i {a.interval:g}: the interval must be 0.01..3600 s",
                         "e.g. -i 0.2")
    if not 0 <= a.size <= P.NET_PING_SIZE_MAX:
        raise UsageError(f"unik ping: -s {a.size}: the size must be 0..{P.NET_PING_SIZE_MAX}",
                         "one Ethernet frame: 1500 bytes less the IP and ICMP headers")
    if not 0.001 <= a.timeout <= 3600:
        raise UsageError(f"unik ping: -W {a.timeout:g}: the timeout must be 0.001..3600 s",
                         "e.g. -W 1")
    return name, host


def run(ctx, a):
    from introspect.errors import ChannelError
    from introspect.ping import Ping, header, parse_host, summary
    from .trace import _Stopper
    name, host = check(a)
    if ctx.instance and name is None:
        name = ctx.instance
    a.name = name
    dst = parse_host(host)
    with ctx.channel(a) as ch:
        ping = Ping(ch)
        try:
            ping.start(dst, a.count or 0, round(a.interval * 1000), a.size,
                       max(round(a.timeout * 1000), 1))
        except ChannelError as e:
            raise UsageError(f"unik ping: {ch.name}: {e.message}",
                             "ping needs an app built with lwIP (e.g. --app http)"
                             if "network" in e.message else "see: unik ping --help") from None
        if not a.json:
            ctx.write(header(host, a.size))
        done = False
        with _Stopper(None) as stopper:
            while not stopper.done and not done:
                for ev in ping.events(0.2):
                    done |= _show(ctx, ev, a.json)
            totals, late = ping.stop()
        for ev in late:
            _show(ctx, ev, a.json)
    if a.json:
        ctx.write(json.dumps({"host": host, "summary": True, **totals}))
    else:
        ctx.write("\n".join(summary(host, totals)))
    return 0 if totals["received"] else EXIT_NO_REPLY


def _show(ctx, ev, as_json: bool = False) -> bool:
    """Print a reply (timeouts print nothing, as in ping; --json: every
    event as one JSON line); True at DONE."""
    from introspect import protocol as P
    if as_json:
        ctx.write(json.dumps({**ev, "kind": P.NetPingEvent(ev["kind"]).name.lower()}))
    elif ev["kind"] == P.NetPingEvent.REPLY:
        from introspect.ping import reply_line
        ctx.write(reply_line(ev))
    elif ev["kind"] == P.NetPingEvent.SEND_ERROR:
        ctx.write(f"icmp_seq={ev['seq']}: the guest could not send the request")
    return ev["kind"] == P.NetPingEvent.DONE


COMMAND = Command("ping", "ping HOST from inside the guest (ICMP echo, RTT by the guest)",
                  run, args, instance=None,
                  epilog="examples:\n  unik ping web 10.0.2.2 -c 3      the user-network gateway\n"
                         "  unik ping 10.0.2.2 -c 5 -i 0.2 -s 1000")
