"""stack() and profile-N on the host: the compiler's lowering (TPUSH kind
2, RECK), the reference interpreter and the kernel's C VM (built for the
host) agreeing on the STACK encoding, the depth cap, decoding and
printing as dtrace prints stacks, flame-graph samples, and profile-N
descriptions."""
from __future__ import annotations

import struct

import pytest

import vmhost
from isa_interp import Machine, Stack as IStack, record_values
from probes import aggprint, compiler, disasm, isa, probematch, stacks
from probes.program import Probe

PROBES = [Probe(1, "dtrace", "", "", "BEGIN"),
          Probe(18, "mem", "mm", "heap_alloc", "alloc", (("uint64_t", "size"),))]
PCS = [0x101010, 0x102020, 0x103030, 0x104040, 0x105050]

# A symbol table: three functions of 0x100 bytes each from 0x101000.
FUNCS = {0x101000: "spin", 0x102000: "work", 0x103000: "main",
         0x104000: "thread_start", 0x105000: "entry"}


def symbolize(addr):
    base = addr & ~0xfff
    return (FUNCS[base], addr - base) if base in FUNCS and addr - base < 0x100 else None


def compile_d(src):
    return compiler.compile_script(src, "t.d", PROBES)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """The kernel's VM built for the host, once for the module."""
    return vmhost.build(tmp_path_factory.mktemp("stackvm"))


def test_stack_lowers_to_tpush_kind_2_and_reck():
    p = compile_d("mem:::alloc { @[stack()] = count(); trace(stack(3)); stack(); }")
    text = disasm.disassemble(p.blob)
    assert "ldi r0, 20\n" in text and "tpush r0, stack" in text
    assert text.count("reck r0") == 2 and "ldi r0, 3\n" in text
    assert [a.kind for a in p.aggs[0].keys] == ["stack"]
    assert [(r.kind, [v.kind for v in r.args]) for r in p.recdescs] == \
        [("trace", ["stack"]), ("trace", ["stack"])]


def test_interpreter_records_and_keys_capped_stacks():
    p = compile_d("mem:::alloc { @[stack(2), arg0] = count(); trace(stack(3)); trace(stack()); }")
    m = Machine(p.blob)
    f = m.fire(0, args=[7], stack=PCS)
    m.fire(0, args=[7], stack=PCS)
    assert m.aggs == {(0, (IStack(PCS[:2]), 7)): [2]}
    (d0, r0), (d1, r1) = f.records
    assert r0 == struct.pack("<4Q", 3, *PCS[:3])
    assert record_values(p, d1, r1) == [IStack(PCS)]


def test_c_vm_matches_the_encoding_and_clamps(lib):
    vm = vmhost.VM(lib)
    try:
        p = compile_d("mem:::alloc { @[stack(2)] = count(); trace(stack(4)); trace(stack()); }")
        assert vm.load(p.blob) is None
        deep = [0x100000 + 16 * i for i in range(40)]
        vm.set_stack(deep)
        assert vm.run(0, [1]) == 0
        recs = vm.records()
        assert recs[0][3] == struct.pack("<5Q", 4, *deep[:4])
        n = isa.STACK_DEFAULT
        assert recs[1][3] == struct.pack(f"<{n + 1}Q", n, *deep[:n])
        assert vm.run(0, [1]) == 0
        assert vm.aggs() == {(0, struct.pack("<3Q", 2, *deep[:2])): [2]}
        vm.set_stack([])                 # BEGIN/END: no stack, an empty value
        assert vm.run(0, [1]) == 0
        assert vm.records()[0][3] == struct.pack("<Q", 0)
        # decoded by the consumer's path
        vals, off = aggprint.decode_values(recs[0][3], 0, len(recs[0][3]), p.recdescs[0].args)
        assert vals == (stacks.Stack(deep[:4]),) and off == 40
    finally:
        vm.close()


