"""Types as the D compiler sees them (sema and codegen).

A DType is an integer (size 1/2/4/8, signed or not), a VM string, a pointer,
an array, a struct/union (members from the kernel's DWARF, via
introspect/ctype.py's CType), void or a function.  `parse_ctype` reads a C
type name: fixed-width and standard integer names, `char *` and pointers to
them work without a TypeDB; anything else (struct thread *) asks the TypeDB.

A kernel `char *` or `char[N]` is "string-like": where a string is wanted
the compiler copies it with the STRINGOF helper (it is not a VM string).

Pure: no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DType:
    kind: str                   # int string ptr array struct union void func
    size: int = 8
    signed: bool = False
    name: str = ""              # C spelling, for messages and ValType.ctype
    target: "DType | None" = field(default=None, compare=False)   # ptr / array element
    count: int = 0              # array elements
    ctype: object = field(default=None, compare=False, hash=False)  # dwarf CType

    def __str__(self) -> str:
        return self.name or self.kind

    @property
    def is_int(self) -> bool:
        return self.kind == "int"

    @property
    def is_string(self) -> bool:
        return self.kind == "string"

    @property
    def is_scalar(self) -> bool:
        """An integer or a pointer: a value in one register."""
        return self.kind in ("int", "ptr")

    @property
    def stringlike(self) -> bool:
        """A kernel char * or char[N] (convertible to a string by STRINGOF)."""
        return (self.kind in ("ptr", "array") and self.target is not None
                and self.target.kind == "int" and self.target.size == 1)

    def member(self, name: str):
        """(offset, DType, bit_size, bit_offset) of member name, or None."""
        if self.kind not in ("struct", "union") or self.ctype is None:
            return None
        m = self.ctype.member(name)
        if m is None:
            return None
        return m.offset, from_ctype(m.type), m.bit_size, m.bit_offset

    def member_names(self) -> list:
        if self.ctype is None:
            return []
        return [m.name for m in self.ctype.members if m.name]


def INT(size: int, signed: bool, name: str) -> DType:
    return DType("int", size, signed, name)


I64 = INT(8, True, "int64_t")
U64 = INT(8, False, "uint64_t")
INT32 = INT(4, True, "int")
STRING = DType("string", 0, False, "string")
VOID = DType("void", 0, False, "void")
CHAR = INT(1, True, "char")
CHARP = DType("ptr", 8, False, "char *", target=CHAR)

_INTS = {
    "char": (1, True), "signed char": (1, True), "unsigned char": (1, False),
    "short": (2, True), "short int": (2, True), "unsigned short": (2, False),
    "unsigned short int": (2, False), "int": (4, True), "signed": (4, True),
    "signed int": (4, True), "unsigned": (4, False), "unsigned int": (4, False),
    "long": (8, True), "long int": (8, True), "unsigned long": (8, False),
    "unsigned long int": (8, False), "long long": (8, True),
    "long long int": (8, True), "unsigned long long": (8, False),
    "unsigned long long int": (8, False),
    "int8_t": (1, True), "int16_t": (2, True), "int32_t": (4, True), "int64_t": (8, True),
    "uint8_t": (1, False), "uint16_t": (2, False), "uint32_t": (4, False),
    "uint64_t": (8, False), "u8": (1, False), "u16": (2, False), "u32": (4, False),
    "u64": (8, False), "i8": (1, True), "i16": (2, True), "i32": (4, True),
    "i64": (8, True), "size_t": (8, False), "ssize_t": (8, True),
    "uintptr_t": (8, False), "intptr_t": (8, True), "ptrdiff_t": (8, True),
    "bool": (1, False), "_Bool": (1, False),
}
INT_NAMES = frozenset(_INTS)


def parse_ctype(text: str, db=None) -> DType:
    """The DType of a C type name; KeyError naming it when unknown."""
    t = re.sub(r"\b(const|volatile|restrict)\b", " ", text)
    t = " ".join(t.replace("*", " * ").split())
    stars = 0
    while t.endswith("*"):
        stars += 1
        t = t[:-1].strip()
    if t == "string" and not stars:
        return STRING
    if t in _INTS:
        base = INT(*_INTS[t], t)
    elif t == "void":
        base = VOID
    elif db is not None:
        base = from_ctype(db.parse_type(t))
    else:
        raise KeyError(t)
    for _ in range(stars):
        base = pointer_to(base)
    return base


def pointer_to(t: DType) -> DType:
    name = f"{t.name} *" if not t.name.endswith("*") else f"{t.name}*"
    return DType("ptr", 8, False, name, target=t)


def from_ctype(ct) -> DType:
    """The DType of a dwarf.CType (members converted lazily by member())."""
    k = ct.kind
    if k in ("int", "enum", "bool"):
        return DType("int", ct.size or 4, bool(ct.signed) and k != "bool", ct.name or k)
    if k == "ptr":
        tgt = from_ctype(ct.target) if ct.target is not None else VOID
        return pointer_to(tgt) if not ct.name or ct.name.endswith("*") else \
            DType("ptr", 8, False, ct.name, target=tgt)
    if k == "array":
        el = from_ctype(ct.target)
        return DType("array", ct.size or el.size * (ct.count or 0), False,
                     ct.name or f"{el.name}[{ct.count}]", target=el, count=ct.count or 0)
    if k in ("struct", "union"):
        nm = ct.name or "<anonymous>"
        nm = nm if nm.startswith(k + " ") else f"{k} {nm}"
        return DType(k, ct.size, False, nm, ctype=ct)
    if k == "func":
        return DType("func", 0, False, ct.name or "function")
    return VOID


def promote(a: DType, b: DType) -> DType:
    """The C usual arithmetic conversion of two integer (or pointer) types."""
    if a.kind == "ptr":
        return a
    if b.kind == "ptr":
        return b
    a, b = int_of_width(a), int_of_width(b)
    sa, sb = a.size, b.size
    if sa != sb:
        big = a if sa > sb else b
        return INT(max(sa, sb), big.signed, big.name if big.size >= 4 else "int")
    if a.signed and b.signed:
        return a
    return INT(sa, False, "uint64_t" if sa == 8 else "unsigned int")


def int_of_width(t: DType) -> DType:
    """The integer promotion of t (C: types narrower than int become int)."""
    return INT32 if t.kind == "int" and t.size < 4 else t

# sym(addr) / func(pc): an address the consumer prints as a kernel symbol
# (ValType.ctype "sym": name+offset; "func": the function name alone).
SYM = INT(8, False, "sym")
FUNC = INT(8, False, "func")

# stack(N): the kernel stack at the probe.  Not a register value: its IR
# is a Const holding N (the frame cap), which only an aggregation key
# (TPUSH kind 2) or a record (RECK) consumes.
STACK = DType("stack", 8, False, "stack")
