"""Variables for sema: self->, this->, globals and associative arrays —
their declaration by first assignment (types fixed there), key tuples,
reads, and every kind of assignment (=, op=, ++/--, with D's implicit
int for `x++`/`a[k] += v` on a variable not yet assigned).

`VarsMixin` is part of sema.Sema (it uses its error(), expr(), ident(),
builtin(), binary() and to_string()).  Pure: no I/O.
"""
from __future__ import annotations

from probes import ir, isa
from probes.dtypes import I64, INT32, STRING, DType
from probes.semaexpr import const


def _kind(t) -> str:
    """A key's kind as tuples encode it: int, string or stack."""
    return "string" if t.is_string else "stack" if t.kind == "stack" else "int"


class VarsMixin:
    """Variables and assignments (mixed into sema.Sema)."""

    def scoped(self, scope: int, name: str, pos):
        v = self.vars.get((scope, name))
        if v is None:
            prefix = "self->" if scope == isa.Scope.THREAD else "this->"
            self.error(pos, f"{prefix}{name} is used before any assignment to it",
                       f"assign it first, e.g. {prefix}{name} = 0")
            return None
        return ir.Var(v.type, pos, var=v)

    def declare(self, scope: int, name: str, value, pos, keys=()):
        """The VarInfo of name in scope, created from the value's type on
        first assignment; None (after an error) if the types conflict."""
        vt = STRING if value.t.is_string else \
            value.t if value.t.kind == "ptr" else DType("int", 8, value.t.signed,
                                                       "int64_t" if value.t.signed else "uint64_t")
        v = self.vars.get((scope, name))
        if v is None:
            v = ir.VarInfo(name, scope, vt, [k.t for k in keys], pos)
            self.vars[(scope, name)] = v
            return v
        if v.type.is_string != vt.is_string:
            self.error(pos, f"{name} holds {self.tdesc(v.type)} but is assigned "
                            f"{self.tdesc(vt)}", self.first_at(v))
            return None
        return v

    def first_at(self, v) -> str:
        p = v.pos
        return f"its type was fixed at line {p.line}, column {p.col}" if p else ""

    def keys(self, nodes, what: str):
        out = []
        for k in nodes:
            e = self.expr(k)
            if e is None:
                return None
            if e.t.stringlike:
                e = self.to_string(e, f"a key of {what}")
            elif e.t.kind == "stack" and not what.startswith("@"):
                self.error(e.pos, f"stack() can key an aggregation, not {what}",
                           "e.g. @[stack()] = count();")
                return None
            elif not (e.t.is_scalar or e.t.is_string or e.t.kind == "stack"):
                self.error(e.pos, f"a key of {what} must be an integer or a string, "
                                  f"not {self.tdesc(e.t)}")
                return None
            out.append(e)
        if len(out) > isa.MAX_TUPLE:
            self.error(out[isa.MAX_TUPLE].pos, f"{what} has {len(out)} keys, over the "
                                               f"VM's cap of {isa.MAX_TUPLE}")
            return None
        return out

    def check_keys(self, what, have: list, keys: list, pos, first) -> bool:
        if len(have) != len(keys) or any(_kind(a) != _kind(b.t)
                                         for a, b in zip(have, keys)):
            want = ", ".join(_kind(t) for t in have) or "none"
            got = ", ".join(_kind(k.t) for k in keys) or "none"
            self.error(pos, f"{what} is keyed by [{want}] but used with [{got}]",
                       self.first_at(first))
            return False
        return True

    def is_plain_name(self, name: str) -> bool:
        """True if name is a builtin or a scalar global (indexing it is
        pointer/array indexing, not an associative array)."""
        return self.builtin(name, None) is not None or \
            (isa.Scope.GLOBAL, name) in self.vars

    def assoc_load(self, name, keynodes, pos):
        v = self.vars.get((isa.Scope.ASSOC, name))
        keys = self.keys(keynodes, name)
        if keys is None:
            return None
        if v is None:
            self.error(pos, f"associative array {name} is used before any assignment to it",
                       f"assign it first, e.g. {name}[...] = 0")
            return None
        if not self.check_keys(name, v.keys, keys, pos, v):
            return None
        return ir.Assoc(v.type, pos, var=v, keys=keys)

    def x_Assign(self, n):
        pos, op = self.pos(n), n.op
        value = self.expr(n.value)
        if value is None:
            return None
        if op != "=":
            self.implicit_int(n.target)
            cur = self.expr(n.target)
            value = self.binary(op[:-1], cur, value, pos)
            if value is None:
                return None
        return self.store(n.target, value, pos, post=False)

    def incdec(self, n):
        self.implicit_int(n.operand)
        cur = self.expr(n.operand)
        value = self.binary("+" if n.op == "++" else "-", cur, const(INT32, 1, self.pos(n)),
                            self.pos(n))
        return None if value is None else self.store(n.operand, value, self.pos(n),
                                                     post=n.postfix)

    def implicit_int(self, target) -> None:
        """`x += v`, `x++`, `a[k]++` on a variable not yet assigned declare
        it as an int64_t starting at 0 (D's unset variables read as 0)."""
        kind = type(target).__name__
        scope = {"Ident": isa.Scope.GLOBAL, "SelfVar": isa.Scope.THREAD,
                 "ThisVar": isa.Scope.CLAUSE}.get(kind)
        keys = []
        if kind == "Assoc" and not self.is_plain_name(target.name):
            scope = isa.Scope.ASSOC
            mark = len(self.errors)
            keys = self.keys(target.keys, target.name)
            del self.errors[mark:]          # the read that follows reports them
            if keys is None:
                return
        if scope is None or (scope, target.name) in self.vars:
            return
        if scope == isa.Scope.GLOBAL and self.is_plain_name(target.name):
            return
        self.vars[(scope, target.name)] = ir.VarInfo(target.name, scope, I64,
                                                     [k.t for k in keys], self.pos(target))

    def store(self, target, value, pos, post: bool):
        if value.t.stringlike:
            value = self.to_string(value, "the value")
        if value is None or not (value.t.is_scalar or value.t.is_string):
            if value is not None:
                self.error(pos, f"cannot store {self.tdesc(value.t)} in a variable")
            return None
        kind = type(target).__name__
        scope = {"Ident": isa.Scope.GLOBAL, "SelfVar": isa.Scope.THREAD,
                 "ThisVar": isa.Scope.CLAUSE}.get(kind)
        if scope is not None:
            if scope == isa.Scope.GLOBAL and self.builtin(target.name, pos) is not None:
                self.error(pos, f"cannot assign to the builtin '{target.name}'")
                return None
            v = self.declare(scope, target.name, value, pos)
            return v and ir.Assign(v.type, pos, target=ir.Var(v.type, pos, var=v),
                                   value=value, post=post)
        if kind == "Assoc" and not self.is_plain_name(target.name):
            keys = self.keys(target.keys, target.name)
            if keys is None:
                return None
            v = self.declare(isa.Scope.ASSOC, target.name, value, pos, keys)
            if v is None or not self.check_keys(target.name, v.keys, keys, pos, v):
                return None
            return ir.Assign(v.type, pos, target=ir.Assoc(v.type, pos, var=v, keys=keys),
                             value=value, post=post)
        self.error(pos, "only variables (x, self->x, this->x, a[k]) can be assigned",
                   "kernel memory is read-only to D scripts")
        return None
