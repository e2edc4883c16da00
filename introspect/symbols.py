"""The kernel ELF's symbol table: address -> name+offset and name -> address.

Used by TypeDB (introspect/dwarf.py), which the D compiler (`sym()`,
`func()`, `%a`) and the post-mortem tools (backtraces) query.  Pure: it is
handed an already-open pyelftools ELFFile.
"""
from __future__ import annotations

from bisect import bisect_right

_KEEP = ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")


class SymbolTable:
    """The named functions, objects and labels of one ELF's .symtab."""

    def __init__(self, elf) -> None:
        self._addr: dict[str, int] = {}          # name -> address (globals win)
        ranges: list[tuple[int, int, str]] = []  # (start, end, name), sized
        labels: list[tuple[int, str, int]] = []  # (start, name, section end)
        tab = elf.get_section_by_name(".symtab")
        if tab is None:
            self._starts, self._ranges = [], []
            return
        sections = list(elf.iter_sections())
        for sym in tab.iter_symbols():
            info, shndx = sym["st_info"], sym["st_shndx"]
            if not sym.name or info["type"] not in _KEEP or shndx == "SHN_UNDEF":
                continue
            if sym.name not in self._addr or info["bind"] == "STB_GLOBAL":
                self._addr[sym.name] = sym["st_value"]
            if not isinstance(shndx, int) or shndx >= len(sections):
                continue                          # absolute: linker constants
            sec = sections[shndx]
            start, size = sym["st_value"], sym["st_size"]
            if size and info["type"] != "STT_NOTYPE":
                ranges.append((start, start + size, sym.name))
            elif sec["sh_flags"] & 0x4:           # SHF_EXECINSTR: an asm label
                labels.append((start, sym.name, sec["sh_addr"] + sec["sh_size"]))
        ranges += _label_ranges(labels, ranges)
        ranges.sort(key=lambda r: (r[0], -(r[1] - r[0])))
        self._ranges = ranges
        self._starts = [r[0] for r in ranges]

    def symbol(self, addr: int) -> tuple[str, int] | None:
        """(name, offset) of the function or object holding addr; a label
        without a size (assembly) covers up to the next symbol."""
        i = bisect_right(self._starts, addr)
        for start, end, name in reversed(self._ranges[max(0, i - 16):i]):
            if start <= addr < end:
                return name, addr - start
        return None

    def address(self, name: str) -> int | None:
        """The address of a symbol (functions, objects, labels, linker
        symbols); a global symbol wins over a local one of the same name."""
        return self._addr.get(name)

    def names(self) -> list[str]:
        return sorted(self._addr)


def _label_ranges(labels, ranges):
    """Give each size-less code label the span up to the next symbol start
    (or its section's end)."""
    starts = sorted({r[0] for r in ranges} | {lab[0] for lab in labels})
    out = []
    for start, name, sec_end in labels:
        j = bisect_right(starts, start)
        end = min(starts[j], sec_end) if j < len(starts) else sec_end
        if end > start:
            out.append((start, end, name))
    return out
