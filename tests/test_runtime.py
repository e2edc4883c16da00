"""Golden runtime tests: boot the real kernel under QEMU (TCG) and run the
directive files in tests/runtime/ (format: tests/runtime_format.py)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, build_kernel, require_qemu
from runtime_format import parse

SUITES = sorted((ROOT / "tests" / "runtime").glob("*.test"))
BIN = Path(sys.executable).parent


def _cases():
    for path in SUITES:
        suite = parse(path.read_text(), str(path.relative_to(ROOT)))
        for t in suite.tests:
            yield pytest.param(path.stem, t, id=f"{path.stem}::{t.name}")


_booted: dict = {}


def _env(state_dir):
    env = dict(os.environ, UNIK_STATE_DIR=str(state_dir))
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def instances(state_dir):
    """Boot each suite's instance on first use; stop them all at the end."""
    yield _booted
    failed = []
    for stem, name in list(_booted.items()):
        r = subprocess.run([str(BIN / "unik"), "stop", name], env=_env(state_dir),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            failed.append(f"unik stop {name}: {r.stdout}{r.stderr}")
        del _booted[stem]
    assert not failed, "\n".join(failed)


def _instance(stem, state_dir):
    if stem in _booted:
        return _booted[stem]
    require_qemu()
    suite = parse((ROOT / "tests" / "runtime" / f"{stem}.test").read_text(), stem)
    build_kernel(suite.app)
    name = f"rt-{stem}"
    cmd = [str(BIN / "unik"), "boot", "--app", suite.app, "--name", name,
           "--detach", *shlex.split(suite.boot)]
    r = subprocess.run(cmd, env=_env(state_dir), capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        pytest.fail(f"boot of {name} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    _booted[stem] = name
    return name


@pytest.mark.parametrize("stem,case", list(_cases()))
def test_runtime(stem, case, instances, state_dir):
    name = _instance(stem, state_dir)
    subst = {"name": name, "state": str(state_dir / name), "root": str(ROOT),
             "serial": str(state_dir / name / "serial.log")}
    def fill(text):
        for k, v in subst.items():
            text = text.replace("{" + k + "}", v)
        return text
    cmd = fill(case.run)
    try:
        r = subprocess.run(cmd, shell=True, env=_env(state_dir), capture_output=True,
                           text=True, timeout=case.timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        so_far = str(e.stdout or "")[-2000:] + str(e.stderr or "")[-1000:]
        pytest.fail(f"{cmd!r} timed out after {case.timeout}s; output so far:\n{so_far}")
    out = r.stdout + r.stderr
    shown = out if len(out) < 4000 else out[:1500] + "\n[...]\n" + out[-2500:]
    where = f"$ {cmd}\n(exit {r.returncode})\n{shown}"
    assert r.returncode == case.exit, f"exit {r.returncode}, want {case.exit}\n{where}"
    for s in map(fill, case.expect):
        assert s in out, f"missing {s!r}\n{where}"
    for rx in map(fill, case.expect_regex):
        assert re.search(rx, out, re.M), f"no match for /{rx}/\n{where}"
    for s in map(fill, case.expect_none):
        assert s not in out, f"unexpected {s!r}\n{where}"
