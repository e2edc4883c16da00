"""Probe descriptions -> probes: what a clause is enabled on.

A description is `provider:module:function:name` with globs (`*`, `?`,
`[...]`) in any field; with fewer than four fields the ones given are the
rightmost (`BEGIN` is a name, `sched:::switch` spells every field) and
the missing or empty fields match anything, as in DTrace.

`tick-N[unit]` (alone or as `profile:::tick-N[unit]`) is the kernel's
timer provider: it is not in the probe table but parsed here into an
enabling of isa.SynthProbe.TICK whose arg is the period in ns.  Units: ns
nsec us usec ms msec s sec, or hz; no unit means hz, as in DTrace.
`profile-N[unit]` likewise is isa.SynthProbe.PROFILE, the sampling timer
(the local APIC timer; arg0 the interrupted pc, stack() the interrupted
stack), at most one per MIN_PROFILE_NS.

    match(desc, probes) -> list of (Probe, arg)      # [] when nothing matches
    closest(desc, probes) -> up to 3 full probe names for a hint
    tick_period(desc) -> ns, None if desc is not a tick, or ValueError
    timer_probe(desc) -> (SynthProbe.TICK or .PROFILE, ns), None, or ValueError

Pure: no I/O.
"""
from __future__ import annotations

import difflib
import re
from fnmatch import fnmatchcase

from probes import isa
from probes.program import Probe

try:                                    # the front end's glob (same semantics)
    from probes.glob import glob_match as _glob
except ImportError:                     # pragma: no cover - until it exists
    _glob = None

_UNIT_NS = {"ns": 1, "nsec": 1, "us": 1000, "usec": 1000, "ms": 10**6, "msec": 10**6,
            "s": 10**9, "sec": 10**9}
_TICK = re.compile(r"(tick|profile)-(\d+)([a-z]*)")
MIN_TICK_NS = 1000                      # kernel/probe/session.c refuses faster ticks
MIN_PROFILE_NS = 50000                  # ... and faster profiles (PROFILE_MIN_NS, tunables.h)
MAX_TICK_NS = (1 << 63) - 1
TICK_PROBE = Probe(int(isa.SynthProbe.TICK), "profile", "", "", "tick")
PROFILE_PROBE = Probe(int(isa.SynthProbe.PROFILE), "profile", "", "", "profile")


def fields(desc: str) -> list:
    """The four fields of a description, missing ones ''."""
    parts = desc.split(":")
    return [""] * (4 - len(parts)) + parts if len(parts) <= 4 else parts


def glob_match(pattern: str, text: str) -> bool:
    if _glob is not None:
        return _glob(pattern, text)
    return fnmatchcase(text, pattern)


def tick_period(desc: str) -> int | None:
    """The period in ns of a tick-N description; None if it is not one;
    ValueError (message for the user) for a tick with a bad rate."""
    t = timer_probe(desc)
    return t[1] if t and t[0] == isa.SynthProbe.TICK else None


def timer_probe(desc: str):
    """(SynthProbe.TICK or SynthProbe.PROFILE, period in ns) of a tick-N or
    profile-N description; None if it is neither; ValueError (message for
    the user) for a bad rate."""
    f = fields(desc)
    if len(f) != 4 or f[0] not in ("", "profile") or f[1] or f[2]:
        return None
    m = _TICK.fullmatch(f[3])
    if not m:
        if f[0] == "profile" and f[3].startswith(("tick", "profile")):
            raise ValueError(f"bad timer probe '{f[3]}'")
        return None
    kind, n, unit = m.group(1), int(m.group(2)), m.group(3)
    if n <= 0:
        raise ValueError(f"timer rate must be positive in '{f[3]}'")
    if unit in ("", "hz"):
        period = 10**9 // n
    elif unit not in _UNIT_NS:
        raise ValueError(f"unknown time unit '{unit}' in '{f[3]}'")
    else:
        period = n * _UNIT_NS[unit]
    least = MIN_TICK_NS if kind == "tick" else MIN_PROFILE_NS
    if period < least:
        raise ValueError(f"timer '{f[3]}' is faster than the kernel's limit of one "
                         f"per {least // 1000} us")
    if period > MAX_TICK_NS:
        raise ValueError(f"timer period '{f[3]}' is too long (over 292 years)")
    return (isa.SynthProbe.TICK if kind == "tick" else isa.SynthProbe.PROFILE), period


def match(desc: str, probes: list) -> list:
    """(Probe, enabling arg) for every probe desc names."""
    timer = timer_probe(desc)
    if timer is not None:           # named as written (tick-500ms), as dtrace lists it
        return [(Probe(int(timer[0]), "profile", "", "", fields(desc)[3]), timer[1])]
    f = fields(desc)
    if len(f) != 4:
        return []
    out = []
    for p in probes:
        if all(pat == "" or glob_match(pat, val) for pat, val in
               zip(f, (p.provider, p.module, p.function, p.name))):
            out.append((p, 0))
    return out


def closest(desc: str, probes: list, n: int = 3) -> list:
    """Full names of the probes most like desc (for 'did you mean')."""
    f = fields(desc)
    scored = []
    for p in probes:
        r = difflib.SequenceMatcher(None, desc, p.fullname).ratio()
        given = [(g, v) for g, v in zip(f, (p.provider, p.module, p.function, p.name)) if g]
        if len(f) == 4 and given:
            r = max(r, sum(difflib.SequenceMatcher(None, g, v).ratio()
                           for g, v in given) / len(given))
        scored.append((r, p.fullname))
    scored.sort(key=lambda x: -x[0])
    best = scored[0][0] if scored else 0
    return [name for r, name in scored[:n] if r >= max(0.5, best - 0.15)]
