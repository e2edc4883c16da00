"""The socket table (introspect/helpers/sockets.py) and the post-mortem
examples (examples/*.py, docs/postmortem.md), end to end over QEMU:
an http instance with a TCP connection the test holds open shows it
ESTABLISHED and the LISTEN socket on port 80, live and from `unik dump`'s
core (also in `unik core`); lock_holders.py names both threads of
crash-deadlock's automatic core; heap_by_class.py's totals match
`unik mem --json` on the same core; a kernel without lwIP gives a clear
line, not a traceback."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from instances import booted, ls, unik, wait_until
from test_http import booted_http

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A booted http instance (idle connections kept an hour) with a TCP
    connection from the test held open: (instance, client's port)."""
    yield from booted_http(tmp_path_factory, "http.idle_ms=3600000", hold=True)


def _table(inst, *where) -> list[dict]:
    """The socket table as JSON through `unik py`."""
    code = "import json; from introspect.helpers.sockets import sockets; " \
           "print(json.dumps(sockets(prog)))"
    return json.loads(unik(inst.env, "py", *where, "-c", code).stdout)


def _check(rows: list[dict], client_port: int) -> None:
    lis = [r for r in rows if r["state"] == "LISTEN"]
    assert [(r["proto"], r["local_port"], r["backlog"]) for r in lis] == [("tcp", 80, 32)]
    est = [r for r in rows if r["state"] == "ESTABLISHED"]
    assert len(est) == 1, rows
    e = est[0]
    # user networking keeps the host client's source port as the peer's
    assert (e["local_port"], e["remote_port"]) == (80, client_port)
    assert e["local"].endswith(":80") and e["remote"] == f"{e['remote_addr']}:{client_port}"
    assert e["snd_wnd"] > 0 and e["rcv_wnd"] > 0 and e["rto_ms"] % 500 == 0


def test_sockets_live_and_from_core(web, tmp_path):
    wait_until(lambda: any(r["state"] == "ESTABLISHED" for r in _table(web, "web")), 10,
               "the held connection to be ESTABLISHED")
    _check(_table(web, "web"), web.client_port)
    core = tmp_path / "web.core"
    unik(web.env, "dump", "web", "-o", str(core))
    _check(_table(web, "--core", str(core)), web.client_port)
    rep = json.loads(unik(web.env, "core", str(core), "--json").stdout)
    _check(rep["sockets"], web.client_port)
    text = unik(web.env, "core", str(core)).stdout
    assert re.search(rf"tcp +\S+:80 +\S+:{web.client_port} +ESTABLISHED +\d+/app ", text), text
    assert re.search(r"tcp +0\.0\.0\.0:80 +0\.0\.0\.0:\* +LISTEN +\d+/app +backlog 0/32", text), text
    # the owning thread, in the report's JSON as in netstat's
    assert {r["state"]: r["owner"]["name"] for r in rep["sockets"]
            if r["state"] in ("LISTEN", "ESTABLISHED")} == {"LISTEN": "app", "ESTABLISHED": "app"}


def test_close_wait_example(web):
    out = unik(web.env, "py", "web", str(EX / "close_wait.py")).stdout
    assert out == "no socket in CLOSE_WAIT\n"       # the held connection is ESTABLISHED
    out = unik(web.env, "py", "web", str(EX / "close_wait.py"), "--", "--state",
               "ESTABLISHED").stdout
    assert re.search(rf":80 +\S+:{web.client_port} +ESTABLISHED", out), out


@pytest.fixture(scope="module")
def deadlock(tmp_path_factory):
    """crash-deadlock once its mux took the automatic core: (instance, core)."""
    state = tmp_path_factory.mktemp("state")
    with booted("crash-deadlock", state=state, name="dl") as inst:
        wait_until(lambda: any(r["name"] == "dl" and r.get("core") for r in ls(inst.env)),
                   timeout=60, interval=0.25, what="crash-deadlock's automatic core")
        yield inst, next(r for r in ls(inst.env) if r["name"] == "dl")["core"]


def test_lock_holders_names_both_threads(deadlock):
    inst, core = deadlock
    out = unik(inst.env, "py", "--core", core, str(EX / "lock_holders.py")).stdout
    ab = re.search(r'thread (\d+) "dl-ab" waits on mutex:lock-b \(crash_deadlock_b\) '
                   r'held by thread (\d+) "dl-ba"', out)
    ba = re.search(r'thread (\d+) "dl-ba" waits on mutex:lock-a \(crash_deadlock_a\) '
                   r'held by thread (\d+) "dl-ab"', out)
    assert ab and ba, out
    assert ab[1] == ba[2] and ab[2] == ba[1]
    assert re.search(r'deadlock: thread \d+ "dl-\w+" -> thread \d+ "dl-\w+" -> '
                     r'thread \d+ "dl-\w+"', out), out


def test_heap_by_class_matches_mem(deadlock):
    inst, core = deadlock
    st = json.loads(unik(inst.env, "py", "--core", core, str(EX / "heap_by_class.py"),
                         "--", "--json").stdout)
    mem = json.loads(unik(inst.env, "mem", "--core", core, "--json").stdout)
    assert st["bytes_used"] == mem["heap_bytes_used"]
    assert st["bytes_total"] == mem["heap_bytes_total"]
    assert [(c["size"], c["in_use"], c["allocs"], c["frees"]) for c in st["classes"]] == \
        [(c["size"], c["in_use"], c["allocs"], c["frees"]) for c in mem["classes"]]
    text = unik(inst.env, "py", "--core", core, str(EX / "heap_by_class.py")).stdout
    small = sum(c["size"] * c["in_use"] for c in mem["classes"] if c["size"])
    assert f"small classes: {small} bytes" in text
    assert f"heap: {mem['heap_bytes_used']} of {mem['heap_bytes_total']} bytes" in text


def test_no_network_stack(deadlock):
    """crash-deadlock has no lwIP: an empty table, a clear line, no section."""
    inst, core = deadlock
    r = unik(inst.env, "py", "--core", core, str(EX / "close_wait.py"), check=False)
    assert r.returncode == 1 and r.stdout.startswith("no network stack in this kernel")
    assert "Traceback" not in r.stdout + r.stderr
    assert _table(inst, "--core", core) == []
    assert json.loads(unik(inst.env, "core", core, "--json").stdout)["sockets"] is None
