"""One source for the request table: protocol.REQUESTS generates the
kernel's WIRE_REQUESTS (frame_classify and the dispatch in chan/server.c)
and drives codec.classify; HELLO carries feature bits and the host names
the capability a kernel lacks.  Fake-kernel and host-built C tests."""
from __future__ import annotations

import ctypes
import re

import pytest

from cpure import build_shared
from introspect import codec, protocol as P, wiregen
from introspect.client import Channel, wait_ready
from introspect.errors import MissingFeature

ROW = re.compile(r"X\((\w+), (\w+), (\d+), (\d+), (\d+), (\d+), (0x[0-9a-f]+)\)")


def test_generated_table_rows_match_protocol():
    rows = ROW.findall(wiregen.render())
    assert len(rows) == len(P.REQUESTS)
    for (name, low, head, item, lo, hi, feat), (m, r) in zip(rows, P.REQUESTS.items()):
        assert (name, low) == (m.name, m.name.lower())
        assert (int(head), int(item), int(lo), int(hi), int(feat, 16)) == \
            (r.head, r.item, r.min_items, r.max_items, int(r.feature))


def test_every_request_fits_the_kernel_cap():
    for m, r in P.REQUESTS.items():
        assert r.max_size <= P.MAX_REQUEST, m.name


def _sizes(r):
    pts = {0, 1, r.head - 1, r.head, r.head + 1, r.max_size - 1, r.max_size,
           r.max_size + 1, P.MAX_REQUEST}
    if r.item:
        pts |= {r.head + r.item * k + d for k in (r.min_items, r.max_items)
                for d in (-1, 0, 1)}
    return sorted(n for n in pts if 0 <= n <= P.MAX_REQUEST)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = build_shared(tmp_path_factory.mktemp("table_c"),
                      ["kernel/chan/frame.c", "kernel/lib/crc32.c", "tests/frame_shim.c"])
    L = ctypes.CDLL(str(so))
    L.frame_classify.argtypes = [ctypes.c_uint16, ctypes.c_uint32]
    L.frame_classify.restype = ctypes.c_int
    return L


def test_c_and_python_classify_every_request_alike(lib):
    checked = 0
    for m, r in P.REQUESTS.items():
        for n in _sizes(r):
            want = codec.classify(codec.Frame(int(m), 1, bytes(n)))
            assert lib.frame_classify(int(m), n) == (-1 if want is None else int(want)), \
                (m.name, n)
            assert (want is None) == r.size_ok(n)
            checked += 1
    assert checked >= 4 * len(P.REQUESTS)
    for t in (P.MsgType.LOG_DATA, P.MsgType.ERROR, 0x3F, 0x4000):
        assert lib.frame_classify(int(t), 0) == P.Reject.UNKNOWN_TYPE


def test_variable_request_sizes():
    r = P.Request(P.LOG_REQ, "x", item=8, min_items=1, max_items=3)
    assert [n for n in range(0, 60) if r.size_ok(n)] == [24, 32, 40]
    assert r.max_size == 40


# ------------------------------------------------------------ features

def test_hello_reports_features(fake):
    inst, _ = fake()
    h = wait_ready(inst, 10)
    assert h["features"] == P.FEATURES_ALL
    assert h["feature_names"] == [f.name for f in P.Feature]


def test_missing_feature_is_named_not_a_version_error(fake):
    inst, _ = fake(extra=("--features", "0"))
    h = wait_ready(inst, 10)          # the mux accepts a kernel with fewer features
    assert h["features"] == 0
    with Channel.for_instance(inst) as ch:
        with pytest.raises(MissingFeature) as e:
            ch.request(P.MsgType.LOG_SUBSCRIBE, codec.log_subscribe_request(True))
        assert "lacks the LOG_STREAM capability (needed for LOG_SUBSCRIBE)" in e.value.msg
        assert "rebuild the kernel" in e.value.hint
        assert ch.threads()[1]        # everything else still works
        # the kernel never saw the refused request
        assert ch.chanstat()["rej_unknown_type"] == 0


def test_kernel_types_are_not_wire_types(demo_elf, root):
    """The wire stays in chan/: mm.h and thread.h do not include wire.h, and
    thread states are a real enum the post-mortem tools see in DWARF."""
    from elftools.elf.elffile import ELFFile
    for h in ("mm.h", "thread.h", "vcons.h"):
        assert '#include "wire.h"' not in (root / "kernel" / "include" / h).read_text(), h
    for src in (root / "kernel").rglob("*.c"):
        if src.parent.name not in ("chan",):
            assert "WIRE_" not in src.read_text(), src
    names = None
    with open(demo_elf, "rb") as f:
        for cu in ELFFile(f).get_dwarf_info().iter_CUs():
            for die in cu.iter_DIEs():
                n = die.attributes.get("DW_AT_name")
                if die.tag == "DW_TAG_enumeration_type" and n and n.value == b"thread_state":
                    names = {e.attributes["DW_AT_name"].value.decode():
                             e.attributes["DW_AT_const_value"].value
                             for e in die.iter_children()}
                    break
            if names:
                break
    assert names == {"THREAD_RUNNING": 0, "THREAD_RUNNABLE": 1, "THREAD_SLEEPING": 2,
                     "THREAD_DEAD": 3}
