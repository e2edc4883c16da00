"""Address -> (source file, line) from a kernel ELF's DWARF line programs.

Used by TypeDB.source_line (introspect/dwarf.py) for backtraces and the
ERROR provider.  A compile unit's line program is decoded the first time
an address inside it is asked about (.debug_aranges says which unit).
"""
from __future__ import annotations

import os
from bisect import bisect_right


class LineTable:
    """The line programs of one pyelftools DWARFInfo, decoded lazily."""

    def __init__(self, dw) -> None:
        self._dw = dw
        self._aranges = None
        self._units: dict[int, tuple[list[int], list[tuple[str, int, bool]]]] = {}

    def source_line(self, addr: int) -> tuple[str, int] | None:
        """(file, line) of the row covering addr, or None."""
        if self._aranges is None:
            self._aranges = self._dw.get_aranges() or False
        off = self._aranges.cu_offset_at_addr(addr) if self._aranges else None
        if off is None:
            return None
        if off not in self._units:
            self._units[off] = _rows(self._dw, self._dw.get_CU_at(off))
        starts, rows = self._units[off]
        i = bisect_right(starts, addr) - 1
        # a row covers up to the next one, unless it ends a sequence
        if i < 0 or i + 1 >= len(rows) or rows[i][2]:
            return None
        return rows[i][0], rows[i][1]


def _rows(dw, cu):
    """([address], [(file, line, end_sequence)]) of a CU's line program,
    sorted by address; at equal addresses a sequence's end sorts before
    another's start, and otherwise the later row wins."""
    lp = dw.line_program_for_CU(cu)
    if lp is None:
        return [], []
    v5 = lp["version"] >= 5
    files, dirs = lp["file_entry"], lp["include_directory"]
    comp = cu.get_top_DIE().attributes.get("DW_AT_comp_dir")
    comp_dir = comp.value.decode() if comp is not None else ""
    names: dict[int, str] = {}

    def fname(i: int) -> str:
        if i not in names:
            e = files[i if v5 else i - 1]
            d = dirs[e.dir_index].decode() if v5 else \
                (dirs[e.dir_index - 1].decode() if e.dir_index else comp_dir)
            names[i] = os.path.join(comp_dir, d, e.name.decode())
        return names[i]

    rows = [(s.address, fname(s.file), s.line, s.end_sequence)
            for s in (ent.state for ent in lp.get_entries()) if s is not None]
    rows.sort(key=lambda r: (r[0], not r[3]))
    return [r[0] for r in rows], [r[1:] for r in rows]
