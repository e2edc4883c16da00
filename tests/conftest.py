"""Shared fixtures: the repo root, kernels built on demand, QEMU required.

Tests that need QEMU fail (never skip) when it is missing: CI must not go
green on a machine that could not run them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build_kernel(app: str = "demo") -> Path:
    """Build (or bring up to date) build/<app>/kernel.elf and return it."""
    out = ROOT / "build" / app
    r = subprocess.run(["make", "-s", "-C", str(ROOT / "kernel"), f"APP={app}",
                        f"O={out}"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"kernel build for {app} failed:\n{r.stdout}\n{r.stderr}")
    return out / "kernel.elf"


def require_qemu() -> str:
    q = shutil.which("qemu-system-x86_64")
    if not q:
        pytest.fail("qemu-system-x86_64 not found: `make test` installs it "
                    "(apt-get install qemu-system-x86)")
    return q


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def demo_elf() -> Path:
    return build_kernel("demo")


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory) -> Path:
    """A private UNIK_STATE_DIR for the whole session."""
    d = tmp_path_factory.mktemp("unik-state")
    os.environ["UNIK_STATE_DIR"] = str(d)
    return d


@pytest.fixture
def booted_instance(tmp_path):
    """A factory: booted_instance(app, name=..., boot_args=...) boots an
    instance (tests/instances.py `booted`) in this test's own state
    directory and returns it; every one is stopped at teardown, also when
    the test fails or a boot fails halfway."""
    import contextlib
    from instances import booted
    with contextlib.ExitStack() as stack:
        def boot(app: str = "demo", **kw):
            kw.setdefault("state", tmp_path / "state")
            return stack.enter_context(booted(app, **kw))
        yield boot


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake-kernel instances (tests/fakekernel.py) in a private state
    directory: start(name="fake", **kw) -> (inst, proc); every one is
    killed and its instance stopped at teardown."""
    import fakekernel
    from introspect import instance as I
    monkeypatch.setenv("UNIK_STATE_DIR", str(tmp_path))
    procs = []

    def start(name="fake", **kw):
        inst, proc = fakekernel.start_instance(tmp_path, name, **kw)
        procs.append((inst, proc))
        return inst, proc
    yield start
    for inst, proc in procs:
        proc.kill()
        proc.wait()
        I.stop(inst, timeout=1)
