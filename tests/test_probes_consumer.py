"""probes/consumer.py: synthetic record streams (isa.REC_HDR) decoded and
printed like dtrace's consumer; malformed input reported, never raised."""
import io
import json
import struct

import pytest

from probes import isa
from probes.aggprint import AggEntry
from probes.consumer import Consumer
from probes.program import AggDesc, Clause, Pos, Probe, Program, RecDesc, ValType

F = isa.AggFunc
STR = ValType("string")
I64 = ValType("int", 8, True, "int64_t")
U32 = ValType("int", 4, False, "uint32_t")
BEGIN = Probe(isa.SynthProbe.BEGIN, "dtrace", "", "", "BEGIN")
SWITCH = Probe(16, "sched", "sched", "thread_switch", "switch",
               (("struct thread *", "prev"), ("struct thread *", "next")))


def make_prog(recdescs, aggs=(), quiet=False):
    c0 = Clause(0, ["BEGIN"], [BEGIN], Pos("s.d", 1, 1), 0, {0: Pos("s.d", 2, 5, 3)})
    c1 = Clause(1, ["sched:::switch"], [SWITCH], Pos("s.d", 4, 1), 10,
                {10: Pos("s.d", 4, 13, 8), 12: Pos("s.d", 5, 2)})
    for i, r in enumerate(recdescs):
        r.index = i
    return Program("src", "s.d", b"", [c0, c1], list(aggs), list(recdescs), [],
                   {"quiet": quiet})


def val(v):
    return struct.pack("<Q", v % (1 << 64))


def sval(s: bytes):
    raw = struct.pack("<H", len(s)) + s
    return raw + b"\0" * (-len(raw) % 8)


def rec(desc, payload=b"", probe=16, ts=1000, size=None):
    size = isa.REC_HDR.size + len(payload) if size is None else size
    return isa.REC_HDR.pack(size=size, desc=desc, probe=probe, timestamp=ts) + payload


def run(prog, data, **kw):
    out, err = io.StringIO(), io.StringIO()
    c = Consumer(prog, out, err=err, **kw)
    c.handle_records(data)
    return c, out.getvalue(), err.getvalue()


def test_printf_quiet():
    prog = make_prog([RecDesc(0, "printf", [STR, I64], fmt="%s=%d\n")])
    data = rec(0, sval(b"idle") + val(-4)) + rec(0, sval(b"main") + val(7), ts=2000)
    c, out, err = run(prog, data, quiet=True)
    assert out == "idle=-4\nmain=7\n" and err == "" and c.malformed == 0


def test_probe_lines_like_dtrace():
    prog = make_prog([RecDesc(0, "printf", [I64], fmt="n=%d"),
                      RecDesc(0, "trace", [I64]), RecDesc(0, "default"),
                      RecDesc(0, "trace", [STR])])
    data = (rec(0, val(5)) + rec(1, val(6)) + rec(2, probe=1, ts=5)
            + rec(3, sval(b"hi"), ts=7))
    c, out, err = run(prog, data)
    assert out == ("CPU     ID                    FUNCTION:NAME\n"
                   "  0     16             thread_switch:switch n=5                6\n"
                   "  0      1                           :BEGIN \n"
                   "  0     16             thread_switch:switch   hi" + " " * 31 + "\n")


def test_trace_quiet_and_narrow_types():
    prog = make_prog([RecDesc(0, "trace", [U32]), RecDesc(0, "trace", [STR])])
    _, out, _ = run(prog, rec(0, val(2 ** 32 + 9)) + rec(1, sval(b"x"), ts=9), quiet=True)
    assert out == "9x"
    _, out, _ = run(prog, rec(0, val(9)))
    assert out.splitlines()[1].endswith("switch         9")


def test_exit_code_and_quiet_option_from_program():
    prog = make_prog([], quiet=True)
    c, out, _ = run(prog, rec(isa.REC_EXIT, val(3)))
    assert c.exit_code == 3 and out == ""
    c, _, _ = run(prog, rec(isa.REC_EXIT, val(-1)))
    assert c.exit_code == -1


