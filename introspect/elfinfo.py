"""What the host needs from a kernel ELF: its build-id and its symbols.

pyelftools is imported lazily (it is slow to import and most commands never
need it).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import UnikError


def _open(path: Path):
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise UnikError("pyelftools is not installed",
                        "pip install pyelftools (or reinstall unik)") from None
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UnikError(f"cannot read kernel image {path}: {e.strerror}",
                        "build it with: unik build") from None
    try:
        return f, ELFFile(f)
    except Exception as e:
        f.close()
        raise UnikError(f"{path} is not an ELF file ({e})",
                        "rebuild the kernel with: unik build") from None


def build_id(path: str | Path) -> str:
    """The GNU build-id (hex) of an ELF, or "" when it has none."""
    return _build_id_cached(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _build_id_cached(path: str, _mtime: int) -> str:
    f, elf = _open(Path(path))
    with f:
        for note in _notes(elf):
            if note["n_type"] == "NT_GNU_BUILD_ID":
                return note["n_desc"]
    return ""


def _notes(elf):
    """Every ELF note: the note sections' (a kernel), then the note
    segments' (a stripped file or a core)."""
    for sec in elf.iter_sections():
        if sec.header.sh_type == "SHT_NOTE":
            yield from sec.iter_notes()
    for seg in elf.iter_segments():
        if seg.header.p_type == "PT_NOTE":
            yield from seg.iter_notes()


def symbols(path: str | Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size) for the functions and objects in .symtab."""
    f, elf = _open(Path(path))
    out: dict[str, tuple[int, int]] = {}
    with f:
        tab = elf.get_section_by_name(".symtab")
        if tab is None:
            return out
        for sym in tab.iter_symbols():
            if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") \
                    and sym["st_shndx"] != "SHN_UNDEF":
                out[sym.name] = (sym["st_value"], sym["st_size"])
    return out


def symbolize(syms: dict[str, tuple[int, int]], addr: int) -> str | None:
    """`name+0xoff` for an address inside a sized symbol (pure)."""
    best = None
    for name, (a, size) in syms.items():
        if a <= addr < a + max(size, 1) and (best is None or a > best[1]):
            best = (name, a)
    if best is None:
        return None
    off = addr - best[1]
    return best[0] if off == 0 else f"{best[0]}+{off:#x}"
