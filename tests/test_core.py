"""introspect/core.py: ELF cores of a guest, good and bad.

Bad files are built byte by byte here (the parser's own checks run on
them); the real core and the other-kernel case come from a booted
crash-null instance dumped with `unik dump`."""
from __future__ import annotations

import json
import os
import re
import struct

import pytest

from conftest import build_kernel
from instances import booted, unik
from introspect.core import Core, CoreError


def _elf_header(e_type=4, machine=62, phnum=0, cls=2) -> bytes:
    ident = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, 64 if phnum else 0,
                               0, 0, 64, 56, phnum, 0, 0, 0)


def _err(path) -> str:
    with pytest.raises(CoreError) as e:
        Core.open(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg.split("hint:")[0].strip()
    return msg


def test_empty_file(tmp_path):
    p = tmp_path / "empty.core"
    p.write_bytes(b"")
    assert "is empty" in _err(p)


def test_not_elf(tmp_path):
    p = tmp_path / "text.core"
    p.write_text("hello, I am not a core\n" * 10)
    assert "not an ELF core" in _err(p)


def test_elf_but_not_core(tmp_path):
    p = tmp_path / "exec.core"
    p.write_bytes(_elf_header(e_type=2, phnum=1) + bytes(56))
    assert "not a core" in _err(p)


def test_not_x86_64(tmp_path):
    p = tmp_path / "arm.core"
    p.write_bytes(_elf_header(machine=183, phnum=1) + bytes(56))   # EM_AARCH64
    assert "not x86-64" in _err(p)


def test_32_bit(tmp_path):
    p = tmp_path / "c32.core"
    p.write_bytes(_elf_header(cls=1) + bytes(64))
    assert "64-bit" in _err(p)


def test_headers_past_end(tmp_path):
    p = tmp_path / "short.core"
    p.write_bytes(_elf_header(phnum=3) + bytes(20))
    assert "truncated" in _err(p)


def test_missing_file(tmp_path):
    assert "cannot read core" in _err(tmp_path / "nope.core")


def test_directory(tmp_path):
    assert "directory" in _err(tmp_path)


@pytest.fixture(scope="module")
def crash_core(tmp_path_factory):
    """(core path, kernel path) of a crash-null instance dumped after its
    panic (it panics about 1 s after boot and halts)."""
    from instances import wait_until
    state = tmp_path_factory.mktemp("state")
    d = tmp_path_factory.mktemp("cores")
    with booted("crash-null", state=state, name="cn") as inst:
        wait_until(lambda: inst.panic_report(), timeout=60, what="the crash-null panic")
        out = d / "cn.core"
        r = unik(inst.env, "dump", "cn", "-o", out, "--json")
        info = json.loads(r.stdout)
        assert info["path"] == str(out) and info["bytes"] == out.stat().st_size
        # the instance is still there (QEMU runs, halted), not restarted
        assert json.loads(unik(inst.env, "ls", "--json").stdout)[0]["state"] == "panicked"
        kernel = inst.kernel
        yield out, kernel


def test_real_core(crash_core):
    core, kernel = crash_core
    c = Core.open(core)
    assert c.segments and c.registers["cs"] == 8
    assert {"rip", "rsp", "rbp", "cr2", "cr3"} <= set(c.registers)
    assert c.registers["cr2"] == 0                 # the NULL write faulted at page 0
    from introspect.elfinfo import build_id
    assert c.check_kernel(kernel) == build_id(kernel)


def test_core_of_another_kernel(crash_core):
    core, _ = crash_core
    other = build_kernel("demo")
    # the other build's note may sit elsewhere: either error names the mismatch
    with pytest.raises(CoreError, match="is a core of kernel build .* not of|"
                                        "holds no kernel build-id .* a core of another kernel"):
        Core.open(core).check_kernel(other)


def test_truncated_real_core(crash_core, tmp_path):
    core, _ = crash_core
    p = tmp_path / "trunc.core"
    p.write_bytes(core.read_bytes()[:os.path.getsize(core) // 2])
    assert "is truncated" in _err(p)


def test_cli_bad_cores_one_line(crash_core, tmp_path):
    """`unik py --core` on bad input: exit 1, one error line and a hint,
    no traceback."""
    from instances import env_for
    env = env_for(tmp_path / "state")
    core, _ = crash_core
    empty = tmp_path / "e.core"
    empty.write_bytes(b"")
    cases = [(["--core", empty], "is empty"),
             (["--core", core, "--kernel", build_kernel("demo")], "another kernel|is a core of kernel build")]
    for argv, want in cases:
        r = unik(env, "py", *argv, "-c", "print(1)", check=False)
        assert r.returncode != 0, r
        assert "Traceback" not in r.stderr and re.search(want, r.stderr), r.stderr
        assert r.stderr.startswith("unik: error: ") and len(r.stderr.splitlines()) == 2


def test_dump_errors(tmp_path):
    from instances import env_for
    env = env_for(tmp_path / "state")
    r = unik(env, "dump", "nosuch", "-o", tmp_path / "x.core", check=False)
    assert r.returncode != 0 and "no instance named 'nosuch'" in r.stderr
    assert "Traceback" not in r.stderr
