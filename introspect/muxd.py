"""The per-instance multiplexer daemon: `python -m introspect.muxd STATEDIR`.

QEMU's chardev socket (probe.sock) serves one client, so this daemon owns it
and serves any number of host clients on chan.sock with the same framed
protocol:

  * it connects to probe.sock (retrying: QEMU may not have created it yet),
    sends HELLO until the kernel answers, and checks the kernel's build-id
    against the ELF the instance was booted with (refusing on mismatch);
  * it then listens on chan.sock; each client request gets a fresh mux id on
    the way to the kernel and its own id back on the reply (routing.Router);
  * unsolicited kernel frames (id 0) go to the clients that subscribed to
    their type (MUX_SUBSCRIBE), except TRACE_DATA, which goes to the client
    that opened its trace session (learnt from TRACE_OPEN replies); when a
    client leaves, the mux closes its sessions (TRACE_CLOSE) and stops the
    kernel's log stream if nobody else follows it; requests typed MUX_FIRST..MUX_LAST are
    answered here (MUX_INFO, MUX_SUBSCRIBE) and never reach the kernel;
  * it exits when the kernel side closes (QEMU gone), removing chan.sock;
  * when the kernel panics (a CRASH frame, or a panic report on the serial
    console) it takes a core into the state directory (autocore.py).

Single-threaded asyncio.  A lock file (muxd.lock) keeps it to one mux per
instance; a fatal reason is left in muxd.error for clients to report.
"""
from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from . import autocore, codec
from . import protocol as P
from .instance import Instance, pid_alive
from .routing import Router, Sessions, Subscriptions

log = logging.getLogger("muxd")

SELF = "<mux>"                  # router key for the mux's own requests
HELLO_INTERVAL = 1.0            # seconds between HELLO retries while the kernel is silent
CONNECT_TIMEOUT = 30.0          # give up if probe.sock never accepts
CLIENT_BUFFER_MAX = 8 << 20     # a client this far behind is dropped
EXPIRE_EVERY = 10.0


class Fatal(Exception):
    def __init__(self, msg: str, hint: str | None = None, permanent: bool = True):
        super().__init__(msg)
        self.msg, self.hint, self.permanent = msg, hint, permanent


