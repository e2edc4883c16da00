"""The kernel's frame decoder (kernel/chan/frame.c), built for the host, must
behave exactly like the host's reference model (introspect.codec):
same frames delivered, same reject reasons, same counters, for any byte
stream split in any way, with disconnects anywhere.

frame.c and kernel/lib/crc32.c are compiled with the host gcc into a shared
library (with tests/frame_shim.c, which classifies each delivered frame the
way kernel/chan/server.c does) and driven through ctypes.
"""
from __future__ import annotations

import ctypes
import os
import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzzgen
from cpure import build_shared
from introspect import codec
from introspect import protocol as P

M = P.MsgType
STAT_FIELDS = [f for f, _, _ in P.CHANSTAT_REP.fields]
SERVED = 0xFF
N_STREAMS = int(os.environ.get("UNIK_FRAME_STREAMS", "20000"))


class ChanStat(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [(f, ctypes.c_uint64) for f in STAT_FIELDS]


assert ctypes.sizeof(ChanStat) == P.CHANSTAT_REP.size


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_shared(tmp_path_factory.mktemp("frame_c"),
                      ["kernel/chan/frame.c", "kernel/lib/crc32.c",
                       "tests/frame_shim.c"])
    L = ctypes.CDLL(str(so))
    L.shim_new.restype = ctypes.c_void_p
    L.shim_free.argtypes = [ctypes.c_void_p]
    L.shim_feed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    L.shim_disconnect.argtypes = [ctypes.c_void_p]
    L.shim_take.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                            ctypes.POINTER(ctypes.c_int)]
    L.shim_take.restype = ctypes.c_void_p
    L.shim_stats.argtypes = [ctypes.c_void_p, ctypes.POINTER(ChanStat)]
    L.shim_held.argtypes = [ctypes.c_void_p]
    L.shim_held.restype = ctypes.c_uint32
    L.shim_discard.argtypes = [ctypes.c_void_p]
    L.shim_discard.restype = ctypes.c_uint32
    L.frame_encode.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint16,
                               ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]
    L.frame_encode.restype = ctypes.c_uint32
    L.frame_classify.argtypes = [ctypes.c_uint16, ctypes.c_uint32]
    L.frame_classify.restype = ctypes.c_int
    L.crc32_update.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    L.crc32_update.restype = ctypes.c_uint32
    return L


class CDec:
    """frame.c + the server's classification, through the shim."""

    def __init__(self, L):
        self.L = L
        self.h = L.shim_new()
        assert self.h

    def close(self):
        self.L.shim_free(self.h)

    def feed(self, data: bytes) -> list:
        self.L.shim_feed(self.h, data, len(data))
        return self._take()

    def disconnect(self) -> None:
        self.L.shim_disconnect(self.h)
        assert self._take() == []

    def _take(self) -> list:
        n, ovf = ctypes.c_size_t(), ctypes.c_int()
        p = self.L.shim_take(self.h, ctypes.byref(n), ctypes.byref(ovf))
        assert not ovf.value
        raw = ctypes.string_at(p, n.value) if n.value else b""
        out, i = [], 0
        while i < len(raw):
            why = raw[i]
            t = int.from_bytes(raw[i + 1:i + 3], "little")
            rid = int.from_bytes(raw[i + 3:i + 7], "little")
            ln = int.from_bytes(raw[i + 7:i + 11], "little")
            out.append((why, t, rid, raw[i + 11:i + 11 + ln]))
            i += 11 + ln
        return out

    @property
    def stats(self) -> dict:
        s = ChanStat()
        self.L.shim_stats(self.h, ctypes.byref(s))
        return {f: getattr(s, f) for f in STAT_FIELDS}

    @property
    def held(self) -> int:
        return self.L.shim_held(self.h)


class PyDec:
    """The reference: codec.KernelModel for counters and served frames, plus a
    plain codec.Decoder for every delivered frame and its classification."""

    def __init__(self):
        self.model = codec.KernelModel()
        self.plain = codec.Decoder(max_payload=P.MAX_REQUEST)

    def feed(self, data: bytes) -> list:
        served = self.model.feed(data)
        out = []
        for fr in self.plain.feed(data):
            why = codec.classify(fr)
            out.append((SERVED if why is None else int(why), fr.type, fr.id, fr.payload))
        assert [(t, i, p) for w, t, i, p in out if w == SERVED] == \
            [(f.type, f.id, f.payload) for f in served]
        return out

    def disconnect(self) -> None:
        self.model.disconnect()
        self.plain.disconnect()

    @property
    def stats(self) -> dict:
        return dict(self.model.stats)


