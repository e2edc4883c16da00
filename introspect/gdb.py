"""Live gdb: drive gdb (MI3, through pygdbmi) against an instance's gdbstub.

QEMU serves its gdbstub on a unix socket in the state directory
(STATE/gdb.sock, see qemu.command_line): no port to allocate, and the
socket's permissions are the state directory's.  One gdb client at a time.

While the guest is halted by us, STATE/gdb.stopped (JSON: pid, since,
interactive) says so: Instance.require_serving fails fast on it, and the
channel client's timeout hint names it, so `unik ps` never waits out a
timeout on a guest gdb holds.  A Session always deletes its breakpoints and
detaches (which resumes the guest) when it closes, on error or Ctrl-C too.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from .errors import UnikError

SOCK = "gdb.sock"
MARKER = "gdb.stopped"
GDB = "gdb"
# The registers `registers()` shows, in this order (gdb names them).
REGS = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "eflags",
        "cs", "ss", "fs_base", "gs_base", "cr2", "cr3")


class GdbError(UnikError):
    """gdb refused a command or the target did not answer in time."""


class StoppedInGdb(UnikError):
    """The guest is halted by a unik gdb session: the channel cannot answer."""


# ------------------------------------------------------------ pure

def mi_argv(kernel: str | Path, gdb: str = GDB) -> list[str]:
    """gdb in MI3 mode on the kernel's symbols (pure)."""
    return [gdb, "--nx", "--quiet", "--interpreter=mi3", str(kernel)]


def interactive_argv(kernel: str | Path, sock: str | Path, gdb: str = GDB) -> list[str]:
    """An interactive gdb with the kernel's symbols loaded, attached (pure)."""
    return [gdb, "--nx", "--quiet", "-ex", f"target remote {sock}",
            "-ex", "echo unik: attached; the guest is stopped. "
                   "'detach' resumes it, 'hbreak FUNC' sets a breakpoint.\\n",
            str(kernel)]


def frame_text(fr: dict | None) -> str:
    """One line for a gdb MI frame: `func (file:line) at 0xaddr`."""
    if not fr:
        return "?"
    where = fr.get("func") or "??"
    if fr.get("file"):
        where += f" ({Path(fr['file']).name}:{fr.get('line', '?')})"
    return f"{where} at {fr.get('addr', '?')}"


# ------------------------------------------------------------ the marker

