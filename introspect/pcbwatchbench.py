"""What the kernel's PCB watch costs (kernel/net/lwip/pcbwatch.c: TCP state
transitions for the flight recorder and each PCB's owner for netstat -p),
for `unik bench` (flightbench.rows adds these rows).

The watch walks lwIP's PCB lists at every release of the core lock and
keeps its own counters, `struct net_pcbwatch_stats net_pcbwatch`:
releases, PCBs compared, TSC ticks spent in the walks.  Booted under
`-icount shift=0` the TSC counts guest instructions, so the counters give
the exact instructions per walk.  The http app serves a batch of
requests (a new connection each, as curl makes them) twice: with only
its listener, and with IDLE keep-alive connections held open (each walk
then compares them all).
"""
from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from . import build, instance, qemu
from .client import Channel, wait_ready
from .elfinfo import build_id
from .netopts import free_port

IDLE = 64                       # the wrk benchmark's connection count
REQUESTS = 40


def _counters(ch, db) -> dict:
    addr, _t = db.global_var("net_pcbwatch")
    releases, pcbs, tsc, transitions = struct.unpack("<4Q", ch.memread(addr, 32))
    return {"releases": releases, "pcbs": pcbs, "tsc": tsc, "transitions": transitions}


def _busy_insns(ch, db) -> int:
    """Guest instructions the non-idle threads have run (their CPU time,
    converted back to TSC ticks = instructions under -icount shift=0)."""
    addr, _t = db.global_var("time_mult")
    mult = struct.unpack("<Q", ch.memread(addr, 8))[0]
    _h, ts = ch.threads()
    ns = sum(t["cpu_ns"] for t in ts if t["tid"] != 0)
    return (ns << 32) // mult if mult else 0


def _get(port: int) -> None:
    """One GET / on a new connection, read to the server's close."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass


def _batch(ch, db, port: int, n: int) -> dict:
    """Counter deltas over n requests (after their connections closed)."""
    before, busy = _counters(ch, db), _busy_insns(ch, db)
    for _ in range(n):
        _get(port)
    time.sleep(0.5)                             # the last ACKs and frees
    after = _counters(ch, db)
    out = {k: after[k] - before[k] for k in after}
    out["busy"] = _busy_insns(ch, db) - busy
    return out


def measure(base: Path, n: int = REQUESTS) -> dict:
    """{'alone': deltas, 'idle': deltas} for n requests each."""
    from .dwarf import TypeDB
    elf = build.ensure_built("http", auto=True)
    db = TypeDB.from_elf(elf)
    port = free_port()
    opts = qemu.BootOptions(mem="8M", icount=True, net="user", ports=[[port, 80]],
                            append="http.idle_ms=600000")
    inst = instance.boot(app="http", kernel=elf, build_id=build_id(elf),
                         name="bench-pcbwatch", opts=opts, mux=True, base=base)
    held = []
    try:
        wait_ready(inst, 60)
        end = time.monotonic() + 60
        while True:
            try:
                _get(port)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
        with Channel.for_instance(inst, timeout=30) as ch:
            out = {"alone": _batch(ch, db, port, n)}
            held = [socket.create_connection(("127.0.0.1", port), timeout=30)
                    for _ in range(IDLE)]
            time.sleep(1.0)
            out["idle"] = _batch(ch, db, port, n)
        out["n"] = n
        return out
    finally:
        for s in held:
            s.close()
        instance.stop(inst)


def rows(base: Path, quick: bool = False) -> list[dict]:
    from .bench import _row
    m = measure(base, 10 if quick else REQUESTS)
    n, out = m["n"], []
    for key, what in (("alone", "its listener only"), ("idle", f"{IDLE} idle connections")):
        d = m[key]
        per_walk = d["tsc"] / d["releases"] if d["releases"] else 0.0
        pcbs = d["pcbs"] / d["releases"] if d["releases"] else 0.0
        share = d["tsc"] / d["busy"] if d["busy"] else 0.0
        out.append(_row(f"PCB watch: instructions per HTTP request, {what}",
                        round(d["tsc"] / n, 1), "instructions",
                        f"{100 * share:.2f} % of the {d['busy'] / n:.0f} instructions the "
                        "guest's threads ran per request (probe channel included); "
                        f"{d['releases'] / n:.1f} core-lock releases a request, each walking "
                        f"{pcbs:.1f} PCBs in {per_walk:.1f} instructions; "
                        f"{d['transitions'] / n:.1f} TCP_STATE events a request; "
                        "one GET per connection, -icount shift=0"))
    return out
