"""Kernel and host must agree on the wire protocol and on the probe VM: one
source of truth each (introspect/protocol.py, probes/isa.py), checked
three ways — the generated header in the build, the DWARF of the built
kernel, and the generated docs."""
from __future__ import annotations

from introspect import protocol as P
from introspect import protodoc, wiregen
from elftools.elf.elffile import ELFFile

from introspect.dwarf import TypeDB
from probes import isa as I
from probes import isagen


def _assert_dwarf_matches(elf_path, prefix: str, layouts, enums, source: str) -> dict:
    """Every layout and enum of source (protocol.py or isa.py) as the kernel
    compiled it: the struct `<prefix>_<name>` has the layout's size and
    offsets, the enum `<prefix>_<name>` its members and the _COUNT_ the
    generator adds.  Returns the structs found ({name: (size, offsets)})."""
    db = TypeDB.from_elf(elf_path)
    structs, kenums = db.struct_layouts(prefix + "_"), db.enums(prefix + "_")
    for lay in layouts:
        cname = f"{prefix}_{lay.name}"
        assert cname in structs, f"struct {cname} missing from the kernel's DWARF"
        size, members = structs[cname]
        assert size == lay.size, f"{cname}: kernel {size} bytes, {source} {lay.size}"
        assert members == lay.offsets(), f"{cname}: member offsets differ"
    for eprefix, enum in enums:
        cname = f"{prefix}_{eprefix.lower()}"
        assert cname in kenums, f"enum {cname} missing from the kernel's DWARF"
        up = f"{prefix.upper()}_{eprefix}_"
        want = {up + m.name: int(m) for m in enum}
        want[up + "COUNT_"] = len(enum)
        got = {k: v & 0xFFFFFFFF for k, v in kenums[cname].items()}
        assert got == want, f"enum {cname} differs"
    return structs


def test_generated_header_is_current(demo_elf):
    built = (demo_elf.parent / "gen" / "wire.h").read_text()
    assert built == wiregen.render(), "build/demo/gen/wire.h is stale: rebuild"


def test_kernel_dwarf_matches_protocol(demo_elf):
    _assert_dwarf_matches(demo_elf, "wire", P.LAYOUTS, P.ENUMS, "protocol")


def test_protocol_doc_is_current(root):
    doc = (root / "docs" / "protocol.md").read_text()
    assert doc == protodoc.render(), "docs/protocol.md is stale: run `make docs`"


def test_generated_isa_header_is_current(demo_elf):
    built = (demo_elf.parent / "gen" / "isa.h").read_text()
    assert built == isagen.render(), "build/demo/gen/isa.h is stale: rebuild"


def test_kernel_dwarf_matches_isa(demo_elf):
    """Every isa layout and enum as the kernel compiled it (kernel/probe/
    isa_dwarf.c keeps them all in the DWARF) matches probes/isa.py."""
    structs = _assert_dwarf_matches(demo_elf, "isa", I.LAYOUTS, I.ENUMS, "isa.py")
    assert structs["isa_insn"][0] == I.INSN_SIZE


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
