"""Golden tests of the compiler's semantic errors: the complete rendered
text (`file:line:col: error: message`, the source line, the caret
underline, the hints), every error of the pass in source order."""
from __future__ import annotations

import pytest

from probes import compiler
from probes.diag import CompileError
from test_probes_sema import PROBES


def rendered(src: str, types=None, options=None) -> str:
    with pytest.raises(CompileError) as e:
        compiler.compile_script(src, "t.d", PROBES, types, options)
    return str(e.value)


GOLDEN = [
    ("unknown variable", "BEGIN\n{\n\tprintf(\"%d\\n\", cnt);\n}\n", """\
t.d:3:17: error: unknown variable 'cnt'
    \tprintf("%d\\n", cnt);
    \t               ^~~
hint: a variable is declared by assigning to it first
"""),
    ("misspelt builtin and function", 'BEGIN { prinf("x"); trace(timestmp); }', """\
t.d:1:9: error: unknown function prinf()
    BEGIN { prinf("x"); trace(timestmp); }
            ^~~~~
hint: did you mean 'printf' or 'printa' or 'stringof'?
t.d:1:27: error: unknown variable 'timestmp'
    BEGIN { prinf("x"); trace(timestmp); }
                              ^~~~~~~~
hint: did you mean 'timestamp' or 'vtimestamp' or 'walltimestamp'?
"""),
    ("unknown probe", "sched:::swich,\nmem:::alloc\n{\n}\n", """\
t.d:1:1: error: probe description sched:::swich does not match any probe
    sched:::swich,
    ^~~~~~~~~~~~~
hint: did you mean sched:sched:sched_switch:switch?
"""),
    ("printf arguments", 'BEGIN { printf("%d %s\\n", 1); }', """\
t.d:1:9: error: printf() format has 2 conversion arguments but 1 was given
    BEGIN { printf("%d %s\\n", 1); }
            ^~~~~~~~~~~~~~~~~~~~
hint: the format is "%d %s\\n"
"""),
    ("printf argument types", 'BEGIN { printf("%s %d\\n", 42, "x"); }', """\
t.d:1:27: error: the argument for %s must be a string, not 'int'
    BEGIN { printf("%s %d\\n", 42, "x"); }
                              ^~
t.d:1:31: error: the argument for %d must be an integer, not a string
    BEGIN { printf("%s %d\\n", 42, "x"); }
                                  ^~~
hint: use strlen() for its length
"""),
    ("type errors", 'BEGIN { x = "a" + 1; if ("s") trace(1); y = 1; y = "str"; }', """\
t.d:1:13: error: operator + needs integer operands, not a string
    BEGIN { x = "a" + 1; if ("s") trace(1); y = 1; y = "str"; }
                ^~~
hint: use strjoin() to join strings
t.d:1:26: error: a condition must be an integer or a pointer, not a string
    BEGIN { x = "a" + 1; if ("s") trace(1); y = 1; y = "str"; }
                             ^~~
hint: compare strings explicitly, e.g. s != ""
t.d:1:48: error: y holds 'int64_t' but is assigned a string
    BEGIN { x = "a" + 1; if ("s") trace(1); y = 1; y = "str"; }
                                                   ^~~~~~~~~
hint: its type was fixed at line 1, column 41
"""),
    ("aggregation functions", "BEGIN { @a = count(); @a = sum(1); @b = strlen(\"x\"); "
     "@c = lquantize(arg0, 10, 0); n = count(); }", """\
t.d:1:28: error: @a is count() but is used with sum()
    BEGIN { @a = count(); @a = sum(1); @b = strlen("x"); @c = lquantize(arg0, 10, 0); n = count(); }
                               ^~~
hint: its type was fixed at line 1, column 9
t.d:1:41: error: strlen() is not an aggregating function
    BEGIN { @a = count(); @a = sum(1); @b = strlen("x"); @c = lquantize(arg0, 10, 0); n = count(); }
                                            ^~~~~~
hint: one of: count(), sum(), min(), max(), avg(), stddev(), quantize(), lquantize()
t.d:1:79: error: the upper bound of lquantize() (0) must be above the lower bound (10)
    BEGIN { @a = count(); @a = sum(1); @b = strlen("x"); @c = lquantize(arg0, 10, 0); n = count(); }
                                                                                  ^
t.d:1:87: error: count() is an action, not a value
    BEGIN { @a = count(); @a = sum(1); @b = strlen("x"); @c = lquantize(arg0, 10, 0); n = count(); }
                                                                                          ^~~~~~~
hint: assign it to an aggregation: @x = count(...)
"""),
    ("aggregation as a value", "BEGIN { @a = count(); x = @a[1]; printa(@b); }", """\
t.d:1:27: error: @a[...] cannot be used as a value
    BEGIN { @a = count(); x = @a[1]; printa(@b); }
                              ^~~~~
hint: aggregations are written (@a[k] = count()) and printed (printa(@a)), not read
t.d:1:41: error: unknown aggregation @b
    BEGIN { @a = count(); x = @a[1]; printa(@b); }
                                            ^~
hint: an aggregation exists once a clause assigns to it
"""),
    ("stack depth", "BEGIN { stack(99); }", """\
t.d:1:15: error: stack(99) asks for 99 frames; the VM records 1 to 32
    BEGIN { stack(99); }
                  ^~
"""),
    ("stack as an array key", "BEGIN { a[stack()] = 1; }", """\
t.d:1:11: error: stack() can key an aggregation, not a
    BEGIN { a[stack()] = 1; }
              ^~~~~~~
hint: e.g. @[stack()] = count();
"""),
    ("unknown option", "#pragma D option bufsz=1m\nBEGIN { }", """\
t.d:1:18: error: unknown option 'bufsz'
    #pragma D option bufsz=1m
                     ^~~~~~~~
hint: valid options: aggsize, bufsize, cpubudget, cpuwindow, deadman, dynvarsize, quiet, strsize, switchrate
"""),
    ("bad option value", "#pragma D option bufsize=lots\nBEGIN { }", """\
t.d:1:18: error: bad size 'lots' for option bufsize
    #pragma D option bufsize=lots
                     ^~~~~~~~~~~~
hint: write bytes with an optional k, m or g suffix, e.g. 512k
"""),
    ("args of a probe without them", "BEGIN { trace(args[0]); trace(self->x); }", """\
t.d:1:15: error: args[0] does not exist on the probes of this clause
    BEGIN { trace(args[0]); trace(self->x); }
                  ^~~~~~~
hint: list the arguments with: unik trace -lv
t.d:1:31: error: self->x is used before any assignment to it
    BEGIN { trace(args[0]); trace(self->x); }
                                  ^~~~~~~
hint: assign it first, e.g. self->x = 0
"""),
]


