"""unik dump [NAME] -o FILE: a core of a live (or halted) instance through
QEMU's dump-guest-memory; the guest runs on afterwards."""
from __future__ import annotations

import os
import time
from pathlib import Path

from introspect.errors import UnikError

from ..registry import Command


def args(p):
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write the ELF core")


class _Bar:
    """A rich progress bar on stderr for a dump, shown only once it has
    taken BAR_AFTER seconds (and only on a terminal)."""

    def __init__(self, name: str, show: bool) -> None:
        self.name, self.show, self.t0, self.progress, self.task = name, show, 0.0, None, None

    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def update(self, done: int, total: int) -> None:
        if not self.show or time.monotonic() - self.t0 < BAR_AFTER:
            return
        if self.progress is None:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress,
                                       TimeRemainingColumn, TransferSpeedColumn)
            self.progress = Progress("dumping " + self.name, BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task("dump", total=total or None)
        self.progress.update(self.task, completed=done, total=total or None)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


BAR_AFTER = 1.0                 # seconds a dump runs before its progress bar appears


def dump(inst, out: str | os.PathLike, bar: bool = False) -> dict:
    """Write an ELF core of `inst` to `out`; returns {path, bytes, seconds}.
    A halted (panicked) kernel dumps too: QEMU still runs.  bar: show a
    progress bar on stderr if it takes over BAR_AFTER seconds."""
    from introspect import qemu
    path = Path(out).expanduser().absolute()
    if not path.parent.is_dir():
        raise UnikError(f"cannot write core {path}: directory {path.parent} does not exist",
                        "give -o a path in an existing directory")
    if path.is_dir():
        raise UnikError(f"cannot write core {path}: it is a directory",
                        "give -o a file name")
    if not os.access(path.parent, os.W_OK):
        raise UnikError(f"cannot write core {path}: directory {path.parent} is not writable",
                        "give -o a path you can write")
    if path.exists():
        path.unlink()               # QEMU writes cores mode 0400: replace, not reopen
    t0 = time.monotonic()
    with _Bar(inst.name, show=bar) as b:
        qemu.Monitor(inst.qmp_sock, timeout=60.0).dump_guest_memory(path, progress=b.update)
    dt = time.monotonic() - t0
    if not path.exists():
        raise UnikError(f"QEMU wrote no core at {path}", "see the instance's qemu.log")
    return {"instance": inst.name, "path": str(path), "bytes": path.stat().st_size,
            "seconds": round(dt, 3), "kernel": inst.kernel}


def run(ctx, args):
    inst = ctx.find(args)           # raises for a stopped (stale) instance
    r = dump(inst, args.output, bar=not args.json and ctx.err.isatty())
    if args.json:
        ctx.json(r)
    else:
        ctx.write(f"{r['path']}: {r['bytes'] >> 20} MiB core of {inst.name} "
                  f"in {r['seconds']:.2f} s (kernel {inst.kernel})")


COMMAND = Command("dump", "write an ELF core of an instance (QEMU dump-guest-memory)", run,
                  args=args, instance="optional",
                  epilog="open it with: unik py --core FILE --kernel KERNEL")
