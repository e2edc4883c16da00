"""Static probe sites, checked on the built kernel ELF and on the code the
macros generate: every site is the 5-byte nop on an instruction boundary,
descriptors and sites decode, the issue's probes are all there with their
typed, named arguments, targets lie in .text, a disabled site adds nothing
but the nop to the hot path, and docs/probes.md's table is current.  The
patching round trip runs in the guest (kernel/selftest_sites.c, through
tests/test_kernel_selftest.py).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from elftools.elf.elffile import ELFFile

from conftest import ROOT
from introspect import probetable
from introspect.errors import UnikError
from probes import isa

T = "struct thread *"
# (provider, name) -> (functions that fire it, ((type, name), ...))
EXPECTED = {
    ("sched", "switch"): ({"sched_run"}, ((T, "prev"), (T, "next"))),
    ("sched", "wakeup"): ({"sched_ready"}, ((T, "thread"),)),
    ("sched", "sleep"): ({"thread_sleep_ms", "thread_block", "thread_park"},
                         ((T, "thread"), ("string", "wchan"), ("uint32_t", "timeout_ms"))),
    ("sched", "thread-create"): ({"thread_spawn"}, ((T, "thread"),)),
    ("sched", "thread-exit"): ({"thread_exit"}, ((T, "thread"),)),
    ("mem", "alloc"): ({"kmalloc"}, (("void *", "addr"), ("size_t", "size"),
                                     ("uint32_t", "class"))),
    ("mem", "free"): ({"kfree"}, (("void *", "addr"), ("size_t", "size"))),
    ("mem", "page-alloc"): ({"page_alloc_n"}, (("void *", "addr"), ("size_t", "npages"))),
    ("mem", "page-free"): ({"page_free_n"}, (("void *", "addr"), ("size_t", "npages"))),
    ("mem", "fail"): ({"kmalloc", "page_alloc_n"}, (("size_t", "size"), ("string", "what"))),
    ("chan", "request"): ({"chan_serve"}, (("uint16_t", "type"), ("uint32_t", "id"),
                                           ("uint32_t", "len"))),
    ("chan", "reject"): ({"chan_serve"}, (("int", "reason"), ("uint16_t", "type"))),
    ("log", "line"): ({"log_write"}, (("string", "text"), ("size_t", "len"),
                                      ("uint64_t", "offset"))),
    ("panic", "enter"): ({"panic", "panic_trap"}, (("string", "reason"),)),
}
MODULES = {"sched": "sched", "mem": "mm", "chan": "chan", "log": "kernel", "panic": "arch"}


def _text(elf_path):
    """(.text address, .text bytes)."""
    with open(elf_path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".text")
        return sec["sh_addr"], sec.data()


def _static(elf):
    return [p for p in probetable.load(elf) if isa.FIRST_STATIC_PROBE <= p.id < isa.FIRST_FBT_PROBE]


def test_every_site_is_nop5_in_the_elf(demo_elf):
    base, text = _text(demo_elf)
    sites = probetable.sites(demo_elf)
    assert len(sites) >= len(EXPECTED) + 3     # sleep, fail, enter fire from two functions
    for addr, _, _ in sites:
        assert text[addr - base:addr - base + 5] == isa.NOP5, f"site {addr:#x} is not NOP5"


def test_sites_start_instructions(demo_elf):
    """objdump decodes each site as one nopl at an instruction boundary."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", str(demo_elf)],
                         capture_output=True, text=True, check=True).stdout
    insns = {}
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S.*)$", line)
        if m:
            insns[int(m.group(1), 16)] = m.group(2)
    for addr, target, _ in probetable.sites(demo_elf):
        assert insns.get(addr, "").startswith("nopl   0x0(%rax,%rax,1)"), hex(addr)
        assert target in insns, f"target {target:#x} of site {addr:#x} is not an instruction"


def test_site_targets_lie_in_text(demo_elf):
    base, text = _text(demo_elf)
    for addr, target, idx in probetable.sites(demo_elf):
        assert base <= target < base + len(text) and target != addr
        assert abs(target - (addr + 5)) < 2**31


def test_descriptors_decode(demo_elf):
    probes = probetable.load(demo_elf)
    assert [(p.id, p.fullname) for p in probes[:3]] == [
        (isa.SynthProbe.BEGIN, "dtrace:::BEGIN"), (isa.SynthProbe.END, "dtrace:::END"),
        (isa.SynthProbe.ERROR, "dtrace:::ERROR")]
    static = _static(demo_elf)
    assert [p.id for p in static] == list(range(isa.FIRST_STATIC_PROBE,
                                                isa.FIRST_STATIC_PROBE + len(static)))
    for p in static:
        assert p.provider and p.module and p.function and p.name, p
        assert all(t and n for t, n in p.args), p
    names = [p.fullname for p in static]
    assert len(names) == len(set(names)), "a probe is listed twice"


