"""Booted instances for tests: the one way a test boots the real kernel.

    with booted("demo", state=tmp_path, name="x", boot_args=["--icount"]) as inst:
        ...                      # inst: introspect.instance.Instance, inst.env
                                 # is the environment for `unik` subprocesses

`booted` runs `unik boot --detach` (so the CLI's boot path is what tests
exercise) and, whatever happens -- the boot times out, fails halfway, the
test fails or is interrupted -- stops QEMU and the mux when the block ends:
`unik stop`'s own path first, then any process still naming the instance's
directory is killed (a boot killed before it recorded QEMU's pid leaves
such a process).  `reaped(state, name)` gives that guarantee to a test that
starts the instance itself (a foreground `unik boot`).

Every child here gets SIGINT's default disposition back (`sigint_default`),
so a test can stop it with SIGINT even when pytest runs with SIGINT ignored.
The `booted_instance` fixture in conftest.py wraps `booted` per test.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import build_kernel, require_qemu
from introspect import instance as I

UNIK = str(Path(sys.executable).parent / "unik")
BOOT_TIMEOUT = 120.0


def sigint_default() -> None:
    """preexec_fn for children stopped with SIGINT: a background job
    inherits SIGINT ignored, which would make them deaf to it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def env_for(state: Path) -> dict:
    """os.environ with UNIK_STATE_DIR=state and the venv's bin on PATH."""
    env = dict(os.environ, UNIK_STATE_DIR=str(state))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def unik(env: dict, *args, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """Run the `unik` CLI; with check, fail naming the command and its output."""
    try:
        r = subprocess.run([UNIK, *map(str, args)], env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=sigint_default)
    except subprocess.TimeoutExpired as e:
        said = b"".join(x if isinstance(x, bytes) else (x or "").encode()
                        for x in (e.stdout, e.stderr)).decode("utf-8", "replace")
        raise AssertionError(f"unik {' '.join(map(str, args))} timed out after "
                             f"{timeout:g}s\n{said}") from None
    if check and r.returncode != 0:
        raise AssertionError(f"unik {' '.join(map(str, args))} -> {r.returncode}\n"
                             f"{r.stdout}{r.stderr}")
    return r


class Child:
    """A `unik` (or other) child whose stdout and stderr are collected by
    threads, so a test can wait for text without blocking and still get all
    of it at the end.  Stoppable with SIGINT (sigint_default)."""

    def __init__(self, argv, env: dict) -> None:
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  preexec_fn=sigint_default)
        self._buf = {"out": bytearray(), "err": bytearray()}
        self._threads = [threading.Thread(target=self._pump, args=(f, k), daemon=True)
                         for f, k in ((self.p.stdout, "out"), (self.p.stderr, "err"))]
        for t in self._threads:
            t.start()

    def _pump(self, f, key) -> None:
        for chunk in iter(lambda: f.read1(65536), b""):
            self._buf[key] += chunk

    @property
    def out(self) -> str:
        return bytes(self._buf["out"]).decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return bytes(self._buf["err"]).decode("utf-8", "replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        """Until `text` appears on stdout (fails early if the child exits)."""
        wait_until(lambda: text in self.out or self.p.poll() is not None, timeout,
                   f"{text!r} from {self.p.args}")
        assert text in self.out, f"{self.p.args} exited {self.p.returncode} before " \
                                 f"printing {text!r}:\n{self.out[-2000:]}{self.err[-2000:]}"

    def finish(self, sig: int | None = None, timeout: float = 10.0) -> int:
        """Send `sig` (if any), wait for the exit, return the status; a child
        that does not exit in time is killed and the test fails."""
        if sig is not None and self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.p.args} did not exit {timeout:g}s after "
                                 f"signal {sig}") from None
        for t in self._threads:
            t.join(5)
        return self.p.returncode

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def popen_unik(env: dict, *args) -> Child:
    """Start `unik ARGS`, its output collected (Child)."""
    return Child([UNIK, *map(str, args)], env)


def wait_until(cond, timeout: float = 10.0, what: str = "the condition",
               interval: float = 0.02):
    """Poll cond() until it returns something true (returned); fail after
    `timeout` seconds naming `what`."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def mux_info(inst) -> dict:
    """The instance's MUX_INFO (one short-lived client)."""
    from introspect.client import Channel
    with Channel.for_instance(inst) as ch:
        return ch.mux_info()


def unsent(sock) -> int:
    """Bytes written to a unix stream socket that the peer has not read yet
    (SIOCOUTQ): 0 once the other side (QEMU's chardev) took everything."""
    import fcntl
    import struct
    import termios
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def processes_naming(d: Path) -> list[int]:
    """Pids of live processes with `d` (or a path under it) in their argv:
    an instance's QEMU and mux."""
    needle = str(d).rstrip("/").encode()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a == needle or needle + b"/" in a or needle + b"," in a for a in args) \
                and I.pid_alive(int(p)):
            out.append(int(p))
    return out