def read_marker(statedir: Path) -> dict | None:
    """The gdb.stopped record if a live process wrote it, else None
    (a marker whose writer died is stale and ignored)."""
    try:
        m = json.loads((Path(statedir) / MARKER).read_text())
        pid = int(m.get("pid", 0))
        os.kill(pid, 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return m


def _write_marker(statedir: Path, interactive: bool = False) -> None:
    tmp = Path(statedir) / f".{MARKER}.{os.getpid()}"
    tmp.write_text(json.dumps({"pid": os.getpid(), "since": time.time(),
                               "interactive": interactive}) + "\n")
    os.replace(tmp, Path(statedir) / MARKER)


def _clear_marker(statedir: Path) -> None:
    try:
        m = json.loads((Path(statedir) / MARKER).read_text())
        if int(m.get("pid", 0)) == os.getpid():
            (Path(statedir) / MARKER).unlink()
    except (OSError, ValueError, TypeError, AttributeError):
        pass


# ------------------------------------------------------------ the session

class Session:
    """gdb attached to one instance.  Use as a context manager: entering
    attaches (the guest stops), leaving detaches (the guest runs)."""

    def __init__(self, inst, timeout: float = 10.0, gdb: str = GDB) -> None:
        self.inst = inst
        self.dir = Path(inst.dir)
        self.timeout = timeout
        self.gdb_path = gdb
        self.gdb = None
        self.running = False
        self._tok = 100
        self._pending: list[dict] = []

    def __enter__(self) -> "Session":
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        from pygdbmi.gdbcontroller import GdbController
        sock = self.dir / SOCK
        if not sock.exists():
            raise GdbError(f"instance {self.inst.name} has no gdbstub ({sock} missing)",
                           "it was booted before unik gdb existed; boot it again")
        held = read_marker(self.dir)
        if held and held["pid"] != os.getpid():
            raise GdbError(f"instance {self.inst.name} is held by another gdb "
                           f"(pid {held['pid']})",
                           f"unik gdb {self.inst.name} detach releases it")
        try:
            self.gdb = GdbController(command=mi_argv(self.inst.kernel, self.gdb_path),
                                     time_to_check_for_additional_output_sec=0.05)
        except (OSError, ValueError) as e:
            raise GdbError(f"cannot start gdb: {e}", "apt-get install gdb") from None
        self.mi("-gdb-set mi-async on")
        self.mi("-gdb-set confirm off")
        _write_marker(self.dir)                  # connecting halts the guest
        self.mi(f"-target-select remote {sock}")

    def close(self) -> None:
        """Delete our breakpoints, detach (the guest resumes), quit gdb and
        drop the marker.  Best effort on every step: never raises."""
        if self.gdb is not None:
            try:
                if self.running:
                    self._interrupt()
                self.mi("-break-delete", timeout=3)
                self.mi("-target-detach", timeout=3)
            except Exception:
                pass
            try:
                self.gdb.exit()
            except Exception:
                pass
            self.gdb = None
        _clear_marker(self.dir)

    # -- MI plumbing
    def mi(self, cmd: str, timeout: float | None = None) -> dict:
        """Send one MI command and return its result record's payload;
        ^error raises GdbError with gdb's message."""
        self._tok += 1
        tok = self._tok
        self.gdb.write(f"{tok}{cmd}", read_response=False)
        for r in self._records(timeout or self.timeout, f"{cmd} got no answer"):
            if r.get("type") == "result" and r.get("token") == tok:
                if r.get("message") == "error":
                    msg = (r.get("payload") or {}).get("msg", "error")
                    raise GdbError(f"gdb: {msg}", _hint_for(cmd, msg))
                return r.get("payload") or {}
        raise AssertionError("unreachable")

    def _records(self, timeout: float, what: str):
        """Yield MI records one at a time (those read but not yet consumed
        wait in self._pending for the next caller) until `timeout`; then
        raise GdbError(what).  `stopped` notifications update self.running."""
        end = time.monotonic() + timeout
        while True:
            while self._pending:
                r = self._pending.pop(0)
                if r.get("type") == "notify" and r.get("message") == "stopped":
                    self.running = False
                yield r
            left = end - time.monotonic()
            if left <= 0:
                raise GdbError(f"{what} within {timeout:g}s", None)
            self._pending.extend(self.gdb.get_gdb_response(timeout_sec=min(left, 0.2),
                                                           raise_error_on_timeout=False))

    def _wait_stopped(self, timeout: float) -> dict:
        for r in self._records(timeout, "the target did not stop"):
            if r.get("type") == "notify" and r.get("message") == "stopped":
                _write_marker(self.dir)
                return r.get("payload") or {}
        raise AssertionError("unreachable")

    def _resume(self, cmd: str, timeout: float) -> dict:
        """Run an execution command and wait for the stop it ends in."""
        _clear_marker(self.dir)
        self.running = True
        self.mi(cmd)
        try:
            return self._wait_stopped(timeout)
        except GdbError:
            self._interrupt()
            raise

    def _interrupt(self) -> None:
        self.mi("-exec-interrupt", timeout=3)
        self._wait_stopped(3)

    # -- what the CLI offers
    def where(self) -> dict:
        """The frame the guest is stopped in."""
        return self.mi("-stack-info-frame").get("frame", {})

    def break_at(self, func: str, timeout: float) -> dict:
        """A hardware breakpoint at `func`; continue until it is hit."""
        bp = self.mi(f"-break-insert -h {func}").get("bkpt", {})
        stop = self.cont(timeout)
        return {"breakpoint": bp.get("number"), "func": func, **stop}

    def cont(self, timeout: float) -> dict:
        """Continue until the next stop (a breakpoint); on timeout the
        guest is interrupted and GdbError says nothing was hit."""
        try:
            st = self._resume("-exec-continue", timeout)
        except GdbError:
            raise GdbError(f"no breakpoint hit within {timeout:g}s",
                           "is the function reached? raise --timeout") from None
        return {"reason": st.get("reason", "?"), "frame": st.get("frame", {})}

    def step(self, how: str = "step") -> dict:
        """One source line (`step` enters calls, `next` steps over them)."""
        st = self._resume(f"-exec-{how}", self.timeout)
        return {"reason": st.get("reason", "?"), "frame": st.get("frame", {})}

    def registers(self) -> dict[str, str]:
        names = self.mi("-data-list-register-names").get("register-names", [])
        vals = self.mi("-data-list-register-values --skip-unavailable x")
        byname = {names[int(v["number"])]: v["value"]
                  for v in vals.get("register-values", []) if int(v["number"]) < len(names)}
        return {r: byname[r] for r in REGS if r in byname}

    def backtrace(self, limit: int = 32) -> list[dict]:
        frames = self.mi(f"-stack-list-frames 0 {limit - 1}").get("stack", [])
        return [f.get("frame", f) if isinstance(f, dict) else f for f in frames]

    def evaluate(self, expr: str) -> str:
        return self.mi(f"-data-evaluate-expression {_mi_quote(expr)}").get("value", "")


def _mi_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hint_for(cmd: str, msg: str) -> str | None:
    if "No symbol" in msg or "not defined" in msg:
        return "name a function or variable of the kernel (unik x lists symbols)"
    if cmd.startswith("-target-select"):
        return "is another gdb attached? unik gdb NAME detach releases it"
    return None


# ------------------------------------------------------------ release

def release(inst, timeout: float = 5.0) -> str:
    """Make sure no unik gdb holds the instance and the guest runs: ask a
    live holder to let go (SIGINT: its Session detaches), then attach and
    detach once, which resumes a guest a dead gdb left halted.  Returns
    what was done, for the CLI to print."""
    held = read_marker(Path(inst.dir))
    did = []
    if held and held["pid"] != os.getpid():
        os.kill(held["pid"], signal.SIGINT)
        end = time.monotonic() + timeout
        while read_marker(Path(inst.dir)) and time.monotonic() < end:
            time.sleep(0.05)
        if read_marker(Path(inst.dir)):
            raise GdbError(f"gdb (pid {held['pid']}) did not let go of {inst.name}",
                           f"end that gdb (it is pid {held['pid']}), then retry")
        did.append(f"asked gdb pid {held['pid']} to detach")
    try:
        (Path(inst.dir) / MARKER).unlink()
    except OSError:
        pass
    with Session(inst, timeout=timeout):
        pass
    did.append("resumed")
    return "; ".join(did)
