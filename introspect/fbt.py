"""fbt probes as the host sees them: every function the kernel build
instrumented (gcc's -mrecord-mcount lists its entry nop in section
`__mcount_loc`), numbered as the kernel numbers them (kernel/probe/fbt.c
sorts the same table at boot): function i has entry probe
`isa.FIRST_FBT_PROBE + 2*i` and return probe `+ 2*i + 1`.

Each probe's module is the kernel subsystem or application of the source
file (the rule of kernel/Makefile's PROBE_MODULE: the directory under
kernel/, the app's name for kernel/apps/APP/, `kernel` at the top), read
from the `.fbtmods` table the build links in for the kernel's `probemod`
(so both sides agree), or from DWARF without it; entry
args[] are the function's formal parameters and return args[1] its return
type, both from DWARF.  `runs()` folds a program's fbt enablings into
runs of consecutive functions, the form the kernel links them in (an fbt
enabling's arg is its run length), so `fbt:::entry` is one enabling.
"""
from __future__ import annotations

import struct
from functools import lru_cache

from probes import isa
from probes.program import Probe

from .elfinfo import _open

SECTION = "__mcount_loc"


def module_of(path: str) -> str:
    """The probe module of a kernel source path (pure)."""
    parts = path.replace("\\", "/").split("/")
    if "kernel" not in parts:
        return "kernel"
    rest = parts[len(parts) - 1 - parts[::-1].index("kernel") + 1:]
    if len(rest) >= 3 and rest[0] == "apps":
        return rest[1]
    return rest[0] if len(rest) >= 2 else "kernel"


def site_table(raw: bytes) -> list[int]:
    """The sorted site addresses of a __mcount_loc section (pure)."""
    n = len(raw) // 8
    return sorted(struct.unpack_from(f"<{n}Q", raw, 0))


def functions(elf_path) -> list[tuple[int, int, str]]:
    """(index, address, name) of every fbt function: the sites that are a
    function symbol's first byte (a weak definition the link replaced
    leaves a site no symbol names; it keeps its index but is not listed).
    gcc's clones (`f.constprop.0`, `f.isra.0`) are functions of their own.
    Empty for a kernel built without fbt."""
    return list(_functions(str(elf_path)))


@lru_cache(maxsize=8)
def _functions(path: str) -> tuple:
    f, elf = _open(path)
    with f:
        sec = elf.get_section_by_name(SECTION)
        if sec is None:
            return ()
        addrs = site_table(sec.data())
        tab = elf.get_section_by_name(".symtab")
        names = {}
        if tab is not None:
            for s in tab.iter_symbols():
                if s["st_info"]["type"] == "STT_FUNC" and s["st_shndx"] != "SHN_UNDEF":
                    names.setdefault(s["st_value"], s.name)
    # the kernel names functions from .ksyms, which leaves out "__" names
    # (kernel/Makefile's TEXTSYMS): such a site is refused there, so not listed
    return tuple((i, a, names[a]) for i, a in enumerate(addrs)
                 if a in names and not names[a].startswith("__"))


def sites(elf_path) -> list[tuple[int, int, int]]:
    """(nop address, fbt_entry_tramp, entry probe id) per listed fbt
    function: the form textcheck.site_states reads (an enabled fbt site is
    `call fbt_entry_tramp`)."""
    from .symbols import SymbolTable
    f, elf = _open(str(elf_path))
    with f:
        tramp = SymbolTable(elf).address("fbt_entry_tramp")
    if tramp is None:
        return []
    return [(a, tramp, entry_id(i)) for i, a, _ in functions(elf_path)]


def mod_table(raw: bytes, base: int) -> list[tuple[int, str]]:
    """(address, module) entries of a .fbtmods section whose data is raw at
    address base: {u64 count; {u64 addr; u64 name}[count]; names} (pure)."""
    if len(raw) < 8:
        return []
    n = struct.unpack_from("<Q", raw, 0)[0]
    out = []
    for k in range(n):
        addr, name = struct.unpack_from("<QQ", raw, 8 + 16 * k)
        off = name - base
        end = raw.find(b"\0", off) if 0 <= off < len(raw) else -1
        out.append((addr, raw[off:end].decode() if end >= 0 else ""))
    return out


def module_at(table: list[tuple[int, str]], addr: int) -> str | None:
    """The module of the last entry at or below addr (pure)."""
    import bisect
    k = bisect.bisect_right([a for a, _ in table], addr) - 1
    return table[k][1] if k >= 0 else None


@lru_cache(maxsize=8)
def _modules(path: str) -> tuple:
    f, elf = _open(path)
    with f:
        sec = elf.get_section_by_name(".fbtmods")
        return tuple(mod_table(sec.data(), sec["sh_addr"])) if sec is not None else ()


def _ctype(t) -> str:
    return str(t) if t is not None else "void"


def probes(elf_path, types=None) -> list[Probe]:
    """The entry and return probe of every fbt function, typed from the
    TypeDB `types` (introspect.dwarf) when given."""
    out, mods = [], list(_modules(str(elf_path)))
    for i, addr, name in functions(elf_path):
        mod, params, ret = module_at(mods, addr), [], None
        if types is not None:
            src = types.source_line(addr) if mod is None else None
            mod = mod or (module_of(src[0]) if src else "kernel")
            params = types.function_params(name) or []
            ret = types.function_return(name)
        mod = mod or "kernel"
        entry = tuple((_ctype(t), n or f"arg{k}") for k, (n, t) in enumerate(params[:6]))
        retargs = (("uint64_t", "offset"),) + (((_ctype(ret), "retval"),) if ret else ())
        base = isa.FIRST_FBT_PROBE + 2 * i
        out.append(Probe(base, "fbt", mod, name, "entry", entry))
        out.append(Probe(base + 1, "fbt", mod, name, "return", retargs))
    return out


def entry_id(index: int) -> int:
    """The entry probe id of fbt function index (its return id is + 1)."""
    return isa.FIRST_FBT_PROBE + 2 * index


def is_fbt(probe_id: int) -> bool:
    return probe_id >= isa.FIRST_FBT_PROBE


def runs(enablings) -> list[tuple[int, int, int]]:
    """(clause, probe id, arg) enablings with the fbt ones folded into runs:
    consecutive functions' probes of one kind for one clause become one
    enabling whose arg is the run length (pure).  Order is kept."""
    out: list[list[int]] = []
    for clause, pid, arg in enablings:
        if is_fbt(pid) and out:
            c, first, n = out[-1]
            if c == clause and is_fbt(first) and pid == first + 2 * n:
                out[-1][2] = n + 1
                continue
        out.append([clause, pid, 1 if is_fbt(pid) else arg])
    return [tuple(e) for e in out]
