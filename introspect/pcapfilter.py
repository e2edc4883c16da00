"""tcpdump filter expressions compiled to classic BPF by libpcap itself.

`compile_filter(expr, snaplen)` calls libpcap's `pcap_compile` (through
ctypes, on a `pcap_open_dead(DLT_EN10MB, snaplen)` handle, optimised, as
tcpdump does) and returns the program as a list of `(code, jt, jf, k)`;
a bad expression raises `FilterError` carrying libpcap's own message.
`encode(prog)` packs it as the kernel's `struct cbpf_insn` array.
`offline_filter(prog, frame, wirelen)` runs libpcap's interpreter on one
frame (tests compare the kernel's cbpf.c with it).

libpcap is the Debian package libpcap0.8 (libpcap.so.0.8), which the
top-level Makefile installs.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import struct

DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
INSN = struct.Struct("<HBBI")          # struct bpf_insn / kernel/net/cbpf.h's cbpf_insn
LIBNAMES = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")


class FilterError(Exception):
    """A filter expression libpcap refused; str() is libpcap's message."""


class LibpcapMissing(FilterError):
    pass


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint), ("len", ctypes.c_uint)]


_lib = None


def libpcap() -> ctypes.CDLL:
    """The loaded libpcap, prototypes declared (once)."""
    global _lib
    if _lib is not None:
        return _lib
    for name in LIBNAMES + tuple(filter(None, [ctypes.util.find_library("pcap")])):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise LibpcapMissing("libpcap is not installed\n"
                             "hint: apt-get install libpcap0.8 (or `make deps`)")
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_offline_filter.restype = ctypes.c_int
    lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_Program), ctypes.POINTER(_PktHdr),
                                        ctypes.c_char_p]
    lib.bpf_filter.restype = ctypes.c_uint
    lib.bpf_filter.argtypes = [ctypes.POINTER(_Insn), ctypes.c_char_p, ctypes.c_uint,
                               ctypes.c_uint]
    _lib = lib
    return lib


def compile_filter(expr: str, snaplen: int = 262144) -> list[tuple[int, int, int, int]]:
    """libpcap's program for `expr` on Ethernet (optimised, like tcpdump).
    An empty expression is the accept-all program libpcap makes for it."""
    lib = libpcap()
    h = lib.pcap_open_dead(DLT_EN10MB, snaplen)
    if not h:
        raise FilterError("pcap_open_dead failed")
    prog = _Program()
    try:
        if lib.pcap_compile(h, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN) != 0:
            raise FilterError(lib.pcap_geterr(h).decode(errors="replace").strip())
        out = [(prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                prog.bf_insns[i].k) for i in range(prog.bf_len)]
        lib.pcap_freecode(ctypes.byref(prog))
        return out
    finally:
        lib.pcap_close(h)


def encode(prog) -> bytes:
    """The program as the kernel's cbpf_insn array (8 bytes each)."""
    return b"".join(INSN.pack(*i) for i in prog)


def decode(blob: bytes) -> list[tuple[int, int, int, int]]:
    return [INSN.unpack_from(blob, o) for o in range(0, len(blob) - len(blob) % 8, 8)]


def _ctypes_prog(prog) -> tuple[_Program, ctypes.Array]:
    arr = (_Insn * len(prog))(*[_Insn(*i) for i in prog])
    return _Program(len(prog), ctypes.cast(arr, ctypes.POINTER(_Insn))), arr


def bpf_filter(prog, frame: bytes, wirelen: int | None = None) -> int:
    """libpcap's bpf_filter verdict for one frame (0: rejected)."""
    p, keep = _ctypes_prog(prog)
    return libpcap().bpf_filter(p.bf_insns, frame, len(frame) if wirelen is None else wirelen,
                                len(frame))


def offline_filter(prog, frame: bytes, wirelen: int | None = None) -> bool:
    """libpcap's pcap_offline_filter on one frame: does it match?"""
    p, keep = _ctypes_prog(prog)
    hdr = _PktHdr(_Timeval(0, 0), len(frame), len(frame) if wirelen is None else wirelen)
    return libpcap().pcap_offline_filter(ctypes.byref(p), ctypes.byref(hdr), frame) != 0


def describe(prog) -> str:
    """One line per instruction (code jt jf k), as `tcpdump -ddd` lists them."""
    return "\n".join(f"{{ 0x{c:x}, {jt}, {jf}, 0x{k:08x} }}," for c, jt, jf, k in prog)
