"""console/commands/trace.py: the pure parts of `unik trace` — arguments,
-x options, the dtrace -l listing — and its run loop driven by a scripted
event source (the kernel side is tested end to end in the runtime suites)."""
import io
import os
import signal
import struct
from types import SimpleNamespace

import pytest

from console.commands import trace as T
from introspect import probetable
from console.registry import UsageError, commands, make_parser
from probes import isa
from probes.aggprint import AggEntry
from probes.consumer import Consumer
from probes.program import AggDesc, Clause, Pos, Probe, Program, RecDesc, ValType

PROBES = [
    Probe(1, "dtrace", "", "", "BEGIN"),
    Probe(2, "dtrace", "", "", "END"),
    Probe(3, "dtrace", "", "", "ERROR"),
    Probe(16, "sched", "sched", "thread_switch", "switch",
          (("struct thread *", "prev"), ("struct thread *", "next"))),
    Probe(17, "mem", "mm", "kmalloc", "alloc", (("size_t", "size"), ("void *", "addr"))),
]


def parse(*argv):
    cmd = commands()["trace"]
    return make_parser(cmd, "unik trace").parse_intermixed_args(list(argv))


def plan(*argv, files=None, instances=("demo",)):
    files = files or {}
    return T.plan(parse(*argv), read_file=lambda p: files[p],
                  is_instance=lambda n: n in instances)


def test_registered_once_with_name_argument():
    assert commands()["trace"].instance == "optional"


def test_program_forms():
    p = plan("-e", "BEGIN { exit(0); }")
    assert (p.name, p.source, p.filename, p.listing) == (None, "BEGIN { exit(0); }", "-e", False)
    p = plan("demo", "-e", "BEGIN {}")
    assert p.name == "demo"
    p = plan("s.d", files={"s.d": "END {}"})
    assert (p.name, p.source, p.filename, p.what) == (None, "END {}", "s.d", "script 's.d'")
    p = plan("demo", "s.d", files={"s.d": "END {}"})
    assert (p.name, p.filename) == ("demo", "s.d")
    p = plan("-n", "sched:::switch", "-n", "BEGIN { x = 1; }")
    assert p.source == "sched:::switch {}\nBEGIN { x = 1; }" and p.filename == "-n"
    assert plan("-n", "BEGIN").what == "description 'BEGIN'"


def test_listing_forms():
    p = plan("-l")
    assert p.listing and p.pattern == "" and not p.verbose
    p = plan("-lv")
    assert p.listing and p.verbose and p.pattern == ""
    p = plan("-l", "sched:::*", "-v")
    assert (p.pattern, p.verbose) == ("sched:::*", True)
    p = plan("demo", "-l", "-n", "mem:::alloc")
    assert (p.name, p.pattern) == ("demo", "mem:::alloc")
    p = plan("-lv", "sched:::switch")
    assert (p.name, p.pattern, p.verbose) == (None, "sched:::switch", True)
    p = plan("-l", "demo")
    assert (p.name, p.pattern) == ("demo", "")
    p = plan("demo", "-lv", "mem:::*")
    assert (p.name, p.pattern, p.verbose) == ("demo", "mem:::*", True)
    p = plan("-l", "-n", "BEGIN", "-n", "END")
    assert (p.name, p.pattern) == (None, "BEGIN,END")


@pytest.mark.parametrize("argv,msg", [
    ((), "no program given"),
    (("demo",), "no program given"),
    (("-v", "-e", "BEGIN{}"), "-v goes with -l"),
    (("-l", "-e", "BEGIN{}"), "takes no program"),
    (("-l", "sched:::", "-n", "mem:::"), "two patterns"),
    (("demo", "s.d", "-e", "BEGIN{}"), "unexpected argument 's.d'"),
    (("--duration", "0", "-e", "BEGIN{}"), "bad --duration"),
    (("-x", "nosuch=1", "-e", "BEGIN{}"), "unknown option 'nosuch'"),
    (("-x", "bufsize=lots", "-e", "BEGIN{}"), "bad size 'lots'"),
])
def test_bad_usage(argv, msg):
    with pytest.raises(UsageError, match=msg):
        plan(*argv)


def test_options_and_quiet():
    p = plan("-q", "-x", "bufsize=1m", "-x", "switchrate=100ms", "-x", "quiet", "-e", "BEGIN{}")
    assert p.options == {"bufsize": 1 << 20, "switchrate": 10, "quiet": True}
    assert p.quiet
    assert plan("--duration", "2.5", "-e", "BEGIN{}").duration == 2.5


def test_missing_script_file_is_one_error(tmp_path):
    from introspect.errors import UnikError
    a = parse(str(tmp_path / "none.d"))
    with pytest.raises(UnikError, match="cannot read script"):
        T.plan(a)


LISTING = """\
   ID   PROVIDER            MODULE                          FUNCTION NAME
    1     dtrace                                                     BEGIN
   16      sched             sched                     thread_switch switch
"""


def test_listing_is_dtrace_l():
    assert probetable.listing([PROBES[0], PROBES[3]]) == LISTING


