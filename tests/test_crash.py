"""Crashes end to end (QEMU): each crash app panics, its mux takes a core
automatically into the state directory (no `unik dump`), `unik ls` shows
the instance panicked with the core's path and does not restart it, and
`unik core NAME --json` names the right reason, faulting function and
thread from the kernel's crash record.  Also: a damaged record falls back
to the log's report, the guard page below a live thread's stack is
refused to MEMREAD, and the record's decoder and the serial watcher on
their own."""
from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path

import pytest

from crashcores import auto_core
from instances import booted, ls, unik, wait_until
from introspect import autocore
from introspect import protocol as P
from introspect.helpers.crash import BadRecord, decode, headline
from introspect.helpers.report import from_record, reason

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from auto_core(tmp_path_factory, "crash-stack", "cs")


@pytest.fixture(scope="module")
def assertion(tmp_path_factory):
    yield from auto_core(tmp_path_factory, "crash-assert", "ca")


@pytest.fixture(scope="module")
def heap(tmp_path_factory):
    yield from auto_core(tmp_path_factory, "crash-heap", "ch")


def core_json(inst, *argv) -> dict:
    return json.loads(unik(inst.env, "core", *argv, "--json").stdout)


def _line_of(path: Path, text: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if text in ln)


def test_automatic_core_in_ls(stack):
    inst, row = stack
    assert row["state"] == "panicked" and row["qemu_pid"] == inst.qemu_pid   # not restarted
    core = Path(row["core"])
    assert core.parent == inst.dir and core.stat().st_size >= 32 << 20
    # the kernel's CRASH frame normally comes first; a loaded host may read
    # the serial console's whole report first, and then waits for it a while
    wait_until(lambda: "CRASH frame from the kernel" in (inst.dir / "muxd.log").read_text(),
               timeout=10, what="the mux to log the CRASH frame")
    assert row["crash"]["trigger"] in ("frame", "serial")
    if row["crash"]["trigger"] == "frame":
        assert row["crash"]["kind"] == "stack_overflow"
    assert row["crash"]["reason"].startswith("stack overflow in thread 2 (app)")
    out = unik(inst.env, "ls").stdout
    assert f"cs: core {core} (stack overflow in thread 2 (app)" in out
    time.sleep(1)
    again = next(r for r in ls(inst.env) if r["name"] == "cs")
    assert again["crash"] == row["crash"]               # taken once


def test_crash_stack(stack):
    inst, row = stack
    rep = core_json(inst, "cs")                         # the instance's automatic core
    assert rep["panic_from"] == "crash record" and rep["crash"]["kind"] == "stack_overflow"
    assert rep["reason"].startswith("stack overflow in thread 2 (app): #PF page fault "
                                    "(vector 14)")
    rec = rep["crash"]
    assert rec["stack_lo"] - 4096 <= rec["cr2"] < rec["stack_lo"] and rec["addr"] == \
        rec["stack_lo"] - 4096
    assert rep["function"] == "crash_stack_recurse" and rep["thread"]["name"] == "app"
    assert rep["backtrace"][0]["function"] == "crash_stack_recurse"
    assert rep["panic"]["detail"].startswith("stack overflow in thread 2 (app): guard page at")
    assert "stack overflow in thread 2 (app)" in (inst.dir / "serial.log").read_text()
    out = unik(inst.env, "core", "cs").stdout
    assert re.search(r"#2 +\.\.\. the same frame \d+ more times", out), out


def test_crash_assert(assertion):
    inst, row = assertion
    rep = core_json(inst, row["core"], "--kernel", inst.kernel)
    src = ROOT / "kernel/apps/crash-assert/crash_assert.c"
    line = _line_of(src, "KASSERT(items > 0)")
    rec = rep["crash"]
    assert rec["kind"] == "assert" and rec["file"] == "apps/crash-assert/crash_assert.c"
    assert rec["line"] == line and rec["vector"] is None
    assert rep["reason"] == ("assertion failed: items > 0 in crash_assert_check at "
                             f"apps/crash-assert/crash_assert.c:{line} in thread 2 \"app\"")
    assert rep["function"] == "crash_assert_check" and rep["thread"]["name"] == "app"
    marked = next(i for i in rep["fault"]["instructions"] if i["faulting"])
    assert marked["mnemonic"] == "call" and "panic_assert" in marked["op_str"]
    assert marked["symbol"].startswith("crash_assert_check")
    assert [f["function"] for f in rep["backtrace"][:2]] == ["crash_assert_check", "app_main"]


