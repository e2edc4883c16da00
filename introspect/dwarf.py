"""The host's one reader of a kernel ELF's DWARF and symbols (pyelftools).

`TypeDB.from_elf(path)` indexes the top-level DIEs of every compile unit
once (types, typedefs, global and static variables, functions); types are
built lazily from their DIEs on first use and cached.  The D compiler uses
it for kernel symbols (`` `sched_threads ``), typed `args[]`, member access
and casts; the drift test for the wire structs; the post-mortem Program
(issue 8) for typed memory, symbols and source lines.

Every failure to read the file is a UnikError naming it; an unknown type
name is an UnknownType, a KeyError whose str() is "unknown type 'NAME'".
"""
from __future__ import annotations

import io
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from . import ctype as C
from .ctype import CType, Member, UnknownType
from .errors import UnikError
from .lines import LineTable
from .symbols import SymbolTable

_TAGS = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union",
         "DW_TAG_enumeration_type": "enum"}
_ATE = {2: "bool", 4: "float", 5: "int", 6: "int", 7: "int", 8: "int", 0x10: "int"}
_ATE_SIGNED = (5, 6)
_HINT = "rebuild the kernel (unik build) or point at the right kernel.elf"


def _name(die) -> str | None:
    a = die.attributes.get("DW_AT_name")
    return a.value.decode("utf-8", "replace") if a is not None else None


def _static_addr(attr) -> int | None:
    """The address of a DW_OP_addr location (a static variable), else None."""
    if attr is None or not isinstance(attr.value, list):
        return None
    ops = attr.value
    if len(ops) == 9 and ops[0] == 0x03:                    # DW_OP_addr u64
        return int.from_bytes(bytes(ops[1:9]), "little")
    return None


