"""C types as the host sees them: what DWARF describes and D scripts name.

A `CType` is one C type with typedefs resolved away (the typedef's name is
kept in `name` for printing): the D compiler types `args[]`, kernel symbols
and casts with it, and the post-mortem Program decodes memory with it.
`TypeDB` (introspect/dwarf.py) builds them from the kernel's DWARF; the
base types here exist even when an ELF lacks them.  Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Mapping

POINTER_SIZE = 8        # x86-64


class UnknownType(KeyError):
    """A type name or spelling that does not name a type: a KeyError whose
    str() is "unknown type 'NAME'" (TypeDB.parse_type raises it)."""

    def __str__(self) -> str:
        return self.args[0]

# kind: int, bool, enum, ptr, struct, union, array, void, func (and float,
# which the kernel never uses but DWARF may name).
KINDS = ("int", "bool", "enum", "ptr", "struct", "union", "array", "void", "func",
         "float")


@dataclass(frozen=True, eq=False, repr=False)
class Member:
    """One struct/union member.  For a bitfield, `offset` is the byte offset
    of the naturally aligned unit of `type.size` bytes that holds it and
    the value is (unit >> bit_offset) & ((1 << bit_size) - 1), little-endian;
    for other members bit_size and bit_offset are None.  `name` is None for
    an anonymous struct/union member (CType.member looks through it)."""
    name: str | None
    offset: int
    type: "CType"
    bit_size: int | None = None
    bit_offset: int | None = None

    def __repr__(self) -> str:
        bits = f", bits={self.bit_offset}:{self.bit_size}" if self.bit_size else ""
        return f"Member({self.name!r}, offset={self.offset}, type={self.type}{bits})"

    def _key(self) -> tuple:
        return (self.name, self.offset, str(self.type), self.bit_size, self.bit_offset)


class _Body:
    """A struct/union's member list, filled in once after the type exists."""
    __slots__ = ("members",)

    def __init__(self) -> None:
        self.members: tuple[Member, ...] = ()


@dataclass(frozen=True, eq=False, repr=False)
class CType:
    """One C type.  `name` is its C spelling ('uint32_t', 'struct thread',
    'char *', 'char [16]'); `typedef` is set when the type was reached
    through a typedef (then `name` is the typedef's name).  `size` in bytes
    (0 for void, functions and arrays of unknown length); `signed` for ints
    and enums; `target` is what a pointer points to, an array's element or
    a function's return type; `count` an array's length (None: unknown);
    `members` for struct/union (empty for an incomplete one; held in a
    `body` shared with the type's typedef'd copies, so that a struct that
    points back at itself through a typedef is complete everywhere);
    `enumerators` {name: value} for an enum; `params` a function's
    parameter types (None: unprototyped), `variadic` when it takes '...'."""
    kind: str
    name: str
    size: int
    signed: bool = False
    target: "CType | None" = None
    count: int | None = None
    body: "_Body | None" = None
    enumerators: Mapping[str, int] = field(default_factory=dict)
    params: "tuple[CType, ...] | None" = None
    variadic: bool = False
    typedef: str | None = None
    complete: bool = True

    @property
    def members(self) -> tuple[Member, ...]:
        return self.body.members if self.body is not None else ()

    # --- questions the compiler and the Program ask -----------------------
    def member(self, name: str) -> Member | None:
        """The member called `name`, looking through anonymous members
        (their offsets added); None when there is none."""
        for m in self.members:
            if m.name == name:
                return m
            if m.name is None and m.type.kind in ("struct", "union"):
                inner = m.type.member(name)
                if inner is not None:
                    return replace(inner, offset=inner.offset + m.offset)
        return None

    def is_integer(self) -> bool:
        return self.kind in ("int", "bool", "enum")

    def is_pointer(self) -> bool:
        return self.kind == "ptr"

    def is_scalar(self) -> bool:
        """A value that fits a VM register: integers and pointers."""
        return self.is_integer() or self.kind == "ptr"

    def is_string(self) -> bool:
        """A char pointer or a char array (DTrace prints these as strings)."""
        if self.kind not in ("ptr", "array") or self.target is None:
            return False
        t = self.target
        return t.kind == "int" and t.size == 1 and t.typedef is None and \
            _unqualified(t.name) in ("char", "signed char", "unsigned char")

    def deref(self) -> "CType":
        """What a pointer points to, or an array's element type."""
        if self.kind not in ("ptr", "array") or self.target is None:
            raise TypeError(f"cannot dereference a value of type '{self}'")
        return self.target

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"CType({self.kind} '{self.name}', size={self.size})"

    # --- structural equality (cycle-safe: struct members compare by spelling)
    def _key(self) -> tuple:
        k: tuple = (self.kind, self.name, self.size, self.signed, self.count,
                    self.complete)
        if self.kind in ("ptr", "array", "func") and self.target is not None:
            k += (self.target._key(),)
        if self.kind in ("struct", "union"):
            k += tuple(m._key() for m in self.members)
        if self.kind == "enum":
            k += tuple(sorted(self.enumerators.items()))
        if self.params is not None:
            k += tuple(p._key() for p in self.params) + (self.variadic,)
        return k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CType) and (self is other or self._key() == other._key())

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.size))


