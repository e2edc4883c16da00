"""The crash record: what kernel/arch/crash.c saved when the kernel
panicked (the global `crash_record`, laid out by protocol.CRASH_RECORD,
the one source of truth for the kernel's struct, the CRASH frame and
this decoder).

    rec = crash_record(prog)        # from a core, or live over MEMREAD
    rec = decode(frame.payload)     # from the CRASH frame (the mux)

decode() is pure: bytes in, a JSON-ready dict out (or None when the
record is empty: the kernel never panicked).  Keys: kind (name), state,
complete, vector, error_code, cr2, registers, uptime_ns, tsc, thread
{tid, name}, reason, file, line, addr, stack_lo, frames [pc...], text.
A kernel older than the record has no `crash_record` symbol: None, and
the caller falls back to the panic report in the log ring.
"""
from __future__ import annotations

import struct

from .. import protocol as P
from ..errors import UnikError

SYMBOL = "crash_record"
_REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
         "r11", "r12", "r13", "r14", "r15", "rip", "rflags", "cs", "ss", "cr0", "cr3",
         "cr4")
_NO_VECTOR = 0xFFFFFFFF
_NO_TID = 0xFFFFFFFF


class BadRecord(UnikError):
    """A crash record whose bytes do not make sense (damaged memory)."""


def _text(v) -> str:
    """A char[N] field (Layout.unpack already cut it at its NUL)."""
    return v if isinstance(v, str) else v.split(b"\0", 1)[0].decode("utf-8", "replace")


def _name(enum, v: int) -> str:
    try:
        return enum(v).name.lower()
    except ValueError:
        return f"?{v}"


def decode(raw: bytes) -> dict | None:
    """The record in raw (CRASH_RECORD.size bytes), None when empty."""
    lay = P.CRASH_RECORD
    if len(raw) < lay.size:
        raise BadRecord(f"crash record of {len(raw)} bytes, want {lay.size}",
                        "a kernel of another build? give it with --kernel")
    r = lay.unpack(raw[:lay.size])
    if r["magic"] == 0 and r["state"] == P.CrashState.EMPTY:
        return None
    if r["magic"] != P.CRASH_MAGIC or r["state"] not in set(P.CrashState) or \
            r["nframes"] > P.CRASH_FRAMES or r["text_len"] >= P.CRASH_TEXT:
        raise BadRecord(f"the crash record is damaged (magic {r['magic']:#x}, state "
                        f"{r['state']}, {r['nframes']} frames)",
                        "the panic report in the log is used instead")
    frames = list(struct.unpack_from(f"<{r['nframes']}Q", r["frames"]))
    tid = r["tid"]
    return {
        "kind": _name(P.CrashKind, r["kind"]),
        "state": _name(P.CrashState, r["state"]),
        "complete": r["state"] == P.CrashState.COMPLETE,
        "vector": None if r["vector"] == _NO_VECTOR else r["vector"],
        "error_code": r["err"], "cr2": r["cr2"],
        "registers": {k: r[k] for k in _REGS} | {"cr2": r["cr2"]},
        "uptime_ns": r["uptime_ns"], "tsc": r["tsc"],
        "thread": {"tid": None if tid == _NO_TID else tid, "name": _text(r["thread"])},
        "reason": _text(r["reason"]), "file": _text(r["file"]) or None,
        "line": r["line"] or None, "addr": r["addr"] or None,
        "stack_lo": r["stack_lo"] or None, "frames": frames,
        "text": _text(r["text"]),
    }


def crash_record(prog) -> dict | None:
    """The record in prog's memory; None when the kernel has none (never
    panicked, or built before the record existed)."""
    addr = prog.db.address(SYMBOL)
    if addr is None:
        return None
    return decode(prog.read(addr, P.CRASH_RECORD.size))


def headline(rec: dict) -> str:
    """One line: why the kernel stopped, from the record."""
    kind, why = rec["kind"], rec["reason"]
    if kind in ("trap", "stack_overflow") and rec["vector"] is not None:
        short, name = _exception(rec)
        trap = f"{short} {name} (vector {rec['vector']}) " \
               f"err={rec['error_code']:#x} cr2={rec['cr2']:#x}"
        return f"{why}: {trap}" if kind == "stack_overflow" else trap
    prefix = {"panic": "panic: ", "heap": "heap corruption: ", "watchdog": "watchdog: ",
              "assert": ""}.get(kind, f"{kind}: ")
    return prefix + why


def _exception(rec: dict) -> tuple[str, str]:
    """The exception's short and long names ("#PF", "page fault") from the
    report's headline in the record's text."""
    from .report import _HEAD_TRAP
    for ln in rec["text"].splitlines():
        m = _HEAD_TRAP.search(ln)
        if m:
            return m[1], m[2]
    return f"#{rec['vector']}", rec["reason"] if rec["kind"] == "trap" else "exception"
