"""The consumer: turns a session's record stream and aggregation snapshots
into what `unik trace` prints, the way dtrace(1M)'s consumer does.

Records (isa.REC_HDR, then the values RECV/RECS appended) are decoded by
their descriptor in `prog.recdescs`:

* printf   — the formatted text (probes/printf.py)
* trace    — the value: `" %16d"` / `"  %-33s"`, or bare with -q
* default  — nothing but the probe line (a clause without actions)
* printa   — the aggregation, fetched from the session (`aggs()`)
* clear, trunc, normalize, denormalize — change what later prints show
* REC_EXIT — remembers the exit code; REC_ERROR — one line on stderr

Without -q, each probe firing starts a line `CPU ID FUNCTION:NAME` as
dtrace prints it (`%3d %6d %32s `), under a heading printed once; the
records of one firing (same probe and timestamp) share the line.

Malformed input never raises: each problem prints one `unik:` line on the
error stream and is counted in `malformed`.

The consumer does no I/O of its own beyond writing to the streams it is
given; the session is reached through two callbacks: `aggs()` returns the
snapshot (payload bytes or AggEntry list) and `clear(agg)` clears one
aggregation in the kernel.
"""
from __future__ import annotations

import json as jsonlib
import sys

from probes import aggprint, isa, stacks
from probes.program import Probe
from probes.aggprint import U64, AggDecodeError, AggEntry
from probes.printf import FormatError, format_values, parse_format, symbol_text

HDR = isa.REC_HDR.struct
FAULT_TEXT = {
    isa.Fault.BADADDR: "invalid address (0x{addr:x})",
    isa.Fault.DIVZERO: "divide-by-zero",
    isa.Fault.SCRATCH: "out of scratch space",
    isa.Fault.TUPLE: "tuple key too large",
    isa.Fault.RECORD: "record too large",
    isa.Fault.BADSTR: "invalid string (0x{addr:x})",
    isa.Fault.ILLOP: "illegal operation",
}
# TraceSession's drop kinds (introspect/trace.py) as dtrace words them
DROP_KIND = {"records": "", "buf": "", "chan": "channel ", "agg": "aggregation ",
             "dyn": "dynamic variable ", "reentrant": "re-entrant firing "}