def test_crash_heap(heap):
    inst, row = heap
    rep = core_json(inst, "ch")
    block = int(re.search(r"crash-heap: block (0x[0-9a-f]+)",
                          (inst.dir / "serial.log").read_text())[1], 16)
    rec = rep["crash"]
    assert rec["kind"] == "heap" and rec["addr"] == block
    assert rep["reason"].startswith(f"heap corruption: kfree: double free of {block:#018x} "
                                    "(64-byte class, allocated by app_main+0x")
    assert "), freed before by crash_heap_release+0x" in rep["reason"]
    assert rep["thread"]["name"] == "app" and rep["function"] == "kfree"
    fns = [f["function"] for f in rep["backtrace"]]
    assert fns[:3] == ["kfree", "crash_heap_free_twice", "app_main"], fns
    b = rep["heap_block"]
    assert b["address"] == block and b["size"] == 64 and b["free"]
    assert b["allocated_by"].startswith("app_main+0x")
    assert f"heap block {block:#x} (64-byte class, allocated by app_main+0x" in \
        unik(inst.env, "core", "ch").stdout


def _record_offset(core: Path, kernel: str) -> int:
    """File offset of crash_record in a core (identity-mapped kernel)."""
    from elftools.elf.elffile import ELFFile
    from introspect.core import Core
    from introspect.symbols import SymbolTable
    with open(kernel, "rb") as f:
        addr = SymbolTable(ELFFile(f)).address("crash_record")
    c = Core.open(core)
    seg = next(s for s in c.segments if s.paddr <= addr < s.paddr + s.filesz)
    return seg.offset + addr - seg.paddr


def test_damaged_record_falls_back_to_the_log(heap, tmp_path):
    inst, row = heap
    bad = tmp_path / "damaged.core"
    data = bytearray(Path(row["core"]).read_bytes())
    off = _record_offset(Path(row["core"]), inst.kernel)
    assert struct.unpack_from("<I", data, off)[0] == P.CRASH_MAGIC
    data[off:off + 4] = b"JUNK"
    bad.write_bytes(bytes(data))
    rep = core_json(inst, bad, "--kernel", inst.kernel)
    assert rep["panic_from"] == "log" and rep["crash"] is None
    assert "crash record is damaged" in rep["crash_note"]
    assert rep["reason"].startswith("panic: kfree: double free of")
    assert rep["thread"]["name"] == "app"


def test_no_core_for_a_running_instance(tmp_path):
    with booted("demo", state=tmp_path, name="ok") as inst:
        row = next(r for r in ls(inst.env) if r["name"] == "ok")
        assert row["state"] == "running" and row["core"] is None
        r = unik(inst.env, "core", "ok", check=False)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert r.stderr.startswith("unik: error: instance ok has no automatic core")
        # the guard page below a thread's stack is refused, the stack is read
        stack = int(unik(inst.env, "py", "ok", "-c",
                         "print(int(prog['sched_threads'][2].stack))").stdout)
        bad = unik(inst.env, "x", "ok", hex(stack - 4096), "16", check=False)
        assert bad.returncode != 0 and "not readable" in bad.stderr
        assert unik(inst.env, "x", "ok", hex(stack), "16").returncode == 0


# --- pure: the record's decoder, the reason lines, the serial watcher ------

def _record(**kw) -> bytes:
    base = dict(magic=P.CRASH_MAGIC, state=P.CrashState.COMPLETE, kind=P.CrashKind.TRAP,
                vector=14, err=2, cr2=0x10, rip=0x1234, tid=3, thread="worker",
                reason="page fault", nframes=2,
                frames=struct.pack("<2Q", 0x1234, 0x5678),
                text="PANIC: #PF page fault (vector 14) err=0x2 cr2=0x10\n"
                     "backtrace:\n  #0 0x0000000000001234 f+0x4\n"
                     "  #1 0x0000000000005678 g+0x8\nkernel halted (uptime 12 ms)\n",
                uptime_ns=12_000_000)
    base.update(kw)
    base["text_len"] = len(base["text"])
    return P.CRASH_RECORD.pack(**base)


