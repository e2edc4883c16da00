"""Cores of real instances for the post-mortem tests (QEMU), shared by
tests/test_core_report.py, tests/test_crash.py and tests/test_flight.py.

    null_core               # module fixture: (instance, core) of crash-null
    yield from panicked_core(tmp_path_factory, "crash-div0", "cd")
    yield from auto_core(tmp_path_factory, "crash-heap", "ch")

A test module imports the fixtures it uses (`from crashcores import
null_core`); each module gets its own instance (module scope).
"""
from __future__ import annotations

import pytest

from instances import booted, ls, unik, wait_until


def _booted_until(tmp_path_factory, app: str, name: str, ready, what: str, interval: float):
    """`app` booted as `name` in a fresh state directory, once its `unik ls
    --json` row satisfies ready(row); yields (instance, row)."""
    state = tmp_path_factory.mktemp("state")
    with booted(app, state=state, name=name) as inst:
        def row():
            return next((r for r in ls(inst.env) if r["name"] == name and ready(r)), None)
        wait_until(lambda: row() is not None, timeout=60, interval=interval, what=what)
        yield inst, row()


def _dump(inst, tmp_path_factory, name: str):
    """`unik dump NAME -o` a fresh path; the core's path."""
    core = tmp_path_factory.mktemp("cores") / f"{name}.core"
    unik(inst.env, "dump", name, "-o", core)
    return core


def panicked_core(tmp_path_factory, app: str, name: str):
    """(instance, core) of `app` dumped with `unik dump` after it panicked
    (`unik ls` says so)."""
    for inst, _ in _booted_until(tmp_path_factory, app, name,
                                 lambda r: r["state"] == "panicked", f"{app} to panic", 0.5):
        yield inst, _dump(inst, tmp_path_factory, name)


def auto_core(tmp_path_factory, app: str, name: str):
    """(instance, `unik ls --json` row) once the mux took `app`'s core
    itself after the panic."""
    yield from _booted_until(tmp_path_factory, app, name, lambda r: r.get("core"),
                             f"{app}'s automatic core", 0.25)


def live_core(tmp_path_factory, app: str, name: str):
    """(instance, core) of a running `app` dumped with `unik dump`."""
    with booted(app, state=tmp_path_factory.mktemp("state"), name=name) as inst:
        yield inst, _dump(inst, tmp_path_factory, name)


@pytest.fixture(scope="module")
def null_core(tmp_path_factory):
    """crash-null after its NULL write, dumped."""
    yield from panicked_core(tmp_path_factory, "crash-null", "cn")
