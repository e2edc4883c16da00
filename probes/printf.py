"""DTrace's printf formats: parsing (for the compiler's type checks) and
applying them to recorded values (for the consumer).

A format is parsed once into literal text pieces and `Conv` conversions:

    %[flags][width][.precision][length]conversion

flags `-+ #0'` (and `@` in printa formats: the conversion takes the
aggregation's value instead of a key), width and precision numbers or `*`
(which consumes an int argument before the value), length modifiers
hh h l ll L z j t (accepted and ignored: every D integer is printed from its
64-bit value), conversions d i u o x X c s p a A e E f F g G Y and %%.

Where DTrace and C's printf agree we use Python's `%` operator; where
DTrace differs we do what DTrace does: `%a` prints `symbol+0x1a`, `%Y` a
wall-clock date `2026 Nov 29 12:34:56` (UTC: the unikernel has no time
zone), `%p` 0x-prefixed hex, `%e/%f/%g` print the integer as a double,
`%u/%o/%x` print a negative value as its 64-bit two's complement, and the
`'` flag groups nothing (DTrace's consumer runs in the C locale).

Pure: no I/O.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from probes import stacks

FLAGS = "-+ #0'"
LENGTHS = ("hh", "ll", "h", "l", "L", "z", "j", "t")
KINDS = {
    "d": "int", "i": "int", "u": "int", "o": "int", "x": "int", "X": "int",
    "c": "int", "p": "int",
    "s": "string",
    "a": "sym", "A": "sym",
    "e": "float", "E": "float", "f": "float", "F": "float", "g": "float", "G": "float",
    "Y": "time",
    "k": "stack",
}
U64 = 1 << 64
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FormatError(Exception):
    """A bad format string, or values that do not fit it.  `offset` is the
    0-based index in the format of the offending conversion's '%'."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Conv:
    """One conversion of a format."""
    conv: str                   # the conversion letter
    flags: str = ""             # of FLAGS, in the order written
    width: int | str | None = None       # a number, "*" or None
    precision: int | str | None = None   # a number, "*" or None
    length: str = ""            # length modifier as written (ignored)
    agg: bool = False           # `%@...`: printa's aggregation value
    offset: int = 0             # index of the '%' in the format
    text: str = ""              # the conversion as written, e.g. "%-8.3s"

    @property
    def arg_kind(self) -> str:
        """What the value must be: int, string, float (an int printed as a
        double), sym (an address, printed as symbol+offset), time (ns
        since the epoch) or stack (printa's %k: a stack() key)."""
        return KINDS[self.conv]

    @property
    def nargs(self) -> int:
        """Arguments consumed: the value plus one per `*`."""
        return 1 + (self.width == "*") + (self.precision == "*")


# ------------------------------------------------------------------ parsing

def parse_format(fmt: str, *, printa: bool = False) -> list:
    """Literal strings and Conv objects, in order.  `%%` becomes part of the
    literal text.  `printa=True` allows the `@` flag.  Raises FormatError."""
    out: list = []
    lit: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch != "%":
            lit.append(ch)
            i += 1
            continue
        if i + 1 < n and fmt[i + 1] == "%":
            lit.append("%")
            i += 2
            continue
        conv, i = _parse_conv(fmt, i, printa)
        if lit:
            out.append("".join(lit))
            lit = []
        out.append(conv)
    if lit:
        out.append("".join(lit))
    return out


def _parse_conv(fmt: str, start: int, printa: bool) -> tuple:
    """The conversion starting at fmt[start] == '%': (Conv, next index)."""
    i, n = start + 1, len(fmt)
    agg = False
    flags = []
    while i < n and (fmt[i] in FLAGS or fmt[i] == "@"):
        if fmt[i] == "@":
            if not printa:
                raise FormatError("'%@' is only valid in printa() formats", start)
            agg = True
        elif fmt[i] not in flags:
            flags.append(fmt[i])
        i += 1
    width, i = _parse_num(fmt, i)
    precision = None
    if i < n and fmt[i] == ".":
        precision, i = _parse_num(fmt, i + 1)
        if precision is None:
            precision = 0
    length = ""
    for lm in LENGTHS:
        if fmt.startswith(lm, i):
            length = lm
            i += len(lm)
            break
    if i >= n:
        raise FormatError("format ends in the middle of a conversion", start)
    c = fmt[i]
    if c not in KINDS:
        shown = fmt[start:i + 1]
        raise FormatError(f"unknown conversion '{shown}'", start)
    conv = Conv(c, "".join(flags), width, precision, length, agg, start, fmt[start:i + 1])
    if c == "k" and not printa:
        raise FormatError("'%k' (a stack) is only valid in printa() formats", start)
    if agg and (width == "*" or precision == "*"):
        raise FormatError("'*' is not allowed in a '%@' conversion", start)
    return conv, i + 1


def _parse_num(fmt: str, i: int) -> tuple:
    """A width or precision at fmt[i]: a decimal number, '*' or nothing."""
    if i < len(fmt) and fmt[i] == "*":
        return "*", i + 1
    j = i
    while j < len(fmt) and fmt[j].isdigit():
        j += 1
    if j == i:
        return None, i
    v = int(fmt[i:j])
    if v > 10000:
        raise FormatError(f"width or precision {v} is too large", i)
    return v, j


def conversions(parsed: list) -> list:
    """The Conv objects of a parsed format."""
    return [p for p in parsed if isinstance(p, Conv)]


