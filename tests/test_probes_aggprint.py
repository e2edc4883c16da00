"""probes/aggprint.py: the kernel's aggregation snapshot, decoded and printed
as dtrace prints aggregations.  Golden tables are the DTrace guide's own
examples (Oracle's DTrace guide, aggregations chapter)."""
import struct

import pytest

from probes import isa
from probes.aggprint import (AggDecodeError, AggEntry, DIST_HEADER, agg_json, cdiv,
                             decode_agg_entries, dist_table, format_agg, format_end,
                             format_printa, quantize_value, scalar, sort_entries, stddev,
                             trunc_keep)
from probes.printf import FormatError, parse_format
from probes.program import AggDesc, Program, ValType

F = isa.AggFunc
STR = ValType("string")
U64 = ValType("int", 8, False, "uint64_t")
I32 = ValType("int", 4, True, "int")


def agg(i, name, func, keys=(), lq=None):
    return AggDesc(i, name, func, list(keys), lq)


def q(pairs):
    """Quantize words from (bucket value, count) pairs."""
    w = [0] * isa.QUANTIZE_BUCKETS
    for v, c in pairs:
        w[next(i for i in range(isa.QUANTIZE_BUCKETS) if quantize_value(i) == v)] = c
    return tuple(w)


# ---------------------------------------------------------------- golden tables

GUIDE_QUANTIZE = """\
  bash                                              
           value  ------------- Distribution ------------- count    
            8192 |                                         0        
           16384 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@         4        
           32768 |                                         0        
           65536 |                                         0        
          131072 |@@@@@@@@                                 1        
          262144 |                                         0        

"""

GUIDE_LQUANTIZE = """\
  gnome-session                                     
           value  ------------- Distribution ------------- count    
              25 |                                         0        
              26 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 9        
              27 |                                         0        

"""


def test_quantize_matches_the_guide():
    d = agg(0, "time", F.QUANTIZE, [STR])
    e = AggEntry(0, ("bash",), q([(16384, 4), (131072, 1)]))
    assert format_agg(d, [e]) == GUIDE_QUANTIZE


def test_lquantize_matches_the_guide():
    d = agg(0, "fds", F.LQUANTIZE, [STR], lq=(0, 100, 1))
    w = [0] * 102
    w[1 + 26] = 9
    assert format_agg(d, [AggEntry(0, ("gnome-session",), tuple(w))]) == GUIDE_LQUANTIZE


def test_count_rows_as_the_guide_prints_them():
    d = agg(0, "counts", F.COUNT, [STR])
    es = [AggEntry(0, ("sed",), (10,)), AggEntry(0, ("dtrace",), (1,)),
          AggEntry(0, ("cat",), (4,))]
    assert format_agg(d, es) == (
        "  dtrace                                                            1\n"
        "  cat                                                               4\n"
        "  sed                                                              10\n")
    one = [AggEntry(0, ("write system calls",), (179,))]
    assert format_agg(d, one) == \
        "  write system calls                                              179\n"


def test_no_keys_and_integer_keys():
    d = agg(0, "", F.COUNT)
    assert format_agg(d, [AggEntry(0, (), (1,))]) == "                1\n"
    d = agg(0, "", F.SUM, [U64, I32, STR])
    assert format_agg(d, [AggEntry(0, (7, -3, "x"), (2 ** 64 - 5,))]) == \
        "                7       -3  x" + " " * 49 + "               -5\n"


def test_ties_sort_by_key_and_values_ascending():
    d = agg(0, "a", F.SUM, [STR])
    es = [AggEntry(0, ("b",), (5,)), AggEntry(0, ("a",), (5,)),
          AggEntry(0, ("z",), (2 ** 64 - 1,))]
    assert [e.key for e in sort_entries(d, es)] == [("z",), ("a",), ("b",)]


@pytest.mark.parametrize("func,words,value", [
    (F.COUNT, (12,), 12), (F.SUM, (2 ** 64 - 10,), -10), (F.MIN, (2 ** 64 - 3,), -3),
    (F.MAX, (99,), 99), (F.AVG, (3, 10), 3), (F.AVG, (3, 2 ** 64 - 10), -3),
    (F.AVG, (0, 0), 0),
])
def test_scalars(func, words, value):
    assert scalar(agg(0, "a", func), words) == value


