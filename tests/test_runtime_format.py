"""The runtime directive format (tests/runtime_format.py), pure: every
directive, the PROG command's quoting, and the errors for bad files."""
from __future__ import annotations

import shlex

import pytest

from runtime_format import FormatError, parse

GOOD = """\
# a suite
APP busy
BOOT --mem 64M
NAME one
RUN unik ps {name}
WAIT_FOR spin-4
EXPECT probe-chan
EXPECT_REGEX ^x
EXPECT_NONE Traceback
EXIT 1
TIMEOUT 5

NAME two
PROG BEGIN { printf("it's %s\\n", "{name}"); exit(0); }
ARGS -q
ARGS --duration 2
EXPECT it's
AFTER unik sites {name} --verify
AFTER_EXPECT text matches
AFTER_EXPECT 0 enabled
AFTER unik ps {name}
AFTER_EXPECT idle
XFAIL not yet
"""


def test_every_directive_with_its_line():
    s = parse(GOOD, "t.test")
    assert (s.app, s.boot, [t.name for t in s.tests]) == ("busy", "--mem 64M", ["one", "two"])
    one, two = s.tests
    assert (one.line, one.run, one.run_line) == (4, "unik ps {name}", 5)
    assert (one.wait_for.text, one.wait_for.line) == ("spin-4", 6)
    assert [(e.kind, e.text, e.line) for e in one.expects] == [
        ("EXPECT", "probe-chan", 7), ("EXPECT_REGEX", "^x", 8), ("EXPECT_NONE", "Traceback", 9)]
    assert (one.exit, one.exit_line, one.timeout, one.after, one.xfail) == (1, 10, 5.0, [], None)
    assert (two.exit, two.timeout, two.args) == (0, 30.0, "-q --duration 2")
    assert [(a.cmd, a.line, [(e.text, e.line) for e in a.expect]) for a in two.after] == [
        ("unik sites {name} --verify", 18, [("text matches", 19), ("0 enabled", 20)]),
        ("unik ps {name}", 21, [("idle", 22)])]
    assert two.xfail == "t.test:23: not yet"


def test_prog_is_quoted_as_it_is_and_args_are_filled():
    two = parse(GOOD, "t.test").tests[1]
    cmd = two.command(lambda s: s.replace("{name}", "inst"))
    argv = shlex.split(cmd)
    assert argv == ["unik", "trace", "inst", "-e",
                    'BEGIN { printf("it\'s %s\\n", "{name}"); exit(0); }', "-q", "--duration", "2"]
    one = parse(GOOD, "t.test").tests[0]
    assert one.command(lambda s: s.replace("{name}", "inst")) == "unik ps inst"


@pytest.mark.parametrize("text,msg", [
    ("RUN x\n", "t.test:1: RUN before the first NAME"),
    ("NAME a\nEXPECT y\n", "t.test:1: test 'a' has no RUN or PROG"),
    ("NAME a\nRUN x\n", "t.test:1: test 'a' asserts nothing"),
    ("NAME a\nRUN x\nPROG BEGIN{}\nEXPECT y\n", "t.test:1: test 'a' has both RUN and PROG"),
    ("NAME a\nRUN x\nARGS -q\nEXPECT y\n", "t.test:1: test 'a' has ARGS without PROG"),
    ("NAME a\nRUN x\nAFTER_EXPECT y\n", "t.test:3: AFTER_EXPECT without an AFTER before it"),
    ("NAME a\nRUN x\nWAIT_FOR y\nWAIT_FOR z\n", "t.test:4: a second WAIT_FOR (line 3)"),
    ("NAME a\nRUN x\nEXIT two\n", "t.test:3: EXIT 'two' is not a number"),
    ("NAME a\nRUN x\nTIMEOUT\n", "t.test:3: TIMEOUT needs a value"),
    ("NAME a\nRUN x\nBOGUS 1\n", "t.test:3: unknown directive 'BOGUS'"),
])
def test_bad_files_name_the_line(text, msg):
    with pytest.raises(FormatError) as e:
        parse(text, "t.test")
    assert str(e.value) == msg


def test_wait_for_alone_is_an_assertion():
    t = parse("NAME a\nRUN x\nWAIT_FOR ready\n", "t.test").tests[0]
    assert t.wait_for.text == "ready" and t.expects == []
