"""The kernel's probe VM (kernel/probe/verify.c, vm.c, vmstr.c, agg.c,
dyn.c), built for the host with UBSan (introspect/corevm_shim.c plays the
engine) and driven through ctypes: programs assembled with tests/isa_asm.py
run and their registers (via records), records, aggregations, variables
and faults are checked against Python models; the hostile corpus
(tests/vm_corpus.py) is refused or contained; the fuzzer (tests/fuzz_vm.c,
ASan + UBSan) runs a short campaign.
"""
from __future__ import annotations

import os
import random
import struct
import subprocess

import pytest

import vm_corpus
import vmhost
from cpure import build_fuzzer
from isa_asm import AggFunc, Prog, Scope, VarKind, tuple_key
from probes import isa
from probes.isa import Builtin, Fault

M64 = (1 << 64) - 1
FUZZ_PROGRAMS = int(os.environ.get("UNIK_VM_FUZZ", "20000"))


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return vmhost.build(tmp_path_factory.mktemp("probevm"))


@pytest.fixture
def mk(lib):
    made = []

    def make(blob=None, **kw):
        vm = vmhost.VM(lib, **kw)
        made.append(vm)
        if blob is not None:
            err = vm.load(blob)
            assert err is None, err
        return vm
    yield make
    for vm in made:
        vm.close()


def _s64(v):
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def _div(op, a, b):
    if op == "udiv":
        return a // b
    if op == "umod":
        return a % b
    sa, sb = _s64(a), _s64(b)
    if sa == -(1 << 63) and sb == -1:
        return a if op == "sdiv" else 0
    q = abs(sa) // abs(sb) * (1 if (sa < 0) == (sb < 0) else -1)
    return (q if op == "sdiv" else sa - q * sb) & M64


MODEL = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b,
    "shl": lambda a, b: a << (b & 63), "lshr": lambda a, b: a >> (b & 63),
    "ashr": lambda a, b: _s64(a) >> (b & 63),
    "eq": lambda a, b: int(a == b), "ne": lambda a, b: int(a != b),
    "ult": lambda a, b: int(a < b), "ule": lambda a, b: int(a <= b),
    "slt": lambda a, b: int(_s64(a) < _s64(b)), "sle": lambda a, b: int(_s64(a) <= _s64(b)),
    **{op: (lambda o: lambda a, b: _div(o, a, b))(op) for op in ("udiv", "sdiv", "umod", "smod")},
}


def _rec_words(vm):
    recs = vm.records()
    assert len(recs) == 1
    p = recs[0][3]
    return list(struct.unpack(f"<{len(p) // 8}Q", p))


def test_binary_ops_match_model(mk):
    rnd = random.Random(5)
    edge = [0, 1, 2, 63, 64, M64, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 12345]
    for op, fn in MODEL.items():
        vm = mk(_one(f"arg r1, 0\narg r2, 1\n{op} r3, r1, r2\nrecb 0\nrecv r3\nrece\nret"))
        for _ in range(150):
            a = rnd.choice(edge + [rnd.getrandbits(64)])
            b = rnd.choice(edge + [rnd.getrandbits(64), rnd.getrandbits(6)])
            if op in ("udiv", "sdiv", "umod", "smod") and b == 0:
                assert vm.run(args=[a, b]) == Fault.DIVZERO
                assert vm.records() == []
                continue
            assert vm.run(args=[a, b]) == 0, (op, a, b)
            assert _rec_words(vm) == [fn(a, b) & M64], (op, a, b)


def _one(text, **kw):
    p = Prog(nrecdescs=kw.pop("nrecdescs", 4), **kw)
    p.clause(text)
    return p.build()


def test_unary_immediates_and_extension(mk):
    vm = mk(_one("""
        ldi r1, -5
        ldi r2, 0x12345678
        ldih r2, -1
        arg r3, 0
        neg r4, r3
        not r5, r3
        lnot r6, r3
        ext r7, r3, 0x108
        ext r8, r3, 16
        ext r9, r3, 0x120
        mov r10, r9
        recb 0
        recv r1
        recv r2
        recv r4
        recv r5
        recv r6
        recv r7
        recv r8
        recv r10
        rece
        ret"""))
    for x in (0, 0x80, 0x1234ff80, 0xFFFF_FFFF_8000_0000):
        assert vm.run(args=[x]) == 0
        def sx(v, bits):
            v &= (1 << bits) - 1
            return (v - (1 << bits) if v >> (bits - 1) else v) & M64
        assert _rec_words(vm) == [(-5) & M64, 0xFFFFFFFF_12345678, (-x) & M64, ~x & M64,
                                  int(x == 0), sx(x, 8), x & 0xFFFF, sx(x, 32)]