class TypeDB:
    """Types, variables, functions, symbols and lines of one kernel ELF."""

    def __init__(self, path: Path, data: bytes) -> None:
        from elftools.elf.elffile import ELFFile
        self.path = path
        self._elf = ELFFile(io.BytesIO(data))
        _check_complete(path, self._elf, len(data))
        if not self._elf.has_dwarf_info() or \
                self._elf.get_section_by_name(".debug_info") is None:
            raise UnikError(f"{path} has no DWARF debug info",
                            "build the kernel with -g (kernel/Makefile does)")
        self._dw = self._elf.get_dwarf_info()
        self.symbols = SymbolTable(self._elf)
        self._tags: dict[str, dict[str, object]] = {"struct": {}, "union": {}, "enum": {}}
        self._typedefs: dict[str, object] = {}
        self._vars: dict[str, tuple[int, object, bool]] = {}   # name -> (addr, die, extern)
        self._decls: dict[str, object] = {}                    # extern declarations
        self._funcs: dict[str, tuple[int, int]] = {}
        self._func_dies: dict[str, object] = {}
        self._enum_dies: list = []
        self._enumerators: dict[str, tuple[int, CType]] | None = None
        self._cache: dict[int, CType] = {}
        self._parsed: dict[str, CType] = {}
        self._lines = LineTable(self._dw)
        for cu in self._dw.iter_CUs():
            for die in cu.get_top_DIE().iter_children():
                self._index(die)

    # --- opening --------------------------------------------------------
    @classmethod
    def from_elf(cls, path: str | os.PathLike) -> "TypeDB":
        """The TypeDB of an ELF, cached by path and modification time."""
        p = Path(path)
        try:
            st = p.stat()
        except OSError as e:
            raise UnikError(f"cannot read kernel image {p}: {e.strerror}",
                            "build it with: unik build") from None
        return _open_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)

    # --- the index ------------------------------------------------------
    def _index(self, die) -> None:
        tag = die.tag
        if tag in _TAGS:
            kind, name = _TAGS[tag], _name(die)
            if kind == "enum":
                self._enum_dies.append(die)
            if name is not None:
                old = self._tags[kind].get(name)
                if old is None or ("DW_AT_declaration" in old.attributes
                                   and "DW_AT_declaration" not in die.attributes):
                    self._tags[kind][name] = die
        elif tag == "DW_TAG_typedef":
            name = _name(die)
            if name is not None:
                self._typedefs.setdefault(name, die)
        elif tag == "DW_TAG_variable":
            self._index_var(die)
        elif tag == "DW_TAG_subprogram":
            self._index_func(die)

    def _index_var(self, die) -> None:
        a = die.attributes
        spec = die.get_DIE_from_attribute("DW_AT_specification") \
            if "DW_AT_specification" in a else None
        name = _name(die) or (spec is not None and _name(spec)) or None
        if name is None:
            return
        addr = _static_addr(a.get("DW_AT_location"))
        if addr is None:
            if "DW_AT_declaration" in a:
                self._decls.setdefault(name, die)
            return
        ext = "DW_AT_external" in a or (spec is not None and
                                        "DW_AT_external" in spec.attributes)
        old = self._vars.get(name)
        if old is None or (ext and not old[2]):
            self._vars[name] = (addr, die, ext)

    def _index_func(self, die) -> None:
        a = die.attributes
        if "DW_AT_low_pc" not in a or "DW_AT_high_pc" not in a:
            return
        name = _name(die)
        for ref in ("DW_AT_specification", "DW_AT_abstract_origin"):
            if name is None and ref in a:
                name = _name(die.get_DIE_from_attribute(ref))
        if name is None:
            return
        lo, hi = a["DW_AT_low_pc"], a["DW_AT_high_pc"]
        high = hi.value if hi.form == "DW_FORM_addr" else lo.value + hi.value
        if _name(die) is None:
            # A concrete copy named through its origin: gcc's clones
            # (name.part.0, .isra.0, .constprop.0) carry their own ELF
            # symbol; file them under it so they never shadow the function.
            sym = self.symbols.symbol(lo.value)
            if sym and sym[1] == 0 and sym[0] != name and sym[0].startswith(name + "."):
                name = sym[0]
        self._funcs.setdefault(name, (lo.value, high))
        self._func_dies.setdefault(name, die)

    # --- variables and functions ------------------------------------------
    def global_var(self, name: str) -> tuple[int, CType] | None:
        """(address, type) of a global or file-static variable.  A variable
        DWARF only declares (defined in assembly) takes its address from
        the symbol table."""
        with self._guard():
            if name in self._vars:
                addr, die, _ = self._vars[name]
                if "DW_AT_type" not in die.attributes and \
                        "DW_AT_specification" in die.attributes:
                    die = die.get_DIE_from_attribute("DW_AT_specification")
                return addr, self._type_of(die)
            decl, addr = self._decls.get(name), self.symbols.address(name)
            if decl is not None and addr is not None:
                return addr, self._type_of(decl)
        return None

    def global_names(self) -> list[str]:
        """Every variable global_var() knows (for 'did you mean' hints)."""
        return sorted(set(self._vars) | {n for n in self._decls
                                         if self.symbols.address(n) is not None})

    def functions(self) -> dict[str, tuple[int, int]]:
        """name -> (low_pc, high_pc) of every function with code."""
        return dict(self._funcs)

    def _func_die(self, name: str):
        """The DIE describing function `name` (an inlined or out-of-line
        copy's abstract origin), or None; call inside self._guard()."""
        die = self._func_dies.get(name)
        if die is not None and "DW_AT_abstract_origin" in die.attributes:
            die = die.get_DIE_from_attribute("DW_AT_abstract_origin")
        return die

    def function_params(self, name: str) -> list[tuple[str | None, CType]] | None:
        """A function's parameters as (name, type), or None if unknown."""
        with self._guard():
            die = self._func_die(name)
            if die is None:
                return None
            return [(_name(c), self._type_of(c)) for c in die.iter_children()
                    if c.tag == "DW_TAG_formal_parameter"]

    def function_return(self, name: str) -> CType | None:
        """A function's return type; None if void or unknown (fbt's
        return probes type arg1/retval by it)."""
        with self._guard():
            die = self._func_die(name)
            if die is None:
                return None
            return self._type_of(die) if "DW_AT_type" in die.attributes else None

    def symbol(self, addr: int) -> tuple[str, int] | None:
        """(name, offset) of the ELF symbol holding addr."""
        return self.symbols.symbol(addr)

    def address(self, name: str) -> int | None:
        """The ELF symbol table's address for name."""
        return self.symbols.address(name)

    # --- types by name ----------------------------------------------------
    def lookup(self, name: str) -> CType | None:
        """The type called name ('struct thread', 'thread', 'uint32_t',
        'unsigned int', 'enum foo', or any parse_type spelling), or None."""
        try:
            return self.parse_type(name)
        except UnknownType:
            return None

    def parse_type(self, text: str) -> CType:
        """The CType of a C type spelling: qualifiers, base types in any
        word order, struct/union/enum tags, typedefs, '*'s and '[N]'s."""
        key = " ".join(text.split())
        t = self._parsed.get(key)
        if t is None:
            with self._guard():
                t = self._parse(key)
            self._parsed[key] = t
        return t

    def _parse(self, text: str) -> CType:
        words, quals, stars, dims = C.split_spelling(text)
        return C.declare(self._named(words, text), quals, stars, dims)

    def _named(self, words: list[str], text: str) -> CType:
        if not words:
            raise UnknownType(f"unknown type '{text}'")
        if words[0] in ("struct", "union", "enum"):
            if len(words) != 2:
                raise UnknownType(f"unknown type '{text}'")
            die = self._tags[words[0]].get(words[1])
            if die is None:
                raise UnknownType(f"unknown type '{words[0]} {words[1]}'")
            return self._resolve(die)
        if all(C.is_base_keyword(w) for w in words):
            t = C.base_type(" ".join(words))
            if t is None:
                raise UnknownType(f"unknown type '{' '.join(words)}'")
            return t
        if len(words) != 1:
            raise UnknownType(f"unknown type '{' '.join(words)}'")
        name = words[0]
        if name in self._typedefs:
            return self._resolve(self._typedefs[name])
        t = C.base_type(name)
        if t is not None:
            return t
        for kind in ("struct", "union", "enum"):
            if name in self._tags[kind]:
                return self._resolve(self._tags[kind][name])
        raise UnknownType(f"unknown type '{name}'")

    def type_names(self) -> list[str]:
        """Every type name parse_type() knows (for 'did you mean' hints)."""
        names = set(self._typedefs) | set(C.std_typedef_names())
        for kind, table in self._tags.items():
            names |= {f"{kind} {n}" for n in table}
        return sorted(names)

    def enumerator(self, name: str) -> tuple[int, CType] | None:
        """(value, enum type) of an enum constant such as WIRE_TS_RUN."""
        if self._enumerators is None:
            with self._guard():
                table = {}
                for die in self._enum_dies:
                    t = self._resolve(die)
                    for k, v in t.enumerators.items():
                        table.setdefault(k, (v, t))
                self._enumerators = table
        return self._enumerators.get(name)

    # --- the drift test's view --------------------------------------------
    def struct_layouts(self, prefix: str = "") -> dict[str, tuple[int, dict[str, int]]]:
        """{struct name: (size, {member: offset})} of the complete structs
        whose tag starts with prefix."""
        out = {}
        with self._guard():
            for name, die in self._tags["struct"].items():
                if name.startswith(prefix) and "DW_AT_declaration" not in die.attributes:
                    t = self._resolve(die)
                    out[name] = (t.size, {m.name: m.offset for m in t.members if m.name})
        return out

    def enums(self, prefix: str = "") -> dict[str, dict[str, int]]:
        """{enum tag: {enumerator: value}} of the enums whose tag starts
        with prefix."""
        with self._guard():
            return {name: dict(self._resolve(die).enumerators)
                    for name, die in self._tags["enum"].items() if name.startswith(prefix)}

    # --- building CTypes from DIEs ----------------------------------------
    def _type_of(self, die) -> CType:
        """The type a DIE's DW_AT_type names (void when it has none)."""
        if "DW_AT_type" not in die.attributes:
            return C.base_type("void")
        return self._resolve(die.get_DIE_from_attribute("DW_AT_type"))

    def _resolve(self, die) -> CType:
        t = self._cache.get(die.offset)
        if t is None:
            t = self._build(die)
            self._cache[die.offset] = t
        return t

    def _build(self, die) -> CType:
        tag = die.tag
        if tag == "DW_TAG_base_type":
            return self._base(die)
        if tag == "DW_TAG_pointer_type":
            return C.pointer_to(self._type_of(die))
        if tag in ("DW_TAG_const_type", "DW_TAG_volatile_type"):
            return C.qualified(self._type_of(die), tag[7:-5])
        if tag == "DW_TAG_typedef":
            return C.typedef_of(self._type_of(die), _name(die))
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type"):
            return self._struct(die)
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die)
        if tag == "DW_TAG_array_type":
            return self._array(die)
        if tag == "DW_TAG_subroutine_type":
            params = tuple(self._type_of(c) for c in die.iter_children()
                           if c.tag == "DW_TAG_formal_parameter")
            proto = "DW_AT_prototyped" in die.attributes
            varargs = any(c.tag == "DW_TAG_unspecified_parameters"
                          for c in die.iter_children())
            return C.function_of(self._type_of(die), params if proto else None, varargs)
        return self._type_of(die)          # restrict, atomic, and the like

    def _base(self, die) -> CType:
        name = _name(die) or "?"
        t = C.base_type(name)
        if t is not None:
            return t
        enc = die.attributes["DW_AT_encoding"].value
        return CType(_ATE.get(enc, "int"), name, die.attributes["DW_AT_byte_size"].value,
                     signed=enc in _ATE_SIGNED)

    def _complete_die(self, die, kind: str):
        """The defining DIE for a declaration-only struct/union/enum."""
        if "DW_AT_declaration" in die.attributes and _name(die) is not None:
            return self._tags[kind].get(_name(die), die)
        return die

    def _struct(self, die) -> CType:
        kind = _TAGS[die.tag]
        full = self._complete_die(die, kind)
        if full is not die:
            return self._resolve(full)
        name = f"{kind} {_name(die) or '<anonymous>'}"
        complete = "DW_AT_declaration" not in die.attributes
        t = C.new_struct(kind, name, die.attributes["DW_AT_byte_size"].value
                         if complete else 0, complete)
        self._cache[die.offset] = t                # members may point back at t
        C.set_members(t, tuple(self._member(m) for m in die.iter_children()
                               if m.tag == "DW_TAG_member"))
        return t

    def _member(self, die) -> Member:
        a = die.attributes
        mt = self._type_of(die)
        loc = a.get("DW_AT_data_member_location")
        off = 0 if loc is None else loc.value if isinstance(loc.value, int) \
            else _uconst(loc.value)
        if "DW_AT_bit_size" not in a:
            return Member(_name(die), off, mt)
        bits = a["DW_AT_bit_size"].value
        if "DW_AT_data_bit_offset" in a:
            bit = a["DW_AT_data_bit_offset"].value
        else:                                      # DWARF 2/3: big-endian count
            nbytes = a["DW_AT_byte_size"].value if "DW_AT_byte_size" in a else mt.size
            bit = off * 8 + nbytes * 8 - a["DW_AT_bit_offset"].value - bits
        unit = max(mt.size, 1)
        start = bit // (unit * 8) * unit
        return Member(_name(die), start, mt, bits, bit - start * 8)

    def _enum(self, die) -> CType:
        full = self._complete_die(die, "enum")
        if full is not die:
            return self._resolve(full)
        a = die.attributes
        size = a["DW_AT_byte_size"].value if "DW_AT_byte_size" in a else 4
        raw = {_name(e): e.attributes["DW_AT_const_value"].value
               for e in die.iter_children() if e.tag == "DW_TAG_enumerator"}
        signed = self._type_of(die).signed if "DW_AT_type" in a \
            else any(v < 0 for v in raw.values())
        vals = {k: _fit(v, size, signed) for k, v in raw.items()}
        return CType("enum", f"enum {_name(die) or '<anonymous>'}", size, signed,
                     enumerators=vals, complete="DW_AT_declaration" not in a)

    def _array(self, die) -> CType:
        t = self._type_of(die)
        dims = []
        for sub in die.iter_children():
            if sub.tag != "DW_TAG_subrange_type":
                continue
            a = sub.attributes
            n = None
            if "DW_AT_count" in a and isinstance(a["DW_AT_count"].value, int):
                n = a["DW_AT_count"].value
            elif "DW_AT_upper_bound" in a and isinstance(a["DW_AT_upper_bound"].value, int):
                ub = a["DW_AT_upper_bound"].value
                n = 0 if ub >= 1 << 31 else ub + 1     # [0] arrays say -1
            dims.append(n)
        for n in reversed(dims or [None]):
            t = C.array_of(t, n)
        return t

    # --- source lines -----------------------------------------------------
    def source_line(self, addr: int) -> tuple[str, int] | None:
        """(source file, line) of the code at addr, from the line program."""
        with self._guard():
            return self._lines.source_line(addr)

    # --- errors -----------------------------------------------------------
    @contextmanager
    def _guard(self):
        """Turn a pyelftools failure on a damaged file into a UnikError."""
        try:
            yield
        except (UnknownType, UnikError):
            raise
        except Exception as e:
            raise UnikError(f"{self.path}: damaged DWARF debug info ({type(e).__name__}: {e})",
                            _HINT) from None


