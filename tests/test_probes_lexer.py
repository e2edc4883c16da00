"""The D lexer (probes/lexer.py): token kinds, values and positions, the
outer/predicate/body states, pragmas, and errors that do not stop lexing."""
from __future__ import annotations

import pytest

from probes import lexer
from probes.lexer import lex


def kinds(src: str, mode=lexer.BODY) -> list:
    lx = lexer.Lexer(src, "t.d")
    lx.mode, lx.depth = mode, 1
    toks = lx.run()
    assert lx.diags == [], lx.diags
    return [t.kind for t in toks[:-1]]


def one(src: str):
    lx = lexer.Lexer(src, "t.d")
    lx.mode, lx.depth = lexer.BODY, 1
    toks = lx.run()
    assert len(toks) == 2, toks
    return toks[0], lx.diags


@pytest.mark.parametrize("op", lexer.OPERATORS)
def test_every_operator_is_one_token(op):
    src = f"a {op} b" if op not in "{}" else f"a {op}"
    want = ["IDENT", op, "IDENT"] if op not in "{}" else ["IDENT", op]
    assert kinds(src) == want


def test_longest_match_and_dtrace_xor():
    assert kinds("a<<=b>>=c->d^^e") == ["IDENT", "<<=", "IDENT", ">>=", "IDENT", "->",
                                       "IDENT", "^^", "IDENT"]
    assert kinds("a+++b") == ["IDENT", "++", "+", "IDENT"]
    assert kinds("a&&&b") == ["IDENT", "&&", "&", "IDENT"]


@pytest.mark.parametrize("text,value,uns,lng", [
    ("0", 0, False, False), ("42", 42, False, False), ("0x1F", 31, False, False),
    ("0X10", 16, False, False), ("017", 15, False, False), ("10u", 10, True, False),
    ("10U", 10, True, False), ("10l", 10, False, True), ("10UL", 10, True, True),
    ("10lu", 10, True, True), ("10ull", 10, True, True), ("10LL", 10, False, True),
    ("0xffffffffffffffff", 2**64 - 1, False, False),
])
def test_integer_literals(text, value, uns, lng):
    t, diags = one(text)
    assert (t.kind, t.value, t.unsigned, t.long) == ("INT", value, uns, lng)
    assert diags == []


@pytest.mark.parametrize("text,message", [
    ("09", "invalid digit '9' in octal constant"),
    ("0x", "hexadecimal constant has no digits"),
    ("12abc", "invalid suffix 'abc' on integer constant"),
    ("1uu", "invalid suffix 'uu' on integer constant"),
    ("1lul", "invalid suffix 'lul' on integer constant"),
    ("0x10000000000000000", "integer constant is too large"),
])
def test_bad_numbers(text, message):
    t, diags = one(text)
    assert t.kind == "INT"
    assert [d.message for d in diags] == [message]
    assert (diags[0].pos.col, diags[0].pos.length) == (1, len(text))


@pytest.mark.parametrize("text,value", [
    (r'"abc"', b"abc"), (r'"a\nb\tc"', b"a\nb\tc"), (r'"q\"\\"', b'q"\\'),
    (r'"\0"', b"\0"), (r'"\x41\x4a"', b"AJ"), (r'"\101\60"', b"A0"), (r'"\1234"', b"S4"),
    (r'"\a\b\f\v\r\?\'"', b"\a\b\f\v\r?'"), ('""', b""), ('"é"', "é".encode()),
])
def test_string_escapes(text, value):
    t, diags = one(text)
    assert (t.kind, t.value, diags) == ("STRING", value, [])


def test_string_errors_continue():
    toks, _, diags = lex('BEGIN { x = "abc\n; y = "\\q"; z = "\\x"; }', "t.d")
    assert [d.message for d in diags] == [
        "missing terminating '\"' character", "unknown escape sequence '\\q'",
        "\\x used with no following hex digits"]
    assert [d.pos.line for d in diags] == [1, 2, 2]
    assert toks[-2].kind == "}" and toks[-1].kind == "EOF"


@pytest.mark.parametrize("text,value", [("'a'", 97), (r"'\n'", 10), (r"'\0'", 0),
                                        (r"'\x7f'", 127), (r"'\''", 39), ("'ab'", 0x6162)])
def test_char_literals(text, value):
    t, diags = one(text)
    assert (t.kind, t.value, diags) == ("CHAR", value, [])


def test_char_errors():
    for text, msg in (("''", "empty character constant"),
                      ("'a", "missing terminating ' character")):
        _, diags = one(text)
        assert [d.message for d in diags] == [msg]


def test_keywords_idents_aggs_backquotes():
    toks = lexer.Lexer("sizeof self this if else uint32_t struct string foo_1 @a @ `sched_threads",
                       "t.d")
    toks.mode, toks.depth = lexer.BODY, 1
    ts = toks.run()[:-1]
    assert [t.kind for t in ts] == ["sizeof", "self", "this", "if", "else", "uint32_t",
                                    "struct", "string", "IDENT", "AGG", "AGG", "BQ"]
    assert [t.value for t in ts[-3:]] == ["a", "", "sched_threads"]