@pytest.fixture
def pair(lib):
    made = []

    def make():
        c = CDec(lib)
        made.append(c)
        return c, PyDec()
    yield make
    for c in made:
        c.close()


def run_ops(c: CDec, py: PyDec, ops) -> list:
    """ops: bytes (feed) or None (disconnect).  Checks after every op."""
    got = []
    for k, op in enumerate(ops):
        if op is None:
            c.disconnect()
            py.disconnect()
        else:
            a, b = c.feed(op), py.feed(op)
            assert a == b, f"op {k}: frames differ"
            got += a
        assert c.stats == py.stats, f"op {k}: stats differ"
        assert c.held == len(py.model.dec.buf), f"op {k}: bytes held differ"
    return got


# ------------------------------------------------------------ building blocks

def enc(t, rid=1, payload=b""):
    return codec.encode(t, rid, payload)


def hello(rid=1, version=P.VERSION):
    return enc(M.HELLO, rid, P.HELLO_REQ.pack(version=version))


def raw_frame(t, length, rid=1, payload=b"", pcrc=None):
    """A header with a correct header_crc but any length / payload_crc."""
    pcrc = zlib.crc32(payload) if pcrc is None else pcrc
    head = P.HEADER.struct.pack(P.MAGIC, t, length, rid, pcrc, 0)[:16]
    return head + zlib.crc32(head).to_bytes(4, "little") + payload


def zero_stats(**kw):
    s = dict.fromkeys(STAT_FIELDS, 0)
    s.update(kw)
    return s


# ------------------------------------------------------------ unit checks

def test_crc32_matches_zlib(lib):
    r = random.Random(1)
    for n in [0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 1000, 4097]:
        b = r.randbytes(n)
        assert lib.crc32_update(0, b, n) == zlib.crc32(b)
        # incremental, as zlib.crc32(b, crc)
        k = n // 3
        assert lib.crc32_update(lib.crc32_update(0, b[:k], k), b[k:], n - k) == zlib.crc32(b)


def test_encode_matches_codec(lib):
    r = random.Random(2)
    cap = P.HEADER_SIZE + P.MAX_PAYLOAD
    buf = ctypes.create_string_buffer(cap)
    for n in [0, 1, 19, 20, 88, 1024, 4096, P.MAX_PAYLOAD] + [r.randrange(0, 3000) for _ in range(50)]:
        t, rid, pl = r.randrange(1 << 16), r.randrange(1 << 32), r.randbytes(n)
        size = lib.frame_encode(buf, cap, t, rid, pl, n)
        assert size == P.HEADER_SIZE + n
        assert buf.raw[:size] == codec.encode(t, rid, pl)
    # payload already in place (the server builds replies that way)
    pl = r.randbytes(300)
    ctypes.memmove(ctypes.addressof(buf) + P.HEADER_SIZE, pl, len(pl))
    inplace = ctypes.cast(ctypes.addressof(buf) + P.HEADER_SIZE, ctypes.c_char_p)
    size = lib.frame_encode(buf, cap, M.LOG | P.REPLY, 77, inplace, len(pl))
    assert buf.raw[:size] == codec.encode(M.LOG | P.REPLY, 77, pl)
    # refusals
    assert lib.frame_encode(buf, cap, 1, 1, b"x" * (P.MAX_PAYLOAD + 1), P.MAX_PAYLOAD + 1) == 0
    assert lib.frame_encode(buf, P.HEADER_SIZE + 9, 1, 1, b"x" * 10, 10) == 0
    assert lib.frame_encode(buf, P.HEADER_SIZE - 1, 1, 1, b"", 0) == 0


