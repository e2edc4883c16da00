"""Sockets: lwIP's protocol control blocks (kernel/net/lwip), read from
its own globals through a Program, live or from a core:

  tcp_listen_pcbs.listen_pcbs   LISTEN (struct tcp_pcb_listen: backlog)
  tcp_bound_pcbs                bound, not yet listening or connected
  tcp_active_pcbs               SYN_SENT .. LAST_ACK
  tcp_tw_pcbs                   TIME_WAIT
  udp_pcbs                      UDP
  raw_pcbs                      raw IP (ping's ICMP socket)

Each is a singly linked list through `next`.  lwIP keeps an IPv4 address
as a u32 `addr` in network byte order (so its first byte in memory is the
first octet), ports in host order.  Its TCP timers count slow-timer
ticks of TCP_SLOW_INTERVAL ms: rto is in ticks, sa is the smoothed RTT in
ticks scaled by 8 (lwIP's tcp_in.c: rto = (sa >> 3) + sv).  The state
name is the enumerator of lwIP's enum tcp_state, from DWARF.

The owning thread (netstat -p's column) is the kernel's own bookkeeping
(kernel/net/lwip/pcbwatch.c): a TCP pcb's one ext arg holds
pcb << 32 | tid << 8 | state (the address proves the word was written for
this pcb, not copied or stale); raw and UDP pcbs are in the side table
net_pcb_owners {pcb, tid}.  Names come from the thread table.
"""
from __future__ import annotations

from ..errors import UnikError

TCP_SLOW_INTERVAL_MS = 500     # lwip/priv/tcp_priv.h: 2 * TCP_TMR_INTERVAL (250 ms)
MAX_PCBS = 4096                # a list longer than this is a corrupt chain
NO_STACK = "no network stack in this kernel (it has no lwIP: tcp_active_pcbs is missing)"

_TCP_LISTS = (("bound", "tcp_bound_pcbs"), ("active", "tcp_active_pcbs"),
              ("time-wait", "tcp_tw_pcbs"))


def has_stack(prog) -> bool:
    """Does the kernel prog is open on have lwIP's TCP globals?"""
    try:
        prog["tcp_active_pcbs"]
        return True
    except KeyError:
        return False


def sockets(prog) -> list[dict]:
    """Every TCP and UDP pcb, listeners first, as dicts: proto, list,
    state, local, remote ('a.b.c.d:port'), local_port, remote_port,
    address (the pcb's), and for TCP connections snd_queuelen, snd_wnd,
    rcv_wnd, rtt_ms, rto_ms, nrtx; for listeners backlog and
    accepts_pending.  [] for a kernel without lwIP (see has_stack)."""
    if not has_stack(prog):
        return []
    side = _side_owners(prog)
    out = [_listener(p) | _tcp_owner(p) for p in _chain(prog["tcp_listen_pcbs"].listen_pcbs)]
    for lst, name in _TCP_LISTS:
        out += [_tcp(p, lst) | _tcp_owner(p) for p in _chain(prog[name])]
    out += [_udp(p) | {"owner_tid": side.get(p.address_)} for p in _chain(prog["udp_pcbs"])]
    out += [_raw(p) | {"owner_tid": side.get(p.address_)} for p in _raw_pcbs(prog)]
    names = _thread_names(prog) if any(r["owner_tid"] for r in out) else {}
    for r in out:
        tid = r.pop("owner_tid")
        r["owner"] = {"tid": tid, "name": names.get(tid, "?")} if tid else None
    return out


def _tcp_owner(pcb) -> dict:
    """owner_tid of a TCP pcb from its ext arg (None: not seen yet, or a
    kernel without the PCB watch)."""
    try:
        w = int(pcb.ext_args[0].data)
    except (UnikError, KeyError, AttributeError, IndexError, TypeError):
        return {"owner_tid": None}
    if w >> 32 != pcb.address_:
        return {"owner_tid": None}
    return {"owner_tid": (w >> 8) & 0xFFFFFF or None}


def _side_owners(prog) -> dict[int, int]:
    """pcb address -> tid from net_pcb_owners (raw and UDP pcbs)."""
    try:
        return {int(o.pcb): int(o.tid) for o in prog["net_pcb_owners"] if int(o.pcb)}
    except (KeyError, UnikError):
        return {}


