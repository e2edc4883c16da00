"""What probes cost, measured in the guest: the rows `unik bench` shows for
tracing (introspect/bench.py's probe_rows calls `rows`).

The probebench app (kernel/apps/probebench/probebench.c), booted with
`-icount shift=0` so that the guest TSC advances once per instruction,
times a loop of calls to an empty function and the same loop calling that
function plus the site of bench:::fire, for two loop lengths, every 20 ms,
and publishes the instruction counts in its `probebench` struct; this
module reads it with MEMREAD (the layout from the ELF's DWARF).  Slopes
between the two lengths cancel the cost of reading the TSC:

  disabled site   site slope - empty slope: exactly 1 (the 5-byte nop)
  enabled clause  the same difference while a real trace session (TRACE_*
                  requests, TraceSession) runs a compiled program on
                  bench:::fire: one firing, site to clause and back

sched:::switch is measured the same way on a ping-pong: the app's thread
and a partner yield to each other with interrupts off, each iteration is
two switches and so two firings whose `thread` alternates (the
aggregation's key changes at every firing, as in production):

  switch firing   (pong slope enabled - pong slope disabled) / 2

While bench:::flood is enabled the app fires it back to back with
interrupts on; the channel streams the printf records to the host, which
counts delivered and dropped records against its own wall clock.  The demo
app's work counter (`demo_workers[].rounds`) per guest second, with and
without `sched:::switch { @[thread] = count(); }`, gives the throughput
ratio.

Programs are compiled from the D text in SCRIPTS by the D compiler
(probes/compiler.py).  Until its parser's tree and sema agree, the same
clauses lowered by hand to the typed IR (probes/ir.py) go through its code
generator instead; tests/test_probebench.py compares the two.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from probes.program import Program

from . import probetable
from .dwarf import TypeDB
from .errors import UnikError
from .trace import TraceSession

# The rows' scripts (bench:::fire and bench:::flood take three uint64_t).
SCRIPTS = {
    "count": "bench:::fire { @ = count(); }",
    "thread": "bench:::fire { @[thread] = count(); }",
    "printf": 'bench:::fire { printf("%d %d %d\\n", arg0, arg1, arg2); }',
    "flood": 'bench:::flood { printf("%d %d %d\\n", arg0, arg1, arg2); }',
    "switch": "sched:::switch { @[thread] = count(); }",
    "fbt_count": "fbt::pb_fbt:entry { @ = count(); }",
    "fbt_all": "fbt:::entry { @[probefunc] = count(); }",
    "fbt_pair": "fbt::pb_fbt:entry { self->ts = timestamp; } "
                "fbt::pb_fbt:return /self->ts/ { @ = quantize(timestamp - self->ts); "
                "self->ts = 0; }",
}
RESULT_SYM = "probebench"
RESULT_STRUCT = "probebench_result"


# ------------------------------------------------------------------ programs
def compile_bench(kind: str, probes: list) -> Program:
    """The program of SCRIPTS[kind] for the kernel whose probes are given,
    compiled from its D text by the D compiler."""
    from probes.compiler import compile_script
    from probes.probematch import match
    src = SCRIPTS[kind]
    desc = src.split(" ", 1)[0]
    if not match(desc, probes):
        raise UnikError(f"no probe {desc} in this kernel",
                        "boot the probebench app (unik build probebench)")
    # the benchmarks' loops are all probe by design (no CPU deadman), and
    # they wait on guest memory, not on the session (no drain deadman)
    return compile_script(src, "-e", probes, options={"cpubudget": "off", "deadman": "off"})


# ------------------------------------------------------------------ pure math
@dataclass(frozen=True)
class Slopes:
    """Instructions per loop iteration from one probebench round."""
    empty: float                # calling the empty function
    site: float                 # calling it with the site in it
    enabled: bool

    @property
    def probe(self) -> float:
        """What the site adds per call: 1 disabled (the nop), else a firing."""
        return self.site - self.empty


def _per_iter(r: dict, key: str) -> float:
    """Counter `key`'s growth per iteration between the round's two loop
    lengths (key1 at n1, key2 at n2): fixed costs cancel."""
    dn = r["n2"] - r["n1"]
    if dn <= 0:
        raise ValueError(f"bad round: n1={r['n1']} n2={r['n2']}")
    return (r[key + "2"] - r[key + "1"]) / dn


def slopes(r: dict) -> Slopes:
    """Slopes between the round's two loop lengths (fixed costs cancel)."""
    return Slopes(_per_iter(r, "empty"), _per_iter(r, "site"), bool(r["enabled"]))


