"""Parser for the D probe language: tokens (probes/lexer.py) -> probes/ast.py.

    parse(source, filename) -> ast.Script       raises diag.CompileError
    parse_expr(source, filename="-") -> ast.Expr (tests, debugging)
    parse_probe_desc(text, pos=None) -> ast.ProbeDesc   (the CLI's -n / -l)

Recursive descent following DTrace's grammar (dt_grammar.y); the expression
rules and their precedence table are in probes/parseexpr.py.
A program is clauses: `desc[, desc...] [/predicate/] [{ statements }]`;
a description alone, or with a predicate alone, has body None (DTrace's
default action).  Statements: `expr;`, `if (c) s [else s]`, `{ ... }`;
the last ';' before '}' is optional.  A cast needs a type: a type keyword,
`struct/union/enum X`, or a typedef name written `(name)` before an
operand or `(name *)`.

A predicate ends at a '/' followed by blanks and then end of input, ';', '{'
or '/' (DTrace's lexer rule, in probes/lexer.py); any other '/' divides.
Nesting is bounded (64 levels of parentheses/operators/blocks, a tree 100
levels deep per statement) so hostile input gets an error, not a crash.

Errors: every syntax error is reported; after one the parser skips to the
next ';' or '}' of the statement (or the next clause) and goes on.  All
lexer and parser diagnostics are raised together in one CompileError.
Pure: no I/O.
"""
from __future__ import annotations

from probes import ast, lexer
from probes.diag import CompileError, Diagnostic, sort_key
from probes.parseexpr import ExprParser, _Abort
from probes.program import Pos

MAX_DEPTH = 100     # syntax tree levels per statement: later passes recurse over it


