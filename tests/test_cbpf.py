"""The kernel's classic BPF (kernel/net/cbpf.c), built for the host, must
accept every program libpcap compiles and give libpcap's own verdict on
every frame; it must refuse malformed programs with a reason; and a
sanitised fuzzer (tests/fuzz_cbpf.c) runs random and mutated programs
through verify-then-run, comparing each verdict with libpcap's
bpf_filter."""
from __future__ import annotations

import ctypes
import os
import struct
import subprocess
from pathlib import Path

import pytest

import pktcorpus
from cpure import build_fuzzer, build_shared
from introspect import pcapfilter

ROOT = Path(__file__).resolve().parent.parent
FUZZ_PROGRAMS = int(os.environ.get("UNIK_CBPF_FUZZ", "40000"))


class VErr(ctypes.Structure):
    _fields_ = [("pc", ctypes.c_int32), ("msg", ctypes.c_char_p)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_shared(tmp_path_factory.mktemp("cbpf_c"), ["kernel/net/cbpf.c"])
    L = ctypes.CDLL(str(so))
    L.cbpf_verify.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_void_p,
                              ctypes.POINTER(VErr)]
    L.cbpf_verify.restype = ctypes.c_bool
    L.cbpf_run.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint32]
    L.cbpf_run.restype = ctypes.c_uint32
    return L


def verify(L, prog):
    blob = pcapfilter.encode(prog)
    masks = (ctypes.c_uint16 * max(len(prog), 1))()
    e = VErr()
    ok = L.cbpf_verify(blob, len(prog), masks, ctypes.byref(e))
    return ok, e.pc, (e.msg or b"").decode()


def run(L, prog, frame, wirelen=None):
    return L.cbpf_run(pcapfilter.encode(prog), frame,
                      len(frame) if wirelen is None else wirelen, len(frame))


@pytest.mark.parametrize("expr", pktcorpus.EXPRESSIONS)
def test_libpcap_programs_agree(lib, expr):
    """Every expression: libpcap's program verifies, and on every frame of
    the corpus (whole, cut short, and with a longer wire length) the
    kernel's verdict is libpcap's bpf_filter's, and a match is exactly what
    pcap_offline_filter says."""
    prog = pcapfilter.compile_filter(expr, 262144)
    ok, pc, msg = verify(lib, prog)
    assert ok, (expr, pc, msg)
    matched = 0
    for name, frame in pktcorpus.frames():
        for cut in (len(frame), max(len(frame) - 7, 0), 14, 0):
            f = frame[:cut]
            for wire in (len(f), len(frame) + 100):
                mine = run(lib, prog, f, wire)
                assert mine == pcapfilter.bpf_filter(prog, f, wire), (expr, name, cut, wire)
                assert (mine != 0) == pcapfilter.offline_filter(prog, f, wire)
                matched += mine != 0
    if expr:
        assert 0 < matched < 24 * 8          # each filter selects something, not all


def test_known_selections(lib):
    """Spot checks that the filters select the frames a reader expects."""
    fr = dict(pktcorpus.frames())

    def sel(expr):
        p = pcapfilter.compile_filter(expr)
        return {n for n, f in fr.items() if run(lib, p, f)}

    assert sel("tcp port 80") == {"syn", "synack", "ack", "get", "fin", "ipv6tcp",
                                   "ipopts", "trunctcp"}
    assert sel("icmp") == {"ping", "pong"}
    assert "arpreq" in sel("not tcp") and "syn" not in sel("not tcp")
    assert sel("arp") == {"arpreq", "arprep", "arppad"}


def test_snaplen_is_the_verdict(lib):
    prog = pcapfilter.compile_filter("", 96)
    assert run(lib, prog, b"\x00" * 60) == 96