def test_every_declared_probe_is_present(demo_elf):
    static = _static(demo_elf)
    for (prov, name), (funcs, args) in EXPECTED.items():
        found = [p for p in static if (p.provider, p.name) == (prov, name)]
        assert {p.function for p in found} == funcs, f"{prov}:::{name}"
        for p in found:
            assert p.module == MODULES[prov], p
            assert p.args == args, p


def test_every_probe_has_sites(demo_elf):
    static = _static(demo_elf)
    have = {idx for _, _, idx in probetable.sites(demo_elf)}
    assert have == set(range(len(static)))


def test_site_descriptor_index_matches_kernel_numbering(demo_elf):
    """sites() numbers probes as the kernel does: (desc - start) / size."""
    with open(demo_elf, "rb") as f:
        elf = ELFFile(f)
        start = elf.get_section_by_name(".unik_probes")["sh_addr"]
        raw = elf.get_section_by_name(".unik_sites").data()
    for k, (addr, target, idx) in enumerate(probetable.sites(demo_elf)):
        rec = isa.PROBE_SITE.unpack(raw, k * isa.PROBE_SITE.size)
        assert (rec["addr"], rec["target"]) == (addr, target)
        assert rec["desc"] == start + idx * isa.PROBE_DESC.size


def test_missing_table_is_a_clear_error(tmp_path):
    with pytest.raises(UnikError) as e:
        probetable.load(sys.executable)
    assert "no static probe table" in e.value.msg and e.value.hint
    with pytest.raises(UnikError):
        probetable.load(tmp_path / "nope.elf")


def test_load_is_cached_by_path_and_mtime(demo_elf, tmp_path):
    copy = tmp_path / "kernel.elf"
    copy.write_bytes(demo_elf.read_bytes())
    first = probetable.load(copy)
    hits = probetable._load_cached.cache_info().hits
    assert probetable.load(copy) == first
    assert probetable._load_cached.cache_info().hits == hits + 1
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))
    misses = probetable._load_cached.cache_info().misses
    assert probetable.load(copy) == first
    assert probetable._load_cached.cache_info().misses == misses + 1


# ------------------------------------------------------ the generated code
HOT_C = r"""
#include "probe_site.h"
#ifdef WITH_PROBES
#define FIRE(...) PROBE_FIRE(__VA_ARGS__)
#define FIRE_IF(...) PROBE_FIRE_IF(__VA_ARGS__)
#else
#define FIRE(...) do { } while (0)
#define FIRE_IF(...) do { } while (0)
#endif
struct obj { u64 a, b; u32 n; const char *name; };
PROBE_DEFINE(test, leaf, u64 *, p, uint64_t, x);
PROBE_DEFINE(test, str, struct obj *, o, string, name, uint32_t, n);
PROBE_DEFINE(test, six, u64, a, u64, b, u64, c, u64, d, u64, e, u64, f);
u64 hot_leaf(u64 *p, u64 x) { p[0] = x; FIRE(test, leaf, p, x); p[1] = x + 1; return x * 3; }
void hot_str(struct obj *o) { o->a = 1; FIRE_IF(o->n > 3, test, str, o, o->name, o->n); o->b = 2; }
u64 hot_six(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{ u64 r = a * b; FIRE(test, six, a, b, c, d, e, f); return r ^ (a + b + c + d + e + f); }
"""


