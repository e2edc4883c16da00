"""A drgn-like view of a unik kernel: typed memory, symbols, code, threads.

    prog = Program.from_core("x.core", "build/demo/kernel.elf")   # post-mortem
    prog = Program.live("demo")                                   # over MEMREAD
    t = prog['sched_threads'][2]
    t.name.string_(), t.state, int(t.tid), t.stack.deref()
    for th in prog.threads(): print(th.name, th.state_name, th.stack_trace())

Both backends are one function `read(addr, n) -> bytes`; everything above
it (types from introspect/dwarf.py's TypeDB, the frame-pointer unwinder,
the helpers in introspect/helpers/) is the same code, so a script gives
the same answer on a core and on the quiesced live instance it came from.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

from .ctype import CType
from .errors import UnikError

_MAX_STRING = 4096


class Object:
    """A value of a C type in the kernel's memory (or a computed one):
    struct members as attributes or obj['member'], obj[i] for arrays and
    pointers, obj.deref(), int(obj) / obj.value_(), obj.string_()."""

    __slots__ = ("prog_", "type_", "address_", "_value")

    def __init__(self, prog: "Program", type_: CType, address: int | None = None,
                 value=None) -> None:
        self.prog_, self.type_, self.address_, self._value = prog, type_, address, value

    # --- structure ----------------------------------------------------------
    def member_(self, name: str) -> "Object":
        t = self.type_
        if t.kind == "ptr":
            return self.deref().member_(name)
        if t.kind not in ("struct", "union"):
            raise TypeError(f"'{t}' has no members (asked for .{name})")
        m = t.member(name)
        if m is None:
            names = ", ".join(x.name for x in t.members if x.name)
            raise AttributeError(f"'{t}' has no member '{name}' (members: {names})")
        if m.bit_size:
            unit = int.from_bytes(self.prog_.read(self.address_ + m.offset, m.type.size),
                                  "little")
            return Object(self.prog_, m.type, None,
                          (unit >> m.bit_offset) & ((1 << m.bit_size) - 1))
        return Object(self.prog_, m.type, self.address_ + m.offset)

    def __getattr__(self, name: str) -> "Object":
        if name.startswith("__") or name.endswith("_"):
            raise AttributeError(name)
        return self.member_(name)

    def __dir__(self):
        t = self.type_.target if self.type_.kind == "ptr" else self.type_
        extra = [m.name for m in t.members if m.name] if t is not None else []
        return sorted(set(super().__dir__()) | set(extra))

    def __getitem__(self, key) -> "Object":
        if isinstance(key, str):
            return self.member_(key)
        i = int(key)
        t = self.type_
        if t.kind == "array":
            if t.count is not None and not 0 <= i < t.count:
                raise IndexError(f"index {i} out of range for '{t}'")
            return Object(self.prog_, t.target, self.address_ + i * t.target.size)
        if t.kind == "ptr":
            return Object(self.prog_, t.target, self.value_() + i * max(t.target.size, 1))
        raise TypeError(f"'{t}' is not an array or a pointer")

    def __len__(self) -> int:
        if self.type_.kind != "array" or self.type_.count is None:
            raise TypeError(f"'{self.type_}' has no length")
        return self.type_.count

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def deref(self) -> "Object":
        """What a pointer points to (*p)."""
        if self.type_.kind != "ptr":
            raise TypeError(f"cannot dereference '{self.type_}'")
        addr = self.value_()
        if addr == 0:
            raise FaultError_(f"NULL pointer dereference of '{self.type_}'")
        return Object(self.prog_, self.type_.target, addr)

    def address_of_(self) -> "Object":
        from .ctype import pointer_to
        if self.address_ is None:
            raise ValueError("a computed value has no address")
        return Object(self.prog_, pointer_to(self.type_), None, self.address_)

    # --- values -----------------------------------------------------------
    def value_(self):
        """int for integers, enums, bools and pointers; a dict for a
        struct, a list for an array."""
        if self._value is not None:
            return self._value
        t = self.type_
        if t.kind in ("int", "enum", "bool", "ptr"):
            raw = self.prog_.read(self.address_, t.size)
            v = int.from_bytes(raw, "little", signed=t.signed and t.kind != "ptr")
            return bool(v) if t.kind == "bool" else v
        if t.kind in ("struct", "union"):
            return {m.name: self.member_(m.name).value_() for m in t.members if m.name}
        if t.kind == "array":
            return [x.value_() for x in self]
        raise TypeError(f"'{t}' has no value")

    def enumerator_(self) -> str | None:
        """An enum's enumerator name (None when the value has none)."""
        v = self.value_()
        for k, x in self.type_.enumerators.items():
            if x == v:
                return k
        return None

    def string_(self) -> str:
        """A char array (up to its NUL) or the NUL-terminated text a char
        pointer points at."""
        t = self.type_
        if t.kind == "array" and t.count is not None:
            raw = self.prog_.read(self.address_, t.count * t.target.size)
        elif t.kind == "ptr":
            raw = self.prog_.read_string(self.value_(), _MAX_STRING)
        else:
            raise TypeError(f"'{t}' is not a string")
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def __int__(self) -> int:
        return int(self.value_())

    __index__ = __int__

    def __bool__(self) -> bool:
        return bool(self.value_())

    def __eq__(self, other) -> bool:
        if isinstance(other, Object):
            other = other.value_()
        if isinstance(other, str) and self.type_.kind == "enum":
            return self.enumerator_() == other
        return self.value_() == other

    def __hash__(self) -> int:
        return hash((str(self.type_), self.address_, self._value))

    def __repr__(self) -> str:
        return f"({self.type_}){self._format(1)}"

    def _format(self, depth: int) -> str:
        t = self.type_
        try:
            if t.kind == "enum":
                return self.enumerator_() or str(self.value_())
            if t.kind == "ptr":
                return hex(self.value_())
            if t.is_string() and t.kind == "array":
                return repr(self.string_()).replace("'", '"', 2) if '"' not in self.string_() \
                    else repr(self.string_())
            if t.kind in ("int", "bool"):
                return str(self.value_()).lower() if t.kind == "bool" else str(self.value_())
            if t.kind in ("struct", "union"):
                if depth <= 0:
                    return "{...}"
                body = ", ".join(f".{m.name} = {self.member_(m.name)._format(depth - 1)}"
                                 for m in t.members if m.name)
                return "{ " + body + " }"
            if t.kind == "array":
                if depth <= 0 or t.count is None:
                    return "{...}"
                items = [x._format(depth - 1) for x in list(self)[:8]]
                return "{ " + ", ".join(items) + (", ..." if t.count > 8 else "") + " }"
        except UnikError as e:
            return f"<unreadable: {e.msg if hasattr(e, 'msg') else e}>"
        return f"<{t.kind} at {self.address_:#x}>" if self.address_ is not None else "?"


