"""Aggregations on the host: decoding the kernel's snapshot and printing it
exactly as dtrace(1M) prints aggregations.

The kernel's snapshot payload (TraceSession.aggregations()) is a run of
entries, each

    u16 agg | u16 keylen | u32 nwords | key bytes (keylen, padded to 8) | nwords u64

all little-endian.  The key is the tuple encoding records use: an integer
is 8 bytes, a string a u16 length and its bytes, padded to 8.  The value
words follow isa.AggFunc.

Printing follows libdtrace's consumer (dt_consume.c): each entry is its
keys (an integer `" %16d"`, narrower for narrower types; a string
`"  %-50s"`) then its value (`" %16d"`; avg and stddev as integers), or for
quantize/lquantize the `value ---- Distribution ---- count` table with
'@' bars scaled to 40 columns; entries sorted by value, ties by key.
`printa(@a)` prints a blank line and the entries; at the end of a run the
command prints a blank line and every aggregation printa() did not print.
We add one thing dtrace lacks: when a script has several aggregations,
each one printed at the end is introduced by its `@name` line.

Pure: no I/O.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

from probes import isa, stacks
from probes.printf import FormatError, format_one, symbol_text

ENTRY_HDR = struct.Struct("<HHI")
U64 = 1 << 64
BAR = 40
DIST_HEADER = "\n%16s %41s %-9s\n" % ("value", "------------- Distribution -------------",
                                       "count")
_KEY_WIDTH = {8: 16, 4: 8, 2: 5, 1: 3}
SYM_CTYPES = ("sym", "func")     # ValType.ctype of sym()/func() values: printed as the symbol name (no offset, as dtrace)


class AggDecodeError(ValueError):
    """The snapshot payload is not what the program's aggregations say."""


@dataclass(frozen=True)
class AggEntry:
    agg: int            # index in prog.aggs
    key: tuple          # decoded key values (int, or str for strings)
    words: tuple        # the value words, unsigned 64-bit


# ------------------------------------------------------------------ decoding

def _pad8(n: int) -> int:
    return (n + 7) & ~7


def int_of(word: int, vt) -> int:
    """A recorded 64-bit word as the value of its source type `vt`."""
    size = getattr(vt, "size", 8) or 8
    bits = 8 * min(max(size, 1), 8)
    v = word & ((1 << bits) - 1)
    if getattr(vt, "signed", False) and v >> (bits - 1):
        v -= 1 << bits
    return v


def decode_values(data: bytes, off: int, end: int, valtypes) -> tuple:
    """Decode one value per ValType from data[off:end] (the tuple/record
    encoding): (values tuple, offset after them).  Raises AggDecodeError."""
    out = []
    for i, vt in enumerate(valtypes):
        if getattr(vt, "kind", "") == "stack":
            try:
                st, off = stacks.decode(data, off, end)
            except ValueError as e:
                raise AggDecodeError(f"value {i}: {e}") from None
            out.append(st)
        elif getattr(vt, "is_string", False):
            if off + 2 > end:
                raise AggDecodeError(f"value {i}: string length runs past the end")
            n = int.from_bytes(data[off:off + 2], "little")
            if off + 2 + n > end:
                raise AggDecodeError(f"value {i}: string of {n} bytes runs past the end")
            raw = data[off + 2:off + 2 + n].split(b"\0", 1)[0]
            out.append(raw.decode("utf-8", "replace"))
            off += _pad8(2 + n)
        else:
            if off + 8 > end:
                raise AggDecodeError(f"value {i}: integer runs past the end")
            out.append(int_of(int.from_bytes(data[off:off + 8], "little"), vt))
            off += 8
    return tuple(out), min(off, end)


