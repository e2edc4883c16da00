"""Instruction emission for codegen: one clause's code buffer with forward
jump patching and a pc -> script position table, the register stack, and
the program's string table.

Pure: no I/O.
"""
from __future__ import annotations

from probes import isa
from probes.program import Pos


class TooComplex(Exception):
    """An expression needs more than the VM's 16 registers."""

    def __init__(self, pos: Pos | None):
        super().__init__("expression too complex")
        self.pos = pos


class Code:
    """One clause's instructions; `pos` is the script position the next
    emitted instructions come from (codegen sets it per node)."""

    def __init__(self) -> None:
        self.insns: list = []       # [op, rd, ra, rb, imm]
        self.lines: dict = {}       # local pc -> Pos
        self.pos: Pos | None = None

    def emit(self, op: isa.Op, rd: int = 0, ra: int = 0, rb: int = 0, imm: int = 0) -> int:
        pc = len(self.insns)
        self.insns.append([int(op), rd, ra, rb, imm])
        if self.pos is not None:
            self.lines[pc] = self.pos
        return pc

    def jump(self, op: isa.Op, ra: int = 0) -> int:
        """A forward jump to a target patch() sets later; returns its pc."""
        return self.emit(op, ra=ra)

    def patch(self, pc: int) -> None:
        """Make the jump at pc land on the next instruction emitted."""
        self.insns[pc][4] = len(self.insns) - pc - 1

    def const(self, rd: int, value: int) -> None:
        """rd = value (any 64-bit pattern): LDI, plus LDIH when it does
        not fit a sign-extended 32-bit immediate."""
        v = value & ((1 << 64) - 1)
        sv = v - (1 << 64) if v >> 63 else v
        if -(1 << 31) <= sv < (1 << 31):
            self.emit(isa.Op.LDI, rd=rd, imm=sv)
            return
        lo = v & 0xffffffff
        self.emit(isa.Op.LDI, rd=rd, imm=lo - (1 << 32) if lo >> 31 else lo)
        hi = v >> 32
        self.emit(isa.Op.LDIH, rd=rd, imm=hi - (1 << 32) if hi >> 31 else hi)

    def ext(self, rd: int, width: int, signed: bool) -> None:
        """Truncate rd to width bytes and extend it back to 64 bits."""
        if width < 8:
            self.emit(isa.Op.EXT, rd=rd, ra=rd, imm=width * 8 | (0x100 if signed else 0))

    def bytes(self) -> bytes:
        return b"".join(isa.encode(*i) for i in self.insns)

    def __len__(self) -> int:
        return len(self.insns)


class Regs:
    """Temporaries r0..r15 used as a stack: an expression's value lands in
    the next free register; helper arguments are therefore consecutive."""

    def __init__(self) -> None:
        self.top = 0

    def push(self, pos: Pos | None) -> int:
        if self.top >= isa.NREGS:
            raise TooComplex(pos)
        self.top += 1
        return self.top - 1

    def pop(self, n: int = 1) -> None:
        self.top -= n
        assert self.top >= 0


class StrTab:
    """The program's string table: interned NUL-terminated strings."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets: dict = {}

    def intern(self, s: bytes) -> int:
        if s not in self.offsets:
            self.offsets[s] = len(self.data)
            self.data += s + b"\0"
        return self.offsets[s]