def test_c_vm_record_cap_faults_record(lib):
    """A stack that does not fit the record faults RECORD, staging nothing."""
    p = compile_d("mem:::alloc { printf(\"%s\", \"x\"); trace(stack(32)); }")
    vm = vmhost.VM(lib, stage=64)
    try:
        assert vm.load(p.blob) is None
        vm.set_stack(PCS * 6)
        assert vm.run(0, [1]) == isa.Fault.RECORD
        assert vm.records() == []
    finally:
        vm.close()


def test_verifier_refuses_unknown_tpush_kind(lib):
    p = compile_d("mem:::alloc { @[stack()] = count(); }")
    blob = bytearray(p.blob)
    i = bytes(blob).index(bytes((isa.Op.TPUSH, 0, 0, 0)) + struct.pack("<i", 2))
    blob[i + 4] = 3
    vm = vmhost.VM(lib)
    try:
        pc, msg = vm.load(bytes(blob))
        assert "tuple push of unknown type" in msg
    finally:
        vm.close()


def test_frame_names_look_return_addresses_up_one_byte_back():
    st = stacks.Stack([0x101010, 0x102100, 0x103030, 0x999999])
    # frame 1 returns to work+0x100 (a call at work's end): named work+0x100
    assert stacks.frame_names(st, symbolize) == ["spin+0x10", "work+0x100",
                                                 "main+0x30", "0x999999"]
    assert stacks.frame_names(st, None) == ["0x101010", "0x102100", "0x103030", "0x999999"]
    assert stacks.sample(st, symbolize) == ("0x999999", "main", "work", "spin")
    assert stacks.sample(stacks.Stack(), symbolize) == ("[unknown]",)


def test_stack_key_prints_like_dtrace():
    p = compile_d("mem:::alloc { @[stack()] = count(); }")
    desc = p.aggs[0]
    entries = [aggprint.AggEntry(0, (stacks.Stack(PCS[:3]),), (5,)),
               aggprint.AggEntry(0, (stacks.Stack(PCS[1:3]),), (12,))]
    text = aggprint.format_agg(desc, entries, symbolize=symbolize)
    assert text == ("\n"
                    "              spin+0x10\n"
                    "              work+0x20\n"
                    "              main+0x30\n"
                    "                5\n"
                    "\n"
                    "              work+0x20\n"
                    "              main+0x30\n"
                    "               12\n")


def test_decode_refuses_bad_stacks():
    with pytest.raises(ValueError, match="runs past the end"):
        stacks.decode(struct.pack("<2Q", 3, 1), 0, 16)
    with pytest.raises(ValueError, match="at most"):
        stacks.decode(struct.pack("<Q", 99) + bytes(800), 0, 808)
    with pytest.raises(aggprint.AggDecodeError, match="value 0"):
        aggprint.decode_values(b"\x01\0", 0, 2, [aggprint_vt()])


def aggprint_vt():
    from probes.program import ValType
    return ValType("stack", 8, False, "stack")


