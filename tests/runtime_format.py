"""Parser for the runtime-test directive files in tests/runtime/ (pure).

One file is one suite run against one booted instance.  Lines before the
first NAME are suite directives; each NAME starts a test.

    # comment
    APP demo                  suite: the app to boot (default demo)
    BOOT --mem 32M            suite: extra `unik boot` arguments
    NAME ps lists threads     a test
    RUN unik ps {name}        shell command; {name} {state} {serial} {root}
                              are replaced here and in the EXPECT lines
    EXPECT probe-chan         substring that must appear in stdout+stderr
    EXPECT_REGEX ^\\s*1\\s+idle  regex (re.M) that must match
    EXPECT_NONE Traceback     substring that must NOT appear
    EXIT 2                    expected exit status (default 0)
    TIMEOUT 30                seconds before the command is killed
"""
from __future__ import annotations

from dataclasses import dataclass, field


class FormatError(Exception):
    pass


@dataclass
class RuntimeTest:
    name: str
    line: int
    run: str = ""
    expect: list = field(default_factory=list)
    expect_regex: list = field(default_factory=list)
    expect_none: list = field(default_factory=list)
    exit: int = 0
    timeout: float = 30.0


@dataclass
class Suite:
    path: str
    app: str = "demo"
    boot: str = ""
    tests: list = field(default_factory=list)


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
            cur = RuntimeTest(val, n)
            suite.tests.append(cur)
        elif cur is None:
            if key == "APP":
                suite.app = val
            elif key == "BOOT":
                suite.boot = val
            else:
                raise FormatError(f"{where}: {key} before the first NAME")
        elif key == "RUN":
            cur.run = val
        elif key == "EXPECT":
            cur.expect.append(val)
        elif key == "EXPECT_REGEX":
            cur.expect_regex.append(val)
        elif key == "EXPECT_NONE":
            cur.expect_none.append(val)
        elif key == "EXIT":
            cur.exit = int(val)
        elif key == "TIMEOUT":
            cur.timeout = float(val)
        else:
            raise FormatError(f"{where}: unknown directive {key!r}")
    for t in suite.tests:
        if not t.run:
            raise FormatError(f"{path}:{t.line}: test {t.name!r} has no RUN")
        if not (t.expect or t.expect_regex or t.expect_none):
            raise FormatError(f"{path}:{t.line}: test {t.name!r} asserts nothing")
    return suite
