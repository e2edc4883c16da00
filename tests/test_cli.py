"""The `unik` CLI: registry, one-line errors, exit statuses, commands on a
fake instance (tests/fakekernel.py stands in for the kernel)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from console import cli, registry
import fakekernel
from instances import wait_until
from introspect import instance as I

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def state(tmp_path, monkeypatch):
    d = tmp_path / "state"
    d.mkdir()
    monkeypatch.setenv("UNIK_STATE_DIR", str(d))
    return d


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, what):
    assert rc == 2
    lines = err.splitlines()
    assert lines[0].startswith("unik: error: ") and what in lines[0], err
    assert len(lines) == 2 and re.fullmatch(r"hint: \S.*", lines[1]), err   # always a hint


def test_registry_has_the_commands():
    names = set(registry.commands())
    assert {"boot", "build", "ls", "ps", "mem", "log", "stop", "shell", "x",
            "chanstat", "top", "info"} <= names
    for c in registry.primary():
        p = registry.make_parser(c, f"unik {c.name}")
        assert "--json" in p.format_help(), c.name


def test_registry_discovers_every_module():
    mods = {p.stem for p in (ROOT / "console" / "commands").glob("*.py")
            if not p.stem.startswith("_")}
    names = {c.run.__module__.rsplit(".", 1)[1] for c in registry.primary()}
    assert mods == names


def test_usage_and_help(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0 and "usage: unik COMMAND" in out and "ps" in out
    rc, out, _ = run(capsys, "ps", "--help")
    assert rc == 0 and "--json" in out
    rc, out, _ = run(capsys, "help", "mem")
    assert rc == 0 and "usage: unik mem" in out


@pytest.mark.parametrize("argv,what", [
    (["nosuch"], "unknown command 'nosuch'"),
    (["ps", "--bogus"], "unrecognized arguments"),
    (["ps"], "no instance is running"),
    (["ps", "ghost"], "no instance named 'ghost'"),
    (["boot", "--mem", "lots"], "bad memory size"),
    (["boot", "--app", "nosuch-app"], "unknown app"),
    (["boot", "--name", "a/b"], "bad instance name"),
    (["boot", "--timeout", "0"], "bad --timeout"),
    (["boot", "--kernel", "/no/such.elf"], "does not exist"),
    (["log", "--interval", "0"], "bad --interval"),
    (["x"], "the following arguments are required"),
    (["stop", "ghost"], "no instance named"),
    (["build", "--app", "nosuch-app"], "unknown app"),
    (["top", "--interval", "-1"], "bad --interval"),
])
def test_errors_are_one_line(capsys, state, argv, what):
    rc, out, err = run(capsys, *argv)
    assert_one_line_error(rc, err, what)


def test_internal_error_is_one_line(capsys, monkeypatch):
    def boom(*a):
        raise RuntimeError("kaboom")
    monkeypatch.setattr(cli, "dispatch", boom)
    monkeypatch.delenv("UNIK_DEBUG", raising=False)
    rc, out, err = run(capsys, "ls")
    assert_one_line_error(rc, err, "internal error: RuntimeError: kaboom")


def test_ls_empty(capsys, state):
    rc, out, _ = run(capsys, "ls", "--json")
    assert rc == 0 and json.loads(out) == []
    rc, out, _ = run(capsys, "ls")
    assert rc == 0 and "no instances" in out


def test_ps_imports_stay_light(state):
    code = ("import sys; from console.cli import main; main(['ps']); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'rich', 'prompt_toolkit', 'elftools', 'qemu', 'capstone', 'pygdbmi'}); "
            "print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "UNIK_STATE_DIR": str(state)})
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


# ------------------------------------------------------------ on a fake instance

@pytest.fixture
def fake(state):
    inst, proc = fakekernel.start_instance(state, "fake")
    yield inst
    proc.kill()
    proc.wait()
    I.stop(inst, timeout=1)


def test_commands_on_fake_instance(capsys, fake):
    rc, out, err = run(capsys, "ps")
    assert rc == 0, err
    assert "probe-chan" in out and "TID" in out
    rc, out, _ = run(capsys, "ps", "fake", "--json")
    d = json.loads(out)
    assert rc == 0 and [t["name"] for t in d["threads"]] == ["idle", "probe-chan", "worker"]
    rc, out, _ = run(capsys, "mem")
    assert rc == 0 and "RAM 32M" in out and "large" in out
    rc, out, _ = run(capsys, "mem", "--json")
    assert json.loads(out)["summary"]["pages_used"] == 1000
    rc, out, _ = run(capsys, "log")
    assert rc == 0 and "fake kernel booted" in out
    rc, out, _ = run(capsys, "log", "--json")
    assert json.loads(out)["text"].startswith("fake kernel booted")
    rc, out, _ = run(capsys, "chanstat", "--json")
    d = json.loads(out)
    assert d["kernel"]["frames_in"] >= 1 and d["mux"]["clients"] == 1
    rc, out, _ = run(capsys, "x", "0x100010", "4")
    assert rc == 0 and out.startswith("0000000000100010  10 11 12 13")
    rc, out, _ = run(capsys, "ls", "--json")
    assert [(i["name"], i["state"]) for i in json.loads(out)] == [("fake", "running")]


def test_memread_fault_is_one_line(capsys, fake):
    rc, out, err = run(capsys, "x", "0x10", "16")
    assert_one_line_error(rc, err, "MEMREAD failed: FAULT")


def test_x_bad_input(capsys, fake):
    rc, _, err = run(capsys, "x", "0x100000", "zero")
    assert_one_line_error(rc, err, "bad length")
    rc, _, err = run(capsys, "x", "no such!", "4")
    assert_one_line_error(rc, err, "bad address")
    rc, _, err = run(capsys, "x", "some_symbol", "4")
    assert_one_line_error(rc, err, "/nonexistent/kernel.elf")


def test_two_running_and_stale(capsys, state, fake):
    inst2, proc2 = fakekernel.start_instance(state, "fake-2")
    try:
        rc, _, err = run(capsys, "ps")
        assert_one_line_error(rc, err, "2 instances are running (fake, fake-2)")
        rc, out, _ = run(capsys, "ps", "fake-2")
        assert rc == 0 and "worker" in out
    finally:
        proc2.kill()
        proc2.wait()
    wait_until(lambda: not inst2.mux_running(), 5, "fake-2's mux to exit")
    rc, out, _ = run(capsys, "ls")
    assert "fake-2  fake  stale" in out
    rc, _, err = run(capsys, "ps", "fake-2")
    assert_one_line_error(rc, err, "instance fake-2 is not running (QEMU exited)")
    assert "unik stop fake-2" in err
    rc, out, _ = run(capsys, "stop", "fake-2")
    assert rc == 0 and "removed stale fake-2" in out
    assert not (state / "fake-2").exists()


def test_shell_plain(fake):
    script = "ps\nbogus\nhelp\nmem --json\nexit\nps\n"
    r = subprocess.run([sys.executable, "-m", "console.cli", "shell"], input=script,
                       capture_output=True, text=True, cwd=ROOT, timeout=30,
                       env={**os.environ})
    assert "probe-chan" in r.stdout
    assert "unik: error: unknown command 'bogus'" in r.stderr
    assert "built-ins:" in r.stdout
    assert '"pages_total": 8000' in r.stdout
    assert r.stdout.count("probe-chan") == 1         # nothing ran after exit


def test_top_once(capsys, fake):
    rc, out, err = run(capsys, "top", "--once")
    assert rc == 0, err
    assert "unik-top fake" in out and "probe-chan" in out
    rc, out, _ = run(capsys, "top", "--once", "--json")
    assert json.loads(out)["instance"] == "fake"


# ------------------------------------------------------------ boot/stop, fake QEMU

@pytest.fixture
def fake_qemu(tmp_path, monkeypatch, state):
    """UNIK_QEMU = a script that runs the fake kernel in QEMU's place, and a
    real (tiny) ELF with a build-id to boot."""
    import shutil
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed (apt-get install gcc)")
    script = tmp_path / "fake-qemu"
    script.write_text(f"#!/bin/sh\nexport PYTHONPATH={ROOT}\n"
                      f"exec {sys.executable} {fakekernel.__file__} --as-qemu \"$@\"\n")
    script.chmod(0o755)
    (tmp_path / "k.c").write_text("int main(void) { return 0; }\n")
    elf = tmp_path / "kernel.elf"
    subprocess.run(["gcc", "-Wl,--build-id=sha1", "-o", str(elf), str(tmp_path / "k.c")],
                   check=True)
    monkeypatch.setenv("UNIK_QEMU", str(script))
    return elf


def test_boot_detach_ps_stop(capsys, state, fake_qemu):
    from introspect.elfinfo import build_id
    rc, out, err = run(capsys, "boot", "--kernel", str(fake_qemu), "--app", "demo",
                       "--detach", "--timeout", "30")
    assert rc == 0, err
    name, _, pid, _, bid = out.split()
    assert name == "demo" and bid == build_id(fake_qemu)
    rc, out, err = run(capsys, "boot", "--kernel", str(fake_qemu), "--app", "demo",
                       "--detach", "--json")
    assert rc == 0 and json.loads(out)["name"] == "demo-2"
    d = json.loads((state / "demo" / "instance.json").read_text())
    assert d["kernel"] == str(state / "demo" / "kernel.elf")
    assert d["kernel_src"] == str(fake_qemu) and d["build_id"] == bid
    rc, out, _ = run(capsys, "ps", "demo")
    assert rc == 0 and "probe-chan" in out
    rc, _, err = run(capsys, "boot", "--kernel", str(fake_qemu), "--name", "demo",
                     "--detach")
    assert_one_line_error(rc, err, "taken by a running instance")
    rc, out, _ = run(capsys, "stop", "--all")
    assert rc == 0 and "stopped demo" in out and "stopped demo-2" in out
    assert not I.pid_alive(int(pid))
    assert I.list_instances() == []


def test_boot_rebuilt_kernel_mismatch_refused(capsys, state, fake_qemu, monkeypatch):
    """The kernel answers with another build-id than the booted image."""
    rc, out, err = run(capsys, "boot", "--kernel", str(fake_qemu), "--app", "x", "--detach")
    assert rc == 0, err
    inst = I.find()
    # pretend the record says otherwise, then make the mux re-handshake
    inst.build_id = "00" * 20
    inst.save()
    os.kill(inst.reload().mux_pid, 9)
    wait_until(lambda: not inst.mux_running(), 5, "the killed mux to let go of its lock")
    rc, _, err = run(capsys, "ps")
    assert_one_line_error(rc, err, "build-id mismatch")
    run(capsys, "stop")


@pytest.mark.parametrize("argv, core, command, words", [
    (["N", "s.py", "--opt", "x"], None, None, ["N", "s.py", "--opt", "x"]),
    (["N", "script", "-c", "1", "--core", "C"], None, None, ["N", "script", "-c", "1", "--core", "C"]),
    (["--core", "C", "s", "-v"], "C", None, ["s", "-v"]),
    (["--core=C", "s.py", "--kernel", "K"], "C", None, ["s.py", "--kernel", "K"]),
    (["N", "-c", "CODE", "a", "--b"], None, "CODE", ["N", "a", "--b"]),
    (["N", "-c", "CODE"], None, "CODE", ["N"]),
    (["N", "s.py", "--", "--state", "X"], None, None, ["N", "s.py", "--state", "X"]),   # the old way
    (["N", "--", "s.py", "--x"], None, None, ["N", "s.py", "--x"]),
    (["s.py", "--json"], None, None, ["s.py", "--json"]),             # a .py first: no NAME
])
def test_py_options_after_the_script_are_the_scripts(argv, core, command, words):
    """`unik py NAME SCRIPT --opt`: what follows the script is its own,
    unik's options before it are unik's."""
    cmd = registry.commands()["py"]
    args = cmd.parse(registry.make_parser(cmd, "unik py"), list(argv), registry.Context())
    assert (args.core, args.command, args.words) == (core, command, words)


def test_py_unknown_option_before_the_script_is_refused(capsys):
    rc, _, err = run(capsys, "py", "--nosuch", "N", "s.py")
    assert_one_line_error(rc, err, "unrecognized arguments: --nosuch")