def test_forward_jumps_take_both_paths(mk):
    vm = mk(_one("""
        arg r1, 0
        ldi r2, 10
        jz r1, @zero
        ldi r2, 20
        jnz r1, @out
        ldi r2, 99
    @zero:
        ldi r3, 1
    @out:
        recb 0
        recv r2
        recv r3
        rece
        ret"""))
    vm.run(args=[0])
    assert _rec_words(vm) == [10, 1]
    vm.run(args=[7])
    assert _rec_words(vm) == [20, 0]


def test_registers_read_before_written_are_zero_on_every_path(mk):
    """The verifier works out which registers a clause may read before
    writing them (struct vm_clause.zero) and only those are zeroed: a
    register written on one path only, or written by another clause that
    ran before, still reads 0; more jumps in flight than the analysis
    follows fall back to zeroing every register."""
    p = Prog(nrecdescs=1)
    p.clause("""
        ldi r4, 111
        ldi r5, 222
        ldi r6, 333
        recb 0
        recv r4
        rece
        ret""")
    p.clause("""
        arg r1, 0
        jz r1, @skip
        ldi r4, 7
    @skip:
        ldih r5, 1
        recb 0
        recv r4
        recv r5
        recv r6
        rece
        ret""")
    many = "\n".join(f"jz r1, @l{i}" for i in range(20))
    labels = "\n".join(f"@l{i}:\nnop" for i in range(20))
    p.clause(f"""
        arg r1, 0
        {many}
        ldi r6, 5
        {labels}
        recb 0
        recv r6
        recv r5
        rece
        ret""")
    vm = mk(p.build())
    assert vm.run(0) == 0
    assert vm.run(1, args=[0]) == 0
    assert _rec_words(vm) == [0, 1 << 32, 0]
    assert vm.run(0) == 0
    assert vm.run(1, args=[1]) == 0
    assert _rec_words(vm) == [7, 1 << 32, 0]
    assert vm.run(0) == 0
    assert vm.run(2, args=[0]) == 0
    assert _rec_words(vm) == [0, 0]
    assert vm.run(2, args=[1]) == 0
    assert _rec_words(vm) == [5, 0]


def test_string_builtins_borrowed_then_copied(mk):
    """String builtins are handed out in place (borrowed) up to a few per
    run and copied into scratch after that; every one stays a valid string
    operand whatever came after it, and none outlives its run."""
    names = ["THREAD", "PROBEPROV", "PROBEMOD", "PROBEFUNC", "PROBENAME", "THREAD"]
    body = "\n".join(f"ldb r{i + 1}, {n}" for i, n in enumerate(names))
    recs = "\n".join(f"recs r{i + 1}" for i in range(len(names)))
    p = Prog(nrecdescs=1)
    g = p.var(Scope.GLOBAL, VarKind.INT)
    p.clause(f"{body}\nstg {g}, r1\nrecb 0\n{recs}\nrece\nret")
    p.clause(f"ldg r1, {g}\nrecb 0\nrecs r1\nrece\nret")
    vm = mk(p.build())
    vm.builtin(Builtin.THREAD, "worker-1")
    assert vm.run(0) == 0
    (_, _, _, pl), = vm.records()
    got, o = [], 0
    for _ in names:
        v, o = vmhost.strval(pl, o)
        got.append(v)
    assert got == ["worker-1", "sched", "sched", "sched_switch", "switch", "worker-1"]
    assert vm.run(1) == Fault.BADSTR        # last run's borrowed address: not a string now


def test_loads_every_size_and_faults_name_the_address(mk):
    vm = mk(_one("""
        arg r1, 0
        ld r2, r1, 1, 0
        ld r3, r1, 2, 1
        ld r4, r1, 4, 3
        ld r5, r1, 8, 7
        recb 0
        recv r2
        recv r3
        recv r4
        recv r5
        rece
        ret"""))
    ram = bytes(range(1, 65))
    vm.set_ram(vm_corpus.RAM_ADDR, ram)
    assert vm.run(args=[vm_corpus.RAM_ADDR]) == 0
    le = lambda o, n: int.from_bytes(ram[o:o + n], "little")
    assert _rec_words(vm) == [le(0, 1), le(1, 2), le(3, 4), le(7, 8)]
    assert vm.run(args=[vm_corpus.RAM_ADDR + 60]) == Fault.BADADDR
    f, pc, addr = vm.fault
    assert (f, pc, addr) == (Fault.BADADDR, 3, vm_corpus.RAM_ADDR + 63)
    assert vm.records() == []                   # staged nothing: the clause aborted


