"""introspect/program.py on real cores and live instances (QEMU).

A demo instance is dumped with `unik dump`; its threads, stacks, log ring
and heap are read from the core and compared with what the live instance
says over the probe channel; a crash-null instance's core shows the
faulting thread's stack; `unik py` runs the same script on both."""
from __future__ import annotations

import json
import os

import pytest

from instances import booted, unik, wait_until
from introspect.program import Program

SCRIPT = """\
import sys
for t in prog.threads():
    print(t.tid, t.name, int(t.obj.stack_size), t.obj.flags.value_())
print(len(prog['sched_threads']), sys.argv[1:])
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(instance, core path, `unik ps --json` just before the dump)."""
    state = tmp_path_factory.mktemp("state")
    old = os.environ.get("UNIK_STATE_DIR")
    os.environ["UNIK_STATE_DIR"] = str(state)        # Program.live finds it here
    try:
        with booted("demo", state=state, name="pd") as inst:
            ps = json.loads(unik(inst.env, "ps", "pd", "--json").stdout)
            core = tmp_path_factory.mktemp("cores") / "pd.core"
            unik(inst.env, "dump", "pd", "-o", core)
            yield inst, core, ps
    finally:
        if old is None:
            os.environ.pop("UNIK_STATE_DIR", None)
        else:
            os.environ["UNIK_STATE_DIR"] = old


def test_threads_from_core(demo):
    inst, core, ps = demo
    with Program.from_core(core, inst.kernel) as prog:
        ths = prog.threads()
        assert [t.name for t in ths] == ["idle", "probe-chan", "app", "worker-1", "worker-2"]
        assert [t.tid for t in ths] == [r["tid"] for r in ps["threads"]]
        live = {r["name"]: r for r in ps["threads"]}
        for t in ths:
            if t.name in ("app", "worker-1", "worker-2"):
                # ps and the dump are moments apart and the workers nap for
                # a few ms: a thread asleep in both views sleeps on the same
                # channel; otherwise it was woken in between
                assert t.state_name in ("sleeping", "runnable", "running"), t
                if t.state_name == live[t.name]["state_name"] == "sleeping":
                    assert t.wchan == live[t.name]["wchan"], t
            assert t.stack_size == live[t.name]["stack_size"]
        assert sum(t.is_current for t in ths) == 1


def test_stack_traces(demo):
    inst, core, _ = demo
    with Program.from_core(core, inst.kernel) as prog:
        by = {t.name: t for t in prog.threads()}
        w = by["worker-1"].stack_trace()
        fns = w.functions()
        assert fns[0] == "thread_sleep_ms" and "demo_worker_main" in fns
        assert fns[-1] == "sched_thread_start"
        f = w[fns.index("demo_worker_main")]
        assert f.source and f.source[0].endswith("apps/demo/demo.c")
        assert "demo_worker_main+0x" in str(w)
        chan = by["probe-chan"].stack_trace().functions()
        assert "chan_main" in chan
        cur = next(t for t in by.values() if t.is_current).stack_trace()
        assert cur[0].exact and cur[0].pc == prog.registers["rip"]


def test_log_ring_and_heap_from_core(demo):
    inst, core, _ = demo
    live_log = unik(inst.env, "log", "pd").stdout
    mem = json.loads(unik(inst.env, "mem", "pd", "--json").stdout)
    with Program.from_core(core, inst.kernel) as prog:
        text = prog.log()
        assert "unik: booting" in text and "unik 0.1" in text
        assert live_log.startswith(text[:200])          # the same ring, older than live
        h = prog.heap()
        assert [c["size"] for c in h["classes"]] == [c["size"] for c in mem["classes"]]
        assert 0 < h["bytes_used"] <= h["bytes_total"]


def test_objects(demo):
    inst, core, _ = demo
    with Program.from_core(core, inst.kernel) as prog:
        table = prog["sched_threads"]
        assert str(table.type_).startswith("struct thread [")
        t = table[3]
        assert repr(t).startswith("(struct thread){ .used = true, .state = THREAD_")
        assert t.name.string_() == "worker-1" and t["tid"].value_() == 3
        assert t.state == "THREAD_SLEEPING" and t.state.enumerator_() == "THREAD_SLEEPING"
        assert isinstance(t.used.value_(), bool)
        cur = prog["sched_cur"]
        assert repr(cur).startswith("(struct thread *)0x")
        assert cur.deref().tid.value_() == cur[0].tid.value_() == cur.tid.value_()
        assert cur.deref().address_ == int(cur)
        assert prog.read(t.name.address_, 8) == b"worker-1"
        assert str(prog.symbol(prog.db.address("kmain") + 4)) == "kmain+0x4"
        ins = prog.disassemble("kmain", 4)
        assert len(ins) == 4 and str(ins[0].symbol) == "kmain"
        with pytest.raises(KeyError, match="sched_thread"):
            prog["sched_thread"]
        with pytest.raises(AttributeError, match="no member 'nope'"):
            t.nope


def test_same_script_live_and_core(demo, tmp_path):
    inst, core, _ = demo
    script = tmp_path / "threads.py"
    script.write_text(SCRIPT)
    live = unik(inst.env, "py", "pd", script, "x", "--flag", "y").stdout
    post = unik(inst.env, "py", "--core", core, "--kernel", inst.kernel, script, "x", "--flag",
                "y").stdout
    assert live == post and "worker-2" in live and "['x', '--flag', 'y']" in live
    found = unik(inst.env, "py", "--core", core, script).stdout   # kernel found by build-id
    assert found.splitlines()[:5] == live.splitlines()[:5]


def test_script_error_shows_its_own_traceback(demo, tmp_path):
    inst, core, _ = demo
    script = tmp_path / "bad.py"
    script.write_text("def f():\n    return prog['sched_threads'][0].nosuch\nf()\n")
    r = unik(inst.env, "py", "--core", core, script, check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("Traceback (most recent call last):")
    assert f'File "{script}", line 3' in r.stderr and f'File "{script}", line 2' in r.stderr
    assert "introspect" not in r.stderr.replace(str(script), "").split("AttributeError")[0]
    assert "console/" not in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("AttributeError: 'struct thread' has no")


def test_crash_null_core_trace(tmp_path):
    state = tmp_path / "state"
    with booted("crash-null", state=state, name="cn") as inst:
        wait_until(lambda: inst.panic_report(), timeout=60, what="the crash-null panic")
        core = tmp_path / "cn.core"
        unik(inst.env, "dump", "cn", "-o", core)
        with Program.from_core(core, inst.kernel) as prog:
            cur = prog.current_thread()
            assert cur.name == "app" and cur.state_name == "running"
            fns = cur.stack_trace().functions()
            assert "crash_null_deref" in fns and "trap_dispatch" in fns
            assert fns.index("app_main") == fns.index("crash_null_deref") + 1
