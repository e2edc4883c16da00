"""Expressions for sema: operators, kernel memory (backquoted symbols,
member access, dereference, indexing), casts and sizeof, lowered to the
typed tree with C's integer rules (probes/dtypes.py promote).

An expression whose type is a struct, union or array is represented by its
address (the kernel object is not loaded); reading a scalar out of it is a
Load.  `ExprMixin` is part of sema.Sema; helper functions here are pure.
"""
from __future__ import annotations

from probes import ir
from probes.dtypes import (I64, INT32, U64, DType, int_of_width, parse_ctype,
                           pointer_to, promote)

_ARITH = {"+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"}
_CMP = {"==", "!=", "<", "<=", ">", ">="}
_LOGIC = {"&&", "||", "^^"}
M64 = (1 << 64) - 1


def fold(e):
    """The integer value of a constant expression, or None."""
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.Cast) and e.t.is_int:
        v = fold(e.a)
        return None if v is None else normalize(v, e.t)
    if isinstance(e, ir.Unary):
        v = fold(e.a)
        if v is None:
            return None
        return normalize({"-": -v, "~": ~v, "!": int(v == 0)}[e.op], e.t)
    if isinstance(e, ir.Binary) and e.op in _ARITH | _CMP:
        a, b = fold(e.a), fold(e.b)
        if a is None or b is None:
            return None
        return _fold_binary(e, a, b)
    return None


def _fold_binary(e, a, b):
    if e.op in ("/", "%") and b == 0:
        return None                     # leave it to fault at run time
    if not e.signed:
        a, b = a & M64, b & M64
    r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
         "/": lambda: abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1),
         "%": lambda: a - abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1) * b,
         "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b,
         "<<": lambda: a << (b & 63), ">>": lambda: a >> (b & 63),
         "==": lambda: int(a == b), "!=": lambda: int(a != b), "<": lambda: int(a < b),
         "<=": lambda: int(a <= b), ">": lambda: int(a > b),
         ">=": lambda: int(a >= b)}[e.op]()
    return normalize(r, e.t) if e.op not in _CMP else r


def normalize(v: int, t: DType) -> int:
    """v truncated to t's width and extended per its signedness."""
    bits = 8 * (t.size if t.kind == "int" else 8)
    v &= (1 << bits) - 1
    if t.signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def const(t: DType, v: int, pos) -> ir.Const:
    return ir.Const(t, pos, value=normalize(v, t))


def lit_type(v: int) -> DType:
    """C's type of an integer literal (int, then int64_t, then uint64_t)."""
    if -(1 << 31) <= v < (1 << 31):
        return INT32
    return I64 if v < (1 << 63) else U64