def decode_agg_entries(payload: bytes, prog) -> list:
    """AggEntry list of a snapshot payload.  Raises AggDecodeError naming
    the first malformed entry."""
    out, off, n = [], 0, len(payload)
    while off < n:
        if off + ENTRY_HDR.size > n:
            raise AggDecodeError(f"entry at offset {off}: truncated header")
        agg, keylen, nwords = ENTRY_HDR.unpack_from(payload, off)
        if agg >= len(prog.aggs):
            raise AggDecodeError(f"entry at offset {off}: aggregation {agg} does not exist "
                                 f"(the program has {len(prog.aggs)})")
        desc = prog.aggs[agg]
        want = isa.agg_words(desc.func, _lq_levels(desc))
        if nwords != want:
            raise AggDecodeError(f"entry at offset {off}: @{desc.name} has {nwords} value "
                                 f"words, expected {want}")
        kstart = off + ENTRY_HDR.size
        kend = kstart + _pad8(keylen)
        if kend + 8 * nwords > n:
            raise AggDecodeError(f"entry at offset {off}: runs past the end of the snapshot")
        key, _ = decode_values(payload, kstart, kstart + keylen, desc.keys)
        words = struct.unpack_from(f"<{nwords}Q", payload, kend)
        out.append(AggEntry(agg, key, tuple(words)))
        off = kend + 8 * nwords
    return out


def _lq_levels(desc) -> int:
    if desc.func != isa.AggFunc.LQUANTIZE or not desc.lq:
        return 0
    lo, hi, step = desc.lq
    return (hi - lo) // step


# ------------------------------------------------------------------ values

def _s64(w: int) -> int:
    w %= U64
    return w - U64 if w >> 63 else w


def cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero); b == 0 gives 0."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def stddev(words, normal: int = 1) -> int:
    """libdtrace's dt_stddev: isqrt(E[x^2] - E[x]^2), integer steps."""
    count, total = words[0] % U64, _s64(words[1])
    if count == 0:
        return 0
    sumsq = (words[2] % U64) | (words[3] % U64) << 64
    avg_sq = sumsq // max(normal, 1) // count
    avg = abs(cdiv(cdiv(total, normal), count))
    diff = (avg_sq - avg * avg) % (1 << 128)
    return math.isqrt(diff)


def scalar(desc, words, normal: int = 1) -> int:
    """The printed integer value of count/sum/min/max/avg/stddev."""
    f = desc.func
    if f == isa.AggFunc.COUNT:
        return cdiv(_s64(words[0]), normal)
    if f in (isa.AggFunc.SUM, isa.AggFunc.MIN, isa.AggFunc.MAX):
        return cdiv(_s64(words[0]), normal)
    if f == isa.AggFunc.AVG:
        return cdiv(cdiv(_s64(words[1]), normal), _s64(words[0])) if words[0] else 0
    if f == isa.AggFunc.STDDEV:
        return stddev(words, normal)
    raise ValueError(f"aggregation function {f} has no scalar value")


def quantize_value(i: int) -> int:
    """The lower bound of quantize bucket i (DTRACE_QUANTIZE_BUCKETVAL)."""
    zero = isa.QUANTIZE_BUCKETS // 2
    if i < zero:
        return -(1 << (zero - 1 - i))
    if i == zero:
        return 0
    return 1 << (i - zero - 1)


def _dist(desc, words) -> list:
    """(label value, count) per bucket of a quantize/lquantize value."""
    if desc.func == isa.AggFunc.QUANTIZE:
        return [(quantize_value(i), _s64(w)) for i, w in enumerate(words)]
    lo, _, step = desc.lq
    levels = len(words) - 2
    return ([(lo - 1, _s64(words[0]))]
            + [(lo + i * step, _s64(words[i + 1])) for i in range(levels)]
            + [(lo + levels * step, _s64(words[-1]))])


def sort_value(desc, words):
    """What entries are ordered by (libdtrace's value comparisons): the
    scalar, or for a distribution its weighted sum, then its zero count."""
    if desc.func in (isa.AggFunc.QUANTIZE, isa.AggFunc.LQUANTIZE):
        d = _dist(desc, words)
        zero = sum(c for v, c in d if v == 0)
        return (sum(v * c for v, c in d), zero)
    if desc.func == isa.AggFunc.AVG:
        return (Fraction(_s64(words[1]), words[0]) if words[0] else 0, 0)
    return (scalar(desc, words), 0)


