"""The typed tree between sema and codegen.

sema.py resolves names, checks types and lowers the parser's AST to these
nodes: every name is bound (a VarInfo, an AggInfo, a builtin, a probe
argument), every expression carries its DType, implicit conversions are
explicit (Cast, ToString), pointer arithmetic is scaled, member access is
an address computation plus a Load.  codegen.py turns them into bytecode
without looking at names or the AST again.

Pure data: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from probes.dtypes import DType
from probes.program import Pos


# ------------------------------------------------------------------ symbols
@dataclass(eq=False)
class VarInfo:
    """A variable: scope is isa.Scope, kind isa.VarKind (string or int)."""
    name: str
    scope: int
    type: DType
    keys: list = field(default_factory=list)     # ASSOC: DType per key value
    pos: Pos | None = None


@dataclass(eq=False)
class AggInfo:
    name: str                   # without '@'; "" for the anonymous @
    func: int                   # isa.AggFunc
    keys: list                  # DType per key value
    lq: tuple | None = None     # (lo, hi, step)
    pos: Pos | None = None
    index: int = 0


# --------------------------------------------------------------- expressions
@dataclass(eq=False)
class Expr:
    t: DType
    pos: Pos | None


@dataclass(eq=False)
class Const(Expr):
    value: int = 0


@dataclass(eq=False)
class Str(Expr):
    value: bytes = b""


@dataclass(eq=False)
class BuiltinVar(Expr):
    which: int = 0              # isa.Builtin


@dataclass(eq=False)
class Arg(Expr):
    n: int = 0


@dataclass(eq=False)
class Var(Expr):
    var: VarInfo | None = None  # GLOBAL, THREAD or CLAUSE scope


@dataclass(eq=False)
class Assoc(Expr):
    var: VarInfo | None = None  # ASSOC scope
    keys: list = field(default_factory=list)


@dataclass(eq=False)
class Load(Expr):
    """An integer or pointer of t.size bytes read at addr + offset (safe
    load), extended per t.signed."""
    addr: Expr | None = None
    offset: int = 0


@dataclass(eq=False)
class Unary(Expr):
    op: str = "-"               # - ~ !
    a: Expr | None = None


@dataclass(eq=False)
class Binary(Expr):
    """Integer arithmetic or comparison; `signed` picks SDIV/ASHR/SLT...
    (for comparisons: the operands' common type)."""
    op: str = "+"
    a: Expr | None = None
    b: Expr | None = None
    signed: bool = False


@dataclass(eq=False)
class StrCmp(Expr):
    op: str = "=="              # == != < <= > >=
    a: Expr | None = None
    b: Expr | None = None


@dataclass(eq=False)
class Logical(Expr):
    op: str = "&&"              # && || ^^
    a: Expr | None = None
    b: Expr | None = None


@dataclass(eq=False)
class Cond(Expr):
    c: Expr | None = None
    a: Expr | None = None
    b: Expr | None = None


@dataclass(eq=False)
class Cast(Expr):
    """Truncate/extend a to t (an integer type of t.size bytes)."""
    a: Expr | None = None


@dataclass(eq=False)
class Call(Expr):
    helper: int = 0             # isa.Helper
    args: list = field(default_factory=list)


@dataclass(eq=False)
class Assign(Expr):
    """target = value (value already computes `target op rhs` for
    compound assignment); post: the expression's value is the old one."""
    target: Expr | None = None  # Var or Assoc
    value: Expr | None = None
    post: bool = False


# ---------------------------------------------------------------- statements
@dataclass(eq=False)
class ExprStmt:
    e: Expr
    pos: Pos | None = None


@dataclass(eq=False)
class If:
    cond: Expr
    then: list
    orelse: list
    pos: Pos | None = None


@dataclass(eq=False)
class Record:
    """RECB desc, then RECV/RECS for each value (strings by t), RECE."""
    desc: int
    values: list
    pos: Pos | None = None


@dataclass(eq=False)
class Aggregate:
    agg: AggInfo
    keys: list
    value: Expr | None          # None for count()
    pos: Pos | None = None


@dataclass(eq=False)
class Exit:
    code: Expr
    pos: Pos | None = None


@dataclass(eq=False)
class ClauseIR:
    predicate: Expr | None
    body: list
    pos: Pos | None = None
