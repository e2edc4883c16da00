"""introspect.client.Channel in direct mode against an in-process fake
kernel, and the codec payload helpers it relies on."""
import socket
import threading
import time

import pytest

import fakekernel
from introspect import codec, protocol as P
from introspect.client import Channel
from introspect.errors import ChannelDown, ChannelError, ChannelTimeout, UnikError


@pytest.fixture
def fk(tmp_path):
    k = fakekernel.FakeKernel(str(tmp_path / "probe.sock"), build_id="12" * 20)
    t = threading.Thread(target=k.serve_forever, daemon=True)
    t.start()
    yield k
    k.stop()


def test_helpers(fk):
    with Channel(fk.path, direct=True) as ch:
        h = ch.hello()
        assert h["build_id"] == "12" * 20 and h["version"] == P.VERSION
        head, threads = ch.threads()
        assert head["count"] == len(threads) == 3
        assert {t["state_name"] for t in threads} == {"running", "runnable", "sleeping"}
        mh, classes = ch.memstat()
        assert mh["nclasses"] == len(classes) and "pad" not in classes[0]
        lh, text = ch.log(0)
        assert text == b"fake kernel booted\n" and lh["next"] == len(text)
        st = ch.chanstat()
        assert st["frames_in"] == 5 and st["connects"] == 1


def test_memread_in_pieces(fk):
    with Channel(fk.path, direct=True) as ch:
        n = P.MEMREAD_MAX * 2 + 100
        data = ch.memread(fakekernel.MEM_BASE + 5, n)
        assert data == bytes((5 + i) & 0xFF for i in range(n))
        assert ch.chanstat()["frames_in"] == 4


def test_error_reply_raises_channel_error(fk):
    with Channel(fk.path, direct=True) as ch:
        with pytest.raises(ChannelError) as e:
            ch.memread(0, 8)
        assert e.value.code == P.ErrCode.FAULT and e.value.code_name == "FAULT"
        assert e.value.req_type == P.MsgType.MEMREAD
        assert e.value.msg.startswith("MEMREAD failed: FAULT: ")
        assert e.value.hint == "the address is not mapped or not readable in the guest"
        with pytest.raises(ChannelError, match="VERSION"):
            ch.request(P.MsgType.HELLO, codec.hello_request(99))
        assert ch.hello()["version"] == P.VERSION   # still usable afterwards


def test_log_lost_bytes(fk):
    for i in range(500):
        fk.klog(f"line {i:04d}\n")              # more than the fake's 4 KiB ring
    with Channel(fk.path, direct=True) as ch:
        h, data = ch.log(0, 100)
        assert h["lost"] == h["oldest"] > 0 and h["offset"] == h["oldest"]
        assert len(data) == 100


def test_connect_errors(tmp_path):
    with pytest.raises(ChannelDown, match="cannot connect") as e:
        Channel(tmp_path / "none.sock")
    assert e.value.hint == "is the instance running? see: unik ls"


def test_timeout_and_closed_peer(tmp_path):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(tmp_path / "s.sock"))
    srv.listen(1)
    ch = Channel(tmp_path / "s.sock", timeout=0.3)
    conn, _ = srv.accept()
    t0 = time.monotonic()
    with pytest.raises(ChannelTimeout, match="no reply"):
        ch.hello()
    assert time.monotonic() - t0 < 2
    conn.close()
    with pytest.raises(ChannelDown, match="closed"):
        ch.hello()
    ch.close()
    srv.close()


def test_malformed_reply_is_unik_error(tmp_path):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(tmp_path / "s.sock"))
    srv.listen(1)
    ch = Channel(tmp_path / "s.sock", timeout=2)
    conn, _ = srv.accept()

    def answer():
        dec = codec.Decoder()
        while True:
            for fr in dec.feed(conn.recv(4096)):
                conn.sendall(codec.encode(fr.type | P.REPLY, 0, b"event"))   # unsolicited
                conn.sendall(codec.encode(fr.type | P.REPLY, fr.id + 100, b"stale"))
                conn.sendall(codec.encode(fr.type | P.REPLY, fr.id, b"short"))
                return
    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(UnikError, match="malformed reply"):
        ch.hello()
    assert len(ch.events) == 1 and ch.events[0].payload == b"event"
    ch.close()
    conn.close()
    srv.close()


def test_payload_codecs_roundtrip():
    assert P.LOG_REQ.unpack(codec.log_request(7, 99)) == {"offset": 7, "max_len": 99, "flags": 0}
    assert P.MEMREAD_REQ.unpack(codec.memread_request(0x10, 4))["len"] == 4
    assert P.MUX_SUBSCRIBE_REQ.unpack(codec.subscribe_request(1, 2, False)) == \
        {"type_lo": 1, "type_hi": 2, "on": 0}
    e = codec.decode_error(codec.error_payload(P.ErrCode.BUSY, 5, "x" * 100))
    assert e["code_name"] == "BUSY" and e["msg"] == "x" * 55
    with pytest.raises(codec.ProtocolError):
        codec.decode_hello(b"\0" * 10)
    with pytest.raises(codec.ProtocolError):
        codec.decode_log(P.LOG_REP.pack(len=5) + b"abc")
    info = P.MUX_INFO_REP.pack(clients=2, hello_len=0)
    assert codec.decode_mux_info(info)["hello"] is None


def test_reframe_rewrites_the_id_and_keeps_the_payload_crc():
    raw = codec.encode(P.MsgType.THREADS | P.REPLY, 7, b"x" * 300)
    fr = codec.Decoder().feed(raw)[0]
    again = codec.reframe(fr, 99)
    assert again == codec.encode(P.MsgType.THREADS | P.REPLY, 99, b"x" * 300)
    assert codec.Decoder().feed(again)[0].id == 99
