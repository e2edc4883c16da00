"""Shell-style globs for probe description fields, as DTrace's gmatch(3GEN):

    glob_match(pattern, text) -> bool
    is_glob(pattern) -> bool

`*` matches any string (also empty), `?` one character, `[abc]`, `[a-z]`
one character of a set (`[!...]` or `[^...]` negates; a `]` right after
the `[` or `[!` is literal), `\\c` the character c.  The whole text must
match.  An unterminated `[` matches a literal '['.  The empty pattern only
matches the empty text: the "empty field matches anything" rule of probe
descriptions is the matcher's (probes/probematch.py), not the glob's.
Pure: no I/O.
"""
from __future__ import annotations

import re
from functools import lru_cache


def is_glob(pattern: str) -> bool:
    """Whether pattern has any glob metacharacter (else it is a literal name)."""
    return any(c in pattern for c in "*?[\\")


def _bracket(p: str, i: int) -> tuple:
    """Regex for the class starting at p[i] == '[' and the index after it,
    or (None, i) when the '[' is not closed."""
    j = i + 1
    neg = j < len(p) and p[j] in "!^"
    if neg:
        j += 1
    items = []
    first = True
    while j < len(p) and (p[j] != "]" or first):
        first = False
        c = p[j]
        if c == "\\" and j + 1 < len(p):
            j += 1
            c = p[j]
        if j + 2 < len(p) and p[j + 1] == "-" and p[j + 2] != "]":
            hi = p[j + 2]
            if hi == "\\" and j + 3 < len(p):
                hi, j = p[j + 3], j + 1
            items.append(re.escape(c) + "-" + re.escape(hi) if c <= hi else "")
            j += 3
            continue
        items.append(re.escape(c))
        j += 1
    if j >= len(p):
        return None, i
    body = "".join(items)
    if not body:
        return ("[^\\s\\S]" if not neg else "[\\s\\S]"), j + 1
    return ("[^" if neg else "[") + body + "]", j + 1


@lru_cache(maxsize=512)
def _compile(pattern: str):
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            rx, nxt = _bracket(pattern, i)
            if rx is not None:
                out.append(rx)
                i = nxt
                continue
            out.append(re.escape("["))
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(pattern: str, text: str) -> bool:
    """Does the whole of text match the glob pattern?"""
    if not is_glob(pattern):
        return pattern == text
    return _compile(pattern).fullmatch(text) is not None