def test_stddev_is_integer_sqrt_of_variance():
    xs = [2, 4, 4, 4, 5, 5, 7, 9]                  # population stddev 2
    sq = sum(x * x for x in xs)
    words = (len(xs), sum(xs), sq & (2 ** 64 - 1), sq >> 64)
    assert stddev(words) == 2
    d = agg(0, "s", F.STDDEV)
    assert format_agg(d, [AggEntry(0, (), words)]) == "                2\n"
    big = [2 ** 40, 0]                              # sum of squares beyond 64 bits
    sq = sum(x * x for x in big)
    assert stddev((2, 2 ** 40, sq & (2 ** 64 - 1), sq >> 64)) == 2 ** 39
    assert stddev((0, 0, 0, 0)) == 0


def test_avg_and_stddev_rows():
    d = agg(0, "lat", F.AVG, [STR])
    assert format_agg(d, [AggEntry(0, ("read",), (4, 1002))]) == \
        "  read" + " " * 46 + "              250\n"
    assert len(format_agg(d, [AggEntry(0, ("read",), (4, 1002))])) == 2 + 50 + 1 + 16 + 1


def test_quantize_zero_and_negative_buckets():
    d = agg(0, "", F.QUANTIZE)
    text = format_agg(d, [AggEntry(0, (), q([(0, 1), (1, 1), (2, 2)]))])
    assert text == ("\n" + DIST_HEADER[1:] +
                    "              -1 |                                         0        \n"
                    "               0 |@@@@@@@@@@                               1        \n"
                    "               1 |@@@@@@@@@@                               1        \n"
                    "               2 |@@@@@@@@@@@@@@@@@@@@                     2        \n"
                    "               4 |                                         0        \n"
                    "\n")
    neg = dist_table(d, q([(-4, 1), (-1, 1)]))
    assert "              -8 |" in neg and "              -4 |@@@@@@@@@@@@@@@@@@@@" in neg
    assert "               0 |                                         0" in neg


def test_quantize_all_zero_prints_around_zero():
    d = agg(0, "", F.QUANTIZE)
    t = dist_table(d, (0,) * isa.QUANTIZE_BUCKETS)
    rows = t.splitlines()[2:]
    assert [r.split("|")[0].strip() for r in rows] == ["-1", "0", "1"]


def test_lquantize_underflow_overflow_rows():
    d = agg(0, "", F.LQUANTIZE, lq=(0, 10, 2))        # levels 0 2 4 6 8
    w = [3, 0, 0, 0, 0, 1, 4]
    t = dist_table(d, tuple(w))
    rows = t.splitlines()[2:]
    assert rows[0] == "             < 0 |@@@@@@@@@@@@@@@                          3        "
    assert rows[-1] == "           >= 10 |@@@@@@@@@@@@@@@@@@@@                     4        "
    assert [r[:17].strip() for r in rows] == ["< 0", "0", "2", "4", "6", "8", ">= 10"]
    t = dist_table(d, (0, 0, 5, 0, 0, 0, 0))
    assert [r[:17].strip() for r in t.splitlines()[2:]] == ["0", "2", "4"]


def test_bars_round_half_up():
    d = agg(0, "", F.QUANTIZE)
    t = dist_table(d, q([(1, 1), (2, 2), (4, 77)]))     # 40/80 = 0.5 -> 1
    rows = t.splitlines()[2:]
    assert rows[1].count("@") == 1 and rows[2].count("@") == 1 and rows[3].count("@") == 39


def test_normalize_divides_values_like_c():
    d = agg(0, "a", F.SUM, [STR])
    assert format_agg(d, [AggEntry(0, ("x",), (2 ** 64 - 7,))], normal=2).endswith(
        "               -3\n")
    dq = agg(0, "", F.QUANTIZE)
    t = dist_table(dq, q([(8, 10)]), normal=3)
    assert "               8 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 3        " in t
    assert cdiv(-7, 2) == -3 and cdiv(7, 0) == 0


def test_trunc_keeps_top_or_bottom():
    d = agg(0, "a", F.COUNT, [STR])
    es = [AggEntry(0, (k,), (v,)) for k, v in (("a", 1), ("b", 5), ("c", 3), ("d", 9))]
    assert [e.key[0] for e in trunc_keep(d, es, 2)] == ["b", "d"]
    assert [e.key[0] for e in trunc_keep(d, es, -1)] == ["a"]
    assert trunc_keep(d, es, 0) == []
    assert len(trunc_keep(d, es, 10)) == 4


