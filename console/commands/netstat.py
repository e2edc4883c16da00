"""`unik netstat`: the instance's sockets, interfaces, statistics and routes,
read from lwIP's own tables (introspect/helpers/sockets.py, netstat.py).

    unik netstat [NAME] [-t] [-u] [-w] [-l] [-a] [-p] [-i] [-s] [-r] [--core CORE] [--json]

Without -i/-s/-r, the socket table as `netstat -tunw` prints it (-l: the
listening sockets only, -a: all), with ss -ti's TCP details on each line
(rtt, rto, retransmissions, windows, cwnd, mss, bytes acked and
received); -p adds the owning
thread as `tid/name` (netstat -p's PID/Program name; --json always has
it as owner: {tid, name}).  A listener's Recv-Q
and Send-Q are its accept queue and backlog, as in ss.  -i: interface
counters; -s: lwIP's per-protocol statistics; -r: routes and the ARP cache.
Live, the tables are read with MEMREAD while the stack runs (a chain that
changes under the read is cut short, never followed into garbage);
--core reads the same tables from a core with the same code.
"""
from __future__ import annotations

from ..registry import Command, UsageError
from ._core import core_args, open_core

EXIT_NO_STACK = 1


def args(p):
    p.add_argument("-t", "--tcp", action="store_true", help="TCP sockets")
    p.add_argument("-u", "--udp", action="store_true", help="UDP sockets")
    p.add_argument("-w", "--raw", action="store_true", help="raw sockets (ping's ICMP socket)")
    p.add_argument("-p", "--program", action="store_true",
                   help="the owning thread of each socket (tid/name)")
    p.add_argument("-l", "--listening", action="store_true", help="listening sockets only")
    p.add_argument("-a", "--all", action="store_true", help="listening and connected sockets")
    p.add_argument("-i", "--interfaces", action="store_true", help="interface counters")
    p.add_argument("-s", "--statistics", action="store_true",
                   help="per-protocol statistics (lwIP's counters)")
    p.add_argument("-r", "--route", action="store_true", help="routes and the ARP cache")
    core_args(p)


def _listening(r: dict) -> bool:
    return r["state"] == "LISTEN" or (r["proto"] in ("udp", "raw") and r["remote_port"] == 0)


def select(rows: list[dict], a) -> list[dict]:
    """The sockets netstat's -t -u -w -l -a keep."""
    protos = {p for p, on in (("tcp", a.tcp), ("udp", a.udp), ("raw", getattr(a, "raw", False)))
              if on} or {"tcp", "udp", "raw"}
    rows = [r for r in rows if r["proto"] in protos]
    if a.all:
        return rows
    return [r for r in rows if _listening(r) == a.listening]


def render_sockets(rows: list[dict], a) -> list[str]:
    """netstat -tun's columns (with -p the owning thread after State, where
    netstat -p has PID/Program name), then ss -ti's details for TCP
    connections."""
    from introspect.helpers.sockets import owner_text
    what = ("servers and established" if a.all else
            "only servers" if a.listening else "w/o servers")
    prog_col = getattr(a, "program", False)
    head = (f"{'Proto':<5} {'Recv-Q':>6} {'Send-Q':>6} {'Local Address':<21} "
            f"{'Foreign Address':<21} {'State':<11} ")
    if prog_col:
        head += f"{'Thread':<16} "
    out = [f"Active Internet connections ({what})",
           head + f"{'rtt':>10} {'rto':>6} {'retr':>4} "
           f"{'snd_wnd':>7} {'rcv_wnd':>7} {'cwnd':>6} {'mss':>5} "
           f"{'bytes_acked':>11} {'bytes_rcvd':>10}"]
    for r in rows:
        line = (f"{r['proto']:<5} {r.get('recv_q', 0):>6} {r.get('send_q', 0):>6} "
                f"{r['local']:<21} {r['remote']:<21} {r['state']:<11}")
        if prog_col:
            line += f" {owner_text(r):<16}"
        if r["proto"] == "tcp" and "rto_ms" in r:
            rtt = f"{r['rtt_ms']}/{r.get('rttvar_ms', 0)}ms"
            line += (f" {rtt:>10} {str(r['rto_ms']) + 'ms':>6} {r['nrtx']:>4} "
                     f"{r['snd_wnd']:>7} {r['rcv_wnd']:>7} {r.get('cwnd', 0):>6} "
                     f"{r.get('mss', 0):>5} {_count(r.get('bytes_acked')):>11} "
                     f"{_count(r.get('bytes_received')):>10}")
        out.append(line.rstrip())
    return out


