"""Semantic analysis (probes/sema.py, semaexpr.py, actions.py, probematch.py)
and the compiler driver, from D source text: what a script computes is
checked by running the compiled container in tests/isa_interp.py, and the
errors by their exact texts (the complete rendered diagnostics are golden
tests in tests/test_probes_errors.py).
"""
from __future__ import annotations

import struct

import pytest

from isa_interp import Machine, record_values
from probes import compiler, isa, options, probematch
from probes.diag import CompileError
from probes.program import Probe

PROBES = [Probe(1, "dtrace", "", "", "BEGIN"), Probe(2, "dtrace", "", "", "END"),
          Probe(3, "dtrace", "", "", "ERROR"),
          Probe(16, "sched", "sched", "sched_switch", "switch",
                (("struct thread *", "prev"), ("uint32_t", "cpu"), ("const char *", "name"))),
          Probe(17, "sched", "sched", "sched_wakeup", "wakeup", (("int32_t", "tid"),)),
          Probe(18, "mem", "mm", "heap_alloc", "alloc", (("uint64_t", "size"),))]


def prog(src, types=None, opts=None):
    return compiler.compile_script(src, "t.d", PROBES, types, opts)


def errors(src, types=None):
    """(message, hints) of every diagnostic compiling src gives ([] if none)."""
    try:
        prog(src, types)
    except CompileError as e:
        return [(d.message, d.hints) for d in e.diagnostics]
    return []


def run(src, clause=0, mem=None, **kw):
    """Compile src, fire one clause, return (program, machine, fired)."""
    p = prog(src)
    m = Machine(p.blob, mem)
    return p, m, m.fire(clause, **kw)


def values(p, fired, i=0):
    """The decoded values of record i of a firing (ints signed per type)."""
    desc, payload = fired.records[i]
    return record_values(p, desc, payload)


# ------------------------------------------------------------ probes
def test_probe_matching_globs_lists_and_ticks():
    assert [p.id for p, _ in probematch.match("sched:::*", PROBES)] == [16, 17]
    assert [p.id for p, _ in probematch.match("BEGIN", PROBES)] == [1]
    assert [p.id for p, _ in probematch.match("*:mm::", PROBES)] == [18]
    tick = probematch.match("tick-10ms", PROBES)
    assert [(p.id, p.name, arg) for p, arg in tick] == [(int(isa.SynthProbe.TICK),
                                                         "tick-10ms", 10**7)]
    assert probematch.match("profile:::tick-100", PROBES)[0][1] == 10**7
    assert probematch.tick_period("tick-2s") == 2 * 10**9
    with pytest.raises(ValueError):
        probematch.tick_period("tick-5parsecs")
    p = prog("sched:::switch, sched:::w*, tick-1s { }")
    assert p.enablings == [(0, 16, 0), (0, 17, 0), (0, isa.SynthProbe.TICK, 10**9)]


def test_unknown_probe_names_closest():
    assert errors("sched:::swtch { }") == [
        ("probe description sched:::swtch does not match any probe",
         ["did you mean sched:sched:sched_switch:switch?"])]


def test_default_action_only_without_statements():
    assert [r.kind for r in prog("BEGIN").recdescs] == ["default"]
    assert [r.kind for r in prog("BEGIN {}").recdescs] == ["default"]
    assert prog("BEGIN { x = 1; }").recdescs == []


# ------------------------------------------------------------ actions
def test_printf_checked_against_format():
    assert errors('BEGIN { printf("%d %s\\n", 1); }') == [
        ("printf() format has 2 conversion arguments but 1 was given",
         ['the format is "%d %s\\n"'])]
    assert errors('BEGIN { printf("%d\\n", "x"); }') == [
        ("the argument for %d must be an integer, not a string",
         ["use strlen() for its length"])]


def test_stack_keys_aggregations_and_is_traced_not_stored():
    assert errors("BEGIN { @[stack(), 1] = count(); stack(5); trace(stack()); }") == []
    assert [m for m, _ in errors("BEGIN { x = stack(); }")] == \
        ["cannot store 'stack' in a variable"]
    assert [m for m, _ in errors("BEGIN { stack(0); }")] == \
        ["stack(0) asks for 0 frames; the VM records 1 to 32"]
    assert [m for m, _ in errors("BEGIN { stack(arg0); }")] == \
        ["the argument of stack() must be an integer constant"]


