"""The parsed D script: plain dataclass nodes, produced by probes/parser.py
and consumed by probes/sema.py.

Every node carries `pos` (probes.program.Pos: file, 1-based line and column,
length of the source span it covers) so any later pass can point a caret at
it.  Nodes are data only; the few methods are read-only helpers.
`probes/astfmt.py` prints any node back as fully parenthesised D.

Name resolution rules the parser applies (sema completes them):
* `x[k1, k2]` with `x` a plain identifier is always `Assoc(name, keys)` —
  including `args[0]` (sema knows `args` is the typed argument array);
  `e[i]` on any other expression (`self->buf[1]`, `p->a[2]`) is `Index`.
* `@name[k] = f(a)` is `AggAssign`; a bare `@name` (in printa, clear,
  trunc, normalize ...) is `AggRef`; `@` alone is the anonymous aggregation
  with name "".
* `++x` / `x++` are `Unary` with op "++"/"--" and `postfix` telling which.
Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from probes.program import Pos

NOPOS = Pos("-", 0, 0, 0)


class Node:
    """Base of every AST node (gives isinstance checks one root)."""
    pos: Pos


class Expr(Node):
    """Base of expression nodes."""


class Stmt(Node):
    """Base of statement nodes."""


# ------------------------------------------------------------------ script
@dataclass
class Pragma(Node):
    """`#pragma D option NAME[=VALUE]`; value is None when no '=' was given."""
    name: str
    value: str | None
    pos: Pos = NOPOS


@dataclass
class ProbeDesc(Node):
    """One probe description as written (`text`) and its four fields,
    each a glob ('' = empty, matches anything as DTrace does)."""
    text: str
    provider: str = ""
    module: str = ""
    function: str = ""
    name: str = ""
    pos: Pos = NOPOS

    @property
    def fields(self) -> tuple:
        return (self.provider, self.module, self.function, self.name)


@dataclass
class Clause(Node):
    """`descs [/predicate/] [{ body }]`; body None = no braces at all
    (DTrace's default action), [] = `{}`."""
    descriptions: list                  # [ProbeDesc]
    predicate: Expr | None = None
    body: list | None = field(default_factory=list)     # [Stmt] or None
    pos: Pos = NOPOS


@dataclass
class Script(Node):
    """A whole program: clauses in source order and the option pragmas."""
    clauses: list                       # [Clause]
    pragmas: list = field(default_factory=list)         # [Pragma]
    pos: Pos = NOPOS


# -------------------------------------------------------------- statements
@dataclass
class ExprStmt(Stmt):
    """An expression used as a statement (`x = 1;`, `printf(...);`, `@a = count();`)."""
    expr: Expr
    pos: Pos = NOPOS


@dataclass
class If(Stmt):
    """`if (cond) then [else else_]`; then/else_ are statement lists."""
    cond: Expr
    then: list
    else_: list | None = None
    pos: Pos = NOPOS


@dataclass
class Block(Stmt):
    """`{ stmt; ... }` nested inside a clause body."""
    body: list
    pos: Pos = NOPOS


# ------------------------------------------------------------- expressions
@dataclass
class TypeName(Node):
    """A C type as spelled in a cast or sizeof: `text` is normalised
    ('struct thread *'), `base` is it without pointers ('struct thread',
    'unsigned long', 'uint32_t'), `pointer` the number of '*'."""
    text: str
    base: str = ""
    pointer: int = 0
    pos: Pos = NOPOS


@dataclass
class IntLit(Expr):
    """Integer or character constant; unsigned/long from its u/U/l/L suffix."""
    value: int
    unsigned: bool = False
    long: bool = False
    pos: Pos = NOPOS
    char: bool = False                  # written as 'c'


@dataclass
class StrLit(Expr):
    """String literal with its escapes decoded (bytes, no trailing NUL)."""
    value: bytes
    pos: Pos = NOPOS


@dataclass
class Ident(Expr):
    """A bare name: builtin (timestamp, tid, arg0...), global variable,
    or an enum constant."""
    name: str
    pos: Pos = NOPOS


@dataclass
class SelfVar(Expr):
    """Thread-local `self->name`."""
    name: str
    pos: Pos = NOPOS


@dataclass
class ThisVar(Expr):
    """Clause-local `this->name`."""
    name: str
    pos: Pos = NOPOS


@dataclass
class Backquote(Expr):
    """Kernel symbol by name: `` `sched_threads `` (symbol without the backquote)."""
    symbol: str
    pos: Pos = NOPOS


@dataclass
class AggRef(Expr):
    """`@name` used as an argument (printa, clear, trunc...); "" = `@`.
    keys is set only when written `@name[...]` outside an assignment
    (sema rejects that; kept so it can say where)."""
    name: str
    pos: Pos = NOPOS
    keys: list | None = None


@dataclass
class AggAssign(Expr):
    """`@name[keys] = func(args)`; keys [] when written without brackets."""
    name: str
    keys: list
    func: str
    args: list
    pos: Pos = NOPOS
    func_pos: Pos = NOPOS               # the aggregating function's name


@dataclass
class Assoc(Expr):
    """Associative array element `name[k1, k2, ...]` (also `args[N]`)."""
    name: str
    keys: list
    pos: Pos = NOPOS


@dataclass
class Unary(Expr):
    """Prefix `- ! ~ * & +`, or `++`/`--` (prefix, or postfix when postfix)."""
    op: str
    operand: Expr
    pos: Pos = NOPOS
    postfix: bool = False


@dataclass
class Binary(Expr):
    """`lhs op rhs` for every C binary operator plus D's `^^` (logical xor)."""
    op: str
    lhs: Expr
    rhs: Expr
    pos: Pos = NOPOS


@dataclass
class Assign(Expr):
    """`target op value`, op one of = += -= *= /= %= &= |= ^= <<= >>=."""
    op: str
    target: Expr
    value: Expr
    pos: Pos = NOPOS


@dataclass
class Ternary(Expr):
    """`cond ? then : else_`."""
    cond: Expr
    then: Expr
    else_: Expr
    pos: Pos = NOPOS


@dataclass
class Cast(Expr):
    """`(type) expr`."""
    type: TypeName
    expr: Expr
    pos: Pos = NOPOS


@dataclass
class SizeofType(Expr):
    """`sizeof(type)`."""
    type: TypeName
    pos: Pos = NOPOS


@dataclass
class SizeofExpr(Expr):
    """`sizeof expr` / `sizeof(expr)`."""
    expr: Expr
    pos: Pos = NOPOS


@dataclass
class Member(Expr):
    """`expr.name` (arrow False) or `expr->name` (arrow True)."""
    expr: Expr
    name: str
    arrow: bool = False
    pos: Pos = NOPOS


@dataclass
class Index(Expr):
    """`expr[index]` on a non-identifier (array or pointer element)."""
    expr: Expr
    index: Expr
    pos: Pos = NOPOS


@dataclass
class Call(Expr):
    """`name(args)`: an action (printf, trace, printa, exit, clear, trunc,
    normalize, denormalize, func, sym, stack...) or a subroutine (strlen,
    strjoin, substr, strstr, stringof...); `name_pos` is the name's span."""
    name: str
    args: list
    pos: Pos = NOPOS
    name_pos: Pos = NOPOS


def _children(node) -> list:
    out = []
    for v in vars(node).values():
        for it in (v if isinstance(v, list) else [v]):
            if isinstance(it, Node):
                out.append(it)
    return out


def walk(node):
    """Every node under `node` (itself first), depth first in field order
    (iterative: any depth of tree is fine)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(_children(n)))


def depth(node) -> int:
    """Levels of the tree under node (1 for a leaf), computed iteratively."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in _children(n))
    return best