def cleanup(d: Path) -> None:
    """Stop the instance in directory d by every means and remove d."""
    try:
        I.stop(I.Instance.load(d), timeout=5)
    except (OSError, ValueError, TypeError):
        pass                              # no record (yet): the sweep below
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_naming(d)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        if pids:
            try:
                wait_until(lambda: not processes_naming(d), 5, f"{pids} to exit")
            except AssertionError:
                continue
        break
    shutil.rmtree(d, ignore_errors=True)


@contextmanager
def reaped(state: Path, name: str):
    """Whatever the block does, the instance `name` under `state` is gone
    after it (QEMU, mux and directory)."""
    try:
        yield Path(state) / name
    finally:
        cleanup(Path(state) / name)


@contextmanager
def booted(app: str = "demo", *, state: Path, name: str | None = None,
           boot_args=(), timeout: float = BOOT_TIMEOUT):
    """Boot `app` with `unik boot --detach --name NAME BOOT_ARGS` in state
    dir `state`; yield its Instance (with .env); always stop it after.
    boot_args: a list, or a string split like a shell would."""
    require_qemu()
    build_kernel(app)
    name = name or app
    if isinstance(boot_args, str):
        boot_args = shlex.split(boot_args)
    env = env_for(state)
    with reaped(state, name) as d:
        cmd = ["boot", "--app", app, "--name", name, "--detach", "--no-build",
               "--timeout", f"{timeout:g}", *boot_args]
        r = unik(env, *cmd, timeout=timeout + 30, check=False)
        if r.returncode != 0:
            pytest.fail(f"unik {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
                        f"\nserial.log:\n{I.tail(d / 'serial.log', 20)}", pytrace=False)
        inst = I.Instance.load(d)
        inst.env = env
        yield inst


def ls(env: dict) -> list[dict]:
    """`unik ls --json`."""
    return json.loads(unik(env, "ls", "--json").stdout)


def assert_closed_when_client_leaves(inst, sid: int, raw, within: float = 1.0) -> None:
    """Close `raw`, the client socket that opened trace session sid, and
    check the session is gone (TRACE_STATUS answers NO_SESSION) within
    `within` seconds: the mux tears a departed client's sessions down."""
    from introspect import codec
    from introspect import protocol as P
    from introspect.client import Channel
    from introspect.errors import ChannelError
    with Channel.for_instance(inst) as ch:
        assert ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(sid))
        raw.close()
        t0 = time.monotonic()
        while True:
            try:
                ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(sid))
            except ChannelError as e:
                assert e.code_name == "NO_SESSION"
                return
            assert time.monotonic() - t0 < within, \
                f"session still open {within:g} s after its client left"
            time.sleep(0.01)


# ------------------------------------------------------------------ trace events (dedupe)

def records_in(events) -> list[bytes]:
    """Every record of a TraceSession's events (poll(), stop()), in order."""
    from introspect import codec
    return [r for e in events if e[0] == "records" for r in codec.split_records(e[1])]
