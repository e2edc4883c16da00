"""Several instances and several clients, through the real CLI and QEMU:
two instances side by side, three concurrent clients on one instance,
stale state directories, and the CLI's errors when the choice is ambiguous."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import pytest

from conftest import build_kernel, require_qemu
from instances import UNIK, Child, booted, env_for, ls, popen_unik, reaped, unik, wait_until


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two demo instances, `left` and `right`, in a private state dir."""
    state = tmp_path_factory.mktemp("pair")
    with contextlib.ExitStack() as stack:
        for name in ("left", "right"):
            stack.enter_context(booted("demo", state=state, name=name))
        yield env_for(state)


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
    follower = popen_unik(pair, "log", "left", "-f")
    try:
        follower.wait_for("unik: kernel ready")        # following: the backlog came
        top = Child([UNIK + "-top", "left", "--once"], pair)
        t0 = time.monotonic()
        for _ in range(5):
            ps = unik(pair, "ps", "left", timeout=20)
            mem = unik(pair, "mem", "left", timeout=20)
            assert "probe-chan" in ps.stdout
            assert "heap" in mem.stdout.lower()
        elapsed = time.monotonic() - t0
        assert top.finish(timeout=30) == 0, top.err
        assert "probe-chan" in top.out
        assert follower.p.poll() is None, "log -f exited while others were served"
        assert follower.finish(signal.SIGINT) == 130, follower.err   # Ctrl-C ends it
    finally:
        follower.kill()
    assert follower.err == "\n", follower.err
    assert elapsed < 60, f"10 commands took {elapsed:.1f}s next to a follower"


def test_stale_instance_is_reported_not_hung(tmp_path):
    with booted("demo", state=tmp_path, name="doomed") as inst:
        env = inst.env
        os.kill(inst.qemu_pid, signal.SIGKILL)
        wait_until(lambda: ls(env)[0]["state"] == "stale", 10, "doomed to show as stale")
        t0 = time.monotonic()
        r = unik(env, "ps", "doomed", check=False, timeout=20)
        assert time.monotonic() - t0 < 3, "ps waited on a stale instance"
        assert r.returncode == 2
        assert r.stderr.startswith("unik: error: instance doomed is not running (QEMU exited)\n")
        assert "\nhint: unik stop doomed removes it" in r.stderr
        assert unik(env, "stop", "doomed").stdout == "removed stale doomed\n"
        assert ls(env) == []


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
    env = env_for(tmp_path)
    with reaped(tmp_path, "fg"):
        p = popen_unik(env, "boot", "--app", "demo", "--name", "fg")
        try:
            p.wait_for("chan: probe channel ready", 60)
            rc = p.finish(signal.SIGINT, 30)
        finally:
            p.kill()
    assert rc == 0, p.err
    assert "unik: kernel ready" in p.out
    assert p.err.endswith("\nunik: stopping fg\n"), p.err
    assert ls(env) == []


def test_icount_boot_reports_instructions_from_entry_to_ready(tmp_path):
    """With --icount the TSC counts guest instructions: HELLO's tsc_entry
    (read by the boot stub's first instructions) and tsc_ready bracket the
    boot, which `unik bench` reports."""
    with booted("demo", state=tmp_path, name="ic", boot_args=["--icount"]) as inst:
        hello = json.loads(unik(inst.env, "info", "ic", "--json").stdout)["hello"]
    assert abs(hello["tsc_hz"] - 1e9) < 1e6          # icount shift=0: 1 insn per ns
    assert 0 < hello["tsc_entry"] < hello["tsc_ready"]
    assert 100_000 < hello["tsc_ready"] - hello["tsc_entry"] < 200_000_000


def test_mismatched_build_id_is_refused(tmp_path):
    """The handshake checks the running kernel's build-id against the ELF
    the host reads symbols from: a mismatch is refused, clearly."""
    with booted("demo", state=tmp_path, name="mm") as inst:
        env = inst.env
        rec_path = tmp_path / "mm" / "instance.json"
        rec = json.loads(rec_path.read_text())
        os.kill(rec["mux_pid"], signal.SIGTERM)
        wait_until(lambda: not (tmp_path / "mm" / "chan.sock").exists(), 10,
                   "the mux to remove chan.sock")
        real = rec["build_id"]
        rec["build_id"] = "00" * 20
        rec_path.write_text(json.dumps(rec))
        r = unik(env, "ps", "mm", check=False, timeout=30)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.startswith("unik: error: build-id mismatch"), r.stderr
        assert real in r.stderr and "00" * 20 in r.stderr, r.stderr
        assert "hint:" in r.stderr and "Traceback" not in r.stderr


def test_follower_says_when_the_instance_stops(tmp_path):
    with booted("demo", state=tmp_path, name="gone") as inst:
        env = inst.env
        follower = popen_unik(env, "log", "gone", "-f")
        try:
            follower.wait_for("unik: kernel ready")    # the backlog: it is following
            unik(env, "stop", "gone")
            rc = follower.finish(timeout=30)
        finally:
            follower.kill()
    assert rc == 2
    assert follower.err.startswith(
        "unik: error: instance gone stopped while following its log"), follower.err