def test_compiled_printf_with_typed_args_runs():
    p = prog('sched:::switch { printf("%u %d %s\\n", args[1], 0 - 5, args[2]); }')
    rd = p.recdescs[0]
    assert rd.kind == "printf" and [v.kind for v in rd.args] == ["int", "int", "string"]
    assert rd.args[0].size == 4 and not rd.args[0].signed
    f = Machine(p.blob, {0x5000: b"worker\0"}).fire(0, args=[0, 0x1_0000_0007, 0x5000])
    assert values(p, f) == [7, -5, b"worker"]


def test_exit_trace_and_predicate():
    p, m, f = run("mem:::alloc /arg0 > 100/ { trace(arg0); exit(arg0 - 100); }",
                  args=[150])
    assert values(p, f) == [150] and f.exit == 50
    f = m.fire(0, args=[5])
    assert f.records == [] and f.exit is None


# ------------------------------------------------------------ variables
def test_globals_assoc_and_aggregation_types():
    p = prog("sched:::* { n = 2; seen[probename] = n; @c[probename] = count(); "
             "@q = lquantize(arg0, 0, 10, 2); }")
    assert p.aggs[1].lq == (0, 10, 2) and p.aggs[0].keys[0].kind == "string"
    m = Machine(p.blob)
    m.fire(0, args=[3], builtins={"probename": "switch"})
    m.fire(0, args=[30], builtins={"probename": "switch"})
    assert m.aggs[(0, (b"switch",))] == [2]
    assert m.aggs[(1, ())] == [0, 0, 1, 0, 0, 0, 1]


def test_self_and_this_scoping():
    src = ("mem:::alloc { this->x = arg0 * 2; self->total += this->x; n++; }\n"
           "mem:::alloc { trace(self->total); trace(n); }")
    p = prog(src)
    m = Machine(p.blob)
    for tid, arg in ((1, 5), (2, 7), (1, 10)):
        m.fire(0, args=[arg], tid=tid)
    assert values(p, m.fire(1, tid=1), 0) == [30] and values(p, m.fire(1, tid=2), 1) == [3]
    # a clause-local starts at zero in every firing
    p, m, f = run("mem:::alloc { this->x += arg0; trace(this->x); }", args=[4])
    assert values(p, f) == [4] and values(p, m.fire(0, args=[4])) == [4]
    assert errors("BEGIN { trace(self->never); }") == [
        ("self->never is used before any assignment to it",
         ["assign it first, e.g. self->never = 0"])]


def test_assoc_arrays_keyed_by_tuples():
    src = 'mem:::alloc { a[probefunc, arg0 % 2] += arg0; c["all"]++; }\n' \
          'END { trace(a["heap_alloc", 1]); trace(a["heap_alloc", 0]); trace(c["all"]); }'
    p = prog(src)
    m = Machine(p.blob)
    for v in (1, 2, 3, 4):
        m.fire(0, args=[v], builtins={"probefunc": "heap_alloc"})
    f = m.fire(1)
    assert [values(p, f, i)[0] for i in range(3)] == [4, 6, 4]
    assert errors('BEGIN { a[1] = 2; trace(a["x"]); }') == [
        ("a is keyed by [int] but used with [string]",
         ["its type was fixed at line 1, column 9"])]


def test_strings_functions_and_comparison():
    src = ('BEGIN { s = "hello"; t = strjoin(s, " world"); '
           'printf("%s %d %s %s %d %d %d\\n", t, strlen(t), substr(t, 6), strstr(t, "wor"), '
           's == "hello", s < "help", t != s); }')
    p, _, f = run(src)
    assert values(p, f) == [b"hello world", 11, b"world", b"world", 1, 1, 1]


def test_casts_ternary_sizeof_and_operators():
    src = ("BEGIN { trace((uint8_t)257); trace((int8_t)255); trace(sizeof(uint32_t)); "
           "trace(1 ? 10 : 20); trace(-7 / 2); trace(-7 % 2); trace((uint64_t)1 << 40); trace(1 << 40); "
           "trace(~0 == -1); trace(5 ^^ 0); trace(!3); }")
    p, _, f = run(src)
    assert [values(p, f, i)[0] for i in range(11)] == [1, -1, 4, 10, -3, -1, 1 << 40, 0,
                                                      1, 1, 0]