def fbt_slopes(r: dict) -> Slopes:
    """The same for pb_fbt against pb_fbt_base (the identical function
    without its fbt nop): `probe` is 1 disabled, else one firing."""
    return Slopes(_per_iter(r, "fbtbase"), _per_iter(r, "fbt"), bool(r["fbt_enabled"]))


def pong_slope(r: dict) -> float:
    """Instructions per ping-pong iteration (two switches) of a round."""
    return _per_iter(r, "pong")


def switch_cost(on: dict, off: dict) -> float:
    """What one sched:::switch firing costs: half the difference of the
    ping-pong slopes with the probe enabled and disabled."""
    return (pong_slope(on) - pong_slope(off)) / 2


def decode_struct(data: bytes, layout: tuple[int, dict[str, int]]) -> dict:
    """The u64 members of a struct read from guest memory (pure)."""
    size, members = layout
    if len(data) < size:
        raise ValueError(f"{len(data)} bytes read, the struct has {size}")
    return {m: struct.unpack_from("<Q", data, off)[0] for m, off in members.items()}


def flood_figures(wall_s: float, delivered: int, st: dict, fires: int,
                  instr: int) -> dict:
    """Records per second of host wall time and the accounting of a flood:
    every firing is a record delivered or a drop (buffer full, or a frame
    lost on the channel)."""
    drops = st["drops_buf"] + st["drops_chan"]
    return {"rate": delivered / wall_s if wall_s > 0 else 0.0, "delivered": delivered,
            "drops": drops, "fired": st["fired"],
            "accounted": st["fired"] == delivered + drops,
            "instr_per_record": instr / fires if fires else 0.0}


def ratio(with_rate: float, without_rate: float) -> float:
    return with_rate / without_rate if without_rate else 0.0


def agg_total(raw: bytes) -> int:
    """Sum of the first value word of every entry of an aggregation
    snapshot (TraceSession.aggregations(): u16 agg, u16 keylen, u32 nwords,
    key padded to 8, nwords u64): a count()'s firings over all keys."""
    total, off = 0, 0
    while off + 8 <= len(raw):
        _agg, keylen, nwords = struct.unpack_from("<HHI", raw, off)
        off += 8 + (keylen + 7) // 8 * 8
        if nwords:
            total += struct.unpack_from("<Q", raw, off)[0]
        off += 8 * nwords
    return total


