"""An ELF core of a unik guest, as QEMU's dump-guest-memory writes it.

`Core.open(path)` checks the file (ELF, ET_CORE, x86-64, complete) and
indexes its LOAD segments (guest RAM; p_vaddr = p_paddr, and the kernel is
identity-mapped, so a kernel address is a physical one) and its NOTE
segment: NT_PRSTATUS and QEMU's "QEMU" note (QEMUCPUState) give the CPU's
registers at the time of the dump.  `core.read(addr, n)` reads guest
memory; `core.check_kernel(elf)` compares the kernel image in the core's
memory (its GNU build-id note, at the address the ELF's note section has)
with a kernel ELF.  Every problem with the file is one UnikError naming it.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnikError

ET_CORE = 4
EM_X86_64 = 62
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS = 1
NT_GNU_BUILD_ID = 3
_HINT = "take a core with: unik dump NAME -o FILE"

# user_regs_struct (NT_PRSTATUS at offset 112), in order
_PRSTATUS_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
                  "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags",
                  "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")
_PRSTATUS_REG_OFF = 112
# QEMUCPUState: version, size, 16 GPRs, rip, rflags, 10 segments of 24
# bytes, cr[5]
_QEMU_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
_QEMU_CR_OFF = 8 + 18 * 8 + 10 * 24


class CoreError(UnikError):
    """A file that is not a readable core of a unik guest."""


class FaultError(UnikError):
    """A read of guest memory the core does not hold."""


@dataclass
class Segment:
    paddr: int
    offset: int
    filesz: int


@dataclass
class Note:
    name: str
    type: int
    desc: bytes


@dataclass
class Core:
    path: Path
    data: "mmap.mmap | bytes"
    segments: list[Segment] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    registers: dict[str, int] = field(default_factory=dict)

    # --- opening ----------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "Core":
        p = Path(path)
        try:
            with open(p, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except IsADirectoryError:
            raise CoreError(f"{p} is a directory, not a core", _HINT) from None
        except OSError as e:
            raise CoreError(f"cannot read core {p}: {e.strerror}", _HINT) from None
        core = cls(p, data)
        core._parse()
        return core

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.close()

    def _bad(self, what: str) -> CoreError:
        return CoreError(f"{self.path} {what}", _HINT)

    def _parse(self) -> None:
        d, n = self.data, len(self.data)
        if n == 0:
            raise self._bad("is empty, not a core")
        if n < 64 or d[:4] != b"\x7fELF":
            raise self._bad("is not an ELF core (no ELF header)")
        if d[4] != 2 or d[5] != 1:
            raise self._bad("is not a 64-bit little-endian ELF core")
        (e_type, e_machine, _v, _entry, e_phoff, _shoff, _fl, _ehsz, e_phentsize,
         e_phnum) = struct.unpack_from("<HHIQQQIHHH", d, 16)
        if e_type != ET_CORE:
            raise self._bad(f"is an ELF file but not a core (e_type {e_type}, want "
                            f"{ET_CORE} ET_CORE)")
        if e_machine != EM_X86_64:
            raise self._bad(f"is a core of another architecture (e_machine {e_machine}, "
                            f"not x86-64)")
        if e_phentsize != 56 or e_phnum == 0:
            raise self._bad("has no program headers")
        if e_phoff + e_phnum * 56 > n:
            raise self._bad(f"is truncated: its program headers end past its {n} bytes")
        for i in range(e_phnum):
            p_type, _f, off, vaddr, paddr, filesz, _memsz, _al = \
                struct.unpack_from("<IIQQQQQQ", d, e_phoff + i * 56)
            if p_type not in (PT_LOAD, PT_NOTE):
                continue
            if off + filesz > n:
                raise self._bad(f"is truncated: segment {i} ends at byte {off + filesz}, "
                                f"the file has {n}")
            if p_type == PT_LOAD:
                self.segments.append(Segment(paddr, off, filesz))
            else:
                self.notes += _parse_notes(bytes(d[off:off + filesz]))
        if not self.segments:
            raise self._bad("holds no memory (no LOAD segments)")
        self.segments.sort(key=lambda s: s.paddr)
        self.registers = self._registers()

    def _registers(self) -> dict[str, int]:
        """The CPU's registers: QEMU's note (it has CR2) over NT_PRSTATUS."""
        regs: dict[str, int] = {}
        for note in self.notes:
            if note.type == NT_PRSTATUS and note.name == "CORE" and \
                    len(note.desc) >= _PRSTATUS_REG_OFF + 8 * len(_PRSTATUS_REGS):
                vals = struct.unpack_from(f"<{len(_PRSTATUS_REGS)}Q", note.desc,
                                          _PRSTATUS_REG_OFF)
                regs.update(zip(_PRSTATUS_REGS, vals))
                break
        for note in self.notes:
            if note.name == "QEMU" and len(note.desc) >= _QEMU_CR_OFF + 40:
                regs.update(zip(_QEMU_GPRS, struct.unpack_from("<18Q", note.desc, 8)))
                regs.update(zip(("cr0", "cr1", "cr2", "cr3", "cr4"),
                                struct.unpack_from("<5Q", note.desc, _QEMU_CR_OFF)))
                break
        return regs

    # --- memory -----------------------------------------------------------
    def read(self, addr: int, n: int) -> bytes:
        """n bytes of guest memory at addr (kernel addresses are physical)."""
        out = bytearray()
        while n > 0:
            seg = self._segment(addr)
            if seg is None:
                raise FaultError(f"address {addr:#x} is not in the core {self.path.name}",
                                 "the core holds guest RAM only")
            off = addr - seg.paddr
            k = min(n, seg.filesz - off)
            out += self.data[seg.offset + off:seg.offset + off + k]
            addr += k
            n -= k
        return bytes(out)

    def _segment(self, addr: int) -> Segment | None:
        for s in self.segments:
            if s.paddr <= addr < s.paddr + s.filesz:
                return s
        return None

    def build_id_at(self, addr: int, size: int) -> str | None:
        """The GNU build-id in the note section of `size` bytes at addr in
        guest memory, or None when there is none there."""
        try:
            raw = self.read(addr, size)
        except FaultError:
            return None
        for note in _parse_notes(raw):
            if note.name == "GNU" and note.type == NT_GNU_BUILD_ID:
                return note.desc.hex()
        return None

    def check_kernel(self, elf: str | os.PathLike) -> str:
        """Check that the kernel running in the core is the ELF `elf`: its
        build-id note, read from guest memory where the ELF puts it, must
        be the ELF's.  Returns the build-id ("" when the ELF has none)."""
        where = _elf_build_id_note(Path(elf))
        if where is None:
            return ""
        addr, size, want = where
        got = self.build_id_at(addr, size)
        if got is None:
            raise CoreError(f"{self.path} holds no kernel build-id at {addr:#x} where "
                            f"{elf} puts it: a core of another kernel?",
                            "give the kernel the core's instance booted with --kernel")
        if got != want:
            raise CoreError(f"{self.path} is a core of kernel build {got[:12]}, not of "
                            f"{elf} (build {want[:12]})",
                            "give the kernel the core's instance booted (its state "
                            "directory keeps a copy) with --kernel")
        return want