BAD = [
    ([], -1, "program length out of range"),
    ([(0x06, 0, 0, 0)] * 4097, -1, "program length out of range"),
    ([(0xffff, 0, 0, 0), (0x06, 0, 0, 0)], 0, "unknown opcode"),
    ([(0x0e, 0, 0, 0)], 0, "unknown opcode"),                       # RET | X
    ([(0x28, 0, 0, 12)], 0, "the last instruction is not a return"),
    ([(0x15, 1, 0, 0), (0x06, 0, 0, 0)], 0, "jump out of the program"),
    ([(0x15, 0, 5, 0), (0x06, 0, 0, 0)], 0, "jump out of the program"),
    ([(0x05, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)], 0, "jump out of the program"),
    ([(0x05, 0, 0, 1), (0x06, 0, 0, 0)], 0, "jump out of the program"),
    ([(0x02, 0, 0, 16), (0x06, 0, 0, 0)], 0, "scratch memory slot out of range"),
    ([(0x61, 0, 0, 99), (0x06, 0, 0, 0)], 0, "scratch memory slot out of range"),
    ([(0x34, 0, 0, 0), (0x06, 0, 0, 0)], 0, "division by constant zero"),
    ([(0x94, 0, 0, 0), (0x06, 0, 0, 0)], 0, "division by constant zero"),
    ([(0x64, 0, 0, 32), (0x06, 0, 0, 0)], 0, "shift by 32 or more"),
    ([(0x60, 0, 0, 3), (0x16, 0, 0, 0)], 0, "scratch memory slot read before it is written"),
    ([(0x15, 0, 1, 0), (0x02, 0, 0, 1), (0x60, 0, 0, 1), (0x16, 0, 0, 0)], 2,
     "scratch memory slot read before it is written"),
]


@pytest.mark.parametrize("prog,pc,msg", BAD, ids=[b[2] + str(i) for i, b in enumerate(BAD)])
def test_verifier_refuses(lib, prog, pc, msg):
    assert verify(lib, prog) == (False, pc, msg)


def test_store_on_every_path_is_accepted(lib):
    prog = [(0x15, 0, 1, 0), (0x02, 0, 0, 1), (0x02, 0, 0, 1), (0x60, 0, 0, 1), (0x16, 0, 0, 0)]
    assert verify(lib, prog)[0]


def test_loads_outside_the_packet_reject(lib):
    """A load past the captured bytes rejects the packet; so does IND
    whose X + k wraps 32 bits, and a division by X = 0."""
    ld = [(0x20, 0, 0, 10), (0x06, 0, 0, 1)]
    assert run(lib, ld, b"\x00" * 14) == 1 and run(lib, ld, b"\x00" * 13) == 0
    wrap = [(0x01, 0, 0, 0xFFFFFFFF), (0x50, 0, 0, 2), (0x06, 0, 0, 1)]
    assert run(lib, wrap, b"\x00" * 64) == 0 == pcapfilter.bpf_filter(wrap, b"\x00" * 64)
    div = [(0x01, 0, 0, 0), (0x3c, 0, 0, 0), (0x06, 0, 0, 1)]
    assert run(lib, div, b"") == 0


def fuzz_binary(tmp_path):
    lp = next((Path(p) for p in ("/usr/lib/x86_64-linux-gnu/libpcap.so.0.8",
                                 "/usr/lib/libpcap.so.0.8") if Path(p).exists()), None)
    assert lp, "libpcap0.8 is not installed (make deps)"
    return build_fuzzer(tmp_path, ["tests/fuzz_cbpf.c", "kernel/net/cbpf.c", lp], "fuzz_cbpf")


def test_fuzz_verify_then_run(tmp_path):
    exe = fuzz_binary(tmp_path)
    seeds = tmp_path / "seeds.bin"
    with open(seeds, "wb") as f:
        for expr in pktcorpus.EXPRESSIONS:
            prog = pcapfilter.compile_filter(expr)
            f.write(struct.pack("<I", len(prog)) + pcapfilter.encode(prog))
    r = subprocess.run([str(exe), str(FUZZ_PROGRAMS), "7", str(seeds)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    m = dict(kv.split("=") for kv in r.stdout.split() if "=" in kv)
    assert int(m["programs"]) == FUZZ_PROGRAMS
    assert int(m["verified"]) > FUZZ_PROGRAMS // 20
    assert int(m["accepted"]) > 0 and int(m["mismatches"]) == 0
