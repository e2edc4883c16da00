"""Script options: `#pragma D option NAME[=VALUE]` and the CLI's -x NAME=VALUE.

    option     default   meaning
    bufsize    256k      bytes of the session's record buffer in the kernel
    aggsize    256k      bytes of the session's aggregation tables
    dynvarsize 256k      bytes for associative arrays and self-> variables
    strsize    256       bytes of a string value, NUL included (<= 1024)
    quiet      off       print only what printf/trace/printa print (-q)
    switchrate 10hz      how often the host drains the buffer; a rate
                         (Nhz) or a period (ns/us/ms/s/sec); stored in Hz
    deadman    10s       abort the session when the host has not drained it
                         for this long (off: never); stored in ms
    cpubudget  50        abort the session when its probes take more than
                         this percent of the CPU over cpuwindow (off: never)
    cpuwindow  1s        the window cpubudget is measured over; stored in ms

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
# the deadman (kernel/probe/deadman.c); 0 is off
DEFAULTS.update({"deadman": 10_000, "cpubudget": 50, "cpuwindow": 1000})
DEADMAN_MIN_MS, DEADMAN_MAX_MS = 100, 3_600_000  # tunables.h DEADMAN_MIN_MS/MAX_MS
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
    if name in _DEADMAN:
        return _DEADMAN[name](name, value)
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


def parse_ms(text: str) -> int | None:
    """A duration ('10s', '500ms'; a bare number is ms, the stored form) in ms."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", text.strip().lower())
    if not m or (m.group(2) and m.group(2) not in _UNITS_NS):
        return None
    return round(float(m.group(1)) * _UNITS_NS.get(m.group(2) or "ms") / 10**6)


def _off(value: str) -> bool:
    return value.strip().lower() in ("off", "0", "no", "false")


def _deadman_ms(name: str, value: str) -> int:
    """deadman / cpuwindow: a duration in the kernel's range (deadman: off)."""
    if name == "deadman" and _off(value):
        return 0
    ms = parse_ms(value)
    if ms is None or not DEADMAN_MIN_MS <= ms <= DEADMAN_MAX_MS:
        return _bad(name, value, f"write a duration from {DEADMAN_MIN_MS}ms to "
                    f"{DEADMAN_MAX_MS // 3_600_000}h, e.g. 10s or 500ms"
                    + (", or off" if name == "deadman" else ""))
    return ms


def _cpubudget(name: str, value: str) -> int:
    """cpubudget: a percentage 1..100 ('50' or '50%'); off (or 100): never."""
    v = value.strip().rstrip("%")
    if _off(v):
        return 0
    if not v.isdigit() or not 1 <= int(v) <= 100:
        return _bad(name, value, "write a percentage from 1 to 100, e.g. 50, or off")
    return 0 if int(v) == 100 else int(v)


def _bad(name: str, value: str, hint: str):
    raise OptionError(f"bad value '{value}' for option {name}", hint)


_DEADMAN = {"deadman": _deadman_ms, "cpuwindow": _deadman_ms, "cpubudget": _cpubudget}


def format_default(name: str) -> str:
    v = DEFAULTS[name]
    if name in ("deadman", "cpuwindow"):
        return f"{v // 1000}s" if v % 1000 == 0 else f"{v}ms"
    if name == "switchrate":
        return f"{v}hz"
    if isinstance(v, bool):
        return "on" if v else "off"
    return f"{v // 1024}k" if v >= 1024 and v % 1024 == 0 else str(v)
