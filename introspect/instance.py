"""Instances: the state directory, naming, listing, booting and stopping.

One directory per instance under the state base (`$UNIK_STATE_DIR` or
`~/.local/state/unik`), named after it, holding instance.json, kernel.elf
(a copy of the booted image, so symbols stay right after a rebuild), the
QEMU sockets (qmp.sock, probe.sock), the mux's chan.sock, serial.log,
qemu.log and muxd.log.  An instance whose QEMU is gone is *stale* until `unik stop`
removes its directory.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import qemu
from .errors import ChannelDown, ChannelTimeout, NoInstance, NotRunning, Panicked, UnikError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
SOCK_PATH_MAX = 107            # sun_path is 108 bytes with the NUL


def state_base() -> Path:
    env = os.environ.get("UNIK_STATE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "unik"


# ------------------------------------------------------------ pure helpers

def validate_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UnikError(f"bad instance name {name!r}",
                        "use 1-32 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def allocate_name(app: str, taken) -> str:
    """`app`, or `app-2`, `app-3`... : the first not in `taken` (pure)."""
    taken = set(taken)
    if app not in taken:
        return app
    n = 2
    while f"{app}-{n}" in taken:
        n += 1
    return f"{app}-{n}"


# ------------------------------------------------------------ processes

def pid_alive(pid: int | None, needle: str | None = None) -> bool:
    """Is `pid` a live (non-zombie) process with `needle` (a directory) as an
    argument or inside one (`needle/...`)?  Guards against reused pids."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        if needle is not None:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            n = needle.rstrip("/").encode()
            if not any(a == n or n + b"/" in a or n + b"," in a for a in args):
                return False
    except (OSError, IndexError):
        return os.path.exists(f"/proc/{pid}") or not os.path.isdir("/proc")
    return True


