"""What sampling costs: the `unik bench` row for the profile provider.

The busy app (kernel/apps/busy) keeps four threads spinning, so every
guest instruction is either the app's work or the kernel's (the channel
answering these reads, the scheduler, and, while a profile runs, the
sampling).  Booted with `-icount shift=0` a guest second is exactly 10^9
guest instructions, so the spinners' rounds (`busy_spinners[].rounds`)
per guest second with `profile-997 { @[stack()] = count(); }` against
without it give the share of guest instructions the sampling took:

    share = 1 - rate_with / rate_without
    instructions per sample = share * 10^9 / samples per guest second

(the timer interrupt, the stack walk, the aggregation update and return;
`unik profile`'s own script).  Pure math apart from measure().
"""
from __future__ import annotations

import time

from . import probetable
from .dwarf import TypeDB
from .trace import TraceSession

SCRIPT = "profile-997 { @[stack()] = count(); }"
GUEST_NS = 10**9                        # guest instructions per guest second (-icount shift=0)


def share(with_rate: float, without_rate: float) -> float:
    """The share of the work rate the sampling took (0 when nothing ran)."""
    return 1.0 - with_rate / without_rate if without_rate > 0 else 0.0


def per_sample(share_: float, samples_per_s: float) -> float:
    """Guest instructions per sample, from the share at shift=0."""
    return share_ * GUEST_NS / samples_per_s if samples_per_s > 0 else 0.0


def _rounds(ch, db) -> int:
    from .probebench import guest_u64s
    return sum(guest_u64s(ch, db, "busy_spinners", "busy_spinner", "rounds"))


def _rate(ch, db, guest_s: float) -> tuple[float, float]:
    """The spinners' rounds per guest second over guest_s guest seconds,
    and the window's guest seconds."""
    t0, r0 = ch.threads()[0]["uptime_ns"], _rounds(ch, db)
    end = time.monotonic() + 120
    while ch.threads()[0]["uptime_ns"] < t0 + guest_s * 1e9 and time.monotonic() < end:
        time.sleep(0.05)
    t1, r1 = ch.threads()[0]["uptime_ns"], _rounds(ch, db)
    span = (t1 - t0) / 1e9
    return ((r1 - r0) / span if span > 0 else 0.0), span


def measure(ch, elf, guest_s: float) -> dict:
    """The busy app's work rate without and with the profile script, the
    samples it took per guest second, the share and instructions per
    sample.  The instance must run the busy app under -icount shift=0."""
    from probes.compiler import compile_script
    from .probebench import agg_total
    db = TypeDB.from_elf(elf)
    _rate(ch, db, 0.5)                      # warm-up: the spinners started
    without, _ = _rate(ch, db, guest_s)
    prog = compile_script(SCRIPT, "-e", probetable.load(elf))
    with TraceSession(ch, prog) as s:
        u0 = ch.threads()[0]["uptime_ns"]
        s.start()
        with_, _ = _rate(ch, db, guest_s)
        s.stop()
        u1 = ch.threads()[0]["uptime_ns"]
        total = agg_total(s.aggregations())
    hz = total / ((u1 - u0) / 1e9) if u1 > u0 else 0.0     # samples per guest second
    sh = share(with_, without)
    return {"without": without, "with": with_, "share": sh, "samples": total,
            "hz": hz, "per_sample": per_sample(sh, hz)}


def rows(base, quick: bool = False) -> list[dict]:
    """The bench row: boot busy with icount, measure, stop."""
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
                 round(100 * m["share"], 2), "%",
                 f"`{SCRIPT}` on the busy app (4 spinning threads), -icount shift=0: "
                 f"{m['with']:.1f} vs {m['without']:.1f} spinner rounds per guest second; "
                 f"{m['samples']} samples, about {m['per_sample']:.0f} guest instructions "
                 "per sample (interrupt, stack walk, aggregation)")]