class ExprMixin:
    """Operators and memory access (mixed into sema.Sema)."""

    def binary(self, op: str, a, b, pos):
        if a is None or b is None:
            return None
        if op in _LOGIC:
            if not (self.truth(a) and self.truth(b)):
                return None
            return ir.Logical(INT32, pos, op=op, a=a, b=b)
        if op in _CMP and (a.t.is_string or b.t.is_string):
            return self.strcmp(op, a, b, pos)
        for x in (a, b):
            if not x.t.is_scalar:
                hint = "use strjoin() to join strings" if op == "+" and x.t.is_string else ""
                self.error(x.pos, f"operator {op} needs integer operands, not "
                                  f"{self.tdesc(x.t)}", hint)
                return None
        if op in _CMP:
            t = promote(a.t, b.t)
            return self.folded(ir.Binary(INT32, pos, op=op, a=a, b=b,
                                         signed=t.signed and t.kind == "int"))
        if op in ("+", "-") and (a.t.kind == "ptr" or b.t.kind == "ptr"):
            return self.ptr_arith(op, a, b, pos)
        if op in ("/", "%") and fold(b) == 0:
            self.error(b.pos, "division by zero" if op == "/" else "modulo by zero",
                       "the divisor is the constant 0")
            return None
        t = int_of_width(a.t) if op in ("<<", ">>") else promote(a.t, b.t)
        if t.kind == "ptr":
            t = U64
        return self.folded(ir.Binary(t, pos, op=op, a=a, b=b, signed=t.signed))

    def folded(self, e):
        v = fold(e)
        return const(e.t, v, e.pos) if v is not None else e

    def ptr_arith(self, op, a, b, pos):
        if a.t.kind == "ptr" and b.t.kind == "ptr":
            if op == "+":
                self.error(pos, "cannot add two pointers")
                return None
            size = max(a.t.target.size, 1) if a.t.target else 1
            diff = ir.Binary(I64, pos, op="-", a=a, b=b, signed=True)
            return self.folded(ir.Binary(I64, pos, op="/", a=diff,
                                         b=const(I64, size, pos), signed=True))
        p, i = (a, b) if a.t.kind == "ptr" else (b, a)
        if op == "-" and p is b:
            self.error(pos, "cannot subtract a pointer from an integer")
            return None
        size = max(p.t.target.size, 1) if p.t.target and p.t.target.kind != "void" else 1
        off = self.folded(ir.Binary(I64, pos, op="*", a=i, b=const(I64, size, pos),
                                    signed=True))
        return self.folded(ir.Binary(p.t, pos, op=op, a=p, b=off, signed=False))

    def strcmp(self, op, a, b, pos):
        sa = self.to_string(a, f"the left operand of {op}")
        sb = self.to_string(b, f"the right operand of {op}")
        if sa is None or sb is None:
            return None
        return ir.StrCmp(INT32, pos, op=op, a=sa, b=sb)

    def truth(self, e) -> bool:
        if e.t.is_scalar:
            return True
        self.error(e.pos, f"a condition must be an integer or a pointer, not "
                          f"{self.tdesc(e.t)}",
                   "compare strings explicitly, e.g. s != \"\"" if e.t.is_string else "")
        return False

    def unary(self, op: str, a, pos):
        if a is None:
            return None
        if op == "*":
            return self.deref(a, 0, pos)
        if op == "&":
            if a.t.kind in ("struct", "union", "array"):
                return self.retype(a, pointer_to(a.t))
            if isinstance(a, ir.Load):
                return self.folded(ir.Binary(pointer_to(a.t), pos, op="+", a=a.addr,
                                             b=const(I64, a.offset, pos)))
            self.error(pos, "can only take the address of kernel memory")
            return None
        if op == "+":
            return a if self.need_int(a, "operand of unary +") else None
        if op == "!":
            return self.folded(ir.Unary(INT32, pos, op="!", a=a)) if self.truth(a) else None
        if not self.need_int(a, f"operand of {op}"):
            return None
        return self.folded(ir.Unary(int_of_width(a.t) if a.t.kind == "int" else U64,
                                    pos, op=op, a=a))

    def need_int(self, e, what) -> bool:
        if e.t.is_scalar:
            return True
        self.error(e.pos, f"the {what} must be an integer, not {self.tdesc(e.t)}")
        return False

    def retype(self, e, t: DType):
        """The same value seen as type t."""
        return ir.Cast(t, e.pos, a=e) if not isinstance(e, ir.Const) else \
            ir.Const(t, e.pos, value=e.value)

    def deref(self, p, index, pos):
        """The object p points to (or element index of array/pointer p)."""
        if p.t.kind not in ("ptr", "array") or p.t.target is None:
            self.error(p.pos, f"cannot dereference {self.tdesc(p.t)}")
            return None
        el = p.t.target
        if el.kind in ("void", "func"):
            self.error(pos, f"cannot dereference '{p.t}'",
                       "cast it first, e.g. *(uint64_t *)addr")
            return None
        addr = p if index == 0 else self.ptr_arith("+", self.retype(p, pointer_to(el)),
                                                   index, pos)
        if addr is None:
            return None
        return self.object_at(addr, el, pos)

    def object_at(self, addr, t: DType, pos):
        """The kernel object of type t at address addr: a Load for scalars,
        the address itself (typed t) for aggregates."""
        if t.is_scalar:
            if t.size not in (1, 2, 4, 8):
                self.error(pos, f"cannot load a {t.size}-byte '{t}'")
                return None
            return ir.Load(t, pos, addr=addr, offset=0)
        if t.kind in ("struct", "union", "array"):
            return self.retype(addr, t)
        self.error(pos, f"cannot read a value of type '{t}'")
        return None

    def member(self, base, name: str, arrow: bool, pos):
        if base is None:
            return None
        if arrow:
            if base.t.kind != "ptr" or base.t.target is None or \
                    base.t.target.kind not in ("struct", "union"):
                self.error(base.pos, f"operator -> needs a pointer to a struct or union, "
                                     f"not {self.tdesc(base.t)}",
                           "use '.' on a struct" if base.t.kind in ("struct", "union") else "")
                return None
            st = base.t.target
        else:
            if base.t.kind not in ("struct", "union"):
                self.error(base.pos, f"operator . needs a struct or union, not "
                                     f"{self.tdesc(base.t)}",
                           "use '->' on a pointer" if base.t.kind == "ptr" else "")
                return None
            st = base.t
        m = st.member(name)
        if m is None:
            self.error(pos, f"'{st}' has no member '{name}'",
                       self.did_you_mean(name, st.member_names()))
            return None
        off, mt, bits, _ = m
        if bits:
            self.error(pos, f"member '{name}' of '{st}' is a bitfield, which D here "
                            f"cannot read", "read the containing word with a cast")
            return None
        addr = self.folded(ir.Binary(U64, pos, op="+", a=self.retype(base, U64),
                                     b=const(I64, off, pos)))
        return self.object_at(addr, mt, pos)

    def index_pointer(self, base, idx, pos):
        if not self.need_int(idx, "array index"):
            return None
        return self.deref(base, idx, pos)

    def cast(self, tname: str, a, pos):
        t = self.ctype(tname, pos)
        if t is None or a is None:
            return None
        if t.is_string:
            return self.to_string(a, "the operand of (string)")
        if t.kind not in ("int", "ptr"):
            self.error(pos, f"cannot cast to '{t}'", "cast to an integer or pointer type")
            return None
        if not a.t.is_scalar and a.t.kind not in ("array",):
            self.error(a.pos, f"cannot cast {self.tdesc(a.t)} to '{t}'")
            return None
        return self.folded(ir.Cast(t, pos, a=a))

    def ctype(self, tname: str, pos):
        """The DType of a type name in the script; None after an error."""
        try:
            return parse_ctype(tname, self.types)
        except KeyError:
            hint = "" if self.types is not None else \
                "kernel types need the kernel's DWARF (run against a built kernel)"
            if self.types is not None:
                hint = self.did_you_mean(tname, self.types.type_names())
            self.error(pos, f"unknown type '{tname}'", hint)
            return None

    def kernel_symbol(self, name: str, pos):
        found = self.types.global_var(name) if self.types is not None else None
        if found is None:
            names = self.types.global_names() if self.types is not None else []
            self.error(pos, f"unknown kernel symbol `{name}",
                       self.did_you_mean(name, names) if names else
                       "kernel symbols need the kernel's DWARF")
            return None
        addr, ct = found
        from probes.dtypes import from_ctype
        return self.object_at(const(U64, addr, pos), from_ctype(ct), pos)

    def sizeof(self, t: DType, pos):
        if t.kind in ("void", "func") or (t.kind == "string"):
            size = self.strsize if t.kind == "string" else 0
            if not size:
                self.error(pos, f"sizeof of '{t}' is not defined")
                return None
            return const(U64, size, pos)
        return const(U64, t.size, pos)
