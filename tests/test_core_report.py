"""`unik core`: the post-mortem summary of a core (QEMU for the cores).

crash-null and crash-div0 instances panic, are dumped with `unik dump`,
and `unik core --json` must name the exception, the faulting function and
the thread; a healthy demo core says no panic is recorded, lists the five
threads, and `--stacks` groups the two workers; bad files get the same
one-line errors as `unik py --core`.  parse_panic is also driven on text."""
from __future__ import annotations

import json
import re

import pytest

import crashcores
from crashcores import live_core, panicked_core
from instances import unik
from introspect.helpers.report import parse_panic, reason


null_core = crashcores.null_core         # crash-null, dumped (a module fixture)


@pytest.fixture(scope="module")
def div0_core(tmp_path_factory):
    yield from panicked_core(tmp_path_factory, "crash-div0", "cd")


@pytest.fixture(scope="module")
def demo_core(tmp_path_factory):
    yield from live_core(tmp_path_factory, "demo", "dm")


def core_json(inst, core, *extra) -> dict:
    return json.loads(unik(inst.env, "core", core, "--json", *extra).stdout)


def test_crash_null_report(null_core):
    inst, core = null_core
    rep = core_json(inst, core)                         # kernel found by build-id
    assert rep["panicked"] and rep["reason"].startswith("#PF page fault (vector 14)")
    p = rep["panic"]
    assert (p["exception"], p["vector"], p["cr2"]) == ("#PF", 14, 0)
    assert p["error_code"] & 2 and p["detail"].startswith("page fault: write")
    assert p["thread"]["name"] == "app" and rep["thread"]["name"] == "app"
    assert rep["registers_from"] == "crash record" and rep["panic_from"] == "crash record"
    assert rep["registers"]["rip"] == p["rip"] == rep["fault"]["rip"]
    marked = [i for i in rep["fault"]["instructions"] if i["faulting"]]
    assert len(marked) == 1 and marked[0]["address"] == p["rip"]
    assert marked[0]["symbol"].startswith("crash_null_deref")
    assert marked[0]["mnemonic"] == "mov" and "[rax]" in marked[0]["op_str"]
    before = [i for i in rep["fault"]["instructions"] if i["address"] < p["rip"]]
    assert before, "instructions before the faulting one"
    bt = rep["backtrace"]
    assert bt[0]["function"] == "crash_null_deref" and bt[0]["pc"] == p["rip"]
    assert bt[1]["function"] == "app_main"
    assert bt[0]["source"].endswith("apps/crash-null/crash_null.c:16")
    assert [t["name"] for t in rep["threads"]] == ["idle", "probe-chan", "app"]
    assert any("PANIC: #PF" in ln for ln in rep["log_tail"])
    assert rep["heap"]["bytes_total"] > 0 and rep["pages"]["total"] > rep["pages"]["free"]
    assert rep == core_json(inst, core, "--kernel", inst.kernel) | {"kernel": rep["kernel"]}


def test_crash_null_text_marks_the_faulting_instruction(null_core):
    inst, core = null_core
    out = unik(inst.env, "core", core, "--kernel", inst.kernel).stdout
    assert 'status: #PF page fault (vector 14) err=0x2 cr2=0x0 in thread 2 "app"' in out
    arrow = [ln for ln in out.splitlines() if ln.startswith("=> ")]
    assert len(arrow) == 1 and "<crash_null_deref+0x" in arrow[0]
    assert "registers (crash record):" in out and "rip=0x" in out
    assert "crash_null_deref+0x" in out.split("backtrace of thread 2")[1].splitlines()[1]
    assert "log (last 20 lines):" in out and "heap: " in out and "pages: " in out


def test_crash_div0_report(div0_core):
    inst, core = div0_core
    rep = core_json(inst, core)
    p = rep["panic"]
    assert rep["reason"].startswith("#DE divide error (vector 0)")
    assert (p["exception"], p["vector"]) == ("#DE", 0)
    assert rep["thread"]["name"] == "app"
    marked = next(i for i in rep["fault"]["instructions"] if i["faulting"])
    assert marked["symbol"].startswith("crash_div0_divide") and marked["mnemonic"] == "idiv"
    assert [f["function"] for f in rep["backtrace"][:2]] == ["crash_div0_divide", "app_main"]
    assert rep["backtrace"][0]["source"].endswith("apps/crash-div0/crash_div0.c:14")


def test_healthy_core_has_no_panic(demo_core):
    inst, core = demo_core
    rep = core_json(inst, core, "--kernel", inst.kernel)
    assert not rep["panicked"] and rep["panic"] is None
    assert rep["reason"] == "no panic recorded (the instance was running when the core " \
                            "was taken)"
    assert rep["registers_from"] == "core"
    names = [t["name"] for t in rep["threads"]]
    assert names == ["idle", "probe-chan", "app", "worker-1", "worker-2"]
    assert sum(t["current"] for t in rep["threads"]) == 1
    assert rep["thread"]["current"] and rep["fault"]["rip"] == rep["registers"]["rip"]
    for t in rep["threads"]:
        assert t["backtrace"] and t["error"] is None, t
        if t["state"] == "sleeping":
            assert t["wchan"]
    assert rep["stacks"] is None
    out = unik(inst.env, "core", core).stdout
    assert "status: no panic recorded" in out
    assert sum(ln.startswith("=> ") for ln in out.splitlines()) == 1