def test_error_record_names_script_position():
    prog = make_prog([])
    payload = val(1) + val(10) + val(isa.Fault.BADADDR) + val(0)
    c, out, err = run(prog, rec(isa.REC_ERROR, payload))
    assert err == ("unik: error on enabled probe ID 16 (sched:sched:thread_switch:switch): "
                   "invalid address (0x0) at s.d:4:13\n")
    assert c.errors == 1 and c.malformed == 0
    payload = val(1) + val(11) + val(isa.Fault.DIVZERO) + val(0)
    _, _, err = run(prog, rec(isa.REC_ERROR, payload))
    assert err.endswith("divide-by-zero at s.d:4:13\n")
    payload = val(1) + val(900) + val(77) + val(0)
    _, _, err = run(prog, rec(isa.REC_ERROR, payload, probe=99))
    assert "probe ID 99 (probe 99): fault 77 at s.d:5:2" in err


@pytest.mark.parametrize("data,msg", [
    (b"\0" * 7, "7 bytes left"),
    (rec(0, size=12), "size 12"),
    (rec(0, b"\0" * 8, size=20), "size 20"),
    (rec(0, b"", size=64), "size 64"),
    (rec(5, val(1)), "descriptor 5, the program has 1"),
    (rec(0, b""), "integer runs past the end"),
    (rec(isa.REC_ERROR, val(1)), "error record from probe 16 is 8 bytes"),
    (rec(isa.REC_EXIT), "exit record from probe 16 has no code"),
])
def test_malformed_records_never_raise(data, msg):
    prog = make_prog([RecDesc(0, "printf", [I64], fmt="%d\n")])
    c, out, err = run(prog, data, quiet=True)
    assert c.malformed == 1
    assert err.count("\n") == 1 and msg in err and err.startswith("unik: ")


def test_bad_record_is_skipped_and_the_rest_printed():
    prog = make_prog([RecDesc(0, "printf", [I64], fmt="%d\n")])
    data = rec(0, val(1)) + rec(9, val(2)) + rec(0, val(3))
    c, out, err = run(prog, data, quiet=True)
    assert out == "1\n3\n" and c.malformed == 1


def test_bad_format_and_unknown_kind():
    prog = make_prog([RecDesc(0, "printf", [I64], fmt="%q"), RecDesc(0, "frobnicate", [])])
    c, out, err = run(prog, rec(0, val(1)) + rec(0, val(1)) + rec(1), quiet=True)
    assert c.malformed == 2 and "bad format" in err and "unknown kind 'frobnicate'" in err


def test_drops_lines():
    prog = make_prog([])
    out, err = io.StringIO(), io.StringIO()
    c = Consumer(prog, out, err=err)
    c.drops(12)
    c.drops(3, "agg")
    c.drops(2, "chan")
    c.drops(1, "dyn")
    c.drops(4, "reentrant")
    c.drops(0)
    assert err.getvalue() == ("unik: 12 drops on CPU 0\nunik: 3 aggregation drops on CPU 0\n"
                            "unik: 2 channel drops on CPU 0\n"
                            "unik: 1 dynamic variable drops on CPU 0\n"
                            "unik: 4 re-entrant firing drops on CPU 0\n")
    assert c.dropped == {"records": 12, "agg": 3, "chan": 2, "dyn": 1, "reentrant": 4}


def _agg_prog(extra=()):
    a = AggDesc(0, "calls", F.COUNT, [STR])
    rds = [RecDesc(0, "printa", [], agg=0), RecDesc(0, "printa", [], fmt="%s:%@d\n", agg=0),
           RecDesc(0, "trunc", [I64], agg=0), RecDesc(0, "clear", [], agg=0),
           RecDesc(0, "normalize", [I64], agg=0), RecDesc(0, "denormalize", [], agg=0),
           *extra]
    return make_prog(rds, [a], quiet=True)


class Snap:
    def __init__(self, counts):
        self.counts = dict(counts)

    def __call__(self):
        return [AggEntry(0, (k,), (v,)) for k, v in self.counts.items()]


def test_printa_default_and_formatted_and_end():
    prog = _agg_prog()
    snap = Snap({"a": 3, "b": 1})
    c, out, _ = run(prog, rec(1), aggs=snap)
    assert out == "b:1\na:3\n" and c.printed == {0}
    out2 = io.StringIO()
    c2 = Consumer(prog, out2, aggs=snap, quiet=True)
    c2.handle_records(rec(0))
    pad = " " * 49
    assert out2.getvalue() == f"\n  b{pad}                1\n  a{pad}                3\n"
    c3 = Consumer(prog, io.StringIO(), aggs=snap, quiet=True)
    c3.finish()
    assert c3.out.getvalue() == f"\n  b{pad}                1\n  a{pad}                3\n"
    c2.finish()                      # printed by printa: only dtrace's blank line
    assert out2.getvalue().endswith("3\n\n")


