"""Trace sessions on the real kernel under QEMU, through the mux: a
hand-assembled program (tests/isa_asm.py) on BEGIN and tick-10ms is
opened, uploaded, verified, enabled, started, stopped and closed; its
records and aggregation arrive with every record accounted for; the
verifier's refusal comes back structured; a session whose client vanishes
is torn down within a second; the log stream works next to it."""
from __future__ import annotations

import socket
import struct
import time

import pytest

from instances import assert_closed_when_client_leaves, booted, records_in
from isa_asm import AggFunc, Prog
from introspect import codec
from introspect import protocol as P
from introspect.client import Channel
from introspect.errors import ChannelError
from introspect.trace import TraceSession, TraceVerifyError
from probes import isa
from probes.program import Program

BEGIN, TICK = isa.SynthProbe.BEGIN, isa.SynthProbe.TICK


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    with booted("demo", state=tmp_path_factory.mktemp("unik-trace"), name="trace") as i:
        yield i


def program(blob, enablings, **options):
    return Program(source="", filename="-e", blob=blob, clauses=[], aggs=[], recdescs=[],
                   enablings=list(enablings), options=options)


def begin_and_tick():
    p = Prog(nrecdescs=2)
    p.agg(AggFunc.COUNT, nkeys=1)
    p.clause("recb 0\nldi r1, 42\nrecv r1\nrece\nret")
    p.clause("recb 1\nldb r1, TIMESTAMP\nrecv r1\nrece\n"
             "ldi r3, 7\ntpush r3, 0\nldi r2, 1\nagg 0, r2\nret")
    return p.build()


def test_round_trip_begin_and_tick(inst):
    prog = program(begin_and_tick(), [(0, BEGIN, 0), (1, TICK, 10_000_000)],
                   switchrate="50hz")
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s:
        s.start()
        events, end = [], time.monotonic() + 20
        while len(records_in(events)) < 11 and time.monotonic() < end:
            events += s.poll(0.5)
        events += s.stop()
        recs = records_in(events)
        heads = [isa.REC_HDR.unpack(r) for r in recs]
        assert heads[0]["desc"] == 0 and heads[0]["probe"] == BEGIN
        assert struct.unpack_from("<Q", recs[0], 16)[0] == 42
        ticks = [h for h in heads if h["desc"] == 1]
        assert len(ticks) >= 10 and all(h["probe"] == TICK for h in ticks)
        stamps = [struct.unpack_from("<Q", r, 16)[0] for r in recs[1:]]
        assert stamps == sorted(stamps)
        st = s.status()
        assert s.delivered + st["drops_chan"] == st["records"] == len(recs)
        assert st["drops_buf"] == st["drops_chan"] == st["errors"] == 0
        aggs = s.aggregations()
        agg, keylen, nwords = struct.unpack_from("<HHI", aggs)
        assert (agg, keylen, nwords) == (0, 8, 1)
        key, count = struct.unpack_from("<QQ", aggs, 8)
        assert key == 7 and count == len(ticks)
        s.clear()
        assert struct.unpack_from("<Q", s.aggregations(), 16)[0] == 0
        sid = s.session
    with Channel.for_instance(inst) as ch:
        with pytest.raises(ChannelError) as e:
            ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(sid))
        assert e.value.code_name == "NO_SESSION"


def test_verifier_refusal_names_pc(inst):
    p = Prog()
    p.clause("ldi r1, 1\njmp -2\nret")                 # a backward jump at pc 1
    with Channel.for_instance(inst) as ch:
        s = TraceSession(ch, program(p.build(), [(0, BEGIN, 0)]))
        with pytest.raises(TraceVerifyError) as e:
            s.start()
        assert e.value.pc == 1, e.value.reason
        assert e.value.reason
        assert s.session is None


def test_vanished_client_session_torn_down_within_a_second(inst):
    blob = begin_and_tick()
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(inst.chan_sock))
    dec = codec.Decoder()

    def req(rid, t, payload):
        raw.sendall(codec.encode(t, rid, payload))
        frames = []
        while not [f for f in frames if f.id == rid]:
            frames += dec.feed(raw.recv(65536))
        fr = next(f for f in frames if f.id == rid)
        assert fr.type == t | P.REPLY, codec.decode_error(fr.payload)
        return fr

    fr = req(1, P.MsgType.TRACE_OPEN, codec.trace_open_request(
        bufsize=65536, aggsize=65536, dynvarsize=65536, prog_len=len(blob),
        switchrate_us=20000, wall_ns=time.time_ns()))
    sid = codec.decode_trace_open(fr.payload)
    for k, pl in enumerate(codec.trace_chunk_requests(sid, blob)):
        req(10 + k, P.MsgType.TRACE_CHUNK, pl)
    assert codec.decode_trace_load(req(2, P.MsgType.TRACE_LOAD,
                                       codec.trace_session_request(sid)).payload)["ok"]
    for pl in codec.trace_enable_requests(sid, [(1, TICK, 5_000_000)]):
        req(3, P.MsgType.TRACE_ENABLE, pl)
    req(4, P.MsgType.TRACE_GO, codec.trace_session_request(sid))
    assert_closed_when_client_leaves(inst, sid, raw)


def test_log_stream_next_to_a_session(inst):
    prog = program(begin_and_tick(), [(1, TICK, 10_000_000)])
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s, \
            Channel.for_instance(inst) as lg:
        s.start()
        lg.subscribe(P.MsgType.LOG_DATA, P.MsgType.LOG_DATA)
        got = b""
        end = time.monotonic() + 20
        while b"demo: uptime" not in got and time.monotonic() < end:   # every 5 s
            try:
                fr = lg.next_event(timeout=1)
            except Exception:
                continue
            got += codec.decode_log(fr.payload)[1]
        assert b"demo: uptime" in got
        assert records_in(s.poll(1.0))


def test_flood_drops_are_counted_exactly(inst):
    """1 ms ticks into a small buffer drained once a second: most records
    drop, and every one is accounted for, end to end."""
    prog = program(begin_and_tick(), [(1, TICK, 1_000_000)], bufsize=4096, switchrate="1hz")
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s:
        s.start()
        events, end = [], time.monotonic() + 20
        while not any(e[0] == "drops" for e in events) and time.monotonic() < end:
            events += s.poll(0.5)
        events += s.stop()
        st = s.status()
        reported = sum(n for e in events if e[0] == "drops" for n in e[1].values())
        assert st["drops_buf"] > 0 and reported == st["drops_buf"] + st["drops_chan"]
        assert len(records_in(events)) == s.delivered
        assert s.delivered + st["drops_chan"] == st["records"]
        assert st["records"] + st["drops_buf"] == st["fired"]