def _wait_gone(pid: int, needle: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        _reap(pid)
        if not pid_alive(pid, needle):
            return True
        time.sleep(0.02)
    return not pid_alive(pid, needle)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


# ------------------------------------------------------------ the record

@dataclass
class Instance:
    name: str
    app: str
    kernel: str                     # the image QEMU booted (a copy in the state dir)
    kernel_src: str = ""            # where it was copied from (build/<app>/kernel.elf)
    build_id: str = ""
    mem: str = qemu.DEFAULT_MEM
    accel: str = "tcg"
    boot: dict = field(default_factory=dict)
    qemu_pid: int | None = None
    mux_pid: int | None = None
    created: float = 0.0
    mux: bool = True
    dir: Path = field(default=Path("."), repr=False, compare=False)

    # paths
    def path(self, what: str) -> Path:
        return self.dir / what

    @property
    def chan_sock(self) -> Path:
        return self.dir / "chan.sock"

    @property
    def probe_sock(self) -> Path:
        return self.dir / "probe.sock"

    @property
    def qmp_sock(self) -> Path:
        return self.dir / "qmp.sock"

    # persistence
    @classmethod
    def load(cls, d: Path) -> "Instance":
        with open(d / "instance.json") as f:
            data = json.load(f)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "dir"}
        inst = cls(**known)
        inst.dir = d
        return inst

    def save(self) -> None:
        data = asdict(self)
        data.pop("dir")
        tmp = self.dir / f".instance.json.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.dir / "instance.json")

    def reload(self) -> "Instance":
        return Instance.load(self.dir)

    # liveness
    @property
    def running(self) -> bool:
        return pid_alive(self.qemu_pid, str(self.dir))

    @property
    def state(self) -> str:
        """running, panicked (QEMU up, kernel halted) or stale (QEMU gone)."""
        if not self.running:
            return "stale"
        return "panicked" if self.panic_report() else "running"

    def panic_report(self) -> str:
        """The kernel's last panic report from serial.log, or "" if none.
        The panic path prints to COM1 before halting, so this works when
        the probe channel cannot answer any more."""
        return panic_report(self.dir / "serial.log")

    def mux_running(self) -> bool:
        """True while a mux holds this instance's lock."""
        try:
            fd = os.open(self.dir / "muxd.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            return e.errno in (errno.EAGAIN, errno.EACCES)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def uptime(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.created)

    def to_json(self) -> dict:
        d = asdict(self)
        d["dir"] = str(self.dir)
        d["state"] = self.state
        d["net"] = (self.boot or {}).get("net", "none")       # netopts.py
        d["ports"] = [{"host": h, "guest": g, "addr": "127.0.0.1"}
                      for h, g in (self.boot or {}).get("ports") or []]
        d["crash"] = self.crash_core()
        d["core"] = d["crash"]["core"] if d["crash"] else None
        return d

    def crash_core(self) -> dict | None:
        """The core the mux took when the kernel panicked (autocore.py):
        {core, bytes, seconds, trigger, reason, kind, time}, or None."""
        from .autocore import info
        return info(self.dir)

    def require_running(self) -> "Instance":
        if not self.running:
            raise NotRunning(f"instance {self.name} is not running (QEMU exited)",
                             f"unik stop {self.name} removes it; its serial log is "
                             f"{self.dir / 'serial.log'}")
        return self

    def require_serving(self) -> "Instance":
        """Raise at once unless QEMU runs and the kernel has not panicked:
        the check every client of the probe channel makes before it asks
        anything (Channel.for_instance), so nobody waits out a timeout on
        a halted kernel."""
        self.require_running()
        from .gdb import StoppedInGdb, read_marker
        held = read_marker(self.dir)
        if held and not held.get("interactive"):
            raise StoppedInGdb(f"instance {self.name} is stopped in gdb (pid {held['pid']}), "
                             "its probe channel cannot answer",
                             f"unik gdb {self.name} detach resumes it")
        report = self.panic_report()
        if report:
            first = report.splitlines()[0].split("] ", 1)[-1]
            raise Panicked(f"instance {self.name} panicked, its kernel is halted: {first}",
                           f"unik log {self.name} shows the whole report; "
                           f"unik stop {self.name} stops it")
        return self


# ------------------------------------------------------------ listing

def list_instances(base: Path | None = None) -> list[Instance]:
    base = base or state_base()
    out = []
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        if not d.is_dir() or not NAME_RE.match(d.name):
            continue
        try:
            out.append(Instance.load(d))
        except (OSError, ValueError, TypeError):
            # a half-created or damaged directory: show it as stale
            out.append(Instance(name=d.name, app="?", kernel="", dir=d))
    return out


def find(name: str | None = None, *, base: Path | None = None,
         need_running: bool = True) -> Instance:
    """The instance called `name`, or the only running one when name is None."""
    insts = list_instances(base)
    if name:
        for i in insts:
            if i.name == name:
                return i.require_running() if need_running else i
        known = ", ".join(i.name for i in insts)
        raise NoInstance(f"no instance named {name!r}",
                         f"instances: {known}" if known else "start one with: unik boot --detach")
    running = [i for i in insts if i.running]
    if not running:
        stale = [i.name for i in insts]
        raise NoInstance("no instance is running",
                         "start one with: unik boot --detach" + (
                             f" (stale: {', '.join(stale)})" if stale else ""))
    if len(running) > 1:
        names = ", ".join(i.name for i in running)
        raise NoInstance(f"{len(running)} instances are running ({names}) and no name was given",
                         f"name one, e.g.: unik ps {running[0].name}")
    return running[0]


# ------------------------------------------------------------ boot / stop

def create_dir(name: str | None, app: str, base: Path | None = None) -> tuple[str, Path]:
    """Make the instance directory (atomically claiming the name)."""
    base = base or state_base()
    base.mkdir(parents=True, exist_ok=True)
    if name:
        validate_name(name)
        d = base / name
        if d.exists():
            try:
                old = Instance.load(d)
                live = old.running
            except (OSError, ValueError, TypeError):
                live = False
            if live:
                raise UnikError(f"instance name {name!r} is taken by a running instance",
                                f"pick another --name, or stop it: unik stop {name}")
            shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    else:
        validate_name(app)
        while True:
            taken = {p.name for p in base.iterdir()} if base.is_dir() else set()
            name = allocate_name(app, taken)
            d = base / name
            try:
                d.mkdir()
                break
            except FileExistsError:
                continue
    if len(str(d / "probe.sock")) > SOCK_PATH_MAX:
        shutil.rmtree(d, ignore_errors=True)
        raise UnikError(f"state directory {d} is too long for a unix socket path",
                        "set UNIK_STATE_DIR to a shorter directory")
    return name, d


def boot(*, app: str, kernel: Path, build_id: str, name: str | None = None,
         opts: qemu.BootOptions | None = None, mux: bool = True,
         base: Path | None = None) -> Instance:
    """Start QEMU (and the mux) for a kernel image; return the Instance.
    Does not wait for the kernel: see `wait_ready`."""
    opts = opts or qemu.BootOptions(accel=qemu.default_accel())
    name, d = create_dir(name, app, base)
    snap = d / "kernel.elf"
    inst = Instance(name=name, app=app, kernel=str(snap), kernel_src=str(kernel),
                    build_id=build_id, mem=opts.mem, accel=opts.accel,
                    boot=opts.to_json(), created=time.time(), mux=mux, dir=d)
    try:
        # Boot a private copy: a rebuild cannot change the symbols under a
        # running instance (unik x, gdb and cores read inst.kernel).
        shutil.copy2(kernel, snap)
        argv = qemu.command_line(snap, d, opts)
        inst.save()
        (d / "qemu.cmdline").write_text(" ".join(_quote(a) for a in argv) + "\n")
        proc = qemu.spawn(argv, d)
        _wait_exec(proc, str(d))
        inst.qemu_pid = proc.pid
        inst.save()
        inst.proc = proc            # not persisted: lets the booting process reap QEMU
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise
    if mux:
        spawn_mux(inst)
        end = time.monotonic() + 3.0          # until it holds its lock
        while not inst.mux_running() and time.monotonic() < end:
            time.sleep(0.01)
    return inst


def _wait_exec(proc: subprocess.Popen, needle: str, timeout: float = 5.0) -> None:
    """Until the child has exec'd (its argv names `needle`) or exited: before
    that, /proc shows the parent's argv and the instance would look stale."""
    end = time.monotonic() + timeout
    while proc.poll() is None and not pid_alive(proc.pid, needle) \
            and time.monotonic() < end:
        time.sleep(0.002)


def _quote(a: str) -> str:
    return a if re.match(r"^[\w@%+=:,./-]+$", a) else "'" + a.replace("'", "'\\''") + "'"


def spawn_mux(inst: Instance) -> subprocess.Popen:
    """Start `python -m introspect.muxd <dir>` detached (its own session)."""
    log = open(inst.dir / "muxd.log", "ab")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        return subprocess.Popen([sys.executable, "-m", "introspect.muxd", str(inst.dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True, env=env, cwd="/")
    finally:
        log.close()


def mux_error(inst: Instance) -> dict | None:
    """The fatal reason the last mux left behind, if any."""
    try:
        return json.loads((inst.dir / "muxd.error").read_text())
    except (OSError, ValueError):
        return None


def ensure_mux(inst: Instance, timeout: float = 10.0) -> None:
    """Make sure a mux serves chan.sock, restarting it if it died while QEMU
    lives.  Raises ChannelDown when that cannot be done in `timeout`."""
    inst.require_running()
    if not inst.mux:
        raise ChannelDown(f"instance {inst.name} was booted without a mux",
                          "use a direct channel (Channel(..., direct=True))")
    proc = None
    if not inst.mux_running():
        with _spawn_lock(inst, timeout):
            if not inst.mux_running():       # nobody restarted it meanwhile
                err = mux_error(inst)
                if err and err.get("fatal"):
                    raise ChannelDown(err.get("msg", "the mux failed"), err.get("hint"))
                for stale in ("chan.sock", "muxd.error"):
                    try:
                        (inst.dir / stale).unlink()
                    except FileNotFoundError:
                        pass
                proc = spawn_mux(inst)
                end = time.monotonic() + 5.0
                while (not inst.mux_running() and proc.poll() is None
                       and time.monotonic() < end):
                    time.sleep(0.01)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if inst.chan_sock.exists() and (proc is None or proc.poll() is None):
            return
        inst.require_running()
        if proc is not None and proc.poll() is not None:
            if inst.mux_running():      # another client's mux won the lock
                proc = None
                continue
            err = mux_error(inst) or {}
            raise ChannelDown(err.get("msg", f"the mux exited (status {proc.returncode})"),
                              err.get("hint") or f"see {inst.dir / 'muxd.log'}")
        time.sleep(0.02)
    raise ChannelTimeout(f"the probe channel of {inst.name} did not come up in {timeout:g}s",
                      f"the kernel may not have answered HELLO yet; see "
                      f"{inst.dir / 'muxd.log'} and {inst.dir / 'serial.log'}")


class _spawn_lock:
    """Serialises mux restarts between concurrent clients."""

    def __init__(self, inst: Instance, timeout: float) -> None:
        self.path, self.timeout, self.fd = inst.dir / "muxd.spawn", timeout, None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        end = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() > end:
                    os.close(self.fd)
                    raise ChannelDown("another client is restarting the mux and "
                                      "did not finish", "try again") from None
                time.sleep(0.01)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def stop(inst: Instance, timeout: float = 5.0) -> bool:
    """Quit QEMU (QMP, then signals), wait for the mux, remove the directory.
    Returns True when QEMU was running."""
    was_running = inst.running
    needle = str(inst.dir)
    if was_running:
        try:
            qemu.Monitor(inst.qmp_sock, timeout=min(timeout, 3.0)).quit()
            asked = True
        except UnikError:
            asked = False                # no monitor: go straight to signals
        if not asked or not _wait_gone(inst.qemu_pid, needle, timeout):
            _signal(inst.qemu_pid, signal.SIGTERM)
            if not _wait_gone(inst.qemu_pid, needle, 2.0):
                _signal(inst.qemu_pid, signal.SIGKILL)
                _wait_gone(inst.qemu_pid, needle, 2.0)
    try:
        inst = inst.reload()
    except (OSError, ValueError, TypeError):
        pass
    if inst.mux_pid and pid_alive(inst.mux_pid, needle):
        if not _wait_gone(inst.mux_pid, needle, 2.0):
            _signal(inst.mux_pid, signal.SIGTERM)
            _wait_gone(inst.mux_pid, needle, 2.0)
    shutil.rmtree(inst.dir, ignore_errors=True)
    return was_running


def _signal(pid: int | None, sig: int) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


PANIC_MARK = b"PANIC: "
_PANIC_SCAN = 1 << 20          # bytes of serial.log searched, from the end


def panic_report(serial: Path) -> str:
    """Text from the last `PANIC: ` line of a serial log to its end."""
    try:
        with open(serial, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _PANIC_SCAN))
            data = f.read()
    except OSError:
        return ""
    i = data.rfind(PANIC_MARK)
    if i < 0:
        return ""
    start = data.rfind(b"\n", 0, i) + 1
    return data[start:].decode("utf-8", "replace")


def tail(path: Path, lines: int = 5) -> str:
    try:
        data = path.read_bytes()[-4096:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