def nargs(parsed: list) -> int:
    """Arguments a parsed format consumes (`%@` ones excluded)."""
    return sum(c.nargs for c in conversions(parsed) if not c.agg)


# ------------------------------------------------------------------ printing

def format_values(parsed: list, values, symbolize=None, aggval=None, sizes=None) -> str:
    """Apply a parsed format to `values` (ints, and bytes or str for
    strings), consuming one per conversion plus one per `*`.  `symbolize`
    maps an address to (name, offset) or None (for %a).  `aggval` is the
    value a `%@` conversion prints (printa).  `sizes` (optional) gives each
    value's size in bytes: %u %o %x %X print a smaller value as C does its
    unsigned type (an int -1 is 4294967295).  Raises FormatError when the
    values run out."""
    vals = list(values)
    pos = 0
    out: list[str] = []
    for piece in parsed:
        if isinstance(piece, str):
            out.append(piece)
            continue
        width, precision = piece.width, piece.precision
        if width == "*":
            width, pos = _take_int(piece, vals, pos)
        if precision == "*":
            precision, pos = _take_int(piece, vals, pos)
        if piece.agg:
            value = aggval
        else:
            if pos >= len(vals):
                raise FormatError(f"too few arguments for '{piece.text}'", piece.offset)
            value = vals[pos]
            size = sizes[pos] if sizes is not None and pos < len(sizes) else 8
            if piece.conv in "uoxX" and isinstance(value, int) and 0 < size < 8:
                value %= 1 << (8 * size)
            pos += 1
        out.append(format_one(piece, value, width, precision, symbolize))
    return "".join(out)


def _take_int(conv: Conv, vals: list, pos: int) -> tuple:
    if pos >= len(vals):
        raise FormatError(f"too few arguments for '*' in '{conv.text}'", conv.offset)
    v = vals[pos]
    if not isinstance(v, int):
        raise FormatError(f"'*' in '{conv.text}' needs an integer argument", conv.offset)
    return v, pos + 1


def format_one(conv: Conv, value, width=None, precision=None, symbolize=None) -> str:
    """One conversion of one value, with an explicit width and precision
    (the `*` ones already resolved)."""
    flags = conv.flags.replace("'", "")
    if isinstance(width, int) and width < 0:       # C: a negative * width is '-'
        flags, width = flags + "-", -width
    if isinstance(precision, int) and precision < 0:
        precision = None
    c = conv.conv
    if c == "k" or isinstance(value, stacks.Stack):
        if not isinstance(value, stacks.Stack):
            raise FormatError(f"{conv.text} wants a stack() key, not {value!r}", conv.offset)
        return stacks.stack_text(value, symbolize)
    if c == "s":
        if isinstance(value, int):      # sym()/func() values: the symbol's name
            value = symbol_text(value, symbolize, offset=False)
        return _pad(_text(value), flags, width, precision)
    if c == "a" or c == "A":
        return _pad(symbol_text(_int(value), symbolize, offset=True), flags, width, None)
    if c == "Y":
        return _pad(date_text(_int(value)), flags, width, precision)
    if c == "c":
        return _pad(chr(_int(value) & 0xFF), flags, width, None)
    if c == "p":
        return _pad("0x%x" % (_int(value) % U64), flags, width, None)
    v = _int(value)
    if c in "eEfFgG":
        return _printf(flags, width, precision, c, float(v))
    if c in "uoxX":
        v %= U64
        c = "d" if c == "u" else c
    elif c == "i":
        c = "d"
    return _printf(flags, width, precision, c, v)


def _printf(flags: str, width, precision, c: str, v) -> str:
    if c == "o" and "#" in flags:           # C's %#o is "017", Python's "0o17"
        digits = ("%" + ("" if precision is None else "." + str(precision)) + "o") % v
        digits = digits if digits.startswith("0") else "0" + digits
        fill = "0" if "0" in flags and "-" not in flags and precision is None else " "
        w = width or 0
        return digits.ljust(w) if "-" in flags else digits.rjust(w, fill)
    spec = "%" + flags
    if width is not None:
        spec += str(width)
    if precision is not None:
        spec += "." + str(precision)
    return (spec + c) % v


def _pad(s: str, flags: str, width, precision) -> str:
    if precision is not None:
        s = s[:precision]
    if width is not None and len(s) < width:
        s = s.ljust(width) if "-" in flags else s.rjust(width)
    return s


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


def _int(value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, bytes):
        return int.from_bytes(value[:8].ljust(8, b"\0"), "little")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def symbol_text(addr: int, symbolize=None, offset: bool = True) -> str:
    """`name+0x1a` (or `name` at offset 0) for a kernel address, or its hex
    when no symbol covers it.  Used for %a, sym() and func()."""
    addr %= U64
    hit = None
    if symbolize is not None:
        try:
            hit = symbolize(addr)
        except Exception:           # a broken symbol table never stops output
            hit = None
    if not hit:
        return "0x%x" % addr
    name, off = hit
    if offset and off:
        return "%s+0x%x" % (name, off)
    return name


def date_text(ns: int) -> str:
    """DTrace's %Y: `2026 Nov 29 12:34:56` (strftime "%Y %b %e %T", UTC)."""
    secs = (ns % U64) // 1_000_000_000
    try:
        t = time.gmtime(secs)
    except (OverflowError, OSError, ValueError):
        return str(ns)
    return "%d %s %2d %02d:%02d:%02d" % (t.tm_year, _MONTHS[t.tm_mon - 1], t.tm_mday,
                                         t.tm_hour, t.tm_min, t.tm_sec)