class FaultError_(UnikError):
    """A dereference the program cannot follow (NULL)."""


class Program:
    """One kernel: its TypeDB and a memory reader (a core or a live
    instance).  `core` is the Core when opened on one (then `registers`
    holds the CPU's registers at the dump), else None."""

    def __init__(self, db, read: Callable[[int, int], bytes], *, core=None,
                 name: str = "", close: Callable[[], None] | None = None) -> None:
        self.db, self._read, self.core, self.name = db, read, core, name
        self._close = close

    # --- opening ----------------------------------------------------------
    @classmethod
    def from_core(cls, core: str | os.PathLike, kernel_elf: str | os.PathLike | None = None
                  ) -> "Program":
        """A Program over an ELF core.  kernel_elf: the kernel the core's
        instance ran (checked by build-id); None: look for it among the
        instances' kernels and build/*/kernel.elf."""
        from .core import Core
        from .dwarf import TypeDB
        c = Core.open(core)
        elf = Path(kernel_elf) if kernel_elf else find_kernel(c)
        c.check_kernel(elf)
        return cls(TypeDB.from_elf(elf), c.read, core=c, name=str(core), close=c.close)

    @classmethod
    def live(cls, name: str | None = None, *, timeout: float | None = None) -> "Program":
        """A Program over a running instance, reading memory with MEMREAD."""
        from .client import Channel, DEFAULT_TIMEOUT
        from .dwarf import TypeDB
        from .instance import find
        inst = find(name)
        ch = Channel.for_instance(inst, timeout=timeout or DEFAULT_TIMEOUT)
        return cls(TypeDB.from_elf(inst.kernel), ch.memread, name=inst.name, close=ch.close)

    def close(self) -> None:
        if self._close:
            self._close()
            self._close = None

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "core" if self.core is not None else "live"
        return f"Program({kind} {self.name!r}, kernel {self.db.path})"

    # --- memory -----------------------------------------------------------
    @property
    def registers(self) -> dict[str, int] | None:
        """The CPU registers at the dump (cores only)."""
        return dict(self.core.registers) if self.core is not None else None

    def read(self, addr: int, n: int) -> bytes:
        data = self._read(int(addr), int(n))
        if len(data) != n:
            raise UnikError(f"cannot read {n} bytes at {int(addr):#x} (got {len(data)})",
                            "the address is outside guest RAM")
        return data

    def read_u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def read_string(self, addr: int, limit: int = _MAX_STRING) -> bytes:
        """Bytes at addr up to a NUL (at most limit)."""
        out = bytearray()
        while len(out) < limit:
            chunk = self.read(addr + len(out), min(64, limit - len(out)))
            i = chunk.find(b"\0")
            if i >= 0:
                return bytes(out + chunk[:i])
            out += chunk
        return bytes(out)

    # --- symbols and types ------------------------------------------------
    def __getitem__(self, name: str) -> Object:
        """A global or static variable by name (a function: its code)."""
        g = self.db.global_var(name)
        if g is not None:
            return Object(self, g[1], g[0])
        addr = self.db.address(name)
        if addr is not None:
            from .ctype import base_type
            return Object(self, base_type("void"), addr)
        import difflib
        near = difflib.get_close_matches(name, self.db.global_names(), 3)
        raise KeyError(f"no variable {name!r} in {self.db.path}" +
                       (f" (did you mean {', '.join(near)}?)" if near else ""))

    def type(self, spelling: str) -> CType:
        return self.db.parse_type(spelling)

    def object(self, spelling: str, address: int) -> Object:
        """The object of type `spelling` at address (a cast)."""
        return Object(self, self.type(spelling), int(address))

    def symbol(self, addr: int) -> "Symbol | None":
        addr = int(addr)
        s = self.db.symbol(addr)
        return Symbol(s[0], s[1], addr) if s else None

    def source_line(self, addr: int) -> tuple[str, int] | None:
        return self.db.source_line(int(addr))

    def disassemble(self, addr, n: int = 10) -> list["Insn"]:
        """n instructions from addr (a number or a symbol name)."""
        from .helpers.disasm import disassemble
        if isinstance(addr, str):
            a = self.db.address(addr)
            if a is None:
                raise KeyError(f"no symbol {addr!r} in {self.db.path}")
            addr = a
        return disassemble(self, int(addr), n)

    # --- the kernel's subsystems ------------------------------------------
    def threads(self) -> list:
        from .helpers.threads import threads
        return threads(self)

    def current_thread(self):
        from .helpers.threads import current_thread
        return current_thread(self)

    def log(self) -> str:
        from .helpers.log import log_text
        return log_text(self)

    def heap(self) -> dict:
        from .helpers.heap import heap_stats
        return heap_stats(self)