class Consumer:
    """Decode and print one session's output (see the module doc)."""

    def __init__(self, prog, out=None, *, quiet=False, json=False, symbolize=None,
                 err=None, aggs=None, clear=None):
        self.prog = prog
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.quiet = bool(quiet or prog.options.get("quiet"))
        self.json = json
        self.symbolize = symbolize
        self.aggs_cb = aggs
        self.clear_cb = clear
        self.exit_code: int | None = None
        self.errors = 0                 # REC_ERROR records seen
        self.malformed = 0              # records or snapshots we could not decode
        self.dropped: dict = {}         # kind -> total drops reported
        self.printed: set = set()       # aggregations printa() printed
        self.normals: dict = {}         # agg -> normalize() factor
        self.baseline: dict = {}        # agg -> {key: words} hidden by trunc/clear
        self._heading = False
        self._line = None               # (probe, timestamp) of the open probe line
        self._probes: dict = {}         # probe id -> Probe (ticks of several rates: "tick")
        for p in (p for c in prog.clauses for p in c.probes):
            q = self._probes.setdefault(p.id, p)
            if q != p:
                self._probes[p.id] = Probe(p.id, p.provider, "", "", p.name.split("-")[0])
        self._formats: dict = {}

    # ------------------------------------------------------------ output
    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)

    def _emit(self, obj: dict) -> None:
        self.out.write(jsonlib.dumps(obj, default=_jsonable) + "\n")

    def _problem(self, msg: str) -> None:
        self.malformed += 1
        self._close_line()
        self.err.write(f"unik: {msg}\n")
        self.err.flush()

    def flush(self) -> None:
        self.out.flush()

    # ------------------------------------------------------------ records
    def handle_records(self, data: bytes) -> None:
        """Decode and print a run of records (one TRACE_DATA payload)."""
        off, n = 0, len(data)
        while off < n:
            if n - off < HDR.size:
                self._problem(f"malformed record at offset {off}: {n - off} bytes left, "
                              f"a record header is {HDR.size}")
                break
            size, desc, probe, ts = HDR.unpack_from(data, off)
            if size < HDR.size or size % 8 or off + size > n:
                self._problem(f"malformed record at offset {off}: size {size} "
                              f"(needs a multiple of 8, >= {HDR.size}, within the "
                              f"{n - off} bytes left); rest of the batch skipped")
                break
            self._record(desc, probe, ts, data, off + HDR.size, off + size)
            off += size
        self._close_line()
        self.out.flush()

    def _record(self, desc, probe, ts, data, start, end) -> None:
        if desc == isa.REC_ERROR:
            return self._error_record(probe, ts, data, start, end)
        if desc == isa.REC_EXIT:
            if end - start < 8:
                return self._problem(f"exit record from probe {probe} has no code")
            self.exit_code = aggprint.int_of(int.from_bytes(data[start:start + 8], "little"),
                                             _S32)
            if self.json:
                return self._emit({"type": "exit", "code": self.exit_code,
                                   "probe": self._probe_name(probe), "timestamp": ts})
            return self._probe_line(probe, ts)
        if desc >= len(self.prog.recdescs):
            return self._problem(f"record from probe {probe} has descriptor {desc}, "
                                 f"the program has {len(self.prog.recdescs)}")
        rd = self.prog.recdescs[desc]
        try:
            values, _ = aggprint.decode_values(data, start, end, rd.args)
        except AggDecodeError as e:
            return self._problem(f"record {desc} ({rd.kind}) from probe {probe}: {e}")
        handler = getattr(self, "_do_" + rd.kind, None)
        if handler is None:
            return self._problem(f"record {desc} has unknown kind {rd.kind!r}")
        handler(rd, values, probe, ts)

    def _probe_name(self, probe: int) -> str:
        p = self._probes.get(probe)
        return p.fullname if p else f"probe {probe}"

    def _probe_line(self, probe: int, ts: int) -> None:
        """Start (or continue) the probe's line, unless quiet or JSON."""
        if self.quiet or self.json:
            return
        if self._line == (probe, ts):
            return
        self._close_line()
        if not self._heading:
            self._write("%3s %6s %32s\n" % ("CPU", "ID", "FUNCTION:NAME"))
            self._heading = True
        p = self._probes.get(probe)
        name = f"{p.function}:{p.name}" if p else ":"
        self._write("%3d %6d %32s " % (0, probe, name))
        self._line = (probe, ts)

    def _close_line(self) -> None:
        if self._line is not None:
            self._write("\n")
            self._line = None

    def _json_rec(self, kind, probe, ts, **kw) -> None:
        self._emit({"type": kind, "probe": self._probe_name(probe), "id": probe,
                    "timestamp": ts, **kw})

    # ------------------------------------------------------------ actions
    def _do_default(self, rd, values, probe, ts) -> None:
        if self.json:
            return self._json_rec("probe", probe, ts)
        self._probe_line(probe, ts)

    def _do_printf(self, rd, values, probe, ts) -> None:
        parsed = self._parsed(rd)
        if parsed is None:
            return
        try:
            text = format_values(parsed, values, self.symbolize,
                                 sizes=[getattr(v, "size", 8) for v in rd.args])
        except FormatError as e:
            return self._problem(f"printf record {rd.index} from probe {probe}: {e.message}")
        if self.json:
            return self._json_rec("printf", probe, ts, text=text)
        self._probe_line(probe, ts)
        self._write(text)

    def _parsed(self, rd, printa=False):
        if rd.index not in self._formats:
            try:
                self._formats[rd.index] = parse_format(rd.fmt or "", printa=printa)
            except FormatError as e:
                self._formats[rd.index] = None
                self._problem(f"record {rd.index} has a bad format {rd.fmt!r}: {e.message}")
        return self._formats[rd.index]

    def _do_trace(self, rd, values, probe, ts) -> None:
        if not values:
            return self._problem(f"trace record {rd.index} from probe {probe} has no value")
        vt, v = rd.args[0], values[0]
        if self.json:
            return self._json_rec("trace", probe, ts, value=self._sym(vt, v))
        self._probe_line(probe, ts)
        if isinstance(v, stacks.Stack):
            self._write(stacks.stack_text(v, self.symbolize))
        elif self.quiet:
            self._write(str(self._sym(vt, v)))
        elif isinstance(v, str):
            self._write("  %-33s" % v)
        else:
            self._write(aggprint.key_text(vt, v, self.symbolize))

    def _sym(self, vt, v):
        if isinstance(v, stacks.Stack):
            return stacks.frame_names(v, self.symbolize)
        if getattr(vt, "ctype", "") in aggprint.SYM_CTYPES and isinstance(v, int):
            return symbol_text(v, self.symbolize, offset=False)
        return v

    def _agg_desc(self, rd, probe):
        if rd.agg is None or not 0 <= rd.agg < len(self.prog.aggs):
            self._problem(f"{rd.kind} record {rd.index} from probe {probe} names "
                          f"aggregation {rd.agg}, which does not exist")
            return None
        return self.prog.aggs[rd.agg]

    def _do_printa(self, rd, values, probe, ts) -> None:
        desc = self._agg_desc(rd, probe)
        if desc is None:
            return
        entries = self.entries(desc.index)
        if entries is None:
            return
        normal = self.normals.get(desc.index, 1)
        if self.json:
            return self._emit(aggprint.agg_json(desc, entries, normal, self.symbolize))
        self._probe_line(probe, ts)
        if rd.fmt is None:
            self._write("\n" + aggprint.format_agg(desc, entries, normal, self.symbolize))
        else:
            parsed = self._parsed(rd, printa=True)
            if parsed is None:
                return
            try:
                self._write(aggprint.format_printa(desc, entries, parsed, normal,
                                                   self.symbolize))
            except FormatError as e:
                return self._problem(f"printa record {rd.index}: {e.message}")
        if entries:
            self.printed.add(desc.index)

    def _do_clear(self, rd, values, probe, ts) -> None:
        desc = self._agg_desc(rd, probe)
        if desc is None:
            return
        if self.clear_cb is not None:
            self.clear_cb(desc.index)
            self.baseline.pop(desc.index, None)
            return
        raw = self._snapshot()
        if raw is not None:
            self._hide(desc.index, [e for e in raw if e.agg == desc.index], keep=True)

    def _do_trunc(self, rd, values, probe, ts) -> None:
        desc = self._agg_desc(rd, probe)
        if desc is None:
            return
        raw = self._snapshot()
        if raw is None:
            return
        raw = [e for e in raw if e.agg == desc.index]
        visible = [v for v in map(self._visible, raw) if v is not None]
        n = values[0] if values else 0
        keep = set(e.key for e in aggprint.trunc_keep(desc, visible, n))
        self._hide(desc.index, [e for e in raw if e.key not in keep], keep=False)

    def _hide(self, agg: int, raw, keep: bool) -> None:
        """Take these entries' current values out of later prints: only what
        they gain afterwards shows.  keep: the key stays, printed as zero
        until then (clear()); else it disappears until then (trunc())."""
        base = self.baseline.setdefault(agg, {})
        for e in raw:
            base[e.key] = (tuple(e.words), keep)

    def _do_normalize(self, rd, values, probe, ts) -> None:
        desc = self._agg_desc(rd, probe)
        if desc is None:
            return
        factor = values[0] if values else 1
        if not isinstance(factor, int) or factor <= 0:
            return self._problem(f"normalize() of @{desc.name} by {factor}: the factor "
                                 "must be positive")
        self.normals[desc.index] = factor

    def _do_denormalize(self, rd, values, probe, ts) -> None:
        desc = self._agg_desc(rd, probe)
        if desc is not None:
            self.normals.pop(desc.index, None)

    # ------------------------------------------------------------ errors
    def _error_record(self, probe, ts, data, start, end) -> None:
        if end - start < 32:
            return self._problem(f"error record from probe {probe} is {end - start} bytes, "
                                 "expected 32")
        clause, pc, fault, addr = (int.from_bytes(data[start + 8 * i:start + 8 * i + 8],
                                                  "little") for i in range(4))
        self.errors += 1
        pos = self.prog.pos_of_pc(pc)
        where = f"{pos.file}:{pos.line}:{pos.col}" if pos else f"pc {pc}"
        text = FAULT_TEXT.get(fault, "fault %d" % fault).format(addr=addr)
        if self.json:
            return self._json_rec("error", probe, ts, clause=clause, pc=pc, fault=text,
                                  addr=addr, where=where)
        self._close_line()
        self.out.flush()
        self.err.write(f"unik: error on enabled probe ID {probe} "
                       f"({self._probe_name(probe)}): {text} at {where}\n")
        self.err.flush()

    def drops(self, n: int, kind: str = "records") -> None:
        """The session reported n more drops of one kind."""
        if n <= 0:
            return
        self.dropped[kind] = self.dropped.get(kind, 0) + n
        if self.json:
            self._emit({"type": "drops", "kind": kind, "count": n})
            self.out.flush()
            return
        self._close_line()
        self.out.flush()
        self.err.write(f"unik: {n} {DROP_KIND.get(kind, kind + ' ')}drops on CPU 0\n")
        self.err.flush()

    # ------------------------------------------------------------ aggregations
    def _snapshot(self):
        """The session's raw entries, or None (and one error line)."""
        if self.aggs_cb is None:
            self._problem("no aggregation snapshot available")
            return None
        try:
            snap = self.aggs_cb()
            if isinstance(snap, (bytes, bytearray, memoryview)):
                snap = aggprint.decode_agg_entries(bytes(snap), self.prog)
        except AggDecodeError as e:
            self._problem(f"aggregation snapshot: {e}")
            return None
        return list(snap)

    def entries(self, agg: int | None = None):
        """The current entries (of one aggregation, or all) as the script
        sees them after trunc() and clear(); None when there is no snapshot."""
        snap = self._snapshot()
        if snap is None:
            return None
        out = []
        for e in snap:
            if agg is not None and e.agg != agg:
                continue
            e = self._visible(e)
            if e is not None:
                out.append(e)
        return out

    def _visible(self, e):
        """Entry e less what trunc()/clear() took out of it, or None."""
        hidden = self.baseline.get(e.agg, {}).get(e.key)
        if hidden is None:
            return e
        base, keep = hidden
        desc = self.prog.aggs[e.agg]
        if tuple(e.words) == base:
            if not keep:
                return None
            return AggEntry(e.agg, e.key, (0,) * len(e.words))
        if desc.func in (isa.AggFunc.MIN, isa.AggFunc.MAX):
            return e
        if desc.func == isa.AggFunc.STDDEV:
            sq = ((e.words[2] | e.words[3] << 64) - (base[2] | base[3] << 64)) % (1 << 128)
            words = ((e.words[0] - base[0]) % U64, (e.words[1] - base[1]) % U64,
                     sq % U64, sq >> 64)
        else:
            words = tuple((a - b) % U64 for a, b in zip(e.words, base))
        return AggEntry(e.agg, e.key, words)

    def finish(self) -> None:
        """End of the run: dtrace's blank line, then every aggregation
        printa() did not print (JSON: one object per aggregation)."""
        self._close_line()
        entries = self.entries() if self.prog.aggs else []
        if self.json:
            for desc in self.prog.aggs:
                if desc.index in self.printed:
                    continue
                mine = [e for e in entries or [] if e.agg == desc.index]
                self._emit(aggprint.agg_json(desc, mine, self.normals.get(desc.index, 1),
                                             self.symbolize))
            self.out.flush()
            return
        self._write("\n")
        if entries:
            self._write(aggprint.format_end(self.prog, entries, self.printed, self.normals,
                                            self.symbolize))
        self.out.flush()


class _S32:
    """exit(code) is an int: the code as a signed 32-bit value."""
    size = 4
    signed = True


def _jsonable(o):
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    return str(o)
