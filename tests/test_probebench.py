"""The probe-cost benchmark (introspect/probebench.py, kernel/apps/probebench):
its pure parts (slopes, struct decoding, flood accounting, aggregation
totals), its programs (run in the reference interpreter and in the
kernel's VM built for the host, including the aggregation fast path that
a repeated key takes), and one boot of the probebench app under
`-icount shift=0` whose disabled-site slope must be the empty loop's plus
exactly one instruction (exact under icount: not a timed assertion)."""
from __future__ import annotations

import struct

import pytest

import vmhost
from conftest import build_kernel
from instances import booted
from isa_interp import Machine
from introspect import probebench as pb, probetable, textcheck
from introspect.client import Channel
from probes import isa
from probes.program import Probe

BENCH = [Probe(isa.FIRST_STATIC_PROBE + 3, "bench", "probebench", "pb_site", "fire"),
         Probe(isa.FIRST_STATIC_PROBE + 2, "bench", "probebench", "pb_flood", "flood"),
         Probe(isa.FIRST_STATIC_PROBE, "sched", "sched", "sched_run", "switch")]


# ------------------------------------------------------------------ pure
def test_slopes_cancel_fixed_costs():
    r = {"n1": 256, "n2": 512, "empty1": 1543, "empty2": 3079, "site1": 1799,
         "site2": 3591, "enabled": 0}
    s = pb.slopes(r)
    assert (s.empty, s.site, s.probe, s.enabled) == (6.0, 7.0, 1.0, False)
    with pytest.raises(ValueError):
        pb.slopes(dict(r, n2=256))


def test_switch_cost_is_half_the_pong_slope_difference():
    off = {"n1": 256, "n2": 512, "pong1": 100_000, "pong2": 200_000}
    on = dict(off, pong1=150_000, pong2=300_000)
    assert pb.pong_slope(off) == 100_000 / 256
    assert pb.switch_cost(on, off) == (150_000 - 100_000) / 256 / 2
    with pytest.raises(ValueError):
        pb.pong_slope(dict(off, n2=256))


def test_decode_struct_reads_u64_members():
    layout = (24, {"seq": 0, "n1": 8, "n2": 16})
    assert pb.decode_struct(struct.pack("<3Q", 7, 256, 512), layout) == \
        {"seq": 7, "n1": 256, "n2": 512}
    with pytest.raises(ValueError):
        pb.decode_struct(b"\0" * 16, layout)


def test_flood_figures_account_for_every_firing():
    st = {"drops_buf": 5, "drops_chan": 2, "fired": 107}
    f = pb.flood_figures(2.0, 100, st, 107, 107_000)
    assert f["rate"] == 50.0 and f["drops"] == 7 and f["accounted"]
    assert f["instr_per_record"] == 1000.0
    assert not pb.flood_figures(2.0, 99, st, 107, 0)["accounted"]


def test_agg_total_sums_first_words():
    ent = lambda key, words: struct.pack("<HHI", 0, len(key), len(words)) + \
        key + b"\0" * (-len(key) % 8) + struct.pack(f"<{len(words)}Q", *words)
    raw = ent(b"\x03\0app", [5]) + ent(b"", [7]) + ent(b"\x08\0worker-1", [11, 99])
    assert pb.agg_total(raw) == 23
    assert pb.agg_total(b"") == 0


# ------------------------------------------------------------------ programs
def test_programs_compute_what_the_scripts_say():
    count = Machine(pb.compile_bench("count", BENCH).blob)
    for _ in range(3):
        count.fire(0)
    assert count.aggs == {(0, ()): [3]}
    thread = Machine(pb.compile_bench("thread", BENCH).blob)
    for name in ("app", "app", "idle"):
        thread.fire(0, builtins={"thread": name})
    assert sorted(thread.aggs.values()) == [[1], [2]]
    pf = Machine(pb.compile_bench("printf", BENCH).blob)
    got = pf.fire(0, args=(1, 2, 3)).records
    assert got == [(0, struct.pack("<3Q", 1, 2, 3))]
    prog = pb.compile_bench("switch", BENCH)
    assert prog.enablings == [(0, isa.FIRST_STATIC_PROBE, 0)]


def test_unknown_probe_is_a_clear_error():
    from introspect.errors import UnikError
    with pytest.raises(UnikError, match="no probe bench:::fire"):
        pb.compile_bench("count", BENCH[2:])


@pytest.fixture(scope="module")
def hostvm(tmp_path_factory):
    return vmhost.build(tmp_path_factory.mktemp("pbvm"))


def test_kernel_vm_repeated_and_changing_keys(hostvm):
    """The kernel VM's aggregation fast path (agg_cached: the last entry's
    key) and the hash path agree, whatever the order of keys."""
    vm = vmhost.VM(hostvm)
    try:
        assert vm.load(pb.compile_bench("thread", BENCH).blob) is None
        seq = ["app", "app", "idle", "app", "idle", "idle", "probe-chan", "app"]
        for name in seq:
            vm.builtin(isa.Builtin.THREAD, name)
            assert vm.run(0) == 0
        got = {k[1][2:2 + k[1][0]].decode(): v[0] for k, v in vm.aggs().items()}
        assert got == {n: seq.count(n) for n in set(seq)}
        assert vm.load(pb.compile_bench("count", BENCH).blob) is None
        for _ in range(5):
            assert vm.run(0) == 0
        assert list(vm.aggs().values()) == [[5]]
    finally:
        vm.close()


# ------------------------------------------------------------------ in the guest
@pytest.fixture(scope="module")
def bench_inst(tmp_path_factory):
    state = tmp_path_factory.mktemp("unik-probebench")
    with booted("probebench", state=state, name="pbtest",
                boot_args=["--mem", "32M", "--icount"]) as i:
        yield i, build_kernel("probebench")


def test_disabled_site_costs_exactly_the_nop(bench_inst):
    inst, elf = bench_inst
    with Channel.for_instance(inst, timeout=30) as ch:
        b = pb.Bench(ch, elf)
        off, st = b.measure(None)
        assert st is None and not off.enabled
        assert off.empty == int(off.empty) and off.empty > 0
        assert off.site == off.empty + 1            # the 5-byte nop and nothing else
        fire = next(p.id for p in b.probes if (p.provider, p.name) == ("bench", "fire"))
        img = textcheck.text_image(elf)
        (addr,) = [a for a, _t, i in probetable.sites(elf) if i + isa.FIRST_STATIC_PROBE == fire]
        assert img.data[addr - img.addr:addr - img.addr + 5] == isa.NOP5
        assert ch.memread(addr, 5) == isa.NOP5


def test_enabled_count_fires_and_restores(bench_inst):
    inst, elf = bench_inst
    with Channel.for_instance(inst, timeout=30) as ch:
        b = pb.Bench(ch, elf)
        on, st = b.measure("count")
        assert on.enabled and on.probe > 1 and st["fired"] >= 256 + 512
        assert st["drops_buf"] == 0 and st["errors"] == 0
        off, _ = b.measure(None)                    # site back to the nop
        assert off.site == off.empty + 1
