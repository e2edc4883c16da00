"""Print a D AST back as D source, every compound expression in parentheses,
so precedence and associativity are visible:

    unparse(parse_expr("a + b * c")) == "(a + (b * c))"

The output parses back to the same tree (tests use that round trip).
Handy for debugging: `print(unparse(parse(src, "x.d")))`.  Pure: no I/O.
"""
from __future__ import annotations

from probes import ast

_ESC = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r", 0x5C: "\\\\", 0x22: '\\"', 0x00: "\\0",
        0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0B: "\\v"}


def quote(value: bytes, q: str = '"') -> str:
    """A C literal for value (bytes), escaping what needs it."""
    out = []
    for i, b in enumerate(value):
        if b in _ESC and not (b == 0x22 and q == "'"):
            s = _ESC[b]
            # \0 followed by an octal digit would read as a longer escape
            if b == 0 and i + 1 < len(value) and 0x30 <= value[i + 1] <= 0x37:
                s = "\\000"
            out.append(s)
        elif b == ord(q):
            out.append("\\" + q)
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return q + "".join(out) + q


def _int(n: ast.IntLit) -> str:
    if n.char and 0 <= n.value < 256:
        return quote(bytes([n.value]), "'")
    return f"{n.value}{'U' if n.unsigned else ''}{'L' if n.long else ''}"


def _keys(keys) -> str:
    return ", ".join(unparse(k) for k in keys)


def unparse(n) -> str:
    """D text of any node (statements end with ';', clauses span lines)."""
    if isinstance(n, list):
        return " ".join(unparse(s) for s in n)
    f = _FORMS.get(type(n).__name__)
    if f is None:
        raise TypeError(f"not an AST node: {n!r}")
    return f(n)


def _unary(n: ast.Unary) -> str:
    if n.postfix:
        return f"({unparse(n.operand)}{n.op})"
    return f"({n.op}{unparse(n.operand)})"


def _agg_assign(n: ast.AggAssign) -> str:
    keys = f"[{_keys(n.keys)}]" if n.keys else ""
    return f"(@{n.name}{keys} = {n.func}({_keys(n.args)}))"


def _agg_ref(n: ast.AggRef) -> str:
    return f"@{n.name}" + (f"[{_keys(n.keys)}]" if n.keys is not None else "")


def _block(stmts) -> str:
    return "{ " + "".join(unparse(s) + " " for s in stmts) + "}"


def _if(n: ast.If) -> str:
    s = f"if ({unparse(n.cond)}) {_block(n.then)}"
    return s + (f" else {_block(n.else_)}" if n.else_ is not None else "")


def _clause(n: ast.Clause) -> str:
    s = ", ".join(d.text for d in n.descriptions)
    if n.predicate is not None:
        s += f"\n/{unparse(n.predicate)}/"
    if n.body is not None:
        s += "\n{\n" + "".join(f"\t{unparse(st)}\n" for st in n.body) + "}"
    return s


def _script(n: ast.Script) -> str:
    lines = [unparse(p) for p in n.pragmas] + [unparse(c) for c in n.clauses]
    return "\n\n".join(lines) + "\n"


_FORMS = {
    "Script": _script,
    "Pragma": lambda n: f"#pragma D option {n.name}" + (f"={n.value}" if n.value is not None else ""),
    "Clause": _clause,
    "ProbeDesc": lambda n: n.text,
    "ExprStmt": lambda n: unparse(n.expr) + ";",
    "If": _if,
    "Block": lambda n: _block(n.body),
    "TypeName": lambda n: n.text,
    "IntLit": _int,
    "StrLit": lambda n: quote(n.value),
    "Ident": lambda n: n.name,
    "SelfVar": lambda n: f"self->{n.name}",
    "ThisVar": lambda n: f"this->{n.name}",
    "Backquote": lambda n: f"`{n.symbol}",
    "AggRef": _agg_ref,
    "AggAssign": _agg_assign,
    "Assoc": lambda n: f"{n.name}[{_keys(n.keys)}]",
    "Unary": _unary,
    "Binary": lambda n: f"({unparse(n.lhs)} {n.op} {unparse(n.rhs)})",
    "Assign": lambda n: f"({unparse(n.target)} {n.op} {unparse(n.value)})",
    "Ternary": lambda n: f"({unparse(n.cond)} ? {unparse(n.then)} : {unparse(n.else_)})",
    "Cast": lambda n: f"(({n.type.text}){unparse(n.expr)})",
    "SizeofType": lambda n: f"sizeof({n.type.text})",
    "SizeofExpr": lambda n: f"sizeof({unparse(n.expr)})",
    "Member": lambda n: f"{unparse(n.expr)}{'->' if n.arrow else '.'}{n.name}",
    "Index": lambda n: f"{unparse(n.expr)}[{unparse(n.index)}]",
    "Call": lambda n: f"{n.name}({_keys(n.args)})",
}