def test_classify_matches_codec(lib):
    types = list(range(0, 10)) + [0x7FFF, 0x8000, 0x8001, 0x8006, 0xFFFE, 0xFFFF]
    for t in types:
        for n in [0, 1, 7, 8, 15, 16, 17, 24, 40, 1024]:
            want = codec.classify(codec.Frame(t, 0, b"\0" * n))
            assert lib.frame_classify(t, n) == (-1 if want is None else int(want)), (t, n)


# ------------------------------------------------------------ fixed vectors

def check(pair, ops, **expect):
    c, py = pair()
    got = run_ops(c, py, ops)
    assert c.stats == zero_stats(**expect), c.stats
    return got


def test_valid_frames(pair):
    f = hello(5) + enc(M.CHANSTAT, 6) + enc(M.THREADS, 7)
    got = check(pair, [f], bytes_in=len(f), frames_in=3)
    assert [(w, t, i) for w, t, i, _ in got] == \
        [(SERVED, M.HELLO, 5), (SERVED, M.CHANSTAT, 6), (SERVED, M.THREADS, 7)]


def test_byte_at_a_time(pair):
    f = hello(5) + enc(M.LOG, 9, P.LOG_REQ.pack(offset=3, max_len=100))
    got = check(pair, [f[i:i + 1] for i in range(len(f))], bytes_in=len(f), frames_in=2)
    assert [g[2] for g in got] == [5, 9]


def test_skipped_bytes(pair):
    junk = b"abcUxUUk\0K"                       # no "UK": all 10 skipped
    check(pair, [junk + hello()], bytes_in=len(junk) + 28, skipped_bytes=len(junk),
          frames_in=1)


def test_trailing_u_is_held(pair):
    # a 'U' that is the last byte may start a frame: held, not skipped
    check(pair, [b"xyU"], bytes_in=3, skipped_bytes=2)
    check(pair, [b"xyU", None], bytes_in=3, skipped_bytes=2, rej_truncated=1, disconnects=1)
    f = hello()
    check(pair, [b"xyU", f[1:]], bytes_in=2 + len(f), skipped_bytes=2, frames_in=1)
    check(pair, [b"xyU", b"U" + f[1:]], bytes_in=3 + len(f), skipped_bytes=3, frames_in=1)


def test_bad_header(pair):
    f = bytearray(hello())
    f[6] ^= 0x10                                # length byte: header_crc now wrong
    # drop one byte, then "K..." up to the next "UK" is skipped
    check(pair, [bytes(f) + hello(2)], bytes_in=len(f) + 28, rej_bad_header=1,
          skipped_bytes=len(f) - 1, frames_in=1)


def test_bad_header_resyncs_into_payload(pair):
    inner = hello(42)
    outer = bytearray(enc(M.LOG, 1, inner))
    outer[19] ^= 1                              # header_crc wrong
    # one byte dropped, the other 19 header bytes skipped, the inner frame found
    got = check(pair, [bytes(outer)], bytes_in=len(outer), rej_bad_header=1,
                skipped_bytes=P.HEADER_SIZE - 1, frames_in=1)
    assert got[0][2] == 42


def test_oversized(pair):
    n = P.MAX_REQUEST + 1
    f = raw_frame(M.CHANSTAT, n, payload=bytes(n))
    check(pair, [f + hello()], bytes_in=len(f) + 28, rej_oversized=1, frames_in=1)
    # a payload that is itself full of valid frames is discarded whole
    inner = hello() * 60
    f = raw_frame(M.CHANSTAT, len(inner), payload=inner)
    check(pair, [f], bytes_in=len(f), rej_oversized=1)


def test_largest_request_accepted(pair):
    pl = bytes(range(256)) * 4                  # exactly MAX_REQUEST
    got = check(pair, [enc(0x4242, 3, pl)], bytes_in=P.HEADER_SIZE + 1024, frames_in=1,
                rej_unknown_type=1)
    assert got == [(P.Reject.UNKNOWN_TYPE, 0x4242, 3, pl)]


def test_oversized_huge_then_disconnect(pair):
    # length 0xffffffff: discarding never ends until the host leaves; the
    # empty buffer is not TRUNCATED, and the next connection starts clean
    f = raw_frame(M.CHANSTAT, 0xFFFFFFFF)
    check(pair, [f, b"x" * 5000, None, hello()], bytes_in=len(f) + 5000 + 28,
          rej_oversized=1, disconnects=1, frames_in=1)


