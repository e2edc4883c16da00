"""The benchmarks behind `unik bench`: each returns rows of
{"name", "value", "unit", "detail"}; console/commands/bench.py draws them.

Under TCG absolute times are not the machine's speed, so guest-side costs are
measured in guest instructions with `-icount shift=0` (the TSC then advances
by exactly one per instruction); host-side times are medians and p99s.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import build, instance, qemu
from .client import Channel, wait_ready
from .elfinfo import build_id


def _row(name, value, unit, detail="", target=None):
    return {"name": name, "value": value, "unit": unit, "detail": detail, "target": target}


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def image_rows(elf: Path) -> list[dict]:
    """Kernel image size, whole file (symbols and DWARF kept for the host)."""
    from elftools.elf.elffile import ELFFile
    size = elf.stat().st_size
    alloc = debug = 0
    with open(elf, "rb") as f:
        for s in ELFFile(f).iter_sections():
            if s["sh_flags"] & 2:          # SHF_ALLOC: loaded into guest memory
                alloc += s["sh_size"]
            elif s.name.startswith(".debug"):
                debug += s["sh_size"]
    return [_row("kernel image size", round(size / 1024, 1), "KiB",
                 f"loaded {alloc // 1024} KiB, DWARF {debug // 1024} KiB",
                 target="<= 1024 KiB")]


def _boot(elf, name, base, icount=False, mux=False, app="demo"):
    opts = qemu.BootOptions(mem="32M", icount=icount)
    return instance.boot(app=app, kernel=elf, build_id=build_id(elf), name=name,
                         opts=opts, mux=mux, base=base)


def _direct_hello(inst, timeout=60.0):
    """HELLO straight over QEMU's chardev, retrying until the kernel answers."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with Channel(inst.probe_sock, timeout=0.5, direct=True, name=inst.name) as ch:
                return ch.hello()
        except Exception:
            if not inst.running:
                raise
            time.sleep(0.005)
    raise TimeoutError(f"{inst.name}: no HELLO within {timeout}s")


def boot_rows(elf: Path, base: Path, runs: int = 10) -> list[dict]:
    """QEMU start to channel handshake (host, median of runs) and kernel
    entry to channel ready (guest instructions, icount)."""
    times = []
    for i in range(runs):
        t0 = time.monotonic()
        inst = _boot(elf, f"bench-boot-{i}", base)
        try:
            _direct_hello(inst)
            times.append((time.monotonic() - t0) * 1000)
        finally:
            instance.stop(inst)
    inst = _boot(elf, "bench-icount", base, icount=True)
    try:
        h = _direct_hello(inst)
        instr = h["tsc_ready"] - h["tsc_entry"]
    finally:
        instance.stop(inst)
    return [_row("boot: QEMU start to channel handshake", round(statistics.median(times), 1),
                 "ms", f"median of {runs}, TCG, -M microvm, 32M; p90 "
                 f"{_pct(times, 90):.1f} ms"),
            _row("boot: kernel entry to channel ready", instr, "instructions",
                 "guest instructions, -icount shift=0")]


def _round_trips(fn, n: int, gap: float = 0.0) -> list[float]:
    """Milliseconds taken by each of n calls of fn (one request each),
    sleeping `gap` seconds before each call."""
    lat = []
    for _ in range(n):
        time.sleep(gap)
        t0 = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def channel_rows(inst, n: int = 1000) -> list[dict]:
    """Round trips of THREADS (ps) and MEMSTAT through the mux."""
    rows = []
    with Channel.for_instance(inst, timeout=10) as ch:
        for label, fn in (("ps round trip (THREADS)", ch.threads),
                          ("mem round trip (MEMSTAT)", ch.memstat)):
            lat = _round_trips(fn, n)
            rows.append(_row(label, round(statistics.median(lat), 3), "ms",
                             f"p99 {_pct(lat, 99):.3f} ms over {n}, through the mux"))
        head, threads = ch.threads()
        ms = ch.memstat()[0]
    used = (ms["pages_total"] - ms["pages_free"]) * ms["page_size"]
    rows.append(_row("guest memory", int(qemu.parse_mem("32M")[:-1]), "MiB",
                     f"--mem 32M; {used // 1024} KiB of pages in use, heap "
                     f"{ms['heap_bytes_used']} B in use, {head['total']} threads"))
    return rows


