"""Where kernel images live, whether they are stale, and building them.

The repository root is the parent of introspect/.  Kernel images are
`<build>/<app>/kernel.elf` with <build> = `$UNIK_BUILD_DIR` or `<root>/build`;
apps are the directories under `kernel/apps/`.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from .errors import BuildError, UnikError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APP = "demo"

# Files under kernel/ that are build products, not sources (in-tree builds).
_SKIP_SUFFIXES = (".o", ".d", ".elf", ".a", ".bin", ".tmp", ".pyc")
_SKIP_DIRS = {"build", "out", "__pycache__", ".git"}


def kernel_dir() -> Path:
    return ROOT / "kernel"


def build_dir() -> Path:
    env = os.environ.get("UNIK_BUILD_DIR")
    return Path(env).resolve() if env else ROOT / "build"


def kernel_path(app: str) -> Path:
    return build_dir() / app / "kernel.elf"


def apps() -> list[str]:
    d = kernel_dir() / "apps"
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_app(app: str) -> None:
    known = apps()
    if app not in known:
        raise BuildError(f"unknown app {app!r}",
                         f"apps are: {', '.join(known)}" if known else
                         "no apps found under kernel/apps/")


def _newest_source() -> tuple[float, Path | None]:
    newest, which = 0.0, None
    roots = [kernel_dir()]
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
            for f in filenames:
                if f.endswith(_SKIP_SUFFIXES):
                    continue
                p = os.path.join(dirpath, f)
                try:
                    m = os.stat(p).st_mtime
                except OSError:
                    continue
                if m > newest:
                    newest, which = m, Path(p)
    proto = ROOT / "introspect" / "protocol.py"
    if proto.exists() and proto.stat().st_mtime > newest:
        newest, which = proto.stat().st_mtime, proto
    return newest, which


def needs_build(app: str) -> bool:
    """True when kernel.elf is missing or older than a kernel source file or
    the protocol spec."""
    elf = kernel_path(app)
    if not elf.exists():
        return True
    newest, _ = _newest_source()
    return newest > elf.stat().st_mtime


def build(app: str, *, verbose: bool = False) -> Path:
    """Run make for `app`; return the kernel path.  make's output is shown
    only on failure (or with verbose)."""
    check_app(app)
    out = build_dir() / app
    cmd = ["make", "-C", str(kernel_dir()), f"APP={app}", f"O={out}"]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".unik-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)        # one make per output directory
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace")
        except FileNotFoundError:
            raise BuildError("make is not installed", "apt-get install make gcc") from None
    if verbose or r.returncode != 0:
        print(r.stdout, end="" if r.stdout.endswith("\n") else "\n",
              file=sys.stdout if r.returncode == 0 else sys.stderr)
    if r.returncode != 0:
        raise BuildError(f"building app {app!r} failed (make exited with {r.returncode})",
                         f"see make's output above; command: {' '.join(cmd)}")
    elf = kernel_path(app)
    if not elf.exists():
        raise BuildError(f"make succeeded but {elf} was not produced",
                         "check the kernel Makefile's O= handling")
    return elf


def ensure_built(app: str, *, auto: bool = True) -> Path:
    """Return kernel.elf for `app`, building it first when stale and `auto`."""
    check_app(app)
    elf = kernel_path(app)
    if auto and needs_build(app):
        return build(app)
    if not elf.exists():
        raise BuildError(f"kernel not built for app {app!r} ({elf} missing)",
                         f"run: unik build --app {app}")
    return elf


def resolve_kernel(app: str | None, kernel: str | None) -> tuple[str, Path]:
    """Pick (app, kernel path) from options: an explicit kernel ELF wins."""
    if kernel:
        p = Path(kernel).resolve()
        if not p.is_file():
            raise UnikError(f"kernel image {kernel} does not exist",
                            "give the path of a kernel.elf")
        return app or p.parent.name, p
    app = app or DEFAULT_APP
    return app, ensure_built(app)
