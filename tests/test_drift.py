"""Kernel and host must agree on the wire protocol and on the probe VM: one
source of truth each (introspect/protocol.py, probes/isa.py), checked
three ways — the generated header in the build, the DWARF of the built
kernel, and the generated docs."""
from __future__ import annotations

from elftools.elf.elffile import ELFFile

from introspect import protocol as P
from introspect import protodoc, wiregen
from probes import isa as I
from probes import isagen


def _dwarf_types(elf_path, prefix="wire_"):
    """{struct name: (byte_size, {member: offset})}, {enum name: {k: v}} for
    the types whose name starts with prefix."""
    structs, enums = {}, {}
    with open(elf_path, "rb") as f:
        dw = ELFFile(f).get_dwarf_info()
        for cu in dw.iter_CUs():
            for die in cu.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                if name is None:
                    continue
                name = name.value.decode()
                if not name.startswith(prefix):
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


def test_generated_isa_header_is_current(demo_elf):
    built = (demo_elf.parent / "gen" / "isa.h").read_text()
    assert built == isagen.render(), "build/demo/gen/isa.h is stale: rebuild"


def test_kernel_dwarf_matches_isa(demo_elf):
    """Every isa layout and enum as the kernel compiled it (kernel/probe/
    isa_dwarf.c keeps them all in the DWARF) matches probes/isa.py."""
    structs, enums = _dwarf_types(demo_elf, "isa_")
    for lay in I.LAYOUTS:
        cname = "isa_" + lay.name
        assert cname in structs, f"struct {cname} missing from the kernel's DWARF"
        size, members = structs[cname]
        assert size == lay.size, f"{cname}: kernel {size} bytes, isa.py {lay.size}"
        assert members == lay.offsets(), f"{cname}: member offsets differ"
    assert structs["isa_insn"][0] == I.INSN_SIZE
    for prefix, enum in I.ENUMS:
        cname = "isa_" + prefix.lower()
        assert cname in enums, f"enum {cname} missing from the kernel's DWARF"
        want = {f"ISA_{prefix}_{m.name}": int(m) for m in enum}
        want[f"ISA_{prefix}_COUNT_"] = len(enum)
        got = {k: v & 0xFFFFFFFF for k, v in enums[cname].items()}
        assert got == want, f"enum {cname} differs"


def test_probe_table_records_match_isa(demo_elf):
    """The sections the kernel linked are whole isa.PROBE_DESC and
    isa.PROBE_SITE records (the host decodes them with those layouts)."""
    with open(demo_elf, "rb") as f:
        elf = ELFFile(f)
        probes = elf.get_section_by_name(".unik_probes")
        sites = elf.get_section_by_name(".unik_sites")
        assert probes is not None and sites is not None, "probe table sections missing"
        assert probes["sh_size"] % I.PROBE_DESC.size == 0
        assert sites["sh_size"] % I.PROBE_SITE.size == 0
        assert probes["sh_size"] and sites["sh_size"]
