"""The D parser (probes/parser.py, probes/parseexpr.py): precedence and
associativity of every operator (printed back fully parenthesised by
probes/astfmt.py), descriptions, predicates, clause forms, statements,
casts, sizeof, aggregations, variables, node positions, and the glob
matcher (probes/glob.py)."""
from __future__ import annotations

import pytest

from probes import ast, diag
from probes.astfmt import unparse
from probes.diag import CompileError
from probes.glob import glob_match, is_glob
from probes.parser import parse, parse_expr, parse_probe_desc


def p(src: str) -> str:
    return unparse(parse_expr(src))


@pytest.mark.parametrize("src,want", [
    # each binary level against the next tighter one, both orders
    ("a || b ^^ c", "(a || (b ^^ c))"), ("a ^^ b || c", "((a ^^ b) || c)"),
    ("a ^^ b && c", "(a ^^ (b && c))"), ("a && b ^^ c", "((a && b) ^^ c)"),
    ("a && b | c", "(a && (b | c))"), ("a | b && c", "((a | b) && c)"),
    ("a | b ^ c", "(a | (b ^ c))"), ("a ^ b | c", "((a ^ b) | c)"),
    ("a ^ b & c", "(a ^ (b & c))"), ("a & b ^ c", "((a & b) ^ c)"),
    ("a & b == c", "(a & (b == c))"), ("a != b & c", "((a != b) & c)"),
    ("a == b < c", "(a == (b < c))"), ("a <= b != c", "((a <= b) != c)"),
    ("a > b << c", "(a > (b << c))"), ("a >> b >= c", "((a >> b) >= c)"),
    ("a << b + c", "(a << (b + c))"), ("a - b >> c", "((a - b) >> c)"),
    ("a + b * c", "(a + (b * c))"), ("a / b - c", "((a / b) - c)"),
    ("a % b + c", "((a % b) + c)"),
    # left associativity of every binary operator
    *[(f"a {op} b {op} c", f"((a {op} b) {op} c)") for op in
      "|| ^^ && | ^ & == != < <= > >= << >> + - * / %".split()],
    # right associativity of assignment and ?:
    *[(f"a {op} b {op} c", f"(a {op} (b {op} c))") for op in
      "= += -= *= /= %= &= |= ^= <<= >>=".split()],
    ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
    ("a ? b ? c : d : e", "(a ? (b ? c : d) : e)"),
    ("x = a || b ? c : d", "(x = ((a || b) ? c : d))"),
    ("a ? x = 1 : y", "(a ? (x = 1) : y)"),
    # unary and postfix
    ("-a * b", "((-a) * b)"), ("!a && ~b", "((!a) && (~b))"), ("- -a", "(-(-a))"),
    ("*p + 1", "((*p) + 1)"), ("&x", "(&x)"), ("+x", "(+x)"), ("-*p++", "(-(*(p++)))"),
    ("++x + y--", "((++x) + (y--))"), ("--*p", "(--(*p))"), ("!~-x", "(!(~(-x)))"),
    ("a->b->c", "a->b->c"), ("a.b[1].c", "a.b[1].c"), ("*a->b", "(*a->b)"),
    ("-a[1]", "(-a[1])"), ("(a + b) * c", "((a + b) * c)"),
])
def test_precedence_and_associativity(src, want):
    assert p(src) == want


@pytest.mark.parametrize("src,want,text,base,ptr", [
    ("(uint64_t)x", "((uint64_t)x)", "uint64_t", "uint64_t", 0),
    ("(struct thread *)arg0", "((struct thread *)arg0)", "struct thread *", "struct thread", 1),
    ("(char **)p", "((char **)p)", "char **", "char", 2),
    ("(unsigned long long)x", "((unsigned long long)x)", "unsigned long long",
     "unsigned long long", 0),
    ("(const char *)p", "((char *)p)", "char *", "char", 1),
    ("(enum tstate)s", "((enum tstate)s)", "enum tstate", "enum tstate", 0),
    ("(union u *)p", "((union u *)p)", "union u *", "union u", 1),
    ("(u64)x", "((u64)x)", "u64", "u64", 0),
    ("(size_t *)x", "((size_t *)x)", "size_t *", "size_t", 1),
    ("(u64)(x)", "((u64)x)", "u64", "u64", 0),
    ("(u64)!x", "((u64)(!x))", "u64", "u64", 0),
    ("(int)-x", "((int)(-x))", "int", "int", 0),
    ("(string)x", "((string)x)", "string", "string", 0),
])
def test_casts(src, want, text, base, ptr):
    e = parse_expr(src)
    assert unparse(e) == want
    assert isinstance(e, ast.Cast)
    assert (e.type.text, e.type.base, e.type.pointer) == (text, base, ptr)