def test_builtins_args_and_string_builtins(mk):
    vm = mk(_one("""
        ldb r1, TID
        ldb r2, PROBEID
        ldb r3, NARGS
        arg r4, 1
        arg r5, 7
        ldb r6, THREAD
        ldb r7, PROBENAME
        ldb r8, EPID
        recb 2
        recv r1
        recv r2
        recv r3
        recv r4
        recv r5
        recs r6
        recs r7
        recv r8
        rece
        ret"""))
    vm.builtin(Builtin.TID, 42)
    vm.builtin(Builtin.TIMESTAMP, 777)
    vm.builtin(Builtin.THREAD, "probe-chan")
    assert vm.run(args=[5, 6], probe=99) == 0
    (desc, probe, ts, p), = vm.records()
    assert (desc, probe, ts) == (2, 99, 777)
    assert struct.unpack_from("<5Q", p) == (42, 99, 2, 6, 0)
    s1, o = vmhost.strval(p, 40)
    s2, o = vmhost.strval(p, o)
    assert (s1, s2) == ("probe-chan", "switch")
    assert struct.unpack_from("<Q", p, o)[0] == 0 and o + 8 == len(p)


def _str_prog(body, strsize=64):
    return _one(body + "\nrecb 0\nrecv r10\nrecs r11\nrece\nret", strsize=strsize)


@pytest.mark.parametrize("body, want", [
    ('str r1, "hello"\ncall r10, r1, STRLEN\nmov r11, r1', (5, "hello")),
    ('str r1, "foo"\nstr r2, "barbaz"\ncall r11, r1, STRJOIN\ncall r10, r11, STRLEN',
     (9, "foobarbaz")),
    ('str r1, "abcdef"\nldi r2, 2\nldi r3, 3\ncall r11, r1, SUBSTR', (0, "cde")),
    ('str r1, "abcdef"\nldi r2, -2\nldi r3, -1\ncall r11, r1, SUBSTR', (0, "ef")),
    ('str r1, "abcdef"\nldi r2, 9\nldi r3, 1\ncall r11, r1, SUBSTR', (0, "")),
    ('str r1, "abcdef"\nldi r2, -99\nldi r3, 2\ncall r11, r1, SUBSTR', (0, "ab")),
    ('str r1, "hello world"\nstr r2, "o w"\ncall r11, r1, STRSTR\ncall r10, r1, INDEX',
     (4, "o world")),
    ('str r1, "hello"\nstr r2, "xyz"\ncall r10, r1, INDEX\nstr r11, ""', ((-1) & M64, "")),
    ('str r1, "abc"\nstr r2, "abd"\ncall r10, r1, STRCMP\nmov r11, r2', ((-1) & M64, "abd")),
    ('str r1, "abc"\nstr r2, "abc"\ncall r10, r1, STRCMP\nmov r11, r1', (0, "abc")),
    ('str r1, "abcd"\nstr r2, "abc"\ncall r10, r1, STRCMP\nmov r11, r1', (1, "abcd")),
    ('str r1, "key=value"\nldi r2, 61\ncall r11, r1, STRCHR', (0, "=value")),
])
def test_string_helpers(mk, body, want):
    vm = mk(_str_prog(body))
    assert vm.run() == 0, vm.fault
    (_, _, _, p), = vm.records()
    assert struct.unpack_from("<Q", p)[0] == want[0]
    assert vmhost.strval(p, 8)[0] == want[1]


def test_strstr_and_strchr_miss_give_zero(mk):
    vm = mk(_one('str r1, "abc"\nstr r2, "zz"\ncall r3, r1, STRSTR\nldi r2, 122\n'
                 'call r4, r1, STRCHR\nrecb 0\nrecv r3\nrecv r4\nrece\nret'))
    assert vm.run() == 0
    assert _rec_words(vm) == [0, 0]


def test_strings_truncate_at_strsize(mk):
    vm = mk(_str_prog('str r1, "' + "a" * 20 + '"\nmov r2, r1\ncall r11, r1, STRJOIN\n'
                      'call r10, r11, STRLEN', strsize=16))
    assert vm.run() == 0
    (_, _, _, p), = vm.records()
    assert struct.unpack_from("<Q", p)[0] == 15
    assert vmhost.strval(p, 8)[0] == "a" * 15


