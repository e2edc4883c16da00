"""`unik trace --core`: a D script's BEGIN, END (and ERROR) clauses run
over a core by the kernel's own probe VM built for the host.

The interpreter, verifier, aggregations and dynamic variables are the
kernel's C (kernel/probe/{verify,vm,vmstr,agg,dyn}.c) compiled with the
host's gcc into a shared library, with introspect/corevm_shim.c in the
engine's place; loads are served from the core through a Program.  So a
script prints the same thing live and post-mortem:

    vm = CoreVM(compiled, prog)           # compiled: probes.program.Program
    vm.run_script(consumer)               # BEGIN, then END; prints via consumer

The library is built once per source version into build/host/ (or
$XDG_CACHE_HOME/unik when the tree is read-only), keyed by a hash of
every input.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

from probes import isa

from .errors import UnikError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["kernel/probe/verify.c", "kernel/probe/vm.c", "kernel/probe/vmstr.c",
           "kernel/probe/agg.c", "kernel/probe/dyn.c", "kernel/lib/string.c",
           "introspect/corevm_shim.c"]
CFLAGS = ["-std=gnu11", "-O2", "-g", "-fno-strict-aliasing", "-shared", "-fPIC", "-w"]
AGG_READ_CAP = 1 << 16
PAGE_SIZE = 4096                # page 0 is unmapped in the kernel: loads there fault
LOADFN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint64, ctypes.c_uint32,
                          ctypes.POINTER(ctypes.c_uint64))
_SYNTH = {isa.SynthProbe.BEGIN: "BEGIN", isa.SynthProbe.END: "END",
          isa.SynthProbe.ERROR: "ERROR"}


class VErr(ctypes.Structure):
    _fields_ = [("pc", ctypes.c_int64), ("msg", ctypes.c_char * 64)]


def _headers() -> dict[str, str]:
    from probes import isagen
    from . import wiregen
    return {"wire.h": wiregen.render(), "isa.h": isagen.render()}


def _cache_dirs() -> list[Path]:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return [ROOT / "build" / "host", Path(xdg) / "unik"]


def library_path() -> Path:
    """The built library (building it when its inputs changed)."""
    heads = _headers()
    h = hashlib.sha256(" ".join(CFLAGS).encode())
    for s in SOURCES:
        h.update((ROOT / s).read_bytes())
    for k in sorted(heads):
        h.update(heads[k].encode())
    h.update((ROOT / "kernel/probe/vm.h").read_bytes())
    h.update((ROOT / "introspect/corevm_shim.h").read_bytes())
    for inc in sorted((ROOT / "kernel/include").glob("*.h")):
        h.update(inc.read_bytes())
    tag = h.hexdigest()[:16]
    for d in _cache_dirs():
        so = d / f"corevm-{tag}.so"
        if so.is_file():
            return so
    for d in _cache_dirs():
        try:
            return _build(d, tag, heads)
        except OSError:
            continue
    raise UnikError("cannot build the host probe VM: no writable build/host or cache directory",
                    "set XDG_CACHE_HOME to a writable directory")


def _build(d: Path, tag: str, heads: dict[str, str]) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise UnikError("unik trace --core needs a host C compiler (gcc) to build the probe VM",
                        "apt-get install gcc")
    gen = d / f"gen-{tag}"
    gen.mkdir(parents=True, exist_ok=True)
    for name, text in heads.items():
        (gen / name).write_text(text)
    so = d / f"corevm-{tag}.so"
    tmp = d / f".corevm-{tag}.{os.getpid()}.so"
    cmd = [cc, *CFLAGS, "-I", str(ROOT / "kernel/include"), "-I", str(gen), "-o", str(tmp),
           *(str(ROOT / s) for s in SOURCES)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise UnikError(f"building the host probe VM failed: {r.stderr.strip()[:400]}",
                        "the kernel's probe sources must build with the host gcc")
    os.replace(tmp, so)
    return so


P, U32, U64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64
# corevm_shim.h's functions: name -> (argument types, result type).
SIGNATURES = {
    "corevm_new": ([U32, U32, U32, U32], P), "corevm_free": ([P], None),
    "corevm_load": ([P, ctypes.c_char_p, U32, ctypes.POINTER(VErr)], ctypes.c_int),
    "corevm_run": ([P, U32, U32, U32, ctypes.POINTER(U64), U32], U32),
    "corevm_set_load": ([P, LOADFN], None),
    "corevm_set_ram": ([P, U64, ctypes.c_char_p, U32], None),
    "corevm_set_builtin": ([P, U32, U64], None),
    "corevm_set_str": ([P, U32, ctypes.c_char_p], None),
    "corevm_set_stack": ([P, ctypes.POINTER(U64), U32], None),
    "corevm_stage": ([P, ctypes.POINTER(U32)], P),
    "corevm_fault": ([P, ctypes.POINTER(U32), ctypes.POINTER(U64)], U32),
    "corevm_exit": ([P], U64), "corevm_timestamp": ([P], U64),
    "corevm_agg_read": ([P, ctypes.POINTER(U32), ctypes.c_char_p, U32], U32),
    "corevm_agg_clear": ([P, ctypes.c_int32], None),
    "corevm_agg_drops": ([P], U64), "corevm_dyn_drops": ([P], U64),
    "corevm_dyn_live": ([P], U32), "corevm_agg_keys": ([P], U32),
    "corevm_arena": ([P, U32], U64), "corevm_loads": ([P], U64),
    "corevm_count1": ([P, U32], U32), "corevm_key1": ([P, U32], U32),
}


def bind(L):
    """L (a loaded build of SOURCES) with SIGNATURES applied; also used by
    tests/vmhost.py, which builds the same sources with the sanitizers."""
    for name, (a, res) in SIGNATURES.items():
        fn = getattr(L, name)
        fn.argtypes, fn.restype = a, res
    return L


def _lib():
    return bind(ctypes.CDLL(str(library_path())))


def check_probes(compiled) -> None:
    """Only BEGIN, END and ERROR mean something over a core: a clause on
    any other probe is an error naming it, at its position."""
    for c in compiled.clauses:
        for p in c.probes:
            if p.id not in _SYNTH:
                raise UnikError(f"{compiled.filename}: probe {p.fullname} cannot fire in a "
                                f"core: only BEGIN and END clauses run post-mortem",
                                "move what reads the kernel into BEGIN { ... } (it runs once "
                                "over the core), or trace the live instance instead")


class CoreVM:
    """One compiled script over one Program (a core; a live one works too
    but reads memory that changes under it)."""

    def __init__(self, compiled, prog) -> None:
        from .trace import DEFAULTS, parse_size
        self.compiled, self.prog = compiled, prog
        self.L = _lib()
        self._loadfn = LOADFN(self._load)
        opts = {**DEFAULTS, **(compiled.options or {})}
        self.h = self.L.corevm_new(parse_size(opts["aggsize"]), parse_size(opts["dynvarsize"]),
                                   0, 0)
        if not self.h:
            raise UnikError("out of memory for the aggregation arenas",
                            "ask for less with -x aggsize=... -x dynvarsize=...")
        self.L.corevm_set_load(self.h, self._loadfn)
        e = VErr()
        if not self.L.corevm_load(self.h, compiled.blob, len(compiled.blob), ctypes.byref(e)):
            from .trace import TraceVerifyError
            raise TraceVerifyError(e.pc, e.msg.decode(errors="replace"))
        self.exiting = False
        self._builtins()

    def close(self) -> None:
        if self.h:
            self.L.corevm_free(self.h)
            self.h = None

    def __enter__(self) -> "CoreVM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ environment
    def _load(self, addr: int, size: int, out) -> int:
        if addr < PAGE_SIZE:            # unmapped in the kernel (NULL faults)
            return 0
        try:
            data = self.prog.read(addr, size)
        except UnikError:
            return 0
        except Exception:               # never let an exception cross into C
            return 0
        out[0] = int.from_bytes(data, "little")
        return 1

    def _builtins(self) -> None:
        """The core's moment: its time (estimated as `unik ps --core`
        does), the core file's time as wall clock, its current thread."""
        from . import snapshot
        B = isa.Builtin
        clock = snapshot.clock(self.prog)
        ts = clock["uptime_ns"] if clock else 0
        wall = time.time_ns()
        if self.prog.core is not None:
            try:
                wall = os.stat(self.prog.core.path).st_mtime_ns
            except (OSError, AttributeError):
                pass
        cur = self.prog.current_thread()
        for b, v in ((B.TIMESTAMP, ts), (B.WALLTIMESTAMP, wall),
                     (B.TID, cur.tid if cur else 0),
                     (B.CURTHREAD, cur.obj.address_ if cur else 0)):
            self.L.corevm_set_builtin(self.h, int(b), v)
        if cur is not None:
            self.L.corevm_set_builtin(self.h, int(B.VTIMESTAMP), _cpu_ns(cur, clock))
        self.L.corevm_set_str(self.h, int(B.THREAD), (cur.name if cur else "").encode())
        self.L.corevm_set_str(self.h, int(B.PROBEPROV), b"dtrace")

    # ------------------------------------------------------------ running
    def fire(self, probe: int, args=()) -> list:
        """Run every clause enabled on synthetic probe `probe`, as the
        kernel's probe_run does; returns session-like events."""
        events: list = []
        self.L.corevm_set_str(self.h, int(isa.Builtin.PROBENAME), _SYNTH[probe].encode())
        for index, (clause, pid, _arg) in enumerate(self.compiled.enablings):
            if pid != probe or (self.exiting and probe != isa.SynthProbe.END):
                continue
            epid = clause << 16 | index
            a = (ctypes.c_uint64 * max(1, len(args)))(*[x & (2**64 - 1) for x in args])
            fault = self.L.corevm_run(self.h, clause, probe, epid, a, len(args))
            if fault:
                self._error(events, probe, clause, epid, fault)
                continue
            n = ctypes.c_uint32()
            p = self.L.corevm_stage(self.h, ctypes.byref(n))
            if n.value:
                events.append(("records", ctypes.string_at(p, n.value)))
            if self.L.corevm_exit(self.h) >> 63:
                self.exiting = True
        return events

    def _error(self, events: list, probe: int, clause: int, epid: int, fault: int) -> None:
        """A fault: the REC_ERROR record the engine commits, then ERROR."""
        pc, addr = ctypes.c_uint32(), ctypes.c_uint64()
        self.L.corevm_fault(self.h, ctypes.byref(pc), ctypes.byref(addr))
        ts = self.L.corevm_timestamp(self.h)
        rec = isa.REC_HDR.struct.pack(isa.REC_HDR.struct.size + 32, isa.REC_ERROR, probe, ts) \
            + struct.pack("<4Q", clause, pc.value, fault, addr.value)
        events.append(("records", rec))
        if probe != isa.SynthProbe.ERROR:
            events += self.fire(isa.SynthProbe.ERROR,
                                (0, epid, clause, pc.value, fault, addr.value))

    def aggregations(self) -> bytes:
        """Every aggregation entry, in AGG_READ's format."""
        out, cur = bytearray(), ctypes.c_uint32(0)
        buf = ctypes.create_string_buffer(AGG_READ_CAP)
        while True:
            n = self.L.corevm_agg_read(self.h, ctypes.byref(cur), buf, AGG_READ_CAP)
            out += buf.raw[:n]
            if cur.value == 0 or n == 0:
                return bytes(out)

    def clear(self, agg: int | None = None) -> None:
        self.L.corevm_agg_clear(self.h, -1 if agg is None else agg)

    def drops(self) -> dict:
        return {k: v for k, v in (("agg", self.L.corevm_agg_drops(self.h)),
                                  ("dyn", self.L.corevm_dyn_drops(self.h))) if v}

    def run_script(self) -> list:
        """BEGIN, then END (whether or not BEGIN called exit()): the
        events, as a live session's poll() and stop() give them."""
        events = self.fire(isa.SynthProbe.BEGIN)
        events += self.fire(isa.SynthProbe.END)
        d = self.drops()
        if d:
            events.append(("drops", d))
        return events


def _cpu_ns(thread, clock) -> int:
    """The current thread's CPU time up to the dump (thread_cpu_ns)."""
    try:
        cycles = int(thread.obj.cpu_cycles)
        if clock:
            cycles += max(0, clock["now_tsc"] - int(thread.obj.run_tsc))
            return cycles * clock["mult"] >> 32
    except (UnikError, AttributeError, KeyError):
        pass
    return 0
