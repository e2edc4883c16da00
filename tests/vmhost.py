"""The kernel's probe VM built for the host (introspect/corevm_shim.c, the
engine's part that `unik trace --core` also uses, with
kernel/probe/{verify,vm,vmstr,agg,dyn}.c), built with the sanitizers and
wrapped for the tests.

    lib = build(tmpdir)
    vm = VM(lib)
    err = vm.load(blob)            # None, or (pc, message)
    fault = vm.run(0, args=[1, 2]) # 0, or an isa.Fault
    vm.records()                   # [(desc, probe, timestamp, payload)]
"""
from __future__ import annotations

import ctypes
import struct

from cpure import build_shared
from introspect import corevm
from introspect.corevm import VErr
from probes import isa

SOURCES = corevm.SOURCES
# The builtins' strings until a test sets them: a sched:::switch firing.
DEFAULT_STRS = {isa.Builtin.THREAD: "main", isa.Builtin.PROBEPROV: "sched",
                isa.Builtin.PROBEMOD: "sched", isa.Builtin.PROBEFUNC: "sched_switch",
                isa.Builtin.PROBENAME: "switch"}


def build(outdir):
    so = build_shared(outdir, SOURCES, name="probevm.so")
    return corevm.bind(ctypes.CDLL(str(so)))


class VM:
    """One harness instance: a program, its arenas, fake RAM."""

    def __init__(self, L, aggsize=65536, dynsize=65536, scratch=8192, stage=8192):
        self.L = L
        self.h = L.corevm_new(aggsize, dynsize, scratch, stage)
        assert self.h
        self._ram = None
        for b, v in DEFAULT_STRS.items():
            self.builtin(b, v)

    def close(self):
        self.L.corevm_free(self.h)
        self.h = None

    def load(self, blob: bytes):
        e = VErr()
        if self.L.corevm_load(self.h, blob, len(blob), ctypes.byref(e)):
            return None
        return e.pc, e.msg.decode()

    def set_ram(self, addr: int, data: bytes):
        self._ram = ctypes.create_string_buffer(data, len(data))
        self.L.corevm_set_ram(self.h, addr, self._ram, len(data))

    def set_stack(self, pcs):
        """What stack() walks: pcs, innermost first."""
        a = (ctypes.c_uint64 * max(1, len(pcs)))(*pcs)
        self.L.corevm_set_stack(self.h, a, len(pcs))

    def builtin(self, b, value):
        if isinstance(value, str):
            self.L.corevm_set_str(self.h, int(b), value.encode())
        else:
            self.L.corevm_set_builtin(self.h, int(b), value & (2**64 - 1))

    def run(self, clause=0, args=(), probe=isa.FIRST_STATIC_PROBE) -> int:
        a = (ctypes.c_uint64 * max(1, len(args)))(*[x & (2**64 - 1) for x in args])
        return self.L.corevm_run(self.h, clause, probe, clause << 16, a, len(args))

    @property
    def fault(self):
        pc, addr = ctypes.c_uint32(), ctypes.c_uint64()
        f = self.L.corevm_fault(self.h, ctypes.byref(pc), ctypes.byref(addr))
        return f, pc.value, addr.value

    @property
    def exit_code(self):
        v = self.L.corevm_exit(self.h)
        return None if not v >> 63 else v & ((1 << 63) - 1)

    def records(self) -> list:
        n = ctypes.c_uint32()
        p = self.L.corevm_stage(self.h, ctypes.byref(n))
        raw = ctypes.string_at(p, n.value) if n.value else b""
        out, i = [], 0
        while i < len(raw):
            h = isa.REC_HDR.unpack(raw, i)
            assert h["size"] % 8 == 0 and h["size"] >= isa.REC_HDR.size
            out.append((h["desc"], h["probe"], h["timestamp"],
                        raw[i + isa.REC_HDR.size:i + h["size"]]))
            i += h["size"]
        return out

    def aggs(self, cap=65536) -> dict:
        """{(agg, key bytes): [words]} read through agg_read in cap-byte chunks."""
        out, cur = {}, ctypes.c_uint32(0)
        buf = ctypes.create_string_buffer(cap)
        while True:
            n = self.L.corevm_agg_read(self.h, ctypes.byref(cur), buf, cap)
            data = buf.raw[:n]
            i = 0
            while i < n:
                agg, klen, nw = struct.unpack_from("<HHI", data, i)
                i += 8
                key = data[i:i + klen]
                i += (klen + 7) & ~7
                words = list(struct.unpack_from(f"<{nw}q", data, i))
                i += 8 * nw
                out[(agg, key)] = words
            if cur.value == 0:
                return out
            assert n > 0, "agg_read made no progress"

    def arena(self, which: int) -> int:
        return self.L.corevm_arena(self.h, which)

    def count1(self, clause: int) -> int:
        """The verifier's vm_clause.count1 of clause: agg + 1 when the
        clause is exactly one keyless count(), else 0."""
        return self.L.corevm_count1(self.h, clause)

    def key1(self, clause: int) -> tuple | None:
        """The verifier's vm_clause.key1 of clause: (agg, builtin, is a
        string) when the clause is exactly `@[builtin] = count()`, else None."""
        v = self.L.corevm_key1(self.h, clause)
        return ((v & 0xFF) - 1, (v >> 8) & 0xFFFF, bool(v >> 24)) if v else None

    @property
    def agg_drops(self):
        return self.L.corevm_agg_drops(self.h)

    @property
    def dyn_drops(self):
        return self.L.corevm_dyn_drops(self.h)

    @property
    def dyn_live(self):
        return self.L.corevm_dyn_live(self.h)


def strval(payload: bytes, off: int = 0):
    """(string, next offset) of a RECS value at payload[off:]."""
    n = struct.unpack_from("<H", payload, off)[0]
    s = payload[off + 2:off + 2 + n].decode()
    return s, off + ((2 + n + 7) & ~7)