def test_kernel_load_with_a_cast():
    p, _, f = run("BEGIN { trace(*(uint32_t *)0x1000); trace(*(int16_t *)(0x1000 + 4)); }",
                  mem={0x1000: struct.pack("<Ih", 0xdeadbeef, -2)})
    assert [values(p, f, i)[0] for i in range(2)] == [0xdeadbeef, -2]
    _, _, f = run("BEGIN { trace(*(uint64_t *)0); }")
    assert f.fault.fault == isa.Fault.BADADDR and f.fault.addr == 0


def test_conflicting_uses_are_errors():
    src = 'BEGIN { x = 1; x = "s"; @a = count(); @a = sum(1); printa(@nope); }'
    assert [m for m, _ in errors(src)] == [
        "x holds 'int64_t' but is assigned a string",
        "@a is count() but is used with sum()",
        "unknown aggregation @nope"]


def test_aggregation_misuse_is_an_error():
    assert [m for m, _ in errors("BEGIN { @a = count(); x = @a + 1; y = @a[1]; }")] == \
        ["@a cannot be used as a value", "@a[...] cannot be used as a value"]
    assert [m for m, _ in errors("BEGIN { @a = count(); trace(@a); }")] == \
        ["trace() records an integer, a string or a stack(), not an aggregation"]
    assert [m for m, _ in errors("BEGIN { @a = strlen(\"x\"); }")] == \
        ["strlen() is not an aggregating function"]
    assert [m for m, _ in errors("BEGIN { x = count(); }")] == \
        ["count() is an action, not a value"]


# ------------------------------------------------------------ options
def test_options_defaults_pragmas_and_errors():
    assert options.parse_option("bufsize", "4m") == 4 << 20
    assert options.parse_option("switchrate", "100ms") == 10
    assert options.parse_option("quiet", None) is True
    with pytest.raises(options.OptionError) as e:
        options.parse_option("bufsz", "1k")
    assert e.value.hint.startswith("valid options: aggsize, bufsize")
    p = prog("BEGIN", opts={"strsize": "64"})
    assert p.options["strsize"] == 64 and p.options["bufsize"] == 256 << 10
    p = prog("#pragma D option quiet\n#pragma D option bufsize=1m\nBEGIN")
    assert p.options["quiet"] is True and p.options["bufsize"] == 1 << 20


# ------------------------------------------------------------ kernel types
@pytest.fixture(scope="module")
def typedb(demo_elf):
    from introspect.dwarf import TypeDB
    return TypeDB.from_elf(demo_elf)


def test_kernel_symbols_and_members_from_dwarf(typedb):
    addr, ct = typedb.global_var("crc32_nibble")
    p = prog("BEGIN { trace(`crc32_nibble[3]); }", types=typedb)
    m = Machine(p.blob, {addr: struct.pack("<16I", *range(100, 116))})
    assert m.fire(0).records[0][1] == struct.pack("<Q", 103)
    off = typedb.parse_type("struct thread").member("name").offset
    p = prog("sched:::switch { trace(args[0]->name); }", types=typedb)
    assert p.recdescs[0].args[0].kind == "string"
    m = Machine(p.blob, {0x9000: bytes(off) + b"idle\0"})
    assert m.fire(0, args=[0x9000]).records[0][1][:6] == b"\x04\x00idle"
    assert errors("sched:::switch { trace(args[0]->nmae); }", types=typedb) == [
        ("'struct thread' has no member 'nmae'", ["did you mean 'name'?"])]
    p = prog("BEGIN { trace(curthread->name); }", types=typedb)
    assert p.recdescs[0].args[0].kind == "string"


def test_arena_limits_match_the_kernel_tunables():
    import re
    from pathlib import Path
    text = (Path(__file__).parent.parent / "kernel/include/tunables.h").read_text()
    lo = int(re.search(r"#define PROBE_ARENA_MIN (\d+)", text).group(1))
    hi = eval(re.search(r"#define PROBE_ARENA_MAX \((\d+)u << (\d+)\)", text).group(0)
              .split(" ", 2)[2].replace("u", ""))
    assert (options.ARENA_MIN, options.ARENA_MAX) == (lo, hi)
    with pytest.raises(options.OptionError, match="bufsize 64m is out of range"):
        options.parse_option("bufsize", "64m")