def _uconst(ops: list[int]) -> int:
    """DW_OP_plus_uconst ULEB (old-style member locations)."""
    if not ops or ops[0] != 0x23:
        return 0
    val = shift = 0
    for b in ops[1:]:
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return val


def _fit(v: int, size: int, signed: bool) -> int:
    bits = size * 8
    v &= (1 << bits) - 1
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def _check_complete(path: Path, elf, size: int) -> None:
    """A truncated ELF fails here, naming the file, not deep in pyelftools."""
    h = elf.header
    if h["e_shoff"] + h["e_shnum"] * h["e_shentsize"] > size:
        raise UnikError(f"{path} is truncated: its section headers end past "
                        f"its {size} bytes", _HINT)
    for sec in elf.iter_sections():
        end = sec["sh_offset"] + sec["sh_size"]
        if sec["sh_type"] != "SHT_NOBITS" and end > size:
            raise UnikError(f"{path} is truncated: section {sec.name} ends at byte "
                            f"{end}, the file has {size}", _HINT)


@lru_cache(maxsize=4)
def _open_cached(path: str, _mtime: int, _size: int) -> TypeDB:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UnikError(f"cannot read kernel image {path}: {e.strerror}",
                        "build it with: unik build") from None
    try:
        import elftools  # noqa: F401
    except ImportError:
        raise UnikError("pyelftools is not installed",
                        "pip install pyelftools (or reinstall unik)") from None
    try:
        return TypeDB(Path(path), data)
    except UnikError:
        raise
    except Exception as e:
        what = "is not an ELF file" if data[:4] != b"\x7fELF" else "is a damaged ELF file"
        raise UnikError(f"{path} {what} ({type(e).__name__}: {e})", _HINT) from None
