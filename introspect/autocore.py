"""Automatic cores: when an instance's kernel panics, its mux takes a core
into the instance's state directory, once, and leaves the instance halted
(never restarted behind the operator's back).

The mux learns of the panic two ways, whichever comes first:

  * the CRASH frame (protocol.MsgType.CRASH) the kernel sends as it halts,
    carrying the crash record, when its channel could still send;
  * the serial console (serial.log), where every panic report is printed:
    a `PANIC: ` line, then, once the report is whole, `kernel halted`.
    The kernel sends its frame just after that line, so the serial path
    waits FRAME_GRACE more seconds for it (the frame names the kind); a
    report that never ends (a recursive fault) is taken anyway after
    REPORT_WAIT seconds.

    w = Watcher(inst)                       # in the mux
    w.frame(payload)                        # a CRASH frame came
    await w.run()                           # polls serial.log; takes the core

`info(dir)` reads what was recorded (crash.json): the core's path, its
size, how long the dump took, what triggered it and the panic's reason;
`unik ls` shows it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

CORE_FILE = "crash.core"
INFO_FILE = "crash.json"
POLL = 0.1                     # seconds between looks at serial.log
REPORT_WAIT = 2.0              # seconds a report may take to end before the core is taken
FRAME_GRACE = 1.0              # seconds after `kernel halted` the CRASH frame may still come
_HALTED = b"kernel halted (uptime"
_SCAN_MAX = 1 << 20            # bytes of serial.log kept in view

log = logging.getLogger("muxd")


def info(d: Path) -> dict | None:
    """The automatic core's record in state directory d, or None."""
    try:
        return json.loads((Path(d) / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None


def take(inst, trigger: str, reason: str, kind: str | None) -> dict:
    """Dump inst's guest memory to its crash.core and record crash.json.
    Blocking (QMP): the mux runs it in a thread."""
    from . import qemu
    path = inst.dir / CORE_FILE
    path.unlink(missing_ok=True)
    t0 = time.monotonic()
    qemu.Monitor(inst.qmp_sock, timeout=120.0).dump_guest_memory(path)
    rec = {"core": str(path), "bytes": path.stat().st_size,
           "seconds": round(time.monotonic() - t0, 3), "trigger": trigger,
           "reason": reason, "kind": kind, "time": time.time()}
    tmp = inst.dir / f".{INFO_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(rec, indent=2) + "\n")
    os.replace(tmp, inst.dir / INFO_FILE)
    return rec


def frame_reason(payload: bytes) -> tuple[str, str | None]:
    """(reason line, kind) from a CRASH frame's crash record."""
    from .helpers.crash import decode, headline
    from .helpers.report import from_record, reason
    rec = decode(payload)
    if rec is None:
        return "panic (empty crash record)", None
    return reason(from_record(rec)), rec["kind"]


def serial_reason(text: str) -> str:
    """The reason line from a panic report in serial text."""
    from .helpers.report import parse_panic, reason
    return reason(parse_panic(text))


class Watcher:
    """One instance's panic watcher (one per mux)."""

    def __init__(self, inst) -> None:
        self.inst = inst
        self.serial = inst.dir / "serial.log"
        self.offset = 0
        self.seen: float | None = None          # when a PANIC line was first seen
        self.ended: float | None = None         # when its `kernel halted` line was
        self.buf = b""
        self.trigger: tuple[str, str, str | None] | None = None
        self.done = info(inst.dir) is not None  # a mux restarted after the core
        self.wake = asyncio.Event()

    def frame(self, payload: bytes) -> None:
        """A CRASH frame arrived: take the core now."""
        if self.trigger or self.done:
            return
        try:
            why, kind = frame_reason(payload)
        except Exception as e:               # a damaged record still means a panic
            why, kind = f"panic (crash record unreadable: {e})", None
        self.trigger = ("frame", why, kind)
        self.wake.set()

    def _poll_serial(self) -> None:
        """Read what serial.log gained; note a panic report and its end."""
        try:
            with open(self.serial, "rb") as f:
                f.seek(self.offset)
                new = f.read(_SCAN_MAX)
        except OSError:
            return
        self.offset += len(new)
        self.buf = (self.buf + new)[-_SCAN_MAX:]
        i = self.buf.rfind(b"PANIC: ")
        if i < 0:
            return
        now = time.monotonic()
        if self.seen is None:
            self.seen = now
        if self.ended is None and _HALTED in self.buf[i:]:
            self.ended = now
        if (self.ended is not None and now - self.ended > FRAME_GRACE) or \
                now - self.seen > REPORT_WAIT + FRAME_GRACE:
            text = self.buf[self.buf.rfind(b"\n", 0, i) + 1:].decode("utf-8", "replace")
            self.trigger = ("serial", serial_reason(text), None)

    async def run(self) -> None:
        """Until the core is taken: watch, then dump (in a thread)."""
        while not self.done:
            if not self.trigger:
                self._poll_serial()
            if self.trigger:
                trigger, why, kind = self.trigger
                log.info("kernel panicked (%s, seen on the %s): taking a core", why,
                         trigger)
                try:
                    rec = await asyncio.to_thread(take, self.inst, trigger, why, kind)
                    log.info("core %s (%d MiB) in %.2f s", rec["core"], rec["bytes"] >> 20,
                             rec["seconds"])
                except Exception as e:
                    log.error("automatic core failed: %s", e)
                self.done = True
                return
            try:
                await asyncio.wait_for(self.wake.wait(), POLL)
            except asyncio.TimeoutError:
                pass