def _hot_paths(obj) -> dict[str, list[str]]:
    """function -> its instructions from the entry to the first ret."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)],
                         capture_output=True, text=True, check=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"[0-9a-f]+ <(\w+)>:", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = re.match(r"\s*[0-9a-f]+:\s+(\S.*)$", line)
        if m and cur is not None and (not cur or cur[-1] != "ret"):
            cur.append(" ".join(m.group(1).split()))
    return funcs


def test_disabled_site_adds_only_the_nop(demo_elf, tmp_path):
    """The same functions with and without PROBE_FIRE, built with the
    kernel's flags: the hot path differs by the nop alone (arguments live
    at the site anyway, as probe arguments usually are)."""
    cflags = subprocess.run(["make", "-s", "-C", str(ROOT / "kernel"), "APP=demo",
                             f"O={demo_elf.parent}", "cflags"],
                            capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "hot.c"
    src.write_text(HOT_C)
    paths = {}
    for variant in ("plain", "probes"):
        obj = tmp_path / f"{variant}.o"
        extra = ["-DWITH_PROBES"] if variant == "probes" else []
        subprocess.run(["gcc", *cflags, '-DPROBE_MODULE="test"', *extra, "-c", str(src),
                        "-o", str(obj)], check=True, capture_output=True)
        paths[variant] = _hot_paths(obj)
    nop = "nopl 0x0(%rax,%rax,1)"
    for fn in ("hot_leaf", "hot_str", "hot_six"):
        plain, probed = paths["plain"][fn], paths["probes"][fn]
        assert probed.count(nop) == 1, probed
        rest = [i for i in probed if i != nop]
        assert "call" not in " ".join(rest) and "push" not in " ".join(rest), probed
        if fn != "hot_six":
            assert sorted(rest) == sorted(plain), f"{fn}: {plain} -> {probed}"
        else:       # a is dead after a * b without the probe: at most one move keeps it
            assert len(rest) <= len(plain) + 1, f"{fn}: {plain} -> {probed}"


def test_probe_define_rejects_a_second_fire_in_one_function(demo_elf, tmp_path):
    cflags = subprocess.run(["make", "-s", "-C", str(ROOT / "kernel"), "APP=demo",
                             f"O={demo_elf.parent}", "cflags"],
                            capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "twice.c"
    src.write_text('#include "probe_site.h"\nPROBE_DEFINE(test, x, int, v);\n'
                   "void f(int v) { PROBE_FIRE(test, x, v); PROBE_FIRE(test, x, v + 1); }\n")
    r = subprocess.run(["gcc", *cflags, '-DPROBE_MODULE="test"', "-c", str(src), "-o",
                        str(tmp_path / "twice.o")], capture_output=True, text=True)
    assert r.returncode != 0 and "duplicate label" in r.stderr and "probe_once" in r.stderr


# ------------------------------------------------------------- the docs
def test_probe_doc_table_is_current(demo_elf, root):
    doc = (root / "docs" / "probes.md").read_text()
    table = probetable.doc_table(probetable.load(demo_elf), probetable.descriptions())
    assert probetable.update_doc(doc, table) == doc, \
        "docs/probes.md's probe table is stale: run `make docs`"


def test_every_probe_is_described(demo_elf):
    desc = probetable.descriptions()
    for p in _static(demo_elf):
        assert desc.get((p.provider, p.name)), f"{p.fullname}: no /* prov:::name -- */ comment"


def test_listing_is_dtrace_like(demo_elf):
    text = probetable.listing(probetable.load(demo_elf), verbose=True)
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "PROVIDER", "MODULE", "FUNCTION", "NAME"]
    assert lines[1].split() == ["1", "dtrace", "BEGIN"]
    assert any(re.fullmatch(r"\s*\d+\s+sched\s+sched\s+sched_run switch", l) for l in lines)
    assert "\t\targs[1]: struct thread *next\n" in text


def test_site_entry_passes_six_arguments_and_preserves_registers(demo_elf, tmp_path):
    """Run a site on the host: hot_six built with the kernel's flags, linked
    with site_entry.S and tests/site_harness.c (its own site_fire), patched
    on and off as site.c does."""
    cflags = subprocess.run(["make", "-s", "-C", str(ROOT / "kernel"), "APP=demo",
                             f"O={demo_elf.parent}", "cflags"],
                            capture_output=True, text=True, check=True).stdout.split()
    cflags = [f for f in cflags if f not in ("-MMD", "-MP")]
    src = tmp_path / "hot.c"
    src.write_text(HOT_C)
    subprocess.run(["gcc", *cflags, '-DPROBE_MODULE="test"', "-DWITH_PROBES", "-c", str(src),
                    "-o", str(tmp_path / "hot.o")], check=True, capture_output=True)
    exe = tmp_path / "harness"
    subprocess.run(["gcc", "-O2", "-no-pie", "-fno-pie", "-o", str(exe),
                    str(ROOT / "tests" / "site_harness.c"), str(tmp_path / "hot.o"),
                    str(ROOT / "kernel" / "probe" / "site_entry.S")],
                   check=True, capture_output=True)
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        raw = elf.get_section_by_name(".unik_sites").data()
        fn = elf.get_section_by_name(".symtab").get_symbol_by_name("hot_six")[0]
    lo, hi = fn["st_value"], fn["st_value"] + fn["st_size"]
    sites = [isa.PROBE_SITE.unpack(raw, o) for o in range(0, len(raw), isa.PROBE_SITE.size)]
    six = [s for s in sites if lo <= s["addr"] < hi]
    assert len(six) == 1, sites
    s = six[0]
    r = subprocess.run([str(exe), hex(s["addr"]), hex(s["target"]), hex(s["desc"])],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