@pytest.mark.parametrize("desc,period", [
    ("profile-997", 10**9 // 997), ("profile:::profile-1ms", 10**6),
    ("profile-100us", 100000), ("profile-2s", 2 * 10**9), ("profile-20000hz", 50000)])
def test_profile_descriptions(desc, period):
    [(p, arg)] = probematch.match(desc, [])
    assert (p.id, p.provider, p.name, arg) == (isa.SynthProbe.PROFILE, "profile",
                                               desc.split(":")[-1], period)


def test_profile_too_fast_or_bad_unit():
    with pytest.raises(ValueError, match="limit of one per 50 us"):
        probematch.timer_probe("profile-40000")
    with pytest.raises(ValueError, match="unknown time unit"):
        probematch.timer_probe("profile-5furlongs")
    assert probematch.tick_period("profile-997") is None
    p = compile_d("profile-997 { @[arg0] = count(); trace(probename); }")
    assert p.enablings == [(0, isa.SynthProbe.PROFILE, 10**9 // 997)]


# ------------------------------------------------------------ unik profile
def test_profile_script_and_option_checks():
    from argparse import Namespace
    from console.commands import profile
    from console.registry import UsageError
    assert profile.script(997) == "profile-997 { @[stack()] = count(); }"
    assert profile.script(99, 8) == "profile-99 { @[stack(8)] = count(); }"
    p = compile_d(profile.script(997))
    assert p.enablings == [(0, isa.SynthProbe.PROFILE, 10**9 // 997)]
    ok = dict(hz=997, duration=5.0, depth=None)
    profile.check(Namespace(**ok))
    for bad, msg in ((dict(hz=0), "--hz 0"), (dict(hz=20001), "1 to 20000"),
                     (dict(duration=0.0), "--duration 0"), (dict(depth=33), "--depth 33")):
        with pytest.raises(UsageError, match=msg):
            profile.check(Namespace(**{**ok, **bad}))


def test_profile_samples_fold_and_render():
    import xml.etree.ElementTree as ET
    from console.commands import profile
    entries = [aggprint.AggEntry(0, (stacks.Stack([0x101010, 0x102020, 0x103030]),), (90,)),
               aggprint.AggEntry(0, (stacks.Stack([0x101050, 0x102020, 0x103030]),), (5,)),
               aggprint.AggEntry(0, (stacks.Stack([0x102080, 0x103030]),), (5,)),
               aggprint.AggEntry(0, (stacks.Stack([0x999999]),), (0,))]
    samples = profile.samples_of(entries, symbolize)
    # offsets dropped: the first two stacks are one folded line
    assert profile.output(samples, "folded", "t") == "main;work 5\nmain;work;spin 95\n"
    svg = profile.output(samples, "svg", "unik profile t", "100 samples")
    root = ET.fromstring(svg)
    S = "{http://www.w3.org/2000/svg}"
    names = [g.find(S + "title").text.split(" (")[0] for g in root.iter(S + "g")
             if g.get("class") == "frame"]
    assert sorted(names) == ["all", "main", "spin", "work"]
    j = profile.to_json(samples, "t", 997, 1.0, 0)
    assert j["samples"] == 100 and j["stacks"][0] == {"frames": ["main", "work", "spin"],
                                                      "count": 95}


def test_profilebench_math():
    from introspect import profilebench
    f = profilebench.figures({"samples": 1000, "cycles": 3_000_000,
                              "start_tsc": 10**9, "stop_tsc": 2 * 10**9})
    assert f["share"] == pytest.approx(0.003) and f["per_sample"] == 3000
    assert f["ran_cycles"] == 10**9
    assert profilebench.figures({"samples": 0, "cycles": 0, "start_tsc": 5,
                                 "stop_tsc": 0}) == \
        {"share": 0.0, "per_sample": 0.0, "samples": 0, "ran_cycles": 0}


def test_stack_keys_in_json_are_frame_names():
    p = compile_d("mem:::alloc { @[stack()] = count(); }")
    e = aggprint.AggEntry(0, (stacks.Stack(PCS[:2]),), (3,))
    j = aggprint.agg_json(p.aggs[0], [e], symbolize=symbolize)
    assert j["entries"] == [{"key": [["spin+0x10", "work+0x20"]], "value": 3}]


def test_printa_k_prints_a_stack_key():
    from probes.printf import FormatError, parse_format
    p = compile_d(r'mem:::alloc { @[stack(), arg0] = count(); printa("%k %d: %@d\n", @); }')
    desc = p.aggs[0]
    e = aggprint.AggEntry(0, (stacks.Stack(PCS[:2]), 7), (3,))
    text = aggprint.format_printa(desc, [e], parse_format("%k %d: %@d\n", printa=True),
                                  symbolize=symbolize)
    assert text == "\n              spin+0x10\n              work+0x20\n 7: 3\n"
    with pytest.raises(FormatError, match="only valid in printa"):
        parse_format("%k")
