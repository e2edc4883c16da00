"""`Capture`: one packet capture running in an instance's kernel.

The host side of the capture requests (docs/capture.md): open a capture
(snaplen, ring size, program length), upload libpcap's classic BPF
program in CAPTURE_PROG pieces, start it (the kernel's verifier may refuse:
`CaptureVerifyError` with its pc and reason).  The kernel then drains the
capture's ring into CAPTURE_DATA frames, which the mux routes to this
client alone; `poll()` returns the packets that came.  `stop()` stops the
tap, receives what was left and returns the final counters, so packets
received + counters["dropped"] == counters["matched"], exactly.

    with Capture(channel, prog, snaplen=262144) as cap:
        cap.start()
        while ...: for pkt in cap.poll(0.2): ...
        rest, counters = cap.stop()
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from . import codec
from . import protocol as P
from .errors import ChannelError, ChannelTimeout, UnikError

DEFAULT_BUFSIZE = 1 << 20
SNAPLEN_DEFAULT = 262144          # tcpdump's default
PKT = P.CAPTURE_PKT


@dataclass
class Packet:
    ts_ns: int                    # kernel time (ns since boot)
    wall_ns: int                  # the same on the host's clock (ns since the epoch)
    wirelen: int
    dir: int                      # 0 received, 1 sent
    data: bytes


class CaptureVerifyError(UnikError):
    def __init__(self, pc: int, reason: str) -> None:
        where = "the program" if pc < 0 else f"instruction {pc}"
        super().__init__(f"the kernel refused the filter program at {where}: {reason}",
                         "libpcap and the kernel's cBPF verifier disagree: report it with "
                         "the expression (unik tcpdump -d EXPR shows the program)")
        self.pc, self.reason = pc, reason


def decode_data(payload: bytes) -> tuple[dict, list[tuple[int, int, int, bytes]]]:
    """A CAPTURE_DATA payload: its head and (ts_ns, wirelen, dir, bytes) per
    packet.  ProtocolError when the packets do not fit their count."""
    if len(payload) < P.CAPTURE_DATA_HDR.size:
        raise codec.ProtocolError("CAPTURE_DATA shorter than its head")
    h = P.CAPTURE_DATA_HDR.unpack(payload[:P.CAPTURE_DATA_HDR.size])
    off, out = P.CAPTURE_DATA_HDR.size, []
    for _ in range(h["npkt"]):
        if off + PKT.size > len(payload):
            raise codec.ProtocolError("CAPTURE_DATA packet header past the end")
        r = PKT.unpack(payload[off:off + PKT.size])
        end = off + PKT.size + r["caplen"]
        if end > len(payload):
            raise codec.ProtocolError("CAPTURE_DATA packet bytes past the end")
        out.append((r["ts_ns"], r["wirelen"], r["dir"], payload[off + PKT.size:end]))
        off += PKT.size + (r["caplen"] + 7) // 8 * 8
    return h, out


def capture_req(cid: int) -> bytes:
    return P.CAPTURE_REQ.pack(capture=cid, pad=0)


def prog_requests(cid: int, blob: bytes) -> list[bytes]:
    """CAPTURE_PROG payloads for an encoded program (8 bytes per insn)."""
    per = P.CAPTURE_PROG_MAX * 8
    return [P.CAPTURE_PROG_REQ.pack(capture=cid, offset=o // 8) + blob[o:o + per]
            for o in range(0, len(blob), per)]


def inject(ch, frame: bytes, direction: int = 0, wirelen: int = 0) -> None:
    """CAPTURE_INJECT: run one frame through the kernel's tap (debug)."""
    ch.request(P.MsgType.CAPTURE_INJECT,
               P.CAPTURE_INJECT_REQ.pack(dir=direction, wirelen=wirelen) + frame)


