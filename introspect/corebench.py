"""Post-mortem benchmarks (rows in `unik bench`): how long a core of a
64 MiB guest takes to write (QMP dump-guest-memory, as `unik dump` and the
mux's automatic core do it) and to summarize (`unik core` as a whole
command, process start to exit, and summarize() alone in-process).
Targets from issue 8: dump <= 1 s, `unik core` <= 2 s.
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import build, instance, qemu
from .client import wait_ready
from .elfinfo import build_id

MEM = "64M"


def _row(name, value, unit, detail="", target=None):
    return {"name": name, "value": value, "unit": unit, "detail": detail, "target": target}


def _unik() -> list[str]:
    exe = Path(sys.executable).parent / "unik"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "console.cli"]


def core_rows(base: Path, quick: bool = False) -> list[dict]:
    """Dump a booted 64 MiB demo `runs` times, then summarize the core."""
    from .helpers.report import summarize
    from .program import Program
    runs = 3 if quick else 10
    elf = build.ensure_built("demo", auto=True)
    inst = instance.boot(app="demo", kernel=elf, build_id=build_id(elf), name="bench-core",
                         opts=qemu.BootOptions(mem=MEM), mux=True, base=base)
    core = base / "bench-core.core"
    try:
        wait_ready(inst, 60)
        dumps = []
        for _ in range(runs):
            core.unlink(missing_ok=True)
            t0 = time.monotonic()
            qemu.Monitor(inst.qmp_sock, timeout=60.0).dump_guest_memory(core)
            dumps.append(time.monotonic() - t0)
        size = core.stat().st_size
        env = dict(os.environ, UNIK_STATE_DIR=str(base))
        env.pop("PYTHONDONTWRITEBYTECODE", None)    # bytecode cached, as installed
        cmd = _unik() + ["core", str(core), "--kernel", inst.kernel, "--json"]
        subprocess.run(cmd, capture_output=True, check=True, timeout=120, env=env)  # warm-up
        whole, cpu = [], []
        for _ in range(runs):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            subprocess.run(cmd, capture_output=True, check=True, timeout=120, env=env)
            whole.append(time.monotonic() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
        inproc = []
        for _ in range(runs):
            t0 = time.monotonic()
            with Program.from_core(core, inst.kernel) as prog:
                summarize(prog, stacks=True)
            inproc.append(time.monotonic() - t0)
    finally:
        instance.stop(inst)
        core.unlink(missing_ok=True)
    med = statistics.median
    return [
        _row(f"dump a {MEM[:-1]} MiB guest", round(med(dumps), 3), "s",
             f"median of {runs} (max {max(dumps):.3f} s), QMP dump-guest-memory to a "
             f"{size >> 20} MiB ELF core, guest paused meanwhile", target="<= 1 s"),
        _row(f"`unik core` on a {MEM[:-1]} MiB core", round(med(whole), 3), "s",
             f"median of {runs} (max {max(whole):.3f} s), process start to exit, --json, "
             f"bytecode cached; "
             f"{med(cpu):.3f} s of CPU (wall time above it is waiting for a CPU: load "
             f"{os.getloadavg()[0]:.1f}); summarize() alone, DWARF already read, "
             f"{med(inproc):.3f} s", target="<= 2 s"),
    ]
