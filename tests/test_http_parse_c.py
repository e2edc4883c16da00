"""The HTTP application's request parser (kernel/apps/http/parse.c) built
for the host (with UBSan) and driven through ctypes: arbitrary bytes never
crash it and give a sane answer; a valid request parses to exactly its
length, and every strict prefix of it asks for more (partial reads);
pipelined requests parse one after another whatever follows them."""
from __future__ import annotations

import ctypes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpure import build_shared

STATUSES = {400, 405, 411, 413, 414, 431, 505}


class Req(ctypes.Structure):
    _fields_ = [("method", ctypes.c_int), ("path", ctypes.c_void_p), ("path_len", ctypes.c_uint32),
                ("body", ctypes.c_void_p), ("body_len", ctypes.c_uint32),
                ("http10", ctypes.c_bool), ("close", ctypes.c_bool),
                ("status", ctypes.c_uint16), ("reason", ctypes.c_char_p),
                ("expect_continue", ctypes.c_bool)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_shared(tmp_path_factory.mktemp("httpparse"), ["kernel/apps/http/parse.c"])
    lib = ctypes.CDLL(str(so))
    lib.http_parse.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.POINTER(Req)]
    lib.http_parse.restype = ctypes.c_int
    return lib


def parse(lib, data: bytes) -> tuple[int, Req, ctypes.Array]:
    buf = ctypes.create_string_buffer(data, len(data))      # exact size: no NUL after the data
    req = Req()
    return lib.http_parse(buf, len(data), ctypes.byref(req)), req, buf


def path_of(req: Req, buf) -> bytes:
    return ctypes.string_at(req.path, req.path_len)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=9000))
def test_arbitrary_bytes(lib, data):
    n, req, _ = parse(lib, data)
    assert -1 <= n <= len(data)
    if n < 0:
        assert req.status in STATUSES and req.reason and req.close


tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-",
                 min_size=1, max_size=20)


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["GET", "PUT", "DELETE", "HEAD", "POST", "BREW"]))
    path = "/" + "/".join(draw(st.lists(tokens, max_size=4)))
    body = draw(st.binary(max_size=300)) if method == "PUT" else b""
    special = {"host", "content-length", "transfer-encoding"}
    fields = [("Host", "h")] + [(k, v) for k, v in draw(st.lists(st.tuples(tokens, tokens),
                                                                 max_size=8))
                                if k.lower() not in special]
    if method == "PUT" or draw(st.booleans()):
        fields.append(("Content-Length", str(len(body))))
    eol = draw(st.sampled_from(["\r\n", "\n"]))
    head = f"{method} {path} HTTP/1.1{eol}" + "".join(f"{k}: {v}{eol}" for k, v in fields)
    return (head + eol).encode() + body, path.encode(), body


@settings(max_examples=150, deadline=None)
@given(requests(), st.binary(max_size=64))
def test_valid_request_and_its_prefixes(lib, r, tail):
    data, path, body = r
    n, req, buf = parse(lib, data + tail)
    assert n == len(data), (data, req.status, req.reason)
    assert path_of(req, buf) == path and ctypes.string_at(req.body, req.body_len) == body
    for cut in range(len(data)):
        assert parse(lib, data[:cut])[0] == 0, data[:cut]


@settings(max_examples=100, deadline=None)
@given(st.lists(requests(), min_size=2, max_size=5))
def test_pipelined(lib, rs):
    stream = b"".join(d for d, _, _ in rs)
    for d, path, _ in rs:
        n, req, buf = parse(lib, stream)
        assert n == len(d) and path_of(req, buf) == path
        stream = stream[n:]
    assert stream == b""


def test_limits_answered_before_the_head_ends(lib):
    """A too-long request line or head is refused as soon as the bytes
    show it, without waiting for an end that may never come."""
    assert parse(lib, b"GET /" + b"a" * 1100)[1].status == 414
    assert parse(lib, b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 4100)[1].status == 431
    assert parse(lib, b"PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 4097\r\n\r\n")[1].status == 413
    n, req, _ = parse(lib, b"PUT /kv/a HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n")
    assert (n, req.status) == (0, 0)                      # a largest body is awaited


def test_http10_keepalive(lib):
    assert parse(lib, b"GET / HTTP/1.0\r\n\r\n")[1].close
    assert not parse(lib, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[1].close
    assert parse(lib, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n")[1].close


def test_expect_continue_reported_once_head_is_complete(lib):
    head = b"PUT /kv/a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n"
    assert not parse(lib, head)[1].expect_continue                 # head not complete yet
    n, req, _ = parse(lib, head + b"\r\n")
    assert (n, req.expect_continue) == (0, True)
    assert parse(lib, head + b"\r\nabc")[0] == len(head) + 5