def _unqualified(name: str) -> str:
    words = [w for w in name.split() if w not in ("const", "volatile")]
    return " ".join(words)


def spelling(t: CType, inner: str = "") -> str:
    """The C declaration of `inner` with type t ('char *', 'char [16]',
    'void (*)(void *)'); with inner '' the type's own spelling."""
    if t.typedef is None and t.kind == "ptr" and t.target is not None:
        if t.target.kind in ("array", "func") and t.target.typedef is None:
            return spelling(t.target, "(*" + inner + ")")
        return spelling(t.target, "*" + inner)
    if t.typedef is None and t.kind == "array" and t.target is not None:
        n = "" if t.count is None else str(t.count)
        return spelling(t.target, inner + f"[{n}]")
    if t.typedef is None and t.kind == "func" and t.target is not None:
        ps = [str(p) for p in t.params or ()] + (["..."] if t.variadic else [])
        ps = ", ".join(ps) or ("void" if t.params is not None else "")
        return spelling(t.target, inner + f"({ps})")
    if not inner:
        return t.name
    return t.name + " " + inner


# --- constructors ----------------------------------------------------------
def pointer_to(t: CType) -> CType:
    """`t *`."""
    p = CType("ptr", "", POINTER_SIZE, target=t)
    return _named(p)


def array_of(t: CType, count: int | None) -> CType:
    """`t [count]` (count None: unknown length)."""
    size = t.size * count if count is not None else 0
    return _named(CType("array", "", size, target=t, count=count))


def function_of(ret: CType, params: tuple[CType, ...] | None,
                variadic: bool = False) -> CType:
    """A function type returning `ret`."""
    return _named(CType("func", "", 0, target=ret, params=params, variadic=variadic))


def _named(t: CType) -> CType:
    object.__setattr__(t, "name", spelling(t))
    return t


def qualified(t: CType, qual: str) -> CType:
    """`const t` / `volatile t`: the qualifier shows in the name of a named
    type ('const char') and is dropped on pointers and arrays."""
    if t.kind in ("ptr", "array", "func") and t.typedef is None:
        return t
    words = t.name.split()
    quals = {w for w in words if w in _QUALS} | {qual}
    rest = " ".join(w for w in words if w not in _QUALS)
    return replace(t, name=" ".join([q for q in _QUALS if q in quals] + [rest]))


_QUALS = ("const", "volatile")


def typedef_of(t: CType, name: str) -> CType:
    """t seen through `typedef ... name`."""
    return replace(t, name=name, typedef=name)


def new_struct(kind: str, name: str, size: int, complete: bool = True) -> CType:
    """A struct or union with no members yet: `set_members` fills them in
    (they may point back at it)."""
    return CType(kind, name, size, body=_Body(), complete=complete)


def set_members(t: CType, members: tuple[Member, ...]) -> None:
    """Fill in the members of a type from `new_struct` (TypeDB only)."""
    assert t.body is not None
    t.body.members = members


# --- base types ------------------------------------------------------------
_BASE_KEYWORDS = frozenset(("signed", "unsigned", "short", "long", "int", "char",
                            "_Bool", "void"))

_BASE: dict[str, tuple[str, int, bool]] = {
    "char": ("int", 1, True), "signed char": ("int", 1, True),
    "unsigned char": ("int", 1, False),
    "short": ("int", 2, True), "unsigned short": ("int", 2, False),
    "int": ("int", 4, True), "unsigned int": ("int", 4, False),
    "long": ("int", 8, True), "unsigned long": ("int", 8, False),
    "long long": ("int", 8, True), "unsigned long long": ("int", 8, False),
    "_Bool": ("bool", 1, False), "void": ("void", 0, False),
}

