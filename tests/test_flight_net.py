"""The flight recorder's network events on real traffic: an http instance
behind QEMU user networking serves one curl request, and `unik events`
shows the frames (NET_RX / NET_TX, from kernel/net/lwip/netif.c) and the
server connection's TCP states in order (TCP_STATE, from
kernel/net/lwip/pcbwatch.c), named from lwIP's enum tcp_state in the
DWARF: CLOSED -> SYN_RCVD -> ESTABLISHED -> CLOSE_WAIT -> LAST_ACK ->
CLOSED, the listener's CLOSED -> LISTEN by the app thread; the same
events from a `unik dump` core."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from instances import booted, unik, wait_until
from test_http import free_port


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    if not shutil.which("curl"):
        pytest.fail("curl not found: `make test` installs it (apt-get install curl)")
    port = free_port()
    with booted("http", state=tmp_path_factory.mktemp("state"), name="fweb",
                boot_args=["--port", f"{port}:80", "--mem", "8M"]) as inst:
        wait_until(lambda: "http: listening" in unik(inst.env, "log", "fweb").stdout, 30,
                   "the http app to listen")
        inst.url = f"http://127.0.0.1:{port}/"
        yield inst


def _events(inst, *src) -> list[dict]:
    return json.loads(unik(inst.env, "events", *src, "-n", "0", "--json").stdout)["events"]


def _conn_states(evs, pcb) -> list[tuple[str, str, str]]:
    return [(e["old"], e["new"], e["thread"]) for e in evs
            if e["kind"] == "TCP_STATE" and e["a"] == pcb]


def _request(web) -> tuple[list[dict], int]:
    """One curl GET; the events once its connection is CLOSED, and its pcb."""
    before = _events(web, "fweb")
    seq0 = before[-1]["seq"] + 1 if before else 0
    r = subprocess.run(["curl", "-sS", "--max-time", "10", web.url], capture_output=True,
                       timeout=20)
    assert r.returncode == 0 and r.stdout == b"ok\n", r.stderr

    def closed():
        evs = [e for e in _events(web, "fweb") if e["seq"] >= seq0]
        opened = [e["a"] for e in evs if e["kind"] == "TCP_STATE" and e["new"] == "SYN_RCVD"]
        if opened and any(e["kind"] == "TCP_STATE" and e["a"] == opened[-1]
                          and e["new"] == "CLOSED" for e in evs):
            return evs, opened[-1]
        return None
    return wait_until(closed, 15, "the connection's TCP_STATE ... -> CLOSED event")


def test_listener_and_a_connection_in_order(web):
    evs, pcb = _request(web)
    states = _conn_states(evs, pcb)
    assert [(o, n) for o, n, _ in states] == [
        ("CLOSED", "SYN_RCVD"), ("SYN_RCVD", "ESTABLISHED"), ("ESTABLISHED", "CLOSE_WAIT"),
        ("CLOSE_WAIT", "LAST_ACK"), ("LAST_ACK", "CLOSED")], states
    # frames and the close by the application: tcpip sees segments, the app closes
    threads = {n: t for _o, n, t in states}
    assert threads["SYN_RCVD"] == threads["ESTABLISHED"] == threads["CLOSED"] == "tcpip"
    assert threads["LAST_ACK"] == "app"
    listen = [e for e in _events(web, "fweb") if e["kind"] == "TCP_STATE" and e["new"] == "LISTEN"]
    assert [(e["old"], e["thread"]) for e in listen] == [("CLOSED", "app")]
    assert listen[0]["text"] == f"pcb {listen[0]['a']:#x} CLOSED -> LISTEN"


def test_frames_between_the_transitions(web):
    """The SYN arrives before SYN_RCVD, the SYN-ACK leaves after it, the
    request arrives after SYN_RCVD (frames are recorded by the receive
    interrupt, so the handshake's last ACK and the request, back to back,
    may both come before the tcpip thread makes the PCB ESTABLISHED), the
    response leaves between ESTABLISHED and CLOSE_WAIT."""
    evs, pcb = _request(web)
    at = {e["new"]: i for i, e in enumerate(evs) if e["kind"] == "TCP_STATE" and e["a"] == pcb}
    net = [(i, e) for i, e in enumerate(evs) if e["kind"] in ("NET_RX", "NET_TX")]
    assert all(e["subsystem"] == "net" and e["a"] >= 42 for _, e in net)
    ip = [(i, e) for i, e in net if e["b"] == 0x0800]
    assert all(e["text"] == f"{e['a']} bytes IPv4" for _, e in ip)
    syn = [i for i, e in ip if e["kind"] == "NET_RX" and i < at["SYN_RCVD"]]
    assert syn, "no received frame before SYN_RCVD"
    assert any(e["kind"] == "NET_TX" and i > at["SYN_RCVD"] for i, e in ip)
    # the request (GET / HTTP/1.1 + curl's headers) in, the response out: more than bare headers
    assert any(e["kind"] == "NET_RX" and e["a"] > 54 + 40
               for i, e in ip if at["SYN_RCVD"] < i < at["CLOSE_WAIT"])
    assert any(e["kind"] == "NET_TX" and e["a"] > 54 + 40
               for i, e in ip if at["ESTABLISHED"] < i < at["CLOSE_WAIT"])


def test_from_a_core(web, tmp_path):
    evs, pcb = _request(web)
    core = tmp_path / "fweb.core"
    unik(web.env, "dump", "fweb", "-o", core)
    dead = _events(web, "--core", core)
    keys = ("seq", "kind", "a", "b", "c", "text")
    live = {tuple(e[k] for k in keys) for e in evs if e["subsystem"] == "net"}
    got = {tuple(e[k] for k in keys) for e in dead if e["subsystem"] == "net"}
    assert live <= got
    assert [(o, n) for o, n, _ in _conn_states(dead, pcb)][-1] == ("LAST_ACK", "CLOSED")
    text = unik(web.env, "events", "--core", core, "-n", "0").stdout
    assert f"net tcp-state pcb {pcb:#x} SYN_RCVD -> ESTABLISHED" in text


def test_pcbwatch_bench_rows(tmp_path):
    """`unik bench`'s PCB watch rows (introspect/pcbwatchbench.py, under
    -icount): the watch's cost per request is measured, grows with idle
    connections, and stays a small share of what a request costs."""
    from introspect import pcbwatchbench
    alone, idle = pcbwatchbench.rows(tmp_path, quick=True)
    assert alone["name"].endswith("its listener only") and alone["unit"] == "instructions"
    assert 0 < alone["value"] < idle["value"], (alone, idle)
    for r in (alone, idle):
        share = float(r["detail"].split(" %", 1)[0])
        assert 0 < share < 10, r
        assert "TCP_STATE events a request" in r["detail"]
