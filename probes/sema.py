"""Semantic analysis: resolve and type-check a parsed script and lower it to
the typed tree (probes/ir.py) codegen consumes.

    analyze(script, probes, types=None, strsize=256, filename="-") -> Analysis

* probe descriptions are matched against the probe table (probematch.py);
  one that matches nothing is an error naming the closest probes;
* names: builtins, args[N] typed from the probe's argument C types,
  globals declared by their first assignment (int or string, or the
  pointer type assigned), self-> and this-> variables, associative arrays
  (key arity and types fixed by the first use), aggregations (function,
  key types and lquantize bounds fixed by the first use), backquoted
  kernel symbols and enum constants from the kernel's DWARF (`types`);
* every error is collected with its position and a hint; the caller
  (compiler.py) raises them together.

Operators and kernel memory are in semaexpr.py, variables and assignments
in semavars.py, D's functions and actions in actions.py (mixins and
helpers of the one Sema class).
The AST (probes/ast.py) is walked by node class name (x_<Class> methods
for expressions, stmt() for statements).
Pure: no I/O.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from probes import actions, ir, isa, probematch
from probes.dtypes import (I64, INT32, STRING, U64, DType, parse_ctype)
from probes.program import AggDesc, Clause, Pos, RecDesc
from probes.semaexpr import ExprMixin, const, fold, lit_type
from probes.semavars import VarsMixin

B = isa.Builtin
BUILTINS = {"timestamp": (B.TIMESTAMP, U64), "vtimestamp": (B.VTIMESTAMP, U64),
            "walltimestamp": (B.WALLTIMESTAMP, U64), "tid": (B.TID, U64),
            "cpu": (B.CPU, U64), "curthread": (B.CURTHREAD, U64),
            "thread": (B.THREAD, STRING), "probeprov": (B.PROBEPROV, STRING),
            "probemod": (B.PROBEMOD, STRING), "probefunc": (B.PROBEFUNC, STRING),
            "probename": (B.PROBENAME, STRING), "id": (B.PROBEID, U64),
            "epid": (B.EPID, U64)}


@dataclass
class Diag:
    """One semantic error (compiler.py renders it through probes/diag.py)."""
    pos: Pos | None
    message: str
    hints: list = field(default_factory=list)


@dataclass
class Analysis:
    clauses: list               # ir.ClauseIR
    program_clauses: list       # program.Clause (start/lines filled by the compiler)
    variables: list             # ir.VarInfo
    aggs: list                  # ir.AggInfo
    aggdescs: list              # program.AggDesc
    recdescs: list              # program.RecDesc
    enablings: list             # (clause index, probe id, arg)
    errors: list                # Diag


class Sema(ExprMixin, VarsMixin):
    def __init__(self, probes: list, types=None, strsize: int = 256, filename: str = "-"):
        self.probes, self.types, self.strsize = list(probes), types, strsize
        self.filename = filename
        self.errors: list = []
        self.vars: dict = {}            # (scope, name) -> VarInfo
        self.aggs: dict = {}            # name -> AggInfo
        self.recdescs: list = []
        self.curthread_t = None

    # ------------------------------------------------------------ helpers
    def error(self, pos, message: str, hint: str = "") -> None:
        self.errors.append(Diag(pos, message, [hint] if hint else []))

    def did_you_mean(self, name: str, candidates) -> str:
        close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
        return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""

    def tdesc(self, t: DType) -> str:
        return "a string" if t.is_string else f"'{t}'"

    def recdesc(self, kind, vals, fmt, agg, pos) -> int:
        self.recdescs.append(RecDesc(len(self.recdescs), kind, list(vals), fmt, agg, pos))
        return len(self.recdescs) - 1

    def to_string(self, e, what):
        return actions.as_string(self, e, what)

    # ------------------------------------------------------------ clauses
    def script(self, script) -> Analysis:
        out_ir, out_cl, enablings = [], [], []
        for node in self.clauses_of(script):
            idx = len(out_ir)
            self.locals_seen: set = set()
            probes, descs = self.describe(node, idx, enablings)
            self.clause_probes = probes
            pred = self.expr(node.predicate) if node.predicate is not None else None
            if pred is not None and not self.truth(pred):
                pred = None
            body = self.stmts(node.body or [])
            if not node.body:               # no braces, or `{}`: DTrace's default action
                body = [ir.Record(self.recdesc("default", [], None, None, self.pos(node)), [],
                                  self.pos(node))]
            out_ir.append(ir.ClauseIR(pred, body, self.pos(node)))
            out_cl.append(Clause(idx, descs, [p for p, _ in probes], self.pos(node)))
        aggs = sorted(self.aggs.values(), key=lambda a: a.index)
        aggdescs = [AggDesc(a.index, a.name, a.func, [actions.valtype(k) for k in a.keys],
                            a.lq, a.pos) for a in aggs]
        return Analysis(out_ir, out_cl, list(self.vars.values()), aggs, aggdescs,
                        self.recdescs, enablings, self.errors)

    def describe(self, node, idx: int, enablings: list):
        probes, descs = [], []
        for d in self.descriptions_of(node):
            text, pos = d
            descs.append(text)
            try:
                found = probematch.match(text, self.probes)
            except ValueError as e:
                self.error(pos, str(e), "e.g. tick-1ms, tick-10s, tick-100hz or "
                                        "profile-997 (units: ns us ms s hz; none means hz)")
                continue
            if not found:
                close = probematch.closest(text, self.probes)
                self.error(pos, f"probe description {text} does not match any probe",
                           f"did you mean {' or '.join(close)}?" if close else
                           "list the probes with: unik trace -l")
            for p, arg in found:
                if (p.id, arg) not in [(q.id, a) for q, a in probes]:
                    probes.append((p, arg))
                    enablings.append((idx, p.id, arg))
        return probes, descs

    # ------------------------------------------------------------ names
    def builtin(self, name: str, pos):
        if name == "probename":
            names = {p.name for p, _ in getattr(self, "clause_probes", [])
                     if p.id in (isa.SynthProbe.TICK, isa.SynthProbe.PROFILE)}
            if len(names) == 1 and len(self.clause_probes) == 1:
                # the kernel's tick (profile) probe is just "tick"
                # ("profile"): name it as written
                return ir.Str(STRING, pos, value=names.pop().encode())
        if name in BUILTINS:
            which, t = BUILTINS[name]
            if name == "curthread" and self.types is not None:
                t = self.ctype_quiet("struct thread *") or t
            return ir.BuiltinVar(t, pos, which=which)
        if len(name) == 4 and name.startswith("arg") and name[3].isdigit():
            return ir.Arg(U64, pos, n=int(name[3]))
        if name == "retval":
            return self.retval(pos)
        return None

    def retval(self, pos):
        """retval: an fbt return probe's value (arg1), typed by the
        function's return type as args[1] is."""
        probes = [p for p, _ in getattr(self, "clause_probes", [])]
        if not probes or any(p.provider != "fbt" or p.name != "return" for p in probes):
            self.error(pos, "retval exists only at fbt return probes",
                       "enable the clause on fbt::FUNC:return only")
            return None
        if any(len(p.args) < 2 for p in probes):
            self.error(pos, "retval of a function that returns void",
                       "arg1 is the raw rax, if you want it")
            return None
        return self.typed_arg(1, pos)

    def ctype_quiet(self, name: str):
        try:
            return parse_ctype(name, self.types)
        except KeyError:
            return None

    def typed_arg(self, n: int, pos):
        """args[n]: typed by the probes the clause is enabled on (they must agree)."""
        types = set()
        for p, _ in self.clause_probes:
            if n < len(p.args):
                types.add(p.args[n][0])
        if len(types) > 1:
            self.error(pos, f"args[{n}] has different types on the probes of this clause: "
                            f"{', '.join(sorted(types))}", "use arg" + str(n) + " instead")
            return None
        if not types:
            self.error(pos, f"args[{n}] does not exist on the probes of this clause",
                       "list the arguments with: unik trace -lv")
            return None
        tname = types.pop()
        try:
            t = parse_ctype(tname, self.types)
        except KeyError:
            self.error(pos, f"args[{n}] has type '{tname}', unknown without the kernel's "
                            f"DWARF", f"use arg{n}, or cast it")
            return None
        if t.is_string:
            # a `string` argument is the address of a kernel string: a
            # char * that STRINGOF copies wherever a string is wanted
            t = parse_ctype("char *", None)
        if t.stringlike:
            return ir.Arg(t, pos, n=n)
        return ir.Arg(t if t.kind in ("int", "ptr") else U64, pos, n=n)

    def ident(self, name: str, pos):
        e = self.builtin(name, pos)
        if e is not None:
            return e
        v = self.vars.get((isa.Scope.GLOBAL, name))
        if v is not None:
            return ir.Var(v.type, pos, var=v)
        if self.types is not None:
            en = self.types.enumerator(name)
            if en is not None:
                return const(INT32 if -(1 << 31) <= en[0] < (1 << 31) else I64, en[0], pos)
        cands = list(BUILTINS) + [n for (s, n) in self.vars if s == isa.Scope.GLOBAL]
        self.error(pos, f"unknown variable '{name}'",
                   self.did_you_mean(name, cands) or
                   "a variable is declared by assigning to it first")
        return None

    # ------------------------------------------------------------ AST binding
    # The parser's nodes (probes/ast.py) are read through these accessors
    # and the x_<Class> methods below: the only code that names them.
    def clauses_of(self, script):
        return script.clauses

    def descriptions_of(self, node):
        return [(d.text, self.pos(d)) for d in node.descriptions]

    def pos(self, node) -> Pos | None:
        return getattr(node, "pos", None)

    # ------------------------------------------------------------ statements
    def stmts(self, nodes) -> list:
        out = []
        for n in nodes:
            out += self.stmt(n)
        return out

    def stmt(self, n) -> list:
        kind = type(n).__name__
        if kind == "If":
            c = self.expr(n.cond)
            then, orelse = self.stmts(n.then), self.stmts(n.else_ or [])
            return [ir.If(c, then, orelse, self.pos(n))] if c is not None and \
                self.truth(c) else []
        if kind == "Block":
            return self.stmts(n.body)
        if kind == "ExprStmt":
            n = n.expr
        if type(n).__name__ == "AggAssign":
            return self.aggregation(n)
        if type(n).__name__ == "Call" and n.name in actions.ACTIONS:
            return actions.action_call(self, n.name, self.call_args(n), self.pos(n))
        e = self.expr(n)
        return [ir.ExprStmt(e, self.pos(n))] if e is not None else []

    def call_args(self, n) -> list:
        out = []
        for i, a in enumerate(n.args):
            if i == 0 and n.name in ("printf", "printa") and type(a).__name__ == "StrLit":
                out.append(ir.Str(STRING, self.pos(a), value=a.value))  # stays on the host
            elif type(a).__name__ == "AggRef":
                agg = self.aggs.get(a.name)
                if agg is None:
                    self.error(self.pos(a), f"unknown aggregation @{a.name}",
                               self.did_you_mean(a.name, self.aggs) or
                               "an aggregation exists once a clause assigns to it")
                out.append(actions.AggRef(agg, self.pos(a)))
            else:
                out.append(self.expr(a))
        return out

    def aggregation(self, n) -> list:
        pos, fpos, fname = self.pos(n), n.func_pos, n.func
        if not fname:
            return []                   # the parser reported the missing function
        if fname not in actions.AGG_FUNCS:
            self.error(fpos, f"{fname}() is not an aggregating function",
                       "one of: " + ", ".join(f"{f}()" for f in actions.AGG_FUNCS))
            return []
        keys = self.keys(n.keys or [], f"@{n.name}")
        args = [self.expr(a) for a in n.args]
        if keys is None or None in args:
            return []
        r = actions.agg_call(self, fname, args, fpos, fold)
        if r is None:
            return []
        func, value, lq = r
        agg = self.aggs.get(n.name)
        if agg is None:
            agg = ir.AggInfo(n.name, func, [k.t for k in keys], lq, pos, len(self.aggs))
            if agg.index >= isa.MAX_AGGS:
                self.error(pos, f"more than {isa.MAX_AGGS} aggregations")
                return []
            self.aggs[n.name] = agg
        elif agg.func != func or agg.lq != lq:
            self.error(fpos, f"@{n.name} is {_aggname(agg)} but is used with "
                             f"{fname}()", self.first_at(agg))
            return []
        elif not self.check_keys(f"@{n.name}", agg.keys, keys, pos, agg):
            return []
        return [ir.Aggregate(agg, keys, value, pos)]

    # ------------------------------------------------------------ expressions
    def expr(self, n):
        return getattr(self, "x_" + type(n).__name__)(n)

    def x_IntLit(self, n):
        return const(lit_type(n.value), n.value, self.pos(n))

    def x_StrLit(self, n):
        v = n.value.encode() if isinstance(n.value, str) else n.value
        if len(v) >= self.strsize:
            self.error(self.pos(n), f"string literal of {len(v)} bytes does not fit "
                                    f"strsize {self.strsize}", "raise option strsize")
        return ir.Str(STRING, self.pos(n), value=v)

    def x_Ident(self, n):
        return self.ident(n.name, self.pos(n))

    def x_Backquote(self, n):
        return self.kernel_symbol(n.symbol, self.pos(n))

    def x_SelfVar(self, n):
        return self.scoped(isa.Scope.THREAD, n.name, self.pos(n))

    def x_ThisVar(self, n):
        return self.scoped(isa.Scope.CLAUSE, n.name, self.pos(n))

    def x_Binary(self, n):
        return self.binary(n.op, self.expr(n.lhs), self.expr(n.rhs), self.pos(n))

    def x_Unary(self, n):
        if n.op in ("++", "--"):
            return self.incdec(n)
        return self.unary(n.op, self.expr(n.operand), self.pos(n))

    def x_Ternary(self, n):
        c, a, b = self.expr(n.cond), self.expr(n.then), self.expr(n.else_)
        if None in (c, a, b) or not self.truth(c):
            return None
        if a.t.is_string or b.t.is_string:
            a, b = self.to_string(a, "the ?: branch"), self.to_string(b, "the ?: branch")
            return None if a is None or b is None else ir.Cond(STRING, self.pos(n), c=c, a=a, b=b)
        if not (self.need_int(a, "?: branch") and self.need_int(b, "?: branch")):
            return None
        from probes.dtypes import promote
        return ir.Cond(promote(a.t, b.t), self.pos(n), c=c, a=a, b=b)

    def x_Cast(self, n):
        return self.cast(n.type.text, self.expr(n.expr), self.pos(n))

    def x_SizeofType(self, n):
        t = self.ctype(n.type.text, self.pos(n))
        return self.sizeof(t, self.pos(n)) if t is not None else None

    def x_SizeofExpr(self, n):
        e = self.expr(n.expr)
        return self.sizeof(e.t, self.pos(n)) if e is not None else None

    def x_Member(self, n):
        return self.member(self.expr(n.expr), n.name, n.arrow, self.pos(n))

    def x_Assoc(self, n):
        pos = self.pos(n)
        if n.name == "args":
            k = n.keys[0] if len(n.keys) == 1 else None
            v = fold(self.expr(k)) if k is not None else None
            if v is None or v < 0:
                self.error(pos, "args[] takes one non-negative integer constant index",
                           "e.g. args[0]; arg0..arg5 are the untyped values")
                return None
            return self.typed_arg(v, pos)
        if self.is_plain_name(n.name):
            b = self.ident(n.name, pos)
            if b is None or len(n.keys) != 1:
                if b is not None:
                    self.error(pos, f"{n.name} is not an associative array: it takes "
                                    f"one index")
                return None
            return self.index_pointer(b, self.expr(n.keys[0]), pos)
        return self.assoc_load(n.name, n.keys, pos)

    def x_Index(self, n):
        b = self.expr(n.expr)
        i = self.expr(n.index)
        if b is None or i is None:
            return None
        return self.index_pointer(b, i, self.pos(n))

    def x_AggRef(self, n):
        what = f"@{n.name}" + ("[...]" if n.keys is not None else "")
        self.error(self.pos(n), f"{what} cannot be used as a value",
                   "aggregations are written (@a[k] = count()) and printed "
                   "(printa(@a)), not read")
        return None

    def x_AggAssign(self, n):
        self.error(self.pos(n), "an aggregation assignment is a statement, not a value",
                   f"write it on its own: @{n.name} = {n.func or 'count'}(...);")
        return None

    def x_Call(self, n):
        if n.name in actions.VALUE_FUNCS:
            return actions.value_call(self, n.name, self.call_args(n), self.pos(n))
        if n.name in actions.ACTIONS or n.name in actions.AGG_FUNCS:
            self.error(self.pos(n), f"{n.name}() is an action, not a value",
                       "use it as a statement" if n.name in actions.ACTIONS else
                       f"assign it to an aggregation: @x = {n.name}(...)")
            return None
        self.error(getattr(n, "name_pos", None) or self.pos(n), f"unknown function {n.name}()",
                   self.did_you_mean(n.name, actions.VALUE_FUNCS + actions.ACTIONS))
        return None

def _aggname(agg) -> str:
    return f"{isa.AggFunc(agg.func).name.lower()}()"


def analyze(script, probes, types=None, strsize: int = 256, filename: str = "-") -> Analysis:
    """Resolve and type-check script (see the module doc)."""
    return Sema(probes, types, strsize, filename).script(script)