def _thread_names(prog) -> dict[int, str]:
    try:
        return {t.tid: t.name for t in prog.threads()}
    except (KeyError, UnikError):
        return {}


def _raw_pcbs(prog):
    try:
        head = prog["raw_pcbs"]
    except KeyError:
        return iter(())
    return _chain(head)


def owner_text(r: dict) -> str:
    """netstat -p's column: 'tid/name', '-' when unknown."""
    o = r.get("owner")
    return f"{o['tid']}/{o['name']}" if o else "-"


def _chain(head):
    """The objects of a `next`-linked list from pointer head; stops at NULL,
    a cycle, MAX_PCBS or memory that cannot be read."""
    seen, p = set(), head
    while len(seen) < MAX_PCBS:
        try:
            addr = int(p)
            if addr == 0 or addr in seen:
                return
            seen.add(addr)
            obj = p.deref()
            nxt = obj.next
            int(nxt)
        except UnikError:
            return
        yield obj
        p = nxt


def ip4(addr_u32: int) -> str:
    """lwIP's u32 addr (network byte order, read as a little-endian u32)
    as dotted quad."""
    return ".".join(str(b) for b in addr_u32.to_bytes(4, "little"))


def _ends(pcb, remote: bool) -> dict:
    lport = int(pcb.local_port)
    row = {"address": pcb.address_, "local_addr": ip4(int(pcb.local_ip.addr)),
           "local_port": lport}
    row["local"] = f"{row['local_addr']}:{lport}"
    if remote:
        rport = int(pcb.remote_port)
        row.update(remote_addr=ip4(int(pcb.remote_ip.addr)), remote_port=rport)
        row["remote"] = f"{row['remote_addr']}:{rport}"
    else:
        row.update(remote_addr="0.0.0.0", remote_port=0, remote="0.0.0.0:*")
    return row


def _state(pcb) -> str:
    st = pcb.state
    return st.enumerator_() or f"?{int(st)}"


def _listener(pcb) -> dict:
    row = {"proto": "tcp", "list": "listen", "state": _state(pcb), **_ends(pcb, False)}
    t = pcb.type_
    row["backlog"] = int(pcb.backlog) if t.member("backlog") else None
    row["accepts_pending"] = int(pcb.accepts_pending) if t.member("accepts_pending") else None
    # as ss: a listener's Recv-Q is its accept queue, its Send-Q the backlog
    row.update(recv_q=row["accepts_pending"] or 0, send_q=row["backlog"] or 0)
    return row


def _tcp(pcb, lst: str) -> dict:
    row = {"proto": "tcp", "list": lst, "state": _state(pcb), **_ends(pcb, True)}
    sa, rto = int(pcb.sa), int(pcb.rto)
    row.update(snd_queuelen=int(pcb.snd_queuelen), snd_wnd=int(pcb.snd_wnd),
               rcv_wnd=int(pcb.rcv_wnd), rtt_ms=max(sa >> 3, 0) * TCP_SLOW_INTERVAL_MS,
               rto_ms=rto * TCP_SLOW_INTERVAL_MS, nrtx=int(pcb.nrtx))
    if lst == "time-wait":
        row.update(recv_q=0, send_q=0)
    else:
        # Send-Q: bytes the application gave TCP that the peer has not acked
        # (snd_lbb: next byte to buffer); Recv-Q: bytes received in order
        # that the application has not read (lwIP reopens the window only
        # when it does: tcp_recved), so the window's shortfall.
        row["send_q"] = (int(pcb.snd_lbb) - int(pcb.lastack)) & 0xFFFFFFFF
        wnd = _tcp_wnd(pcb.prog_)
        row["recv_q"] = max(wnd - row["rcv_wnd"], 0) if wnd else 0
    row.update(rttvar_ms=max(int(pcb.sv) >> 2, 0) * TCP_SLOW_INTERVAL_MS,
               cwnd=int(pcb.cwnd), ssthresh=int(pcb.ssthresh), mss=int(pcb.mss))
    row.update(_tcp_bytes(pcb, row["state"]))
    return row


# States in which the peer's FIN was received / ours was acked: each took
# one sequence number that is not a byte.
_FIN_IN = {"CLOSE_WAIT", "LAST_ACK", "CLOSING", "TIME_WAIT"}
_FIN_ACKED = {"FIN_WAIT_2", "TIME_WAIT"}


