"""Trace sessions through the mux against the fake kernel's trace model
(tests/faketrace.py): TraceSession's lifecycle, chunked upload and batched
enablings, TRACE_DATA routed only to the session's owner, teardown when a
client disconnects, drops accounted exactly, exit, missing capability."""
from __future__ import annotations

import socket
import struct
import time

import pytest

from instances import assert_closed_when_client_leaves, records_in
from introspect import codec, protocol as P
from introspect.client import Channel, wait_ready
from introspect.errors import ChannelError, MissingFeature
from introspect.trace import TraceSession, TraceVerifyError, parse_rate_us, parse_size
from probes import isa
from probes.program import Program

BEGIN, END, TICK = isa.SynthProbe.BEGIN, isa.SynthProbe.END, isa.SynthProbe.TICK


def program(enablings, size=3000, magic=isa.PROG_MAGIC, **options):
    blob = isa.PROG_HDR.pack(magic=magic, version=isa.PROG_VERSION)
    blob += bytes(i & 0xFF for i in range(size - len(blob)))
    return Program(source="", filename="-e", blob=blob, clauses=[], aggs=[], recdescs=[],
                   enablings=list(enablings), options=options)


@pytest.fixture
def fake_ready(fake):
    """conftest's fake, waiting until the instance answers: start() -> inst."""
    def start(name="fake", **kw):
        inst, _ = fake(name, **kw)
        wait_ready(inst, 10)
        return inst
    return start


def _poll_until(s, cond, timeout=10.0):
    events = []
    end = time.monotonic() + timeout
    while not cond(events) and time.monotonic() < end:
        events += s.poll(0.2)
    assert cond(events), events
    return events


def test_round_trip(fake_ready):
    inst = fake_ready()
    prog = program([(0, BEGIN, 0), (1, TICK, 5_000_000), (2, END, 0)], switchrate="100hz")
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s:
        s.start()
        events = _poll_until(s, lambda ev: len(records_in(ev)) >= 10)
        events += s.stop()
        recs = records_in(events)
        descs = [isa.REC_HDR.unpack(r)["desc"] for r in recs]
        assert descs[0] == 0 and descs[-1] == 2 and set(descs[1:-1]) == {1}
        st = s.status()
        assert s.delivered + st["drops_chan"] == st["records"] == len(recs)
        assert not any(e[0] == "drops" for e in events)
        aggs = s.aggregations()                       # three entries, two pages
        ents = [struct.unpack_from("<HHIQQ", aggs, i) for i in range(0, len(aggs), 24)]
        assert [e[3] for e in ents] == [BEGIN, END, TICK]       # sorted by probe id
        assert ents[0][4] == ents[1][4] == 1 and ents[2][4] == len(recs) - 2
        s.clear()
        assert all(struct.unpack_from("<Q", s.aggregations(), i + 16)[0] == 0
                   for i in range(0, 72, 24))
        sid = s.session
        s.close()
        s.close()                                     # idempotent
        with pytest.raises(ChannelError) as e:
            ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(sid))
        assert e.value.code_name == "NO_SESSION"


def test_upload_is_chunked_and_enablings_batched():
    enab = [(i % 3, TICK, 1_000_000 * (i + 1)) for i in range(70)]
    chunks = codec.trace_chunk_requests(5, program([], size=3000).blob)
    assert [len(c) for c in chunks] == [P.TRACE_CHUNK_MAX + 8] * 2 + [3000 - 2 * 1016 + 8]
    assert all(codec.classify(codec.Frame(P.MsgType.TRACE_CHUNK, 1, c)) is None for c in chunks)
    batches = codec.trace_enable_requests(5, enab)
    assert [(len(b) - 8) // 16 for b in batches] == [63, 7]
    assert all(codec.classify(codec.Frame(P.MsgType.TRACE_ENABLE, 1, b)) is None for b in batches)
    # one byte over the cap is the kernel's BAD_PAYLOAD, as the fuzz model predicts
    big = P.TRACE_CHUNK_REQ.pack(session=5, offset=0) + bytes(P.TRACE_CHUNK_MAX + 1)
    assert codec.classify(codec.Frame(P.MsgType.TRACE_CHUNK, 1, big)) == P.Reject.BAD_PAYLOAD
    assert codec.classify(codec.Frame(P.MsgType.TRACE_CHUNK, 1, big[:8])) == P.Reject.BAD_PAYLOAD


def test_verifier_refusal_is_structured_and_closes_the_session(fake_ready):
    inst = fake_ready()
    with Channel.for_instance(inst) as ch:
        s = TraceSession(ch, program([(0, BEGIN, 0)], magic=0x1234))
        with pytest.raises(TraceVerifyError) as e:
            s.start()
        assert (e.value.pc, e.value.reason) == (-1, "bad container magic")
        assert "refused the program at the program container" in e.value.msg
        assert s.session is None
        with pytest.raises(ChannelError):
            ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(0))


