"""`unik trace` end to end under QEMU: the CLI as a subprocess against one
booted demo instance (module fixture, always stopped).  BEGIN/END scripts
are deterministic and compared exactly; scripts on sched/mem probes and
ticks are checked for their shape.  Also: -l/-lv, -n's default action,
--json, --duration, Ctrl-C (aggregations printed, sites restored to the
ELF's bytes), FILE.d with #! and pragmas, ERROR with the script's
line:col, and bad input as caret errors (exit 2, never a traceback)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import build_kernel, require_qemu
from introspect import instance
from introspect.client import wait_ready
from introspect.elfinfo import build_id

ROOT = Path(__file__).resolve().parent.parent
UNIK = str(Path(sys.executable).with_name("unik"))
HEADER = "CPU     ID                    FUNCTION:NAME\n"
NAME = "e2e"


def _sigdfl():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    require_qemu()
    elf = build_kernel("demo")
    base = tmp_path_factory.mktemp("unik-e2e")
    inst = instance.boot(app="demo", kernel=elf, build_id=build_id(elf), name=NAME,
                         mux=True, base=base)
    try:
        wait_ready(inst, 60)
        yield {**os.environ, "UNIK_STATE_DIR": str(base), "PYTHONPATH": str(ROOT)}
    finally:
        instance.stop(inst)


def unik(env, *args, timeout=60):
    return subprocess.run([UNIK, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_sigdfl)


def trace(env, *args, timeout=60):
    return unik(env, "trace", NAME, *args, timeout=timeout)


def no_traceback(r):
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


# ------------------------------------------------------------ deterministic
def test_hello_and_exit_code(env):
    r = trace(env, "-e", 'BEGIN { printf("hello %d\\n", 42); exit(3); }')
    assert r.returncode == 3, r.stderr
    assert r.stdout == HEADER + "  0      1                           :BEGIN hello 42\n\n\n"
    assert r.stderr == "unik: program matched 1 probe\n"


def test_quiet_printf_strings_casts_and_formats(env):
    src = ('BEGIN { s = "hello"; t = strjoin(s, " world"); '
           'printf("%s|%d|%s|%s|%d|%d\\n", t, strlen(t), substr(t, 1, 4), strstr(t, "wor"), '
           's == "hello", s < "abc"); '
           'printf("[%5s][%-5s][%.3s][%c][%x][%X][%o][%u][%5.2d][%p][%-4d]\\n", "ab", "ab", '
           '"abcdef", 65, 255, 255, 8, -1, 7, 4096, 3); '
           'printf("%d %d %d %d\\n", (uint8_t)257, (int8_t)255, sizeof(uint32_t), '
           '(uint64_t)1 << 40); exit(0); }')
    r = trace(env, "-q", "-e", src)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("hello world|11|ello|world|1|0\n"
                        "[   ab][ab   ][abc][A][ff][FF][10][4294967295][   07][0x1000][3   ]\n"
                        "1 -1 4 1099511627776\n\n")
    assert r.stderr == ""


def test_self_this_and_tuple_keyed_assoc_arrays(env):
    src = ('BEGIN { self->n = 5; this->x = 2; a["k", 1] = 10; a["k", 2] = 20; a["k", 1] += '
           'this->x; } BEGIN { printf("%d %d %d %d\\n", self->n, a["k", 1], a["k", 2], '
           'a["j", 1]); exit(0); }')
    r = trace(env, "-q", "-e", src)
    assert (r.returncode, r.stdout) == (0, "5 12 20 0\n\n"), r.stderr


def test_every_aggregation_printed_as_dtrace(env):
    src = ('BEGIN { @c["a"] = count(); @c["a"] = count(); @c["b"] = count(); '
           '@s = sum(5); @s = sum(7); @q = quantize(1); @q = quantize(1000); '
           '@q = quantize(1000); @q = quantize(0); @l = lquantize(3, 0, 10, 2); '
           '@l = lquantize(12, 0, 10, 2); @mn = min(3); @mn = min(-2); @mx = max(9); '
           '@a = avg(4); @a = avg(7); @sd = stddev(2); @sd = stddev(4); @sd = stddev(9); '
           'exit(0); }')
    r = trace(env, "-q", "-e", src)
    assert r.returncode == 0, r.stderr
    dist = "           value  ------------- Distribution ------------- count    \n"
    assert r.stdout == (
        "\n@c\n"
        "  b                                                                 1\n"
        "  a                                                                 2\n"
        "\n@s\n               12\n"
        "\n@q\n\n" + dist +
        "              -1 |                                         0        \n"
        "               0 |@@@@@@@@@@                               1        \n"
        "               1 |@@@@@@@@@@                               1        \n"
        + "".join("%16d |                                         0        \n" % v
                  for v in (2, 4, 8, 16, 32, 64, 128, 256)) +
        "             512 |@@@@@@@@@@@@@@@@@@@@                     2        \n"
        "            1024 |                                         0        \n"
        "\n@l\n\n" + dist +
        "               0 |                                         0        \n"
        "               2 |@@@@@@@@@@@@@@@@@@@@                     1        \n"
        "               4 |                                         0        \n"
        "               6 |                                         0        \n"
        "               8 |                                         0        \n"
        "           >= 10 |@@@@@@@@@@@@@@@@@@@@                     1        \n"
        "\n@mn\n               -2\n"
        "\n@mx\n                9\n"
        "\n@a\n                5\n"
        "\n@sd\n                2\n")


def test_printa_format_trunc_clear_normalize(env):
    src = ('BEGIN { @c["x"] = sum(10); @c["y"] = sum(30); @c["z"] = sum(20); '
           '@t["p"] = count(); @t["q"] = count(); @t["q"] = count(); @k["w"] = count(); '
           '@n = sum(100); } '
           'END { printa("%s=%@d;", @c); printf("\\n"); trunc(@t, 1); clear(@k); '
           'normalize(@n, 10); }')
    r = trace(env, "-q", "--duration", "1", "-e", src)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("x=10;z=20;y=30;\n\n"
                        "@t\n  q                                                                 2\n"
                        "\n@k\n  w                                                                 0\n"
                        "\n@n\n               10\n")


def test_kernel_symbols_with_dwarf_types(env):
    src = ('BEGIN { printf("%s %s %d %a\\n", stringof(`sched_threads[0].name), '
           '`sched_threads[1].name, sizeof(`sched_threads[0]) == sizeof(struct thread), '
           '(uint64_t)&`sched_threads[1]); exit(0); }')
    r = trace(env, "-q", "-e", src)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"idle probe-chan 1 sched_threads\+0x[0-9a-f]+\n\n", r.stdout)


def test_fault_reports_the_script_position(env):
    r = trace(env, "--duration", "1", "-e", "BEGIN\n{\n  x = *(uint64_t *)0;\n}\n")
    assert r.returncode == 0 and r.stdout == "\n"
    assert r.stderr == ("unik: program matched 1 probe\n"
                        "unik: error on enabled probe ID 1 (dtrace:::BEGIN): "
                        "invalid address (0x0) at -e:3:7\n")
    r = trace(env, "-q", "-e", 'BEGIN { x = *(uint64_t *)16; } ERROR { printf("%d %d\\n", '
                               'arg4, arg5); exit(4); }')
    assert (r.returncode, r.stdout) == (4, "1 16\n\n")
    assert "invalid address (0x10) at -e:1:13" in r.stderr


def test_script_file_with_shebang_and_pragmas(env, tmp_path):
    f = tmp_path / "hello.d"
    f.write_text("#!/usr/bin/env unik trace\n#pragma D option quiet\n"
                 "#pragma D option bufsize=1m\n\nBEGIN\n{\n\tprintf(\"from a file\\n\");\n"
                 "\texit(7);\n}\n")
    r = trace(env, str(f))
    assert (r.returncode, r.stdout, r.stderr) == (7, "from a file\n\n", "")


# ------------------------------------------------------------ live probes
ROW = re.compile(r"  \S+ +\d+")


def test_sched_switch_count_by_thread(env):
    r = trace(env, "-q", "-e", "sched:::switch { @[thread] = count(); } tick-1s { exit(0); }")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "" and lines[-1] == "" and len(lines) > 3
    assert all(ROW.fullmatch(ln) for ln in lines[1:-1]), r.stdout
    counts = [int(ln.split()[-1]) for ln in lines[1:-1]]
    assert counts == sorted(counts) and "idle" in r.stdout


def test_quantize_of_allocation_sizes(env):
    r = trace(env, "-x", "bufsize=1m", "-e",
              'mem:::alloc { @["sizes"] = quantize(arg1); } tick-500ms { exit(0); }')
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[:3] == [HEADER.rstrip("\n"),
                       "%3d %6d %32s " % (0, 4, ":tick-500ms"), ""]
    assert out[3] == "  %-50s" % "sizes"
    assert out[4] == "           value  ------------- Distribution ------------- count    "
    assert all(re.fullmatch(r" +\d+ \|@* +\d+ +", ln) for ln in out[5:-2]), r.stdout
    assert out[-2:] == ["", ""] and len(out) > 8
    assert r.stderr == "unik: program matched 2 probes\n"


def test_typed_args_curthread_and_predicates(env):
    src = ('sched:::switch /args[0]->name != "" && tid >= 0/ { printf("%s|%s|%d\\n", '
           'args[0]->name, stringof(curthread->name), (uint64_t)curthread != 0); exit(0); }')
    r = trace(env, "-q", "-e", src)
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"[\w-]+\|[\w-]+\|1\n\n", r.stdout), r.stdout


def test_default_action_and_duration(env):
    t0 = time.monotonic()
    r = trace(env, "-n", "sched:::switch", "--duration", "1")
    assert r.returncode == 0 and time.monotonic() - t0 < 20
    lines = r.stdout.split("\n")
    assert lines[0] == HEADER.rstrip("\n") and lines[-2:] == ["", ""]
    assert len(lines) > 4 and all(
        re.fullmatch(r"  0 +\d+ +sched_run:switch ", ln) for ln in lines[1:-2]), r.stdout
    assert r.stderr == "unik: description 'sched:::switch' matched 1 probe\n"


def test_json_records_and_aggregations(env):
    r = trace(env, "--json", "-e", 'sched:::switch { @[thread] = count(); } '
                                   'BEGIN { printf("hi %d", 1); } tick-200ms { exit(2); }')
    assert r.returncode == 2, r.stderr
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert objs[0]["type"] == "printf" and objs[0]["text"] == "hi 1"
    assert objs[-2]["type"] == "exit" and objs[-2]["code"] == 2
    assert objs[-1]["type"] == "aggregation" and objs[-1]["func"] == "count"
    assert all(isinstance(e["value"], int) for e in objs[-1]["entries"])


def test_ctrl_c_prints_aggregations_and_restores_sites(env):
    p = subprocess.Popen([UNIK, "trace", NAME, "-q", "-e",
                          "sched:::switch { @[thread] = count(); } "
                          "mem:::alloc { @s = sum(arg1); }"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_sigdfl)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = unik(env, "sites", NAME)
            if "2 enabled" in s.stdout:
                break
            time.sleep(0.2)
        assert "2 enabled" in s.stdout, s.stdout + s.stderr
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert out.startswith("\n@\n") and "\n@s\n" in out and "idle" in out
    v = unik(env, "sites", NAME, "--verify")
    assert v.returncode == 0 and "0 enabled" in v.stdout
    assert "text matches the ELF" in v.stdout


# ------------------------------------------------------------ listing
def test_listing(env):
    r = trace(env, "-l")
    lines = r.stdout.splitlines()
    assert lines[0] == "%5s %10s %17s %33s %s" % ("ID", "PROVIDER", "MODULE", "FUNCTION", "NAME")
    assert lines[1] == "%5d %10s %17s %33s %s" % (1, "dtrace", "", "", "BEGIN")
    assert any(re.fullmatch(r" +\d+ +sched +sched +sched_run switch", ln) for ln in lines)
    # one instance runs: a lone positional that is not an instance is the pattern
    r = unik(env, "trace", "-l", "sched:::switch")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2 and r.stdout.rstrip().endswith("sched_run switch")
    r = unik(env, "trace", "-lv", "sched:::switch")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2:] == ["", "\tArgument Types", "\t\targs[0]: struct thread *prev",
                                         "\t\targs[1]: struct thread *next", ""]


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("src", [
    "BEGIN { @@@ }", "", "sched:::nosuch { }", "BEGIN { x = ; }", "\x01\xff{{{ }",
    "BEGIN { printf(\"%d\"); }", "tick-0s { }", "BEGIN { x = 1 / 0; }",
    "BEGIN { " + "(" * 500 + "1" + ")" * 500 + "; }",
])
def test_bad_scripts_are_caret_errors(env, src):
    r = trace(env, "-e", src)
    no_traceback(r)
    assert r.returncode == 2 and r.stdout == ""
    assert re.match(r"(-e:\d+:\d+: error: |error: -e: )", r.stderr), r.stderr


def test_bad_usage_and_files(env, tmp_path):
    f = tmp_path / "bin.d"
    f.write_bytes(bytes(range(256)) * 4)
    for args in ((str(f),), ("nosuch.d",), ("-x", "bufsize=64m", "-e", "BEGIN{}"),
                 ("-lv", "-e", "BEGIN{}"), ("--duration", "-1", "-e", "BEGIN{}")):
        r = trace(env, *args)
        no_traceback(r)
        assert r.returncode != 0 and r.stderr.startswith("unik: error: "), (args, r.stderr)
        assert "\nhint: " in r.stderr