def test_stringof_reads_kernel_memory_through_safe_loads(mk):
    vm = mk(_str_prog("arg r1, 0\ncall r11, r1, STRINGOF\ncall r10, r11, STRLEN"))
    ram = b"xx" + b"kernel string\0" + b"z" * 48
    vm.set_ram(vm_corpus.RAM_ADDR, ram)
    assert vm.run(args=[vm_corpus.RAM_ADDR + 2]) == 0
    (_, _, _, p), = vm.records()
    assert vmhost.strval(p, 8)[0] == "kernel string"
    assert vm.run(args=[0x10]) == Fault.BADADDR
    assert vm.fault[2] == 0x10


def test_global_and_clause_local_variables(mk):
    p = Prog(nrecdescs=1)
    g = p.var(Scope.GLOBAL, VarKind.INT)
    gs = p.var(Scope.GLOBAL, VarKind.STRING)
    loc = p.var(Scope.CLAUSE, VarKind.INT)
    p.clause(f"""
        ldg r1, {g}
        arg r2, 0
        add r1, r1, r2
        stg {g}, r1
        ldl r3, {loc}
        ldi r4, 1
        add r3, r3, r4
        stl {loc}, r3
        ldl r3, {loc}
        ldg r5, {gs}
        str r6, "x"
        call r5, r5, STRJOIN
        stg {gs}, r5
        ldg r7, {gs}
        recb 0
        recv r1
        recv r3
        recs r7
        rece
        ret""")
    vm = mk(p.build())
    for i, x in enumerate((3, 4, 10)):
        assert vm.run(args=[x]) == 0
        (_, _, _, pl), = vm.records()
        total, local = struct.unpack_from("<2Q", pl)
        assert total == sum((3, 4, 10)[:i + 1]) and local == 1     # locals start at 0 each firing
        assert vmhost.strval(pl, 16)[0] == "x" * (i + 1)


def test_thread_locals_are_per_thread_and_zero_frees(mk):
    p = Prog(nrecdescs=1)
    t = p.var(Scope.THREAD, VarKind.INT)
    p.clause(f"ldt r1, {t}\narg r2, 0\nstt {t}, r2\nrecb 0\nrecv r1\nrece\nret")
    vm = mk(p.build())
    seen = []
    for tid, val in ((1, 10), (2, 20), (1, 11), (2, 0), (2, 5), (1, 0)):
        vm.builtin(Builtin.TID, tid)
        assert vm.run(args=[val]) == 0
        seen.append(_rec_words(vm)[0])
    assert seen == [0, 0, 10, 20, 0, 11]
    assert vm.dyn_live == 1                 # tid 2 holds 5; tid 1 was freed


def test_assoc_arrays_with_tuple_keys_and_string_values(mk):
    p = Prog(nrecdescs=1)
    a = p.var(Scope.ASSOC, VarKind.STRING, 2)
    p.clause(f"""
        arg r1, 0
        ldb r2, THREAD
        tclr
        tpush r1, 0
        tpush r2, 1
        lda r3, {a}
        tpush r1, 0
        tpush r2, 1
        str r4, "v"
        call r4, r3, STRJOIN
        sta {a}, r4
        recb 0
        recs r3
        rece
        ret""")
    vm = mk(p.build())
    out = []
    for key, name in ((1, "a"), (1, "a"), (2, "a"), (1, "b"), (1, "a")):
        vm.builtin(Builtin.THREAD, name)
        assert vm.run(args=[key]) == 0
        out.append(vmhost.strval(vm.records()[0][3])[0])
    assert out == ["", "v", "", "", "vv"]
    assert vm.dyn_live == 3


