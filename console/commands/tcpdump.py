"""`unik tcpdump`: capture packets inside an instance's kernel, like tcpdump.

    unik tcpdump [NAME] [-c COUNT] [-w FILE] [-s SNAPLEN] [-n] [-q] [-i IFACE] [EXPR]
    -d   print libpcap's program for EXPR and exit (like tcpdump -d)
    --time-stamp-precision nano   nanosecond pcap (with -w)

EXPR is libpcap filter syntax, compiled by libpcap itself
(introspect/pcapfilter.py); a bad expression prints libpcap's message on
one line and exits 2.  The kernel verifies the program and runs it on
every frame at the network interface (kernel/net/capture.c), so only
matching packets cross the probe channel.  Without -w, one line per
packet in tcpdump's style (introspect/pktfmt.py) on stdout; with -w, a
pcap file (introspect/pcapfile.py).  Ctrl-C or -c ends the capture with
tcpdump's summary on stderr: "N packets captured", "N packets received
by filter", "N packets dropped by kernel".  --json prints one JSON
object per packet (time, direction, lengths, the line, the bytes in hex).
"""
from __future__ import annotations

import json
import sys

from ..registry import Command, UsageError

EXIT_FILTER = 2
SNAPLEN_DEFAULT = 262144
IFACES = ("eth0", "any")


def args(p):
    p.add_argument("words", nargs="*", metavar="[NAME] EXPR",
                   help="instance name (optional), then the filter expression")
    p.add_argument("-c", dest="count", type=int, default=None, metavar="COUNT",
                   help="exit after COUNT packets")
    p.add_argument("-w", dest="write", default=None, metavar="FILE",
                   help="write a pcap file (- for stdout) instead of printing")
    p.add_argument("-s", dest="snaplen", type=int, default=SNAPLEN_DEFAULT, metavar="SNAPLEN",
                   help="bytes kept per packet (0: 262144, the default)")
    p.add_argument("-n", dest="numeric", action="store_true", help="do not name ports")
    p.add_argument("-q", dest="quick", action="store_true", help="quick (shorter) lines")
    p.add_argument("-i", dest="iface", default="eth0", metavar="IFACE",
                   help="interface: the instance has one (eth0; 'any' is the same)")
    p.add_argument("-d", dest="dump", action="store_true",
                   help="print the compiled program and exit")
    p.add_argument("--time-stamp-precision", dest="precision", default="micro",
                   choices=("micro", "nano"), help="pcap timestamps (-w)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds")


def split_words(words: list[str], instance: str | None, is_instance) -> tuple[str | None, str]:
    """(instance name, filter expression) from the positional words: the
    first word is the instance when one has that name (tcpdump has no
    positional other than the expression)."""
    if instance is None and words and is_instance(words[0]):
        return words[0], " ".join(words[1:])
    return instance, " ".join(words)


def _instance_exists(name: str) -> bool:
    from introspect.instance import list_instances
    try:
        return any(i.name == name for i in list_instances())
    except Exception:
        return False


def summary(captured: int, counters: dict) -> str:
    """tcpdump's closing lines, exactly (singular for 1)."""
    def n(v, what):
        return f"{v} packet{'' if v == 1 else 's'} {what}"
    return "\n".join([n(captured, "captured"), n(counters["matched"], "received by filter"),
                      n(counters["dropped"], "dropped by kernel")]) + "\n"


def packet_json(fmt, p) -> dict:
    """--json: one object per line per packet (the bytes in hex)."""
    return {"time_ns": p.wall_ns, "kernel_ns": p.ts_ns, "dir": "out" if p.dir else "in",
            "wirelen": p.wirelen, "caplen": len(p.data),
            "line": fmt.line(p.wall_ns, p.data, p.wirelen).split(" ", 1)[1],
            "data": p.data.hex()}


def run(ctx, a):
    from introspect import pcapfilter
    if a.iface not in IFACES:
        raise UsageError(f"unik tcpdump: {a.iface}: no such interface",
                         "the instance has one interface: eth0 (or 'any')")
    if a.snaplen < 0 or a.count is not None and a.count <= 0:
        raise UsageError("unik tcpdump: -s and -c take positive numbers", "e.g. -c 10 -s 96")
    snaplen = a.snaplen or SNAPLEN_DEFAULT
    name, expr = split_words(a.words, ctx.instance, _instance_exists)
    try:
        prog = pcapfilter.compile_filter(expr, snaplen)
    except pcapfilter.FilterError as e:
        ctx.err.write(f"unik tcpdump: {e}\n")
        ctx.err.flush()
        return EXIT_FILTER
    if a.dump:
        ctx.write(pcapfilter.describe(prog))
        return 0
    a.name = name
    return _capture(ctx, a, prog, snaplen)


def _capture(ctx, a, prog, snaplen) -> int:
    from introspect.capture import Capture, CaptureVerifyError
    from introspect.pcapfile import PcapWriter
    from introspect.pktfmt import Formatter
    from .trace import _Stopper
    out = None
    with ctx.channel(a) as ch, Capture(ch, prog, snaplen=snaplen) as cap:
        if a.write:
            f = sys.stdout.buffer if a.write == "-" else open(a.write, "wb")
            out = PcapWriter(f, snaplen, nano=a.precision == "nano")
        fmt = Formatter(numeric=a.numeric, quick=a.quick)
        try:
            cap.start()
        except CaptureVerifyError as e:
            ctx.err.write(f"unik tcpdump: {e}\n")
            return EXIT_FILTER
        # as tcpdump: prefixed with the program's name only with -w
        ctx.err.write(f"{'unik tcpdump: ' if a.write else ''}listening on {ch.name} {a.iface}, "
                      f"link-type EN10MB (Ethernet), snapshot length {snaplen} bytes\n")
        ctx.err.flush()
        captured = 0

        def emit(pkts) -> bool:
            nonlocal captured
            for p in pkts:
                if a.count is not None and captured >= a.count:
                    return True
                if out:
                    out.write(p.wall_ns, p.data, p.wirelen)
                elif a.json:
                    ctx.out.write(json.dumps(packet_json(fmt, p)) + "\n")
                else:
                    ctx.out.write(fmt.line(p.wall_ns, p.data, p.wirelen) + "\n")
                captured += 1
            ctx.out.flush()
            return a.count is not None and captured >= a.count

        try:
            with _Stopper(a.duration) as stopper:
                while not stopper.done:
                    if emit(cap.poll(stopper.timeout())):
                        break
                rest, counters = cap.stop()
                emit(rest)
        finally:
            if out and out.f is not sys.stdout.buffer:
                out.f.close()
    ctx.err.write(summary(captured, counters))
    ctx.err.flush()
    return 0


COMMAND = Command("tcpdump", "capture packets in the instance's kernel (libpcap filters)",
                  run, args, instance=None,
                  epilog="examples:\n  unik tcpdump web -n -c 10 tcp port 80\n"
                         "  unik tcpdump web -w http.pcap port 80   (then: tshark -r http.pcap)")