def test_listing_verbose_adds_arguments():
    text = probetable.listing([PROBES[0], PROBES[4]], verbose=True)
    assert text == (LISTING.splitlines()[0] + "\n"
                    "    1     dtrace                                                     BEGIN\n"
                    "\n\tArgument Types\n\t\tNone\n\n"
                    "   17        mem                mm                           kmalloc alloc\n"
                    "\n\tArgument Types\n\t\targs[0]: size_t size\n\t\targs[1]: void *addr\n\n")


def test_select_by_pattern():
    assert [p.id for p in T.select(PROBES, "")] == [1, 2, 3, 16, 17]
    assert [p.id for p in T.select(PROBES, "sched:::")] == [16]
    assert [p.id for p in T.select(PROBES, "dtrace:::E*")] == [2, 3]
    assert [p.id for p in T.select(PROBES, "mem:::alloc,BEGIN")] == [1, 17]
    with pytest.raises(UsageError, match="no probe matches 'sched:::swtch'") as e:
        T.select(PROBES, "sched:::swtch")
    assert e.value.hint == "did you mean sched:sched:thread_switch:switch?"
    with pytest.raises(UsageError, match="bad probe description 'tick-0s'"):
        T.select(PROBES, "tick-0s")
    assert T.listing_json(PROBES[4:])[0]["args"] == [{"type": "size_t", "name": "size"},
                                                     {"type": "void *", "name": "addr"}]


def test_caret_text():
    src = "BEGIN\n{\n  x = *(int *)0;\n}\n"
    assert T.caret(src, Pos("s.d", 3, 7, 9), "bad", "fix it") == \
        "s.d:3:7: error: bad\n      x = *(int *)0;\n          ^~~~~~~~~\nhint: fix it\n"


# ------------------------------------------------------------------ run loop

def _prog():
    c = Clause(0, ["BEGIN"], [PROBES[0]], Pos("s.d", 1, 1), 0, {0: Pos("s.d", 1, 9, 6)})
    return Program("BEGIN { printf(...); }", "s.d", b"", [c],
                   [AggDesc(0, "n", isa.AggFunc.COUNT, [])],
                   [RecDesc(0, "printf", [ValType("int")], fmt="%d\n")], [(0, 1, 0)],
                   {"quiet": True})


def _rec(v, desc=0):
    return isa.REC_HDR.pack(size=24, desc=desc, probe=1, timestamp=1) + struct.pack("<Q", v)


class Script:
    """Plays a fixed list of poll() results, then nothing."""

    def __init__(self, polls, final=(), on_poll=None):
        self.polls, self.final, self.on_poll = list(polls), list(final), on_poll
        self.calls = []

    def start(self):
        self.calls.append("start")

    def poll(self, timeout):
        self.calls.append("poll")
        if self.on_poll:
            self.on_poll(len(self.calls))
        return self.polls.pop(0) if self.polls else []

    def stop(self):
        self.calls.append("stop")
        return self.final

    def aggregations(self):
        return [AggEntry(0, (), (7,))]


def _consumer(session):
    return Consumer(_prog(), io.StringIO(), err=io.StringIO(), quiet=True,
                    aggs=session.aggregations)


def test_exit_event_ends_the_run_and_prints_aggregations():
    s = Script([[("records", _rec(1) + _rec(2))],
                [("drops", {"buf": 3}), ("records", _rec(5, isa.REC_EXIT)), ("exit",)]],
               final=[("records", _rec(9))])
    c = _consumer(s)
    T.run_session(s, c, T._Stopper(None))
    assert s.calls == ["start", "poll", "poll", "stop"]
    assert c.out.getvalue() == "1\n2\n9\n\n                7\n"
    assert c.exit_code == 5 and c.dropped == {"buf": 3}


def test_duration_ends_the_run():
    s = Script([])
    c = _consumer(s)
    import time
    t0 = time.monotonic()
    T.run_session(s, c, T._Stopper(0.3))
    took = time.monotonic() - t0
    assert s.calls[0] == "start" and s.calls[-1] == "stop" and "poll" in s.calls
    assert 0.29 <= took < 2.0
    assert c.out.getvalue() == "\n                7\n"


def test_sigint_ends_the_run_even_if_ignored_before():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        s = Script([], on_poll=lambda n: n == 3 and os.kill(os.getpid(), signal.SIGINT))
        c = _consumer(s)
        with T._Stopper(None) as st:
            T.run_session(s, c, st)
        assert st.interrupted == 1 and s.calls[-1] == "stop"
        assert c.out.getvalue().endswith("                7\n")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN      # restored
    finally:
        signal.signal(signal.SIGINT, old)


def test_verify_error_text_points_at_the_script():
    err = SimpleNamespace(pc=0, reason="backward jump")
    assert T._verify_text(_prog(), err).startswith(
        "s.d:1:9: error: the kernel's verifier refused this: backward jump (instruction 0)\n"
        "    BEGIN { printf(...); }\n            ^~~~~~\n")
    err = SimpleNamespace(pc=-1, reason="bad magic")
    assert T._verify_text(_prog(), err).startswith(
        "unik: error: the kernel refused the program: bad magic\n")
