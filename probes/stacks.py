"""stack() values on the host: decoding, naming frames, printing as
dtrace prints stacks, and turning them into flame-graph samples.

A stack value (TPUSH kind 2, RECK; the STACK encoding in probes/isa.py)
is a u16 frame count n, six zero bytes and n u64 pcs, innermost first.
Frame 0 is where the probe fired (the interrupted pc for profile-N and
tick-N; for a static probe a pc in its site's out-of-line block, inside
the probed function); every other frame is a return address, so it is
named by the byte before it (a call at a function's very end names that
function) and printed with its own offset, as dtrace does.

    Stack(pcs)                         a decoded value (a tuple of ints)
    decode(data, off, end) -> (Stack, offset after it)    ValueError if bad
    frame_names(stack, symbolize) -> ["func+0xoff", ...]  innermost first
    stack_text(stack, symbolize, indent=14) -> dtrace's lines
    sample(stack, symbolize) -> frames root first, function names only

`symbolize(addr) -> (name, offset) | None` is the kernel's symbol table
(introspect.dwarf.TypeDB.symbol).  Pure: no I/O.
"""
from __future__ import annotations

import struct

from probes import isa

INDENT = 14                     # dtrace's stack indent in aggregations and trace()


class Stack(tuple):
    """A stack() value: its pcs, innermost first."""

    def __repr__(self) -> str:
        return "Stack(" + ", ".join("%#x" % p for p in self) + ")"


def decode(data: bytes, off: int, end: int) -> tuple:
    """(Stack, offset after it) of the STACK encoding at data[off:end];
    ValueError naming what is wrong."""
    if off + 8 > end:
        raise ValueError("stack header runs past the end")
    n = struct.unpack_from("<H", data, off)[0]
    if n > isa.MAX_STACK_FRAMES:
        raise ValueError(f"stack of {n} frames (the VM records at most "
                         f"{isa.MAX_STACK_FRAMES})")
    if off + 8 + 8 * n > end:
        raise ValueError(f"stack of {n} frames runs past the end")
    return Stack(struct.unpack_from(f"<{n}Q", data, off + 8)), off + 8 + 8 * n


def _lookup(symbolize, addr: int):
    if symbolize is None:
        return None
    try:
        return symbolize(addr)
    except Exception:               # a broken symbol table never stops output
        return None


def frame_name(pc: int, first: bool, symbolize=None, offset: bool = True) -> str:
    """Frame `func+0xoff` (pc's hex when no symbol covers it).  A return
    address (first False) is looked up one byte back."""
    hit = _lookup(symbolize, pc if first else pc - 1)
    if not hit:
        return "0x%x" % pc
    name, off = hit
    off = off if first else off + 1
    return "%s+0x%x" % (name, off) if offset and off else name


def frame_names(stack, symbolize=None, offset: bool = True) -> list:
    """The frames' names, innermost first."""
    return [frame_name(pc, i == 0, symbolize, offset) for i, pc in enumerate(stack)]


def stack_text(stack, symbolize=None, indent: int = INDENT) -> str:
    """dtrace's stack lines: a newline, then one indented frame a line."""
    return "\n" + "".join(" " * indent + n + "\n" for n in frame_names(stack, symbolize))


def sample(stack, symbolize=None) -> tuple:
    """The stack as a flame-graph sample's frames: function names (no
    offsets), root first.  An empty stack is ("[unknown]",)."""
    names = frame_names(stack, symbolize, offset=False)
    return tuple(reversed(names)) or ("[unknown]",)
