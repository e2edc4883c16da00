"""The drain deadman on the real kernel under QEMU: a `unik trace` consumer
(or the mux under it) that is stopped with SIGSTOP stops sending the
heartbeat (TRACE_STATUS), so after the session's `deadman` timeout the
kernel aborts the session by itself -- sites restored while the host is
still stopped -- and once the host runs again `unik trace` prints why and
exits 3.  A consumer that keeps polling is never aborted, however short
its timeout.  Every child is continued and reaped whatever happens."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest

from instances import booted, popen_unik, unik, wait_until

SCRIPT = 'sched:::switch { @ = count(); } tick-100ms { printf("running\\n"); }'
DRAIN_LINE = re.compile(r"^unik: deadman: session aborted: the host did not drain it for "
                        r"\d+\.\d s \(timeout 1\.0 s\)$", re.M)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    with booted("demo", state=tmp_path_factory.mktemp("unik-deadman"), name="deadman") as i:
        yield i


def enabled_sites(inst) -> int:
    out = unik(inst.env, "sites", inst.name).stdout
    return int(re.search(r"probe sites, (\d+) enabled", out).group(1))


def stopped(pid: int):
    """A context: pid is SIGSTOPped inside, and continued on the way out
    whatever happened."""
    class _Stopped:
        def __enter__(self):
            os.kill(pid, signal.SIGSTOP)

        def __exit__(self, *exc):
            os.kill(pid, signal.SIGCONT)
    return _Stopped()


def assert_kernel_fine(inst) -> None:
    assert "text matches the ELF" in unik(inst.env, "sites", inst.name, "--verify").stdout
    assert "probe-chan" in unik(inst.env, "ps", inst.name).stdout


def test_stopped_consumer_is_aborted_and_its_sites_restored(inst):
    child = popen_unik(inst.env, "trace", inst.name, "-q", "-x", "deadman=1s", "-e", SCRIPT)
    try:
        child.wait_for("running")
        assert enabled_sites(inst) == 1
        with stopped(child.p.pid):
            # the kernel alone restores the sites while the consumer sleeps
            wait_until(lambda: enabled_sites(inst) == 0, 30, "the deadman to restore the sites")
        rc = child.finish(timeout=30)
    finally:
        child.kill()
    assert rc == 3, child.out[-2000:] + child.err
    assert DRAIN_LINE.search(child.err), child.err
    assert child.out.count("running") >= 1
    assert_kernel_fine(inst)


def test_stopped_mux_is_aborted_too(inst):
    child = popen_unik(inst.env, "trace", inst.name, "-q", "-x", "deadman=1s", "-e", SCRIPT)
    try:
        child.wait_for("running")
        with stopped(inst.mux_pid):
            time.sleep(3)              # nothing reaches the kernel: no heartbeat
        rc = child.finish(timeout=30)
    finally:
        child.kill()
    assert rc == 3, child.out[-2000:] + child.err
    assert DRAIN_LINE.search(child.err), child.err
    assert enabled_sites(inst) == 0
    assert_kernel_fine(inst)


def test_a_polling_consumer_is_never_aborted(inst):
    r = unik(inst.env, "trace", inst.name, "-q", "-x", "deadman=500ms", "--duration", "4",
             "-e", SCRIPT, check=False, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "deadman" not in r.stderr
    assert r.stdout.count("running") >= 10
    assert_kernel_fine(inst)
