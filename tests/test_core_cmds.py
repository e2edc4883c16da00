"""`unik ps|mem|log --core CORE`: the live tables from a core (QEMU).

A demo instance is dumped between two live readings; the core's tables
must agree with the live ones on what does not change (thread names,
tids, stack sizes, page and class geometry) and lie between them on what
only grows (uptime, CPU time, allocation counts, the log).  A crash-null
core shows its panic in `log --core`.  Bad cores and bad option mixes
are one-line errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import build_kernel
from instances import booted, env_for, unik, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(instance, core, live readings before the dump, live readings after)."""
    state = tmp_path_factory.mktemp("state")
    with booted("demo", state=state, name="cd") as inst:
        wait_until(lambda: "worker" in unik(inst.env, "log", "cd").stdout,
                   timeout=30, what="the demo's workers")

        def reading():
            return {c: json.loads(unik(inst.env, c, "cd", "--json").stdout)
                    for c in ("ps", "mem", "log")}
        before = reading()
        core = tmp_path_factory.mktemp("cores") / "cd.core"
        unik(inst.env, "dump", "cd", "-o", core)
        yield inst, core, before, reading()


def core_json(inst, core, cmd):
    return json.loads(unik(inst.env, cmd, "--core", core, "--json").stdout)


def test_ps_core_matches_live(demo):
    inst, core, before, after = demo
    ps = core_json(inst, core, "ps")
    assert ps["core"] == str(core) and ps["count"] == ps["total"] == len(ps["threads"])
    key = ("tid", "name", "stack_size", "flags", "priority", "start_ns")
    assert [tuple(t[k] for k in key) for t in ps["threads"]] == \
           [tuple(t[k] for k in key) for t in before["ps"]["threads"]]
    assert [t["name"] for t in ps["threads"]] == ["idle", "probe-chan", "app",
                                                 "worker-1", "worker-2"]
    # what only grows lies between the two live readings
    assert before["ps"]["uptime_ns"] <= ps["uptime_ns"] <= after["ps"]["uptime_ns"]
    for b, c, a in zip(before["ps"]["threads"], ps["threads"], after["ps"]["threads"]):
        for k in ("cpu_ns", "switches", "stack_hwm"):
            assert b[k] <= c[k] <= a[k], (k, b, c, a)
        assert 0 < c["stack_hwm"] < c["stack_size"]
        assert c["cpu_pct"] is not None and 0 <= c["cpu_pct"] <= 100.5
        assert c["kind"] == b["kind"] and c["state_name"] in ("running", "runnable",
                                                              "sleeping")
    assert sum(t["state_name"] == "running" for t in ps["threads"]) == 1


def test_ps_core_table(demo):
    inst, core, _, _ = demo
    out = unik(inst.env, "ps", "--core", core).stdout.splitlines()
    assert out[0].startswith(f"{core}: 5 threads, up ") and out[0].endswith("(at the dump)")
    assert out[1].split() == ["TID", "NAME", "STATE", "WCHAN", "%CPU", "TIME", "CSW",
                              "STACK", "HWM%", "KIND"]
    rows = [line.split() for line in out[2:]]
    want = [[str(t["tid"]), t["name"], t["state_name"], t["wchan"] or "-",
             f"{t['cpu_pct']:.1f}"] for t in core_json(inst, core, "ps")["threads"]]
    assert [r[:5] for r in rows] == want
    assert all(r[7] == "16K" for r in rows)


def test_mem_core_matches_live(demo):
    inst, core, before, after = demo
    mem = core_json(inst, core, "mem")
    b, a = before["mem"], after["mem"]
    for k in ("page_size", "nclasses", "mem_total", "pages_total", "pages_kernel"):
        assert mem[k] == b[k] == a[k], k
    assert [c["size"] for c in mem["classes"]] == [c["size"] for c in b["classes"]]
    for k in ("heap_allocs", "heap_frees"):
        assert b[k] <= mem[k] <= a[k], k
    for cb, cc, ca in zip(b["classes"], mem["classes"], a["classes"]):
        assert cb["allocs"] <= cc["allocs"] <= ca["allocs"]
        assert cc["allocs"] - cc["frees"] == cc["in_use"]
    assert mem["heap_allocs"] == sum(c["allocs"] for c in mem["classes"])
    assert mem["summary"]["bytes_total"] == mem["pages_total"] * mem["page_size"]
    text = unik(inst.env, "mem", "--core", core).stdout
    assert text.startswith("RAM 32M, 4K pages") and "large" in text


def test_log_core_is_a_prefix_of_live(demo):
    inst, core, before, after = demo
    log = core_json(inst, core, "log")
    assert log["oldest"] == 0, "the demo's log ring wrapped: the prefix check needs it not to"
    assert "unik: booting" in log["text"]
    assert log["text"].startswith(before["log"]["text"])
    assert after["log"]["text"].startswith(log["text"])
    assert before["log"]["head"] <= log["head"] == log["next"] <= after["log"]["head"]
    plain = unik(inst.env, "log", "--core", core).stdout
    assert plain == log["text"]
    off = log["head"] // 2
    assert unik(inst.env, "log", "--core", core, "--from", off).stdout == \
        log["text"].encode()[off:].decode("utf-8", "replace")