# Typedefs every C programmer expects, used when the ELF has none of them.
_STD_TYPEDEFS = {
    "int8_t": "signed char", "int16_t": "short", "int32_t": "int", "int64_t": "long",
    "uint8_t": "unsigned char", "uint16_t": "unsigned short",
    "uint32_t": "unsigned int", "uint64_t": "unsigned long",
    "bool": "_Bool", "size_t": "unsigned long", "ssize_t": "long",
    "uintptr_t": "unsigned long", "intptr_t": "long", "ptrdiff_t": "long",
}


def is_base_keyword(word: str) -> bool:
    return word in _BASE_KEYWORDS


def canonical_base(words: list[str]) -> str | None:
    """The canonical spelling of a base type from its specifier words in
    any order ('long unsigned int' -> 'unsigned long'); None if they do not
    make a C base type."""
    w = list(words)
    if not w or any(x not in _BASE_KEYWORDS for x in w):
        return None
    sign = None
    for s in ("signed", "unsigned"):
        if s in w:
            if sign is not None or w.count(s) > 1:
                return None
            sign = s
            w.remove(s)
    longs, shorts = w.count("long"), w.count("short")
    rest = [x for x in w if x not in ("long", "short")]
    if rest.count("int") > 1 or longs > 2 or shorts > 1 or (longs and shorts):
        return None
    core = [x for x in rest if x != "int"]
    if core:                                   # char, _Bool, void
        if len(core) > 1 or longs or shorts or "int" in rest:
            return None
        if core[0] == "char":
            return "char" if sign is None else f"{sign} char"
        return core[0] if sign is None else None
    base = "short" if shorts else "long long" if longs == 2 else "long" if longs else "int"
    return f"unsigned {base}" if sign == "unsigned" else base


def base_type(name: str) -> CType | None:
    """A C base type or standard typedef by name ('unsigned long',
    'long unsigned int', 'uint32_t', 'bool'); None if it is not one."""
    if name in _STD_TYPEDEFS:
        t = base_type(_STD_TYPEDEFS[name])
        return typedef_of(t, name) if t is not None else None
    canon = canonical_base(name.split())
    if canon is None:
        return None
    kind, size, signed = _BASE[canon]
    return CType(kind, canon, size, signed)


def std_typedef_names() -> list[str]:
    return list(_STD_TYPEDEFS)


# --- C type spellings ------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:([A-Za-z_]\w*)|(\*)|\[\s*(\d*)\s*\])")


def split_spelling(text: str) -> tuple[list[str], list[str], int, list[int | None]]:
    """A C type spelling cut into (specifier words, qualifiers, pointer
    depth, array dimensions): 'const struct thread *[4]' ->
    (['struct', 'thread'], ['const'], 1, [4]).  UnknownType if malformed."""
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise UnknownType(f"unknown type '{text}': cannot parse '{text[pos:].strip()}'")
        toks.append(m.groups())
        pos = m.end()
    words: list[str] = []
    quals: list[str] = []
    i = 0
    while i < len(toks) and toks[i][0] is not None:
        w = toks[i][0]
        if w in _QUALS:
            quals.append(w)
        elif w in ("struct", "union", "enum"):
            if words or i + 1 >= len(toks) or toks[i + 1][0] is None:
                raise UnknownType(f"unknown type '{text}'")
            words = [w, toks[i + 1][0]]
            i += 1
        elif w != "restrict":
            words.append(w)
        i += 1
    stars, dims = 0, []
    for ident, star, dim in toks[i:]:
        if star and not dims:
            stars += 1
        elif ident in ("const", "volatile", "restrict") and not dims:
            continue                       # qualifiers of the pointer itself
        elif dim is not None:
            dims.append(int(dim) if dim else None)
        else:
            raise UnknownType(f"unknown type '{text}'")
    return words, quals, stars, dims


def declare(t: CType, quals: list[str], stars: int, dims: list[int | None]) -> CType:
    """Apply split_spelling's declarator parts to the named type t."""
    for q in quals:
        t = qualified(t, q)
    for _ in range(stars):
        t = pointer_to(t)
    for n in reversed(dims):
        t = array_of(t, n)
    return t
