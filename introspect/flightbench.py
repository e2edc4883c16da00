"""What the flight recorder costs (kernel/flight.c), for `unik bench`
(introspect/bench.py's run_all adds `rows`).

Each figure compares two boots under `-icount shift=0` (the guest TSC
advances once per instruction), one with the recorder on (the default)
and one with `unik.flight=0` on the kernel command line:

  per event    the probebench app's ping-pong (two threads yielding to each
               other with interrupts off, introspect/probebench.py): each
               iteration is two context switches and so two
               FLIGHT_SCHED_SWITCH events; half the difference of the
               iteration slopes is one flight_record call, site to return.
  throughput   the demo app's work rounds per guest second (probebench's
               work_rate), on / off.
"""
from __future__ import annotations

from pathlib import Path

from . import build, instance, qemu
from .client import Channel, wait_ready
from .elfinfo import build_id

OFF = "unik.flight=0"


def _boot(elf: Path, app: str, name: str, base: Path, append: str):
    opts = qemu.BootOptions(mem="32M", icount=True, append=append)
    inst = instance.boot(app=app, kernel=elf, build_id=build_id(elf), name=name,
                         opts=opts, mux=True, base=base)
    wait_ready(inst, 60)
    return inst


def pong_slopes(base: Path, rounds: int = 3) -> dict:
    """{'on': slope, 'off': slope}: instructions per ping-pong iteration
    (two switches), the least of `rounds` rounds, recorder on and off."""
    from . import probebench as pb
    elf = build.ensure_built("probebench", auto=True)
    out = {}
    for state, append in (("on", ""), ("off", OFF)):
        inst = _boot(elf, "probebench", f"bench-flight-{state}", base, append)
        try:
            with Channel.for_instance(inst, timeout=30) as ch:
                b = pb.Bench(ch, elf)
                slopes = []
                for _ in range(rounds):
                    r = b.round_after(b.result()["seq"], False, field="switch_enabled")
                    slopes.append(pb.pong_slope(r))
                out[state] = min(slopes)
        finally:
            instance.stop(inst)
    return out


def demo_rates(base: Path, guest_s: float) -> dict:
    """{'on': rounds/s, 'off': rounds/s} of the demo app (guest seconds)."""
    from . import probebench as pb
    from .dwarf import TypeDB
    elf = build.ensure_built("demo", auto=True)
    db = TypeDB.from_elf(elf)
    out = {}
    for state, append in (("on", ""), ("off", OFF)):
        inst = _boot(elf, "demo", f"bench-flight-demo-{state}", base, append)
        try:
            with Channel.for_instance(inst, timeout=30) as ch:
                pb.work_rate(ch, db, 1.0)           # warm-up: the first second after boot
                out[state], _ = pb.work_rate(ch, db, guest_s)
        finally:
            instance.stop(inst)
    return out


def rows(base: Path, quick: bool = False) -> list[dict]:
    """The two rows: instructions per event, demo throughput on / off."""
    from .bench import _row
    s = pong_slopes(base, rounds=2 if quick else 5)
    per_event = (s["on"] - s["off"]) / 2
    d = demo_rates(base, 2.0 if quick else 5.0)
    ratio = d["on"] / d["off"] if d["off"] else 0.0
    from . import pcbwatchbench         # the network's TCP_STATE watch (pcbwatch.c)
    return pcbwatchbench.rows(base, quick=quick) + [
        _row("flight recorder: one event", round(per_event, 1), "instructions",
             f"per flight_record (a scheduler switch), from probebench's ping-pong with "
             f"the recorder on vs `{OFF}` ({s['on']:g} vs {s['off']:g} instructions per "
             "two-switch iteration); -icount shift=0"),
        _row("demo throughput with the flight recorder on", round(ratio, 4), "x",
             f"demo's rounds per guest second {d['on']:.1f} on vs {d['off']:.1f} with "
             f"`{OFF}` (its workers hash, churn the heap and sleep 7 or 20 ms a round, "
             "so part of the difference is where the sleeps fall); -icount shift=0"),
    ]
