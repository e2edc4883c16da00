"""The flight recorder (kernel/flight.c: struct flight_ring flight), read
from memory through a Program, so `unik events` live, `unik events
--core` and `unik core` decode the ring with the same code.

The kinds come from the DWARF of enum flight_kind (kernel/include/flight.h
is their one declaration); DECODERS says how each one's a, b, c read and
tests/test_flight.py checks that every enumerator has a decoder.

    evs = events(prog)                  # oldest first, dicts (JSON-ready)
    print(render(evs[-20:]))
"""
from __future__ import annotations

import struct

from ..errors import UnikError

EVENT = struct.Struct("<QHHIQQQ")       # struct flight_event: tsc kind flags tid a b c
_PREFIX = "FLIGHT_"


def _text16(b: int, c: int) -> str:
    """The 16 bytes of a string an event carries in b and c."""
    return struct.pack("<QQ", b, c).split(b"\0", 1)[0].decode("utf-8", "replace")


def _chan_type(t: int) -> str:
    from .. import protocol as P
    for enum in (P.MsgType, getattr(P, "MuxType", None)):
        try:
            return enum(t).name if enum else f"{t:#06x}"
        except ValueError:
            continue
    return f"{t:#06x}"


def _reject(r: int) -> str:
    from .. import protocol as P
    try:
        return P.Reject(r).name
    except (ValueError, AttributeError):
        return str(r)


_TCP_STATES = ("CLOSED LISTEN SYN_SENT SYN_RCVD ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 "
               "CLOSE_WAIT CLOSING LAST_ACK TIME_WAIT").split()   # lwIP 2.1.3's, when no DWARF
_ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86dd: "IPv6", 0x8100: "802.1Q"}


def _tcp_state(s: int, names: dict[int, str] | None = None) -> str:
    if names and s in names:
        return names[s]
    return _TCP_STATES[s] if 0 <= s < len(_TCP_STATES) else str(s)


def tcp_states(prog) -> dict[int, str]:
    """value -> name of lwIP's enum tcp_state, from the kernel's DWARF
    ({} for a kernel without lwIP)."""
    try:
        t = prog.type("enum tcp_state")
    except (KeyError, ValueError, UnikError):
        return {}
    return {v: k for k, v in t.enumerators.items()}


def _frame(e: dict) -> str:
    """NET_RX/NET_TX text: length and ethertype."""
    et = _ETHERTYPES.get(e["b"], f"type {e['b']:#06x}")
    return f"{e['a']} bytes {et}"


# kind (enumerator without FLIGHT_) -> (subsystem, event, text(ev, who))
# where who(tid) is "tid N (name)"
DECODERS = {
    "NONE": ("-", "none", lambda e, who: ""),
    "SCHED_SWITCH": ("sched", "switch", lambda e, who:
                     f"-> {who(e['b'])}" + (f", prev {e['state']}" if e.get("state") else "")),
    "SCHED_WAKEUP": ("sched", "wakeup", lambda e, who: who(e["a"])),
    "SCHED_SLEEP": ("sched", "sleep", lambda e, who:
                    f"on {_text16(e['b'], e['c'])}"
                    + (f" for {e['a']} ms" if e["a"] else "")),
    "THREAD_CREATE": ("sched", "thread-create", lambda e, who:
                      f"tid {e['a']} ({_text16(e['b'], e['c'])})"),
    "THREAD_EXIT": ("sched", "thread-exit", lambda e, who: who(e["a"])),
    "PAGE_FAIL": ("mem", "page-fail", lambda e, who: f"{e['a']} pages"),
    "HEAP_FAIL": ("mem", "heap-fail", lambda e, who: f"{e['a']} bytes"),
    "HEAP_LARGE": ("mem", "heap-large", lambda e, who: f"{e['a']} bytes at {e['b']:#x}"),
    "CHAN_REQUEST": ("chan", "request", lambda e, who:
                     f"{_chan_type(e['a'])} id {e['b']} len {e['c']}"),
    "CHAN_REJECT": ("chan", "reject", lambda e, who:
                    f"{_reject(e['a'])} type {e['b']:#06x} len {e['c']}"),
    "CHAN_CONNECT": ("chan", "connect" , lambda e, who:
                     "host connected" if e["a"] else "host left"),
    "NET_RX": ("net", "rx", lambda e, who: _frame(e)),
    "NET_TX": ("net", "tx", lambda e, who: _frame(e)),
    "TCP_STATE": ("net", "tcp-state", lambda e, who:
                  f"pcb {e['a']:#x} {e['old']} -> {e['new']}"),
    "PANIC": ("kernel", "panic", lambda e, who:
              (f"vector {e['a']} " if e["a"] != (1 << 64) - 1 else "")
              + _text16(e["b"], e["c"])),
}


def kinds(prog) -> dict[int, str]:
    """value -> kind name (FLIGHT_ dropped), from the kernel's DWARF."""
    try:
        t = prog.type("enum flight_kind")
    except (KeyError, ValueError, UnikError) as e:
        raise UnikError(f"the kernel {prog.db.path} has no flight recorder ({e})",
                        "rebuild it: kernel/flight.c came with issue 8") from None
    return {v: k.removeprefix(_PREFIX) for k, v in t.enumerators.items()}