def _key_order(key: tuple) -> tuple:
    return tuple((2, 0, k) if isinstance(k, stacks.Stack) else
                 (0, k, ()) if isinstance(k, int) else (1, 0, (str(k),)) for k in key)


def sort_entries(desc, entries) -> list:
    """Entries of one aggregation in dtrace's order: value ascending, ties by key."""
    return sorted(entries, key=lambda e: (sort_value(desc, e.words), _key_order(e.key)))


def trunc_keep(desc, entries, n: int) -> list:
    """trunc(@, n): the entries kept — the n largest (n < 0: the -n smallest)."""
    ordered = sort_entries(desc, entries)
    if n >= 0:
        return ordered[len(ordered) - n:] if n else []
    return ordered[:-n]


# ------------------------------------------------------------------ printing

def key_text(vt, value, symbolize=None) -> str:
    """One key as dtrace prints it in an aggregation (and as trace() does
    outside quiet mode)."""
    if getattr(vt, "ctype", "") in SYM_CTYPES and isinstance(value, int):
        return "  %-50s" % symbol_text(value, symbolize, offset=False)
    if isinstance(value, stacks.Stack):
        return stacks.stack_text(value, symbolize)
    if isinstance(value, str):
        return "  %-50s" % value
    width = _KEY_WIDTH.get(getattr(vt, "size", 8), 16)
    return " %*d" % (width, value)


def dist_table(desc, words, normal: int = 1) -> str:
    """The quantize/lquantize table, starting with its blank line."""
    d = _dist(desc, words)
    last_i = len(d) - 1
    nz = [i for i, (_, c) in enumerate(d) if c != 0]
    if not nz:
        if desc.func == isa.AggFunc.QUANTIZE:
            first, last = isa.QUANTIZE_BUCKETS // 2 - 1, isa.QUANTIZE_BUCKETS // 2 + 1
        else:
            first, last = 0, min(2, last_i)
    else:
        first, last = max(nz[0] - 1, 0), min(nz[-1] + 1, last_i)
    rows = d[first:last + 1]
    total = sum(abs(c) for _, c in rows)
    pos = any(c > 0 for _, c in rows)
    neg = any(c < 0 for _, c in rows)
    out = [DIST_HEADER]
    for j, (v, c) in enumerate(rows):
        i = first + j
        if desc.func == isa.AggFunc.LQUANTIZE and i == 0:
            label = "%16s " % ("< %d" % desc.lq[0])
        elif desc.func == isa.AggFunc.LQUANTIZE and i == last_i:
            label = "%16s " % (">= %d" % v)
        else:
            label = "%16d " % v
        out.append(label + _quantline(c, normal, total, pos, neg))
    return "".join(out)


def _depth(c: int, total: int, length: int) -> int:
    """Bar length: |c| * length / total rounded half up (dt_print_quantline)."""
    if total == 0:
        return 0
    return math.floor(Fraction(abs(c) * length, total) + Fraction(1, 2))


def _quantline(c: int, normal: int, total: int, pos: bool, neg: bool) -> str:
    shown = "%-9d" % cdiv(c, normal)
    if not neg:
        depth = _depth(c, total, BAR) if pos else 0
        return "|%s%s %s\n" % ("@" * depth, " " * (BAR - depth), shown)
    if not pos:
        depth = _depth(c, total, BAR)
        return "%s%s| %s\n" % (" " * (BAR - depth), "@" * depth, shown)
    half = BAR // 2
    depth = _depth(c, total, half)
    if c <= 0:
        return "%s%s|%s %s\n" % (" " * (half - depth), "@" * depth, " " * half, shown)
    return "%20s|%s%s %s\n" % ("", "@" * depth, " " * (half - depth), shown)


def is_dist(desc) -> bool:
    return desc.func in (isa.AggFunc.QUANTIZE, isa.AggFunc.LQUANTIZE)


def value_text(desc, words, normal: int = 1) -> str:
    """The value part of a default-format entry."""
    if is_dist(desc):
        return dist_table(desc, words, normal)
    return " %16d" % scalar(desc, words, normal)


