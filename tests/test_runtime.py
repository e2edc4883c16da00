"""Golden runtime tests: boot the real kernel under QEMU (TCG) and run the
directive files in tests/runtime/ (format: tests/runtime_format.py).

Each suite's instance is booted on its first test (instances.booted) and
stopped when the module ends; a failure names the `.test` file and line."""
from __future__ import annotations

import contextlib
import re
import subprocess
import time

import pytest

from conftest import ROOT
from instances import booted, sigint_default
from runtime_format import parse

SUITES = sorted((ROOT / "tests" / "runtime").glob("*.test"))
RETRY = 0.2                   # seconds between WAIT_FOR's runs


def _cases():
    for path in SUITES:
        suite = parse(path.read_text(), str(path.relative_to(ROOT)))
        for t in suite.tests:
            marks = [pytest.mark.xfail(strict=True, reason=t.xfail)] if t.xfail else []
            yield pytest.param(suite, t, id=f"{path.stem}::{t.name}", marks=marks)


@pytest.fixture(scope="module")
def instance_of(tmp_path_factory):
    """instance_of(suite) -> the suite's Instance, booted on first use; all
    of them stopped at the end of the module, whatever happened."""
    state = tmp_path_factory.mktemp("rt")
    running: dict = {}
    with contextlib.ExitStack() as stack:
        def get(suite):
            if suite.path not in running:
                stem = suite.path.rsplit("/", 1)[-1].removesuffix(".test")
                running[suite.path] = stack.enter_context(
                    booted(suite.app, state=state, name=f"rt-{stem}", boot_args=suite.boot))
            return running[suite.path]
        yield get


def _run(cmd: str, env: dict, timeout: float):
    """(exit status, stdout+stderr), or (None, output so far) on timeout."""
    try:
        r = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
                           preexec_fn=sigint_default, errors="replace")
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        return None, text(e.stdout)[-2000:] + text(e.stderr)[-1000:]
    return r.returncode, r.stdout + r.stderr


def _shown(cmd: str, rc, out: str) -> str:
    body = out if len(out) < 4000 else out[:1500] + "\n[...]\n" + out[-2500:]
    return f"\n$ {cmd}\n(exit {rc})\n{body}"


def _check(where, e, out: str, fill, shown: str) -> None:
    """One EXPECT* / AFTER_EXPECT line against the output."""
    text = fill(e.text)
    if e.kind in ("EXPECT", "AFTER_EXPECT") and text not in out:
        pytest.fail(f"{where(e.line)}missing {text!r}{shown}", pytrace=False)
    if e.kind == "EXPECT_REGEX" and not re.search(text, out, re.M):
        pytest.fail(f"{where(e.line)}no match for /{text}/{shown}", pytrace=False)
    if e.kind == "EXPECT_NONE" and text in out:
        pytest.fail(f"{where(e.line)}unexpected {text!r}{shown}", pytrace=False)


@pytest.mark.parametrize("suite,case", list(_cases()))
def test_runtime(suite, case, instance_of):
    inst = instance_of(suite)
    subst = {"name": inst.name, "state": str(inst.dir), "root": str(ROOT),
             "serial": str(inst.dir / "serial.log")}

    def fill(text):
        for k, v in subst.items():
            text = text.replace("{" + k + "}", v)
        return text

    def where(line):
        return f"{suite.path}:{line}: "
    cmd = case.command(fill)
    deadline = time.monotonic() + case.timeout
    while True:
        rc, out = _run(cmd, inst.env, max(0.1, deadline - time.monotonic()))
        if rc is None:
            pytest.fail(f"{where(case.run_line)}timed out after {case.timeout:g}s"
                        f"{_shown(cmd, 'killed', out)}", pytrace=False)
        w = case.wait_for
        if w is None or re.search(fill(w.text), out, re.M):
            break
        if time.monotonic() + RETRY >= deadline:
            pytest.fail(f"{where(w.line)}no match for /{fill(w.text)}/ within "
                        f"{case.timeout:g}s{_shown(cmd, rc, out)}", pytrace=False)
        time.sleep(RETRY)
    shown = _shown(cmd, rc, out)
    if rc != case.exit:
        pytest.fail(f"{where(case.exit_line or case.run_line)}exit {rc}, want {case.exit}"
                    f"{shown}", pytrace=False)
    for e in case.expects:
        _check(where, e, out, fill, shown)
    for a in case.after:
        acmd = fill(a.cmd)
        arc, aout = _run(acmd, inst.env, case.timeout)
        ashown = _shown(acmd, arc, aout)
        if arc != 0:
            pytest.fail(f"{where(a.line)}AFTER command exited {arc}{ashown}", pytrace=False)
        for e in a.expect:
            _check(where, e, aout, fill, ashown)
