"""What sampling costs: the `unik bench` row for the profile provider.

The busy app (kernel/apps/busy) keeps four threads spinning, so the CPU
is never idle.  Booted with `-icount shift=0` (the TSC advances once per
guest instruction), `unik profile`'s own script `profile-997 { @[stack()]
= count(); }` runs for a few guest seconds; the kernel counts, in
`profile_stats` (kernel/probe/profile.c), the sampling interrupts and the
TSC cycles spent inside their handler (time, the engine, the stack walk,
the aggregation update) and the TSC when the timer started and stopped.
Read with MEMREAD (layout from the ELF's DWARF):

    share = cycles in the handler / cycles the timer ran
    instructions per sample = cycles in the handler / samples

both exact under icount; the trap entry and exit around the handler (the
stubs saving and restoring registers, the EOI: a few dozen instructions
per sample) are not included.  The share is measured, not inferred from
the app's work rate, whose run-to-run noise (~0.3 %) is as large as the
share itself.  Pure math apart from measure() and rows().
"""
from __future__ import annotations

import time

from . import probetable
from .trace import TraceSession

SCRIPT = "profile-997 { @[stack()] = count(); }"
STATS_SYM = "profile_stats"


def figures(st: dict) -> dict:
    """share, instructions per sample and samples per second (of TSC
    time, guest seconds under icount at ~1 GHz) from a profile_stats."""
    ran = st["stop_tsc"] - st["start_tsc"] if st["stop_tsc"] > st["start_tsc"] else 0
    n = st["samples"]
    return {"share": st["cycles"] / ran if ran else 0.0,
            "per_sample": st["cycles"] / n if n else 0.0,
            "samples": n, "ran_cycles": ran}


def measure(ch, elf, guest_s: float) -> dict:
    """Run SCRIPT for guest_s guest seconds on the instance (busy app,
    -icount shift=0) and return figures() of what the kernel counted,
    with the samples the aggregation holds (they must agree)."""
    from probes.compiler import compile_script
    from .probebench import Bench, agg_total
    b = Bench(ch, elf)
    before = b.read(STATS_SYM, STATS_SYM)
    prog = compile_script(SCRIPT, "-e", probetable.load(elf))
    with TraceSession(ch, prog) as s:
        u0 = ch.threads()[0]["uptime_ns"]
        s.start()
        end = time.monotonic() + 120
        while ch.threads()[0]["uptime_ns"] < u0 + guest_s * 1e9 and time.monotonic() < end:
            time.sleep(0.05)
        s.stop()
        counted = agg_total(s.aggregations())
    after = b.read(STATS_SYM, STATS_SYM)
    delta = {"samples": after["samples"] - before["samples"],
             "cycles": after["cycles"] - before["cycles"],
             "start_tsc": after["start_tsc"], "stop_tsc": after["stop_tsc"]}
    out = figures(delta)
    out["counted"] = counted
    return out


def rows(base, quick: bool = False) -> list[dict]:
    """The bench row: boot busy under icount, measure, stop it."""
    from . import build, instance
    from .bench import _boot, _row
    from .client import Channel, wait_ready
    elf = build.ensure_built("busy", auto=True)
    inst = _boot(elf, "bench-profile", base, icount=True, mux=True, app="busy")
    try:
        wait_ready(inst, 60)
        with Channel.for_instance(inst, timeout=30) as ch:
            m = measure(ch, elf, 1.0 if quick else 3.0)
    finally:
        instance.stop(inst)
    return [_row("profile at 997 Hz: guest instructions spent sampling",
                 round(100 * m["share"], 3), "%",
                 f"`{SCRIPT}` on the busy app (4 spinning threads), -icount shift=0: "
                 f"{m['samples']} samples ({m['counted']} in the aggregation) over "
                 f"{m['ran_cycles'] / 1e9:.2f} G instructions, {m['per_sample']:.0f} "
                 "instructions per sample in the handler (engine, stack walk, "
                 "aggregation; the trap entry and exit not counted)")]
