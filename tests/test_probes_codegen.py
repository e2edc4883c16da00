"""Code generation (probes/codegen.py), checked by running the container in
the reference interpreter (tests/isa_interp.py), which also enforces the
verifier's static rules.  The first half builds typed trees by hand (the
codegen pass alone); the second compiles D source end to end.
"""
from __future__ import annotations

import struct

import pytest

from isa_interp import Machine, VMFault, quantize_bucket, s64
from probes import codegen, disasm, ir, isa
from probes.dtypes import CHAR, I64, INT, INT32, STRING, U64
from probes.program import Pos

P = Pos("t.d", 1, 1)
U32 = INT(4, False, "uint32_t")
I8 = INT(1, True, "int8_t")


def C(v, t=I64):
    return ir.Const(t, P, value=v)


def B(op, a, b, t=I64, signed=None):
    return ir.Binary(t, P, op=op, a=a, b=b, signed=t.signed if signed is None else signed)


def S(s: bytes):
    return ir.Str(STRING, P, value=s)


def run_values(*exprs, mem=None, args=(), builtins=None):
    """Record exprs in one printf-like record; return the decoded values."""
    clause = ir.ClauseIR(None, [ir.Record(0, list(exprs), P)], P)
    g = codegen.generate([clause], [], [], 1, 64)
    fired = Machine(g.blob, mem).fire(0, args=args, builtins=builtins)
    if fired.fault:
        raise fired.fault
    return decode(fired.records[0][1], exprs)


def decode(payload: bytes, exprs) -> list:
    out, off = [], 0
    for e in exprs:
        if e.t.is_string:
            n = struct.unpack_from("<H", payload, off)[0]
            out.append(payload[off + 2:off + 2 + n])
            off += (2 + n + 7) // 8 * 8
        else:
            v = struct.unpack_from("<Q", payload, off)[0]
            out.append(s64(v) if e.t.signed else v)
            off += 8
    return out