def test_trunc_hides_until_new_data():
    prog = _agg_prog()
    snap = Snap({"a": 3, "b": 1, "c": 7})
    c = Consumer(prog, io.StringIO(), aggs=snap, quiet=True)
    c.handle_records(rec(2, val(1)) + rec(1))
    assert c.out.getvalue() == "c:7\n"
    snap.counts.update(a=5)            # 2 more since the trunc
    c.handle_records(rec(1))
    assert c.out.getvalue() == "c:7\na:2\nc:7\n"
    c.handle_records(rec(2, val(0)) + rec(1))     # trunc(@) removes everything
    assert c.out.getvalue().endswith("c:7\n")
    assert c.entries(0) == []


def test_clear_without_kernel_clear_keeps_keys_at_zero():
    prog = _agg_prog()
    snap = Snap({"a": 3})
    c = Consumer(prog, io.StringIO(), aggs=snap, quiet=True)
    c.handle_records(rec(3) + rec(1))
    assert c.out.getvalue() == "a:0\n"
    snap.counts["a"] = 4
    c.handle_records(rec(1))
    assert c.out.getvalue() == "a:0\na:1\n"


def test_clear_calls_the_kernel_when_it_can():
    prog = _agg_prog()
    cleared = []
    c = Consumer(prog, io.StringIO(), aggs=Snap({"a": 1}), clear=cleared.append, quiet=True)
    c.handle_records(rec(3))
    assert cleared == [0]


def test_normalize_and_denormalize():
    prog = _agg_prog()
    c = Consumer(prog, io.StringIO(), aggs=Snap({"a": 10}), quiet=True)
    c.handle_records(rec(4, val(3)) + rec(1) + rec(5) + rec(1))
    assert c.out.getvalue() == "a:3\na:10\n"
    c.handle_records(rec(4, val(0)))
    assert c.malformed == 1


def test_snapshot_bytes_and_bad_snapshot():
    prog = _agg_prog()
    payload = struct.pack("<HHI", 0, 8, 1) + struct.pack("<H", 1) + b"z" + b"\0" * 5 + val(2)
    c, out, _ = run(prog, rec(1), aggs=lambda: payload)
    assert out == "z:2\n"
    c, out, err = run(prog, rec(1), aggs=lambda: b"\1\2\3")
    assert out == "" and c.malformed == 1 and "aggregation snapshot" in err


def test_json_mode():
    a = AggDesc(0, "calls", F.COUNT, [STR])
    prog = make_prog([RecDesc(0, "printf", [I64], fmt="v=%d\n"), RecDesc(0, "trace", [STR])],
                     [a])
    out, err = io.StringIO(), io.StringIO()
    c = Consumer(prog, out, err=err, json=True, aggs=Snap({"x": 2}))
    c.handle_records(rec(0, val(4)) + rec(1, sval(b"s"), ts=5)
                     + rec(isa.REC_EXIT, val(0), probe=1, ts=6))
    c.drops(2)
    c.finish()
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert objs == [
        {"type": "printf", "probe": "sched:sched:thread_switch:switch", "id": 16,
         "timestamp": 1000, "text": "v=4\n"},
        {"type": "trace", "probe": "sched:sched:thread_switch:switch", "id": 16,
         "timestamp": 5, "value": "s"},
        {"type": "exit", "code": 0, "probe": "dtrace:::BEGIN", "timestamp": 6},
        {"type": "drops", "kind": "records", "count": 2},
        {"type": "aggregation", "name": "calls", "func": "count",
         "entries": [{"key": ["x"], "value": 2}]},
    ]
    assert err.getvalue() == ""


def test_symbol_values():
    prog = make_prog([RecDesc(0, "trace", [ValType("int", 8, False, "sym")]),
                      RecDesc(0, "printf", [ValType("int", 8, False, "func")], fmt="%a\n")])
    sym = {0x1000: ("main", 0x10)}.get
    _, out, _ = run(prog, rec(0, val(0x1000)) + rec(1, val(0x1000), ts=3), quiet=True,
                    symbolize=sym)
    assert out == "mainmain+0x10\n"