class Parser(ExprParser):
    """Program, clause and statement rules, token access and recovery."""

    def __init__(self, tokens: list, source: str, filename: str, diags: list | None = None):
        self.toks, self.src, self.file = tokens, source, filename
        self.k = 0
        self.diags: list = diags if diags is not None else []
        self.last = tokens[0]
        self.open_braces: list = []     # '{' tokens of the clause bodies being parsed
        self.nesting = 0                # see ExprParser.nest

    # ------------------------------------------------------------ tokens
    @property
    def tok(self):
        return self.toks[self.k]

    def peek(self, n: int = 1):
        return self.toks[min(self.k + n, len(self.toks) - 1)]

    def next(self):
        t = self.toks[self.k]
        if t.kind != "EOF":
            self.k += 1
        self.last = t
        return t

    def accept(self, kind: str):
        return self.next() if self.tok.kind == kind else None

    def span(self, start) -> Pos:
        """From token `start` to the last token consumed (clipped to start's line)."""
        end = max(self.last.end, start.end)
        nl = self.src.find("\n", start.start)
        if 0 <= nl < end:
            end = nl
        return Pos(self.file, start.pos.line, start.pos.col, max(end - start.start, 1))

    # ------------------------------------------------------------ errors
    def error(self, pos: Pos, message: str, hint: str = "") -> None:
        self.diags.append(Diagnostic(pos, message, [hint] if hint else []))

    def fail(self, message: str, hint: str = "", tok=None):
        t = tok or self.tok
        self.error(self.after_last() if t.kind == "EOF" else t.pos, message, hint)
        raise _Abort()

    def after_last(self) -> Pos:
        """The column just after the last consumed token (for 'expected ;')."""
        p = self.last.pos
        return Pos(self.file, p.line, p.col + p.length, 1)

    def expect(self, kind: str, what: str = ""):
        if self.tok.kind == kind:
            return self.next()
        self.fail(f"expected '{kind}'{what}, found {self.tok.describe()}")

    def expect_close(self, kind: str, opener):
        if self.tok.kind == kind:
            return self.next()
        self.fail(f"expected '{kind}', found {self.tok.describe()}",
                  f"to close the '{opener.text}' opened at {opener.pos.line}:{opener.pos.col}")

    def sync_statement(self) -> None:
        """Skip to just after the next ';' or to the '}' ending this body."""
        depth = 0
        while self.tok.kind not in ("EOF", "PSPEC", "PRED_OPEN"):
            k = self.tok.kind
            if k == "}":
                if depth == 0:
                    return
                depth -= 1
            elif k == "{":
                depth += 1
            elif k == ";" and depth == 0:
                self.next()
                return
            self.next()

    def sync_clause(self) -> None:
        while self.tok.kind not in ("EOF", "PSPEC"):
            self.next()

    # ----------------------------------------------------------- program
    def script(self) -> ast.Script:
        start, clauses = self.tok, []
        while self.tok.kind != "EOF":
            t = self.tok
            try:
                if t.kind == "PSPEC":
                    clauses.append(self.clause())
                elif t.kind == ";":
                    self.next()
                elif t.kind == "{":
                    self.error(t.pos, "expected a probe description before '{'",
                               "a clause starts with probe descriptions, e.g. BEGIN { ... }")
                    self.body()
                else:
                    self.next()
                    hint = "no clause body is open here" if t.kind == "}" else \
                        "a clause starts with probe descriptions, e.g. syscall::read:entry"
                    self.fail(f"unexpected {t.describe()}", hint, tok=t)
            except _Abort:
                self.sync_clause()
        return ast.Script(clauses, [], self.span(start) if clauses else start.pos)

    def clause(self) -> ast.Clause:
        start = self.tok
        descs = [self.desc(self.next())]
        while self.accept(","):
            if self.tok.kind != "PSPEC":
                self.fail(f"expected a probe description after ',', found {self.tok.describe()}")
            descs.append(self.desc(self.next()))
        pred, body = None, None
        if self.tok.kind == "PRED_OPEN":
            pred = self.predicate()
        if self.tok.kind == "{":
            body = self.body()
        elif self.tok.kind not in ("PSPEC", "EOF", ";"):
            self.fail(f"expected '{{' or a predicate after the probe description, "
                      f"found {self.tok.describe()}")
        for n in [pred] + (body or []):
            if n is not None and ast.depth(n) > MAX_DEPTH:
                self.error(n.pos, "expression or statement nested too deeply",
                           f"the syntax tree may be at most {MAX_DEPTH} levels deep; "
                           "split it with this-> variables")
        return ast.Clause(descs, pred, body, self.span(start))

    def desc(self, tok) -> ast.ProbeDesc:
        d, errs = split_desc(tok.value, tok.pos)
        for message, hint in errs:
            self.error(tok.pos, message, hint)
        return d

    def predicate(self) -> ast.Expr:
        opener = self.next()
        if self.tok.kind == "PRED_CLOSE":
            self.fail("empty predicate", "write /expr/ or leave the predicate out")
        e = self.expression()
        if self.accept("PRED_CLOSE"):
            return e
        hint = f"the predicate opened at {opener.pos.line}:{opener.pos.col}"
        if self.tok.kind == "{":        # keep going: the body is still worth checking
            self.error(self.after_last(), "expected '/' to close the predicate", hint)
            return e
        self.fail(f"expected '/' to close the predicate, found {self.tok.describe()}",
                  hint + "; a '/' followed by a name is division, as in DTrace")

    def body(self) -> list:
        opener = self.expect("{")
        self.open_braces.append(opener)
        stmts = self.statements()
        self.open_braces.pop()
        if self.tok.kind == "}":
            self.next()
        else:
            where = self.after_last() if self.tok.kind == "EOF" else self.tok.pos
            self.error(where, f"expected '}}', found {self.tok.describe()}",
                       f"to close the '{{' opened at {opener.pos.line}:{opener.pos.col}")
        return stmts

    # -------------------------------------------------------- statements
    def statements(self) -> list:
        out = []
        while self.tok.kind not in ("}", "EOF", "PSPEC"):
            before = self.k
            try:
                s = self.statement()
                if s is not None:
                    out.append(s)
            except _Abort:
                self.sync_statement()
            if self.k == before and self.tok.kind not in ("}", "EOF", "PSPEC"):
                self.next()             # never loop without progress
        return out

    def statement(self):
        try:
            self.nest()
            return self.statement1()
        finally:
            self.nesting -= 1

    def statement1(self):
        t = self.tok
        if t.kind == ";":
            self.next()
            return None
        if t.kind == "if":
            return self.if_stmt()
        if t.kind == "{":
            self.next()
            stmts = self.statements()
            self.expect_close("}", t)
            return ast.Block(stmts, self.span(t))
        if t.kind == "else":
            self.next()
            self.fail("'else' without a previous 'if'", tok=t)
        e = self.expression()
        s = ast.ExprStmt(e, self.span(t))
        if self.accept(";") or self.tok.kind in ("}", "EOF"):
            return s
        if isinstance(e, ast.Ident) and self.tok.kind == "{" and self.open_braces:
            o = self.open_braces[-1]
            self.error(self.after_last(), "expected ';' after statement",
                       f"is a '}}' missing before '{e.name}'? the '{{' at "
                       f"{o.pos.line}:{o.pos.col} is still open")
            raise _Abort()
        if self.tok.pos.line > self.last.pos.line:
            self.error(self.after_last(), "expected ';' after statement")
            return s                    # the next line starts a new statement
        self.error(self.after_last(), "expected ';' after statement",
                   f"found {self.tok.describe()}")
        raise _Abort()

    def if_stmt(self) -> ast.If:
        t = self.next()
        opener = self.expect("(", " after 'if'")
        cond = self.expression()
        self.expect_close(")", opener)
        then = self.branch()
        else_ = None
        if self.accept("else"):
            else_ = self.branch()
        return ast.If(cond, then, else_, self.span(t))

    def branch(self) -> list:
        if self.tok.kind == "{":
            return self.body()
        if self.tok.kind in ("}", "EOF"):
            self.fail(f"expected a statement, found {self.tok.describe()}")
        s = self.statement()
        return [] if s is None else [s]