def test_snapshot_live_matches_channel(demo):
    """The one decoding reads a live instance too (over MEMREAD): it agrees
    with the kernel's own MEMSTAT and THREADS replies."""
    import os
    from introspect import snapshot
    from introspect.client import Channel
    from introspect.instance import find
    from introspect.program import Program
    inst, _, _, _ = demo
    old = os.environ.get("UNIK_STATE_DIR")
    os.environ["UNIK_STATE_DIR"] = inst.env["UNIK_STATE_DIR"]
    try:
        with Program.live("cd") as prog, Channel.for_instance(find("cd")) as ch:
            mh, mc = snapshot.memstat(prog)
            lh, lc = ch.memstat()
            th, tt = snapshot.threads(prog)
            _, lt = ch.threads()
    finally:
        os.environ.pop("UNIK_STATE_DIR") if old is None else \
            os.environ.__setitem__("UNIK_STATE_DIR", old)
    assert set(mh) == set(lh) and set(mc[0]) == set(lc[0])
    for k in ("page_size", "mem_total", "pages_total", "pages_kernel"):
        assert mh[k] == lh[k]
    assert [c["size"] for c in mc] == [c["size"] for c in lc]
    assert set(tt[0]) == set(lt[0])
    assert [(t["tid"], t["name"], t["stack_size"]) for t in tt] == \
           [(t["tid"], t["name"], t["stack_size"]) for t in lt]


@pytest.fixture(scope="module")
def crash_core(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    with booted("crash-null", state=state, name="cn") as inst:
        wait_until(lambda: inst.panic_report(), timeout=60, what="the crash-null panic")
        core = tmp_path_factory.mktemp("cores") / "cn.core"
        unik(inst.env, "dump", "cn", "-o", core)
        yield inst, core


def test_crash_core_log_and_ps(crash_core):
    inst, core = crash_core
    text = unik(inst.env, "log", "--core", core).stdout
    assert "unik: booting" in text
    assert re.search(r"PANIC: .*page fault.*cr2=0x0+\b", text), text[-2000:]
    ps = core_json(inst, core, "ps")
    assert ps["threads"] and ps["uptime_ns"] > 0
    mem = core_json(inst, core, "mem")
    assert mem["pages_total"] > 0 and len(mem["classes"]) == mem["nclasses"]


def test_bad_cores_one_line(crash_core, tmp_path):
    """The same one-line errors as `unik py --core`, for each command."""
    _, core = crash_core
    env = env_for(tmp_path / "state")
    empty = tmp_path / "e.core"
    empty.write_bytes(b"")
    junk = tmp_path / "j.core"
    junk.write_bytes(b"not a core at all\n" * 10)
    trunc = tmp_path / "t.core"
    trunc.write_bytes(core.read_bytes()[:core.stat().st_size // 2])
    cases = [([empty], "is empty"), ([junk], "not an ELF core"), ([trunc], "is truncated"),
             ([core, "--kernel", build_kernel("demo")], "another kernel|is a core of kernel build"),
             ([tmp_path / "missing.core"], "cannot read core")]
    for cmd in ("ps", "mem", "log"):
        for argv, want in cases:
            r = unik(env, cmd, "--core", *argv, check=False)
            assert r.returncode != 0, (cmd, argv)
            assert "Traceback" not in r.stderr and re.search(want, r.stderr), (cmd, r.stderr)
            assert r.stderr.startswith("unik: error: ") and len(r.stderr.splitlines()) == 2
            py = unik(env, "py", "--core", *argv, "-c", "1", check=False)
            assert py.stderr.splitlines()[0] == r.stderr.splitlines()[0]


@pytest.mark.parametrize("argv, want", [
    (["log", "--core", "x.core", "-f"], "a core does not grow"),
    (["ps", "somename", "--core", "x.core"], "not both"),
    (["mem", "--kernel", "k.elf"], "--kernel goes with --core"),
])
def test_usage_errors(tmp_path, argv, want):
    r = unik(env_for(tmp_path), *argv, check=False)
    assert r.returncode != 0 and want in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 2


def test_kernel_constants_match_sources():
    """snapshot.py's copies of two #defines DWARF does not carry."""
    from introspect import snapshot
    sched = (ROOT / "kernel/sched/sched_int.h").read_text()
    mm = (ROOT / "kernel/include/mm.h").read_text()
    fill = re.search(r"#define THREAD_STACK_FILL (0x[0-9a-fA-F]+)", sched).group(1)
    assert int(fill, 16) == snapshot.THREAD_STACK_FILL
    assert int(re.search(r"#define PAGE_SIZE (\d+)", mm).group(1)) == snapshot.PAGE_SIZE


def test_render_unknown_uptime():
    """A core without the kernel's clock: %CPU '-', 'up ?', null in JSON."""
    from console.render import ps_title, render_ps, thread_rows
    head = {"count": 1, "total": 1, "uptime_ns": None}
    t = [{"tid": 3, "state": 2, "priority": 1, "flags": 2, "name": "w", "wchan": "nap",
          "cpu_ns": 5_000_000, "switches": 4, "stack_size": 16384, "stack_hwm": 4096,
          "start_ns": 10, "state_name": "sleeping"}]
    assert thread_rows(head, t)[0]["cpu_pct"] is None
    out = render_ps(head, t).splitlines()
    assert out[0] == "1 threads, up ?" and ps_title(head, t) == "1 threads, up ?"
    assert out[2].split()[:6] == ["3", "w", "sleeping", "nap", "-", "0:00.005"]
    assert render_ps(head, t, sort="cpu")
