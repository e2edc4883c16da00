"""unik gdb: the pure pieces, and gdb against a real demo instance's gdbstub."""
import json
import os
import sys
import time

import pytest

from introspect import gdb as G
from instances import Child, unik


def test_argv_pure():
    assert G.mi_argv("/s/k.elf") == ["gdb", "--nx", "--quiet", "--interpreter=mi3", "/s/k.elf"]
    a = G.interactive_argv("/s/k.elf", "/s/gdb.sock")
    assert a[0] == "gdb" and a[-1] == "/s/k.elf"
    assert a[a.index("-ex") + 1] == "target remote /s/gdb.sock"


def test_frame_text():
    assert G.frame_text({"func": "sched_tick", "file": "/x/sched.c", "line": "266",
                         "addr": "0x10"}) == "sched_tick (sched.c:266) at 0x10"
    assert G.frame_text({"addr": "0x10"}) == "?? at 0x10"
    assert G.frame_text(None) == "?"


def test_marker_live_and_stale(tmp_path):
    assert G.read_marker(tmp_path) is None
    G._write_marker(tmp_path)
    assert G.read_marker(tmp_path)["pid"] == os.getpid()
    (tmp_path / G.MARKER).write_text(json.dumps({"pid": 2 ** 22 + 12345}))
    assert G.read_marker(tmp_path) is None            # its writer is gone
    (tmp_path / G.MARKER).write_text("not json")
    assert G.read_marker(tmp_path) is None
    G._write_marker(tmp_path)
    G._clear_marker(tmp_path)
    assert not (tmp_path / G.MARKER).exists()


def test_break_regs_print_bt_then_detach(booted_instance):
    inst = booted_instance("demo")
    r = unik(inst.env, "gdb", inst.name, "--break", "sched_tick", "--regs",
             "-p", "sched_threads[1].name", "--next", "--bt", "--json", timeout=90)
    res = json.loads(r.stdout)
    acts = {x["action"]: x["result"] for x in res["results"]}
    hit = acts["break"]
    assert hit["reason"] == "breakpoint-hit" and hit["frame"]["func"] == "sched_tick"
    assert hit["bt"][0]["func"] == "sched_tick"
    assert any(f.get("func") == "kmain" for f in hit["bt"])
    assert int(acts["regs"]["rip"], 16) == int(hit["frame"]["addr"], 16)
    assert acts["next"]["reason"] == "end-stepping-range"
    assert acts["bt"][0]["func"] == "sched_tick"
    ps = json.loads(unik(inst.env, "ps", inst.name, "--json").stdout)
    name1 = next(t["name"] for t in ps["threads"] if t["tid"] == 1)
    assert acts["print"]["value"].startswith(f'"{name1}"')
    assert res["detached"] and not (inst.dir / G.MARKER).exists()
    # the text form names the hit and the frame
    r = unik(inst.env, "gdb", inst.name, "-b", "sched_tick", "-p", "sched_cur != 0", timeout=90)
    assert "breakpoint 1 hit: sched_tick (sched.c:" in r.stdout
    assert "sched_cur != 0 = 1" in r.stdout and "detached" in r.stdout


def test_halted_instance_fails_fast_then_detach_releases(booted_instance):
    inst = booted_instance("demo")
    holder = Child([sys.executable, "-c",
                    "import sys, time\n"
                    "from introspect import gdb as G, instance as I\n"
                    f"inst = I.find({inst.name!r})\n"
                    "with G.Session(inst) as s:\n"
                    "    print('held', s.where().get('func'), flush=True)\n"
                    "    time.sleep(120)\n"], inst.env)
    try:
        holder.wait_for("held", timeout=60)
        t = time.monotonic()
        r = unik(inst.env, "ps", inst.name, check=False, timeout=30)
        assert r.returncode != 0 and time.monotonic() - t < 5
        assert "stopped in gdb" in r.stderr and f"unik gdb {inst.name} detach" in r.stderr
        busy = unik(inst.env, "gdb", inst.name, "--bt", check=False, timeout=30)
        assert busy.returncode != 0 and "held by another gdb" in busy.stderr
        d = unik(inst.env, "gdb", inst.name, "detach", timeout=60)
        assert "resumed" in d.stdout
        assert holder.finish(timeout=15) is not None
        assert not (inst.dir / G.MARKER).exists()
        ps = json.loads(unik(inst.env, "ps", inst.name, "--json").stdout)
        assert ps["threads"]
    finally:
        if holder.p.poll() is None:
            holder.kill()


def test_break_timeout_resumes(booted_instance):
    inst = booted_instance("demo")
    # a function the running demo never calls: no hit, a clear error, guest running
    r = unik(inst.env, "gdb", inst.name, "--break", "panic", "--timeout", "2",
             check=False, timeout=60)
    assert r.returncode != 0 and "no breakpoint hit within 2s" in r.stderr
    assert not (inst.dir / G.MARKER).exists()
    assert json.loads(unik(inst.env, "ps", inst.name, "--json").stdout)["threads"]
    bad = unik(inst.env, "gdb", inst.name, "-p", "no_such_symbol_xyz", check=False, timeout=60)
    assert bad.returncode != 0 and "No symbol" in bad.stderr and "Traceback" not in bad.stderr


def test_interactive_gdb_has_symbols_and_is_attached(booted_instance):
    import subprocess
    from instances import UNIK, sigint_default
    inst = booted_instance("demo")
    script = "hbreak sched_tick\ncontinue\nbt 1\np sched_threads[1].name\ndetach\nquit\n"
    r = subprocess.run([UNIK, "gdb", inst.name, "-i"], input=script, env=inst.env,
                       capture_output=True, text=True, timeout=90, preexec_fn=sigint_default)
    assert "Breakpoint 1, sched_tick" in r.stdout, r.stdout + r.stderr
    assert '"probe-chan"' in r.stdout and "detached" in r.stdout
    assert G.read_marker(inst.dir) is None           # gdb (our pid) has exited
    assert json.loads(unik(inst.env, "ps", inst.name, "--json").stdout)["threads"]


def test_ctrl_c_while_waiting_detaches(booted_instance):
    import signal
    from instances import UNIK
    inst = booted_instance("demo")
    c = Child([UNIK, "gdb", inst.name, "--break", "panic", "--timeout", "120"], inst.env)
    try:
        c.wait_for("stopped at", timeout=60)
        time.sleep(1)                                  # now waiting for the hit
        c.finish(signal.SIGINT, timeout=20)
        assert "Traceback" not in c.err
        assert G.read_marker(inst.dir) is None
        assert json.loads(unik(inst.env, "ps", inst.name, "--json").stdout)["threads"]
    finally:
        if c.p.poll() is None:
            c.kill()
