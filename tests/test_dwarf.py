"""introspect/dwarf.py against the real kernel ELF and a C sample, with gdb,
nm and addr2line as the independent truth."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from introspect import ctype as C
from introspect import dwarf
from introspect.dwarf import TypeDB, UnknownType
from introspect.errors import UnikError

SAMPLE_C = r"""
#include <stdint.h>
#include <stdbool.h>
enum color { RED = -1, GREEN = 0, BLUE = 7 };
enum big { HUGE_V = 0x80000000u };
typedef struct node node_t;
struct node { node_t *next; int v; };
typedef struct { int a; short b; } pair_t;
struct flags {
    unsigned int a : 3;
    unsigned int b : 5;
    int c : 9;
    uint8_t d;
    uint64_t e : 40;
    uint64_t f : 24;
};
struct outer {
    int kind;
    union { long l; char c[12]; };
    struct { int x, y; } pt;
    struct { uint16_t lo, hi; };
    int (*cb)(const char *, ...);
    const volatile uint32_t cv;
    int grid[2][3];
    enum color col;
    bool on;
    unsigned char *bytes;
    char tail[];
};
union u { uint64_t q; uint8_t b[8]; };
struct outer g_outer;
static struct flags s_flags;
node_t *g_head;
pair_t g_pairs[4];
union u g_u;
enum color g_color = BLUE;
enum big g_big;
const char *g_str = "x";
int main(void) { return g_outer.kind + s_flags.a + g_u.b[1] + (int)g_big; }
"""


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} not found: apt-get install gdb binutils")
    return path


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def db(demo_elf) -> TypeDB:
    return TypeDB.from_elf(demo_elf)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dwarf")
    (d / "s.c").write_text(SAMPLE_C)
    subprocess.run([_need("gcc"), "-g", "-O0", "-o", str(d / "s.elf"), str(d / "s.c")],
                   check=True)
    return d / "s.elf"


# --- struct layouts agree with gdb ----------------------------------------
def gdb_layout(elf: Path, type_name: str):
    """(total size, [(name, bit offset, size, declaration)]) of the top-level
    members gdb's `ptype/o` shows; nested anonymous aggregates appear once,
    named after their closing brace (None when anonymous)."""
    out = _run(_need("gdb"), "-batch", "-nx", "-ex", "set max-value-size unlimited",
               "-ex", f"ptype/o {type_name}", str(elf))
    line_re = re.compile(r"/\*\s*(\d*)(?::\s*(\d+))?\s*\|?\s*(\d+) \*/\s+(.*)$")
    members, depth, pending = [], 0, None
    for line in out.splitlines()[1:]:
        m = line_re.match(line)
        if m:
            bit = int(m[1] or 0) * 8 + int(m[2] or 0)
            decl = m[4]
            if depth == 0 and decl.endswith("{"):
                pending, depth = (bit, int(m[3])), 1
            elif depth == 0:
                name = re.match(r".*?\(?\*?(\w+)\)?(\[\d*\])*(\(.*\))?( : \d+)?;$", decl)[1]
                members.append((name, bit, int(m[3]), decl.rstrip(";")))
            elif decl.endswith("{"):
                depth += 1
            continue
        s = line.strip()
        if s.startswith("}") and depth:
            depth -= 1
            if depth == 0:
                name = re.sub(r"(\[\d*\])+$", "", s[1:].strip(" ;"))   # `} arr[4];`
                members.append((name or None, pending[0], pending[1], None))
    total = int(re.findall(r"total size \(bytes\):\s*(\d+)", out)[-1])
    return total, members


def _ours(t: C.CType):
    rows = []
    for m in t.members:
        bit = m.offset * 8 + (m.bit_offset or 0)
        decl = None
        if m.name is not None and m.type.kind not in ("struct", "union") or \
                m.type.typedef is not None:
            decl = C.spelling(m.type, m.name) + (f" : {m.bit_size}" if m.bit_size else "")
        rows.append((m.name, bit, m.type.size, decl))
    return t.size, rows


def _check_against_gdb(elf, t):
    size, want = gdb_layout(elf, str(t))
    got_size, got = _ours(t)
    assert got_size == size, f"{t}: size {got_size}, gdb says {size}"
    assert len(got) == len(want), f"{t}: {got} vs gdb {want}"
    for g, w in zip(got, want):
        assert g[:3] == w[:3], f"{t}: member {g} vs gdb {w}"
        if w[3] is not None:
            assert g[3] == w[3], f"{t}: declaration {g[3]!r} vs gdb {w[3]!r}"


def test_struct_thread_matches_gdb(db, demo_elf):
    t = db.lookup("struct thread")
    assert t.kind == "struct" and t.complete and len(t.members) >= 10
    _check_against_gdb(demo_elf, t)
    assert db.lookup("thread") is t                  # the tag alone
    assert t.member("name").type.is_string()
    assert t.member("nosuch") is None


def test_every_kernel_struct_matches_gdb(db, demo_elf):
    names = sorted(db.struct_layouts())
    assert len(names) > 20
    for name in names:
        _check_against_gdb(demo_elf, db.lookup(f"struct {name}"))


def test_sample_aggregates_match_gdb(sample):
    sdb = TypeDB.from_elf(sample)
    for name in ("struct outer", "struct flags", "union u", "struct node", "node_t",
                 "pair_t"):
        _check_against_gdb(sample, sdb.parse_type(name))


def test_sample_members_through_anonymous_and_typedef(sample):
    sdb = TypeDB.from_elf(sample)
    outer = sdb.lookup("struct outer")
    assert outer.member("l").offset == outer.member("c").offset == 8
    assert outer.member("hi").offset == 34 and outer.member("hi").type.name == "uint16_t"
    assert outer.member("pt").type.member("y").offset == 4
    assert str(outer.member("cb").type) == "int (*)(const char *, ...)"
    assert outer.member("cb").type.deref().kind == "func"
    assert outer.member("tail").type.count is None and outer.member("tail").type.is_string()
    assert outer.member("bytes").type.is_string() is True       # unsigned char *
    assert outer.member("grid").type.target.count == 3
    node = sdb.lookup("node_t")
    assert node.member("next").type.deref().member("v").offset == 8   # cycle closed
    assert node.typedef == "node_t" and sdb.lookup("struct node").members == node.members
    flags = sdb.lookup("struct flags")
    f = flags.member("f")
    assert (f.offset, f.bit_offset, f.bit_size) == (8, 40, 24)
    color = sdb.lookup("enum color")
    assert color.signed and color.enumerators == {"RED": -1, "GREEN": 0, "BLUE": 7}
    big = sdb.lookup("enum big")
    assert not big.signed and big.enumerators == {"HUGE_V": 0x80000000}
    assert sdb.enumerator("BLUE") == (7, color)


# --- variables and symbols agree with nm -----------------------------------
def _nm(elf) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for line in _run(_need("nm"), str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.setdefault(parts[2], set()).add(int(parts[0], 16))
    return out


def test_global_vars_at_symbol_table_addresses(db, demo_elf):
    nm = _nm(demo_elf)
    names = db.global_names()
    assert "sched_threads" in names and "sched_cur" in names
    for name in names:
        addr, t = db.global_var(name)
        assert addr in nm[name], f"{name}: DWARF {addr:#x}, nm {nm[name]}"
        assert db.address(name) in nm[name]
    addr, t = db.global_var("sched_threads")
    # each compilation unit has its own copy of struct thread: the same type
    st = db.lookup("struct thread")
    assert t.kind == "array" and t.target.name == st.name and t.target.size == st.size
    assert t.size == t.count * t.target.size and t.count > 1
    addr, t = db.global_var("sched_cur")
    assert str(t) == "struct thread *" and t.deref().name == "struct thread" and t.deref().size == st.size
    assert db.global_var("no_such_variable") is None


def test_sample_static_and_typedef_vars(sample):
    sdb, nm = TypeDB.from_elf(sample), _nm(sample)
    for name, spelled in (("s_flags", "struct flags"), ("g_head", "node_t *"),
                          ("g_pairs", "pair_t [4]"), ("g_str", "const char *"),
                          ("g_color", "enum color"), ("g_u", "union u")):
        addr, t = sdb.global_var(name)
        assert addr in nm[name] and str(t) == spelled, (name, t)


def test_functions_and_symbol_lookup(db, demo_elf):
    sizes = {}
    for line in _run(_need("nm"), "-S", str(demo_elf)).splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwW":     # W: a weak function (fbt_unwind_ret)
            sizes[p[3]] = (int(p[0], 16), int(p[1], 16))
    funcs = db.functions()
    assert len(funcs) > 100 and "thread_spawn" in funcs
    for name, (lo, hi) in funcs.items():
        assert sizes[name] == (lo, hi - lo), name
        assert db.symbol(lo) == (name, 0)
        assert db.symbol(lo + (hi - lo) // 2) == (name, (hi - lo) // 2)
        assert db.symbol(hi - 1) == (name, hi - lo - 1)
        assert db.address(name) == lo
    # size-less assembly labels cover up to the next symbol
    tc = db.address("trap_common")
    assert tc is not None and db.symbol(tc + 3) == ("trap_common", 3)
    obj, _ = db.global_var("sched_threads")
    assert db.symbol(obj + 200) == ("sched_threads", 200)
    assert db.symbol(0) is None and db.symbol(1 << 63) is None
    assert db.address("no_such_symbol") is None


def test_function_params(db):
    params = db.function_params("thread_spawn")
    assert [n for n, _ in params] == ["name", "fn", "arg", "flags", "stack"]
    assert str(params[0][1]) == "const char *" and params[0][1].is_string()
    assert str(params[1][1]) == "thread_fn" and params[1][1].deref().kind == "func"
    assert db.function_params("no_such_function") is None


def test_source_lines_match_addr2line(db, demo_elf):
    addrs = []
    for lo, hi in db.functions().values():        # ~7 points in every function
        addrs += range(lo, hi, max(1, (hi - lo) // 7))
    assert len(addrs) > 700
    out = _run(_need("addr2line"), "-e", str(demo_elf), *[hex(a) for a in addrs])
    for addr, line in zip(addrs, out.splitlines()):
        f, _, n = line.split(" (")[0].rpartition(":")
        got = db.source_line(addr)
        assert got is not None, hex(addr)
        assert (os.path.normpath(got[0]), got[1]) == (os.path.normpath(f), int(n)), \
            (hex(addr), got, line)
    file, line = db.source_line(db.functions()["thread_spawn"][0])
    assert file.endswith("sched/thread.c") and line > 0
    assert db.source_line(0) is None


# --- parse_type -----------------------------------------------------------
@pytest.mark.parametrize("text, kind, size, signed, spelled", [
    ("uint32_t", "int", 4, False, "uint32_t"),
    ("int8_t", "int", 1, True, "int8_t"),
    ("u64", "int", 8, False, "u64"),
    ("unsigned long", "int", 8, False, "unsigned long"),
    ("long unsigned int", "int", 8, False, "unsigned long"),
    ("unsigned", "int", 4, False, "unsigned int"),
    ("long  long", "int", 8, True, "long long"),
    ("short int", "int", 2, True, "short"),
    ("signed char", "int", 1, True, "signed char"),
    ("char", "int", 1, True, "char"),
    ("bool", "bool", 1, False, "bool"),
    ("_Bool", "bool", 1, False, "_Bool"),
    ("void", "void", 0, False, "void"),
    ("void *", "ptr", 8, False, "void *"),
    ("char *", "ptr", 8, False, "char *"),
    ("const char *", "ptr", 8, False, "const char *"),
    ("char const *", "ptr", 8, False, "const char *"),
    ("struct thread *", "ptr", 8, False, "struct thread *"),
    ("struct thread **", "ptr", 8, False, "struct thread **"),
    ("struct thread", "struct", None, False, "struct thread"),
    ("thread", "struct", None, False, "struct thread"),
    ("enum wire_ts", "enum", 4, False, "enum wire_ts"),
    ("char [16]", "array", 16, False, "char [16]"),
    ("uint64_t*const*", "ptr", 8, False, "uint64_t **"),
    ("size_t", "int", 8, False, "size_t"),
])
def test_parse_type(db, text, kind, size, signed, spelled):
    t = db.parse_type(text)
    assert (t.kind, t.signed, str(t)) == (kind, signed, spelled)
    if size is not None:
        assert t.size == size
    assert db.lookup(text) == t


def test_parse_type_pointer_targets(db):
    t = db.parse_type("struct thread **")
    assert t.deref().deref() is db.lookup("struct thread")
    assert db.parse_type("const char *").is_string()
    assert not db.parse_type("u8 *").is_string()               # bytes, not text
    assert db.parse_type("char [16]").is_string()
    assert db.parse_type("int [2][3]").size == 24
    assert db.parse_type("u64").is_integer() and db.parse_type("char *").is_pointer()
    with pytest.raises(TypeError, match="cannot dereference"):
        db.parse_type("int").deref()


@pytest.mark.parametrize("text, named", [
    ("struct nosuch", "struct nosuch"), ("nosuch_t", "nosuch_t"),
    ("nosuch_t *", "nosuch_t"), ("enum nosuch", "enum nosuch"),
    ("unsigned short long", "unsigned short long"), ("struct", "struct"),
    ("", ""), ("char * [", "char * ["), ("int )", "int )"), ("signed bool", "signed bool"),
])
def test_parse_type_unknown(db, text, named):
    with pytest.raises(UnknownType) as e:
        db.parse_type(text)
    assert isinstance(e.value, KeyError)
    assert str(e.value).startswith("unknown type") and f"'{named}" in str(e.value)
    assert db.lookup(text) is None


def test_base_types_without_dwarf():
    for name, size in (("int8_t", 1), ("uint16_t", 2), ("int32_t", 4), ("uint64_t", 8),
                       ("long long", 8), ("unsigned short", 2), ("char", 1)):
        assert C.base_type(name).size == size
    assert C.base_type("foo") is None and C.canonical_base(["long", "char"]) is None


# --- bad files ------------------------------------------------------------
def test_truncated_and_foreign_files(demo_elf, tmp_path):
    data = demo_elf.read_bytes()
    cases = {"half.elf": data[: len(data) // 2], "head.elf": data[:100],
             "empty.elf": b"", "text.elf": b"hello, not an ELF\n" * 50,
             "four.elf": data[:4]}
    for fname, blob in cases.items():
        p = tmp_path / fname
        p.write_bytes(blob)
        with pytest.raises(UnikError) as e:
            TypeDB.from_elf(p)
        assert str(p) in e.value.msg and e.value.hint, fname
        assert "\n" not in e.value.msg
    with pytest.raises(UnikError, match="cannot read"):
        TypeDB.from_elf(tmp_path / "missing.elf")
    stripped = tmp_path / "stripped.elf"
    subprocess.run([_need("objcopy"), "--strip-debug", str(demo_elf), str(stripped)],
                   check=True)
    with pytest.raises(UnikError, match="no DWARF"):
        TypeDB.from_elf(stripped)


def test_damaged_dwarf_is_a_unik_error(demo_elf, tmp_path):
    """Garbage inside .debug_info/.debug_abbrev: opening and looking up give
    answers or UnikErrors, never a pyelftools traceback."""
    out = _run(_need("readelf"), "-SW", str(demo_elf))
    secs = {m[1]: int(m[2], 16) for m in
            re.finditer(r"\]\s+(\.debug_\w+)\s+\w+\s+[0-9a-f]+\s+([0-9a-f]+)", out)}
    data = demo_elf.read_bytes()
    outcomes = set()
    for i, (sec, delta) in enumerate([(".debug_abbrev", 0), (".debug_info", 40),
                                      (".debug_info", 4000), (".debug_info", 0),
                                      (".debug_line", 20), (".debug_str", 0)]):
        blob = bytearray(data)
        at = secs[sec] + delta
        blob[at:at + 64] = bytes((37 * k + 11 * i) & 0xFF for k in range(64))
        p = tmp_path / f"bad{i}.elf"
        p.write_bytes(bytes(blob))
        try:
            d = TypeDB.from_elf(p)
            d.global_var("sched_threads"), d.lookup("struct thread")
            d.struct_layouts(), d.source_line(d.address("thread_spawn") or 0)
            outcomes.add("answered")
        except UnikError as e:
            assert str(p) in e.msg and "\n" not in e.msg
            outcomes.add("error")
    assert "error" in outcomes


# --- caching and speed -----------------------------------------------------
def test_cached_by_path_and_mtime(demo_elf, tmp_path):
    copy = tmp_path / "k.elf"
    shutil.copy(demo_elf, copy)
    a = TypeDB.from_elf(copy)
    assert TypeDB.from_elf(str(copy)) is a
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert TypeDB.from_elf(copy) is not a


def test_open_and_lookups_are_fast(demo_elf):
    best = 1e9
    for _ in range(3):
        dwarf._open_cached.cache_clear()
        t0 = time.perf_counter()
        d = TypeDB.from_elf(demo_elf)
        d.global_var("sched_threads"), d.global_var("sched_cur")
        d.parse_type("struct thread *"), d.parse_type("uint32_t"), d.lookup("u64")
        d.symbol(d.address("thread_spawn") + 4)
        best = min(best, time.perf_counter() - t0)
    print(f"from_elf + lookups: {best * 1000:.0f} ms")
    assert best < 0.5, f"from_elf + lookups took {best:.3f} s"
