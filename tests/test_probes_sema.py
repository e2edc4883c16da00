"""Semantic analysis (probes/sema.py, semaexpr.py, actions.py, probematch.py)
and the compiler driver, on hand-made syntax trees (the parser's node
names; switch to source text when probes/parser.py lands), checked by
running the result in tests/isa_interp.py and by the exact error texts.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import pytest

from isa_interp import Machine
from probes import compiler, isa, options, probematch, sema
from probes.program import Pos, Probe

P = Pos("t.d", 1, 1)
PROBES = [Probe(1, "dtrace", "", "", "BEGIN"), Probe(2, "dtrace", "", "", "END"),
          Probe(3, "dtrace", "", "", "ERROR"),
          Probe(16, "sched", "sched", "sched_switch", "switch",
                (("struct thread *", "prev"), ("uint32_t", "cpu"), ("const char *", "name"))),
          Probe(17, "sched", "sched", "sched_wakeup", "wakeup", (("int32_t", "tid"),)),
          Probe(18, "mem", "mm", "heap_alloc", "alloc", (("uint64_t", "size"),))]


# ---- the parser's node shapes (hand-made trees)
@dataclass
class Int:
    value: int
    pos: Pos = P


@dataclass
class Str:
    value: str
    pos: Pos = P


@dataclass
class Ident:
    name: str
    pos: Pos = P


@dataclass
class KernelSym:
    name: str
    pos: Pos = P


@dataclass
class Binary:
    op: str
    left: object
    right: object
    pos: Pos = P


@dataclass
class Call:
    name: str
    args: list = field(default_factory=list)
    pos: Pos = P


@dataclass
class AggRef:
    name: str
    pos: Pos = P


@dataclass
class AggAssign:
    name: str
    keys: list
    value: Call
    pos: Pos = P


@dataclass
class Assign:
    target: object
    op: str
    value: object
    pos: Pos = P


@dataclass
class Index:
    base: object
    keys: list
    pos: Pos = P


@dataclass
class Member:
    base: object
    name: str
    arrow: bool
    pos: Pos = P


@dataclass
class Desc:
    text: str
    pos: Pos = P


@dataclass
class Clause:
    probes: list
    predicate: object = None
    body: list = field(default_factory=list)
    pos: Pos = P


@dataclass
class Script:
    clauses: list
    pragmas: list = field(default_factory=list)


def prog(*clauses, types=None, opts=None):
    return compiler.compile_ast(Script(list(clauses)), "", "t.d", PROBES, types, opts)


def errors(*clauses, types=None):
    an = sema.analyze(Script(list(clauses)), PROBES, types)
    return [(d.message, d.hints) for d in an.errors]


def test_probe_matching_globs_lists_and_ticks():
    assert [p.id for p, _ in probematch.match("sched:::*", PROBES)] == [16, 17]
    assert [p.id for p, _ in probematch.match("BEGIN", PROBES)] == [1]
    assert [p.id for p, _ in probematch.match("*:mm::", PROBES)] == [18]
    assert probematch.match("tick-10ms", PROBES) == [(probematch.TICK_PROBE, 10**7)]
    assert probematch.match("profile:::tick-100", PROBES)[0][1] == 10**7
    assert probematch.tick_period("tick-2s") == 2 * 10**9
    with pytest.raises(ValueError):
        probematch.tick_period("tick-5parsecs")
    p = prog(Clause([Desc("sched:::switch"), Desc("sched:::w*"), Desc("tick-1s")]))
    assert p.enablings == [(0, 16, 0), (0, 17, 0), (0, isa.SynthProbe.TICK, 10**9)]


def test_unknown_probe_names_closest():
    assert errors(Clause([Desc("sched:::swtch")])) == [
        ("probe description sched:::swtch does not match any probe",
         ["did you mean sched:sched:sched_switch:switch?"])]


def test_printf_checked_against_format():
    c = Clause([Desc("BEGIN")], body=[Call("printf", [Str("%d %s\n"), Int(1)])])
    assert errors(c) == [("printf() format has 2 conversion arguments but 1 was given",
                          ['the format is "%d %s\n"'])]
    c = Clause([Desc("BEGIN")], body=[Call("printf", [Str("%d\n"), Str("x")])])
    assert errors(c) == [("the argument for %d must be an integer, not a string",
                          ["use strlen() for its length"])]


def test_stack_is_reserved():
    c = Clause([Desc("BEGIN")], body=[Call("stack")])
    assert errors(c)[0][0] == ("stack() is not available yet (comes with "
                               "function-boundary tracing)")


def test_compiled_printf_with_typed_args_runs():
    body = [Call("printf", [Str("%u %d %s\n"), Index(Ident("args"), [Int(1)]),
                            Binary("-", Int(0), Int(5)), Index(Ident("args"), [Int(2)])])]
    p = prog(Clause([Desc("sched:::switch")], body=body))
    rd = p.recdescs[0]
    assert rd.kind == "printf" and [v.kind for v in rd.args] == ["int", "int", "string"]
    assert rd.args[0].size == 4 and not rd.args[0].signed
    m = Machine(p.blob, {0x5000: b"worker\0"})
    f = m.fire(0, args=[0, 0x1_0000_0007, 0x5000])
    payload = f.records[0][1]
    assert struct.unpack_from("<Qq", payload) == (7, -5)
    assert payload[16:16 + 8] == b"\x06\x00worker"


def test_globals_assoc_and_aggregation_types():
    body = [Assign(Ident("n"), "+=", Int(2)) if False else Assign(Ident("n"), "=", Int(2)),
            Assign(Index(Ident("seen"), [Ident("probename")]), "=", Ident("n")),
            AggAssign("c", [Ident("probename")], Call("count")),
            AggAssign("q", [], Call("lquantize", [Ident("arg0"), Int(0), Int(10), Int(2)]))]
    p = prog(Clause([Desc("sched:::*")], body=body))
    assert p.aggs[1].lq == (0, 10, 2) and p.aggs[0].keys[0].kind == "string"
    m = Machine(p.blob)
    m.fire(0, args=[3], builtins={"probename": "switch"})
    m.fire(0, args=[30], builtins={"probename": "switch"})
    assert m.aggs[(0, (b"switch",))] == [2]
    assert m.aggs[(1, ())] == [0, 0, 1, 0, 0, 0, 1]


def test_conflicting_uses_are_errors():
    body = [Assign(Ident("x"), "=", Int(1)), Assign(Ident("x"), "=", Str("s")),
            AggAssign("a", [], Call("count")), AggAssign("a", [], Call("sum", [Int(1)])),
            Call("printa", [AggRef("nope")])]
    msgs = [m for m, _ in errors(Clause([Desc("BEGIN")], body=body))]
    assert msgs == ["x holds 'int64_t' but is assigned a string",
                    "@a is count() but is used with sum()",
                    "unknown aggregation @nope"]


def test_options_defaults_pragmas_and_errors():
    assert options.parse_option("bufsize", "4m") == 4 << 20
    assert options.parse_option("switchrate", "100ms") == 10
    assert options.parse_option("quiet", None) is True
    with pytest.raises(options.OptionError) as e:
        options.parse_option("bufsz", "1k")
    assert e.value.hint.startswith("valid options: aggsize, bufsize")
    p = prog(Clause([Desc("BEGIN")]), opts={"strsize": "64"})
    assert p.options["strsize"] == 64 and p.options["bufsize"] == 256 << 10
    assert p.recdescs[0].kind == "default"


@pytest.fixture(scope="module")
def typedb(demo_elf):
    from introspect.dwarf import TypeDB
    return TypeDB.from_elf(demo_elf)


def test_kernel_symbols_and_members_from_dwarf(typedb):
    addr, ct = typedb.global_var("crc32_nibble")
    body = [Call("trace", [Index(KernelSym("crc32_nibble"), [Int(3)])])]
    p = prog(Clause([Desc("BEGIN")], body=body), types=typedb)
    m = Machine(p.blob, {addr: struct.pack("<16I", *range(100, 116))})
    assert m.fire(0).records[0][1] == struct.pack("<Q", 103)
    off = typedb.parse_type("struct thread").member("name").offset
    body = [Call("trace", [Member(Index(Ident("args"), [Int(0)]), "name", True)])]
    p = prog(Clause([Desc("sched:::switch")], body=body), types=typedb)
    assert p.recdescs[0].args[0].kind == "string"
    m = Machine(p.blob, {0x9000: bytes(off) + b"idle\0"})
    assert m.fire(0, args=[0x9000]).records[0][1][:6] == b"\x04\x00idle"
    bad = Clause([Desc("sched:::switch")],
                 body=[Call("trace", [Member(Index(Ident("args"), [Int(0)]), "nmae", True)])])
    assert errors(bad, types=typedb) == [("'struct thread' has no member 'nmae'",
                                          ["did you mean 'name'?"])]
