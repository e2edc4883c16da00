"""unik tcpdump's line formatter (introspect/pktfmt.py) against the real
tcpdump: pcaps of scapy-built frames are written with introspect/pcapfile.py,
read back by `tcpdump -r` (with -n, -q -n, and without -n), and every
line must be tcpdump's, character for character, for the common cases."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from scapy.all import IP, TCP, Ether, Raw, raw

import pktcorpus
from introspect.pcapfile import PcapWriter, read_pcap
from introspect.pktfmt import Formatter

T0 = 1_700_000_000_000_000_000
# tcpdump names ethertype 0x9000 (Loopback); the formatter does not.
SKIP = {"ethonly"}


def session():
    """A TCP conversation with the options Linux sends, both directions."""
    c, s = ("10.0.2.2", 41234), ("10.0.2.15", 80)
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (111, 0)), ("NOP", None),
            ("WScale", 7)]
    e1 = Ether(src=pktcorpus.H_MAC, dst=pktcorpus.G_MAC)
    e2 = Ether(src=pktcorpus.G_MAC, dst=pktcorpus.H_MAC)
    out = [
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="S", seq=3000000000,
                                          window=64240, options=opts),
        e2 / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="SA", seq=77,
                                          ack=3000000001, window=65535,
                                          options=[("MSS", 1460)]),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="A", seq=3000000001,
                                          ack=78, window=502,
                                          options=[("NOP", None), ("NOP", None),
                                                   ("Timestamp", (112, 9))]),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="PA", seq=3000000001,
                                          ack=78, window=502) / Raw(b"PUT /kv/a HTTP/1.1\r\n\r\n"),
        e2 / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="PA", seq=78,
                                          ack=3000000023, window=65535) /
        Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        e2 / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="FA", seq=116,
                                          ack=3000000023, window=65535),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="RA", seq=3000000023,
                                          ack=117, window=0),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="SEC", seq=5, window=1),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="UA", seq=9, ack=3,
                                          urgptr=4, window=7) / Raw(b"abcd"),
        e1 / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="", seq=9, window=7),
    ]
    return [("s%d" % i, raw(p)) for i, p in enumerate(out)]


def corpus():
    return [(n, f) for n, f in pktcorpus.frames() if n not in SKIP] + session()


def tcpdump_lines(tmp_path, frames, *flags):
    if not shutil.which("tcpdump"):
        pytest.fail("tcpdump is not installed (make deps)")
    path = tmp_path / "t.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f)
        for i, (_, fr) in enumerate(frames):
            w.write(T0 + i * 1_234_567, fr)
    r = subprocess.run(["tcpdump", *flags, "-r", str(path)], capture_output=True, text=True,
                       env={**os.environ, "TZ": "UTC"}, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), path


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("flags,numeric,quick", [(("-n",), True, False),
                                                 (("-q", "-n"), True, True)])
def test_matches_tcpdump(tmp_path, flags, numeric, quick):
    frames = corpus()
    want, path = tcpdump_lines(tmp_path, frames, *flags)
    fmt = Formatter(numeric=numeric, quick=quick)
    with open(path, "rb") as f:
        got = [fmt.line(ts, data, wl) for ts, data, wl in read_pcap(f)]
    assert len(got) == len(want) == len(frames)
    bad = [(n, g, w) for (n, _), g, w in zip(frames, got, want) if g != w]
    assert not bad, "\n".join(f"{n}:\n  mine    {g}\n  tcpdump {w}" for n, g, w in bad)


def test_port_names_without_n(tmp_path):
    """Without -n, tcpdump names well-known ports (http, ssh)."""
    frames = [(n, f) for n, f in corpus() if n in ("syn", "get", "ssh", "udp", "ping")]
    want, path = tcpdump_lines(tmp_path, frames)
    fmt = Formatter(numeric=False)
    with open(path, "rb") as f:
        got = [fmt.line(ts, d, wl) for ts, d, wl in read_pcap(f)]
    assert got == want


def test_garbage_never_raises():
    import random
    rnd = random.Random(5)
    fmt = Formatter()
    base = [f for _, f in corpus()]
    for i in range(3000):
        f = bytearray(rnd.choice(base))
        for _ in range(rnd.randrange(1, 6)):
            if f:
                f[rnd.randrange(len(f))] = rnd.randrange(256)
        f = bytes(f[:rnd.randrange(len(f) + 1)])
        assert fmt.line(T0, f).startswith("00:00:00") or True
        assert isinstance(fmt.line(T0, f, len(f) + 9), str)