# ------------------------------------------------------------------ API
def split_desc(text: str, pos: Pos) -> tuple:
    """(ast.ProbeDesc, [(message, hint)]) for a description's text; fields
    fill from the right as DTrace's do (`BEGIN` is a name, `a:b` is
    function:name)."""
    errs = []
    parts = text.split(":")
    if len(parts) > 4:
        errs.append((f"probe description '{text}' has {len(parts)} fields",
                     "at most provider:module:function:name"))
        parts = parts[-4:]
    for p in parts:
        bad = _glob_error(p)
        if bad:
            errs.append((f"{bad} in probe description '{text}'",
                         "globs are * ? and [...] (with ! or ^ to negate)"))
    fields = [""] * (4 - len(parts)) + parts
    return ast.ProbeDesc(text, *fields, pos=pos), errs


def _glob_error(p: str) -> str:
    i = 0
    while i < len(p):
        if p[i] == "\\":
            i += 2
            continue
        if p[i] == "[":
            j = i + 1
            if j < len(p) and p[j] in "!^":
                j += 1
            if j < len(p) and p[j] == "]":
                j += 1
            close = p.find("]", j)
            if close < 0:
                return "unterminated '['"
            i = close + 1
            continue
        if p[i] == "]":
            return "unmatched ']'"
        i += 1
    return ""


def parse_probe_desc(text: str, pos: Pos | None = None) -> ast.ProbeDesc:
    """One description (the CLI's -l PATTERN); raises CompileError if bad."""
    pos = pos or Pos("-", 1, 1, max(len(text), 1))
    stripped = text.strip()
    errs = []
    if not stripped:
        errs.append(("empty probe description", "e.g. sched:::switch or BEGIN"))
    bad = sorted({c for c in stripped if c not in lexer.PSPEC_CHARS})
    if bad:
        errs.append((f"unexpected character {bad[0]!r} in probe description '{stripped}'",
                     "descriptions are provider:module:function:name with globs * ? [...]"))
    d, more = split_desc(stripped, pos)
    errs += more
    if errs:
        raise CompileError([Diagnostic(pos, m, [h] if h else []) for m, h in errs], text)
    return d


def _finish(diags: list, source: str) -> None:
    if any(d.severity == "error" for d in diags):
        raise CompileError(sorted(diags, key=sort_key), source)


def parse(source: str, filename: str) -> ast.Script:
    """The whole program; raises CompileError with every lexer and parser error."""
    toks, pragmas, diags = lexer.lex(source, filename)
    p = Parser(toks, source, filename, list(diags))
    script = p.script()
    script.pragmas = pragmas
    _finish(p.diags, source)
    return script


def parse_expr(source: str, filename: str = "-") -> ast.Expr:
    """One expression (as in a clause body); raises CompileError."""
    lx = lexer.Lexer(source, filename)
    lx.mode, lx.depth = lexer.BODY, 1
    toks = lx.run()
    p = Parser(toks, source, filename, list(lx.diags))
    e = None
    try:
        e = p.expression()
        if p.tok.kind != "EOF":
            p.fail(f"unexpected {p.tok.describe()} after the expression")
    except _Abort:
        pass
    _finish(p.diags, source)
    return e
