"""Packed little-endian struct layouts shared by the host and the kernel,
and the C text generated from them.

`introspect/protocol.py` (the wire) and `probes/isa.py` (the probe VM)
declare their layouts with `L(...)`; `introspect/wiregen.py` and
`probes/isagen.py` turn them into C headers with the helpers below, and
tests/test_drift.py checks the kernel's DWARF against `offsets()`.

Field types: u8 u16 u32 u64 i32 i64, char[N] (NUL-padded text), u8[N]
(bytes).  Pure apart from `write_header`.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i32": "i", "i64": "q"}
_CTYPE = {"u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t", "i32": "int32_t",
          "u64": "uint64_t", "i64": "int64_t"}


def _base(t: str) -> str:
    return t.split("[", 1)[0]


def _count(t: str) -> int:
    return int(t.split("[", 1)[1].rstrip("]"))


def _fmt(t: str) -> str:
    return f"{_count(t)}s" if "[" in t else _FMT[t]


@dataclass(frozen=True)
class Layout:
    name: str                      # C: struct <prefix>_<name>
    fields: tuple                  # ((name, type, comment), ...)
    doc: str = ""

    @property
    def fmt(self) -> str:
        return "<" + "".join(_fmt(t) for _, t, _ in self.fields)

    @property
    def struct(self) -> struct.Struct:
        return struct.Struct(self.fmt)

    @property
    def size(self) -> int:
        return self.struct.size

    def offsets(self) -> dict:
        off, out = 0, {}
        for fname, t, _ in self.fields:
            out[fname] = off
            off += struct.calcsize("<" + _fmt(t))
        return out

    def unpack(self, data: bytes, offset: int = 0) -> dict:
        vals = self.struct.unpack_from(data, offset)
        out = {}
        for (fname, t, _), v in zip(self.fields, vals):
            if t.startswith("char["):
                v = v.split(b"\0", 1)[0].decode("utf-8", "replace")
            out[fname] = v
        return out

    def pack(self, **kw) -> bytes:
        vals = []
        for fname, t, _ in self.fields:
            v = kw.get(fname, b"" if "[" in t else 0)
            if isinstance(v, str):
                v = v.encode()
            vals.append(v)
        return self.struct.pack(*vals)


def L(name, doc, *fields) -> Layout:
    return Layout(name, tuple(fields), doc)


# ------------------------------------------------------------------ C text
def c_field(fname: str, t: str, comment: str) -> str:
    """One member line of a generated C struct."""
    if "[" in t:
        base = _base(t)
        decl = f"{'char' if base == 'char' else _CTYPE[base]} {fname}[{_count(t)}]"
    else:
        decl = f"{_CTYPE[t]} {fname}"
    return f"    {decl + ';':<28} /* {comment} */"


def c_struct(prefix: str, lay: Layout) -> list[str]:
    """A packed C struct for lay, named <prefix>_<name>, with a size check."""
    return ([f"/* {lay.doc} */", f"struct __attribute__((packed)) {prefix}_{lay.name} {{"]
            + [c_field(*f) for f in lay.fields]
            + ["};", f"_Static_assert(sizeof(struct {prefix}_{lay.name}) == {lay.size}, "
                     f"\"{prefix}_{lay.name} size\");", ""])


def c_enum(prefix: str, tag: str, enum) -> list[str]:
    """A C enum `enum <prefix>_<tag>` with PREFIX_TAG_MEMBER values and a
    PREFIX_TAG_COUNT_ member."""
    up = f"{prefix.upper()}_{tag.upper()}"
    return ([f"enum {prefix}_{tag.lower()} {{"]
            + [f"    {up}_{m.name} = {int(m):#x}," for m in enum]
            + [f"    {up}_COUNT_ = {len(enum)},", "};", ""])


def write_header(render, argv=None) -> int:
    """The generators' main: print render() or write it to argv[0], leaving
    an unchanged file alone (keeps its mtime: no needless rebuilds)."""
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if not argv:
        sys.stdout.write(text)
        return 0
    if argv[0].startswith("-") or len(argv) > 1:
        sys.stderr.write("usage: python -m MODULE [OUTPUT.h]  (no OUTPUT: the header on stdout)\n")
        return 0 if argv[0] in ("-h", "--help") else 2
    try:
        with open(argv[0]) as f:
            if f.read() == text:
                return 0
    except OSError:
        pass
    with open(argv[0], "w") as f:
        f.write(text)
    return 0
