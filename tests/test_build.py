"""Kernel image paths, staleness and app discovery (on a fake tree)."""
import os
import time

import pytest

from introspect import build as B
from introspect.errors import BuildError


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    for app in ("demo", "crash-null"):
        (root / "kernel" / "apps" / app).mkdir(parents=True)
        (root / "kernel" / "apps" / app / "main.c").write_text("int x;\n")
    (root / "kernel" / "apps" / ".hidden").mkdir()
    (root / "introspect").mkdir()
    (root / "introspect" / "protocol.py").write_text("# spec\n")
    monkeypatch.setattr(B, "ROOT", root)
    monkeypatch.delenv("UNIK_BUILD_DIR", raising=False)
    old = time.time() - 100
    for dirpath, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(dirpath, f), (old, old))
    return root


def _touch(p, when=None):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("x")
    if when is not None:
        os.utime(p, (when, when))


def test_apps_and_paths(tree, monkeypatch):
    assert B.apps() == ["crash-null", "demo"]
    assert B.kernel_path("demo") == tree / "build" / "demo" / "kernel.elf"
    monkeypatch.setenv("UNIK_BUILD_DIR", str(tree / "elsewhere"))
    assert B.kernel_path("demo") == tree / "elsewhere" / "demo" / "kernel.elf"


def test_check_app(tree):
    B.check_app("demo")
    with pytest.raises(BuildError) as e:
        B.check_app("nope")
    assert "crash-null, demo" in e.value.hint


def test_needs_build(tree):
    elf = B.kernel_path("demo")
    assert B.needs_build("demo")                     # missing
    _touch(elf)
    assert not B.needs_build("demo")                 # newer than every source
    _touch(tree / "kernel" / "mm" / "heap.c", time.time() + 5)
    assert B.needs_build("demo")
    _touch(elf, time.time() + 10)
    assert not B.needs_build("demo")
    _touch(tree / "introspect" / "protocol.py", time.time() + 20)
    assert B.needs_build("demo")                     # the spec changed


def test_build_products_in_tree_do_not_count(tree):
    elf = B.kernel_path("demo")
    _touch(elf)
    future = time.time() + 50
    _touch(tree / "kernel" / "foo.o", future)
    _touch(tree / "kernel" / "build" / "x.c", future)
    _touch(tree / "kernel" / "__pycache__" / "y.pyc", future)
    assert not B.needs_build("demo")


def test_ensure_built_without_auto(tree):
    with pytest.raises(BuildError) as e:
        B.ensure_built("demo", auto=False)
    assert "unik build --app demo" in e.value.hint
    _touch(B.kernel_path("demo"))
    assert B.ensure_built("demo", auto=False) == B.kernel_path("demo")


def test_build_failure_is_a_build_error(tree, capsys):
    (tree / "kernel" / "Makefile").write_text("all:\n\t@echo broken; exit 3\n")
    with pytest.raises(BuildError) as e:
        B.build("demo")
    assert e.value.msg == "building app 'demo' failed (make exited with 2)"
    assert e.value.hint.startswith("see make's output above; command: make -C ")
    assert "broken" in capsys.readouterr().err


def test_build_success_quiet(tree, capsys):
    (tree / "kernel" / "Makefile").write_text(
        "all:\n\t@echo noisy; mkdir -p $(O) && touch $(O)/kernel.elf\n")
    assert B.build("demo") == B.kernel_path("demo")
    out, err = capsys.readouterr()
    assert "noisy" not in out + err


def test_resolve_kernel_explicit(tree, tmp_path):
    k = tmp_path / "my" / "kernel.elf"
    _touch(k)
    assert B.resolve_kernel(None, str(k)) == ("my", k)
    assert B.resolve_kernel("demo", str(k)) == ("demo", k)
