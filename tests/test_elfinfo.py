"""Build-id and symbols from a real ELF (built here with gcc)."""
import shutil
import subprocess

import pytest

from introspect import elfinfo
from introspect.errors import UnikError


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed (apt-get install gcc)")
    d = tmp_path_factory.mktemp("elf")
    (d / "a.c").write_text("int counter = 3;\nint f(int x) { return x + counter; }\n"
                           "int main(void) { return f(1); }\n")
    subprocess.run(["gcc", "-O1", "-Wl,--build-id=sha1", "-o", str(d / "a.out"),
                    str(d / "a.c")], check=True)
    return d / "a.out"


def test_build_id_matches_readelf(elf):
    bid = elfinfo.build_id(elf)
    assert len(bid) == 40
    r = subprocess.run(["readelf", "-n", str(elf)], capture_output=True, text=True)
    assert bid in r.stdout


def test_symbols_and_symbolize(elf):
    syms = elfinfo.symbols(elf)
    addr, size = syms["f"]
    assert size > 0 and "counter" in syms
    assert elfinfo.symbolize(syms, addr) == "f"
    assert elfinfo.symbolize(syms, addr + 1) == "f+0x1"
    assert elfinfo.symbolize({"a": (0x100, 0x10)}, 0x200) is None


def test_not_an_elf(tmp_path):
    p = tmp_path / "x.elf"
    p.write_bytes(b"not an elf at all")
    with pytest.raises(UnikError, match="not an ELF"):
        elfinfo.build_id(p)
    with pytest.raises(UnikError, match="cannot read"):
        elfinfo.symbols(tmp_path / "missing.elf")
