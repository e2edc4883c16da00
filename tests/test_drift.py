"""Kernel and host must agree on the wire protocol: one source of truth
(introspect/protocol.py), checked three ways — the generated header in the
build, the DWARF of the built kernel, and the generated docs."""
from __future__ import annotations

from introspect import protocol as P
from introspect import protodoc, wiregen
from introspect.dwarf import TypeDB


def _dwarf_types(elf_path):
    """{struct name: (byte_size, {member: offset})}, {enum name: {k: v}}."""
    db = TypeDB.from_elf(elf_path)
    return db.struct_layouts("wire_"), db.enums("wire_")


def test_generated_header_is_current(demo_elf):
    built = (demo_elf.parent / "gen" / "wire.h").read_text()
    assert built == wiregen.render(), "build/demo/gen/wire.h is stale: rebuild"


def test_kernel_dwarf_matches_protocol(demo_elf):
    structs, enums = _dwarf_types(demo_elf)
    for lay in P.LAYOUTS:
        cname = "wire_" + lay.name
        assert cname in structs, f"struct {cname} missing from the kernel's DWARF"
        size, members = structs[cname]
        assert size == lay.size, f"{cname}: kernel {size} bytes, protocol {lay.size}"
        assert members == lay.offsets(), f"{cname}: member offsets differ"
    for prefix, enum in P.ENUMS:
        cname = "wire_" + prefix.lower()
        assert cname in enums, f"enum {cname} missing from the kernel's DWARF"
        want = {f"WIRE_{prefix}_{m.name}": int(m) for m in enum}
        want[f"WIRE_{prefix}_COUNT_"] = len(enum)
        got = {k: v & 0xFFFFFFFF for k, v in enums[cname].items()}
        assert got == want, f"enum {cname} differs"


def test_protocol_doc_is_current(root):
    doc = (root / "docs" / "protocol.md").read_text()
    assert doc == protodoc.render(), "docs/protocol.md is stale: run `make docs`"
