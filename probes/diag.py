"""Compiler diagnostics: one error (or warning) with a position, rendered the
way mature compilers do:

    script.d:3:12: error: unknown variable 'foo'
        printf("%d\\n", foo);
                       ^~~
    hint: did you mean 'fd'?

The file is the script's path, or `-e` for -e/-n programs (whatever the
Pos carries).  The source line is indented four spaces; the underline
starts under the span's first column with `^` and continues with `~` for
the rest of the span (clipped to the line); tabs in the source line are
kept in the underline's padding so it stays aligned however the terminal
expands them.  A diagnostic without a position renders as its message
line and hints only.

Every pass collects all its errors and raises them together as one
CompileError.  Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Diagnostic:
    """One message at a place of the script (pos may be None: no place)."""
    pos: object                     # probes.program.Pos or None
    message: str
    hints: list = field(default_factory=list)
    severity: str = "error"         # "error", "warning" or "note"


def sort_key(d: Diagnostic) -> tuple:
    """Source order (diagnostics without a place first)."""
    p = d.pos
    return (0, 0, 0) if p is None else (1, p.line, p.col)


def _caret_line(line: str, col: int, length: int) -> str:
    """Padding (tabs kept) up to 1-based col, then ^~~ for length columns."""
    start = max(col - 1, 0)
    pad = "".join("\t" if ch == "\t" else " " for ch in line[:start])
    if start > len(line):
        pad += " " * (start - len(line))
    avail = max(len(line) - start, 1)
    n = max(1, min(length, avail))
    return pad + "^" + "~" * (n - 1)


def render_one(d: Diagnostic, lines: list) -> str:
    """One diagnostic as text (no trailing newline)."""
    p = d.pos
    if p is None:
        out = [f"{d.severity}: {d.message}"]
    else:
        out = [f"{p.file}:{p.line}:{p.col}: {d.severity}: {d.message}"]
        if 1 <= p.line <= len(lines):
            line = lines[p.line - 1]
            out.append("    " + line)
            out.append("    " + _caret_line(line, p.col, p.length))
    out += [f"hint: {h}" for h in d.hints if h]
    return "\n".join(out)


MAX_SHOWN = 30                  # diagnostics rendered; the rest are counted


def render(diags: list, source: str) -> str:
    """The diagnostics (at most MAX_SHOWN, then a count of the rest), each
    followed by a newline."""
    lines = source.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    out = "".join(render_one(d, lines) + "\n" for d in diags[:MAX_SHOWN])
    if len(diags) > MAX_SHOWN:
        out += f"({len(diags) - MAX_SHOWN} more errors not shown)\n"
    return out


class CompileError(Exception):
    """Raised by a compiler pass with every diagnostic it found; str() is
    the full rendered text."""

    def __init__(self, diagnostics: list, source: str = ""):
        self.diagnostics = list(diagnostics)
        self.source = source
        super().__init__(self.text())

    def text(self) -> str:
        return render(self.diagnostics, self.source)

    def __str__(self) -> str:
        return self.text()

    @property
    def errors(self) -> list:
        return [d for d in self.diagnostics if d.severity == "error"]