def _parse_notes(raw: bytes) -> list[Note]:
    """ELF notes (4-byte aligned names and descriptors); stops at damage."""
    out, i = [], 0
    while i + 12 <= len(raw):
        namesz, descsz, typ = struct.unpack_from("<III", raw, i)
        i += 12
        nend = i + ((namesz + 3) & ~3)
        dend = nend + ((descsz + 3) & ~3)
        if dend > len(raw) + 3 or i + namesz > len(raw) or nend + descsz > len(raw):
            break
        name = raw[i:i + namesz].rstrip(b"\0").decode("ascii", "replace")
        out.append(Note(name, typ, raw[nend:nend + descsz]))
        i = dend
    return out


def _elf_build_id_note(path: Path) -> tuple[int, int, str] | None:
    """(address, size, build-id) of the allocated note section of a kernel
    ELF that holds its GNU build-id, or None when it has none."""
    from elftools.elf.elffile import ELFFile
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UnikError(f"cannot read kernel image {path}: {e.strerror}",
                        "build it with: unik build") from None
    with f:
        try:
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                if sec.header.sh_type != "SHT_NOTE" or not sec.header.sh_addr:
                    continue
                for note in _parse_notes(sec.data()):
                    if note.name == "GNU" and note.type == NT_GNU_BUILD_ID:
                        return sec.header.sh_addr, sec.header.sh_size, note.desc.hex()
        except Exception as e:
            raise UnikError(f"{path} is not a readable kernel ELF ({type(e).__name__}: {e})",
                            "give the kernel.elf the instance booted") from None
    return None
