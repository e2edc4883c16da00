"""Render docs/bytecode.md from `probes.isa` so the reference never drifts.

`python3 -m probes.isadoc docs/bytecode.md` rewrites it (`make docs`);
tests/test_isa.py fails when the committed file differs from render().
The per-member meanings are the `# comments` beside each enum member in
isa.py, read from its source text, so the table and the code are one text.
"""
from __future__ import annotations

import inspect
import re
import sys

from . import isa as I


def member_comments(module=I) -> dict:
    """{(ClassName, MEMBER): comment} for `NAME = value  # comment` lines
    inside class bodies of `module`'s source."""
    src = inspect.getsource(module)
    out, cls = {}, None
    for line in src.splitlines():
        m = re.match(r"class (\w+)\(", line)
        if m:
            cls = m.group(1)
            continue
        if line and not line[0].isspace():
            cls = None
        m = re.match(r"\s+([A-Z_][A-Z0-9_]*)\s*=\s*[^#]+#\s*(.*)$", line)
        if cls and m:
            out[(cls, m.group(1))] = m.group(2).strip()
    return out


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def _enum_table(enum, docs, head=("name", "value", "meaning")) -> list:
    rows = [f"| {head[0]} | {head[1]} | {head[2]} |", "| --- | --- | --- |"]
    for m in enum:
        rows.append(f"| `{m.name}` | {int(m):#04x} | {_cell(docs.get((enum.__name__, m.name), ''))} |")
    return rows


def _layout(lay) -> list:
    rows = [f"### `{lay.name}` ({lay.size} bytes)", "", lay.doc, "",
            "| offset | field | type | meaning |", "| --- | --- | --- | --- |"]
    offs = lay.offsets()
    rows += [f"| {offs[f]} | `{f}` | {t} | {_cell(c)} |" for f, t, c in lay.fields]
    return rows + [""]


def render() -> str:
    """The whole document (pure apart from reading isa.py's own source)."""
    docs = member_comments()
    out = ["# The probe VM bytecode", "",
           "GENERATED from `probes/isa.py` by `make docs`; do not edit by hand.", "",
           "The D compiler (`probes/`) emits this bytecode; the kernel verifies a",
           "program once when it is loaded (`kernel/probe/verify.c`) and runs its",
           "clauses at probe sites (`kernel/probe/vm.c`).", "",
           "## Machine model", "", inspect.getdoc(I).split("Machine model\n-------------\n", 1)[-1],
           "", "## Instructions", "",
           "Each instruction is 8 bytes: `op u8 | rd u8 | ra u8 | rb u8 | imm i32`.", ""]
    out += _enum_table(I.Op, docs, ("opcode", "value", "semantics"))
    out += ["", "## Builtin variables (LDB)", ""] + _enum_table(I.Builtin, docs)
    out += ["", "## Helpers (CALL)", "", "| helper | id | args | meaning |",
            "| --- | --- | --- | --- |"]
    out += [f"| `{h.name}` | {int(h)} | {I.HELPERS[h].nargs} | {_cell(I.HELPERS[h].doc)} |"
            for h in I.Helper]
    out += ["", "## Faults (ERROR's arg4)", ""] + _enum_table(I.Fault, docs)
    out += ["", "## Variable scopes", ""] + _enum_table(I.Scope, docs)
    out += ["", "## Aggregating functions", "",
            "Value layout in u64 words, as the kernel keeps it and AGG_READ returns it.", ""]
    out += _enum_table(I.AggFunc, docs, ("function", "value", "words"))
    out += ["", "## Synthetic probes", "",
            f"Static probes from the kernel's probe table are numbered from "
            f"{I.FIRST_STATIC_PROBE}.", ""] + _enum_table(I.SynthProbe, docs)
    out += ["", "## Limits", "", "| limit | value |", "| --- | --- |"]
    out += [f"| `{k}` | {v} |" for k, v in I.CONSTANTS.items()]
    out += ["", "## Layouts", "",
            "A program container is `prog_hdr`, then `nclauses` × `prog_clause`,",
            "`nvars` × `prog_var`, `naggs` × `prog_agg`, the code (`ninsns` × 8",
            "bytes) and the string table, with no padding.", ""]
    for lay in I.LAYOUTS:
        out += _layout(lay)
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if not argv:
        sys.stdout.write(text)
        return 0
    with open(argv[0], "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
