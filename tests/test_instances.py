"""Several instances and several clients, through the real CLI and QEMU:
two instances side by side, three concurrent clients on one instance,
stale state directories, and the CLI's errors when the choice is ambiguous."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_kernel, require_qemu

UNIK = str(Path(sys.executable).parent / "unik")


def unik(env, *args, timeout=60, check=True):
    r = subprocess.run([UNIK, *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"unik {' '.join(args)} -> {r.returncode}\n{r.stdout}{r.stderr}")
    return r


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two demo instances, `left` and `right`, in a private state dir."""
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path_factory.mktemp("pair")))
    for name in ("left", "right"):
        unik(env, "boot", "--app", "demo", "--name", name, "--detach", timeout=120)
    yield env
    for name in ("left", "right"):
        unik(env, "stop", name, check=False)


def test_two_instances_answer_independently(pair):
    ls = json.loads(unik(pair, "ls", "--json").stdout)
    byname = {i["name"]: i for i in ls}
    assert byname["left"]["state"] == byname["right"]["state"] == "running"
    assert byname["left"]["qemu_pid"] != byname["right"]["qemu_pid"]
    for name in ("left", "right"):
        ps = json.loads(unik(pair, "ps", name, "--json").stdout)
        assert ps["instance"] == name
        assert {"idle", "probe-chan"} <= {t["name"] for t in ps["threads"]}
    # Traffic on one does not show up on the other's channel statistics.
    before = json.loads(unik(pair, "chanstat", "right", "--json").stdout)["kernel"]
    for _ in range(5):
        unik(pair, "ps", "left")
    after = json.loads(unik(pair, "chanstat", "right", "--json").stdout)["kernel"]
    assert after["frames_in"] - before["frames_in"] <= 2   # only the chanstat itself


def test_no_name_with_two_running_is_an_error(pair):
    r = unik(pair, "ps", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("unik: error:"), r.stderr
    assert "hint:" in r.stderr and "Traceback" not in r.stderr


def test_three_concurrent_clients(pair):
    """`unik log -f` follows while `unik ps` and `unik mem` are asked."""
    follower = subprocess.Popen([UNIK, "log", "left", "-f"], env=pair,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        top = subprocess.Popen([UNIK + "-top", "left", "--once"], env=pair,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        for _ in range(5):
            ps = unik(pair, "ps", "left", timeout=20)
            mem = unik(pair, "mem", "left", timeout=20)
            assert "probe-chan" in ps.stdout
            assert "heap" in mem.stdout.lower()
        elapsed = time.monotonic() - t0
        out, err = top.communicate(timeout=30)
        assert top.returncode == 0, err
        assert "probe-chan" in out
        assert follower.poll() is None, "log -f exited while others were served"
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=10)
    assert "unik: kernel ready" in out
    assert "Traceback" not in err
    assert elapsed < 60, f"10 commands took {elapsed:.1f}s next to a follower"


def test_stale_instance_is_reported_not_hung(tmp_path):
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    unik(env, "boot", "--app", "demo", "--name", "doomed", "--detach", timeout=120)
    inst = json.loads(unik(env, "ls", "--json").stdout)[0]
    os.kill(inst["qemu_pid"], signal.SIGKILL)
    time.sleep(0.5)
    ls = json.loads(unik(env, "ls", "--json").stdout)
    assert ls[0]["state"] == "stale"
    t0 = time.monotonic()
    r = unik(env, "ps", "doomed", check=False, timeout=20)
    assert time.monotonic() - t0 < 10
    assert r.returncode == 2 and "not running" in r.stderr and "hint:" in r.stderr
    unik(env, "stop", "doomed")
    assert json.loads(unik(env, "ls", "--json").stdout) == []


def test_no_instance_is_an_error(tmp_path):
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    r = unik(env, "ps", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("unik: error:") and "hint:" in r.stderr


def test_kernel_not_built_is_an_error(tmp_path):
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path), UNIK_BUILD_DIR=str(tmp_path / "b"))
    r = unik(env, "boot", "--app", "demo", "--no-build", "--detach", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("unik: error:") and "hint:" in r.stderr
    assert "unik build" in r.stderr


def test_foreground_boot_shows_console_and_ctrl_c_stops(tmp_path):
    """`unik boot` without --detach streams the serial console; Ctrl-C
    (SIGINT) stops the instance cleanly and removes its state."""
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    p = subprocess.Popen([UNIK, "boot", "--app", "demo", "--name", "fg"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            ls = json.loads(unik(env, "ls", "--json").stdout)
            if ls and (tmp_path / "fg" / "serial.log").exists() and \
                    "probe channel ready" in (tmp_path / "fg" / "serial.log").read_text():
                break
            time.sleep(0.2)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert "unik: kernel ready" in out
    assert "Traceback" not in err
    assert json.loads(unik(env, "ls", "--json").stdout) == []


def test_icount_boot_reports_instructions_from_entry_to_ready(tmp_path):
    """With --icount the TSC counts guest instructions: HELLO's tsc_entry
    (read by the boot stub's first instructions) and tsc_ready bracket the
    boot, which `unik bench` reports."""
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    unik(env, "boot", "--app", "demo", "--name", "ic", "--icount", "--detach", timeout=120)
    try:
        hello = json.loads(unik(env, "info", "ic", "--json").stdout)["hello"]
    finally:
        unik(env, "stop", "ic")
    assert abs(hello["tsc_hz"] - 1e9) < 1e6          # icount shift=0: 1 insn per ns
    assert 0 < hello["tsc_entry"] < hello["tsc_ready"]
    assert 100_000 < hello["tsc_ready"] - hello["tsc_entry"] < 200_000_000


def test_mismatched_build_id_is_refused(tmp_path):
    """The handshake checks the running kernel's build-id against the ELF
    the host reads symbols from: a mismatch is refused, clearly."""
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    unik(env, "boot", "--app", "demo", "--name", "mm", "--detach", timeout=120)
    try:
        rec_path = tmp_path / "mm" / "instance.json"
        rec = json.loads(rec_path.read_text())
        os.kill(rec["mux_pid"], signal.SIGTERM)
        end = time.monotonic() + 10
        while (tmp_path / "mm" / "chan.sock").exists() and time.monotonic() < end:
            time.sleep(0.05)
        rec["build_id"] = "00" * 20
        rec_path.write_text(json.dumps(rec))
        r = unik(env, "ps", "mm", check=False, timeout=30)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.startswith("unik: error: build-id mismatch"), r.stderr
        assert "hint:" in r.stderr and "Traceback" not in r.stderr
    finally:
        unik(env, "stop", "mm", check=False)


def test_follower_says_when_the_instance_stops(tmp_path):
    require_qemu()
    build_kernel("demo")
    env = dict(os.environ, UNIK_STATE_DIR=str(tmp_path))
    unik(env, "boot", "--app", "demo", "--name", "gone", "--detach", timeout=120)
    follower = subprocess.Popen([UNIK, "log", "gone", "-f"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    unik(env, "stop", "gone")
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 2
    assert "unik: kernel ready" in out
    assert err.startswith("unik: error: instance gone stopped while following its log"), err
