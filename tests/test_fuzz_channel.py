"""Fuzz the real kernel's probe channel under QEMU with >= 100,000 hostile
frames: bad lengths and checksums, unknown types, truncated frames, oversized
payloads, random bytes between frames and disconnects mid-frame.

The host feeds the same bytes to `introspect.codec.KernelModel`, so the test
knows exactly how many frames the kernel must reject, by reason, and checks
the kernel's CHANSTAT counters against it.  Afterwards the kernel must still
answer `ps` correctly.
"""
from __future__ import annotations

import random
import socket
import threading
import time

from fuzzgen import session
from instances import booted, unsent, wait_until
from introspect import codec
from introspect import protocol as P

SESSIONS = 10
PIECES = 12_000                # per session; ~90% are frames, the rest junk
COMPARED = ("frames_in", "bytes_in", "skipped_bytes", "disconnects",
            *(f"rej_{r.name.lower()}" for r in P.Reject))


class Conn:
    """A raw connection to QEMU's chardev with a reader thread."""

    def __init__(self, path, timeout=30.0):
        end = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                break
            except OSError:
                s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.sock = s
        self.dec = codec.Decoder()
        self.frames = []
        self.eof = threading.Event()
        self.cv = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self.eof.set()
                with self.cv:
                    self.cv.notify_all()
                return
            got = self.dec.feed(data)
            with self.cv:
                self.frames.extend(got)
                self.cv.notify_all()

    def wait_frames(self, n, timeout):
        with self.cv:
            ok = self.cv.wait_for(lambda: len(self.frames) >= n or self.eof.is_set(), timeout)
        assert ok and len(self.frames) >= n, \
            f"kernel sent {len(self.frames)} replies, expected {n} (eof={self.eof.is_set()})"

    def request(self, mtype, payload=b"", timeout=30.0):
        rid = random.randrange(1, 1 << 31)
        before = len(self.frames)
        self.sock.sendall(codec.encode(mtype, rid, payload))
        self.wait_frames(before + 1, timeout)
        fr = self.frames[-1]
        assert fr.id == rid and fr.type == mtype | P.REPLY, fr
        return fr

    def hangup(self):
        """Half-close so QEMU reads everything before it sees EOF, then close."""
        self.sock.shutdown(socket.SHUT_WR)
        self.eof.wait(30)
        self.sock.close()


def _wait_hello(inst, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = Conn(inst.probe_sock)
        try:
            c.request(P.MsgType.HELLO, P.HELLO_REQ.pack(version=P.VERSION), timeout=2)
            return c
        except AssertionError:
            c.sock.close()
    raise AssertionError("kernel never answered HELLO")


def test_fuzz_100k_frames(tmp_path):
    with booted("demo", state=tmp_path, name="fuzz", boot_args=["--no-mux"]) as inst:
        _fuzz(inst)


def _fuzz(inst):
    r = random.Random(20261127)
    conn = _wait_hello(inst)
    base = codec.decode_chanstat(conn.request(P.MsgType.CHANSTAT).payload)
    model = codec.KernelModel()
    sent_pieces = 0
    for i in range(SESSIONS):
        if i:
            conn = Conn(inst.probe_sock)
        chunks, kinds = session(r, PIECES, cut=True)
        sent_pieces += sum(v for k, v in kinds.items() if k != "junk")
        before = dict(model.stats)
        served = []
        for c in chunks:
            served += model.feed(c)
        replies = len(served) + sum(model.stats[k] - before[k]
                                    for k in ("rej_unknown_type", "rej_bad_payload"))
        start = len(conn.frames)
        for c in chunks:
            conn.sock.sendall(c)
        conn.wait_frames(start + replies, 300)
        wait_until(lambda: unsent(conn.sock) == 0, 30, "QEMU to take every byte sent")
        conn.hangup()
        model.disconnect()
    assert sent_pieces >= 100_000
    last = Conn(inst.probe_sock)
    req = codec.encode(P.MsgType.CHANSTAT, 7)
    model.feed(req)
    last.sock.sendall(req)
    last.wait_frames(1, 30)
    now = codec.decode_chanstat(last.frames[0].payload)
    got = {k: now[k] - base[k] for k in COMPARED}
    want = {k: model.stats[k] for k in COMPARED}
    assert got == want
    assert sum(want[f"rej_{r.name.lower()}"] for r in P.Reject) > 50_000
    # ... and the kernel still answers ps correctly.
    head, threads = codec.decode_threads(last.request(P.MsgType.THREADS).payload)
    names = {t["name"] for t in threads}
    assert {"idle", "probe-chan"} <= names, names
    assert head["total"] == len(threads)
    last.hangup()