def test_trace_data_goes_only_to_the_owner(fake_ready):
    inst = fake_ready()
    prog = program([(0, TICK, 2_000_000)], switchrate="200hz")
    with Channel.for_instance(inst) as a, Channel.for_instance(inst) as b, \
            Channel.for_instance(inst) as c:
        c.subscribe(0, 0xFFFF)                       # a subscriber to everything
        sa, sb = TraceSession(a, prog), TraceSession(b, prog)
        sa.start()
        sb.start()
        assert sa.session != sb.session
        _poll_until(sa, lambda ev: len(records_in(ev)) >= 5)
        _poll_until(sb, lambda ev: len(records_in(ev)) >= 5)
        assert set(a._trace_frames) == {sa.session}
        assert set(b._trace_frames) == {sb.session}
        c.chanstat()
        assert not [f for f in c.events if f.type == P.MsgType.TRACE_DATA]
        assert a.mux_info()["frames_dropped"] == 0
        sa.close()
        sb.close()


def test_session_torn_down_when_its_client_disconnects(fake_ready):
    inst = fake_ready()
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(inst.chan_sock))
    raw.sendall(codec.encode(P.MsgType.TRACE_OPEN, 9, codec.trace_open_request(
        bufsize=4096, aggsize=4096, dynvarsize=4096, prog_len=100, switchrate_us=10000,
        wall_ns=0)))
    dec = codec.Decoder()
    frames = []
    while not frames:
        frames = dec.feed(raw.recv(4096))
    sid = codec.decode_trace_open(frames[0].payload)
    assert_closed_when_client_leaves(inst, sid, raw)


def test_drops_are_counted_exactly(fake_ready):
    inst = fake_ready()
    # 1 ms ticks into a 5-record buffer drained at 4 Hz: most records drop
    prog = program([(0, TICK, 1_000_000)], bufsize=120, switchrate="4hz")
    with Channel.for_instance(inst) as ch, TraceSession(ch, prog) as s:
        s.start()
        events = _poll_until(s, lambda ev: any(e[0] == "drops" for e in ev))
        events += s.stop()
        st = s.status()
        dropped = sum(v for e in events if e[0] == "drops" for k, v in e[1].items())
        assert dropped == st["drops_buf"] > 0
        assert len(records_in(events)) + st["drops_buf"] == st["fired"]


def test_exit_is_an_event(fake_ready):
    inst = fake_ready(extra=("--trace-exit-after", "3"))
    with Channel.for_instance(inst) as ch, TraceSession(ch, program([(0, TICK, 1_000_000)])) as s:
        s.start()
        events = _poll_until(s, lambda ev: ("exit",) in ev)
        assert len(records_in(events)) == 3
        assert s.status()["exiting"] == 1


def test_missing_trace_capability(fake_ready):
    inst = fake_ready(extra=("--features", str(int(P.Feature.LOG_STREAM))))
    with Channel.for_instance(inst) as ch:
        with pytest.raises(MissingFeature) as e:
            TraceSession(ch, program([])).start()
        assert "lacks the TRACE capability" in e.value.msg


def test_option_parsing():
    assert parse_size("64k") == 65536 and parse_size(100) == 100 and parse_size("4m") == 4 << 20
    assert parse_rate_us("50hz") == 20000 and parse_rate_us(10) == 100000
    assert parse_rate_us("5ms") == 5000 and parse_rate_us("1s") == 1_000_000


def test_sessions_table_pure():
    from introspect.routing import Sessions
    s = Sessions()
    s.add(3, "a")
    s.add(5, "b")
    s.add(7, "a")
    assert s.owner(3) == "a" and s.owner(5) == "b" and s.owner(9) is None
    assert s.drop_client("a") == [3, 7]
    assert s.owner(3) is None and s.owner(5) == "b"
    s.remove(5)
    s.remove(5)
    assert s.drop_client("b") == []


def test_decode_trace_data_checksrecords_in():
    rec = isa.REC_HDR.pack(size=24, desc=1, probe=4, timestamp=9) + bytes(8)
    head = dict(session=2, seq=0, flags=0, drops_buf=0, drops_chan=0, drops_agg=0,
                drops_dyn=0, errors=0)
    h, recs = codec.decode_trace_data(P.TRACE_DATA_HDR.pack(nrec=2, **head) + rec * 2)
    assert h["session"] == 2 and recs == rec * 2
    for bad in (P.TRACE_DATA_HDR.pack(nrec=3, **head) + rec * 2,      # count differs
                P.TRACE_DATA_HDR.pack(nrec=1, **head) + rec[:20],      # cut record
                P.TRACE_DATA_HDR.pack(nrec=1, **head) + b"\x07" + rec[1:]):  # size 7
        with pytest.raises(codec.ProtocolError):
            codec.decode_trace_data(bad)