# ------------------------------------------------------------------ the guest
def guest_u64s(ch, db, sym: str, struct_name: str, member: str) -> list[int]:
    """Member `member` (a u64) of every element of the struct array `sym`."""
    addr, t = db.global_var(sym)
    size, members = db.struct_layouts(struct_name)[struct_name]
    n = max(1, t.size // size) if t.size else 1
    data = ch.memread(addr, n * size)
    return [struct.unpack_from("<Q", data, i * size + members[member])[0] for i in range(n)]


def work_rate(ch, db, guest_s: float) -> tuple[float, float]:
    """The demo app's rounds (sum over its workers) per guest second over a
    window of guest_s guest seconds; and the window's length in seconds."""
    def sample():
        up = ch.threads()[0]["uptime_ns"]
        return up, sum(guest_u64s(ch, db, "demo_workers", "demo_worker", "rounds"))
    t0, r0 = sample()
    end = time.monotonic() + 120
    while ch.threads()[0]["uptime_ns"] < t0 + guest_s * 1e9 and time.monotonic() < end:
        time.sleep(0.02)
    t1, r1 = sample()
    span = (t1 - t0) / 1e9
    return (r1 - r0) / span if span > 0 else 0.0, span


def demo_ratio(ch, elf, guest_s: float, kind: str = "switch") -> dict:
    """Demo's work rate without and with SCRIPTS[kind] (`sched:::switch {
    @[thread] = count(); }`, or fbt_all: every kernel function's entry
    counted), and the firings per guest second it counted."""
    db = TypeDB.from_elf(elf)
    work_rate(ch, db, 1.0)                  # warm-up: the first second after boot
    without, _ = work_rate(ch, db, guest_s)
    with TraceSession(ch, compile_bench(kind, probetable.load(elf))) as s:
        u0 = ch.threads()[0]["uptime_ns"]
        s.start()
        with_, _ = work_rate(ch, db, guest_s)
        s.stop()
        span = (ch.threads()[0]["uptime_ns"] - u0) / 1e9
        fired = agg_total(s.aggregations())
    return {"without": without, "with": with_, "ratio": ratio(with_, without),
            "switches_per_s": fired / span if span > 0 else 0.0}


class Bench:
    """One booted probebench (or demo) instance's channel, symbols and probes."""

    def __init__(self, ch, elf) -> None:
        self.ch = ch
        self.db = TypeDB.from_elf(elf)
        self.probes = probetable.load(elf)

    def read(self, sym: str, struct_name: str) -> dict:
        addr, _t = self.db.global_var(sym)
        layout = self.db.struct_layouts(struct_name)[struct_name]
        return decode_struct(self.ch.memread(addr, layout[0]), layout)

    def result(self) -> dict:
        return self.read(RESULT_SYM, RESULT_STRUCT)

    def round_after(self, seq: int, enabled: bool, timeout: float = 30.0,
                    field: str = "enabled") -> dict:
        """The first round that started after round `seq` ended, with the
        site (bench:::fire, or sched:::switch for field "switch_enabled")
        in the wanted state throughout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = self.result()
            if r["seq"] >= seq + 2 and bool(r[field]) == enabled:
                return r
            time.sleep(0.01)
        raise UnikError(f"probebench: no {'enabled' if enabled else 'disabled'} round "
                        f"within {timeout:.0f}s", "is the probebench app running?")

    def _traced_round(self, kind: str, field: str, bad: tuple, hint: str) -> tuple[dict, dict]:
        """The first round with SCRIPTS[kind] running throughout (round_after's
        `field` enabled) and the session's final status; UnikError when a
        status counter in `bad` is not 0 (drops or faults would make the
        firing look cheaper).  Called by the measure_* methods."""
        with TraceSession(self.ch, compile_bench(kind, self.probes)) as s:
            s.start()
            r = self.round_after(self.result()["seq"], True, field=field)
            s.stop()
            st = s.status()
        if any(st[k] for k in bad):
            raise UnikError(f"probebench {kind}: the session dropped or faulted ({st})", hint)
        return r, st

    def measure(self, kind: str | None) -> tuple[Slopes, dict | None]:
        """Slopes with no session (kind None) or with SCRIPTS[kind] running;
        the session's final status (no drops allowed: they would make the
        firing cheaper)."""
        if kind is None:
            return slopes(self.round_after(self.result()["seq"], False)), None
        r, st = self._traced_round(kind, "enabled", ("drops_buf", "drops_agg", "errors"),
                                   "a bigger bufsize, or fewer calls per round")
        return slopes(r), st

    def measure_fbt(self, kind: str | None) -> tuple[Slopes, dict | None]:
        """fbt_slopes with no session (kind None) or with SCRIPTS[kind]
        (an fbt script on pb_fbt) running, and the session's status."""
        if kind is None:
            return fbt_slopes(self.round_after(self.result()["seq"], False,
                                               field="fbt_enabled")), None
        r, st = self._traced_round(kind, "fbt_enabled", ("drops_agg", "drops_dyn", "errors"),
                                   "a bigger aggsize or dynvarsize")
        return fbt_slopes(r), st

    def measure_switch(self) -> tuple[float, dict]:
        """What one firing of SCRIPTS["switch"] costs on the ping-pong
        (instructions), and the session's final status."""
        off = self.round_after(self.result()["seq"], False, field="switch_enabled")
        on, st = self._traced_round("switch", "switch_enabled", ("drops_agg", "errors"),
                                    "a bigger aggsize")
        return switch_cost(on, off), st

    def flood(self, seconds: float) -> dict:
        """Stream bench:::flood's printf records for `seconds`."""
        prog = compile_bench("flood", self.probes)
        prog.options = {**(prog.options or {}), "bufsize": 4 << 20, "switchrate": 1000}
        before = self.result()["flood_seq"]
        with TraceSession(self.ch, prog) as s:
            s.start()
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                s.poll(0.05)
            s.stop()
            wall = time.monotonic() - t0
            st = s.status()
            delivered = s.delivered
        end = time.monotonic() + 10
        while self.result()["flood_seq"] == before and time.monotonic() < end:
            time.sleep(0.01)
        r = self.result()
        return flood_figures(wall, delivered, st, r["flood_fires"], r["flood_instr"])