@pytest.mark.parametrize("src,want", [
    ("(a) - b", "(a - b)"), ("(a) * b", "(a * b)"), ("(a) & b", "(a & b)"),
    ("(a)", "a"), ("*(uint64_t *)addr", "(*((uint64_t *)addr))"),
    ("(struct thread *)arg0->name", "((struct thread *)arg0->name)"),
    ("((struct thread *)arg0)->name", "((struct thread *)arg0)->name"),
    ("(uint32_t)x + 1", "(((uint32_t)x) + 1)"),
])
def test_cast_vs_parenthesised_expression(src, want):
    assert p(src) == want


def test_sizeof():
    e = parse_expr("sizeof(struct thread) + sizeof x + sizeof(y) + sizeof(u64 *)")
    assert unparse(e) == "(((sizeof(struct thread) + sizeof(x)) + sizeof(y)) + sizeof(u64 *))"
    st, sx, sy, su = e.lhs.lhs.lhs, e.lhs.lhs.rhs, e.lhs.rhs, e.rhs
    assert isinstance(st, ast.SizeofType) and st.type.text == "struct thread"
    assert isinstance(sx, ast.SizeofExpr) and isinstance(sy, ast.SizeofExpr)
    assert isinstance(su, ast.SizeofType) and su.type.pointer == 1


def test_literals():
    e = parse_expr("0x10UL + 017 + 'a' + 5u + 7l")
    ints = [n for n in ast.walk(e) if isinstance(n, ast.IntLit)]
    assert [(n.value, n.unsigned, n.long, n.char) for n in ints] == [
        (16, True, True, False), (15, False, False, False), (97, False, False, True),
        (5, True, False, False), (7, False, True, False)]
    s = parse_expr(r'"a\tb" "c\x41\0"')
    assert isinstance(s, ast.StrLit) and s.value == b"a\tbcA\0"
    assert unparse(s) == r'"a\tbcA\0"'


def test_variables_arrays_members_calls():
    e = parse_expr("self->x[this->k] + args[0]->name + `sched_threads + curthread->ts.n")
    names = [type(n).__name__ for n in ast.walk(e)]
    assert names.count("SelfVar") == 1 and names.count("ThisVar") == 1
    idx = next(n for n in ast.walk(e) if isinstance(n, ast.Index))
    assert isinstance(idx.expr, ast.SelfVar) and idx.expr.name == "x"
    assoc = next(n for n in ast.walk(e) if isinstance(n, ast.Assoc))
    assert assoc.name == "args" and [k.value for k in assoc.keys] == [0]
    bq = next(n for n in ast.walk(e) if isinstance(n, ast.Backquote))
    assert bq.symbol == "sched_threads"
    mem = [n for n in ast.walk(e) if isinstance(n, ast.Member)]
    assert [(m.name, m.arrow) for m in mem] == [("name", True), ("n", False), ("ts", True)]
    a = parse_expr("count[pid, probefunc]")
    assert isinstance(a, ast.Assoc) and a.name == "count" and len(a.keys) == 2
    c = parse_expr('strjoin(substr(s, 1, 2), "x")')
    assert isinstance(c, ast.Call) and c.name == "strjoin"
    assert unparse(c) == 'strjoin(substr(s, 1, 2), "x")'
    assert (c.name_pos.col, c.name_pos.length) == (1, 7)
    assert parse_expr("exit()").args == []
    assert unparse(parse_expr("a[1][2]")) == "a[1][2]"
    assert isinstance(parse_expr("a[1][2]"), ast.Index)


def test_aggregations():
    e = parse_expr("@lat[probefunc, tid] = quantize(timestamp - self->ts)")
    assert isinstance(e, ast.AggAssign)
    assert (e.name, e.func, len(e.keys), len(e.args)) == ("lat", "quantize", 2, 1)
    assert (e.func_pos.col, e.func_pos.length) == (24, 8)
    anon = parse_expr("@ = count()")
    assert (anon.name, anon.keys, anon.func, anon.args) == ("", [], "count", [])
    lq = parse_expr("@[1] = lquantize(x, 0, 100, 10)")
    assert lq.name == "" and len(lq.args) == 4
    call = parse_expr("printa(\"%@d\\n\", @a)")
    assert isinstance(call.args[1], ast.AggRef) and call.args[1].name == "a"
    assert parse_expr("trunc(@a, 5)").args[0].keys is None
    assert parse_expr("x(@a[1])").args[0].keys is not None
    assert unparse(e) == "(@lat[probefunc, tid] = quantize((timestamp - self->ts)))"