def load_rows(base: Path, n: int = 200) -> list[dict]:
    """THREADS round trips through the mux while the busy app keeps four
    application threads spinning: the probe channel's wakeup preemption
    (kernel/sched/sched.c) at work.  Requests come every 10 ms, as an
    operator's or unik top's would: the channel thread is blocked when each
    arrives and the device's interrupt wakes it.  Back-to-back requests are
    measured too (each one wakes it again; once its wakeup-preemption
    budget is spent it waits for its turn in the rotation)."""
    elf = build.ensure_built("busy", auto=True)
    inst = _boot(elf, "bench-load", base, mux=True, app="busy")
    try:
        wait_ready(inst, 60)
        time.sleep(1.0)                     # let the spinners take the CPU
        with Channel.for_instance(inst, timeout=10) as ch:
            paced = _round_trips(ch.threads, n, gap=0.010)
            burst = _round_trips(ch.threads, n)
    finally:
        instance.stop(inst)
    return [_row("ps round trip under load (busy app, 4 spinning threads)",
                 round(statistics.median(paced), 3), "ms",
                 f"one every 10 ms: p99 {_pct(paced, 99):.3f} ms over {n}; back to back: "
                 f"median {statistics.median(burst):.3f} ms, p99 {_pct(burst, 99):.3f} ms; "
                 "through the mux")]


def idle_rows(inst, seconds: float = 10.0) -> list[dict]:
    """What the probe channel costs while nobody debugs: probe-chan's
    wake-ups per second and CPU share over `seconds` of an idle instance."""
    def sample(ch):
        head, threads = ch.threads()
        t = next(t for t in threads if t["name"] == "probe-chan")
        return head["uptime_ns"], t["switches"], t["cpu_ns"]
    with Channel.for_instance(inst, timeout=10) as ch:
        up0, sw0, cpu0 = sample(ch)
    time.sleep(seconds)
    with Channel.for_instance(inst, timeout=10) as ch:
        up1, sw1, cpu1 = sample(ch)
    span = (up1 - up0) / 1e9
    return [_row("idle probe channel", round((sw1 - sw0) / span, 1), "wake-ups/s",
                 f"probe-chan over {span:.0f} s idle (includes the 2 requests); "
                 f"{100 * (cpu1 - cpu0) / (up1 - up0):.3f} % CPU")]


def cli_rows(name: str, base: Path, runs: int = 10) -> list[dict]:
    """`unik ps` as a whole command: process start to exit."""
    import os
    env = dict(os.environ, UNIK_STATE_DIR=str(base))
    exe = Path(sys.executable).parent / "unik"
    cmd = [str(exe), "ps", name] if exe.exists() else [sys.executable, "-m", "console.cli", "ps", name]
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        subprocess.run(cmd, capture_output=True, check=True, timeout=60, env=env)
        times.append((time.monotonic() - t0) * 1000)
    imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import console.cli"],
                         capture_output=True, text=True)
    total_us = sum(int(l[len("import time:"):].split("|")[0]) for l in imp.stderr.splitlines()
                   if l.startswith("import time:") and l.split("|")[1].strip().isdigit())
    return [_row("`unik ps` whole command", round(statistics.median(times), 1), "ms",
                 f"median of {runs}, process start to exit; importing console.cli "
                 f"{total_us / 1000:.1f} ms")]


