"""`unik netstat` over QEMU: an http instance with a TCP connection the
test holds open shows it ESTABLISHED beside the LISTEN socket on port 80;
-i counters move after an HTTP request; -s carries lwIP's counters; -r
the default route and the gateway's ARP entry; --json; --core on a `unik
dump` core gives the same table; a kernel without lwIP one clear line
and exit 1; bad options one line."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from instances import booted, unik, wait_until
from test_http import booted_http


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """An http instance (idle connections kept an hour: the held one must outlive the module under load) with a connection
    from the test held open: the instance, with .port and .client_port."""
    yield from booted_http(tmp_path_factory, "http.idle_ms=3600000", hold=True)


def _ns(inst, *a) -> dict:
    return json.loads(unik(inst.env, "netstat", *a, "--json").stdout)


def _established(inst) -> list[dict]:
    return [r for r in _ns(inst, "web", "-a")["sockets"] if r["state"] == "ESTABLISHED"]


def test_sockets_table(web):
    wait_until(lambda: _established(web), 10, "the held connection to be ESTABLISHED")
    text = unik(web.env, "netstat", "web", "-a").stdout
    lines = text.splitlines()
    assert lines[0] == "Active Internet connections (servers and established)"
    assert re.match(r"Proto Recv-Q Send-Q Local Address +Foreign Address +State +rtt +rto "
                    r"+retr +snd_wnd +rcv_wnd +cwnd +mss +bytes_acked +bytes_rcvd$", lines[1]), \
        lines[1]
    assert re.search(r"^tcp +0 +32 0\.0\.0\.0:80 +0\.0\.0\.0:\* +LISTEN$", text, re.M), text
    est = re.search(rf"^tcp +0 +0 10\.0\.2\.15:80 +10\.0\.2\.2:{web.client_port} +ESTABLISHED"
                    rf" +(\d+)/(\d+)ms +(\d+)ms +0 +(\d+) +(\d+) +(\d+) +1460 +0 +0$", text, re.M)
    assert est, text
    assert int(est[3]) % 500 == 0 and int(est[4]) > 0 and int(est[5]) > 0
    # without -a: connections only; -l: listeners only; -u: no UDP socket here
    plain = unik(web.env, "netstat", "web").stdout
    assert "ESTABLISHED" in plain and "LISTEN" not in plain
    lis = unik(web.env, "netstat", "web", "-l", "-t").stdout
    assert "LISTEN" in lis and "ESTABLISHED" not in lis
    assert _ns(web, "web", "-u", "-a")["sockets"] == []
    j = _ns(web, "web", "-a")
    assert j["instance"] == "web"
    [e] = [r for r in j["sockets"] if r["state"] == "ESTABLISHED"]
    assert (e["local_port"], e["remote_port"], e["recv_q"], e["send_q"]) == \
        (80, web.client_port, 0, 0)
    assert e["mss"] == 1460 and e["cwnd"] > 0 and e["rcv_wnd"] == 8 * 1460


def test_interface_counters_move(web):
    before = _ns(web, "web", "-i", "-s")
    with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/", timeout=10) as r:
        assert r.status == 200
    after = _ns(web, "web", "-i", "-s")
    [b], [a] = before["interfaces"], after["interfaces"]
    assert (a["name"], a["mtu"], a["addr"], a["mask"]) == ("en0", 1500, "10.0.2.15",
                                                           "255.255.255.0")
    for k in ("rx_packets", "tx_packets"):
        assert a[k] >= b[k] + 3, (k, b[k], a[k])         # SYN, request, ACKs, FIN...
    for k in ("rx_bytes", "tx_bytes"):
        assert a[k] > b[k] + 100, (k, b[k], a[k])
    sb, sa = before["statistics"], after["statistics"]
    assert sa["tcp"]["recv"] >= sb["tcp"]["recv"] + 3
    assert sa["tcp"]["xmit"] >= sb["tcp"]["xmit"] + 3
    assert sa["ip"]["recv"] >= sa["tcp"]["recv"] and sa["link"]["recv"] >= sa["ip"]["recv"]
    assert a["rx_errors"] == a["tx_errors"] == 0
    text = unik(web.env, "netstat", "web", "-i").stdout
    assert re.search(r"^en0 +1500 +\d+ +0 +0 +\d+ +0 +0 +UBR$", text, re.M), text
    assert "RX drops: 0 bad frame" in text and "en0: inet 10.0.2.15" in text


def test_statistics_text(web):
    st = _ns(web, "web", "-s")["statistics"]
    text = unik(web.env, "netstat", "web", "-s").stdout
    for title in ("Link:", "Arp:", "Ip:", "Icmp:", "Udp:", "Tcp:", "Memory:"):
        assert f"\n{title}\n" in f"\n{text}", title
    m = re.search(r"^Tcp:\n    (\d+) packets sent\n    (\d+) packets received", text, re.M)
    assert m and int(m[2]) >= st["tcp"]["recv"] > 0, text
    pools = {p["name"]: p for p in st["memp"]}
    assert pools["TCP_PCB_LISTEN"]["used"] == 1 and pools["TCP_PCB"]["used"] >= 1
    assert st["mem"]["avail"] > 0


def test_routes_and_arp(web):
    text = unik(web.env, "netstat", "web", "-r").stdout
    assert re.search(r"^0\.0\.0\.0 +10\.0\.2\.2 +0\.0\.0\.0 +UG +1500 en0$", text, re.M), text
    assert re.search(r"^10\.0\.2\.0 +0\.0\.0\.0 +255\.255\.255\.0 +U +1500 en0$", text, re.M)
    arp = _ns(web, "web", "-r")["arp"]
    gw = [e for e in arp if e["address"] == "10.0.2.2"]
    assert gw and gw[0]["mac"] == "52:55:0a:00:02:02" and gw[0]["state"] == "reachable"


def test_core_gives_the_same_table(web, tmp_path):
    wait_until(lambda: _established(web), 10, "the held connection")
    core = tmp_path / "web.core"
    unik(web.env, "dump", "web", "-o", str(core))
    keys = ("proto", "local", "remote", "state", "recv_q", "send_q", "mss", "rcv_wnd")
    live = sorted(tuple(r[k] for k in keys if k in r) for r in _ns(web, "web", "-a")["sockets"])
    dead = _ns(web, "--core", str(core), "-a")
    assert dead["core"] == str(core)
    assert sorted(tuple(r[k] for k in keys if k in r) for r in dead["sockets"]) == live
    text = unik(web.env, "netstat", "--core", str(core), "-a").stdout
    assert re.search(rf"10\.0\.2\.2:{web.client_port} +ESTABLISHED", text), text
    assert _ns(web, "--core", str(core), "-r")["routes"] == _ns(web, "web", "-r")["routes"]


def _tid(inst, name: str) -> int:
    ps = json.loads(unik(inst.env, "ps", "web", "--json").stdout)["threads"]
    [t] = [t for t in ps if t["name"] == name and t["state_name"] != "dead"]
    return t["tid"]


def test_bytes_acked_and_received(web):
    """ss -i's bytes_received and bytes_acked, from the sequence numbers
    against the bases the PCB watch keeps at the passive open: exactly the
    request's bytes in and the response's out, on a connection kept open;
    the connection the fixture holds has moved none."""
    import socket
    req = b"PUT /kv/bytes HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as s:
        s.sendall(req)
        resp = b""
        while b"\r\n\r\n" not in resp:
            resp += s.recv(4096)
        head, _, body = resp.partition(b"\r\n\r\n")
        n = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])
        while len(body) < n:
            body += s.recv(4096)
        port, out = s.getsockname()[1], len(head) + 4 + n

        def row():
            rows = [r for r in _ns(web, "web", "-a")["sockets"] if r.get("remote_port") == port]
            return rows[0] if rows and rows[0]["bytes_acked"] == out else None
        r = wait_until(row, 10, "the response to be acked")
        assert r["bytes_received"] == len(req)
        text = unik(web.env, "netstat", "web").stdout
        assert re.search(rf":{port} +ESTABLISHED .* {out} +{len(req)}$", text, re.M), text
    [held] = [r for r in _established(web) if r["remote_port"] == web.client_port]
    assert (held["bytes_received"], held["bytes_acked"]) == (0, 0)


def test_owner_column(web):
    """-p: the owning thread as tid/name, netstat -p's PID/Program name; the
    listener is the http app's (its one event-loop thread made it), the
    held connection too (lwIP made it from the listener; the app accepted
    it); --json has owner {tid, name} always; a core says the same."""
    wait_until(lambda: _established(web), 10, "the held connection")
    app = _tid(web, "app")
    rows = _ns(web, "web", "-a")["sockets"]
    assert {r["state"]: r["owner"] for r in rows if r["state"] != "TIME_WAIT"} == {
        "LISTEN": {"tid": app, "name": "app"}, "ESTABLISHED": {"tid": app, "name": "app"}}
    text = unik(web.env, "netstat", "web", "-a", "-p").stdout
    lines = text.splitlines()
    assert re.match(r"Proto Recv-Q Send-Q Local Address +Foreign Address +State +Thread +rtt ",
                    lines[1]), lines[1]
    assert re.search(rf"^tcp +0 +32 0\.0\.0\.0:80 +0\.0\.0\.0:\* +LISTEN +{app}/app$",
                     text, re.M), text
    assert re.search(rf":{web.client_port} +ESTABLISHED {app}/app +\d+/\d+ms ", text), text
    assert "Thread" not in unik(web.env, "netstat", "web", "-a").stdout


def test_owner_from_a_core(web, tmp_path):
    wait_until(lambda: _established(web), 10, "the held connection")
    core = tmp_path / "own.core"
    unik(web.env, "dump", "web", "-o", str(core))
    dead = {r["state"]: r["owner"] for r in _ns(web, "--core", str(core), "-a")["sockets"]
            if r["state"] != "TIME_WAIT"}       # an earlier test's closed connection
    app = _tid(web, "app")
    assert dead == {"LISTEN": {"tid": app, "name": "app"},
                    "ESTABLISHED": {"tid": app, "name": "app"}}


def test_raw_socket_owned_by_ping(web):
    """While `unik ping` runs, its raw ICMP pcb is listed (-w, netstat's
    raw sockets: protocol 1 in the port column) as the ping thread's; it
    is gone when the ping ends."""
    from instances import popen_unik
    import signal
    child = popen_unik(web.env, "ping", "web", "10.0.2.2", "-c", "600", "-i", "0.1")
    try:
        child.wait_for("icmp_seq=1 ", 30)
        pid = _tid(web, "ping")
        raw = [r for r in _ns(web, "web", "-w", "-a")["sockets"]]
        assert raw and [(r["proto"], r["local"], r["protocol"], r["owner"]) for r in raw] == \
            [("raw", "0.0.0.0:1", 1, {"tid": pid, "name": "ping"})]
        text = unik(web.env, "netstat", "web", "-w", "-l", "-p").stdout
        assert re.search(rf"^raw +0 +0 0\.0\.0\.0:1 +0\.0\.0\.0:\* +{pid}/ping$", text, re.M), text
        assert child.finish(signal.SIGINT, timeout=30) == 0, child.err
    finally:
        child.kill()
    wait_until(lambda: _ns(web, "web", "-w", "-a")["sockets"] == [], 10, "the raw pcb to go")


def test_bad_arguments(web):
    for argv, what in ((["web", "-l", "-a"], "-l and -a exclude each other"),
                       (["web", "--kernel", "x.elf"], "--kernel goes with --core"),
                       (["web", "--core", "nope.core"], "give an instance NAME or --core"),
                       (["web", "-x"], "unrecognized arguments: -x")):
        r = unik(web.env, "netstat", *argv, check=False)
        assert r.returncode == 2 and what in r.stderr, (argv, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == ""


def test_kernel_without_lwip(tmp_path):
    with booted("demo", state=tmp_path, name="plain") as inst:
        r = unik(inst.env, "netstat", "plain", check=False)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.startswith("unik netstat: no network stack in this kernel"), r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 2   # + hint


def test_select_like_netstat():
    """-t -u -l -a choose sockets as netstat does (pure)."""
    from types import SimpleNamespace as NS
    from console.commands.netstat import select
    rows = [{"proto": "tcp", "state": "LISTEN", "remote_port": 0},
            {"proto": "tcp", "state": "ESTABLISHED", "remote_port": 5},
            {"proto": "udp", "state": "", "remote_port": 0},
            {"proto": "udp", "state": "", "remote_port": 53}]

    def pick(**kw):
        a = NS(**{"tcp": False, "udp": False, "listening": False, "all": False, **kw})
        return [rows.index(r) for r in select(rows, a)]
    assert pick() == [1, 3]
    assert pick(listening=True) == [0, 2]
    assert pick(all=True) == [0, 1, 2, 3]
    assert pick(tcp=True, all=True) == [0, 1]
    assert pick(udp=True, listening=True) == [2]