def test_probe_descriptions_fill_from_the_right():
    cases = {"BEGIN": ("", "", "", "BEGIN"), "tick-1s": ("", "", "", "tick-1s"),
             "a:b": ("", "", "a", "b"), "sched:::switch": ("sched", "", "", "switch"),
             "syscall::read:entry": ("syscall", "", "read", "entry"),
             "p:m:f:n": ("p", "m", "f", "n"), "::f:": ("", "", "f", ""),
             "sched:::s*": ("sched", "", "", "s*"), "x:[a-c]?:*:n": ("x", "[a-c]?", "*", "n")}
    for text, fields in cases.items():
        d = parse_probe_desc(text)
        assert (d.text, d.fields) == (text, fields)
    for bad in ("a:b:c:d:e", "", "a b", "foo[", "x]"):
        with pytest.raises(CompileError):
            parse_probe_desc(bad)


SCRIPT = """#!/usr/sbin/dtrace -s
#pragma D option quiet
#pragma D option switchrate=10hz

sched:::switch, sched:::wakeup
/ arg0 / 2 > 1 && self->ts /
{
	@[thread] = count();
	this->d = timestamp - self->ts;
	if (this->d > 1000) { printf("%s %d\\n", thread, this->d); } else trace(1);
	self->ts = 0
}

BEGIN {}
tick-1s
mem:::alloc /arg0 > 100/ { @sz = quantize(arg0); }
END /x/
"""


def test_whole_script():
    s = parse(SCRIPT, "s.d")
    assert [(pr.name, pr.value) for pr in s.pragmas] == [("quiet", None), ("switchrate", "10hz")]
    assert [[d.text for d in c.descriptions] for c in s.clauses] == [
        ["sched:::switch", "sched:::wakeup"], ["BEGIN"], ["tick-1s"], ["mem:::alloc"], ["END"]]
    c0, c1, c2, c4, c3 = s.clauses
    assert unparse(c0.predicate) == "(((arg0 / 2) > 1) && self->ts)"
    assert [type(st).__name__ for st in c0.body] == ["ExprStmt", "ExprStmt", "If", "ExprStmt"]
    assert isinstance(c0.body[0].expr, ast.AggAssign)
    iff = c0.body[2]
    assert len(iff.then) == 1 and isinstance(iff.else_[0].expr, ast.Call)
    assert c1.body == [] and c1.predicate is None
    assert c2.body is None and c2.predicate is None         # default action
    assert c3.body is None and unparse(c3.predicate) == "x"
    assert c4.predicate is not None and len(c4.body) == 1
    assert (c0.pos.line, c0.pos.col) == (5, 1)
    assert (c4.descriptions[0].pos.line, c4.descriptions[0].pos.length) == (16, 11)


def test_round_trip_is_stable():
    s1 = unparse(parse(SCRIPT, "s.d"))
    s2 = unparse(parse(s1, "s.d"))
    assert s1 == s2
    assert "#pragma D option quiet" in s1


def test_predicate_slash_followed_by_a_name_is_division_as_in_dtrace():
    s = parse("END /x/ 2 / { }", "t.d")
    assert unparse(s.clauses[0].predicate) == "(x / 2)"
    with pytest.raises(CompileError) as e:
        parse("END /x/\nmem:::alloc { }", "t.d")
    assert "expected '/' to close the predicate" in str(e.value)


def test_statement_forms():
    s = parse("BEGIN { ; { x = 1; { y = 2 } } if (a) if (b) c = 1; else d = 2; "
              "if (e) { } else if (f) { g++; } }", "t.d")
    body = s.clauses[0].body
    assert [type(b).__name__ for b in body] == ["Block", "If", "If"]
    assert isinstance(body[0].body[1], ast.Block)
    inner = body[1].then[0]                      # dangling else binds to the nearest if
    assert isinstance(inner, ast.If) and inner.else_ is not None and body[1].else_ is None
    assert body[2].then == [] and isinstance(body[2].else_[0], ast.If)


def test_node_positions_span_their_source():
    src = "BEGIN {\n\tx = foo + bar(1, 2);\n}"
    s = parse(src, "t.d")
    asg = s.clauses[0].body[0].expr
    line = src.split("\n")[1]
    def text(n):
        return line[n.pos.col - 1:n.pos.col - 1 + n.pos.length]
    assert text(asg) == "x = foo + bar(1, 2)"
    assert text(asg.value) == "foo + bar(1, 2)"
    assert text(asg.value.lhs) == "foo"
    assert text(asg.value.rhs) == "bar(1, 2)"
    assert all(n.pos.file == "t.d" for n in ast.walk(s.clauses[0]))


