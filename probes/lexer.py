"""Lexer for the D probe language: source text -> tokens with positions.

    lex(source, filename) -> (tokens, pragmas, diagnostics)

Like DTrace's lexer it has states, because a D program mixes two
languages: probe descriptions at the outer level (`syscall::read:entry`,
`tick-1s`, `sched:::s*`, which are not C tokens) and C-like expressions in
predicates and clause bodies.
  OUTER  probe descriptions (PSPEC tokens), ',', '{' (-> BODY), '/' (-> PRED)
  PRED   expression tokens; a '/' whose next non-blank character is end of
         input, ';', '{' or '/' closes the predicate (PRED_CLOSE, -> OUTER),
         any other '/' is division — DTrace's own rule, so `/a / b > 1/`
         works; '{' (a predicate left open) goes to BODY
  BODY   expression tokens; braces nest, the '}' closing the clause -> OUTER
In every state: whitespace, /* */ and // comments, a `#!` first line, and
`#pragma D option NAME[=VALUE]` lines (collected as ast.Pragma; any other
`#` line is an error: no C preprocessor runs).

Tokens: kind is the operator or keyword text itself ('+=', '->', 'sizeof'),
or one of INT, CHAR (value: int, with `unsigned`/`long` flags), STRING
(value: bytes), IDENT, AGG (`@name`, value the name, '' for `@`), BQ
(`` `sym ``, value the symbol), PSPEC (value the description text),
PRED_OPEN, PRED_CLOSE, EOF.  Errors (bad character, unterminated string or
comment, bad number or escape) become diagnostics and lexing goes on.
Pure: no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from probes import ast
from probes.diag import Diagnostic
from probes.program import Pos

TYPE_KEYWORDS = frozenset("""char short int long unsigned signed void struct union enum
    string const volatile int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
    """.split())
KEYWORDS = frozenset("sizeof self this if else".split()) | TYPE_KEYWORDS

OPERATORS = sorted("""<<= >>= -> ++ -- << >> <= >= == != && || ^^ += -= *= /= %= &= |= ^=
    + - * / % & | ^ ! ~ < > = ? : ; , . ( ) [ ] { }""".split(), key=len, reverse=True)

PSPEC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_-.:*?[]!$+\\")
IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
IDENT_CHARS = IDENT_START | frozenset("0123456789")
SIMPLE_ESC = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92,
              '"': 34, "'": 39, "?": 63, "e": 27}
OUTER, PRED, BODY = "OUTER", "PRED", "BODY"


@dataclass
class Token:
    """One token: kind (see the module doc), its source text, decoded value,
    position (pos.length = the token's length on its line) and offsets."""
    kind: str
    text: str
    value: object
    pos: Pos
    start: int                  # offset in the source
    end: int                    # offset just past the token
    unsigned: bool = False
    long: bool = False

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == "EOF":
            return "end of input"
        if self.kind == "IDENT":
            return f"identifier '{self.text}'"
        if self.kind in ("INT", "CHAR"):
            return f"constant {self.text}"
        if self.kind == "STRING":
            return "string literal"
        if self.kind == "PSPEC":
            return f"probe description '{self.text}'"
        if self.kind in ("PRED_OPEN", "PRED_CLOSE"):
            return "'/'"
        return f"'{self.text}'"


class Lexer:
    def __init__(self, source: str, filename: str):
        self.src, self.file = source, filename
        self.i, self.line, self.col = 0, 1, 1
        self.tokens: list = []
        self.pragmas: list = []
        self.diags: list = []
        self.mode, self.depth = OUTER, 0

    # ------------------------------------------------------------- helpers
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < len(self.src) else ""

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i >= len(self.src):
                return
            if self.src[self.i] == "\n":
                self.line, self.col = self.line + 1, 1
            else:
                self.col += 1
            self.i += 1

    def pos_at(self, line: int, col: int, start: int, end: int) -> Pos:
        """Pos of [start, end), its length clipped to the first line."""
        nl = self.src.find("\n", start)
        stop = end if nl < 0 else min(end, nl)
        return Pos(self.file, line, col, max(stop - start, 1))

    def error(self, line, col, start, end, message, hint=""):
        self.diags.append(Diagnostic(self.pos_at(line, col, start, end), message,
                                     [hint] if hint else []))

    def emit(self, kind, line, col, start, value=None, **kw) -> Token:
        text = self.src[start:self.i]
        tok = Token(kind, text, value, self.pos_at(line, col, start, self.i), start, self.i, **kw)
        self.tokens.append(tok)
        return tok

    # ---------------------------------------------------------------- run
    def run(self) -> list:
        if self.src.startswith("#!"):
            self.skip_line()
        while True:
            self.skip_blank()
            if self.i >= len(self.src):
                break
            self.one()
        self.emit("EOF", self.line, self.col, self.i)
        return self.tokens

    def skip_line(self) -> None:
        while self.i < len(self.src) and self.src[self.i] != "\n":
            self.advance()

    def at_line_start(self) -> bool:
        j = self.i - 1
        while j >= 0 and self.src[j] in " \t":
            j -= 1
        return j < 0 or self.src[j] == "\n"

    def skip_blank(self) -> None:
        """Whitespace, comments and # control lines."""
        while self.i < len(self.src):
            c = self.peek()
            if c in " \t\r\n\f\v":
                self.advance()
            elif c == "/" and self.peek(1) == "*":
                self.block_comment()
            elif c == "/" and self.peek(1) == "/":
                self.skip_line()
            elif c == "#" and self.at_line_start():
                self.control_line()
            else:
                return

    def block_comment(self) -> None:
        line, col, start = self.line, self.col, self.i
        end = self.src.find("*/", self.i + 2)
        if end < 0:
            self.error(line, col, start, start + 2, "unterminated comment",
                       "a '/*' comment needs a closing '*/'")
            end = len(self.src) - 2
        self.advance(end + 2 - self.i)

    def control_line(self) -> None:
        """`#pragma D option NAME[=VALUE]`; any other # line is an error."""
        line, col, start = self.line, self.col, self.i
        self.skip_line()
        text = self.src[start:self.i]
        words = text[1:].split()
        if words[:1] != ["pragma"]:
            self.error(line, col, start, self.i, f"unsupported directive '#{words[0] if words else ''}'",
                       "unik trace runs no C preprocessor; only '#pragma D option NAME=VALUE' "
                       "lines are understood")
            return
        if words[1:3] != ["D", "option"]:
            self.error(line, col, start, self.i, f"unsupported pragma '{' '.join(words[1:3])}'",
                       "only '#pragma D option NAME[=VALUE]' is understood")
            return
        if len(words) != 4:
            self.error(line, col, start, self.i,
                       "expected one NAME[=VALUE] after '#pragma D option'",
                       "e.g. #pragma D option quiet  or  #pragma D option bufsize=1m")
            return
        arg = words[3]
        acol = text.index(arg, text.index("option") + 6)
        name, eq, value = arg.partition("=")
        pos = self.pos_at(line, col + acol, start + acol, start + acol + len(arg))
        if not name:
            self.diags.append(Diagnostic(pos, "missing option name before '='"))
            return
        self.pragmas.append(ast.Pragma(name, value if eq else None, pos))

    def one(self) -> None:
        c = self.peek()
        if self.mode == OUTER:
            self.outer(c)
        else:
            self.expr_token(c)

    # --------------------------------------------------------------- outer
    def outer(self, c: str) -> None:
        line, col, start = self.line, self.col, self.i
        if c == "{":
            self.advance()
            self.emit("{", line, col, start)
            self.mode, self.depth = BODY, 1
        elif c == "/":
            self.advance()
            self.emit("PRED_OPEN", line, col, start)
            self.mode = PRED
        elif c in ",;}":
            self.advance()
            self.emit(c, line, col, start)
        elif c in PSPEC_CHARS:
            while self.peek() and self.peek() in PSPEC_CHARS:
                self.advance()
            self.emit("PSPEC", line, col, start, self.src[start:self.i])
        else:
            self.bad_char(c)

    def bad_char(self, c: str) -> None:
        line, col, start = self.line, self.col, self.i
        self.advance()
        hint = ""
        if c in "\"'" and self.mode == OUTER:
            hint = "probe descriptions are written without quotes"
        self.error(line, col, start, self.i, f"unexpected character {c!r}", hint)

    # --------------------------------------------------------- expressions
    def expr_token(self, c: str) -> None:
        line, col, start = self.line, self.col, self.i
        if c.isdigit():
            return self.number()
        if c in IDENT_START:
            while self.peek() and self.peek() in IDENT_CHARS:
                self.advance()
            word = self.src[start:self.i]
            self.emit(word if word in KEYWORDS else "IDENT", line, col, start, word)
            return
        if c == '"':
            return self.string()
        if c == "'":
            return self.char()
        if c == "@":
            self.advance()
            while self.peek() and self.peek() in IDENT_CHARS:
                self.advance()
            self.emit("AGG", line, col, start, self.src[start + 1:self.i])
            return
        if c == "`":
            self.advance()
            while self.peek() and self.peek() in IDENT_CHARS:
                self.advance()
            name = self.src[start + 1:self.i]
            if not name or name[0].isdigit():
                self.error(line, col, start, self.i, "expected a kernel symbol name after '`'",
                           "e.g. `sched_threads")
            self.emit("BQ", line, col, start, name)
            return
        if c == "/" and self.mode == PRED and self.closes_predicate():
            self.advance()
            self.emit("PRED_CLOSE", line, col, start)
            self.mode = OUTER
            return
        for op in OPERATORS:
            if self.src.startswith(op, self.i):
                self.advance(len(op))
                self.emit(op, line, col, start)
                self.track_braces(op)
                return
        self.bad_char(c)

    def closes_predicate(self) -> bool:
        """DTrace's rule: '/' then blanks then end, ';', '{' or '/'."""
        j = self.i + 1
        while j < len(self.src) and self.src[j] in " \t\r\n\f\v":
            j += 1
        return j >= len(self.src) or self.src[j] in ";{/"

    def track_braces(self, op: str) -> None:
        if op == "{":
            if self.mode == PRED:       # predicate left open: the body starts
                self.mode, self.depth = BODY, 0
            self.depth += 1
        elif op == "}" and self.mode == BODY:
            self.depth -= 1
            if self.depth == 0:
                self.mode = OUTER

    def number(self) -> None:
        line, col, start = self.line, self.col, self.i
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.advance()
        text = self.src[start:self.i]
        value, uns, lng, err = parse_int(text)
        if err:
            self.error(line, col, start, self.i, err[0], err[1])
        self.emit("INT", line, col, start, value, unsigned=uns, long=lng)

    def escape(self, out: bytearray) -> None:
        """Decode one escape sequence; self.i is at the backslash."""
        line, col, start = self.line, self.col, self.i
        self.advance()
        c = self.peek()
        if c in SIMPLE_ESC:
            self.advance()
            out.append(SIMPLE_ESC[c])
        elif c and c in "01234567":
            digits = ""
            while len(digits) < 3 and self.peek() and self.peek() in "01234567":
                digits += self.peek()
                self.advance()
            v = int(digits, 8)
            if v > 255:
                self.error(line, col, start, self.i, "octal escape sequence out of range")
            out.append(v & 0xFF)
        elif c == "x":
            self.advance()
            digits = ""
            while self.peek() and self.peek() in "0123456789abcdefABCDEF":
                digits += self.peek()
                self.advance()
            if not digits:
                self.error(line, col, start, self.i, "\\x used with no following hex digits")
            elif len(digits) > 2:
                self.error(line, col, start, self.i, "hex escape sequence out of range",
                           "\\xNN takes at most two hex digits")
            out.append(int(digits or "0", 16) & 0xFF)
        else:
            if c and c != "\n":
                self.advance()
            self.error(line, col, start, self.i, f"unknown escape sequence '\\{c}'",
                       "known escapes: \\n \\t \\r \\\\ \\\" \\' \\0 \\xNN \\NNN \\a \\b \\f \\v")
            out.extend(c.encode())

    def quoted(self, q: str) -> tuple:
        """Body of a '...' or "..." literal: (bytes, terminated)."""
        out = bytearray()
        self.advance()
        while True:
            c = self.peek()
            if c == "" or c == "\n":
                return bytes(out), False
            if c == q:
                self.advance()
                return bytes(out), True
            if c == "\\":
                self.escape(out)
            else:
                out.extend(c.encode())
                self.advance()

    def string(self) -> None:
        line, col, start = self.line, self.col, self.i
        value, ok = self.quoted('"')
        if not ok:
            self.error(line, col, start, self.i, "missing terminating '\"' character",
                       "a string literal ends on its own line; write \\n for a newline")
        self.emit("STRING", line, col, start, value)

    def char(self) -> None:
        line, col, start = self.line, self.col, self.i
        value, ok = self.quoted("'")
        if not ok:
            self.error(line, col, start, self.i, "missing terminating ' character")
        elif not value:
            self.error(line, col, start, self.i, "empty character constant")
        elif len(value) > 8:
            self.error(line, col, start, self.i, "character constant too long")
        self.emit("CHAR", line, col, start, int.from_bytes(value[:8], "big") if value else 0)


def parse_int(text: str) -> tuple:
    """(value, unsigned, long, error) of an integer literal's text;
    error is None or (message, hint)."""
    body = text.rstrip("uUlL")
    suffix = text[len(body):]
    uns = "u" in suffix.lower()
    lng = "l" in suffix.lower()
    if suffix and (suffix.lower().count("u") > 1 or suffix.lower().count("l") > 2
                   or suffix.lower().replace("u", "") not in ("", "l", "ll")
                   or ("ll" not in suffix.lower() and suffix.lower().count("l") == 2)):
        return 0, uns, lng, (f"invalid suffix '{suffix}' on integer constant",
                             "suffixes are u, l, ul, ll, ull (any case)")
    low = body.lower()
    if low.startswith("0x"):
        digits, base, what = body[2:], 16, "hexadecimal"
        valid = "0123456789abcdefABCDEF"
    elif low.startswith("0") and len(body) > 1:
        digits, base, what = body[1:], 8, "octal"
        valid = "01234567"
    else:
        digits, base, what = body, 10, "decimal"
        valid = "0123456789"
    if not digits:
        return 0, uns, lng, ("hexadecimal constant has no digits", "e.g. 0x1f")
    for k, ch in enumerate(digits):
        if ch not in valid:
            if base != 16 and ch in "0123456789":
                return 0, uns, lng, (f"invalid digit '{ch}' in {what} constant",
                                     "a leading 0 makes the constant octal")
            return 0, uns, lng, (f"invalid suffix '{digits[k:]}{suffix}' on integer constant",
                                 "suffixes are u, l, ul, ll, ull (any case)")
    value = int(digits, base)
    if value >= 1 << 64:
        return 0, uns, lng, ("integer constant is too large", "integers are 64 bits wide")
    return value, uns, lng, None


def lex(source: str, filename: str) -> tuple:
    """(tokens ending with EOF, [ast.Pragma], [Diagnostic])."""
    lx = Lexer(source, filename)
    toks = lx.run()
    return toks, lx.pragmas, lx.diags
