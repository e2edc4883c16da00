"""Parser for the runtime-test directive files in tests/runtime/ (pure).

One file is one suite run against one booted instance (modelled on
bpftrace's runtime tests).  Lines before the first NAME are suite
directives; each NAME starts a test.  Every test must stand alone: it may
run by itself (`pytest -k`) or after any other test of its file, so a test
that needs the instance in some state says so (WAIT_FOR, or its RUN sets
the state up) instead of counting on an earlier test.

    # comment
    APP demo                  suite: the app to boot (default demo)
    BOOT --mem 32M            suite: extra `unik boot` arguments
    NAME ps lists threads     a test
    RUN unik ps {name}        shell command; {name} {state} {serial} {root}
                              are replaced here, in ARGS, AFTER and the
                              EXPECT lines
    PROG BEGIN { exit(3); }   instead of RUN: a D program, run as
                              `unik trace {name} -e '<PROG>' ARGS...` (the
                              program is quoted for the shell as it is;
                              nothing in it is replaced)
    ARGS -q --duration 2      with PROG: more `unik trace` arguments
                              (shell syntax, appended as they are)
    EXPECT probe-chan         substring that must appear in stdout+stderr
    EXPECT_REGEX ^\\s*1\\s+idle  regex (re.M) that must match
    EXPECT_NONE Traceback     substring that must NOT appear
    WAIT_FOR <regex>          RUN (or PROG) is run again, every 0.2 s, until
                              its output matches the regex (re.M); then the
                              other expectations are checked on that last
                              output.  It fails when TIMEOUT passes first.
                              Use it for "once the app got there" instead
                              of `sleep N`.
    EXIT 2                    expected exit status (default 0)
    TIMEOUT 30                seconds for the whole test (each run of the
                              command, and all of WAIT_FOR's retries)
    AFTER unik sites {name} --verify
                              a command run after the test's own (several
                              allowed, in order); it must exit 0 ...
    AFTER_EXPECT text matches ... and print this substring (applies to
                              the AFTER line above it)
    XFAIL <reason>            the test is expected to fail, strictly: once
                              it passes, pytest reports XPASS as a failure,
                              so the line is removed when the reason is gone

A failing test's message starts with the file and the line of the
directive that failed: `tests/runtime/ps.test:12: ...`.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field


class FormatError(Exception):
    pass


@dataclass
class Expect:
    kind: str              # "EXPECT", "EXPECT_REGEX" or "EXPECT_NONE"
    text: str
    line: int


@dataclass
class After:
    cmd: str
    line: int
    expect: list = field(default_factory=list)     # [Expect("AFTER_EXPECT", ...)]


@dataclass
class RuntimeTest:
    name: str
    line: int
    run: str = ""
    run_line: int = 0
    prog: str | None = None
    args: str = ""
    expects: list = field(default_factory=list)     # [Expect]
    wait_for: Expect | None = None
    exit: int = 0
    exit_line: int = 0
    timeout: float = 30.0
    after: list = field(default_factory=list)       # [After]
    xfail: str | None = None

    def command(self, fill=lambda s: s) -> str:
        """The shell command: RUN, or `unik trace NAME -e PROG ARGS`; `fill`
        does the {name}-style replacement on RUN and ARGS, never in PROG,
        which is quoted for the shell as it is."""
        if self.prog is None:
            return fill(self.run)
        cmd = fill("unik trace {name} -e ") + shlex.quote(self.prog)
        return cmd + (" " + fill(self.args) if self.args else "")


@dataclass
class Suite:
    path: str
    app: str = "demo"
    boot: str = ""
    tests: list = field(default_factory=list)


_CHECKS = ("EXPECT", "EXPECT_REGEX", "EXPECT_NONE")


def parse(text: str, path: str = "<string>") -> Suite:
    suite = Suite(path)
    cur = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, val = line.partition(" ")
        val = val.strip()
        where = f"{path}:{n}"
        if key == "NAME":
            if not val:
                raise FormatError(f"{where}: NAME needs a test name")
            cur = RuntimeTest(val, n)
            suite.tests.append(cur)
        elif cur is None:
            if key == "APP":
                suite.app = val
            elif key == "BOOT":
                suite.boot = val
            else:
                raise FormatError(f"{where}: {key} before the first NAME")
        else:
            _directive(cur, key, val, n, where)
    for t in suite.tests:
        where = f"{path}:{t.line}"
        if not t.run and t.prog is None:
            raise FormatError(f"{where}: test {t.name!r} has no RUN or PROG")
        if t.run and t.prog is not None:
            raise FormatError(f"{where}: test {t.name!r} has both RUN and PROG")
        if t.args and t.prog is None:
            raise FormatError(f"{where}: test {t.name!r} has ARGS without PROG")
        if not (t.expects or t.wait_for):
            raise FormatError(f"{where}: test {t.name!r} asserts nothing")
    return suite


def _directive(cur: RuntimeTest, key: str, val: str, n: int, where: str) -> None:
    """Apply one directive line to the test being read."""
    if key in ("RUN", "PROG", "ARGS", "WAIT_FOR", "EXIT", "TIMEOUT", "AFTER") and not val:
        raise FormatError(f"{where}: {key} needs a value")
    if key == "RUN":
        cur.run, cur.run_line = val, n
    elif key == "PROG":
        cur.prog, cur.run_line = val, n
    elif key == "ARGS":
        cur.args = (cur.args + " " + val).strip()
    elif key in _CHECKS:
        cur.expects.append(Expect(key, val, n))
    elif key == "WAIT_FOR":
        if cur.wait_for is not None:
            raise FormatError(f"{where}: a second WAIT_FOR (line {cur.wait_for.line})")
        cur.wait_for = Expect("WAIT_FOR", val, n)
    elif key == "EXIT":
        try:
            cur.exit, cur.exit_line = int(val), n
        except ValueError:
            raise FormatError(f"{where}: EXIT {val!r} is not a number") from None
    elif key == "TIMEOUT":
        try:
            cur.timeout = float(val)
        except ValueError:
            raise FormatError(f"{where}: TIMEOUT {val!r} is not a number") from None
    elif key == "XFAIL":
        cur.xfail = f"{where}: {val or 'expected to fail'}"
    elif key == "AFTER":
        cur.after.append(After(val, n))
    elif key == "AFTER_EXPECT":
        if not cur.after:
            raise FormatError(f"{where}: AFTER_EXPECT without an AFTER before it")
        cur.after[-1].expect.append(Expect("AFTER_EXPECT", val, n))
    else:
        raise FormatError(f"{where}: unknown directive {key!r}")