class Symbol:
    """name+offset of an address."""
    __slots__ = ("name", "offset", "address")

    def __init__(self, name: str, offset: int, address: int) -> None:
        self.name, self.offset, self.address = name, offset, address

    def __str__(self) -> str:
        return f"{self.name}+{self.offset:#x}" if self.offset else self.name

    def __repr__(self) -> str:
        return f"Symbol({self}, {self.address:#x})"


class Insn:
    """One disassembled instruction."""
    __slots__ = ("address", "size", "mnemonic", "op_str", "symbol")

    def __init__(self, address, size, mnemonic, op_str, symbol) -> None:
        self.address, self.size, self.mnemonic, self.op_str, self.symbol = \
            address, size, mnemonic, op_str, symbol

    def __str__(self) -> str:
        where = f" <{self.symbol}>" if self.symbol else ""
        return f"{self.address:#x}{where}: {self.mnemonic} {self.op_str}".rstrip()

    __repr__ = __str__


def find_kernel(core) -> Path:
    """The kernel ELF a core was taken from: the instances' copies and
    build/*/kernel.elf whose build-id the core's memory holds."""
    from .core import CoreError
    from .instance import list_instances
    cands = [Path(i.kernel) for i in list_instances() if i.kernel]
    root = Path(__file__).resolve().parent.parent / "build"
    cands += sorted(root.glob("*/kernel.elf")) if root.is_dir() else []
    for k in cands:
        if not k.is_file():
            continue
        try:
            core.check_kernel(k)
            return k
        except UnikError:
            continue
    raise CoreError(f"no known kernel matches the core {core.path}",
                    "give the kernel it ran with --kernel ELF")
