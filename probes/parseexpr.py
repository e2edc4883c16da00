"""Expression half of the D parser (probes/parser.py mixes it in).

C's grammar and precedence as DTrace has them (dt_grammar.y), loosest first:
    = += -= *= /= %= &= |= ^= <<= >>=   right
    ?:                                   right
    ||   ^^   &&   |   ^   &             left (D's ^^ is logical xor)
    == !=   < <= > >=   << >>   + -   * / %   left
    prefix - + ! ~ * & ++ -- sizeof (type)cast    right
    postfix [] () . -> ++ --             left
A cast needs a type: a type keyword, `struct/union/enum X`, or a typedef
name written `(name *)` or `(name)` right before something that can only
start an operand (`(u64)x`; `(a) - b` stays a subtraction, as in C).
`name[k, ...]` is ast.Assoc, `e[i]` on anything else ast.Index; `@a = f()`
is ast.AggAssign.  Pure: no I/O.
"""
from __future__ import annotations

from probes import ast, lexer

ASSIGN_OPS = frozenset("= += -= *= /= %= &= |= ^= <<= >>=".split())
LEVELS = [["||"], ["^^"], ["&&"], ["|"], ["^"], ["&"], ["==", "!="],
          ["<", "<=", ">", ">="], ["<<", ">>"], ["+", "-"], ["*", "/", "%"]]
PREC = {op: i for i, ops in enumerate(LEVELS) for op in ops}
MAX_NESTING = 64
PREFIX = frozenset("- + ! ~ * &".split())
BASE_TYPES = frozenset("char short int long unsigned signed void string int8_t int16_t "
                       "int32_t int64_t uint8_t uint16_t uint32_t uint64_t".split())
OPERAND_START = frozenset("INT CHAR STRING IDENT AGG BQ ( self this sizeof ! ~".split())
CLOSERS = frozenset(") ] } ; , EOF PRED_CLOSE".split())
WORD_KINDS = frozenset(["IDENT"]) | lexer.KEYWORDS


class _Abort(Exception):
    """A syntax error was recorded; unwind to the nearest recovery point."""