def format_entry(desc, entry, normal: int = 1, symbolize=None) -> str:
    """One entry in dtrace's default format, with its newline."""
    keys = "".join(key_text(vt, k, symbolize) for vt, k in zip(desc.keys, entry.key))
    return keys + value_text(desc, entry.words, normal) + "\n"


def format_agg(desc, entries, normal: int = 1, symbolize=None) -> str:
    """Every entry of one aggregation, sorted (what printa(@a) prints after
    its blank line)."""
    return "".join(format_entry(desc, e, normal, symbolize)
                   for e in sort_entries(desc, entries))


def format_printa(desc, entries, parsed: list, normal: int = 1, symbolize=None) -> str:
    """printa(FORMAT, @a): the format once per entry, sorted; plain
    conversions take the keys in order, `%@` ones the value."""
    out = []
    for e in sort_entries(desc, entries):
        out.append(_printa_one(desc, e, parsed, normal, symbolize))
    return "".join(out)


def _printa_one(desc, e, parsed, normal, symbolize) -> str:
    keys, k = list(e.key), 0
    out = []
    for piece in parsed:
        if isinstance(piece, str):
            out.append(piece)
            continue
        if piece.agg:
            if is_dist(desc):
                out.append(dist_table(desc, e.words, normal))
            else:
                out.append(format_one(piece, scalar(desc, e.words, normal),
                                      _fixed(piece.width), _fixed(piece.precision)))
            continue
        if k >= len(keys):
            raise FormatError(f"printa format has more conversions than @{desc.name} "
                              f"has keys ({len(keys)})", piece.offset)
        out.append(format_one(piece, keys[k], _fixed(piece.width),
                              _fixed(piece.precision), symbolize))
        k += 1
    return "".join(out)


def _fixed(v):
    return v if isinstance(v, int) else None


def format_end(prog, entries, printed=(), normals=None, symbolize=None) -> str:
    """What a run prints at its end after its blank line: every aggregation
    not in `printed` that has entries, in program order; with several
    aggregations in the program, each introduced by its `@name` line."""
    normals = normals or {}
    several = len(prog.aggs) > 1
    out: list[str] = []
    for desc in prog.aggs:
        if desc.index in printed:
            continue
        mine = [e for e in entries if e.agg == desc.index]
        if not mine:
            continue
        text = format_agg(desc, mine, normals.get(desc.index, 1), symbolize)
        if several:
            if out and not out[-1].endswith("\n\n"):
                out.append("\n")
            text = "@%s\n%s" % (desc.name, text)
        out.append(text)
    return "".join(out)


def entry_json(desc, e, normal: int = 1, symbolize=None) -> dict:
    """One entry as a JSON-able dict: key list (a stack as its frame
    names) and value, or for a distribution its non-zero buckets as
    [lower bound, count] (lquantize: underflow and overflow apart)."""
    d = {"key": [stacks.frame_names(k, symbolize) if isinstance(k, stacks.Stack) else k
                 for k in e.key]}
    if desc.func == isa.AggFunc.QUANTIZE:
        d["buckets"] = [[v, cdiv(c, normal)] for v, c in _dist(desc, e.words) if c]
    elif desc.func == isa.AggFunc.LQUANTIZE:
        inner = _dist(desc, e.words)[1:-1]
        d["buckets"] = [[v, cdiv(c, normal)] for v, c in inner if c]
        d["underflow"] = cdiv(_s64(e.words[0]), normal)
        d["overflow"] = cdiv(_s64(e.words[-1]), normal)
    else:
        d["value"] = scalar(desc, e.words, normal)
    return d


def agg_json(desc, entries, normal: int = 1, symbolize=None) -> dict:
    """One aggregation as a JSON-able dict (entries sorted like the text)."""
    return {"type": "aggregation", "name": desc.name,
            "func": isa.AggFunc(desc.func).name.lower(),
            "entries": [entry_json(desc, e, normal, symbolize)
                        for e in sort_entries(desc, entries)]}
