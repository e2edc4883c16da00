"""Build the kernel's pure C files (and a harness) for the host, for ctypes.

`build_shared(outdir, sources)` generates wire.h from introspect/protocol.py
and isa.h from probes/isa.py into `outdir/gen`, compiles `sources` (paths relative to the repo root, or
absolute) with the host gcc into `outdir/lib.so` and returns its path.
`build_fuzzer(outdir, sources, name)` builds a standalone program the same
way, with ASan and UBSan aborting on the first error (tests/fuzz_*.c).
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


# A fuzzer stops at the first error either sanitizer finds.
FUZZ_CFLAGS = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
               "-fno-strict-aliasing", "-fsanitize=address,undefined",
               "-fno-sanitize-recover=all"]


def build_shared(outdir: Path, sources, name: str = "lib.so") -> Path:
    return _build(outdir, sources, name, CFLAGS)


def build_fuzzer(outdir: Path, sources, name: str) -> Path:
    """The executable outdir/name from sources (and any libraries named in
    them by absolute path), with FUZZ_CFLAGS."""
    return _build(outdir, sources, name, FUZZ_CFLAGS)


def _build(outdir: Path, sources, name: str, cflags: list[str]) -> Path:
    """Generate the headers into outdir/gen and compile sources into
    outdir/name with cflags; RuntimeError with gcc's output on failure."""
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
    cmd = [cc, *cflags, "-I", str(ROOT / "kernel" / "include"), "-I", str(gen),
           "-o", str(out), *srcs]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"host build failed: {' '.join(cmd)}\n{r.stderr}")
    return out
