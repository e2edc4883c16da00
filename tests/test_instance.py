"""Instance records, naming, listing and the choice of instance."""
import json
import os
import subprocess
import sys
import time

import pytest

from instances import wait_until
from introspect import instance as I
from introspect.errors import NoInstance, NotRunning, UnikError


def test_allocate_name():
    assert I.allocate_name("demo", set()) == "demo"
    assert I.allocate_name("demo", {"demo"}) == "demo-2"
    assert I.allocate_name("demo", {"demo", "demo-2", "demo-3"}) == "demo-4"
    assert I.allocate_name("demo", {"demo-2"}) == "demo"


@pytest.mark.parametrize("name", ["demo", "a", "x-1", "A.b_c", "9lives"])
def test_validate_name_ok(name):
    assert I.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "a b", "x" * 33, "a,b"])
def test_validate_name_bad(name):
    with pytest.raises(UnikError) as e:
        I.validate_name(name)
    assert e.value.msg == f"bad instance name {name!r}"
    assert e.value.hint == ("use 1-32 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")


def test_state_base(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIK_STATE_DIR", str(tmp_path / "s"))
    assert I.state_base() == tmp_path / "s"
    monkeypatch.delenv("UNIK_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "x"))
    assert I.state_base() == tmp_path / "x" / "unik"


def _spawn(*args):
    """A sleeping process with `args` in its command line, once it has exec'd."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            if b"time.sleep(60)" in f.read():
                break
        time.sleep(0.005)
    return p


@pytest.fixture
def live_proc(tmp_path):
    """A process whose command line names tmp_path (stands in for QEMU)."""
    p = _spawn(*(f"{tmp_path}/{n}/qmp.sock" for n in ("live", "a", "b", "busy")))
    yield p
    p.kill()
    p.wait()


def _record(base, name, pid=None, **kw):
    d = base / name
    d.mkdir(parents=True)
    inst = I.Instance(name=name, app=kw.pop("app", "demo"), kernel="/k.elf",
                      qemu_pid=pid, created=time.time(), dir=d, **kw)
    inst.save()
    return inst


def test_save_load_roundtrip(tmp_path):
    inst = _record(tmp_path, "demo", build_id="abcd", boot={"mem": "32M"})
    back = I.Instance.load(tmp_path / "demo")
    assert back == inst and back.dir == tmp_path / "demo"
    data = json.loads((tmp_path / "demo" / "instance.json").read_text())
    assert data["name"] == "demo" and "dir" not in data


def test_running_and_stale(tmp_path, live_proc):
    live = _record(tmp_path, "live", pid=live_proc.pid)
    dead = _record(tmp_path, "dead", pid=999999999)
    other = _record(tmp_path, "other", pid=os.getpid())   # alive, but not "its" QEMU
    assert live.state == "running"
    assert dead.state == "stale"
    assert other.state == "stale"
    with pytest.raises(NotRunning) as e:
        dead.require_running()
    assert "unik stop dead" in e.value.hint


def _proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_zombie_is_not_alive(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass", str(tmp_path)])
    wait_until(lambda: _proc_state(p.pid) == "Z", 5, "the child to exit")   # not reaped: a zombie
    assert not I.pid_alive(p.pid, str(tmp_path))
    p.wait()


def test_find(tmp_path, live_proc):
    with pytest.raises(NoInstance, match="no instance is running"):
        I.find(base=tmp_path)
    _record(tmp_path, "dead", pid=999999999)
    with pytest.raises(NoInstance) as e:
        I.find(base=tmp_path)
    assert "stale: dead" in e.value.hint
    _record(tmp_path, "live", pid=live_proc.pid)
    assert I.find(base=tmp_path).name == "live"
    assert I.find("dead", base=tmp_path, need_running=False).name == "dead"
    with pytest.raises(NotRunning, match="not running"):
        I.find("dead", base=tmp_path)
    with pytest.raises(NoInstance, match="no instance named 'nope'"):
        I.find("nope", base=tmp_path)


def test_find_two_running_needs_a_name(tmp_path, live_proc):
    _record(tmp_path, "a", pid=live_proc.pid)
    d = tmp_path / "b"
    _record(tmp_path, "b", pid=live_proc.pid)
    # both records point at a process naming both dirs, so both "run"
    assert I.Instance.load(d).running
    with pytest.raises(NoInstance) as e:
        I.find(base=tmp_path)
    assert "2 instances are running (a, b)" in e.value.msg
    assert "unik ps a" in e.value.hint


def test_damaged_dir_listed_as_stale(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "instance.json").write_text("{not json")
    (tmp_path / "not a name").mkdir()
    insts = I.list_instances(tmp_path)
    assert [(i.name, i.state) for i in insts] == [("broken", "stale")]


def test_create_dir_names(tmp_path, live_proc):
    n1, d1 = I.create_dir(None, "demo", tmp_path)
    n2, d2 = I.create_dir(None, "demo", tmp_path)
    assert (n1, n2) == ("demo", "demo-2") and d1.is_dir() and d2.is_dir()
    # an explicit name over a stale instance replaces it
    _record(tmp_path, "old", pid=999999999)
    n, d = I.create_dir("old", "demo", tmp_path)
    assert n == "old" and not (d / "instance.json").exists()
    # ... but not over a running one
    _record(tmp_path, "busy", pid=live_proc.pid)
    with pytest.raises(UnikError, match="taken by a running instance"):
        I.create_dir("busy", "demo", tmp_path)


def test_create_dir_socket_path_too_long(tmp_path):
    base = tmp_path / ("x" * 100)
    with pytest.raises(UnikError, match="too long"):
        I.create_dir("demo", "demo", base)


def test_stop_stale_removes_dir(tmp_path):
    inst = _record(tmp_path, "dead", pid=999999999)
    assert I.stop(inst) is False
    assert not (tmp_path / "dead").exists()


def test_stop_running_kills_process(tmp_path):
    p = _spawn(str(tmp_path / "live"))
    inst = _record(tmp_path, "live", pid=p.pid)
    t0 = time.monotonic()
    assert I.stop(inst, timeout=0.5) is True     # no QMP: falls back to signals
    p.wait(5)                # stop reaped it already (waitpid): only gone is sure
    assert not I.pid_alive(p.pid, str(tmp_path / "live"))
    assert time.monotonic() - t0 < 8
    assert not (tmp_path / "live").exists()


def test_pid_alive_needle_is_a_directory(tmp_path):
    p = _spawn(f"file:{tmp_path}/demo-2/serial.log")
    try:
        assert I.pid_alive(p.pid, f"{tmp_path}/demo-2")
        assert not I.pid_alive(p.pid, f"{tmp_path}/demo")
        assert I.pid_alive(p.pid)
    finally:
        p.kill()
        p.wait()
