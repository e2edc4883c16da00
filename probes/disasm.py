"""A readable listing of a program container (tests, `unik trace --disasm`).

    disassemble(blob) -> str

Sections are listed in container order: header, variables, aggregations,
then each clause's code with jump targets resolved and string-table
operands shown, then the string table.  Pure: no I/O; a malformed
container gives a one-line error string instead of a listing.
"""
from __future__ import annotations

from probes import isa
from probes.container import Container, unpack

_JUMPS = {isa.Op.JMP, isa.Op.JZ, isa.Op.JNZ}
_VAROPS = {isa.Op.LDG, isa.Op.STG, isa.Op.LDT, isa.Op.STT, isa.Op.LDL, isa.Op.STL,
           isa.Op.LDA, isa.Op.STA}
_BINARY = set(range(isa.Op.ADD, isa.Op.SLE + 1)) - {isa.Op.NEG, isa.Op.NOT, isa.Op.LNOT}


def disassemble(blob: bytes) -> str:
    """The listing of the container blob."""
    try:
        c = unpack(blob)
    except ValueError as e:
        return f"error: not a program container: {e}"
    out = [f"program: {c.ninsns} insns, {len(c.clauses)} clauses, {len(c.vars)} vars, "
           f"{len(c.aggs)} aggs, {c.nrecdescs} recdescs, strtab {len(c.strtab)} bytes, "
           f"strsize {c.strsize}"]
    for i, v in enumerate(c.vars):
        scope, kind = _name(isa.Scope, v["scope"]), _name(isa.VarKind, v["kind"])
        keys = f" nkeys={v['nkeys']}" if v["scope"] == isa.Scope.ASSOC else ""
        out.append(f"var {i}: {scope} {kind}{keys}")
    for i, a in enumerate(c.aggs):
        lq = (f" lo={a['lq_lo']} hi={a['lq_hi']} step={a['lq_step']}"
              if a["func"] == isa.AggFunc.LQUANTIZE else "")
        out.append(f"agg {i}: {_name(isa.AggFunc, a['func'])} nkeys={a['nkeys']} "
                   f"nwords={a['nwords']}{lq}")
    for i, cl in enumerate(c.clauses):
        out.append(f"clause {i}: pc {cl['start']}..{cl['start'] + cl['len'] - 1}, "
                   f"nlocals={cl['nlocals']}")
        for pc in range(cl["start"], min(cl["start"] + cl["len"], c.ninsns)):
            out.append(f"  {pc:4d}: {insn_text(c, pc)}")
    if c.strtab:
        out.append("strtab:")
        off = 0
        while off < len(c.strtab):
            end = c.strtab.find(b"\0", off)
            end = len(c.strtab) if end < 0 else end
            out.append(f"  {off:5d}: {c.strtab[off:end]!r}"[:100])
            off = end + 1
    return "\n".join(out) + "\n"


def insn_text(c: Container, pc: int) -> str:
    """One instruction as text, e.g. `add r0, r0, r1` or `jz r0, -> 12`."""
    op, rd, ra, rb, imm = c.insn(pc)
    try:
        o = isa.Op(op)
    except ValueError:
        return f".byte {op:#04x} rd={rd} ra={ra} rb={rb} imm={imm}"
    n = o.name.lower()
    if o in (isa.Op.NOP, isa.Op.RET, isa.Op.TCLR, isa.Op.RECE):
        return n
    if o in _JUMPS:
        return f"{n} {'' if o == isa.Op.JMP else f'r{ra}, '}-> {pc + 1 + imm}"
    if o in (isa.Op.LDI, isa.Op.LDIH):
        return f"{n} r{rd}, {imm}"
    if o == isa.Op.MOV or o in (isa.Op.NEG, isa.Op.NOT, isa.Op.LNOT):
        return f"{n} r{rd}, r{ra}"
    if o in _BINARY:
        return f"{n} r{rd}, r{ra}, r{rb}"
    if o == isa.Op.EXT:
        return f"ext r{rd}, r{ra}, {'s' if imm & 0x100 else 'u'}{imm & 0xff}"
    if o == isa.Op.LD:
        return f"ld{rb} r{rd}, [r{ra}{imm:+d}]"
    if o == isa.Op.LDB:
        return f"ldb r{rd}, {_name(isa.Builtin, imm).lower()}"
    if o == isa.Op.ARG:
        return f"arg r{rd}, {imm}"
    if o == isa.Op.STR:
        try:
            s = c.string_at(imm)
        except ValueError:
            s = b"?"
        return f"str r{rd}, {imm}  ; {s!r}"[:100]
    if o in _VAROPS:
        return f"{n} r{rd if o.name.startswith('LD') else ra}, var {imm}"
    if o == isa.Op.TPUSH:
        return f"tpush r{ra}, {('int', 'str', 'stack')[imm] if 0 <= imm <= 2 else imm}"
    if o == isa.Op.AGG:
        return f"agg {imm}, r{ra}"
    if o == isa.Op.RECB:
        return f"recb {imm}"
    if o in (isa.Op.RECV, isa.Op.RECS, isa.Op.RECK, isa.Op.EXIT):
        return f"{n} r{ra}"
    if o == isa.Op.CALL:
        h = _name(isa.Helper, imm)
        nargs = isa.HELPERS[isa.Helper(imm)].nargs if imm in isa.Helper._value2member_map_ else 0
        args = ", ".join(f"r{ra + i}" for i in range(nargs))
        return f"call r{rd}, {h.lower()}({args})"
    return f"{n} rd={rd} ra={ra} rb={rb} imm={imm}"


def _name(enum, v: int) -> str:
    try:
        return enum(v).name
    except ValueError:
        return f"?{v}"
