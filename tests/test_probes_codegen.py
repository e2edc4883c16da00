"""Code generation (probes/codegen.py) from D source text, checked by running
the container in the reference interpreter (tests/isa_interp.py), which also
enforces the verifier's static rules.  Values come from the probe's
arguments (arg0, arg1...) so that sema's constant folding leaves the work to
the generated code.
"""
from __future__ import annotations


import pytest

from isa_interp import Machine, quantize_bucket, record_values
from probes import compiler, disasm, isa
from probes.diag import CompileError
from probes.program import Probe

PROBES = [Probe(1, "dtrace", "", "", "BEGIN"), Probe(2, "dtrace", "", "", "END"),
          Probe(18, "mem", "mm", "heap_alloc", "alloc", (("uint64_t", "size"),))]
M64 = (1 << 64) - 1


def compile_d(src: str):
    return compiler.compile_script(src, "t.d", PROBES)


def decode(p, payload: bytes, desc: int) -> list:
    return record_values(p, desc, payload)


def run_values(*exprs, mem=None, args=(), builtins=None):
    """trace() each D expression in a BEGIN clause; the values recorded."""
    p = compile_d("BEGIN { " + " ".join(f"trace({e});" for e in exprs) + " }")
    fired = Machine(p.blob, mem).fire(0, args=[a & M64 for a in args], builtins=builtins)
    if fired.fault:
        raise fired.fault
    return [decode(p, payload, desc)[0] for desc, payload in fired.records]


