"""Compare a running kernel's text with its ELF: which static probe sites
are enabled right now, and whether every other byte of .text is as built.

After a trace session ends every site must be back to the 5-byte nop and
the whole text byte-identical to the ELF (issue 5's "sites restored"); the
`unik sites` command and the runtime tests ask these questions.  Memory is
read through any object with `memread(addr, n) -> bytes` (the channel
client; later a core), so the comparison itself is pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from probes import isa

from .elfinfo import _open
from .errors import UnikError


@dataclass(frozen=True)
class TextImage:
    """The .text section as the ELF holds it."""
    addr: int
    data: bytes


def text_image(elf_path) -> TextImage:
    """.text of the kernel ELF at elf_path."""
    f, elf = _open(elf_path)
    with f:
        sec = elf.get_section_by_name(".text")
        if sec is None:
            raise UnikError(f"{elf_path} has no .text section", "rebuild the kernel: unik build")
        return TextImage(sec["sh_addr"], sec.data())


def read_text(mem, img: TextImage, chunk: int = 4096) -> bytes:
    """The live bytes of the range img covers, read in chunk-sized pieces."""
    out = bytearray()
    for off in range(0, len(img.data), chunk):
        n = min(chunk, len(img.data) - off)
        piece = mem.memread(img.addr + off, n)
        if len(piece) != n:
            raise UnikError(f"short read of kernel text at {img.addr + off:#x}",
                            "the instance may be stopping")
        out += piece
    return bytes(out)


def site_states(img: TextImage, live: bytes, sites) -> list[dict]:
    """For each (addr, target, index) site: 'off' (the nop), 'on' (a jmp to
    its target; for an fbt site, index an fbt probe id, a call to it) or
    'corrupt' (anything else).  Pure."""
    out = []
    for addr, target, index in sites:
        off = addr - img.addr
        now = live[off:off + 5]
        op = b"\xe8" if index >= isa.FIRST_FBT_PROBE else b"\xe9"
        if now == isa.NOP5:
            state = "off"
        elif now[:1] == op and addr + 5 + int.from_bytes(now[1:], "little", signed=True) == target:
            state = "on"
        else:
            state = "corrupt"
        out.append({"addr": addr, "target": target, "index": index, "state": state,
                    "bytes": now.hex()})
    return out


def inside_site(diff: tuple[int, int], site_addrs) -> bool:
    """Does the differing run (addr, length) lie within one enabled site's
    5 bytes (a patched site differs from the nop in only some of them)?
    site_addrs: the enabled sites' addresses.  Pure."""
    from bisect import bisect_right
    addrs = sorted(site_addrs)
    k = bisect_right(addrs, diff[0]) - 1
    return k >= 0 and addrs[k] <= diff[0] and diff[0] + diff[1] <= addrs[k] + 5


def diff_ranges(built: bytes, live: bytes, base: int) -> list[tuple[int, int]]:
    """[(addr, length)] of the runs where live differs from built.  Pure."""
    out, start = [], None
    for i, (a, b) in enumerate(zip(built, live)):
        if a != b and start is None:
            start = i
        elif a == b and start is not None:
            out.append((base + start, i - start))
            start = None
    if start is not None:
        out.append((base + start, len(built) - start))
    return out