def _clock(prog):
    """tsc -> ns since boot, as time_ns computes it (arch/time.c)."""
    try:
        boot, mult = int(prog["time_boot_tsc"]), int(prog["time_mult"])
    except (KeyError, UnikError):
        return lambda tsc: 0
    return lambda tsc: ((tsc - boot) * mult >> 32) if tsc >= boot else 0


def read_ring(prog, since: int | None = None) -> tuple[int, int, bool, list[tuple]]:
    """(head, size, on, [(seq, raw event tuple)...]) of the ring: the
    events still kept (from `since` on when given), oldest first.  Events
    overwritten while a live ring was being read are left out."""
    try:
        ring = prog["flight"]
    except KeyError:
        raise UnikError(f"the kernel {prog.db.path} has no flight recorder (no symbol 'flight')",
                        "rebuild it: kernel/flight.c came with issue 8") from None
    head, size, on = int(ring.head), int(ring.size), bool(int(ring.on))
    if size == 0 or size & (size - 1):
        return head, size, on, []          # not initialised (before flight_init)
    first = max(head - size, since or 0)
    if first >= head:
        return head, size, on, []
    base = ring.ev.address_
    lo, hi = first % size, (head - 1) % size + 1
    if head - first == size or lo >= hi:   # wraps: two pieces
        raw = prog.read(base + lo * EVENT.size, (size - lo) * EVENT.size) + \
              prog.read(base, hi * EVENT.size)
    else:
        raw = prog.read(base + lo * EVENT.size, (hi - lo) * EVENT.size)
    after = int(ring.head) if prog.core is None else head
    out = []
    for i, seq in enumerate(range(first, head)):
        if seq < after - size:               # overwritten while we read
            continue
        out.append((seq, EVENT.unpack_from(raw, i * EVENT.size)))
    return head, size, on, out


def events(prog, since: int | None = None, limit: int | None = None) -> list[dict]:
    """The ring's events as dicts, oldest first (the last `limit` only):
    seq, time (s since boot), tid, thread, kind, subsystem, event, a, b,
    c, text."""
    names = kinds(prog)
    clock = _clock(prog)
    _head, _size, _on, raw = read_ring(prog, since)
    if limit is not None:
        raw = raw[-limit:] if limit > 0 else []
    tnames = _thread_names(prog, raw, names)
    states = _thread_states(prog)
    tstates = tcp_states(prog) if "TCP_STATE" in names.values() else {}
    who = lambda tid: f"tid {tid} ({tnames.get(tid, '?')})"   # noqa: E731
    out = []
    for seq, (tsc, kind, _flags, tid, a, b, c) in raw:
        kname = names.get(kind, f"KIND_{kind}")
        sub, ev, fmt = DECODERS.get(kname, ("?", kname.lower(), lambda e, w: ""))
        e = {"seq": seq, "time": clock(tsc) / 1e9, "tid": tid,
             "thread": tnames.get(tid, "?"), "kind": kname, "subsystem": sub, "event": ev,
             "a": a, "b": b, "c": c}
        if kname == "SCHED_SWITCH":
            e["state"] = states.get(c, "")
        elif kname == "TCP_STATE":
            e["old"], e["new"] = _tcp_state(b, tstates), _tcp_state(c, tstates)
        e["text"] = fmt(e, who)
        out.append(e)
    return out


def _thread_names(prog, raw, names) -> dict[int, str]:
    """tid -> name: the thread table, and THREAD_CREATE events for the
    threads whose slot was reused since."""
    out = {0: "idle"}
    create = next((v for v, k in names.items() if k == "THREAD_CREATE"), None)
    for _seq, (_tsc, kind, _f, _tid, a, b, c) in raw:
        if kind == create:
            out[a] = _text16(b, c)
    try:
        for t in prog.threads():
            out[t.tid] = t.name
    except (UnikError, KeyError):
        pass
    return out


def _thread_states(prog) -> dict[int, str]:
    try:
        t = prog.type("enum thread_state")
    except (KeyError, ValueError, UnikError):
        return {}
    return {v: k.removeprefix("THREAD_").lower() for k, v in t.enumerators.items()}


def status(prog) -> dict:
    """head, size and on of the ring (how many events, whether recording)."""
    head, size, on, _ = read_ring(prog, since=1 << 62)
    return {"recorded": head, "size": size, "on": on, "kept": min(head, size)}


def line(e: dict) -> str:
    """`  1.234567  tid 3 (chan)  sched switch -> tid 5 (worker-1)`"""
    what = f"{e['subsystem']} {e['event']}"
    return f"{e['time']:12.6f}  tid {e['tid']} ({e['thread']})  {what} {e['text']}".rstrip()


def render(evs: list[dict]) -> str:
    return "".join(line(e) + "\n" for e in evs)
