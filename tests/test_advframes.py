"""The pure frame generator of the flood test (tests/advframes.py): its
checksums agree with scapy's, the frames it calls bad are bad (scapy
recomputes them), it is deterministic for a seed, and every frame fits
what QEMU's dgram backend carries (1 byte up to the driver's buffer)."""
from __future__ import annotations

import random

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

import advframes as A


def test_csum_matches_scapy():
    rng = random.Random(1)
    for _ in range(200):
        p = Ether() / IP(src="10.0.2.2", dst="10.0.2.15", id=rng.randrange(65536)) / \
            TCP(sport=rng.randrange(1, 65536), seq=rng.getrandbits(32)) / \
            rng.randbytes(rng.randrange(40))
        f = bytes(p)
        assert A.l4_csum(f, 6, 16) == Ether(f)[TCP].chksum
        assert A.csum(f[14:34]) == 0                  # a valid header sums to zero
        q = bytes(Ether() / IP(src="10.0.2.2", dst="10.0.2.15") /
                  UDP(sport=rng.randrange(1, 65536)) / rng.randbytes(rng.randrange(30)))
        assert A.l4_csum(q, 17, 6) == Ether(q)[UDP].chksum


def test_wrong_is_never_right():
    rng = random.Random(2)
    for good in (0, 1, 0xFFFE, 0xFFFF, 0x1234):
        for _ in range(500):
            w = A.wrong(good, rng)
            assert w not in (good, 0) and {w, good} != {0, 0xFFFF}


def scapy_ok(f: bytes, layer) -> bool:
    """Does the frame's checksum in `layer` equal what scapy computes?"""
    p = Ether(f)
    got = p[layer].chksum
    del p[layer].chksum
    return Ether(bytes(p))[layer].chksum == got


def test_bad_checksum_classes_are_bad_and_the_rest_is_well_formed():
    b = A.bad_checksums(A.Env(), random.Random(3), 50, 50, 50, 50)
    assert [x.name for x in b] == ["bad-ip-checksum", "bad-tcp-checksum", "bad-udp-checksum",
                                   "bad-icmp-checksum"]
    for f in b[0].frames:
        assert not scapy_ok(f, IP) and scapy_ok(f, UDP)
    for f in b[1].frames:
        assert scapy_ok(f, IP) and not scapy_ok(f, TCP)
    for f in b[2].frames:
        assert scapy_ok(f, IP) and not scapy_ok(f, UDP) and Ether(f)[UDP].chksum != 0
    for f in b[3].frames:
        assert scapy_ok(f, IP) and not scapy_ok(f, ICMP)
    for f in A.syn_flood(A.Env(), random.Random(4), 100)[0].frames:
        assert scapy_ok(f, IP) and scapy_ok(f, TCP) and Ether(f)[TCP].flags == "S"


def test_flood_is_deterministic_and_fits_the_link():
    one = A.flood(seed=5, scale=0.02)
    two = A.flood(seed=5, scale=0.02)
    assert [(b.name, b.frames, b.expect) for b in one] == \
        [(b.name, b.frames, b.expect) for b in two]
    assert [b.frames for b in A.flood(seed=6, scale=0.02)] != [b.frames for b in one]
    for b in one:
        assert b.frames, b.name
        assert all(1 <= len(f) <= A.RX_FRAME_MAX for f in b.frames), b.name
    tot = A.expected(one)
    assert tot["tcp.chkerr"] == len(one[1].frames) and tot["driver.rx_drop_bad"] > 0


def test_full_flood_size():
    """At scale 1 the flood is over 100,000 frames (counted, not sent)."""
    assert sum(len(b.frames) for b in A.flood()) >= 100_000
