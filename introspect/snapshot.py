"""The probe channel's THREADS, MEMSTAT and LOG replies, built from a
Program (a core, or a live instance read with MEMREAD) instead of asked
of the kernel: the same dicts codec.decode_threads / decode_memstat /
decode_log give, so `unik ps|mem|log --core` print them with the live
commands' rendering.  The kernel's structures are read by the helpers
(introspect/helpers); this module only does what kernel/chan/server.c
and the functions it calls (thread_fill, mm_stats, log_read) do on top.

What a core cannot know exactly: the time of the dump (a core holds no
TSC).  It is estimated from the kernel's own counters: the newer of the
timer tick count (time_tick_count, one per sched_tick_cycles TSC cycles)
and the latest switch-in TSC of any thread, so `uptime_ns` is at most a
tick (1 ms) or so short.  The running thread's CPU time is counted up to
that estimate.  A kernel without those counters gives uptime_ns None
(shown as '-')."""
from __future__ import annotations

from . import protocol as P
from .errors import UnikError
from .helpers.heap import heap_stats
from .helpers.log import log_bytes
from .helpers.threads import threads as thread_list

THREAD_STACK_FILL = 0x57AC57AC57AC57AC   # kernel/sched/sched_int.h: unused stack words
PAGE_SIZE = 4096                         # kernel/include/mm.h


def _u64(prog, name: str) -> int | None:
    """A u64 kernel variable, or None when this kernel has none by that name."""
    try:
        return int(prog[name])
    except KeyError:
        return None


def clock(prog) -> dict | None:
    """{'now_tsc', 'uptime_ns', 'mult'}: the estimated TSC at the dump and
    the uptime it means (time.c's time_ns), or None without the counters."""
    boot, mult = _u64(prog, "time_boot_tsc"), _u64(prog, "time_mult")
    ticks, per = _u64(prog, "time_tick_count"), _u64(prog, "sched_tick_cycles")
    if None in (boot, mult, ticks, per) or not mult:
        return None
    now = boot + ticks * per
    for t in thread_list(prog):
        now = max(now, int(t.obj.run_tsc))
    return {"now_tsc": now, "mult": mult, "uptime_ns": _cycles_ns(now - boot, mult)}


def _cycles_ns(cycles: int, mult: int) -> int:
    """time.c's time_cycles_to_ns."""
    return (max(0, cycles) * mult) >> 32


def stack_used(prog, t) -> int:
    """sched.c's sched_stack_used: bytes of t's stack that lost the fill
    pattern (scanned up from the lowest byte); the recorded figure once
    the stack is gone."""
    if not t.stack:
        return int(t.obj.stack_hwm)
    try:
        data = prog.read(t.stack, t.stack_size)
    except UnikError:
        return int(t.obj.stack_hwm)
    fill = THREAD_STACK_FILL.to_bytes(8, "little")
    i = 0
    while i + 8 <= len(data) and data[i:i + 8] == fill:
        i += 8
    return t.stack_size - i


def _wire_state(t) -> int:
    try:
        return int(P.ThreadState[t.state_name.upper()])
    except KeyError:
        return int(P.ThreadState.DEAD)           # as chan_wire_state does


def threads(prog) -> tuple[dict, list[dict]]:
    """(head, records) as codec.decode_threads gives for a THREADS reply;
    head['uptime_ns'] is None when the core's time cannot be estimated."""
    clk = clock(prog)
    recs = []
    for t in thread_list(prog):
        o = t.obj
        cycles = int(o.cpu_cycles)
        if t.is_current and clk:
            cycles += max(0, clk["now_tsc"] - int(o.run_tsc))
        mult = clk["mult"] if clk else _u64(prog, "time_mult") or 0
        state = _wire_state(t)
        recs.append({"tid": t.tid, "state": state, "priority": int(o.prio),
                     "flags": int(o.flags), "name": t.name, "wchan": t.wchan,
                     "cpu_ns": _cycles_ns(cycles, mult), "switches": int(o.switches),
                     "stack_size": t.stack_size, "stack_hwm": stack_used(prog, t),
                     "start_ns": int(o.start_ns),
                     "state_name": P.ThreadState(state).name.lower()})
    head = {"count": len(recs), "total": len(recs),
            "uptime_ns": clk["uptime_ns"] if clk else None}
    return head, recs


def memstat(prog) -> tuple[dict, list[dict]]:
    """(head, classes) as codec.decode_memstat gives for a MEMSTAT reply."""
    h = heap_stats(prog)
    classes = [{k: c[k] for k in ("size", "in_use", "allocs", "frees", "failures")}
               for c in h["classes"]]
    ps = prog["page_st"]
    head = {"page_size": PAGE_SIZE, "nclasses": len(classes),
            "mem_total": int(prog["mm_total"]),
            "pages_total": int(ps.total), "pages_free": int(ps.free),
            "pages_kernel": int(ps.kernel), "page_failures": int(ps.failures),
            "heap_bytes_total": h["bytes_total"], "heap_bytes_used": h["bytes_used"],
            "heap_allocs": sum(c["allocs"] for c in classes),
            "heap_frees": sum(c["frees"] for c in classes),
            "heap_failures": sum(c["failures"] for c in classes)}
    return head, classes


def log(prog) -> tuple[dict, bytes]:
    """(head, data) as codec.decode_log gives for a LOG reply from offset 0:
    everything the ring still holds."""
    oldest, head, data = log_bytes(prog)
    return {"offset": oldest, "next": head, "oldest": oldest, "head": head,
            "len": len(data), "lost": oldest}, data