class ExprParser:
    """Expression rules; the host class supplies tok/peek/next/accept/span,
    error/fail/expect_close (probes/parser.py's Parser)."""

    # ------------------------------------------------------- expressions
    def expression(self):
        try:
            self.nest()
            return self.assignment()
        finally:
            self.nesting -= 1

    def nest(self) -> None:
        """Bound the recursion (parentheses, prefix operators, blocks), so
        hostile input gets an error instead of exhausting Python's stack."""
        self.nesting = getattr(self, "nesting", 0) + 1
        if self.nesting > MAX_NESTING:
            self.fail("expression or statement nested too deeply",
                      f"at most {MAX_NESTING} levels of parentheses, operators or blocks")

    def assignment(self):
        start = self.tok
        lhs = self.conditional()
        if self.tok.kind not in ASSIGN_OPS:
            return lhs
        op = self.next()
        if isinstance(lhs, ast.AggRef):
            return self.agg_assign(start, lhs, op)
        if not isinstance(lhs, (ast.Ident, ast.SelfVar, ast.ThisVar, ast.Assoc, ast.Member,
                                ast.Index, ast.Backquote)) and \
                not (isinstance(lhs, ast.Unary) and lhs.op == "*" and not lhs.postfix):
            self.error(lhs.pos, f"cannot assign to this expression (left of '{op.text}')",
                       "assign to a variable, self->x, this->x, a[key], *ptr or @agg")
        value = self.expression()  # right-associative, nesting counted
        return ast.Assign(op.text, lhs, value, self.span(start))

    def agg_assign(self, start, lhs, op):
        if op.text != "=":
            self.error(op.pos, f"aggregations cannot be updated with '{op.text}'",
                       "assign an aggregating function: @a = count() or @a = sum(x)")
        ftok = self.tok
        value = self.expression()
        if not isinstance(value, ast.Call):
            if op.text == "=":
                    self.error(value.pos, "an aggregation can only be assigned an aggregating "
                           "function", "e.g. @a[key] = count(), sum(x), min(x), max(x), "
                           "avg(x), stddev(x), quantize(x), lquantize(x, lo, hi, step)")
            return ast.AggAssign(lhs.name, lhs.keys or [], "", [], self.span(start), ftok.pos)
        return ast.AggAssign(lhs.name, lhs.keys or [], value.name, value.args,
                             self.span(start), value.name_pos)

    def conditional(self):
        start = self.tok
        cond = self.binary(0)
        if self.tok.kind != "?":
            return cond
        q = self.next()
        then = self.expression()
        if self.tok.kind != ":":
            self.fail(f"expected ':' in conditional expression, found {self.tok.describe()}",
                      f"the '?' is at {q.pos.line}:{q.pos.col}")
        self.next()
        try:
            self.nest()
            else_ = self.conditional()      # right-associative
        finally:
            self.nesting -= 1
        return ast.Ternary(cond, then, else_, self.span(start))

    def binary(self, min_prec: int):
        """Precedence climbing over LEVELS (all left-associative)."""
        start = self.tok
        lhs = self.unary()
        while PREC.get(self.tok.kind, -1) >= min_prec:
            op = self.next().kind
            rhs = self.binary(PREC[op] + 1)
            lhs = ast.Binary(op, lhs, rhs, self.span(start))
        return lhs

    def unary(self):
        t = self.tok
        if t.kind in PREFIX or t.kind in ("++", "--"):
            self.next()
            try:
                self.nest()
                operand = self.unary()
            finally:
                self.nesting -= 1
            return ast.Unary(t.kind, operand, self.span(t))
        if t.kind == "sizeof":
            self.next()
            if self.tok.kind == "(" and self.type_follows(1):
                opener = self.next()
                ty = self.typename()
                self.expect_close(")", opener)
                return ast.SizeofType(ty, self.span(t))
            return ast.SizeofExpr(self.unary(), self.span(t))
        if t.kind == "(" and self.is_cast():
            self.next()
            ty = self.typename()
            self.expect_close(")", t)
            return ast.Cast(ty, self.unary(), self.span(t))
        return self.postfix()

    def type_follows(self, n: int) -> bool:
        """Does a type name start at token +n (inside sizeof(...))?"""
        k = self.peek(n).kind
        if k in lexer.TYPE_KEYWORDS:
            return True
        if k == "IDENT":                # sizeof(name *) or sizeof(name) with no operand after
            j = n + 1
            while self.peek(j).kind == "*":
                j += 1
            return self.peek(j).kind == ")" and j > n + 1
        return False

    def is_cast(self) -> bool:
        """'(' starting a cast: a type keyword, `(name *...)`, or `(name)`
        followed by something that can only start an operand."""
        k = self.peek(1).kind
        if k in lexer.TYPE_KEYWORDS:
            return True
        if k != "IDENT":
            return False
        j = 2
        while self.peek(j).kind == "*":
            j += 1
        if self.peek(j).kind != ")":
            return False
        return j > 2 or self.peek(j + 1).kind in OPERAND_START

    def typename(self) -> ast.TypeName:
        start = self.tok
        words = []
        while self.tok.kind in ("const", "volatile"):
            self.next()
        k = self.tok.kind
        if k in ("struct", "union", "enum"):
            self.next()
            if self.tok.kind != "IDENT":
                self.fail(f"expected a name after '{k}', found {self.tok.describe()}")
            words = [k, self.next().text]
        elif k in BASE_TYPES:
            while self.tok.kind in BASE_TYPES or self.tok.kind in ("const", "volatile"):
                t = self.next()
                if t.kind in BASE_TYPES:
                    words.append(t.kind)
        elif k == "IDENT":
            words = [self.next().text]
        else:
            self.fail(f"expected a type name, found {self.tok.describe()}")
        ptr = 0
        while self.tok.kind in ("*", "const", "volatile"):
            if self.next().kind == "*":
                ptr += 1
        base = " ".join(words)
        return ast.TypeName(base + (" " + "*" * ptr if ptr else ""), base, ptr, self.span(start))

    def postfix(self):
        start = self.tok
        e = self.primary()
        while True:
            k = self.tok.kind
            if k == "[":
                opener = self.next()
                keys = self.arglist("]", opener)
                e = self.subscript(e, keys, opener, start)
            elif k == "(":
                opener = self.next()
                if not isinstance(e, ast.Ident):
                    self.fail("only functions named directly can be called", tok=opener)
                args = self.arglist(")", opener)
                e = ast.Call(e.name, args, self.span(start), e.pos)
            elif k in (".", "->"):
                self.next()
                if self.tok.kind not in WORD_KINDS:
                    self.fail(f"expected a member name after '{k}', found {self.tok.describe()}")
                e = ast.Member(e, self.next().text, k == "->", self.span(start))
            elif k in ("++", "--"):
                self.next()
                e = ast.Unary(k, e, self.span(start), postfix=True)
            else:
                return e

    def subscript(self, e, keys, opener, start):
        if not keys:
            self.fail("expected at least one key inside '[]'", tok=self.last)
        if isinstance(e, ast.Ident):
            return ast.Assoc(e.name, keys, self.span(start))
        if isinstance(e, ast.AggRef) and e.keys is None:
            return ast.AggRef(e.name, self.span(start), keys)
        if len(keys) > 1:
            self.error(keys[1].pos, "an array or pointer takes one index",
                       "only associative arrays and aggregations take key tuples")
        return ast.Index(e, keys[0], self.span(start))

    def arglist(self, close: str, opener) -> list:
        args = []
        if self.tok.kind != close:
            args.append(self.expression())
            while self.accept(","):
                args.append(self.expression())
        self.expect_close(close, opener)
        return args

    def primary(self):
        t = self.tok
        k = t.kind
        if k in ("INT", "CHAR"):
            self.next()
            return ast.IntLit(t.value, t.unsigned, t.long, t.pos, char=k == "CHAR")
        if k == "STRING":
            value = b""
            while self.tok.kind == "STRING":        # "a" "b" is "ab", as in C
                value += self.next().value
            return ast.StrLit(value, self.span(t))
        if k == "IDENT":
            self.next()
            return ast.Ident(t.text, t.pos)
        if k in ("self", "this"):
            self.next()
            if self.tok.kind != "->":
                self.fail(f"expected '->' after '{k}', found {self.tok.describe()}",
                          f"{'thread' if k == 'self' else 'clause'}-local variables "
                          f"are written {k}->name")
            self.next()
            if self.tok.kind not in WORD_KINDS:
                self.fail(f"expected a variable name after '{k}->', found {self.tok.describe()}")
            name = self.next().text
            cls = ast.SelfVar if k == "self" else ast.ThisVar
            return cls(name, self.span(t))
        if k == "AGG":
            self.next()
            return ast.AggRef(t.value, t.pos)
        if k == "BQ":
            self.next()
            return ast.Backquote(t.value, t.pos)
        if k == "(":
            self.next()
            e = self.expression()
            self.expect_close(")", t)
            return e
        if k in lexer.TYPE_KEYWORDS:
            self.fail(f"unexpected type name '{t.text}'",
                      f"a cast is written ({t.text})expr; declarations are not supported")
        if k in CLOSERS:
            what = "end of input" if k == "EOF" else t.describe()
            self.fail(f"unexpected {what}", "an expression was expected here")
        self.fail(f"expected an expression, found {t.describe()}")
