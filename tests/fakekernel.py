"""A stand-in for the kernel's probe channel, for host-side tests.

`python tests/fakekernel.py SOCK [--build-id HEX] [--events SECONDS]`
listens on a unix socket the way QEMU's chardev does (one client at a time;
others wait in the listen queue) and answers the wire protocol with made-up
but well-formed data, decoding with `codec.KernelModel` so its CHANSTAT counts
are the ones the real kernel should report.  It is a test double: the product
talks to the real kernel.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

from introspect import codec
from introspect import protocol as P

EVENT_TYPE = 0x0100          # unsolicited frame type the fake emits with --events
MEM_BASE = 0x100000          # the fake's readable memory window
MEM_SIZE = 0x10000


class _Encoded(bytes):
    """A whole frame (an ERROR reply), as opposed to a reply payload."""


class FakeKernel:
    def __init__(self, path: str, build_id: str = "ab" * 20, events: float = 0.0,
                 app: str = "fake", features: int = P.FEATURES_ALL) -> None:
        self.path = path
        self.features = features            # what HELLO says; other families are unknown
        self.log_on = False                 # LOG_DATA stream (LOG_SUBSCRIBE)
        self.log_next = 0
        self.build_id = bytes.fromhex(build_id)
        self.events = events
        self.app = app
        self.t0 = time.monotonic()
        self.model = codec.KernelModel()
        self.logbuf = bytearray()
        self.log_base = 0                   # offset of logbuf[0]
        self.ring = 4096
        self.mem = bytes(i & 0xFF for i in range(MEM_SIZE))
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        self.loglock = threading.RLock()    # the log ring and its stream cursor
        self.stopping = False
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.srv.bind(path + ".new")
        self.srv.listen(1)
        os.rename(path + ".new", path)      # appears only once it accepts
        self.klog("fake kernel booted\n")
        from faketrace import FakeTrace
        self.trace = FakeTrace(self)

    # ------------------------------------------------------------ state
    def uptime_ns(self) -> int:
        return int((time.monotonic() - self.t0) * 1e9)

    def klog(self, text: str) -> None:
        with self.loglock:
            self.logbuf += text.encode()
            if len(self.logbuf) > self.ring:
                cut = len(self.logbuf) - self.ring
                del self.logbuf[:cut]
                self.log_base += cut
            if self.log_on:
                self.push_log()

    def push_log(self) -> None:
        """One LOG_DATA frame with the log bytes since the stream's cursor."""
        payload = self._log_read(self.log_next, P.MAX_PAYLOAD - P.LOG_REP.size)
        self.log_next = P.LOG_REP.unpack(payload)["next"]
        self.send(codec.encode(P.MsgType.LOG_DATA, 0, payload))

    # ------------------------------------------------------------ serving
    def serve_forever(self) -> None:
        if self.events:
            threading.Thread(target=self._event_loop, daemon=True).start()
        while not self.stopping:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.model.stats["connects"] += 1
            self.conn = conn
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    for fr in self.model.dec.feed(data):
                        reply = self.handle(fr)
                        if reply is not None:
                            self.send(reply)
            except OSError:
                pass
            finally:
                with self.lock:
                    self.conn = None
                self.log_on = False
                self.trace.host_left()
                self.model.disconnect()
                conn.close()

    def send(self, raw: bytes) -> None:
        with self.lock:
            if self.conn is None:
                self.model.stats["tx_dropped"] += 1
                return
            self.model.stats["frames_out"] += 1
            self.model.stats["bytes_out"] += len(raw)
            try:
                self.conn.sendall(raw)
            except OSError:
                pass

    def _event_loop(self) -> None:
        n = 0
        while not self.stopping:
            time.sleep(self.events)
            n += 1
            self.send(codec.encode(EVENT_TYPE, 0, n.to_bytes(8, "little")))

    def stop(self) -> None:
        self.stopping = True
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()
        with self.lock:
            if self.conn is not None:
                try:
                    self.conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # ------------------------------------------------------------ requests
    def handle(self, fr: codec.Frame) -> bytes | None:
        why = codec.classify(fr)
        if why is None and P.feature_of(fr.type) & ~self.features:
            why = P.Reject.UNKNOWN_TYPE        # a kernel without that family
        if why is not None:
            self.model.dec.reject(why)
            code = (P.ErrCode.UNKNOWN_TYPE if why == P.Reject.UNKNOWN_TYPE
                    else P.ErrCode.BAD_PAYLOAD)
            return self.error(fr, code, why.name.lower().replace("_", " "))
        t = P.MsgType(fr.type)
        if P.feature_of(t) & P.Feature.TRACE:
            reply = self.trace.handle(fr)
        else:
            reply = getattr(self, "do_" + t.name.lower())(fr)
        if isinstance(reply, _Encoded):
            return bytes(reply)
        return codec.encode(t | P.REPLY, fr.id, reply)

    def error(self, fr: codec.Frame, code: P.ErrCode, msg: str) -> bytes:
        return _Encoded(codec.encode(P.MsgType.ERROR, fr.id,
                                     codec.error_payload(code, fr.type, msg)))

    def do_hello(self, fr):
        req = P.HELLO_REQ.unpack(fr.payload)
        if req["version"] != P.VERSION:
            return self.error(fr, P.ErrCode.VERSION, f"version {req['version']} unsupported")
        return P.HELLO_REP.pack(version=P.VERSION, build_id_len=len(self.build_id),
                                build_id=self.build_id, uptime_ns=self.uptime_ns(),
                                tsc_hz=1_000_000_000, nthreads=len(self._threads()),
                                mem_kib=32768, app=self.app, kernel="unik-fake 0.1",
                                features=self.features)

    def _threads(self) -> list[dict]:
        up = self.uptime_ns()
        return [
            dict(tid=0, state=P.ThreadState.RUNNABLE, priority=0, flags=1, name="idle",
                 cpu_ns=up // 2, switches=100, stack_size=16384, stack_hwm=900, start_ns=0),
            dict(tid=1, state=P.ThreadState.RUNNING, priority=2, flags=1, name="probe-chan",
                 cpu_ns=up // 10, switches=42, stack_size=16384, stack_hwm=4000,
                 start_ns=1000),
            dict(tid=2, state=P.ThreadState.SLEEPING, priority=1, flags=2, name="worker",
                 wchan="timer", cpu_ns=up // 5, switches=77, stack_size=8192,
                 stack_hwm=8000, start_ns=2000),
        ]

    def do_threads(self, fr):
        ts = self._threads()
        return (P.THREADS_REP.pack(count=len(ts), total=len(ts), uptime_ns=self.uptime_ns())
                + b"".join(P.THREAD_INFO.pack(**t) for t in ts))

    def do_memstat(self, fr):
        sizes = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
        head = P.MEMSTAT_REP.pack(page_size=4096, nclasses=len(sizes) + 1,
                                  mem_total=32 << 20, pages_total=8000, pages_free=7000,
                                  pages_kernel=100, page_failures=0,
                                  heap_bytes_total=65536, heap_bytes_used=12345,
                                  heap_allocs=500, heap_frees=400, heap_failures=1)
        recs = b"".join(P.HEAP_CLASS.pack(size=s, in_use=i, allocs=i * 3, frees=i * 2,
                                          failures=0) for i, s in enumerate(sizes))
        return head + recs + P.HEAP_CLASS.pack(size=0, in_use=1, allocs=2, frees=1)

    def do_log(self, fr):
        req = P.LOG_REQ.unpack(fr.payload)
        return self._log_read(req["offset"], min(req["max_len"], P.LOG_READ_MAX))

    def _log_read(self, offset: int, max_len: int) -> bytes:
        with self.loglock:
            return self._log_read_locked(offset, max_len)

    def _log_read_locked(self, offset: int, max_len: int) -> bytes:
        head = self.log_base + len(self.logbuf)
        off = min(max(offset, self.log_base), head)
        lost = max(0, self.log_base - offset)
        n = min(max_len, head - off)
        i = off - self.log_base
        data = bytes(self.logbuf[i:i + n])
        return P.LOG_REP.pack(offset=off, next=off + n, oldest=self.log_base, head=head,
                              len=n, lost=lost) + data

    def do_log_subscribe(self, fr):
        req = P.LOG_SUBSCRIBE_REQ.unpack(fr.payload)
        with self.loglock:
            if req["on"] and not self.log_on:
                self.log_next = self.log_base + len(self.logbuf)
            self.log_on = bool(req["on"])
        return P.LOG_SUBSCRIBE_REP.pack(head=self.log_next)

    def do_memread(self, fr):
        req = P.MEMREAD_REQ.unpack(fr.payload)
        if req["len"] > P.MEMREAD_MAX:
            return self.error(fr, P.ErrCode.TOO_LARGE, f"len {req['len']} > {P.MEMREAD_MAX}")
        a, n = req["addr"], req["len"]
        if a < MEM_BASE or a + n > MEM_BASE + MEM_SIZE:
            return self.error(fr, P.ErrCode.FAULT, f"{a:#x}+{n} not readable")
        data = self.mem[a - MEM_BASE:a - MEM_BASE + n]
        return P.MEMREAD_REP.pack(addr=a, len=n) + data

    def do_chanstat(self, fr):
        return P.CHANSTAT_REP.pack(**self.model.stats)


def start_instance(base, name: str = "fake", *, build_id: str = "ab" * 20,
                   kernel_build_id: str | None = None, events: float = 0.0,
                   mux: bool = True, extra: tuple = ()):
    """Make a state directory `base/name` whose "QEMU" is a fake kernel
    process (serving probe.sock), and start its mux.  Returns (Instance,
    Popen of the fake).  `kernel_build_id` lets the fake claim another
    build-id than the instance record (to test the mismatch refusal)."""
    import subprocess
    from pathlib import Path
    from introspect.instance import Instance, spawn_mux
    d = Path(base) / name
    d.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), str(d / "probe.sock"),
            "--build-id", kernel_build_id or build_id, "--events", str(events), *extra]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(argv, start_new_session=True, env=env,
                            stdin=subprocess.DEVNULL)
    inst = Instance(name=name, app="fake", kernel="/nonexistent/kernel.elf",
                    build_id=build_id, qemu_pid=proc.pid, created=time.time(),
                    mux=mux, dir=d)
    inst.save()
    end = time.monotonic() + 10
    while not (d / "probe.sock").exists() and time.monotonic() < end:
        time.sleep(0.01)
    if mux:
        spawn_mux(inst)
        end = time.monotonic() + 5
        while not inst.mux_running() and time.monotonic() < end:
            time.sleep(0.01)
    return inst, proc


