"""fbt's host parts on the built kernel ELF and as pure functions: the
site table (every __mcount_loc entry is the 5-byte nop at a function's
first byte, none in the excluded files), ids and modules, typed args and
return types from DWARF, enabling runs, the text check of fbt sites, and
`retval` in the compiler."""
from __future__ import annotations

import pytest

from conftest import build_kernel
from introspect import fbt, probetable, textcheck
from introspect.dwarf import TypeDB
from introspect.elfinfo import _open
from probes import isa
from probes.compiler import compile_script
from probes.diag import CompileError

# what the firing path runs: compiled without the nop (kernel/Makefile's
# FBT_EXCLUDE and FBT_EXCLUDED); listing any of them would be a lie
EXCLUDED = ("probe_fire", "probe_clause", "vm_run", "verify_prog", "site_fire", "fbt_entry",
            "fbt_return", "trap_dispatch", "panic", "panic_trap", "time_ns", "ksyms_lookup",
            "sched_tick", "sched_resched", "memcpy", "memset", "memcmp", "kprintf",
            "kvsnprintf", "uart_write", "thread_current", "thread_name", "thread_id",
            "thread_cpu_ns", "mm_readable", "agg_update", "dyn_store")


@pytest.fixture(scope="module")
def elf():
    return build_kernel("fbttest")


def test_every_site_is_the_nop_at_a_function_start(elf):
    funcs = fbt.functions(elf)
    assert len(funcs) > 100
    f, e = _open(str(elf))
    with f:
        text = e.get_section_by_name(".text")
        base, data = text["sh_addr"], text.data()
    for i, addr, name in funcs:
        assert data[addr - base:addr - base + 5] == isa.NOP5, name
    assert [i for i, _, _ in funcs] == sorted(i for i, _, _ in funcs)


def test_excluded_functions_have_no_site(elf):
    names = {n for _, _, n in fbt.functions(elf)}
    assert not names & set(EXCLUDED)
    assert {"thread_sleep_ms", "kmalloc", "fbt_answer", "app_main"} <= names


def test_probe_ids_modules_and_dwarf_types(elf):
    probes = {(p.function, p.name): p for p in probetable.load(elf) if p.provider == "fbt"}
    funcs = {n: i for i, _, n in fbt.functions(elf)}
    e, r = probes["fbt_answer", "entry"], probes["fbt_answer", "return"]
    assert e.id == isa.FIRST_FBT_PROBE + 2 * funcs["fbt_answer"] and r.id == e.id + 1
    assert e.module == "fbttest" and probes["kmalloc", "entry"].module == "mm"
    assert probes["thread_sleep_ms", "entry"].module == "sched"
    assert e.args == (("int", "a"), ("long", "b"))
    assert r.args == (("uint64_t", "offset"), ("int", "retval"))
    assert probes["fbt_round", "return"].args == (("uint64_t", "offset"),)   # void


def test_function_return_type(elf):
    db = TypeDB.from_elf(elf)
    assert str(db.function_return("fbt_fact")) in ("u64", "uint64_t")
    assert db.function_return("fbt_round") is None
    assert db.function_return("no_such_function") is None


def test_module_of():
    assert fbt.module_of("/w/kernel/sched/thread.c") == "sched"
    assert fbt.module_of("/w/kernel/apps/demo/demo.c") == "demo"
    assert fbt.module_of("/w/kernel/main.c") == "kernel"
    assert fbt.module_of("/x/kernel/y/kernel/mm/heap.c") == "mm"
    assert fbt.module_of("lib.c") == "kernel"


def test_modules_agree_with_the_kernel_table_and_dwarf(elf):
    db = TypeDB.from_elf(elf)
    table = fbt.mod_table(*_section(elf, ".fbtmods"))
    assert table and table == sorted(table)
    for _, addr, name in fbt.functions(elf):
        assert fbt.module_at(table, addr) == fbt.module_of(db.source_line(addr)[0]), name


def _section(elf, name):
    f, e = _open(str(elf))
    with f:
        s = e.get_section_by_name(name)
        return s.data(), s["sh_addr"]


def test_mod_table_decodes():
    base = 0x1000
    raw = (2).to_bytes(8, "little") + b"".join(
        a.to_bytes(8, "little") + (base + 40 + o).to_bytes(8, "little")
        for a, o in ((0x100, 0), (0x200, 3))) + b"mm\0io\0"
    t = fbt.mod_table(raw, base)
    assert t == [(0x100, "mm"), (0x200, "io")]
    assert fbt.module_at(t, 0xff) is None and fbt.module_at(t, 0x150) == "mm"
    assert fbt.module_at(t, 0x200) == "io" and fbt.mod_table(b"", 0) == []


def test_site_table_sorts():
    raw = b"".join(a.to_bytes(8, "little") for a in (0x300, 0x100, 0x200))
    assert fbt.site_table(raw) == [0x100, 0x200, 0x300]


def test_runs_fold_consecutive_functions_per_clause():
    F = isa.FIRST_FBT_PROBE
    en = [(0, 1, 0), (0, F, 0), (0, F + 2, 0), (0, F + 4, 0), (0, F + 8, 0),
          (1, F + 1, 0), (1, F + 3, 0), (0, 4, 10_000_000)]
    assert fbt.runs(en) == [(0, 1, 0), (0, F, 3), (0, F + 8, 1), (1, F + 1, 2),
                            (0, 4, 10_000_000)]
    assert fbt.runs([]) == []


def test_wildcard_is_a_handful_of_enablings(elf):
    probes = probetable.load(elf)
    prog = compile_script("fbt:::entry { @[probefunc] = count(); }", "-e", probes)
    assert len(prog.enablings) == len(fbt.functions(elf))
    assert len(fbt.runs(prog.enablings)) <= 2


def test_retval_typed_and_refused_where_it_does_not_exist(elf):
    probes, db = probetable.load(elf), TypeDB.from_elf(elf)
    compile_script("fbt::fbt_answer:return { @[retval] = count(); }", "-e", probes, types=db)
    for src, msg in (("fbt::fbt_answer:entry { trace(retval); }", "only at fbt return"),
                     ("fbt::fbt_round:return { trace(retval); }", "returns void"),
                     ("BEGIN { trace(retval); }", "only at fbt return")):
        with pytest.raises(CompileError) as ex:
            compile_script(src, "-e", probes, types=db)
        assert msg in str(ex.value)


def test_site_states_know_fbt_calls():
    img = textcheck.TextImage(0x1000, bytes(64))
    live = bytearray(64)
    live[8:13] = isa.NOP5
    rel = (0x1030 - (0x1010 + 5)).to_bytes(4, "little", signed=True)
    live[16:21] = b"\xe8" + rel
    sites = [(0x1008, 0x1030, isa.FIRST_FBT_PROBE), (0x1010, 0x1030, isa.FIRST_FBT_PROBE + 2)]
    states = textcheck.site_states(img, bytes(live), sites)
    assert [s["state"] for s in states] == ["off", "on"]
    live[16] = 0xe9                         # a jmp is a static site's form, not fbt's
    assert textcheck.site_states(img, bytes(live), sites)[1]["state"] == "corrupt"


def test_inside_site():
    assert textcheck.inside_site((0x1011, 3), [0x1010])
    assert not textcheck.inside_site((0x1011, 5), [0x1010])
    assert not textcheck.inside_site((0x100f, 2), [0x1010])
    assert not textcheck.inside_site((0x1011, 1), [])
