"""The host's side of the deadman, without QEMU: the options (parsing,
ranges, idempotent re-parsing), the reason in words, the CLI ending the run
on a deadman event, the wire layouts, and TraceSession against the fake
kernel's drain model (tests/faketrace.py): TRACE_DEADMAN is sent with the
options, a host that stops polling is aborted and hears why (TRACE_ABORT
routed by the mux to the session's owner), a polling host never is."""
from __future__ import annotations

import io
import time

import pytest

from console.commands import trace as T
from introspect import codec, protocol as P
from introspect.client import Channel, wait_ready
from introspect.trace import TraceSession, deadman_text
from probes import isa
from probes.options import OptionError, format_default, parse_option
from probes.program import Program

TICK = isa.SynthProbe.TICK


@pytest.mark.parametrize("name,value,stored", [
    ("deadman", "10s", 10_000), ("deadman", "500ms", 500), ("deadman", "1.5s", 1500),
    ("deadman", "off", 0), ("deadman", "0", 0), ("deadman", "2000", 2000),
    ("cpubudget", "50", 50), ("cpubudget", "5%", 5), ("cpubudget", "off", 0),
    ("cpubudget", "100", 0), ("cpuwindow", "2s", 2000), ("cpuwindow", "250ms", 250),
])
def test_options_parse_and_reparse_to_the_same_value(name, value, stored):
    assert parse_option(name, value) == stored
    # the CLI parses -x, the compiler parses the stored value again
    assert parse_option(name, str(stored)) == stored


@pytest.mark.parametrize("name,value,hint", [
    ("deadman", "10ms", "from 100ms"), ("deadman", "2h", "to 1h"), ("deadman", "soon", "10s"),
    ("cpubudget", "0.5", "from 1 to 100"), ("cpubudget", "101", "from 1 to 100"),
    ("cpuwindow", "off", "from 100ms"), ("cpuwindow", "", "cpuwindow=VALUE"),
])
def test_bad_options_say_why_with_a_hint(name, value, hint):
    with pytest.raises(OptionError) as e:
        parse_option(name, value)
    assert name in e.value.message and hint in e.value.hint


def test_defaults_are_documented_forms():
    assert (format_default("deadman"), format_default("cpubudget"),
            format_default("cpuwindow")) == ("10s", "50", "1s")


def test_reason_in_words():
    cpu = {"reason": P.Deadman.CPU, "budget": 50, "used_ns": 730_000_000,
           "window_ns": 1_000_000_000}
    assert deadman_text(cpu) == "probe time 73% of CPU over 1.0 s (budget 50%)"
    drain = {"reason": P.Deadman.DRAIN, "budget": 0, "used_ns": 2_040_000_000,
             "window_ns": 2_000_000_000}
    assert deadman_text(drain) == "the host did not drain it for 2.0 s (timeout 2.0 s)"


def test_wire_layouts():
    assert P.REQUESTS[P.MsgType.TRACE_DEADMAN].layout is P.TRACE_DEADMAN_REQ
    assert P.TRACE_DEADMAN_REQ.size == 16 and P.TRACE_ABORT.size == 32
    raw = P.TRACE_ABORT.pack(session=3, reason=1, budget=50, used_ns=7, window_ns=9)
    assert codec.decode_trace_abort(raw) == {"session": 3, "reason": 1, "budget": 50,
                                             "used_ns": 7, "window_ns": 9}
    assert codec.trace_data_session(raw) == 3       # routed like TRACE_DATA
    st = codec.decode_trace_status(P.TRACE_STATUS_REP.pack(deadman=2, deadman_window_ns=5))
    assert st["deadman"] == 2 and st["deadman_window_ns"] == 5


class Script:
    """Plays poll() results; stop() returns nothing."""

    def __init__(self, polls):
        self.polls, self.calls, self.aborted = list(polls), [], None

    def start(self):
        self.calls.append("start")

    def poll(self, timeout):
        self.calls.append("poll")
        return self.polls.pop(0) if self.polls else []

    def stop(self):
        self.calls.append("stop")
        return []

    def aggregations(self):
        return []


def test_a_deadman_event_ends_the_run():
    from probes.consumer import Consumer
    s = Script([[], [("deadman", {"reason": 1})], []])
    prog = Program("", "-e", b"", [], [], [], [], {"quiet": True})
    c = Consumer(prog, io.StringIO(), err=io.StringIO(), quiet=True, aggs=s.aggregations)
    T.run_session(s, c, T._Stopper(None))
    assert s.calls == ["start", "poll", "poll", "stop"]


# ------------------------------------------------------------ fake kernel

def program(**options):
    blob = isa.PROG_HDR.pack(magic=isa.PROG_MAGIC, version=isa.PROG_VERSION) + bytes(64)
    return Program(source="", filename="-e", blob=blob, clauses=[], aggs=[], recdescs=[],
                   enablings=[(0, TICK, 20_000_000)], options=options)


@pytest.fixture
def inst(fake):
    i, _ = fake("fake")
    wait_ready(i, 10)
    return i


def test_silent_host_is_aborted_and_hears_why(inst):
    with Channel.for_instance(inst) as ch, TraceSession(ch, program(deadman=300)) as s:
        s.start()
        time.sleep(1.0)                 # no poll: no heartbeat
        events, end = [], time.monotonic() + 10
        while not any(e[0] == "deadman" for e in events) and time.monotonic() < end:
            events += s.poll(0.2)
        why = dict(e for e in events if e[0] == "deadman")["deadman"]
        assert why["reason"] == P.Deadman.DRAIN and why["window_ns"] == 300_000_000
        assert why["used_ns"] > 300_000_000
        assert s.aborted == why
        events = s.stop()               # an aborted session stops fine, says it once
        assert not any(e[0] == "deadman" for e in events)


def test_a_polling_host_with_a_short_timeout_lives(inst):
    with Channel.for_instance(inst) as ch, \
            TraceSession(ch, program(deadman=200, cpubudget=7, cpuwindow=300)) as s:
        s.start()
        assert s.heartbeat == pytest.approx(0.05)
        end = time.monotonic() + 1.5
        events = []
        while time.monotonic() < end:
            events += s.poll(0.5)
        assert not any(e[0] == "deadman" for e in events) and s.aborted is None
        assert any(e[0] == "records" for e in events)
        assert s.status()["deadman"] == 0
