"""The program container: pack the sections codegen produced into the bytes
the kernel verifies (layout in probes/isa.py: prog_hdr, clauses, vars,
aggs, code, string table, no padding), and unpack them again for the
disassembler and the tests' reference interpreter.

Pure: no I/O.  `unpack` raises ValueError on a malformed container (it is
used on bytes that may come from anywhere).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from probes import isa


@dataclass
class Container:
    code: bytes = b""                               # ninsns * 8 bytes
    clauses: list = field(default_factory=list)     # dicts: start len nlocals flags
    vars: list = field(default_factory=list)        # dicts: scope kind nkeys
    aggs: list = field(default_factory=list)        # dicts: func nkeys nwords lq_lo lq_hi lq_step
    nrecdescs: int = 0
    strtab: bytes = b""
    strsize: int = 256
    flags: int = 0

    @property
    def ninsns(self) -> int:
        return len(self.code) // isa.INSN_SIZE

    def insn(self, pc: int) -> tuple:
        """(op, rd, ra, rb, imm) of instruction pc."""
        return isa.decode(self.code, pc)

    def string_at(self, off: int) -> bytes:
        """The NUL-terminated string at offset off of the string table."""
        end = self.strtab.find(b"\0", off)
        if off < 0 or off >= len(self.strtab) or end < 0:
            raise ValueError(f"string table offset {off} out of range")
        return self.strtab[off:end]


def pack(c: Container) -> bytes:
    """The container bytes of c (called by codegen.generate)."""
    out = [isa.PROG_HDR.pack(magic=isa.PROG_MAGIC, version=isa.PROG_VERSION,
                             flags=c.flags, ninsns=c.ninsns,
                             nclauses=len(c.clauses), nvars=len(c.vars),
                             naggs=len(c.aggs), nrecdescs=c.nrecdescs,
                             strtab_len=len(c.strtab), strsize=c.strsize)]
    out += [isa.PROG_CLAUSE.pack(**cl) for cl in c.clauses]
    out += [isa.PROG_VAR.pack(**v) for v in c.vars]
    out += [isa.PROG_AGG.pack(**a) for a in c.aggs]
    out += [c.code, c.strtab]
    return b"".join(out)


def unpack(blob: bytes) -> Container:
    """The Container in blob; ValueError naming what is wrong if malformed."""
    if len(blob) < isa.PROG_HDR.size:
        raise ValueError(f"container of {len(blob)} bytes is shorter than its header")
    h = isa.PROG_HDR.unpack(blob)
    if h["magic"] != isa.PROG_MAGIC:
        raise ValueError(f"bad magic {h['magic']:#x}")
    if h["version"] != isa.PROG_VERSION:
        raise ValueError(f"unsupported version {h['version']}")
    off = isa.PROG_HDR.size
    sections = []
    for layout, n in ((isa.PROG_CLAUSE, h["nclauses"]), (isa.PROG_VAR, h["nvars"]),
                      (isa.PROG_AGG, h["naggs"])):
        if off + n * layout.size > len(blob):
            raise ValueError(f"{layout.name} section runs past the end")
        sections.append([layout.unpack(blob, off + i * layout.size) for i in range(n)])
        off += n * layout.size
    ncode = h["ninsns"] * isa.INSN_SIZE
    end = off + ncode + h["strtab_len"]
    if end != len(blob):
        raise ValueError(f"container is {len(blob)} bytes, its header says {end}")
    return Container(code=blob[off:off + ncode], clauses=sections[0],
                     vars=sections[1], aggs=sections[2],
                     nrecdescs=h["nrecdescs"], strtab=blob[off + ncode:end],
                     strsize=h["strsize"], flags=h["flags"])
