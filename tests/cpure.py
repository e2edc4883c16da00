"""Build the kernel's pure C files (and a harness) for the host, for ctypes.

`build_shared(outdir, sources)` generates wire.h from introspect/protocol.py
and isa.h from probes/isa.py into `outdir/gen`, compiles `sources` (paths relative to the repo root, or
absolute) with the host gcc into `outdir/lib.so` and returns its path.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from introspect import wiregen
from probes import isagen

ROOT = Path(__file__).resolve().parent.parent
# UBSan traps on undefined behaviour (shifts, overflow, misaligned or
# out-of-bounds accesses it can see) so the property tests also hunt UB.
CFLAGS = ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
          "-fno-strict-aliasing", "-shared", "-fPIC",
          "-fsanitize=undefined", "-fsanitize-undefined-trap-on-error"]


def build_shared(outdir: Path, sources, name: str = "lib.so") -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no host C compiler (gcc) found")
    gen = Path(outdir) / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "wire.h").write_text(wiregen.render())
    (gen / "isa.h").write_text(isagen.render())
    srcs = []
    for s in sources:
        p = Path(s)
        p = p if p.is_absolute() else ROOT / p
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing")
        srcs.append(str(p))
    out = Path(outdir) / name
    cmd = [cc, *CFLAGS, "-I", str(ROOT / "kernel" / "include"), "-I", str(gen),
           "-o", str(out), *srcs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"host build failed: {' '.join(cmd)}\n{r.stderr}")
    return out
