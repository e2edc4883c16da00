"""`Channel`: a synchronous client of the probe channel.

Normally it talks to the instance's mux (chan.sock), restarting the mux if it
died while QEMU lives.  `direct=True` talks to QEMU's chardev (probe.sock)
itself, bypassing the mux: only one such client is served at a time, which is
what the fuzz test wants.  Every socket operation has a timeout.
"""
from __future__ import annotations

import socket
import time
from collections import deque
from pathlib import Path

from . import codec
from . import protocol as P
from .errors import ChannelDown, ChannelError, ChannelTimeout, MissingFeature, UnikError

DEFAULT_TIMEOUT = 5.0


class Channel:
    def __init__(self, path: str | Path, *, timeout: float = DEFAULT_TIMEOUT,
                 direct: bool = False, name: str | None = None) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.direct = direct
        self.name = name or Path(path).parent.name
        self.dec = codec.Decoder(max_payload=P.MAX_PAYLOAD)
        self.events: deque = deque()         # unsolicited frames (id 0) seen
        self._pending: deque = deque()       # decoded frames not yet handed out
        self.next_id = 1
        self.kernel_features: int | None = None  # from HELLO, fetched when first needed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self.sock.close()
            raise ChannelDown(f"cannot connect to {self.path}: {e.strerror}",
                              "is the instance running? see: unik ls") from None
        except socket.timeout:
            self.sock.close()
            raise ChannelTimeout(f"connecting to {self.path} timed out",
                                 "the channel is busy or wedged") from None

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, name: str | None = None, *, direct: bool = False,
             timeout: float = DEFAULT_TIMEOUT, base: Path | None = None) -> "Channel":
        """Connect to instance `name` (or the only running one)."""
        from .instance import find
        inst = find(name, base=base)
        return cls.for_instance(inst, direct=direct, timeout=timeout)

    @classmethod
    def for_instance(cls, inst, *, direct: bool = False,
                     timeout: float = DEFAULT_TIMEOUT) -> "Channel":
        from .instance import ensure_mux
        inst.require_serving()          # fail fast on a stale or panicked instance
        if direct:
            return cls(inst.probe_sock, timeout=timeout, direct=True, name=inst.name)
        end = time.monotonic() + max(timeout, 10.0)
        while True:
            try:
                return cls(inst.chan_sock, timeout=timeout, name=inst.name)
            except ChannelTimeout:
                raise
            except ChannelDown:
                if time.monotonic() > end:
                    raise
                ensure_mux(inst, timeout=max(0.1, end - time.monotonic()))
                time.sleep(0.01)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ framing
    def send(self, mtype: int, payload: bytes = b"", rid: int | None = None) -> int:
        """Send one request; return its id."""
        if rid is None:
            rid = self.next_id
            self.next_id = self.next_id % 0xFFFFFFFF + 1
        self.send_raw(codec.encode(mtype, rid, payload))
        return rid

    def send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise ChannelTimeout(f"sending to {self.name} timed out",
                                 "the kernel is not reading its channel") from None
        except OSError as e:
            raise ChannelDown(f"the channel to {self.name} is down ({e.strerror or e})",
                              "is the instance still running? see: unik ls") from None

    def recv_frame(self, timeout: float | None = None) -> codec.Frame:
        """The next frame from the other side (reply or unsolicited)."""
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        pending = self._pending
        while not pending:
            left = end - time.monotonic()
            if left <= 0:
                raise ChannelTimeout(f"no reply from {self.name} within {timeout:g}s",
                                     self._silence_hint())
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError as e:
                raise ChannelDown(f"the channel to {self.name} is down ({e.strerror or e})",
                                  "is the instance still running? see: unik ls") from None
            if not data:
                raise ChannelDown(f"the channel to {self.name} closed",
                                  "the instance stopped or the mux exited; see: unik ls")
            pending.extend(self.dec.feed(data))
        return pending.popleft()

    def _silence_hint(self) -> str:
        """Why the kernel may be silent, from what its serial console said."""
        if self.direct:
            return "the probe chardev is held by another client (the mux?)"
        serial = Path(self.path).parent / "serial.log"
        try:
            with open(serial, "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 16384))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            tail = ""
        from .gdb import read_marker
        if read_marker(Path(self.path).parent):
            return f"stopped in gdb (unik gdb {self.name} detach)"
        if "PANIC" in tail or "kernel halted" in tail:
            return (f"the kernel panicked (see {serial}); "
                    f"unik stop {self.name} stops the instance")
        return f"the kernel may be hung or busy; see {serial}"

    def request(self, mtype: int, payload: bytes = b"",
                timeout: float | None = None) -> codec.Frame:
        """Send a request and wait for its reply.  ERROR replies raise
        ChannelError; unsolicited frames met meanwhile go to `events`.  A
        request of a family the kernel lacks (HELLO features) raises
        MissingFeature without being sent."""
        need = P.feature_of(mtype)
        if need:
            self.require(need, P.MsgType(mtype).name)
        timeout = self.timeout if timeout is None else timeout
        rid = self.send(mtype, payload)
        end = time.monotonic() + timeout
        while True:
            fr = self.recv_frame(max(0.0, end - time.monotonic()))
            if fr.id == 0:
                self.events.append(fr)
                continue
            if fr.id != rid:
                continue                    # a late reply to an abandoned request
            if fr.type == P.MsgType.ERROR:
                e = codec.decode_error(fr.payload)
                raise ChannelError(e["code"], e["code_name"], e["msg"], e["req_type"])
            if fr.type != (mtype | P.REPLY):
                raise UnikError(f"reply of type {fr.type:#06x} to request {mtype:#06x}",
                                "host and kernel disagree on the protocol: rebuild")
            return fr

    def route_events(self, types, queues: dict) -> None:
        """Move the unsolicited frames of `types` out of self.events into
        queues[their id] (a deque each; the id is the payload's first u32,
        a trace session's or a capture's), in order; other frames, and
        ones too short to name an id, stay.  So several TraceSessions or
        Captures share one channel.  Called by their _collect."""
        keep: deque = deque()
        while self.events:
            fr = self.events.popleft()
            key = codec.trace_data_session(fr.payload) if fr.type in types else None
            if key is None:
                keep.append(fr)
            else:
                queues.setdefault(key, deque()).append(fr)
        self.events.extend(keep)

    def next_event(self, timeout: float | None = None) -> codec.Frame:
        """The next unsolicited frame (after MUX_SUBSCRIBE)."""
        if self.events:
            return self.events.popleft()
        while True:
            fr = self.recv_frame(timeout)
            if fr.id == 0:
                return fr

    # ------------------------------------------------------------ helpers
    def _decode(self, fn, payload: bytes):
        try:
            return fn(payload)
        except codec.ProtocolError as e:
            raise UnikError(f"malformed reply from {self.name}: {e}",
                            "host and kernel disagree on the protocol: rebuild the kernel") from None

    def hello(self) -> dict:
        fr = self.request(P.MsgType.HELLO, codec.hello_request())
        h = self._decode(codec.decode_hello, fr.payload)
        self.kernel_features = h["features"]
        return h

    def features(self) -> int:
        """The kernel's HELLO feature bits (asked once per channel)."""
        if self.kernel_features is None:
            self.hello()
        return self.kernel_features

    def require(self, feature: int, what: str) -> None:
        """Raise MissingFeature unless the kernel has every bit of `feature`."""
        missing = feature & ~self.features()
        if missing:
            names = "+".join(f.name for f in P.Feature if missing & f)
            raise MissingFeature(self.name, names, what)

    def threads(self) -> tuple[dict, list[dict]]:
        return self._decode(codec.decode_threads, self.request(P.MsgType.THREADS).payload)

    def memstat(self) -> tuple[dict, list[dict]]:
        return self._decode(codec.decode_memstat, self.request(P.MsgType.MEMSTAT).payload)

    def log(self, offset: int = 0, max_len: int = P.LOG_READ_MAX) -> tuple[dict, bytes]:
        fr = self.request(P.MsgType.LOG, codec.log_request(offset, max_len))
        return self._decode(codec.decode_log, fr.payload)

    def memread(self, addr: int, length: int) -> bytes:
        """Read guest memory, in MEMREAD_MAX pieces."""
        out = bytearray()
        while length > 0:
            n = min(length, P.MEMREAD_MAX)
            fr = self.request(P.MsgType.MEMREAD, codec.memread_request(addr, n))
            h, data = self._decode(codec.decode_memread, fr.payload)
            if not data:
                break
            out += data
            addr += len(data)
            length -= len(data)
        return bytes(out)

    def chanstat(self) -> dict:
        return self._decode(codec.decode_chanstat, self.request(P.MsgType.CHANSTAT).payload)

    def mux_info(self) -> dict:
        if self.direct:
            raise UnikError("MUX_INFO needs the mux, not a direct channel", None)
        fr = self.request(P.MuxType.MUX_INFO)
        return self._decode(codec.decode_mux_info, fr.payload)

    def subscribe(self, type_lo: int = 0, type_hi: int = 0xFFFF, on: bool = True) -> None:
        self.request(P.MuxType.MUX_SUBSCRIBE, codec.subscribe_request(type_lo, type_hi, on))


def wait_ready(inst, timeout: float = 30.0) -> dict:
    """Wait until the instance's channel answers HELLO through the mux;
    return the HELLO reply.  Fails fast when QEMU or the mux die."""
    from .errors import NotRunning
    from .instance import ensure_mux, tail
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if not inst.running:
            serial = inst.dir / "serial.log"
            last = tail(serial, 1) or tail(inst.dir / "qemu.log", 1)
            raise NotRunning(f"instance {inst.name} exited during boot"
                             + (f": {last.strip()}" if last.strip() else ""),
                             f"see {serial} and {inst.dir / 'qemu.log'}; "
                             f"unik stop {inst.name} removes it")
        inst.require_serving()      # a kernel that panicked while booting
        if left <= 0:
            raise ChannelTimeout(f"the probe channel of {inst.name} did not answer in "
                                 f"{timeout:g}s", f"see {inst.dir / 'serial.log'} and "
                                 f"{inst.dir / 'muxd.log'}")
        try:
            ensure_mux(inst, timeout=min(left, 1.0))
            with Channel(inst.chan_sock, timeout=min(max(left, 0.5), 5.0),
                         name=inst.name) as ch:
                return ch.hello()
        except (NotRunning, ChannelTimeout):
            continue            # re-checked at the top of the loop


def wait_probe_sock(inst, timeout: float = 30.0) -> None:
    """Wait until QEMU accepts connections on probe.sock (no mux, no HELLO:
    for a direct client that wants the kernel's counters untouched)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        inst.require_running()
        if inst.probe_sock.exists():
            return
        time.sleep(0.02)
    raise ChannelTimeout(f"QEMU did not create {inst.probe_sock} in {timeout:g}s",
                         f"see {inst.dir / 'qemu.log'}")
