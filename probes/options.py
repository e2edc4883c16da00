"""Script options: `#pragma D option NAME[=VALUE]` and the CLI's -x NAME=VALUE.

    option     default   meaning
    bufsize    256k      bytes of the session's record buffer in the kernel
    aggsize    256k      bytes of the session's aggregation tables
    dynvarsize 256k      bytes for associative arrays and self-> variables
    strsize    256       bytes of a string value, NUL included (<= 1024)
    quiet      off       print only what printf/trace/printa print (-q)
    switchrate 10hz      how often the host drains the buffer; a rate
                         (Nhz) or a period (ns/us/ms/s/sec); stored in Hz

Sizes take DTrace's suffixes k, m, g (powers of 1024); bufsize, aggsize
and dynvarsize go from 4k to 8m (the kernel's PROBE_ARENA_MIN/MAX).  `parse_option`
returns the value in its stored form or raises OptionError with a message
and a hint; compiler.py turns that into a diagnostic at the pragma.
Pure: no I/O.
"""
from __future__ import annotations

import re

from probes import isa

DEFAULTS = {"bufsize": 256 * 1024, "aggsize": 256 * 1024, "dynvarsize": 256 * 1024,
            "strsize": 256, "quiet": False, "switchrate": 10}
ARENA_MIN, ARENA_MAX = 4096, 8 << 20     # kernel/include/tunables.h PROBE_ARENA_MIN/MAX
_SIZES = ("bufsize", "aggsize", "dynvarsize", "strsize")
_UNITS_NS = {"ns": 1, "nsec": 1, "us": 1000, "usec": 1000, "ms": 10**6, "msec": 10**6,
             "s": 10**9, "sec": 10**9}


class OptionError(Exception):
    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


def parse_size(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text.strip())
    if not m:
        return None
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * mult


def parse_rate_hz(text: str) -> int | None:
    """A rate in Hz from 'Nhz' / 'N' (Hz) or a period 'Nms' etc."""
    m = re.fullmatch(r"(\d+)([a-z]*)", text.strip().lower())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    if unit in ("", "hz"):
        return n if n > 0 else None
    if unit in _UNITS_NS and n > 0:
        return max(1, round(10**9 / (n * _UNITS_NS[unit])))
    return None


def parse_option(name: str, value: str | None):
    """The stored value of option name=value (value None: a bare pragma)."""
    if name not in DEFAULTS:
        raise OptionError(f"unknown option '{name}'",
                          "valid options: " + ", ".join(sorted(DEFAULTS)))
    if name == "quiet":
        if value is None or value.lower() in ("", "1", "yes", "true", "on"):
            return True
        if value.lower() in ("0", "no", "false", "off"):
            return False
        raise OptionError(f"option quiet takes no value or on/off, not '{value}'")
    if value is None or value == "":
        raise OptionError(f"option {name} needs a value",
                          f"write {name}=VALUE (default {format_default(name)})")
    if name == "switchrate":
        hz = parse_rate_hz(value)
        if hz is None:
            raise OptionError(f"bad rate '{value}' for option switchrate",
                              "write a rate like 10hz or a period like 100ms")
        return hz
    n = parse_size(value)
    if n is None or n <= 0:
        raise OptionError(f"bad size '{value}' for option {name}",
                          "write bytes with an optional k, m or g suffix, e.g. 512k")
    if name != "strsize" and not ARENA_MIN <= n <= ARENA_MAX:
        raise OptionError(f"{name} {value} is out of range",
                          f"the kernel takes {ARENA_MIN // 1024}k to {ARENA_MAX >> 20}m "
                          "(PROBE_ARENA_MIN/MAX in kernel/include/tunables.h)")
    if name == "strsize" and not 2 <= n <= isa.MAX_STRSIZE:
        raise OptionError(f"strsize {n} is out of range",
                          f"strsize must be between 2 and {isa.MAX_STRSIZE}")
    return n


def format_default(name: str) -> str:
    v = DEFAULTS[name]
    if name == "switchrate":
        return f"{v}hz"
    if isinstance(v, bool):
        return "on" if v else "off"
    return f"{v // 1024}k" if v >= 1024 and v % 1024 == 0 else str(v)