def test_printa_format():
    d = agg(0, "a", F.COUNT, [STR, U64])
    es = [AggEntry(0, ("read", 3), (7,)), AggEntry(0, ("write", 4), (2,))]
    p = parse_format("%-6s fd=%d %@5d\n", printa=True)
    assert format_printa(d, es, p) == "write  fd=4     2\nread   fd=3     7\n"
    p = parse_format("%s %s %s %@d\n", printa=True)
    with pytest.raises(FormatError, match="more conversions"):
        format_printa(d, es, p)
    dq = agg(1, "q", F.QUANTIZE, [STR])
    out = format_printa(dq, [AggEntry(1, ("k",), q([(2, 1)]))],
                        parse_format("key %s:%@d\n", printa=True))
    assert out.startswith("key k:\n           value  ---")


def test_several_aggregations_get_name_lines():
    a = agg(0, "calls", F.COUNT, [STR])
    b = agg(1, "bytes", F.SUM, [STR])
    c = agg(2, "none", F.MAX)
    prog = Program("", "t.d", b"", [], [a, b, c], [], [])
    es = [AggEntry(1, ("w",), (100,)), AggEntry(0, ("r",), (2,)), AggEntry(0, ("w",), (1,))]
    pad = " " * 49
    assert format_end(prog, es) == (
        "@calls\n"
        f"  w{pad}                1\n"
        f"  r{pad}                2\n"
        "\n"
        "@bytes\n"
        f"  w{pad}              100\n")
    assert format_end(prog, es, printed={0}) == f"@bytes\n  w{pad}              100\n"
    single = Program("", "t.d", b"", [], [a], [], [])
    assert format_end(single, es[1:]) == f"  w{pad}                1\n  r{pad}                2\n"


def _entry(agg_i, key_bytes, words):
    return (struct.pack("<HHI", agg_i, len(key_bytes), len(words))
            + key_bytes + b"\0" * (-len(key_bytes) % 8)
            + struct.pack(f"<{len(words)}Q", *words))


def _skey(s: bytes):
    raw = struct.pack("<H", len(s)) + s
    return raw + b"\0" * (-len(raw) % 8)


def test_decode_snapshot():
    a = agg(0, "a", F.COUNT, [STR, I32])
    lq = agg(1, "l", F.LQUANTIZE, [], lq=(0, 4, 1))
    prog = Program("", "t.d", b"", [], [a, lq], [], [])
    payload = (_entry(0, _skey(b"idle") + struct.pack("<q", -2), [5])
               + _entry(1, b"", [0, 1, 2, 3, 4, 0]))
    es = decode_agg_entries(payload, prog)
    assert es == [AggEntry(0, ("idle", -2), (5,)), AggEntry(1, (), (0, 1, 2, 3, 4, 0))]
    assert decode_agg_entries(b"", prog) == []


@pytest.mark.parametrize("payload,msg", [
    (b"\1\0", "truncated header"),
    (struct.pack("<HHI", 9, 0, 1) + b"\0" * 8, "aggregation 9 does not exist"),
    (struct.pack("<HHI", 0, 0, 2) + b"\0" * 16, "2 value words, expected 1"),
    (struct.pack("<HHI", 0, 16, 1) + b"\0" * 8, "runs past the end"),
    (struct.pack("<HHI", 0, 8, 1) + struct.pack("<H", 300) + b"\0" * 14, "string of 300"),
])
def test_decode_rejects_malformed(payload, msg):
    prog = Program("", "t.d", b"", [], [agg(0, "a", F.COUNT, [STR])], [], [])
    with pytest.raises(AggDecodeError, match=msg):
        decode_agg_entries(payload, prog)


def test_json_forms():
    d = agg(0, "a", F.AVG, [STR])
    j = agg_json(d, [AggEntry(0, ("x",), (2, 9))])
    assert j == {"type": "aggregation", "name": "a", "func": "avg",
                 "entries": [{"key": ["x"], "value": 4}]}
    dq = agg(0, "q", F.QUANTIZE)
    assert agg_json(dq, [AggEntry(0, (), q([(4, 2)]))])["entries"] == \
        [{"key": [], "buckets": [[4, 2]]}]
    dl = agg(0, "l", F.LQUANTIZE, lq=(10, 30, 10))
    assert agg_json(dl, [AggEntry(0, (), (1, 0, 3, 2))])["entries"] == \
        [{"key": [], "buckets": [[20, 3]], "underflow": 1, "overflow": 2}]