def _site_bytes(ch, elf) -> str:
    """bench:::fire's site in the ELF and in the running kernel: both must
    be the 5-byte nop (returned as hex), else UnikError."""
    from probes import isa
    from . import probetable, textcheck
    from .errors import UnikError
    img = textcheck.text_image(elf)
    probes = probetable.load(elf)
    fire = next(p.id for p in probes if (p.provider, p.name) == ("bench", "fire"))
    for addr, _target, index in probetable.sites(elf):
        if index + isa.FIRST_STATIC_PROBE == fire:
            built = img.data[addr - img.addr:addr - img.addr + 5]
            live = ch.memread(addr, 5)
            if built != isa.NOP5 or live != isa.NOP5:
                raise UnikError(f"bench:::fire's site at {addr:#x} is {built.hex()} in the "
                                f"ELF and {live.hex()} live, not the 5-byte nop",
                                "the probe site macro (probe_site.h) changed")
            return built.hex(" ")
    raise UnikError("bench:::fire has no site", "rebuild the probebench app")


def _fbt_rows(ch, elf, b) -> list[dict]:
    """fbt on probebench's pb_fbt (introspect/probebench.py): the disabled
    site (its bytes checked in the ELF and live), count() at its entry, and
    an entry+return pair timing the call."""
    from probes import isa
    from . import fbt, textcheck
    from .errors import UnikError
    addr = next((a for _, a, n in fbt.functions(elf) if n == "pb_fbt"), None)
    if addr is None:
        raise UnikError("pb_fbt has no fbt site", "rebuild the probebench app")
    img = textcheck.text_image(elf)
    built, live = img.data[addr - img.addr:addr - img.addr + 5], ch.memread(addr, 5)
    if built != isa.NOP5 or live != isa.NOP5:
        raise UnikError(f"pb_fbt's fbt site is {built.hex()} in the ELF and {live.hex()} "
                        "live, not the 5-byte nop", "kernel/Makefile's FBT_CFLAGS changed")
    off, _ = b.measure_fbt(None)
    rows = [_row("disabled fbt site", off.probe, "instructions",
                 f"per call, over the same function without it ({off.empty:g} per "
                 f"iteration: -pg gives an empty leaf a 3-instruction frame); the site is "
                 f"`{built.hex(' ')}` in the ELF and live", target="the one 5-byte nop")]
    for kind, label, target in (
            ("fbt_count", "enabled `fbt::pb_fbt:entry { @ = count(); }`", "<= 150"),
            ("fbt_pair", "enabled fbt entry+return `@ = quantize(timestamp - self->ts)`",
             None)):
        on, st = b.measure_fbt(kind)
        rows.append(_row(label, on.probe, "instructions",
                         f"per call of pb_fbt, trampolines and clauses included "
                         f"({st['fired']} firings, no drops)", target=target))
    return rows


