"""probes/printf.py: DTrace printf formats, parsed and applied."""
import pytest

from probes.printf import (Conv, FormatError, conversions, date_text, format_values, nargs,
                           parse_format, symbol_text)


def fmt(f, *vals, symbolize=None):
    return format_values(parse_format(f), vals, symbolize)


def test_parse_pieces_and_fields():
    p = parse_format("a %-08.3lld b %% c %*.*s\n")
    assert p[0] == "a "
    c = p[1]
    assert (c.conv, c.flags, c.width, c.precision, c.length, c.offset, c.text) == \
        ("d", "-0", 8, 3, "ll", 2, "%-08.3lld")
    assert p[2] == " b % c "
    s = p[3]
    assert (s.conv, s.width, s.precision, s.nargs, s.arg_kind) == ("s", "*", "*", 3, "string")
    assert p[4] == "\n"
    assert nargs(p) == 4 and len(conversions(p)) == 2


@pytest.mark.parametrize("conv,kind", [("d", "int"), ("i", "int"), ("u", "int"), ("o", "int"),
                                       ("x", "int"), ("X", "int"), ("c", "int"), ("p", "int"),
                                       ("s", "string"), ("a", "sym"), ("A", "sym"),
                                       ("e", "float"), ("f", "float"), ("g", "float"),
                                       ("G", "float"), ("E", "float"), ("F", "float"),
                                       ("Y", "time")])
def test_arg_kinds(conv, kind):
    (c,) = parse_format("%" + conv)
    assert c.arg_kind == kind


@pytest.mark.parametrize("lm", ["hh", "h", "l", "ll", "L", "z", "j", "t"])
def test_length_modifiers_accepted_and_ignored(lm):
    assert fmt("%" + lm + "d|%" + lm + "x", -5, 255) == "-5|ff"


@pytest.mark.parametrize("bad,off,msg", [
    ("abc %", 4, "ends in the middle"),
    ("%5", 0, "ends in the middle"),
    ("x %k", 2, "'%k' (a stack) is only valid in printa() formats"),
    ("x %q", 2, "unknown conversion '%q'"),
    ("%ll", 0, "ends in the middle"),
    ("%@d", 0, "only valid in printa"),
    ("%99999d", 1, "too large"),
])
def test_bad_formats(bad, off, msg):
    with pytest.raises(FormatError) as e:
        parse_format(bad)
    assert e.value.offset == off
    assert msg in e.value.message


def test_printa_agg_flag():
    p = parse_format("%-10s %@8d\n", printa=True)
    assert not p[0].agg and p[2].agg
    assert nargs(p) == 1
    with pytest.raises(FormatError):
        parse_format("%@*d", printa=True)


def test_integers_as_c_prints_them():
    assert fmt("%d %i %5d %-5d| %05d %+d % d", 42, -7, 3, 3, -42, 9, 9) == \
        "42 -7     3 3    | -0042 +9  9"
    assert fmt("%u %x %X %o", -1, -1, 255, 8) == \
        "18446744073709551615 ffffffffffffffff FF 10"
    assert fmt("%#x %#X %#o %#o %#6o %#06o", 31, 31, 15, 0, 15, 15) == \
        "0x1f 0X1F 017 0    017 000017"
    assert fmt("%'d", 1234567) == "1234567"           # C locale: no grouping


def test_star_width_and_precision():
    assert fmt("[%*d]", 6, 42) == "[    42]"
    assert fmt("[%*d]", -6, 42) == "[42    ]"
    assert fmt("[%.*s]", 3, "abcdef") == "[abc]"
    assert fmt("[%*.*s]", 5, 2, "abcdef") == "[   ab]"


def test_strings():
    assert fmt("%s|%10s|%-10s|%.2s", "abc", "abc", "abc", "abc") == \
        "abc|       abc|abc       |ab"
    assert fmt("%s", b"kern\0junk") == "kern"
    assert fmt("%s", b"\xff") == "\ufffd"


def test_char_pointer_float():
    assert fmt("%c%c%3c", 65, 0x142, 66) == "AB  B"
    assert fmt("%p %p", 0, 0xffffffff80001000) == "0x0 0xffffffff80001000"
    assert fmt("%5.2f|%e|%g|%.1f", 3, 1, 100000, -2) == " 3.00|1.000000e+00|100000|-2.0"


def test_symbol_and_date():
    table = {0x1010: ("sched_switch", 0x1a), 0x2000: ("main", 0)}
    sym = table.get
    assert fmt("%a %a %a", 0x1010, 0x2000, 0x3000, symbolize=sym) == \
        "sched_switch+0x1a main 0x3000"
    assert fmt("%a", 0x10) == "0x10"
    assert fmt("%-20a|", 0x2000, symbolize=sym) == "main                |"
    assert symbol_text(5, lambda a: 1 / 0) == "0x5"        # a broken symbolizer
    ns = 1795955696 * 10**9                 # 2026-11-29 12:34:56 UTC
    assert fmt("%Y", ns) == "2026 Nov 29 12:34:56"
    assert date_text(0) == "1970 Jan  1 00:00:00"


def test_too_few_arguments():
    with pytest.raises(FormatError, match="too few arguments for '%s'"):
        fmt("%d %s", 1)
    with pytest.raises(FormatError, match="'\\*'"):
        fmt("%*d")
    with pytest.raises(FormatError, match="integer"):
        fmt("%*d", "x", 3)


def test_agg_value_in_format():
    p = parse_format("%s=%@d;", printa=True)
    assert format_values(p, ["k"], aggval=12) == "k=12;"


def test_conv_is_frozen_dataclass():
    c = Conv("d")
    assert c.nargs == 1 and c.arg_kind == "int"