def _tcp_bytes(pcb, state: str) -> dict:
    """ss -i's bytes_received and bytes_acked from the sequence numbers,
    against the first data byte's each way that the kernel's PCB watch
    kept in ext arg 1 at the passive open (kernel/net/lwip/pcbwatch.c);
    None for a connection it has no base for (an active open, a kernel
    without the watch).  Modulo 4 GiB: lwIP's sequence numbers are 32-bit."""
    try:
        w = int(pcb.ext_args[1].data)
    except (UnikError, KeyError, AttributeError, IndexError, TypeError):
        w = 0
    if not w:
        return {"bytes_received": None, "bytes_acked": None}
    if state == "SYN_RCVD":                 # nothing but the SYN yet
        return {"bytes_received": 0, "bytes_acked": 0}
    rcv0, snd0 = w >> 32, w & 0xFFFFFFFF
    got = (int(pcb.rcv_nxt) - rcv0 - (state in _FIN_IN)) & 0xFFFFFFFF
    acked = (int(pcb.lastack) - snd0 - (state in _FIN_ACKED)) & 0xFFFFFFFF
    return {"bytes_received": got, "bytes_acked": acked}


def _tcp_wnd(prog) -> int:
    """TCP_WND as the kernel was built with it (netif.c's net_tcp_wnd),
    0 when the kernel does not say."""
    try:
        return int(prog["net_tcp_wnd"])
    except (KeyError, UnikError):
        return 0


def _udp(pcb) -> dict:
    row = {"proto": "udp", "list": "udp", "state": "", **_ends(pcb, True)}
    if row["remote_port"] == 0:
        row["remote"] = "0.0.0.0:*"
    row.update(recv_q=_udp_queued(pcb), send_q=0)
    return row


def _raw(pcb) -> dict:
    """A raw pcb as netstat shows one: its IP protocol in the port column."""
    proto, local = int(pcb.protocol), ip4(int(pcb.local_ip.addr))
    return {"proto": "raw", "list": "raw", "state": "", "address": pcb.address_,
            "local_addr": local, "local_port": proto, "local": f"{local}:{proto}",
            "remote_addr": "0.0.0.0", "remote_port": 0, "remote": "0.0.0.0:*",
            "protocol": proto, "recv_q": 0, "send_q": 0}


def _udp_queued(pcb) -> int:
    """Bytes waiting in a UDP socket's receive mailbox (netbufs posted by
    lwIP's recv_udp; the socket layer's netconn is the pcb's recv_arg).
    0 when the pcb has no netconn or the mailbox cannot be read."""
    try:
        if int(pcb.recv_arg) == 0:
            return 0
        conn = pcb.prog_.object("struct netconn", int(pcb.recv_arg))
        mb = conn.recvmbox
        if not int(mb.valid):
            return 0
        b = mb.b
        cap, head, count = int(b.cap), int(b.head), int(b.count)
        total = 0
        for i in range(min(count, cap)):
            nb = b.slots[(head + i) % cap]
            if int(nb):
                buf = pcb.prog_.object("struct netbuf", int(nb))
                total += int(buf.p.tot_len) if int(buf.p) else 0
        return total
    except (UnikError, KeyError, AttributeError):
        return 0


def table(rows: list[dict]) -> list[str]:
    """The socket table as text lines (unik core, examples)."""
    out = [f"{'proto':<5} {'local':<21} {'remote':<21} {'state':<12} {'thread':<16} "
           f"{'sndq':>4} {'sndwnd':>6} {'rcvwnd':>6} {'rtt':>6} {'rto':>6} {'nrtx':>4}"]
    for r in rows:
        if r["list"] == "listen":
            extra = f"backlog {r['accepts_pending']}/{r['backlog']}" \
                if r.get("backlog") is not None else ""
        elif r["proto"] == "tcp":
            extra = (f"{r['snd_queuelen']:>4} {r['snd_wnd']:>6} {r['rcv_wnd']:>6} "
                     f"{r['rtt_ms']:>4}ms {r['rto_ms']:>4}ms {r['nrtx']:>4}")
        else:
            extra = ""
        out.append(f"{r['proto']:<5} {r['local']:<21} {r['remote']:<21} "
                   f"{r['state']:<12} {owner_text(r):<16} {extra}".rstrip())
    return out
