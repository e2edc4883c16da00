"""Kernel and host must agree on the wire protocol: one source of truth
(introspect/protocol.py), checked three ways — the generated header in the
build, the DWARF of the built kernel, and the generated docs."""
from __future__ import annotations

from elftools.elf.elffile import ELFFile

from introspect import protocol as P
from introspect import protodoc, wiregen


def _dwarf_types(elf_path):
    """{struct name: (byte_size, {member: offset})}, {enum name: {k: v}}."""
    structs, enums = {}, {}
    with open(elf_path, "rb") as f:
        dw = ELFFile(f).get_dwarf_info()
        for cu in dw.iter_CUs():
            for die in cu.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                if name is None:
                    continue
                name = name.value.decode()
                if not name.startswith("wire_"):
                    continue
                if die.tag == "DW_TAG_structure_type" and "DW_AT_byte_size" in die.attributes:
                    members = {}
                    for m in die.iter_children():
                        if m.tag == "DW_TAG_member":
                            members[m.attributes["DW_AT_name"].value.decode()] = \
                                m.attributes["DW_AT_data_member_location"].value
                    structs[name] = (die.attributes["DW_AT_byte_size"].value, members)
                elif die.tag == "DW_TAG_enumeration_type":
                    enums[name] = {e.attributes["DW_AT_name"].value.decode():
                                   e.attributes["DW_AT_const_value"].value
                                   for e in die.iter_children()}
    return structs, enums


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
