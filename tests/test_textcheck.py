"""introspect/textcheck.py: site states and text differences (pure parts),
and against the real kernel ELF's site table."""
from __future__ import annotations

from introspect import probetable, textcheck
from probes import isa


def _img():
    data = bytearray(b"\x90" * 64)
    data[8:13] = isa.NOP5
    data[32:37] = isa.NOP5
    return textcheck.TextImage(0x1000, bytes(data))


def test_site_states_off_on_corrupt():
    img = _img()
    live = bytearray(img.data)
    # site at 0x1020 enabled: jmp to 0x1030
    live[32:37] = b"\xe9" + (0x1030 - (0x1020 + 5)).to_bytes(4, "little", signed=True)
    states = textcheck.site_states(img, bytes(live), [(0x1008, 0x1030, 0), (0x1020, 0x1030, 1)])
    assert [s["state"] for s in states] == ["off", "on"]
    live[8] = 0xCC
    states = textcheck.site_states(img, bytes(live), [(0x1008, 0x1030, 0), (0x1020, 0x1040, 1)])
    assert [s["state"] for s in states] == ["corrupt", "corrupt"]   # wrong byte; jmp elsewhere


def test_diff_ranges():
    built = bytes(16)
    live = bytearray(16)
    live[2:4] = b"\x01\x02"
    live[15] = 9
    assert textcheck.diff_ranges(built, bytes(live), 0x100) == [(0x102, 2), (0x10F, 1)]
    assert textcheck.diff_ranges(built, built, 0x100) == []


class _ElfMemory:
    """memread served from the ELF's own .text (what an untouched kernel has)."""

    def __init__(self, img):
        self.img = img
        self.reads = 0

    def memread(self, addr, n):
        self.reads += 1
        off = addr - self.img.addr
        return self.img.data[off:off + n]


def test_every_site_of_the_built_kernel_is_off(demo_elf):
    img = textcheck.text_image(demo_elf)
    mem = _ElfMemory(img)
    live = textcheck.read_text(mem, img)
    assert live == img.data and mem.reads == -(-len(img.data) // 4096)
    states = textcheck.site_states(img, live, probetable.sites(demo_elf))
    assert states and {s["state"] for s in states} == {"off"}