@pytest.mark.parametrize("op,a,b,t,want", [
    ("/", -7, 2, "int64_t", -3), ("%", -7, 2, "int64_t", -1), ("/", 7, -2, "int64_t", -3),
    ("/", -7, 2, "uint64_t", ((1 << 64) - 7) // 2), (">>", -16, 2, "int64_t", -4),
    (">>", -16, 2, "uint64_t", ((1 << 64) - 16) >> 2), ("<<", 1, 63, "int64_t", -(1 << 63)),
    ("-", 0, 1, "uint32_t", 0xffffffff), ("+", 0x7fffffff, 1, "int32_t", -(1 << 31)),
    ("*", 0x10000, 0x10000, "uint32_t", 0), ("&", 0xf0, 0x3c, "int64_t", 0x30),
    ("|", 0xf0, 0x0f, "int64_t", 0xff), ("^", 0xff, 0x0f, "int64_t", 0xf0),
    ("/", -(1 << 63), -1, "int64_t", -(1 << 63)), ("%", -(1 << 63), -1, "int64_t", 0),
])
def test_arithmetic_wraps_and_signedness(op, a, b, t, want):
    assert run_values(f"({t})arg0 {op} ({t})arg1", args=(a, b)) == [want]


@pytest.mark.parametrize("op,a,b,t,want", [
    ("<", -1, 1, "int64_t", 1), ("<", -1, 1, "uint64_t", 0), (">", -1, 1, "int64_t", 0),
    (">", -1, 1, "uint64_t", 1), ("<=", 3, 3, "int64_t", 1), (">=", 2, 3, "int64_t", 0),
    ("==", 5, 5, "int64_t", 1), ("!=", 5, 5, "int64_t", 0),
])
def test_comparisons_signed_and_unsigned(op, a, b, t, want):
    assert run_values(f"({t})arg0 {op} ({t})arg1", args=(a, b)) == [want]


def test_large_constants():
    vals = ["0x123456789abcdef0", "-2", "0x80000000", "-2147483648", "0x8000000000000000"]
    assert run_values(*vals) == [0x123456789abcdef0, -2, 0x80000000, -(1 << 31), 1 << 63]


def test_division_by_zero_faults_with_its_position_and_discards_records():
    src = "BEGIN\n{\n  trace(5);\n  trace(1 / arg0);\n}\n"
    p = compile_d(src)
    fired = Machine(p.blob).fire(0, args=[0])
    assert fired.fault.fault == isa.Fault.DIVZERO and fired.records == []
    pos = p.pos_of_pc(fired.fault.pc)
    assert (pos.line, pos.col) == (4, 9)


def test_casts_truncate_and_extend():
    assert run_values("(int8_t)arg0", "(uint32_t)arg1", "(int32_t)arg2",
                      args=(0x1ff, -1, 0x80000000)) == [-1, 0xffffffff, -(1 << 31)]


def test_short_circuit_skips_the_right_side():
    vals = run_values("arg0 && 1 / arg0", "7 || 1 / arg0", "arg1 && 9", "arg0 || arg0",
                      "arg1 ^^ arg0", "arg1 ^^ arg1", args=(0, 3))
    assert vals == [0, 1, 1, 0, 1, 0]


def test_ternary_evaluates_one_branch():
    assert run_values("arg1 ? 10 : 1 / arg0", "arg0 ? 1 / arg0 : 20",
                      'arg0 ? "yes" : "no"', args=(0, 1)) == [10, 20, b"no"]


def test_unary_ops():
    assert run_values("-(int64_t)arg0", "~(uint32_t)arg1", "!arg1", "!arg0",
                      args=(5, 0)) == [-5, 0xffffffff, 1, 0]


def test_loads_are_safe_sized_and_extended():
    mem = {0x1000: bytes([0xfe, 0xff, 0xff, 0xff, 1, 0, 0, 0])}
    assert run_values("*(int8_t *)arg0", "*(uint8_t *)arg0", "*(int32_t *)arg0",
                      "*(uint64_t *)arg0", "*(int32_t *)(arg0 + 4)", mem=mem,
                      args=(0x1000,)) == [-2, 0xfe, -2, 0x1fffffffe, 1]
    with pytest.raises(Exception) as e:
        run_values("*(uint64_t *)(arg0 + 4)", mem=mem, args=(0x1000,))
    assert e.value.fault == isa.Fault.BADADDR and e.value.addr == 0x1004


def test_string_helpers():
    vals = run_values('strjoin(probefunc, "cd")', "strlen(probefunc)",
                      "substr(probename, 1, 3)", "substr(probename, -2, -1)",
                      'index(probename, "ll")', 'probename < "hellp"',
                      'probename >= "hellp"', 'probefunc == "ab"',
                      builtins={"probefunc": "ab", "probename": "hello"})
    assert vals == [b"abcd", 2, b"ell", b"lo", 2, 1, 0, 1]


def test_stringof_copies_kernel_memory():
    assert run_values("stringof(arg0)", mem={0x2000: b"idle\0junk"},
                      args=(0x2000,)) == [b"idle"]


def test_variables_tuples_and_aggregations():
    src = ('mem:::alloc { n += 1; s = "str"; self->ts += 10; this->x = 3; '
           'a["k", arg0] += this->x; @c["k", arg0] = count(); @q = quantize(arg0); '
           'printf("%d %s %d", n, s, self->ts); }')
    p = compile_d(src)
    m = Machine(p.blob)
    assert m.c.clauses[0]["nlocals"] == 1
    for arg, tid in ((5, 1), (5, 2), (100, 1)):
        f = m.fire(0, args=[arg], tid=tid)
    assert decode(p, f.records[0][1], 0) == [3, b"str", 20]
    ai = next(i for i, v in enumerate(m.c.vars) if v["scope"] == isa.Scope.ASSOC)
    assert m.assoc == {(ai, (b"k", 5)): 6, (ai, (b"k", 100)): 3}
    assert m.aggs[(0, (b"k", 5))] == [2] and m.aggs[(0, (b"k", 100))] == [1]
    qw = m.aggs[(1, ())]
    assert len(qw) == isa.QUANTIZE_BUCKETS and qw[quantize_bucket(5)] == 2 \
        and qw[quantize_bucket(100)] == 1 and sum(qw) == 3


def test_post_and_pre_increment():
    assert run_values("n++", "n++", "n", "++n", "--n") == [0, 1, 2, 3, 2]


def test_predicate_false_skips_actions_and_exit():
    p = compile_d("mem:::alloc /arg0 == 1/ { trace(1); exit(3); }")
    m = Machine(p.blob)
    assert m.fire(0, args=[0]).records == [] and m.fire(0, args=[0]).exit is None
    f = m.fire(0, args=[1])
    assert len(f.records) == 1 and f.exit == 3


def test_if_else():
    p = compile_d("mem:::alloc { if ((int64_t)arg0 < 0) { trace(-1); } else trace(1); }")
    m = Machine(p.blob)
    got = [m.fire(0, args=[a & M64]).records[0] for a in (-5, 5)]
    assert [decode(p, payload, desc) for desc, payload in got] == [[-1], [1]]


def test_too_complex_expression_is_an_error():
    e = "arg0"
    for _ in range(20):
        e = f"arg0 + ({e})"           # right-nested: every left value stays live
    with pytest.raises(CompileError) as ex:
        compile_d(f"BEGIN {{ trace({e}); }}")
    assert [d.message for d in ex.value.diagnostics] == ["expression too complex"]


def test_lines_map_every_pc_and_disassembly_lists_it():
    p = compile_d("BEGIN\n{\n    trace(7);\n}\n")
    m = Machine(p.blob)
    lines = p.clauses[0].lines
    assert set(lines) == set(range(m.c.ninsns))
    assert {(pos.line, pos.col) for pos in lines.values()} >= {(3, 5), (3, 11)}
    text = disasm.disassemble(p.blob)
    assert "ldi r0, 7" in text and "recb 0" in text and text.rstrip().endswith("ret")
    assert disasm.disassemble(b"junk").startswith("error: not a program container")