def as_qemu(argv: list[str]) -> int:
    """Pretend to be QEMU (UNIK_QEMU pointing at a script running
    `python tests/fakekernel.py --as-qemu "$@"`): serve the probe chardev
    named on the command line, with the build-id of the -kernel ELF, write a
    banner to the -serial file and the -pidfile.  No QMP: `stop` signals it."""
    import signal
    from introspect.elfinfo import build_id
    opt = {}
    for i, a in enumerate(argv[:-1]):
        if a.startswith("-") and not argv[i + 1].startswith("-"):
            opt.setdefault(a, []).append(argv[i + 1])
    sock = next(c.split("path=", 1)[1].split(",", 1)[0] for c in opt["-chardev"])
    serial = opt["-serial"][0].removeprefix("file:")
    with open(serial, "a") as f:
        f.write("fake qemu: booting\n")
    with open(opt["-pidfile"][0], "w") as f:
        f.write(f"{os.getpid()}\n")
    fk = FakeKernel(sock, build_id(opt["-kernel"][0]) or "ab" * 20)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    fk.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--as-qemu"]:
        return as_qemu(argv[1:])
    ap = argparse.ArgumentParser(prog="fakekernel.py")
    ap.add_argument("sock")
    ap.add_argument("--build-id", default="ab" * 20)
    ap.add_argument("--events", type=float, default=0.0,
                    help="emit an unsolicited frame every SECONDS")
    ap.add_argument("--features", type=lambda v: int(v, 0), default=P.FEATURES_ALL,
                    help="HELLO feature bits to claim (request families beyond them are unknown)")
    ap.add_argument("--trace-exit-after", type=int, default=0,
                    help="a trace session calls exit() after this many tick records")
    ap.add_argument("--log-lines", type=int, default=0,
                    help="append a log line every 10 ms, this many times")
    a = ap.parse_args(argv)
    fk = FakeKernel(a.sock, a.build_id, a.events, features=a.features)
    fk.trace.exit_after = a.trace_exit_after
    if a.log_lines:
        def spam():
            for i in range(a.log_lines):
                fk.klog(f"line {i}\n")
                time.sleep(0.01)
        threading.Thread(target=spam, daemon=True).start()
    try:
        fk.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
