"""kernel/lib/string.c (word-at-a-time memcpy, memmove, memset, memcmp,
strlen, strnlen, str_copy) built for the host and compared with Python's
byte semantics at every length 0..40 and every alignment 0..7 of source
and destination, overlapping moves both ways, and random buffers."""
from __future__ import annotations

import ctypes
import random

import pytest

from cpure import build_shared

N = 40              # lengths 0..N cover the word loops and every tail
PAD = 24


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_shared(tmp_path_factory.mktemp("string"), ["tests/string_shim.c"],
                      name="string.so")
    L = ctypes.CDLL(str(so))
    P, S = ctypes.c_void_p, ctypes.c_size_t
    for name, args, res in (("k_memcpy", [P, P, S], P), ("k_memmove", [P, P, S], P),
                            ("k_memset", [P, ctypes.c_int, S], P),
                            ("k_memcmp", [P, P, S], ctypes.c_int),
                            ("k_strlen", [P], S), ("k_strnlen", [P, S], S),
                            ("k_str_copy", [P, P, S], None)):
        getattr(L, name).argtypes = args
        getattr(L, name).restype = res
    return L


def buf(data: bytes):
    """An 8-aligned ctypes buffer holding data, and its address."""
    b = (ctypes.c_uint64 * ((len(data) + 7) // 8 + 1))()
    ctypes.memmove(b, data, len(data))
    return b, ctypes.addressof(b)


def raw(b, n) -> bytes:
    return ctypes.string_at(ctypes.addressof(b), n)


def test_memcpy_every_length_and_alignment(lib):
    rnd = random.Random(1)
    for n in range(N + 1):
        for so in range(8):
            for do in range(8):
                src = bytes(rnd.randrange(256) for _ in range(N + PAD))
                dst0 = bytes(rnd.randrange(256) for _ in range(N + PAD))
                s, sa = buf(src)
                d, da = buf(dst0)
                assert lib.k_memcpy(da + do, sa + so, n) == da + do
                want = dst0[:do] + src[so:so + n] + dst0[do + n:]
                assert raw(d, len(dst0)) == want, (n, so, do)


def test_memmove_overlapping_both_ways(lib):
    rnd = random.Random(2)
    for n in range(N + 1):
        for shift in range(-9, 10):
            data = bytes(rnd.randrange(256) for _ in range(N + PAD + 20))
            b, a = buf(data)
            src, dst = 10, 10 + shift
            lib.k_memmove(a + dst, a + src, n)
            want = bytearray(data)
            want[dst:dst + n] = data[src:src + n]
            assert raw(b, len(data)) == bytes(want), (n, shift)


def test_memset_every_length_and_alignment(lib):
    for n in range(N + 1):
        for off in range(8):
            data = bytes(range(1, N + PAD + 1))
            b, a = buf(data)
            lib.k_memset(a + off, 0x1A5, n)          # only the low byte counts
            want = data[:off] + b"\xa5" * n + data[off + n:]
            assert raw(b, len(data)) == want, (n, off)


def test_memcmp_sign_and_first_difference(lib):
    rnd = random.Random(3)
    for n in range(N + 1):
        for _ in range(30):
            x = bytes(rnd.randrange(256) for _ in range(n))
            y = bytearray(x)
            if n and rnd.random() < 0.8:
                for _ in range(rnd.randrange(1, 3)):
                    y[rnd.randrange(n)] = rnd.randrange(256)
            xa, xp = buf(x)
            ya, yp = buf(bytes(y))
            for oa in (0, 3):
                xa2, xp2 = buf(b"\0" * oa + x)
                r = lib.k_memcmp(xp2 + oa, yp, n)
                want = (x > bytes(y)) - (x < bytes(y))
                assert (r > 0) - (r < 0) == want, (x, bytes(y))


def test_strlen_and_strnlen(lib):
    for n in range(N + 1):
        for off in range(8):
            for tail in (b"", b"x" * 9):
                data = b"\x01" * off + bytes(range(1, 256))[:n] + b"\0" + tail
                b, a = buf(data)
                assert lib.k_strlen(a + off) == n
                for m in (0, 1, n // 2, n, n + 1, n + 30):
                    assert lib.k_strnlen(a + off, m) == min(n, m), (n, off, m)


def test_str_copy_terminates_and_zero_fills(lib):
    for n in range(1, 20):
        for sl in (0, 5, 19, 30):
            s = bytes(range(65, 65 + sl)) + b"\0"
            sb, sa = buf(s)
            d, da = buf(b"\xff" * 32)
            lib.k_str_copy(da, sa, n)
            k = min(sl, n - 1)
            assert raw(d, 32) == s[:k] + b"\0" * (n - k) + b"\xff" * (32 - n)