def probe_rows(base: Path, quick: bool = False) -> list[dict]:
    """What probes cost (introspect/probebench.py): the probebench app
    under -icount shift=0 (guest instructions per call, slopes between two
    loop lengths), its printf flood (records/s of host wall time), and the
    demo app's work rate with and without sched:::switch counting."""
    from . import probebench as pb
    rows = []
    elf = build.ensure_built("probebench", auto=True)
    inst = _boot(elf, "bench-probe", base, icount=True, mux=True, app="probebench")
    try:
        wait_ready(inst, 60)
        with Channel.for_instance(inst, timeout=30) as ch:
            b = pb.Bench(ch, elf)
            nop = _site_bytes(ch, elf)
            off, _ = b.measure(None)
            rows.append(_row("disabled static probe site", off.probe, "instructions",
                             f"per call, over a loop calling an empty function ({off.empty:g} "
                             f"per iteration); the site is `{nop}` in the ELF and live",
                             target="the one 5-byte nop"))
            for kind, label, target in (
                    ("count", "enabled `@ = count()`", "<= 150"),
                    ("thread", "enabled `@[thread] = count()`", "<= 150"),
                    ("printf", 'enabled `printf("%d %d %d\\n", arg0, arg1, arg2)`', None)):
                on, st = b.measure(kind)
                rows.append(_row(label, on.probe, "instructions",
                                 f"per firing on bench:::fire, site to clause and back "
                                 f"({st['fired']} firings, no drops)", target=target))
            rows += _fbt_rows(ch, elf, b)
            sw, st = b.measure_switch()
            rows.append(_row("enabled `sched:::switch { @[thread] = count(); }`", sw,
                             "instructions", "per firing, on a ping-pong of two threads "
                             "yielding with interrupts off (the key changes at every "
                             f"firing; {st['fired']} firings)", target="<= 150"))
            fl = b.flood(1.0 if quick else 3.0)
            rows.append(_row("printf records streamed", round(fl["rate"]), "records/s",
                             f"host wall time, -icount shift=0; {fl['delivered']} delivered, "
                             f"{fl['drops']} dropped of {fl['fired']} fired "
                             f"({'all' if fl['accounted'] else 'NOT all'} accounted for); "
                             f"{fl['instr_per_record']:.0f} guest instructions per record "
                             f"(firing, draining, sending)", target=">= 500,000 records/s"))
    finally:
        instance.stop(inst)
    elf = build.ensure_built("demo", auto=True)
    inst = _boot(elf, "bench-demo", base, icount=True, mux=True, app="demo")
    try:
        wait_ready(inst, 60)
        with Channel.for_instance(inst, timeout=30) as ch:
            d = pb.demo_ratio(ch, elf, 2.0 if quick else 5.0)
        rows.append(_row("demo throughput with `sched:::switch { @[thread] = count(); }`",
                         round(d["ratio"], 4), "x",
                         f"demo's rounds per guest second {d['with']:.1f} with vs "
                         f"{d['without']:.1f} without; {d['switches_per_s']:.0f} "
                         "switches/s counted; -icount shift=0"))
        with Channel.for_instance(inst, timeout=30) as ch:
            f = pb.demo_ratio(ch, elf, 2.0 if quick else 5.0, kind="fbt_all")
        rows.append(_row("demo throughput with `fbt:::entry { @[probefunc] = count(); }`",
                         round(f["ratio"], 4), "x",
                         f"demo's rounds per guest second {f['with']:.1f} with vs "
                         f"{f['without']:.1f} without; {f['switches_per_s']:.0f} "
                         "fbt firings/s counted over the whole kernel (demo's own "
                         "functions are inlined into its worker loop); -icount shift=0",
                         target=">= 0.95"))
    finally:
        instance.stop(inst)
    return rows


def run_all(base: Path, app: str = "demo", quick: bool = False) -> list[dict]:
    """Every benchmark; `quick` trims repetitions (for the test suite)."""
    elf = build.ensure_built(app, auto=True)
    rows = image_rows(elf)
    rows += boot_rows(elf, base, runs=3 if quick else 10)
    inst = _boot(elf, "bench-chan", base, mux=True)
    try:
        wait_ready(inst, 60)
        rows += idle_rows(inst, seconds=2 if quick else 10)
        rows += channel_rows(inst, n=50 if quick else 1000)
        rows += cli_rows(inst.name, base, runs=2 if quick else 10)
    finally:
        instance.stop(inst)
    rows += load_rows(base, n=50 if quick else 200)
    rows += probe_rows(base, quick=quick)
    from .corebench import core_rows            # post-mortem (issue 8): dump, unik core
    rows += core_rows(base, quick=quick)
    from . import flightbench                   # the flight recorder's cost (issue 8)
    rows += flightbench.rows(base, quick=quick)
    from . import profilebench          # profile provider: share spent sampling
    rows += profilebench.rows(base, quick=quick)
    from . import httpbench             # HTTP with wrk (issue 7 §7; issue 6's fbt::tcp_* row)
    rows += httpbench.rows(base, quick=quick)
    return rows


def render(rows: list[dict]) -> str:
    """Markdown table (pure): the README's benchmark table is this output."""
    out = ["| benchmark | value | detail |", "| --- | --- | --- |"]
    for r in rows:
        tgt = f" (target {r['target']})" if r.get("target") else ""
        out.append(f"| {r['name']} | {r['value']} {r['unit']} | {r['detail']}{tgt} |")
    return "\n".join(out)