class Mux:
    def __init__(self, inst: Instance, expected_build_id: str | None = None) -> None:
        self.inst = inst
        self.expected = expected_build_id
        self.router = Router()
        self.subs = Subscriptions()
        self.clients: dict[int, asyncio.StreamWriter] = {}
        self.ids = itertools.count(1)
        self.stats = {k: 0 for k in ("clients_total", "frames_up", "frames_down",
                                     "frames_broadcast", "frames_dropped", "frames_local")}
        self.hello = b""
        self.features = 0               # the kernel's HELLO feature bits
        self.log_on = False             # LOG_SUBSCRIBE sent (someone wants LOG_DATA)
        self.sessions = Sessions()      # trace session -> the client that opened it
        self.captures = Sessions()      # packet capture -> the client that opened it
        self.pings = Sessions()         # guest ping (unik ping) -> the client that started it
        self.t0 = time.monotonic()
        self.kdec = codec.Decoder(max_payload=P.MAX_PAYLOAD)
        self.kr: asyncio.StreamReader | None = None
        self.kw: asyncio.StreamWriter | None = None
        self.server = None
        self.done = asyncio.Event()
        self.waited = False
        self.crash = autocore.Watcher(inst)     # takes a core when the kernel panics

    # ------------------------------------------------------------ kernel side
    async def connect(self) -> None:
        path = str(self.inst.probe_sock)
        end = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                self.kr, self.kw = await asyncio.open_unix_connection(path)
                log.info("connected to %s", path)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if not self.inst.running:
                    raise Fatal("QEMU exited before the probe channel came up",
                                f"see {self.inst.dir / 'qemu.log'}", permanent=False)
                if time.monotonic() > end:
                    raise Fatal(f"{path} did not accept a connection in {CONNECT_TIMEOUT:g}s",
                                f"see {self.inst.dir / 'qemu.log'}", permanent=False)
                await asyncio.sleep(0.02)

    def send_kernel(self, mtype: int, rid: int, payload: bytes = b"") -> None:
        self.kw.write(codec.encode(mtype, rid, payload))

    async def handshake(self) -> None:
        """HELLO until answered; check version and build-id."""
        last = 0.0
        while True:
            now = time.monotonic()
            if now - last >= HELLO_INTERVAL:
                rid = self.router.outbound(SELF, 0, P.MsgType.HELLO, now)
                self.send_kernel(P.MsgType.HELLO, rid, codec.hello_request())
                await self.kw.drain()
                if last and not self.waited and now - self.t0 > 5:
                    log.info("still waiting for the kernel's HELLO reply")
                    self.waited = True
                last = now
            try:
                data = await asyncio.wait_for(self.kr.read(65536), HELLO_INTERVAL)
            except asyncio.TimeoutError:
                continue
            if not data:
                raise Fatal("the kernel side closed during the handshake (QEMU exited?)",
                            f"see {self.inst.dir / 'serial.log'}", permanent=False)
            for fr in self.kdec.feed(data):
                p = self.router.inbound(fr.id)
                if p is None or p.client != SELF:
                    continue
                if fr.type == P.MsgType.ERROR:
                    err = codec.decode_error(fr.payload)
                    raise Fatal(f"the kernel refused HELLO: {err['code_name']}: {err['msg']}",
                                "host and kernel disagree on the protocol: rebuild the kernel "
                                "(unik build) and boot again")
                if fr.type == P.MsgType.HELLO | P.REPLY:
                    self.check_hello(fr.payload)
                    self.hello = fr.payload
                    return

    def check_hello(self, payload: bytes) -> None:
        h = codec.decode_hello(payload)
        if h["version"] != P.VERSION:
            raise Fatal(f"kernel speaks protocol version {h['version']}, host {P.VERSION}",
                        "rebuild the kernel (unik build) and boot again")
        want = self.expected
        if want and h["build_id"] != want:
            raise Fatal(f"build-id mismatch: the running kernel is {h['build_id'] or '(none)'}"
                        f" but {self.inst.kernel} is {want}",
                        "the kernel image changed since boot: stop the instance and boot again")
        self.features = h["features"]
        log.info("kernel HELLO: version %d build-id %s app %s kernel %s features %s",
                 h["version"], h["build_id"], h["app"], h["kernel"],
                 "+".join(h["feature_names"]) or "none")

    async def pump_kernel(self) -> None:
        while True:
            try:
                data = await self.kr.read(65536)
            except OSError as e:
                data = b""
                log.info("kernel side: %s", e)
            if not data:
                log.info("kernel side closed: instance gone")
                return
            for fr in self.kdec.feed(data):
                self.route_from_kernel(fr)

    def route_from_kernel(self, fr: codec.Frame) -> None:
        if fr.id == 0 and fr.type in (P.MsgType.TRACE_DATA, P.MsgType.TRACE_ABORT):
            return self.route_trace_data(fr)
        if fr.id == 0 and fr.type == P.MsgType.CAPTURE_DATA:
            return self.route_capture_data(fr)
        if fr.id == 0 and fr.type == P.MsgType.CRASH:
            log.info("CRASH frame from the kernel (%d bytes)", len(fr.payload))
            self.crash.frame(fr.payload)
        if fr.id == 0:
            targets = self.subs.targets(fr.type)
            if not targets:
                self.stats["frames_dropped"] += 1
                return
            raw = codec.reframe(fr, 0)
            for c in targets:
                self.send_client(c, raw)
                self.stats["frames_broadcast"] += 1
            return
        p = self.router.inbound(fr.id)
        if p is None:
            self.stats["frames_dropped"] += 1
            return
        if fr.type == P.MsgType.TRACE_OPEN | P.REPLY:
            self.opened(p.client, fr)
        if fr.type == P.MsgType.CAPTURE_OPEN | P.REPLY:
            self.capture_opened(p.client, fr)
        if fr.type == P.MsgType.NET_PING_START | P.REPLY and len(fr.payload) >= 4:
            self.ping_started(p.client, codec.trace_data_session(fr.payload))
        if p.client == SELF:
            if fr.type == P.MsgType.HELLO | P.REPLY:
                self.hello = fr.payload
            return
        if fr.type == P.MsgType.HELLO | P.REPLY:
            self.hello = fr.payload
        if p.client in self.clients:
            self.send_client(p.client, codec.reframe(fr, p.client_id))
            self.stats["frames_down"] += 1
        else:
            self.stats["frames_dropped"] += 1

    # ------------------------------------------------------------ client side
    def send_client(self, cid: int, raw: bytes) -> None:
        w = self.clients.get(cid)
        if w is None or w.is_closing():
            return
        if w.transport.get_write_buffer_size() > CLIENT_BUFFER_MAX:
            log.warning("client %d is not reading: dropped", cid)
            w.close()
            return
        w.write(raw)

    async def serve_client(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        cid = next(self.ids)
        self.clients[cid] = writer
        self.stats["clients_total"] += 1
        dec = codec.Decoder(max_payload=P.MAX_PAYLOAD)
        log.debug("client %d connected", cid)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for fr in dec.feed(data):
                    if P.is_mux_local(fr.type):
                        self.serve_local(cid, fr)
                        continue
                    self.forward(cid, fr)
                await self.kw.drain()
        except (ConnectionError, OSError) as e:
            log.debug("client %d: %s", cid, e)
        finally:
            log.debug("client %d left", cid)
            self.clients.pop(cid, None)
            self.router.drop_client(cid)
            self.subs.drop_client(cid)
            self.sync_streams()
            for sid in self.sessions.drop_client(cid):
                self.close_session(sid)
            for cap in self.captures.drop_client(cid):
                self.close_capture(cap)
            for pid in self.pings.drop_client(cid):
                self.stop_ping(pid)
            writer.close()

    def serve_local(self, cid: int, fr: codec.Frame) -> None:
        self.stats["frames_local"] += 1
        try:
            mtype = P.MuxType(fr.type)
        except ValueError:
            return self.reply_error(cid, fr, P.ErrCode.UNKNOWN_TYPE, "unknown mux request")
        lay = P.MUX_REQUESTS[mtype]
        if len(fr.payload) != (lay.size if lay else 0):
            return self.reply_error(cid, fr, P.ErrCode.BAD_PAYLOAD,
                                    f"{mtype.name} payload of {len(fr.payload)} bytes")
        if mtype == P.MuxType.MUX_INFO:
            self.send_client(cid, codec.encode(fr.type | P.REPLY, fr.id, self.info()))
        elif mtype == P.MuxType.MUX_SUBSCRIBE:
            req = lay.unpack(fr.payload)
            if req["on"]:
                self.subs.subscribe(cid, req["type_lo"], req["type_hi"])
            else:
                self.subs.unsubscribe(cid, req["type_lo"], req["type_hi"])
            self.sync_streams()
            self.send_client(cid, codec.encode(fr.type | P.REPLY, fr.id, b""))

    def route_trace_data(self, fr: codec.Frame) -> None:
        """A TRACE_DATA (or TRACE_ABORT) frame goes to the client that
        opened its session only (whoever else subscribes)."""
        owner = self.sessions.owner(codec.trace_data_session(fr.payload))
        if owner is None or owner not in self.clients:
            self.stats["frames_dropped"] += 1
            return
        self.send_client(owner, codec.reframe(fr, 0))
        self.stats["frames_broadcast"] += 1

    def opened(self, client, fr: codec.Frame) -> None:
        """A TRACE_OPEN reply: remember who owns the session; if that client
        left meanwhile, close the session at once."""
        try:
            sid = codec.decode_trace_open(fr.payload)
        except codec.ProtocolError:
            return
        if client in self.clients:
            self.sessions.add(sid, client)
        else:
            self.close_session(sid)

    def close_session(self, sid: int) -> None:
        rid = self.router.outbound(SELF, 0, P.MsgType.TRACE_CLOSE, time.monotonic())
        self.send_kernel(P.MsgType.TRACE_CLOSE, rid, codec.trace_session_request(sid))
        log.info("closing trace session %d: its client left", sid)

    # Packet captures (unik tcpdump): CAPTURE_DATA goes to the client that
    # opened the capture (its id leads the payload, as a trace session's
    # does), and a departed client's captures are closed.
    def route_capture_data(self, fr: codec.Frame) -> None:
        owner = self.captures.owner(codec.trace_data_session(fr.payload))
        if owner is None or owner not in self.clients:
            self.stats["frames_dropped"] += 1
            return
        self.send_client(owner, codec.reframe(fr, 0))
        self.stats["frames_broadcast"] += 1

    def capture_opened(self, client, fr: codec.Frame) -> None:
        if len(fr.payload) < 4:
            return
        cap = codec.trace_data_session(fr.payload)
        if client in self.clients:
            self.captures.add(cap, client)
        else:
            self.close_capture(cap)

    def close_capture(self, cap: int) -> None:
        rid = self.router.outbound(SELF, 0, P.MsgType.CAPTURE_CLOSE, time.monotonic())
        self.send_kernel(P.MsgType.CAPTURE_CLOSE, rid, P.CAPTURE_REQ.pack(capture=cap, pad=0))
        log.info("closing capture %d: its client left", cap)

    # Guest pings (unik ping): a client that leaves without NET_PING_STOP
    # (killed) must not leave the guest pinging forever.
    def ping_started(self, client, pid: int) -> None:
        if client in self.clients:
            self.pings.add(pid, client)
        else:
            self.stop_ping(pid)

    def stop_ping(self, pid: int) -> None:
        rid = self.router.outbound(SELF, 0, P.MsgType.NET_PING_STOP, time.monotonic())
        self.send_kernel(P.MsgType.NET_PING_STOP, rid, P.NET_PING_REQ.pack(ping=pid, pad=0))
        log.info("stopping ping %d: its client left", pid)

    def forward(self, cid: int, fr: codec.Frame) -> None:
        """A client's request on its way to the kernel (a TRACE_CLOSE also
        ends the session's ownership)."""
        if fr.type == P.MsgType.TRACE_CLOSE and len(fr.payload) >= 4:
            self.sessions.remove(codec.trace_data_session(fr.payload))
        if fr.type == P.MsgType.CAPTURE_CLOSE and len(fr.payload) >= 4:
            self.captures.remove(codec.trace_data_session(fr.payload))
        if fr.type == P.MsgType.NET_PING_STOP and len(fr.payload) >= 4:
            self.pings.remove(codec.trace_data_session(fr.payload))
        mid = self.router.outbound(cid, fr.id, fr.type, time.monotonic())
        self.kw.write(codec.reframe(fr, mid))
        self.stats["frames_up"] += 1

    def sync_streams(self) -> None:
        """Turn the kernel's LOG_DATA stream on while some client subscribes
        to it and off when the last one goes.  Sent before the client's
        subscribe reply, so anything the client asks next is served after
        the stream started."""
        want = bool(self.subs.targets(P.MsgType.LOG_DATA))
        if want == self.log_on or not self.features & P.Feature.LOG_STREAM or self.kw is None:
            return
        self.log_on = want
        rid = self.router.outbound(SELF, 0, P.MsgType.LOG_SUBSCRIBE, time.monotonic())
        self.send_kernel(P.MsgType.LOG_SUBSCRIBE, rid, codec.log_subscribe_request(want))

    def reply_error(self, cid: int, fr: codec.Frame, code: P.ErrCode, msg: str) -> None:
        self.send_client(cid, codec.encode(P.MsgType.ERROR, fr.id,
                                           codec.error_payload(code, fr.type, msg)))

    def info(self) -> bytes:
        head = P.MUX_INFO_REP.pack(
            version=P.VERSION, pid=os.getpid(), clients=len(self.clients),
            pending=len(self.router.pending),
            uptime_ns=int((time.monotonic() - self.t0) * 1e9),
            hello_len=len(self.hello), **self.stats)
        return head + self.hello

    # ------------------------------------------------------------ lifecycle
    async def expire_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRE_EVERY)
            for p in self.router.expire(time.monotonic()):
                log.warning("request %#06x from client %s never answered", p.type, p.client)

    async def listen(self) -> None:
        path = self.inst.chan_sock
        tmp = self.inst.dir / "chan.sock.new"
        for p in (path, tmp):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        self.server = await asyncio.start_unix_server(self.serve_client, path=str(tmp))
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)          # clients see chan.sock only once it accepts
        log.info("serving %s", path)

    def cleanup(self) -> None:
        try:
            self.inst.chan_sock.unlink()
        except FileNotFoundError:
            pass
        for w in list(self.clients.values()):
            w.close()
        if self.server:
            self.server.close()

    async def run(self) -> None:
        watch = asyncio.create_task(self.crash.run())   # a panic may come before HELLO
        try:
            await self.serve()
        finally:
            watch.cancel()

    async def serve(self) -> None:
        await self.connect()
        await self.handshake()
        await self.listen()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.done.set)
        tasks = [asyncio.create_task(self.pump_kernel()),
                 asyncio.create_task(self.done.wait()),
                 asyncio.create_task(self.expire_loop())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        self.cleanup()


def _lock(d: Path):
    """Take the instance's mux lock; None if another mux holds it.  Retries
    briefly: `Instance.mux_running` probes the lock by taking it for a moment."""
    fd = os.open(d / "muxd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    end = time.monotonic() + 0.5
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() > end:
                os.close(fd)
                return None
            time.sleep(0.01)


def _expected_build_id(inst: Instance) -> str | None:
    if inst.build_id:
        return inst.build_id
    try:
        from .elfinfo import build_id
        return build_id(inst.kernel) or None
    except Exception as e:          # no ELF to compare with: say so, do not refuse
        log.warning("cannot read the build-id of %s: %s", inst.kernel, e)
        return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m introspect.muxd STATEDIR", file=sys.stderr)
        return 2
    d = Path(argv[0]).resolve()
    logging.basicConfig(stream=sys.stderr,
                        level=logging.DEBUG if os.environ.get("UNIK_DEBUG") else logging.INFO,
                        format=f"%(asctime)s muxd[{os.getpid()}] %(levelname)s %(message)s")
    fd = _lock(d)
    if fd is None:
        log.info("another mux serves %s; exiting", d)
        return 0
    try:
        inst = Instance.load(d)
        inst.mux_pid = os.getpid()
        inst.save()
        (d / "muxd.error").unlink(missing_ok=True)
        (d / "chan.sock").unlink(missing_ok=True)    # a dead mux's: clients wait for ours
        if not pid_alive(inst.qemu_pid, str(d)):
            raise Fatal("QEMU is not running", f"unik stop {inst.name} removes it",
                        permanent=False)
        mux = Mux(inst, _expected_build_id(inst))
        asyncio.run(mux.run())
        return 0
    except Fatal as e:
        log.error("%s", e.msg)
        (d / "muxd.error").write_text(json.dumps(
            {"fatal": e.permanent, "msg": e.msg, "hint": e.hint}) + "\n")
        return 1
    except (OSError, ValueError) as e:
        log.error("%s", e)
        try:
            (d / "muxd.error").write_text(json.dumps(
                {"fatal": False, "msg": f"the mux failed: {e}", "hint": None}) + "\n")
        except OSError:
            pass
        return 1
    finally:
        try:
            (d / "chan.sock").unlink()
        except OSError:
            pass
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