def _count(v) -> str:
    """A byte count, or - where the kernel has no base for it."""
    return "-" if v is None else str(v)


def _live(name):
    """A Program over the running instance whose reads go through a page
    cache for this one command: each 4 KiB page of guest memory is read
    once (one MEMREAD instead of one per field), which makes a table of a
    hundred connections fast and each page internally consistent."""
    from introspect import protocol as P
    from introspect.client import Channel
    from introspect.dwarf import TypeDB
    from introspect.errors import UnikError
    from introspect.instance import find
    from introspect.program import Program
    inst = find(name)
    ch = Channel.for_instance(inst)
    pages: dict[int, bytes] = {}
    size = P.MEMREAD_MAX

    def read(addr: int, n: int) -> bytes:
        out = bytearray()
        try:
            for base in range(addr - addr % size, addr + n, size):
                if base not in pages:
                    pages[base] = ch.memread(base, size)
                out += pages[base]
        except UnikError:
            return ch.memread(addr, n)        # a page partly outside RAM: read just the bytes
        off = addr % size
        return bytes(out[off:off + n])

    return Program(TypeDB.from_elf(inst.kernel), read, name=inst.name, close=ch.close)


def run(ctx, a):
    from introspect.helpers import netstat as N
    from introspect.helpers import sockets as S
    if a.listening and a.all:
        raise UsageError("unik netstat: -l and -a exclude each other",
                         "-l: listening sockets only; -a: every socket")
    prog = open_core(a)
    who = {"core": a.core} if prog is not None else None
    if prog is None:
        prog = _live(ctx.name(a))
        who = {"instance": prog.name}
    with prog:
        if not S.has_stack(prog):
            ctx.err.write(f"unik netstat: {S.NO_STACK}\n"
                          "hint: netstat needs an app built with lwIP (e.g. --app http)\n")
            ctx.err.flush()
            return EXIT_NO_STACK
        tables = a.interfaces or a.statistics or a.route
        data = dict(who)
        if not tables:
            data["sockets"] = select(S.sockets(prog), a)
        if a.interfaces:
            data["interfaces"] = N.interfaces(prog)
        if a.statistics:
            data["statistics"] = N.stats(prog)
        if a.route:
            data["routes"], data["arp"] = N.routes(prog), N.arp(prog)
    if a.json:
        ctx.json(data)
        return 0
    blocks = []
    if "sockets" in data:
        blocks.append(render_sockets(data["sockets"], a))
    if a.interfaces:
        blocks.append(N.render_interfaces(data["interfaces"]))
    if a.statistics:
        blocks.append(N.render_stats(data["statistics"]))
    if a.route:
        blocks.append(N.render_routes(data["routes"], data["arp"]))
    ctx.write("\n\n".join("\n".join(b) for b in blocks))
    return 0


COMMAND = Command("netstat", "sockets, interfaces, statistics and routes (lwIP's tables)",
                  run, args, instance="optional",
                  epilog="examples:\n  unik netstat web -a        every TCP/UDP socket\n"
                         "  unik netstat web -i        interface counters and drops\n"
                         "  unik netstat web -s        per-protocol statistics\n"
                         "  unik netstat web -r        routes and the ARP cache\n"
                         "  unik netstat --core web.core -a   the same from a core")
