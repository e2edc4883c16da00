"""QEMU: the command line (pure), starting it detached, and its QMP monitor.

`command_line` is the one place the machine is described; it is unit-tested.
The QMP client is `qemu.qmp` (imported lazily), driven synchronously with a
timeout on every step so no command can hang on a dead or wedged QEMU.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import protocol as P
from .errors import UnikError

QEMU = "qemu-system-x86_64"
DEFAULT_MEM = "32M"
_MEM_RE = re.compile(r"^([1-9][0-9]*)([KMGkmg]?)$")


@dataclass
class BootOptions:
    mem: str = DEFAULT_MEM
    accel: str = "tcg"             # "tcg" or "kvm" (kvm falls back to tcg)
    icount: bool = False           # deterministic instruction counting (benchmarks)
    append: str = ""               # kernel command line
    qemu: str = field(default_factory=lambda: os.environ.get("UNIK_QEMU") or QEMU)
    # networking (introspect/netopts.py): "none", "user" (with ports
    # forwarded) or "dgram" (raw Ethernet frames over host UDP)
    net: str = "none"
    ports: list = field(default_factory=list)   # [[host, guest], ...] (user)
    dgram: list = field(default_factory=list)   # [qemu_port, peer_port] (dgram)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "BootOptions":
        known = {k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


def parse_mem(text: str) -> str:
    """Validate a memory size (`32M`, `1G`, `65536K`, plain MiB); return it
    normalised for QEMU, raising UnikError when it makes no sense."""
    m = _MEM_RE.match(str(text).strip())
    if not m:
        raise UnikError(f"bad memory size {text!r}", "use a size like 32M or 1G")
    n, unit = int(m.group(1)), (m.group(2) or "M").upper()
    mib = {"K": n / 1024, "M": n, "G": n * 1024}[unit]
    if mib < 8:
        raise UnikError(f"memory size {text} is too small", "give at least 8M")
    if mib > 64 * 1024:
        raise UnikError(f"memory size {text} is too large", "give at most 64G")
    return f"{n}{unit}"


def default_accel() -> str:
    return "kvm" if os.environ.get("UNIK_ACCEL", "").strip().lower() == "kvm" else "tcg"


def command_line(kernel: str | Path, statedir: str | Path, opts: BootOptions) -> list[str]:
    """The full QEMU argv for one instance (pure)."""
    d = Path(statedir)
    for p in (d, Path(kernel)):
        if "," in str(p):
            raise UnikError(f"path {p} contains a comma, which QEMU options cannot carry",
                            "use a state/build directory without commas")
    accel = ["-accel", "kvm", "-accel", "tcg"] if opts.accel == "kvm" else ["-accel", "tcg"]
    argv = [opts.qemu, "-M", "microvm", *accel, "-m", opts.mem,
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel), "-append", opts.append,
            "-serial", f"file:{d / 'serial.log'}",
            "-qmp", f"unix:{d / 'qmp.sock'},server=on,wait=off",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-global", "virtio-mmio.force-legacy=false",
            "-device", "virtio-serial-device",
            "-chardev", f"socket,id=probe0,path={d / 'probe.sock'},server=on,wait=off",
            "-device", f"virtserialport,chardev=probe0,name={P.PORT_NAME},nr=1",
            # gdbstub on a unix socket in the state dir (introspect/gdb.py)
            "-chardev", f"socket,id=gdb0,path={d / 'gdb.sock'},server=on,wait=off",
            "-gdb", "chardev:gdb0",
            "-pidfile", str(d / "qemu.pid")]
    from .netopts import net_args
    argv += net_args(opts.net, opts.ports, opts.dgram)
    if opts.icount:
        argv += ["-icount", "shift=0,align=off,sleep=off"]
    return argv


def spawn(argv: list[str], statedir: Path) -> subprocess.Popen:
    """Start QEMU detached from the terminal (own session, stdin /dev/null,
    stderr to qemu.log).  Stale sockets are removed first."""
    for s in ("qmp.sock", "probe.sock", "chan.sock", "gdb.sock", "gdb.stopped", "qemu.pid"):
        try:
            (statedir / s).unlink()
        except FileNotFoundError:
            pass
    log = open(statedir / "qemu.log", "ab")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    except FileNotFoundError:
        raise UnikError(f"{argv[0]} not found", "apt-get install qemu-system-x86") from None
    finally:
        log.close()


DUMP_POLL = 0.02               # seconds between query-dump polls of a detached dump


class Monitor:
    """A synchronous QMP client with a timeout on every operation."""

    def __init__(self, sock: str | Path, timeout: float = 5.0) -> None:
        self.sock = str(sock)
        self.timeout = timeout

    def execute(self, cmd: str, args: dict | None = None, *, expect_exit: bool = False):
        import asyncio
        return asyncio.run(self._execute(cmd, args, expect_exit))

    async def _execute(self, cmd, args, expect_exit):
        import asyncio
        import logging
        from qemu.qmp import QMPClient, ExecuteError
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        qmp = QMPClient("unik")
        try:
            await asyncio.wait_for(qmp.connect(self.sock), self.timeout)
        except (OSError, asyncio.TimeoutError, Exception) as e:
            raise UnikError(f"cannot reach QEMU's monitor at {self.sock}: "
                            f"{_why(e)}", "is the instance running? see: unik ls") from None
        try:
            return await asyncio.wait_for(qmp.execute(cmd, args), self.timeout)
        except ExecuteError as e:
            raise UnikError(f"QMP {cmd} failed: {e}", None) from None
        except Exception as e:
            if expect_exit:
                return None      # QEMU closed the monitor while quitting
            raise UnikError(f"QMP {cmd}: {_why(e)}", "is the instance running?") from None
        finally:
            try:
                await asyncio.wait_for(qmp.disconnect(), self.timeout)
            except Exception:
                pass

    def quit(self) -> None:
        self.execute("quit", expect_exit=True)

    def status(self) -> dict:
        """{'running': bool, 'status': 'running'|'paused'|...}"""
        return self.execute("query-status")

    def dump_guest_memory(self, path: str | Path, progress=None) -> None:
        """An ELF core of guest memory at path.  progress(done, total)
        (bytes), when given, is called as QEMU writes: the dump is then
        detached and polled with query-dump every DUMP_POLL seconds."""
        if progress is None:
            self.execute("dump-guest-memory", {"paging": False, "protocol": f"file:{path}"})
            return
        import asyncio
        asyncio.run(self._dump_polled(str(path), progress))

    async def _dump_polled(self, path: str, progress) -> None:
        import asyncio
        import logging
        from qemu.qmp import QMPClient, ExecuteError
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        qmp = QMPClient("unik-dump")
        try:
            await asyncio.wait_for(qmp.connect(self.sock), self.timeout)
        except Exception as e:
            raise UnikError(f"cannot reach QEMU's monitor at {self.sock}: {_why(e)}",
                            "is the instance running? see: unik ls") from None
        try:
            await asyncio.wait_for(qmp.execute("dump-guest-memory", {
                "paging": False, "protocol": f"file:{path}", "detach": True}), self.timeout)
            end = asyncio.get_running_loop().time() + self.timeout
            while True:
                st = await asyncio.wait_for(qmp.execute("query-dump"), self.timeout)
                progress(st.get("completed", 0), st.get("total", 0))
                if st["status"] == "completed":
                    return
                if st["status"] == "failed":
                    raise UnikError(f"QEMU failed to write the core {path}",
                                    "see the instance's qemu.log")
                if asyncio.get_running_loop().time() > end:
                    raise UnikError(f"the dump to {path} did not finish in {self.timeout:g}s",
                                    "is the disk full or slow?")
                await asyncio.sleep(DUMP_POLL)
        except ExecuteError as e:
            raise UnikError(f"QMP dump-guest-memory failed: {e}", None) from None
        except UnikError:
            raise
        except Exception as e:
            raise UnikError(f"QMP dump-guest-memory: {_why(e)}", "is the instance running?") \
                from None
        finally:
            try:
                await asyncio.wait_for(qmp.disconnect(), self.timeout)
            except Exception:
                pass


def _why(e: BaseException) -> str:
    import asyncio
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    s = str(e) or type(e).__name__
    return s.splitlines()[0]
