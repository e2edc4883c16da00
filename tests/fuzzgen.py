"""Generator of hostile byte streams for the probe channel (pure).

Each session is a list of chunks to send (split at random points) that
ends, when `cut` is set, with half a frame before the disconnect.  The
caller feeds the same bytes to `introspect.codec.KernelModel` to know
exactly what the kernel must count.
"""
from __future__ import annotations

import random
from introspect import codec
from introspect import protocol as P

M = P.MsgType
_VALID = (
    lambda r: codec.encode(M.HELLO, r.randrange(1, 1 << 32),
                           P.HELLO_REQ.pack(version=P.VERSION)),
    lambda r: codec.encode(M.CHANSTAT, r.randrange(1, 1 << 32)),
    lambda r: codec.encode(M.MEMSTAT, r.randrange(1, 1 << 32)),
    lambda r: codec.encode(M.MEMREAD, r.randrange(1, 1 << 32),
                           P.MEMREAD_REQ.pack(addr=r.choice([0, 0x100000, 0xfeb00000,
                                                             1 << 40, r.randrange(1 << 64)]),
                                              len=r.choice([1, 16, 64, 5000]))),
    lambda r: codec.encode(M.LOG, r.randrange(1, 1 << 32),
                           P.LOG_REQ.pack(offset=r.randrange(1 << 20), max_len=r.choice([0, 16, 64]))),
)


def _unknown(r):
    t = r.choice([0, 0x3F, 0x100, 0x4242, 0x7FFF, 0x8001, 0xFFFE])
    return codec.encode(t, r.randrange(1 << 32), r.randbytes(r.randrange(0, 48)))


def _bad_payload(r):
    t = r.choice([M.HELLO, M.THREADS, M.LOG, M.MEMREAD, M.CHANSTAT])
    want = P.REQUESTS[t].head
    n = r.choice([n for n in (0, 1, 3, want + 1, want - 1, 40) if n >= 0 and n != want])
    return codec.encode(t, r.randrange(1 << 32), r.randbytes(n))


def _bad_checksum(r):
    f = bytearray(r.choice((_VALID[0], _VALID[3], _VALID[4]))(r))   # non-empty payloads
    i = r.randrange(P.HEADER_SIZE, len(f))
    f[i] ^= 1 << r.randrange(8)
    return bytes(f)


def _bad_header(r):
    f = bytearray(r.choice(_VALID)(r))
    i = r.randrange(2, P.HEADER_SIZE)          # keep the magic: a frame start
    f[i] ^= 1 << r.randrange(8)
    return bytes(f)


def _oversized(r):
    n = r.randrange(P.MAX_REQUEST + 1, 3 * P.MAX_REQUEST)
    return codec.encode(M.CHANSTAT, r.randrange(1 << 32), r.randbytes(n))


def _junk(r):
    return r.randbytes(r.randrange(1, 40))


def _truncated(r):
    f = r.choice(_VALID)(r)
    return f[:r.randrange(1, len(f))]


KINDS = ((0.40, "valid", lambda r: r.choice(_VALID)(r)), (0.12, "unknown", _unknown),
         (0.10, "bad_payload", _bad_payload), (0.10, "bad_checksum", _bad_checksum),
         (0.10, "bad_header", _bad_header), (0.03, "oversized", _oversized),
         (0.10, "junk", _junk), (0.05, "truncated", _truncated))


def frames(r: random.Random, n: int) -> list[tuple[str, bytes]]:
    """n pieces, each a (kind, bytes) drawn from KINDS."""
    weights = [w for w, _, _ in KINDS]
    picks = r.choices(KINDS, weights=weights, k=n)
    return [(name, make(r)) for _, name, make in picks]


def session(r: random.Random, n: int, cut: bool) -> tuple[list[bytes], dict]:
    """Chunks to send for one connection and how many of each kind."""
    pieces = frames(r, n)
    kinds: dict = {}
    for k, _ in pieces:
        kinds[k] = kinds.get(k, 0) + 1
    data = b"".join(b for _, b in pieces)
    if cut:
        f = _VALID[1](r)
        data += f[:r.randrange(1, len(f))]
    chunks, i = [], 0
    while i < len(data):
        j = min(len(data), i + r.choice([1, 7, 64, 512, 4096]))
        chunks.append(data[i:j])
        i = j
    return chunks, kinds

