"""Hostile and broken probe VM programs: each is refused by the verifier
with the expected reason, or contained at run time with the expected fault
(and the harness unharmed).  Used by tests/test_probe_vm_c.py and as seeds
by the fuzzer (tests/fuzz_vm.c reads them from a file the test writes).

An entry: name, the container bytes, and either `verify` (a substring of
the verifier's reason) or `fault` (the isa.Fault the first run returns),
`args` for the run (a callable of (VM, run number) when it needs a runtime
address or varies by run)
and `check` (a callable of the VM, asserting what must hold afterwards).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from isa_asm import AggFunc, Op, Prog, Scope, VarKind, raw
from probes import isa

F = isa.Fault
RAM_ADDR = 0x200000                 # where the harness's fake RAM is mapped
MMIO = 0xFEB00000


@dataclass
class Case:
    name: str
    blob: bytes
    verify: str | None = None
    fault: int | None = None
    args: tuple | Callable = ()
    check: Callable | None = None
    runs: int = 1


def _p(text, **kw):
    p = Prog(**{k: v for k, v in kw.items() if k in ("strings", "nrecdescs", "strsize")})
    for s, k, n in kw.get("vars", ()):
        p.var(s, k, n)
    for a in kw.get("aggs", ()):
        p.agg(*a)
    p.clause(text)
    return p


def _blob(text, **kw):
    return _p(text, **kw).build()


def _raw(*insns, **kw):
    p = Prog(**kw)
    p.clause(list(insns))
    return p.build()


def _hdr_patch(blob: bytes, field_name: str, value: int) -> bytes:
    off = isa.PROG_HDR.offsets()[field_name]
    fmt = "<" + {"u32": "I", "u16": "H"}[dict((f, t) for f, t, _ in isa.PROG_HDR.fields)[field_name]]
    b = bytearray(blob)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def _clause_patch(blob: bytes, i: int, **kw) -> bytes:
    off = isa.PROG_HDR.size + i * isa.PROG_CLAUSE.size
    c = isa.PROG_CLAUSE.unpack(blob, off)
    c.update(kw)
    return blob[:off] + isa.PROG_CLAUSE.pack(**c) + blob[off + isa.PROG_CLAUSE.size:]


GOOD = _blob("ldi r1, 1\nret")
TWO = Prog()
TWO.clause("ldi r1, 1\nret")
TWO.clause("ldi r2, 2\nret")
TWO_BLOB = TWO.build()


def _many_clauses(n):
    p = Prog()
    for _ in range(n):
        p.clause("ret")
    return p.build()


def _flood_check(vm):
    assert vm.agg_drops > 0
    keys = vm.aggs()
    assert len(keys) > 0
    assert all(w == [1] for w in keys.values())


def _dyn_flood_check(vm):
    assert vm.dyn_drops > 0


def _stringof_check(vm):
    f, pc, addr = vm.fault
    assert addr == RAM_ADDR + 64          # the first byte past the fake RAM


CASES = [
    # ---------------------------------------------------- container
    Case("empty container", b"", verify="truncated header"),
    Case("truncated header", GOOD[:20], verify="truncated header"),
    Case("truncated container", GOOD[:-4], verify="length mismatch"),
    Case("trailing bytes", GOOD + b"\0" * 8, verify="length mismatch"),
    Case("bad magic", _hdr_patch(GOOD, "magic", 0xDEADBEEF), verify="bad magic"),
    Case("bad version", _hdr_patch(GOOD, "version", 9), verify="version"),
    Case("header flags", _hdr_patch(GOOD, "flags", 1), verify="reserved"),
    Case("header pad", _hdr_patch(GOOD, "pad", 1), verify="reserved"),
    Case("no instructions", _hdr_patch(GOOD, "ninsns", 0), verify="empty program"),
    Case("huge program", _raw(*[raw(Op.NOP)] * 4096, raw(Op.RET)),
         verify="program over 4096 instructions"),
    Case("huge program count", _hdr_patch(GOOD, "ninsns", 1 << 30), verify="over 4096"),
    Case("container over 64 KiB", GOOD + b"\0" * 70000, verify="program over 65536 bytes"),
    Case("no clauses", _hdr_patch(GOOD, "nclauses", 0), verify="no clauses"),
    Case("too many clauses", _many_clauses(65), verify="over 64 clauses"),
    Case("too many vars count", _hdr_patch(GOOD, "nvars", 300), verify="over 256 variables"),
    Case("too many aggs count", _hdr_patch(GOOD, "naggs", 33), verify="over 32 aggregations"),
    Case("too many recdescs", _hdr_patch(GOOD, "nrecdescs", 5000), verify="record descriptors"),
    Case("strsize too small", _blob("ret", strsize=8), verify="strsize"),
    Case("strsize too large", _blob("ret", strsize=4096), verify="strsize"),
    Case("string table over cap", _hdr_patch(GOOD, "strtab_len", 20000), verify="string table over"),
    Case("unterminated string table", _blob("ret", strings=["abc"])[:-1] + b"d",
         verify="not NUL-terminated"),
    # ---------------------------------------------------- clauses
    Case("missing RET", _raw(raw(Op.LDI, 1, 0, 0, 5)), verify="does not end in RET"),
    Case("clause outside code", _clause_patch(GOOD, 0, start=5), verify="outside the code"),
    Case("clause empty", _clause_patch(GOOD, 0, len=0), verify="outside the code"),
    Case("overlapping clauses", _clause_patch(TWO_BLOB, 1, start=1, len=1),
         verify="overlaps"),
    Case("code outside clauses", _clause_patch(TWO_BLOB, 1, start=3, len=1),
         verify="outside every clause"),
    Case("clause flags", _clause_patch(GOOD, 0, flags=1), verify="nonzero flags"),
    # ---------------------------------------------------- instructions
    Case("unknown opcode", _raw(raw(0xEE), raw(Op.RET)), verify="unknown opcode 0xee"),
    Case("unknown opcode 0x05", _raw(raw(0x05), raw(Op.RET)), verify="unknown opcode 0x5"),
    Case("bad register rd", _raw(raw(Op.LDI, 17, 0, 0, 1), raw(Op.RET)), verify="bad register r17"),
    Case("bad register ra", _raw(raw(Op.MOV, 1, 16), raw(Op.RET)), verify="bad register r16"),
    Case("bad register rb", _raw(raw(Op.ADD, 1, 2, 200), raw(Op.RET)), verify="bad register r200"),
    Case("nonzero unused rb", _raw(raw(Op.MOV, 1, 2, 3), raw(Op.RET)), verify="nonzero unused"),
    Case("nonzero unused imm", _raw(raw(Op.ADD, 1, 2, 3, 7), raw(Op.RET)), verify="nonzero unused"),
    Case("nonzero RET fields", _raw(raw(Op.RET, 1)), verify="nonzero unused"),
    Case("backward jump", _raw(raw(Op.NOP), raw(Op.JMP, 0, 0, 0, -2), raw(Op.RET)),
         verify="backward jump"),
    Case("jump to itself", _raw(raw(Op.JMP, 0, 0, 0, -1), raw(Op.RET)), verify="backward jump"),
    Case("jump out of range", _raw(raw(Op.JZ, 0, 1, 0, 1000), raw(Op.RET)),
         verify="jump out of clause"),
    Case("jump past RET", _raw(raw(Op.JMP, 0, 0, 0, 1), raw(Op.RET)), verify="jump out of clause"),
    Case("jump into another clause",
         (lambda p: (p.clause([raw(Op.JNZ, 0, 1, 0, 1), raw(Op.RET)]),
                     p.clause("ret"), p.build())[-1])(Prog()),
         verify="jump out of clause"),
    Case("LD size 3", _raw(raw(Op.LD, 1, 2, 3, 0), raw(Op.RET)), verify="load size 3"),
    Case("LD size 0", _raw(raw(Op.LD, 1, 2, 0, 0), raw(Op.RET)), verify="load size 0"),
    Case("unknown builtin", _raw(raw(Op.LDB, 1, 0, 0, 99), raw(Op.RET)), verify="unknown builtin"),
    Case("arg 10", _raw(raw(Op.ARG, 1, 0, 0, 10), raw(Op.RET)), verify="argument 10"),
    Case("STR outside table", _raw(raw(Op.STR, 1, 0, 0, 50), raw(Op.RET), strings=["ab"]),
         verify="outside the table"),
    Case("STR mid-string", _raw(raw(Op.STR, 1, 0, 0, 1), raw(Op.RET), strings=["abc"]),
         verify="not at a string start"),
    Case("STR negative", _raw(raw(Op.STR, 1, 0, 0, -1), raw(Op.RET), strings=["a"]),
         verify="outside the table"),
    Case("EXT width 12", _raw(raw(Op.EXT, 1, 2, 0, 12), raw(Op.RET)), verify="bad extension"),
    Case("EXT stray bits", _raw(raw(Op.EXT, 1, 2, 0, 0x208), raw(Op.RET)), verify="bad extension"),
    Case("unknown variable", _raw(raw(Op.LDG, 1, 0, 0, 0), raw(Op.RET)), verify="unknown variable 0"),
    Case("LDG on thread var", _blob("ldg r1, 0\nret", vars=[(Scope.THREAD, VarKind.INT, 0)]),
         verify="wrong scope"),
    Case("STT on global var", _blob("stt 0, r1\nret", vars=[(Scope.GLOBAL, VarKind.INT, 0)]),
         verify="wrong scope"),
    Case("LDL on assoc", _blob("ldl r1, 0\nret", vars=[(Scope.ASSOC, VarKind.INT, 1)]),
         verify="wrong scope"),
    Case("STA on clause var", _blob("sta 0, r1\nret", vars=[(Scope.CLAUSE, VarKind.INT, 0)]),
         verify="wrong scope"),
    Case("var bad scope", _blob("ret", vars=[(7, VarKind.INT, 0)]), verify="malformed"),
    Case("assoc without keys", _blob("ret", vars=[(Scope.ASSOC, VarKind.INT, 0)]),
         verify="key count"),
    Case("TPUSH type 3", _raw(raw(Op.TPUSH, 0, 1, 0, 3), raw(Op.RET)), verify="unknown type"),
    Case("unknown aggregation", _raw(raw(Op.AGG, 0, 1, 0, 0), raw(Op.RET)),
         verify="unknown aggregation 0"),
    Case("unknown record descriptor", _raw(raw(Op.RECB, 0, 0, 0, 3), raw(Op.RET), nrecdescs=3),
         verify="unknown record descriptor 3"),
    Case("bad helper", _raw(raw(Op.CALL, 1, 2, 0, 9), raw(Op.RET)), verify="unknown helper 9"),
    Case("helper arity overflow", _raw(raw(Op.CALL, 1, 14, 0, int(isa.Helper.SUBSTR)), raw(Op.RET)),
         verify="helper arguments past r15"),
    Case("lquantize step 0", _blob("ret", aggs=[(AggFunc.LQUANTIZE, 0, (0, 10, 0), 2)]),
         verify="step must be > 0"),
    Case("lquantize hi <= lo", _blob("ret", aggs=[(AggFunc.LQUANTIZE, 0, (10, 10, 1), 2)]),
         verify="high <= low"),
    Case("lquantize too many levels",
         _blob("ret", aggs=[(AggFunc.LQUANTIZE, 0, (0, 100000, 1), 100002)]),
         verify="levels"),
    Case("agg nwords mismatch", _blob("ret", aggs=[(AggFunc.AVG, 0, None, 1)]),
         verify="nwords mismatch"),
    Case("agg unknown func", _blob("ret", aggs=[(9, 0, None, 1)]), verify="malformed"),
    Case("agg too many keys", _blob("ret", aggs=[(AggFunc.COUNT, 9)]), verify="malformed"),
    # ---------------------------------------------------- run time
    Case("load from page 0", _blob("ld r1, r0, 8, 0\nret"), fault=F.BADADDR),
    Case("load from null+16", _blob("ldi r2, 16\nld r1, r2, 4, 0\nret"), fault=F.BADADDR),
    Case("load from MMIO", _blob("arg r2, 0\nld r1, r2, 4, 0\nret"), fault=F.BADADDR,
         args=(MMIO,)),
    Case("load from the aggregation arena", _blob("arg r2, 0\nld r1, r2, 8, 0\nret"),
         fault=F.BADADDR, args=lambda vm, i: (vm.arena(0),)),
    Case("load from the program itself", _blob("arg r2, 0\nld r1, r2, 8, 0\nret"),
         fault=F.BADADDR, args=lambda vm, i: (vm.arena(3),)),
    Case("load straddling the end of RAM", _blob("arg r2, 0\nld r1, r2, 8, 0\nret"),
         fault=F.BADADDR, args=(RAM_ADDR + 60,)),
    Case("load at wrapping address", _blob("ldi r2, -4\nld r1, r2, 8, 0\nret"), fault=F.BADADDR),
    Case("stringof past RAM", _blob("arg r2, 0\ncall r1, r2, STRINGOF\nret", strsize=256),
         fault=F.BADADDR, args=(RAM_ADDR + 40,), check=_stringof_check),
    Case("udiv by zero", _blob("ldi r1, 5\nudiv r3, r1, r2\nret"), fault=F.DIVZERO),
    Case("smod by zero", _blob("ldi r1, 5\nsmod r3, r1, r2\nret"), fault=F.DIVZERO),
    Case("string from a stray address", _blob("ldi r1, 4096\ncall r2, r1, STRLEN\nret"),
         fault=F.BADSTR),
    Case("string from 0", _blob("recb 0\nrecs r0\nrece\nret", nrecdescs=1), fault=F.BADSTR),
    Case("scratch overrun", _blob("str r1, \"" + "x" * 200 + "\"\n" +
                                  "mov r2, r1\ncall r1, r1, STRJOIN\n" * 40 + "ret", strsize=1024),
         fault=F.SCRATCH),
    Case("tuple too deep", _blob("tpush r1, 0\n" * 9 + "agg 0, r1\nret",
                                 aggs=[(AggFunc.COUNT, 8)]), fault=F.TUPLE),
    Case("tuple key count mismatch", _blob("tpush r1, 0\nagg 0, r1\nret",
                                           aggs=[(AggFunc.COUNT, 2)]), fault=F.TUPLE),
    Case("tuple too many bytes", _blob("str r1, \"" + "k" * 1000 + "\"\n" +
                                       "tpush r1, 1\n" * 3 + "agg 0, r1\nret",
                                       aggs=[(AggFunc.COUNT, 3)], strsize=1024),
         fault=F.TUPLE),
    Case("record too large", _blob("recb 0\n" + "recv r1\n" * 300 + "rece\nret", nrecdescs=1),
         fault=F.RECORD),
    Case("record never closed", _blob("recb 0\nrecv r1\nret", nrecdescs=1), fault=F.RECORD),
    Case("record value without RECB", _blob("recv r1\nret"), fault=F.RECORD),
    Case("nested RECB", _blob("recb 0\nrecb 0\nrece\nret", nrecdescs=1), fault=F.RECORD),
    Case("staging overflow", _blob(("recb 0\n" + "recv r1\n" * 200 + "rece\n") * 6 + "ret",
                                   nrecdescs=1), fault=F.RECORD),
    Case("aggregation table flood",
         _blob("arg r1, 0\ntpush r1, 0\nldi r2, 1\nagg 0, r2\nret",
               aggs=[(AggFunc.COUNT, 1)]),
         fault=F.NONE, args=lambda vm, i: (i,), check=_flood_check, runs=5000),
    Case("dynamic variable flood",
         _blob("arg r1, 0\ntpush r1, 0\nldi r2, 1\nsta 0, r2\nret",
               vars=[(Scope.ASSOC, VarKind.INT, 1)]),
         fault=F.NONE, args=lambda vm, i: (i,), check=_dyn_flood_check, runs=5000),
]