def test_decode_record():
    rec = decode(_record())
    assert rec["kind"] == "trap" and rec["complete"] and rec["vector"] == 14
    assert rec["thread"] == {"tid": 3, "name": "worker"} and rec["frames"] == [0x1234, 0x5678]
    assert rec["registers"]["rip"] == 0x1234 and rec["registers"]["cr2"] == 0x10
    assert headline(rec) == "#PF page fault (vector 14) err=0x2 cr2=0x10"
    p = from_record(rec)
    assert p["trap"] and p["exception"] == "#PF" and p["uptime_ms"] == 12
    assert [f["symbol"] for f in p["backtrace"]] == ["f+0x4", "g+0x8"]
    assert reason(p) == '#PF page fault (vector 14) err=0x2 cr2=0x10 in thread 3 "worker"'


def test_decode_other_kinds():
    a = decode(_record(kind=P.CrashKind.ASSERT, vector=0xFFFFFFFF, file="apps/x.c", line=7,
                       reason="assertion failed: n in f at apps/x.c:7", text=""))
    assert a["vector"] is None and (a["file"], a["line"]) == ("apps/x.c", 7)
    assert headline(a) == "assertion failed: n in f at apps/x.c:7"
    w = decode(_record(kind=P.CrashKind.WATCHDOG, vector=0xFFFFFFFF, reason="stall"))
    assert headline(w) == "watchdog: stall"
    assert decode(bytes(P.CRASH_RECORD.size)) is None          # never panicked


@pytest.mark.parametrize("raw, want", [
    (_record(magic=0xDEAD), "damaged"), (_record(nframes=99), "damaged"),
    (_record(state=7), "damaged"), (b"\0" * 10, "crash record of 10 bytes")])
def test_decode_refuses_damage(raw, want):
    with pytest.raises(BadRecord, match=want):
        decode(raw)


class _Inst:
    def __init__(self, d: Path) -> None:
        self.dir = d


def test_serial_watcher_waits_for_the_whole_report(tmp_path, monkeypatch):
    serial = tmp_path / "serial.log"
    serial.write_text("[ 0.1] unik: booting\n[ 1.0] PANIC: #DE divide error (vector 0) "
                      "err=0x0 cr2=0x0000000000000000\n")
    w = autocore.Watcher(_Inst(tmp_path))
    w._poll_serial()
    assert w.trigger is None and w.seen is not None      # the report is not whole yet
    with open(serial, "a") as f:
        f.write('[ 1.0] thread 2 "app"\n[ 1.1] kernel halted (uptime 1100 ms)\n')
    w._poll_serial()
    assert w.trigger is None and w.ended is not None     # the CRASH frame may still come
    w.ended -= autocore.FRAME_GRACE + 0.1
    w._poll_serial()
    assert w.trigger == ("serial", '#DE divide error (vector 0) err=0x0 cr2=0x0 in thread 2 '
                         '"app"', None)


def test_serial_watcher_gives_up_waiting(tmp_path, monkeypatch):
    (tmp_path / "serial.log").write_text("[ 1.0] PANIC: boom\n")
    w = autocore.Watcher(_Inst(tmp_path))
    w._poll_serial()
    assert w.trigger is None
    w.seen -= autocore.REPORT_WAIT + autocore.FRAME_GRACE + 0.1
    w._poll_serial()
    assert w.trigger == ("serial", "panic: boom", None)


def test_watcher_done_after_core(tmp_path):
    (tmp_path / autocore.INFO_FILE).write_text(json.dumps({"core": "x"}))
    w = autocore.Watcher(_Inst(tmp_path))
    w.frame(_record())
    assert w.done and w.trigger is None                  # a restarted mux takes no second core


def test_render_ls_names_the_core():
    from console.render import render_ls
    rows = [{"name": "a", "app": "crash-null", "state": "panicked", "qemu_pid": 7,
             "mem": "32M", "created": 0, "build_id": "ab" * 20,
             "core": "/s/a/crash.core", "crash": {"reason": "#PF page fault"}},
            {"name": "b", "app": "demo", "state": "running", "qemu_pid": 8, "mem": "32M",
             "created": 0, "build_id": "", "core": None, "crash": None}]
    out = render_ls(rows, now=5).splitlines()
    assert out[-1] == "a: core /s/a/crash.core (#PF page fault)" and len(out) == 4
