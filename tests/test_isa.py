"""The probe VM's instruction set (probes/isa.py) is the one source of truth
for the compiler, the kernel and the docs: check the generated header
compiles and matches the layouts, and the generated reference is current."""
from __future__ import annotations

import subprocess

import pytest

from probes import isa as I
from probes import isadoc, isagen


def test_bytecode_doc_is_current(root):
    doc = (root / "docs" / "bytecode.md").read_text()
    assert doc == isadoc.render(), "docs/bytecode.md is stale: run `make docs`"


def test_every_opcode_is_documented():
    docs = isadoc.member_comments()
    missing = [m.name for m in I.Op if not docs.get(("Op", m.name))]
    assert missing == []


def test_every_helper_has_an_arity():
    assert set(I.HELPERS) == set(I.Helper)
    assert all(1 <= I.HELPERS[h].nargs <= 3 for h in I.Helper)


def test_encode_decode_round_trip():
    code = I.encode(I.Op.ADD, 1, 2, 3, -5) + I.encode(I.Op.RET)
    assert len(code) == 2 * I.INSN_SIZE
    assert I.decode(code, 0) == (I.Op.ADD, 1, 2, 3, -5)
    assert I.decode(code, 1) == (I.Op.RET, 0, 0, 0, 0)


@pytest.mark.parametrize("func,levels,words", [
    (I.AggFunc.COUNT, 0, 1), (I.AggFunc.AVG, 0, 2), (I.AggFunc.STDDEV, 0, 4),
    (I.AggFunc.QUANTIZE, 0, 127), (I.AggFunc.LQUANTIZE, 10, 12)])
def test_agg_words(func, levels, words):
    assert I.agg_words(func, levels) == words


def test_layout_sizes_are_8_byte_multiples():
    # The container's sections follow one another unpadded; records are
    # 8-byte aligned: every layout keeps that alignment.
    assert {lay.name: lay.size % 8 for lay in I.LAYOUTS} == {lay.name: 0 for lay in I.LAYOUTS}


def test_generated_header_compiles_with_the_same_sizes(tmp_path):
    hdr = tmp_path / "isa.h"
    hdr.write_text(isagen.render())
    checks = "\n".join(f"_Static_assert(sizeof(struct isa_{lay.name}) == {lay.size}, \"{lay.name}\");"
                       for lay in I.LAYOUTS)
    src = tmp_path / "t.c"
    src.write_text(f'#include "isa.h"\n{checks}\nint x = ISA_OP_RET + ISA_H_COUNT_;\n')
    r = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only",
                        f"-I{tmp_path}", str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