def test_positions_lines_columns_lengths():
    toks, _, _ = lex("BEGIN\n{\n\tx = 0x10;  /* c */ y\n}\n", "f.d")
    got = [(t.kind, t.pos.line, t.pos.col, t.pos.length) for t in toks]
    assert got == [("PSPEC", 1, 1, 5), ("{", 2, 1, 1), ("IDENT", 3, 2, 1), ("=", 3, 4, 1),
                   ("INT", 3, 6, 4), (";", 3, 10, 1), ("IDENT", 3, 21, 1), ("}", 4, 1, 1),
                   ("EOF", 5, 1, 1)]
    assert all(t.pos.file == "f.d" for t in toks)


def test_outer_state_probe_descriptions():
    toks, _, diags = lex("syscall::read:entry,sched:::s*, tick-1s\nfoo:[a-c]?:*:thread-create {}",
                         "t.d")
    assert diags == []
    assert [(t.kind, t.value) for t in toks if t.kind == "PSPEC"] == [
        ("PSPEC", "syscall::read:entry"), ("PSPEC", "sched:::s*"), ("PSPEC", "tick-1s"),
        ("PSPEC", "foo:[a-c]?:*:thread-create")]


def test_body_braces_nest_and_return_to_outer():
    toks, _, _ = lex("BEGIN { if (x) { y = 1; } } END { }", "t.d")
    assert [t.kind for t in toks] == ["PSPEC", "{", "if", "(", "IDENT", ")", "{", "IDENT", "=",
                                      "INT", ";", "}", "}", "PSPEC", "{", "}", "EOF"]


@pytest.mark.parametrize("src,want", [
    ("BEGIN /x/ {}", ["PSPEC", "PRED_OPEN", "IDENT", "PRED_CLOSE", "{", "}"]),
    ("BEGIN / a / b > 1 / {}", ["PSPEC", "PRED_OPEN", "IDENT", "/", "IDENT", ">", "INT",
                                "PRED_CLOSE", "{", "}"]),
    ("BEGIN /x/", ["PSPEC", "PRED_OPEN", "IDENT", "PRED_CLOSE"]),
    ("BEGIN /x/\n\n{}", ["PSPEC", "PRED_OPEN", "IDENT", "PRED_CLOSE", "{", "}"]),
    ("A /x/; B", ["PSPEC", "PRED_OPEN", "IDENT", "PRED_CLOSE", ";", "PSPEC"]),
    ("BEGIN /x > 1 { }", ["PSPEC", "PRED_OPEN", "IDENT", ">", "INT", "{", "}"]),
    ("BEGIN /a /* c */ / b/ {}", ["PSPEC", "PRED_OPEN", "IDENT", "/", "IDENT", "PRED_CLOSE",
                                  "{", "}"]),
])
def test_predicate_slash_rule(src, want):
    toks, _, diags = lex(src, "t.d")
    assert diags == []
    assert [t.kind for t in toks[:-1]] == want


def test_comments_shebang_and_pragmas():
    src = ("#!/usr/sbin/dtrace -s\n// line comment\n#pragma D option quiet\n"
           "  #pragma D option bufsize=1m\n/* block\ncomment */ BEGIN {}\n")
    toks, pragmas, diags = lex(src, "p.d")
    assert diags == []
    assert [t.kind for t in toks] == ["PSPEC", "{", "}", "EOF"]
    assert [(p.name, p.value) for p in pragmas] == [("quiet", None), ("bufsize", "1m")]
    assert (pragmas[1].pos.line, pragmas[1].pos.col, pragmas[1].pos.length) == (4, 20, 10)


@pytest.mark.parametrize("line,message", [
    ("#include <x.h>", "unsupported directive '#include'"),
    ("#pragma D depends_on x", "unsupported pragma 'D depends_on'"),
    ("#pragma D option", "expected one NAME[=VALUE] after '#pragma D option'"),
    ("#pragma D option =1", "missing option name before '='"),
])
def test_bad_control_lines(line, message):
    _, pragmas, diags = lex(line + "\nBEGIN {}", "t.d")
    assert pragmas == [] and [d.message for d in diags] == [message]


def test_bad_characters_and_unterminated_comment_keep_going():
    toks, _, diags = lex("BEGIN { x = $; y = # 1; }\n\"tick\" {}\n/* open", "t.d")
    assert [(d.message, d.pos.line, d.pos.col) for d in diags] == [
        ("unexpected character '$'", 1, 13), ("unexpected character '#'", 1, 20),
        ("unexpected character '\"'", 2, 1), ("unexpected character '\"'", 2, 6),
        ("unterminated comment", 3, 1)]
    assert diags[2].hints == ["probe descriptions are written without quotes"]
    assert toks[-1].kind == "EOF"
    assert "PSPEC" in [t.kind for t in toks[10:]]   # 'tick' still lexed after the errors