@pytest.mark.parametrize("op,a,b,t,want", [
    ("/", -7, 2, I64, -3), ("%", -7, 2, I64, -1), ("/", 7, -2, I64, -3),
    ("/", -7, 2, U64, ((1 << 64) - 7) // 2), (">>", -16, 2, I64, -4),
    (">>", -16, 2, U64, ((1 << 64) - 16) >> 2), ("<<", 1, 63, I64, -(1 << 63)),
    ("-", 0, 1, U32, 0xffffffff), ("+", 0x7fffffff, 1, INT32, -(1 << 31)),
    ("*", 0x10000, 0x10000, U32, 0), ("&", 0xf0, 0x3c, I64, 0x30),
    ("|", 0xf0, 0x0f, I64, 0xff), ("^", 0xff, 0x0f, I64, 0xf0),
    ("/", -(1 << 63), -1, I64, -(1 << 63)), ("%", -(1 << 63), -1, I64, 0),
])
def test_arithmetic_wraps_and_signedness(op, a, b, t, want):
    assert run_values(B(op, C(a, t), C(b, t), t)) == [want]


@pytest.mark.parametrize("op,a,b,signed,want", [
    ("<", -1, 1, True, 1), ("<", -1, 1, False, 0), (">", -1, 1, True, 0),
    (">", -1, 1, False, 1), ("<=", 3, 3, True, 1), (">=", 2, 3, True, 0),
    ("==", 5, 5, True, 1), ("!=", 5, 5, True, 0),
])
def test_comparisons_signed_and_unsigned(op, a, b, signed, want):
    e = B(op, C(a), C(b), INT32, signed=signed)
    assert run_values(e) == [want]


def test_large_constants_use_ldih():
    vals = [0x123456789abcdef0, -2, 0x80000000, -(1 << 31), (1 << 63)]
    assert run_values(*[C(v, U64 if v > 0 else I64) for v in vals]) == \
        [v for v in vals]


def test_division_by_zero_faults_with_pc_and_discards_records():
    e = B("/", C(1), C(0))
    clause = ir.ClauseIR(None, [ir.Record(0, [C(5)], P), ir.Record(0, [e], P)], P)
    g = codegen.generate([clause], [], [], 1, 64)
    fired = Machine(g.blob).fire(0)
    assert fired.fault.fault == isa.Fault.DIVZERO and fired.records == []
    assert isa.decode(g.blob[_code_off(g.blob):], fired.fault.pc)[0] == isa.Op.SDIV


def _code_off(blob: bytes) -> int:
    h = isa.PROG_HDR.unpack(blob)
    return (isa.PROG_HDR.size + h["nclauses"] * isa.PROG_CLAUSE.size
            + h["nvars"] * isa.PROG_VAR.size + h["naggs"] * isa.PROG_AGG.size)


def test_casts_truncate_and_extend():
    assert run_values(ir.Cast(I8, P, a=C(0x1ff)), ir.Cast(U32, P, a=C(-1)),
                      ir.Cast(INT32, P, a=C(0x80000000, U64))) == [-1, 0xffffffff, -(1 << 31)]


def test_short_circuit_skips_the_right_side():
    # 0 && (1/0) and 1 || (1/0) never divide; results are 0/1
    div0 = B("/", C(1), C(0))
    vals = run_values(ir.Logical(INT32, P, op="&&", a=C(0), b=div0),
                      ir.Logical(INT32, P, op="||", a=C(7), b=div0),
                      ir.Logical(INT32, P, op="&&", a=C(3), b=C(9)),
                      ir.Logical(INT32, P, op="||", a=C(0), b=C(0)),
                      ir.Logical(INT32, P, op="^^", a=C(3), b=C(0)),
                      ir.Logical(INT32, P, op="^^", a=C(3), b=C(4)))
    assert vals == [0, 1, 1, 0, 1, 0]


def test_ternary_evaluates_one_branch():
    div0 = B("/", C(1), C(0))
    assert run_values(ir.Cond(I64, P, c=C(1), a=C(10), b=div0),
                      ir.Cond(I64, P, c=C(0), a=div0, b=C(20)),
                      ir.Cond(STRING, P, c=C(0), a=S(b"yes"), b=S(b"no"))) == [10, 20, b"no"]


def test_unary_ops():
    assert run_values(ir.Unary(I64, P, op="-", a=C(5)), ir.Unary(U32, P, op="~", a=C(0, U32)),
                      ir.Unary(INT32, P, op="!", a=C(0)), ir.Unary(INT32, P, op="!", a=C(9))) == \
        [-5, 0xffffffff, 1, 0]


def test_loads_are_safe_sized_and_extended():
    mem = {0x1000: bytes([0xfe, 0xff, 0xff, 0xff, 1, 0, 0, 0])}
    ld = lambda t, off: ir.Load(t, P, addr=C(0x1000, U64), offset=off)   # noqa: E731
    assert run_values(ld(I8, 0), ld(INT(1, False, "uint8_t"), 0), ld(INT32, 0),
                      ld(U64, 0), ld(INT32, 4), mem=mem) == \
        [-2, 0xfe, -2, 0x1fffffffe, 1]
    with pytest.raises(VMFault) as e:
        run_values(ld(U64, 4), mem=mem)
    assert e.value.fault == isa.Fault.BADADDR and e.value.addr == 0x1004


def test_string_helpers():
    def call(h, *a, t=STRING):
        return ir.Call(t, P, helper=h, args=list(a))
    H = isa.Helper
    vals = run_values(call(H.STRJOIN, S(b"ab"), S(b"cd")),
                      call(H.STRLEN, S(b"hello"), t=I64),
                      call(H.SUBSTR, S(b"hello"), C(1), C(3)),
                      call(H.SUBSTR, S(b"hello"), C(-2), C(-1)),
                      call(H.INDEX, S(b"hello"), S(b"ll"), t=I64),
                      ir.StrCmp(INT32, P, op="<", a=S(b"abc"), b=S(b"abd")),
                      ir.StrCmp(INT32, P, op=">=", a=S(b"abc"), b=S(b"abd")),
                      ir.StrCmp(INT32, P, op="==", a=S(b"x"), b=S(b"x")))
    assert vals == [b"abcd", 5, b"ell", b"lo", 2, 1, 0, 1]


def test_stringof_copies_kernel_memory():
    mem = {0x2000: b"idle\0junk"}
    e = ir.Call(STRING, P, helper=isa.Helper.STRINGOF, args=[C(0x2000, U64)])
    assert run_values(e, mem=mem) == [b"idle"]


def test_variables_tuples_and_aggregations():
    g = ir.VarInfo("n", isa.Scope.GLOBAL, I64)
    s = ir.VarInfo("s", isa.Scope.GLOBAL, STRING)
    t = ir.VarInfo("ts", isa.Scope.THREAD, I64)
    loc = ir.VarInfo("x", isa.Scope.CLAUSE, I64)
    a = ir.VarInfo("a", isa.Scope.ASSOC, I64, keys=[STRING, I64])
    agg = ir.AggInfo("c", isa.AggFunc.COUNT, [STRING, I64], index=0)
    q = ir.AggInfo("q", isa.AggFunc.QUANTIZE, [], index=1)
    V = lambda v: ir.Var(v.type, P, var=v)      # noqa: E731
    keys = [S(b"k"), ir.Arg(I64, P, n=0)]
    body = [ir.ExprStmt(ir.Assign(I64, P, target=V(g), value=B("+", V(g), C(1)))),
            ir.ExprStmt(ir.Assign(STRING, P, target=V(s), value=S(b"str"))),
            ir.ExprStmt(ir.Assign(I64, P, target=V(t), value=B("+", V(t), C(10)))),
            ir.ExprStmt(ir.Assign(I64, P, target=V(loc), value=C(3))),
            ir.ExprStmt(ir.Assign(I64, P, target=ir.Assoc(I64, P, var=a, keys=keys),
                                  value=B("+", ir.Assoc(I64, P, var=a, keys=keys), V(loc)))),
            ir.Aggregate(agg, keys, None, P),
            ir.Aggregate(q, [], ir.Arg(I64, P, n=0), P),
            ir.Record(0, [V(g), V(s), V(t)], P)]
    g_ = codegen.generate([ir.ClauseIR(None, body, P)], [g, s, t, loc, a], [agg, q], 1, 64)
    m = Machine(g_.blob)
    assert g_.var_index[loc] == 0 and m.c.clauses[0]["nlocals"] == 1
    for arg, tid in ((5, 1), (5, 2), (100, 1)):
        f = m.fire(0, args=[arg], tid=tid)
    assert decode(f.records[0][1], [V(g), V(s), V(t)]) == [3, b"str", 20]
    ai = g_.var_index[a]
    assert m.assoc == {(ai, (b"k", 5)): 6, (ai, (b"k", 100)): 3}
    assert m.aggs[(0, (b"k", 5))] == [2] and m.aggs[(0, (b"k", 100))] == [1]
    qw = m.aggs[(1, ())]
    assert len(qw) == isa.QUANTIZE_BUCKETS and qw[quantize_bucket(5)] == 2 \
        and qw[quantize_bucket(100)] == 1 and sum(qw) == 3


def test_post_increment_yields_old_value():
    g = ir.VarInfo("n", isa.Scope.GLOBAL, I64)
    V = ir.Var(I64, P, var=g)
    inc = ir.Assign(I64, P, target=V, value=B("+", V, C(1)), post=True)
    body = [ir.Record(0, [inc, inc, V], P)]
    gen = codegen.generate([ir.ClauseIR(None, body, P)], [g], [], 1, 64)
    f = Machine(gen.blob).fire(0)
    assert decode(f.records[0][1], [V, V, V]) == [0, 1, 2]


def test_predicate_false_skips_actions_and_exit():
    pred = B("==", ir.Arg(I64, P, n=0), C(1))
    body = [ir.Record(0, [C(1)], P), ir.Exit(C(3), P)]
    g = codegen.generate([ir.ClauseIR(pred, body, P)], [], [], 1, 64)
    m = Machine(g.blob)
    assert m.fire(0, args=[0]).records == [] and m.fire(0, args=[0]).exit is None
    f = m.fire(0, args=[1])
    assert len(f.records) == 1 and f.exit == 3


def test_if_else():
    body = [ir.If(B("<", ir.Arg(I64, P, n=0), C(0)), [ir.Record(0, [C(-1)], P)],
                  [ir.Record(0, [C(1)], P)], P)]
    g = codegen.generate([ir.ClauseIR(None, body, P)], [], [], 1, 64)
    m = Machine(g.blob)
    assert decode(m.fire(0, args=[-5]).records[0][1], [C(0)]) == [-1]
    assert decode(m.fire(0, args=[5]).records[0][1], [C(0)]) == [1]


def test_too_complex_expression_is_an_error():
    e = C(1)
    for i in range(20):
        e = B("+", C(i), e)           # right-nested: every left value stays live
    with pytest.raises(codegen.CodegenError) as ex:
        codegen.generate([ir.ClauseIR(None, [ir.ExprStmt(e)], P)], [], [], 0, 64)
    assert ex.value.message == "expression too complex"


def test_lines_map_every_pc_and_disassembly_lists_it():
    p2 = Pos("t.d", 2, 5, 3)
    body = [ir.Record(0, [ir.Const(I64, p2, value=7)], P)]
    g = codegen.generate([ir.ClauseIR(None, body, P)], [], [], 1, 64)
    m = Machine(g.blob)
    assert set(g.lines[0]) == set(range(m.c.ninsns))
    assert g.lines[0][1] == p2
    text = disasm.disassemble(g.blob)
    assert "ldi r0, 7" in text and "recb 0" in text and text.rstrip().endswith("ret")
    assert disasm.disassemble(b"junk").startswith("error: not a program container")