class Capture:
    def __init__(self, channel, prog, snaplen: int = SNAPLEN_DEFAULT,
                 bufsize: int = DEFAULT_BUFSIZE, rate_us: int = 0) -> None:
        self.ch, self.prog = channel, list(prog)
        self.snaplen, self.bufsize, self.rate_us = snaplen, bufsize, rate_us
        self.cid: int | None = None
        self.frames = 0
        self.received = 0
        self.wall_offset = 0
        self._queues = channel.__dict__.setdefault("_capture_frames", {})

    def start(self) -> None:
        from .pcapfilter import encode
        ch = self.ch
        ch.require(P.Feature.CAPTURE, "packet capture")
        hello = ch.hello()
        self.wall_offset = time.time_ns() - hello["uptime_ns"]
        try:
            fr = ch.request(P.MsgType.CAPTURE_OPEN, P.CAPTURE_OPEN_REQ.pack(
                snaplen=self.snaplen, bufsize=self.bufsize, ninsns=len(self.prog),
                rate_us=self.rate_us))
        except ChannelError as e:
            if e.code_name != "NO_SPACE":
                raise
            raise UnikError(f"{ch.name}: no room for another capture ({e.msg})",
                            "every capture slot (CAPTURE_MAX in kernel tunables) is in "
                            "use: end another `unik tcpdump`") from None
        self.cid = P.CAPTURE_OPEN_REP.unpack(fr.payload[:P.CAPTURE_OPEN_REP.size])["capture"]
        self._queues[self.cid] = deque()
        try:
            for pl in prog_requests(self.cid, encode(self.prog)):
                ch.request(P.MsgType.CAPTURE_PROG, pl)
            fr = ch.request(P.MsgType.CAPTURE_START, capture_req(self.cid))
            r = P.CAPTURE_START_REP.unpack(fr.payload[:P.CAPTURE_START_REP.size])
            if not r["ok"]:
                raise CaptureVerifyError(r["pc"], r["msg"])
        except BaseException:
            self.close()
            raise

    def status(self) -> dict:
        fr = self.ch.request(P.MsgType.CAPTURE_STATUS, capture_req(self._cid()))
        return P.CAPTURE_STATUS_REP.unpack(fr.payload[:P.CAPTURE_STATUS_REP.size])

    def poll(self, timeout: float) -> list[Packet]:
        """Packets that arrived, waiting up to `timeout` s for the first."""
        self._cid()
        out: list[Packet] = []
        end = time.monotonic() + timeout
        self._collect(out)
        while not out:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                fr = self.ch.recv_frame(left)
            except ChannelTimeout:
                break
            if fr.id == 0:
                self.ch.events.append(fr)
            self._collect(out)
        return out

    def stop(self) -> tuple[list[Packet], dict]:
        """Stop the tap; the packets that were left and the final counters."""
        fr = self.ch.request(P.MsgType.CAPTURE_STOP, capture_req(self._cid()))
        counters = P.CAPTURE_STATUS_REP.unpack(fr.payload[:P.CAPTURE_STATUS_REP.size])
        out: list[Packet] = []
        self._collect(out)              # the kernel sent them before its reply
        return out, counters

    def close(self) -> None:
        cid, self.cid = self.cid, None
        if cid is None:
            return
        self._queues.pop(cid, None)
        try:
            self.ch.request(P.MsgType.CAPTURE_CLOSE, capture_req(cid))
        except UnikError:
            pass                        # the channel is gone: the mux closes it

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _cid(self) -> int:
        if self.cid is None:
            raise UnikError("the capture is closed", "start a new one")
        return self.cid

    def _collect(self, out: list) -> None:
        self.ch.route_events((P.MsgType.CAPTURE_DATA,), self._queues)
        q = self._queues.get(self.cid)
        while q:
            h, pkts = self.ch._decode(decode_data, q.popleft().payload)
            self.frames += 1
            for ts, wl, d, data in pkts:
                out.append(Packet(ts, ts + self.wall_offset, wl, d, data))
            self.received += len(pkts)