def _agg_model(func, vals, lq=None):
    if func == AggFunc.COUNT:
        return [len(vals)]
    if func == AggFunc.SUM:
        return [_s64(sum(vals))]
    if func == AggFunc.MIN:
        return [min(vals)]
    if func == AggFunc.MAX:
        return [max(vals)]
    if func == AggFunc.AVG:
        return [len(vals), _s64(sum(vals))]
    if func == AggFunc.STDDEV:
        sq = sum(v * v for v in vals)
        return [len(vals), _s64(sum(vals)), _s64(sq & M64), _s64(sq >> 64)]
    if func == AggFunc.QUANTIZE:
        b = [0] * isa.QUANTIZE_BUCKETS
        for v in vals:
            k = min(63, abs(v).bit_length())
            b[63 + k if v > 0 else 63 - k] += 1
        return b
    lo, hi, step = lq
    n = (hi - lo) // step
    b = [0] * (n + 2)
    for v in vals:
        b[0 if v < lo else min(n + 1, (v - lo) // step + 1)] += 1
    return b


@pytest.mark.parametrize("func", list(AggFunc))
def test_aggregations_match_model(mk, func):
    rnd = random.Random(int(func))
    lq = (-100, 250, 7) if func == AggFunc.LQUANTIZE else None
    p = Prog()
    p.agg(func, nkeys=1, lq=lq)
    p.clause("arg r1, 0\narg r2, 1\ntpush r1, 0\nagg 0, r2\nret")
    vm = mk(p.build())
    vals = {k: [] for k in range(5)}
    big = [-(1 << 63), (1 << 63) - 1, -1, 0, 1, 1 << 40, -(1 << 40)]
    for _ in range(400):
        k = rnd.randrange(5)
        v = rnd.choice(big + [rnd.randrange(-300, 300), rnd.getrandbits(64) - (1 << 63)])
        vals[k].append(v)
        assert vm.run(args=[k, v]) == 0
    got = vm.aggs()
    for k, vs in vals.items():
        if vs:
            assert got[(0, tuple_key(k))] == _agg_model(func, vs, lq), (func, k)


def test_verifier_marks_clauses_that_are_one_builtin_keyed_count(mk):
    """vm_clause.key1: the engine looks `@[builtin] = count()` up in the
    aggregation's cache itself, so only `ldb; tpush; agg; ret` qualifies,
    with a one-key count(), the pushed register the loaded one, and a
    builtin of the engine's pushed as its kind (string or integer); and the
    VM still runs such a clause exactly (the engine falls back to it)."""
    p = Prog()
    p.agg(AggFunc.COUNT, nkeys=1)
    p.agg(AggFunc.SUM, nkeys=1)
    p.agg(AggFunc.COUNT, nkeys=2)
    p.clause("ldb r0, THREAD\ntpush r0, 1\nagg 0, r0\nret")      # yes: string
    p.clause("ldb r1, TID\ntpush r1, 0\nagg 0, r1\nret")         # yes: integer
    p.clause("ldb r0, THREAD\ntpush r0, 0\nagg 0, r0\nret")      # string pushed as int
    p.clause("ldb r0, TID\ntpush r0, 1\nagg 0, r0\nret")         # int pushed as string
    p.clause("ldb r0, PROBEID\ntpush r0, 0\nagg 0, r0\nret")     # the VM's own builtin
    p.clause("ldb r0, TID\ntpush r0, 0\nagg 1, r0\nret")         # sum(), not count()
    p.clause("ldb r0, TID\ntpush r0, 0\nagg 2, r0\nret")         # two keys declared
    p.clause("ldb r0, TID\ntpush r1, 0\nagg 0, r0\nret")         # another register
    p.clause("ldb r0, TID\ntpush r0, 0\nagg 0, r0\nagg 0, r0\nret")
    vm = mk(p.build())
    B = isa.Builtin
    assert [vm.key1(i) for i in range(9)] == [(0, B.THREAD, True), (0, B.TID, False)] + \
        [None] * 7
    assert vm.run(1) == 0 and vm.run(1) == 0
    assert list(vm.aggs().values()) == [[2]]


def test_verifier_marks_clauses_that_are_one_keyless_count(mk):
    """vm_clause.count1: the engine bumps these counts without the VM, so
    only `agg a; ret` with a keyless count() qualifies (agg + 1); a key,
    a predicate, another function or a second aggregation does not."""
    p = Prog()
    p.agg(AggFunc.SUM)
    p.agg(AggFunc.COUNT)
    p.agg(AggFunc.COUNT, nkeys=1)
    p.clause("agg 1, r0\nret")
    p.clause("agg 0, r0\nret")
    p.clause("arg r1, 0\ntpush r1, 0\nagg 2, r0\nret")
    p.clause("arg r1, 0\njz r1, @out\nagg 1, r0\n@out:\nret")
    p.clause("agg 1, r0\nagg 1, r0\nret")
    vm = mk(p.build())
    assert [vm.count1(i) for i in range(5)] == [2, 0, 0, 0, 0]
    for _ in range(3):
        assert vm.run(0) == 0
    assert vm.aggs()[(1, b"")] == [3]


def test_string_keys_snapshot_in_chunks_and_clear(mk):
    p = Prog()
    p.agg(AggFunc.COUNT, nkeys=2)
    p.agg(AggFunc.MIN, nkeys=0)
    p.clause("ldb r1, THREAD\narg r2, 0\ntpush r1, 1\ntpush r2, 0\nagg 0, r2\n"
             "agg 1, r2\nret")
    vm = mk(p.build())
    names = ["idle", "probe-chan", "a" * 40, ""]
    for i in range(200):
        vm.builtin(Builtin.THREAD, names[i % 4])
        assert vm.run(args=[i % 3]) == 0
    whole = vm.aggs()
    assert whole == vm.aggs(cap=96)             # small snapshot chunks see the same
    assert whole[(1, b"")] == [0]
    total = sum(w[0] for (a, _), w in whole.items() if a == 0)
    assert total == 200 and len(whole) == 13
    assert whole[(0, tuple_key("probe-chan", 1))] == [len([i for i in range(200)
                                                           if i % 4 == 1 and i % 3 == 1])]
    vm.L.corevm_agg_clear(vm.h, 0)
    cleared = vm.aggs()
    assert all(w == [0] for (a, _), w in cleared.items() if a == 0)
    assert cleared[(1, b"")] == [0] and len(cleared) == 13
    vm.L.corevm_agg_clear(vm.h, -1)
    assert vm.aggs()[(1, b"")] == [(1 << 63) - 1]


def test_records_exit_and_fault_discards_staged(mk):
    vm = mk(_one("""
        ldi r1, 7
        recb 1
        recv r1
        rece
        recb 2
        rece
        arg r2, 0
        exit r1
        udiv r3, r1, r2
        ret"""))
    assert vm.run(args=[1]) == 0
    recs = vm.records()
    assert [(d, p) for d, _, _, p in recs] == [(1, struct.pack("<Q", 7)), (2, b""),
                                               (isa.REC_EXIT, struct.pack("<Q", 7))]
    assert vm.exit_code == 7
    assert vm.run(args=[0]) == Fault.DIVZERO
    assert vm.records() == [] and vm.exit_code is None
    assert vm.fault == (Fault.DIVZERO, 8, 0)


@pytest.mark.parametrize("case", vm_corpus.CASES, ids=[c.name for c in vm_corpus.CASES])
def test_hostile_corpus(mk, case):
    vm = mk()
    vm.set_ram(vm_corpus.RAM_ADDR, bytes(range(64)))
    err = vm.load(case.blob)
    if case.verify is not None:
        assert err is not None, f"{case.name}: verified, expected {case.verify!r}"
        assert case.verify in err[1], (case.name, err)
        return
    assert err is None, (case.name, err)
    for i in range(case.runs):
        args = case.args(vm, i) if callable(case.args) else case.args
        f = vm.run(args=list(args))
        assert f == case.fault, (case.name, vm.fault)
        if f:
            assert vm.records() == []
    if case.check:
        case.check(vm)
    # the harness is unharmed: a good program still runs in it
    assert vm.load(_one("ldi r1, 3\nrecb 0\nrecv r1\nrece\nret")) is None
    assert vm.run() == 0 and _rec_words(vm) == [3]


def test_corpus_is_large_enough():
    assert len(vm_corpus.CASES) >= 50
    assert len({c.name for c in vm_corpus.CASES}) == len(vm_corpus.CASES)


def test_verifier_errors_name_the_pc(mk):
    vm = mk()
    err = vm.load(_one("nop\nnop\njmp -3\nret"))
    assert err == (2, "backward jump")
    assert vm.load(vm_corpus.CASES[0].blob)[0] == -1


def _fuzz_binary(tmp_path):
    return build_fuzzer(tmp_path, [*vmhost.SOURCES, "tests/fuzz_vm.c"], "fuzz_vm")


def test_fuzz_verify_then_run(tmp_path):
    exe = _fuzz_binary(tmp_path)
    seeds = tmp_path / "seeds.bin"
    with open(seeds, "wb") as f:
        for c in vm_corpus.CASES:
            f.write(struct.pack("<I", len(c.blob)) + c.blob)
    r = subprocess.run([str(exe), str(FUZZ_PROGRAMS), "1", str(seeds)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    m = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
    assert int(m["programs"]) == FUZZ_PROGRAMS
    assert int(m["verified"]) > FUZZ_PROGRAMS // 20      # mutations keep many valid
    assert int(m["ran"]) >= int(m["verified"])
