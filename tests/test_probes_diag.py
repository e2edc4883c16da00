"""Diagnostics (probes/diag.py) and the complete error text of the front end:
golden tests of message + source line + caret underline + hints, with
several errors reported by one parse."""
from __future__ import annotations

import textwrap

import pytest

from probes.diag import CompileError, Diagnostic, render
from probes.parser import parse, parse_probe_desc
from probes.program import Pos


def errors_of(src: str, filename: str = "t.d") -> str:
    with pytest.raises(CompileError) as e:
        parse(src, filename)
    return str(e.value)


def gold(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_render_shape_from_the_brief():
    src = 'BEGIN\n{\n  printf("%d\\n", foo);\n}\n'
    d = Diagnostic(Pos("script.d", 3, 18, 3), "unknown variable 'foo'", ["did you mean 'fd'?"])
    assert render([d], src) == gold('''
        script.d:3:18: error: unknown variable 'foo'
              printf("%d\\n", foo);
                             ^~~
        hint: did you mean 'fd'?
        ''')


def test_tabs_are_kept_in_the_underline_padding():
    src = "BEGIN\n{\n\t\tx = foo;\n}"
    out = render([Diagnostic(Pos("-e", 3, 7, 3), "unknown variable 'foo'")], src)
    assert out == "-e:3:7: error: unknown variable 'foo'\n    \t\tx = foo;\n    \t\t    ^~~\n"


def test_span_is_clipped_and_at_least_one_caret():
    src = "abc\n"
    assert render([Diagnostic(Pos("f", 1, 2, 40), "m")], src).splitlines()[2] == "     ^~"
    assert render([Diagnostic(Pos("f", 1, 4, 0), "m")], src).splitlines()[2] == "       ^"


def test_without_position_and_severity_and_several_hints():
    out = render([Diagnostic(None, "-x bufsize: bad size", ["e.g. 4m", "or 512k"]),
                  Diagnostic(Pos("f.d", 1, 1, 1), "odd", [], "warning")], "x\n")
    assert out == gold('''
        error: -x bufsize: bad size
        hint: e.g. 4m
        hint: or 512k
        f.d:1:1: warning: odd
            x
            ^
        ''')


def test_line_beyond_the_source_prints_no_source_line():
    out = render([Diagnostic(Pos("f.d", 9, 1, 1), "m")], "one line")
    assert out == "f.d:9:1: error: m\n"


def test_compile_error_carries_diagnostics_and_source():
    d = [Diagnostic(Pos("f.d", 1, 1, 2), "a"), Diagnostic(Pos("f.d", 1, 4, 1), "b")]
    e = CompileError(d, "ab c")
    assert e.diagnostics == d and e.source == "ab c" and e.errors == d
    assert str(e) == "f.d:1:1: error: a\n    ab c\n    ^~\nf.d:1:4: error: b\n    ab c\n       ^\n"


def test_golden_several_syntax_errors_in_one_go():
    src = ('BEGIN\n{\n\tprintf("%d\\n", (a + b);\n\tx = 1\n\ty = 2 z = 3;\n\tq = ;\n}\n'
           '}\nEND { self.x = 1; @a += 1; }\n')
    assert errors_of(src) == gold('''
        t.d:3:24: error: expected ')', found ';'
            \tprintf("%d\\n", (a + b);
            \t                      ^
        hint: to close the '(' opened at 3:8
        t.d:4:7: error: expected ';' after statement
            \tx = 1
            \t     ^
        t.d:5:7: error: expected ';' after statement
            \ty = 2 z = 3;
            \t     ^
        hint: found identifier 'z'
        t.d:6:6: error: unexpected ';'
            \tq = ;
            \t    ^
        hint: an expression was expected here
        t.d:8:1: error: unexpected '}'
            }
            ^
        hint: no clause body is open here
        t.d:9:11: error: expected '->' after 'self', found '.'
            END { self.x = 1; @a += 1; }
                      ^
        hint: thread-local variables are written self->name
        t.d:9:22: error: aggregations cannot be updated with '+='
            END { self.x = 1; @a += 1; }
                                 ^~
        hint: assign an aggregating function: @a = count() or @a = sum(x)
        ''').replace("\\t", "\t")


def test_golden_lexer_and_parser_errors_together():
    src = 'BEGIN { x = "abc\n; y = 09; z = $; }\n/* open\n'
    assert errors_of(src, "-e") == gold('''
        -e:1:13: error: missing terminating '"' character
            BEGIN { x = "abc
                        ^~~~
        hint: a string literal ends on its own line; write \\n for a newline
        -e:2:7: error: invalid digit '9' in octal constant
            ; y = 09; z = $; }
                  ^~
        hint: a leading 0 makes the constant octal
        -e:2:15: error: unexpected character '$'
            ; y = 09; z = $; }
                          ^
        -e:2:16: error: unexpected ';'
            ; y = 09; z = $; }
                           ^
        hint: an expression was expected here
        -e:3:1: error: unterminated comment
            /* open
            ^~
        hint: a '/*' comment needs a closing '*/'
        ''')


def test_golden_unclosed_predicate_and_missing_brace():
    src = "syscall::read:entry\n/pid == 1\n{\n\tx = 1;\nEND\n{\n}\n"
    assert errors_of(src) == gold('''
        t.d:2:10: error: expected '/' to close the predicate
            /pid == 1
                     ^
        hint: the predicate opened at 2:1
        t.d:5:4: error: expected ';' after statement
            END
               ^
        hint: is a '}' missing before 'END'? the '{' at 3:1 is still open
        t.d:7:2: error: expected '}', found end of input
            }
             ^
        hint: to close the '{' opened at 3:1
        ''')


def test_golden_descriptions_casts_and_assignments():
    src = ("a:b:c:d:e, foo[ { }\nBEGIN { (struct 1)x; 1 = 2; @c = 3; if x { } "
           "y = (a ? b c); }\nEND { int x; }\n")
    # the error in `if x` skips the rest of that statement (to its ';'),
    # so the ?: error inside it is not reported: one error per statement
    assert errors_of(src) == gold('''
        t.d:1:1: error: probe description 'a:b:c:d:e' has 5 fields
            a:b:c:d:e, foo[ { }
            ^~~~~~~~~
        hint: at most provider:module:function:name
        t.d:1:12: error: unterminated '[' in probe description 'foo['
            a:b:c:d:e, foo[ { }
                       ^~~~
        hint: globs are * ? and [...] (with ! or ^ to negate)
        t.d:2:17: error: expected a name after 'struct', found constant 1
            BEGIN { (struct 1)x; 1 = 2; @c = 3; if x { } y = (a ? b c); }
                            ^
        t.d:2:22: error: cannot assign to this expression (left of '=')
            BEGIN { (struct 1)x; 1 = 2; @c = 3; if x { } y = (a ? b c); }
                                 ^
        hint: assign to a variable, self->x, this->x, a[key], *ptr or @agg
        t.d:2:34: error: an aggregation can only be assigned an aggregating function
            BEGIN { (struct 1)x; 1 = 2; @c = 3; if x { } y = (a ? b c); }
                                             ^
        hint: e.g. @a[key] = count(), sum(x), min(x), max(x), avg(x), stddev(x), \
quantize(x), lquantize(x, lo, hi, step)
        t.d:2:40: error: expected '(' after 'if', found identifier 'x'
            BEGIN { (struct 1)x; 1 = 2; @c = 3; if x { } y = (a ? b c); }
                                                   ^
        t.d:3:7: error: unexpected type name 'int'
            END { int x; }
                  ^~~
        hint: a cast is written (int)expr; declarations are not supported
        ''')


def test_error_recovery_keeps_later_clauses_checked():
    src = "BEGIN { x = ; }\nEND { y = ; }\ntick-1s { z = ; }\n"
    out = errors_of(src)
    assert [ln.split(":")[1] for ln in out.splitlines() if ": error: " in ln] == ["1", "2", "3"]


def test_probe_desc_errors_for_the_cli():
    with pytest.raises(CompileError) as e:
        parse_probe_desc("sched:::sw itch")
    assert str(e.value) == gold('''
        -:1:1: error: unexpected character ' ' in probe description 'sched:::sw itch'
            sched:::sw itch
            ^~~~~~~~~~~~~~~
        hint: descriptions are provider:module:function:name with globs * ? [...]
        ''')


def test_golden_conditional_missing_colon_and_unclosed_call_at_eof():
    assert errors_of("BEGIN { y = (a ? b c); }\nEND { printf(\"x\"") == gold('''
        t.d:1:20: error: expected ':' in conditional expression, found identifier 'c'
            BEGIN { y = (a ? b c); }
                               ^
        hint: the '?' is at 1:16
        t.d:2:17: error: expected ')', found end of input
            END { printf("x"
                            ^
        hint: to close the '(' opened at 2:13
        t.d:2:17: error: expected '}', found end of input
            END { printf("x"
                            ^
        hint: to close the '{' opened at 2:5
        ''')