def test_multiline_span_is_clipped_to_its_first_line():
    e = parse("BEGIN { x = a +\n   b; }", "t.d").clauses[0].body[0].expr
    assert (e.pos.line, e.pos.col, e.pos.length) == (1, 9, 7)


def test_empty_script_and_semicolons_between_clauses():
    assert parse("", "t.d").clauses == []
    assert parse("/* nothing */\n", "t.d").clauses == []
    assert len(parse("BEGIN {};END {};", "t.d").clauses) == 2


@pytest.mark.parametrize("pattern,text,want", [
    ("s*", "switch", True), ("s*", "wakeup", False), ("*", "", True), ("?", "", False),
    ("?", "x", True), ("thread-[ce]*", "thread-create", True),
    ("thread-[!c]*", "thread-create", False), ("thread-[^c]*", "thread-exit", True),
    ("[a-c]x", "bx", True), ("[a-c]x", "dx", False), ("[]]", "]", True),
    ("[!]a]", "b", True), ("[!]a]", "]", False), ("a\\*", "a*", True), ("a\\*", "ab", False),
    ("ab[", "ab[", True), ("", "", True), ("", "x", False), ("tick-*", "tick-1s", True),
    ("*-*", "page-alloc", True), ("switch", "switch", True), ("switch", "switc", False),
    ("sw*h", "switch", True), ("s?itch", "switch", True),
])
def test_glob(pattern, text, want):
    assert glob_match(pattern, text) is want


def test_is_glob():
    assert [is_glob(x) for x in ("a*", "a?", "[a]", "abc", "a-b")] == [True, True, True,
                                                                         False, False]


@pytest.mark.parametrize("src", [
    "BEGIN { x = " + "(" * 5000 + "1" + ")" * 5000 + "; }",
    "BEGIN { x = " + "-" * 5000 + "1; }",
    "BEGIN " + "{" * 3000 + "}" * 3000,
    "BEGIN { " + "if (1) " * 3000 + "x = 1; }",
    "BEGIN { x = " + "a[" * 3000 + "1" + "]" * 3000 + "; }",
    "BEGIN { x = " + "f(" * 3000 + "1" + ")" * 3000 + "; }",
    "BEGIN { x = " + "1 ? " * 3000 + "1" + " : 2" * 3000 + "; }",
    "BEGIN { x = " + "a = " * 3000 + "1; }",
    "BEGIN { x = " + "1 + " * 5000 + "1; }",
    "BEGIN /" + "(" * 5000 + "x/ {}",
])
def test_deep_nesting_is_an_error_not_a_crash(src):
    with pytest.raises(CompileError) as e:
        parse(src, "d.d")
    assert [d.message for d in e.value.diagnostics][0] == \
        "expression or statement nested too deeply"


def test_reasonable_nesting_is_fine():
    e = parse_expr("(" * 40 + "x" + ")" * 40 + " + " + "- " * 30 + "y")
    assert unparse(e) == "(x + " + "(-" * 30 + "y" + ")" * 30 + ")"


def test_random_input_gives_diagnostics_never_exceptions():
    import random
    rng = random.Random(5)
    pieces = ["BEGIN", "tick-1s", "sched:::s*", "{", "}", "(", ")", "[", "]", "/", ";", ",",
              "x", "self", "->", "this", "@a", "@", "=", "+=", "count()", "?", ":", "1", "0x",
              "09", "'", '"', "\\", "#pragma D option q\n", "\n", " ", "(int)", "sizeof",
              "struct", "*", "&", "if", "else", "`", "a[1,2]", ".", "++", "/*", "*/", "//",
              "^^", "$"]
    failed = 0
    for _ in range(3000):
        if rng.random() < 0.2:
            src = "".join(chr(rng.randint(0, 300)) for _ in range(rng.randint(0, 40)))
        else:
            src = "".join(rng.choice(pieces) + rng.choice(["", " "])
                          for _ in range(rng.randint(0, 30)))
        try:
            parse(src, "f.d")
        except CompileError as e:
            assert e.diagnostics and all(d.pos is not None for d in e.diagnostics)
            shown = min(len(e.diagnostics), diag.MAX_SHOWN)
            assert str(e).count(": error: ") == shown
            failed += 1
    assert 2000 < failed < 3000          # most soups are wrong, some are valid programs