@pytest.mark.parametrize("what,src,text", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_error_text(what, src, text):
    assert rendered(src) == text


def test_unknown_x_option_has_no_place():
    assert rendered("BEGIN {}", options={"bufsz": "1"}) == (
        "error: -x bufsz: unknown option 'bufsz'\n"
        "hint: valid options: aggsize, bufsize, cpubudget, cpuwindow, deadman, dynvarsize, quiet, strsize, switchrate\n")


@pytest.fixture(scope="module")
def typedb(demo_elf):
    from introspect.dwarf import TypeDB
    return TypeDB.from_elf(demo_elf)


def test_unknown_member_and_symbol_with_dwarf(typedb):
    src = "sched:::switch\n/args[0]->nmae == \"idle\"/\n{\n    trace(`sched_thread);\n}\n"
    assert rendered(src, typedb) == """\
t.d:2:2: error: 'struct thread' has no member 'nmae'
    /args[0]->nmae == "idle"/
     ^~~~~~~~~~~~~
hint: did you mean 'name'?
t.d:4:11: error: unknown kernel symbol `sched_thread
        trace(`sched_thread);
              ^~~~~~~~~~~~~
hint: did you mean 'sched_threads' or 'chan_thread' or 'sched_turn'?
"""


def test_limits_the_kernel_would_refuse():
    assert rendered("tick-1ns { x = arg0 / 0; }") == """\
t.d:1:1: error: timer 'tick-1ns' is faster than the kernel's limit of one per 1 us
    tick-1ns { x = arg0 / 0; }
    ^~~~~~~~
hint: e.g. tick-1ms, tick-10s, tick-100hz or profile-997 (units: ns us ms s hz; none means hz)
t.d:1:23: error: division by zero
    tick-1ns { x = arg0 / 0; }
                          ^
hint: the divisor is the constant 0
"""
    assert rendered("BEGIN { trace(1); }", options={"bufsize": "64m"}) == (
        "error: -x bufsize: bufsize 64m is out of range\n"
        "hint: the kernel takes 4k to 8m (PROBE_ARENA_MIN/MAX in kernel/include/tunables.h)\n")
    assert rendered("/* nothing */\n") == (
        "error: t.d: the program has no probe clauses\n"
        "hint: e.g. BEGIN { printf(\"hello\\n\"); exit(0); }\n")


def test_many_errors_are_capped():
    text = rendered("BEGIN { " + "trace(nope); " * 40 + "}")
    assert text.count(": error: unknown variable 'nope'") == 30
    assert text.endswith("(10 more errors not shown)\n")
