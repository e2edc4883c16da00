"""Folded stacks, the text format flamegraph.pl, speedscope and inferno read:

    fold(samples) -> str
    parse(text) -> list[(frames, count)]
    merge(samples) -> list[(frames, count)]
    sanitize_frame(name) -> str

A sample is (frames, count): frames is a tuple of frame names ordered root
first (outermost caller first, the sampled pc's function last) and count a
non-negative int.  One folded line is the frames joined by ';', one space
and the count: `main;work;spin 42`.  fold() writes one line per distinct
stack, counts merged, lines sorted (as flamegraph.pl sorts its input),
each ending in a newline; stacks with count 0 are left out.

Frame names are sanitised as the stackcollapse scripts do, because ';'
separates frames and a newline separates lines: ';' becomes ':', CR and LF
become a space, other control characters (which no parser wants, and
XML does not allow) become '?', and an empty name becomes "[unknown]", flamegraph's name for a frame
it cannot symbolize.  Spaces are allowed: the count is the text after the
line's last run of blanks.

parse() is strict: every non-blank line must be `frames count` with a
decimal count and no empty frame; anything else is a ValueError
"line N: why".  It returns the lines in order, not merged (merge() does).
Pure: no I/O.
"""
from __future__ import annotations

import re
from typing import Iterable

UNKNOWN = "[unknown]"

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_COUNT = re.compile(r"[0-9]+")


def sanitize_frame(name: str) -> str:
    """One frame name made safe for a folded line (see the module doc)."""
    name = str(name).replace(";", ":").replace("\r", " ").replace("\n", " ")
    name = _CONTROL.sub("?", name)
    return name if name.strip() else UNKNOWN


def _check(frames, count, where: str) -> tuple:
    """The sample's frames as a tuple of str; ValueError when it is unusable."""
    if isinstance(frames, str):
        raise ValueError(f"{where}: frames must be a sequence of names, "
                         f"not the string {frames!r}")
    frames = tuple(frames)
    if not frames:
        raise ValueError(f"{where}: empty stack (a sample needs at least one frame)")
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(f"{where}: count {count!r} is not an integer")
    if count < 0:
        raise ValueError(f"{where}: negative count {count}")
    return frames


def merge(samples: Iterable) -> list:
    """Samples with sanitised names, identical stacks' counts summed, zero
    counts dropped, sorted by folded line.  ValueError on an empty stack or
    a count that is not a non-negative int."""
    totals: dict = {}
    for i, (frames, count) in enumerate(samples):
        frames = _check(frames, count, f"sample {i}")
        key = tuple(sanitize_frame(f) for f in frames)
        totals[key] = totals.get(key, 0) + count
    rows = [(k, v) for k, v in totals.items() if v > 0]
    rows.sort(key=lambda r: ";".join(r[0]))
    return rows


def fold(samples: Iterable) -> str:
    """The folded text for samples: one sorted `f1;f2;f3 count` line per
    distinct stack (see merge())."""
    return "".join(f"{';'.join(frames)} {count}\n"
                   for frames, count in merge(samples))


def _parse_line(line: str, lineno: int) -> tuple:
    """(frames, count) for one non-blank folded line; ValueError naming it."""
    parts = line.rsplit(None, 1)
    if len(parts) != 2:
        raise ValueError(f"line {lineno}: expected 'frame;frame;... count', "
                         f"got {line.strip()!r} (no count)")
    stack, count = parts
    if not _COUNT.fullmatch(count):
        raise ValueError(f"line {lineno}: count {count!r} is not a "
                         "non-negative decimal integer")
    frames = tuple(stack.strip().split(";"))
    for j, f in enumerate(frames):
        if not f:
            raise ValueError(f"line {lineno}: frame {j + 1} is empty "
                             "(';;', or ';' at an end of the stack)")
    return frames, int(count)


def parse(text: str) -> list:
    """The samples of a folded text, in line order (not merged).  Blank
    lines are skipped; any other bad line is a ValueError "line N: why"."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if line.strip():
            out.append(_parse_line(line, lineno))
    return out