def test_bad_checksum(pair):
    f = bytearray(hello())
    f[-1] ^= 0x80
    check(pair, [bytes(f) + hello(2)], bytes_in=56, rej_bad_checksum=1, frames_in=1)
    check(pair, [raw_frame(M.THREADS, 0, pcrc=1)], bytes_in=20, rej_bad_checksum=1)


def test_unknown_type(pair):
    fs = [enc(t) for t in (0, 0x3F, 0x8001, M.ERROR, 0x4242)]
    got = check(pair, [b"".join(fs)], bytes_in=sum(map(len, fs)), frames_in=5,
                rej_unknown_type=5)
    assert {g[0] for g in got} == {P.Reject.UNKNOWN_TYPE}


def test_bad_payload(pair):
    fs = [enc(M.HELLO, 1, b"\0" * 7), enc(M.THREADS, 1, b"x"), enc(M.LOG, 1, bytes(15)),
          enc(M.MEMREAD, 1, bytes(17)), enc(M.CHANSTAT, 1, b"\0"), enc(M.MEMSTAT, 1, b"?")]
    got = check(pair, [b"".join(fs)], bytes_in=sum(map(len, fs)), frames_in=6,
                rej_bad_payload=6)
    assert {g[0] for g in got} == {P.Reject.BAD_PAYLOAD}


def test_truncated(pair):
    f = hello()
    for cut in (1, 2, 19, 20, 21, 27):
        check(pair, [f[:cut], None], bytes_in=cut, rej_truncated=1, disconnects=1)
    # nothing held: a disconnect is not a truncation
    check(pair, [f, None], bytes_in=28, frames_in=1, disconnects=1)
    check(pair, [None, None], disconnects=2)
    # the next connection starts from a clean decoder
    check(pair, [f[:10], None, f], bytes_in=38, rej_truncated=1, disconnects=1, frames_in=1)


# ------------------------------------------------------------ random streams

def _uk_junk(r):
    return bytes(r.choice(b"UKUK\0xk") for _ in range(r.randrange(1, 30)))


def _max_frame(r):
    t = r.choice([0x4242, M.HELLO, M.LOG])
    return enc(t, r.randrange(1 << 32), r.randbytes(r.choice([P.MAX_REQUEST - 1, P.MAX_REQUEST])))