def _workers_napping(rep) -> bool:
    return all(t["state"] == "sleeping" and t["wchan"] == "nap"
               for t in rep["threads"] if t["name"] in ("worker-1", "worker-2"))


def test_stacks_groups_the_workers(demo_core, tmp_path):
    """::stacks groups the two workers when both sleep in the same place.
    They nap most of the time, but a dump can catch one awake (its own
    group, rightly): dump again until both are asleep."""
    inst, core = demo_core
    rep = core_json(inst, core, "--stacks")
    for i in range(20):
        if _workers_napping(rep):
            break
        core = tmp_path / f"again{i}.core"
        unik(inst.env, "dump", inst.name, "-o", core)
        rep = core_json(inst, core, "--stacks")
    assert _workers_napping(rep), rep["threads"]
    groups = rep["stacks"]
    assert sum(g["count"] for g in groups) == 5
    w = next(g for g in groups if "worker-1" in g["threads"])
    assert w["count"] == 2 and w["threads"] == ["worker-1", "worker-2"]
    assert w["states"] == ["sleeping on nap"]
    assert "demo_worker_main" in [f["function"] for f in w["backtrace"]]
    assert groups[0] is not None and groups[0]["count"] == 2
    out = unik(inst.env, "core", core, "--stacks").stdout
    assert "2 x worker-1, worker-2  [sleeping on nap]" in out


@pytest.mark.parametrize("what", ["empty", "text", "truncated", "missing", "kernel-elf"])
def test_bad_cores_give_py_s_errors(demo_core, tmp_path, what):
    inst, core = demo_core
    bad = tmp_path / "bad.core"
    if what == "empty":
        bad.write_bytes(b"")
    elif what == "text":
        bad.write_text("not a core\n")
    elif what == "truncated":
        bad.write_bytes(core.read_bytes()[:100_000])
    elif what == "kernel-elf":
        bad = inst.kernel
    r = unik(inst.env, "core", bad, check=False)
    py = unik(inst.env, "py", "--core", bad, "-c", "1", check=False)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr == py.stderr, (r.stderr, py.stderr)
    lines = r.stderr.splitlines()
    assert lines[0].startswith("unik: error: ") and lines[1].startswith("hint: ")
    assert "Traceback" not in r.stderr


def test_core_of_another_kernel(null_core, demo_core):
    inst, core = demo_core
    other, _ = null_core
    r = unik(inst.env, "core", core, "--kernel", other.kernel, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    # where the other build keeps its build-id note decides which error names it
    assert re.search("another kernel|is a core of kernel build .* not of", r.stderr), r.stderr


PANIC_CALL = """\
[    2.000100] app: about to give up
[    2.000200] PANIC: assertion failed: n > 0 (apps/x.c:12)
[    2.000300] thread 3 "worker"
[    2.000400] registers:
[    2.000500]   rax=0x0000000000000000 rbx=0x0000000000000011 rcx=0x0000000000000000
[    2.000600]   r15=0x0000000000000000 rip=0x0000000000111e69 rfl=0x0000000000000202
[    2.000700]    cs=0x0008 ss=0x0010 cr0=0x80010011 cr3=0x0011c000 cr4=0x00000020
[    2.000800] rip 0x0000000000111e69 app_main+0x29
[    2.000900] backtrace:
[    2.001000]   #0 0x0000000000111e69 app_main+0x29
[    2.001100]   #1 0x000000000010f7d8 sched_thread_start+0x9
[    2.001200] kernel halted (uptime 2001 ms)
"""


def test_parse_panic_call():
    p = parse_panic(PANIC_CALL)
    assert not p["trap"] and p["message"] == "assertion failed: n > 0 (apps/x.c:12)"
    assert p["thread"] == {"tid": 3, "name": "worker"}
    assert p["rip"] == 0x111e69 and p["rip_symbol"] == "app_main+0x29"
    assert p["registers"]["rbx"] == 0x11 and p["registers"]["cs"] == 8
    assert [f["symbol"] for f in p["backtrace"]] == ["app_main+0x29", "sched_thread_start+0x9"]
    assert p["uptime_ms"] == 2001
    assert reason(p) == 'panic: assertion failed: n > 0 (apps/x.c:12) in thread 3 "worker"'
    assert parse_panic("[ 0.1] unik: booting\n") is None
    assert reason(None).startswith("no panic recorded")
    # the last report wins; a recursive panic's line is not a report
    two = PANIC_CALL.replace("assertion failed", "first") + PANIC_CALL + \
        "[ 3.0] PANIC: recursive panic, halting\n"
    assert parse_panic(two)["message"].startswith("assertion failed")