def _just_oversized(r):
    n = r.choice([P.MAX_REQUEST + 1, P.MAX_REQUEST + 2, 2 * P.MAX_REQUEST])
    body = r.randbytes(n) if r.random() < 0.5 else (hello() * (n // 28 + 1))[:n]
    return raw_frame(r.choice([M.CHANSTAT, 0x7777]), n, payload=body)


def _huge_length(r):
    return raw_frame(M.LOG, r.choice([0xFFFFFFFF, 1 << 20, 70000]), payload=r.randbytes(r.randrange(50)))


def _nested(r):
    inner = r.choice(fuzzgen._VALID)(r)
    pre = r.randbytes(r.randrange(0, 8))
    outer = bytearray(enc(0x4242, r.randrange(1 << 32), pre + inner))
    outer[r.randrange(2, P.HEADER_SIZE)] ^= 1 << r.randrange(8)
    return bytes(outer)


def _hello_bad_version(r):
    return hello(r.randrange(1 << 32), version=r.choice([0, 2, 0xFFFFFFFF]))


EXTRA = [_uk_junk, _max_frame, _just_oversized, _huge_length, _nested, _hello_bad_version]


def _mutate(r, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(r.randrange(1, 6)):
        if not b:
            break
        op = r.randrange(5)
        i = r.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << r.randrange(8)                 # bit flip
        elif op == 1:
            del b[i:i + r.randrange(1, 30)]             # deletion
        elif op == 2:
            b[i:i] = r.randbytes(r.randrange(1, 30))    # insertion
        elif op == 3:
            j = r.randrange(len(b))
            b[i:i] = b[j:j + r.randrange(1, 60)]        # duplication
        else:
            b[i:i] = b"UK"                              # a false frame start
    return bytes(b)


def random_stream(r: random.Random) -> list:
    """A list of ops (bytes to feed, None = disconnect) for one test stream."""
    style = r.randrange(4)
    if style == 0:                                       # pure noise
        data = r.randbytes(r.randrange(1, 3000))
    else:
        pieces = [b for _, b in fuzzgen.frames(r, r.randrange(1, 25))]
        pieces += [r.choice(EXTRA)(r) for _ in range(r.randrange(0, 4))]
        r.shuffle(pieces)
        data = b"".join(pieces)
        if style == 2:
            data = _mutate(r, data)
        elif style == 3 and data:                        # truncated at the end
            data = data[:r.randrange(len(data))]
    ops, i = [], 0
    while i < len(data):
        k = r.choice([1, 2, 3, 7, 19, 20, 21, 64, 512, 1044, 1045, 2048, 4096, 100000])
        if r.random() < 0.3:
            k = r.randrange(1, 200)
        ops.append(data[i:i + k])
        i += k
        if r.random() < 0.03:
            ops.append(None)
    if r.random() < 0.5:
        ops.append(None)
    return ops


def test_random_streams(pair):
    """>= 20,000 random and mutated streams, fed at random split points, with
    disconnects anywhere: identical frames and counters after every op."""
    seed = int(os.environ.get("UNIK_FRAME_SEED", "20261101"))
    r = random.Random(seed)
    c, _ = pair()
    totals = dict.fromkeys(STAT_FIELDS, 0)
    for n in range(N_STREAMS):
        ops = random_stream(r)
        # a fresh model per stream; the C decoder is reset by a disconnect
        # and compared relative to its counters at the start of the stream
        c.disconnect()
        base = c.stats
        py = PyDec()
        for k, op in enumerate(ops):
            if op is None:
                c.disconnect()
                py.disconnect()
                got_c = []
                got_p = []
            else:
                got_c, got_p = c.feed(op), py.feed(op)
            where = f"stream {n} (seed {seed}) op {k}"
            assert got_c == got_p, where
            now = c.stats
            assert {f: now[f] - base[f] for f in STAT_FIELDS} == py.stats, where
            assert c.held == len(py.model.dec.buf), where
        for f in STAT_FIELDS:
            totals[f] += py.stats[f]
    # the generator must actually exercise every path
    for f in ("frames_in", "skipped_bytes", "rej_bad_header", "rej_oversized",
              "rej_bad_checksum", "rej_unknown_type", "rej_bad_payload",
              "rej_truncated", "disconnects"):
        assert totals[f] > N_STREAMS // 50, (f, totals)


def _ops_strategy():
    piece = st.one_of(
        st.binary(max_size=64),
        st.sampled_from([hello(), enc(M.CHANSTAT, 3), enc(M.THREADS, 4), b"U", b"UK", b"K",
                         raw_frame(M.LOG, 5000), raw_frame(M.LOG, 16, pcrc=0),
                         enc(M.HELLO, 1, b"\0" * 9), enc(0x9999, 2, b"zz")]),
        st.builds(lambda t, i, p: enc(t, i, p), st.integers(0, 0xFFFF),
                  st.integers(0, 0xFFFFFFFF), st.binary(max_size=40)),
    )
    stream = st.lists(piece, max_size=12).map(b"".join)
    return st.tuples(stream, st.lists(st.integers(0, 400), max_size=8),
                     st.lists(st.integers(0, 400), max_size=3),
                     st.lists(st.tuples(st.integers(0, 400), st.integers(0, 7)), max_size=3))


@settings(max_examples=int(os.environ.get("UNIK_FRAME_HYPOTHESIS", "1500")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(_ops_strategy())
def test_hypothesis_streams(pair, args):
    data, cuts, disc, flips = args
    b = bytearray(data)
    for pos, bit in flips:
        if b:
            b[pos % len(b)] ^= 1 << bit
    data = bytes(b)
    points = sorted({x % (len(data) + 1) for x in cuts + disc} | {0, len(data)})
    dpoints = {x % (len(data) + 1) for x in disc}
    ops = []
    for a, z in zip(points, points[1:]):
        if a in dpoints:
            ops.append(None)
        ops.append(data[a:z])
    if len(data) in dpoints:
        ops.append(None)
    c, py = pair()
    run_ops(c, py, ops)
