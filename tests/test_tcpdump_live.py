"""unik tcpdump on real traffic: the http app booted with QEMU user
networking and a forwarded port serves curl while `unik tcpdump`
captures at the netif (kernel/net/lwip/netif.c's tap), nothing injected.

* `-w FILE` during a PUT and a GET: `tshark -r` dissects the handshake,
  the HTTP requests (method, URI, Host) and the responses' status;
* three captures at once (first, so that the guest's ARP for the gateway
  falls in them), `tcp port 80`, `icmp` and `not tcp`, and an
  unfiltered `-w` capture of the same period, while curl, `unik ping` to
  the gateway 10.0.2.2 and whatever ARP lwIP does run: each filtered
  capture's lines equal, exactly, what the real `tcpdump -n -r` prints
  for the unfiltered pcap with the same filter (timestamps left out: each
  `unik tcpdump` maps kernel time to wall time itself).  Exact equality
  holds because the guest is otherwise silent: traffic starts after every
  capture listens and the captures stop after it has ended;
* the `-n` line of the HTTP request is tcpdump's own for that packet.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time

import pytest

from instances import booted, popen_unik, unik, wait_until
from test_http import free_port
from test_tcpdump_qemu import STAMP, listening, summary


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    for tool in ("curl", "tshark", "tcpdump"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: `make deps` installs it")
    port = free_port()
    with booted("http", state=tmp_path_factory.mktemp("state"), name="live",
                boot_args=["--port", f"{port}:80", "--mem", "8M"]) as inst:
        wait_until(lambda: "http: listening" in unik(inst.env, "log", "live").stdout, 30,
                   "the http app to listen")
        inst.host = f"127.0.0.1:{port}"
        yield inst


def curl(web, *args) -> bytes:
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def quiet(kids, seconds=1.0):
    """Wait until no capture has printed anything for `seconds` (the last
    ACK and FIN of a connection come after curl returns)."""
    def sizes():
        return [len(k.out) + len(k.err) for k in kids]
    last, since = sizes(), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.1)
        if sizes() != last:
            last, since = sizes(), time.monotonic()


def tcpdump_r(path, expr="", *flags) -> list[str]:
    r = subprocess.run(["tcpdump", "-n", *flags, "-r", str(path), *([expr] if expr else [])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [STAMP.sub("", ln) for ln in r.stdout.splitlines()]


def tshark(path, *fields, display=None) -> list[list[str]]:
    argv = ["tshark", "-r", str(path), "-T", "fields"]
    if display:
        argv += ["-Y", display]
    for f in fields:
        argv += ["-e", f]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [ln.split("\t") for ln in r.stdout.splitlines()]


def test_three_filters_at_once_equal_tcpdumps(web, tmp_path):
    exprs = ["tcp port 80", "icmp", "not tcp"]
    whole = tmp_path / "all.pcap"
    kids = [popen_unik(web.env, "tcpdump", "live", "-n", e) for e in exprs]
    kids.append(popen_unik(web.env, "tcpdump", "live", "-w", whole))
    try:
        for k in kids:
            listening(k)
        curl(web, f"http://{web.host}/")
        ping = unik(web.env, "ping", "live", "10.0.2.2", "-c", "3", "-i", "0.2")
        assert "3 received" in ping.stdout, ping.stdout
        curl(web, f"http://{web.host}/stats")
        quiet(kids)
        for k in kids:
            k.p.send_signal(signal.SIGINT)
        for k in kids:
            assert k.finish(timeout=15) == 0, k.err
    finally:
        for k in kids:
            k.kill()
    assert tcpdump_r(whole, "icmp") and tcpdump_r(whole, "tcp port 80")
    for e, k in zip(exprs, kids):
        want = tcpdump_r(whole, e)
        got = [STAMP.sub("", ln) for ln in k.out.splitlines()]
        assert got == want, e
        assert k.err.endswith(summary(len(want), len(want), 0)), (e, k.err)
    icmp = tcpdump_r(whole, "icmp")
    assert sum("ICMP echo request" in ln for ln in icmp) == 3
    assert sum("ICMP echo reply" in ln for ln in icmp) == 3
    # not tcp: the pings and the ARP exchange for the gateway (the guest's
    # first frame to it, when this test runs first on the instance), never
    # a TCP segment; and the two filters cover everything
    nontcp = tcpdump_r(whole, "not tcp")
    assert nontcp[:2] == ["ARP, Request who-has 10.0.2.2 tell 10.0.2.15, length 28",
                          "ARP, Reply 10.0.2.2 is-at 52:55:0a:00:02:02, length 50"], nontcp
    assert all(re.match(r"(IP 10\.0\.2\.\d+ > 10\.0\.2\.\d+: ICMP|ARP, )", ln) for ln in nontcp)
    assert len(tcpdump_r(whole)) == len(tcpdump_r(whole, "tcp port 80")) + len(nontcp)


def test_pcap_of_curl_requests_tshark_dissects(web, tmp_path):
    path = tmp_path / "http.pcap"
    cap = popen_unik(web.env, "tcpdump", "live", "-w", path)
    try:
        listening(cap)
        assert curl(web, "-X", "PUT", "--data-binary", "real traffic",
                    f"http://{web.host}/kv/pcap") == b"created\n"
        assert curl(web, f"http://{web.host}/kv/pcap") == b"real traffic"
        quiet([cap])
        assert cap.finish(signal.SIGINT) == 0, cap.err
    finally:
        cap.kill()
    reqs = tshark(path, "http.request.method", "http.request.uri", "http.host",
                  display="http.request")
    assert reqs == [["PUT", "/kv/pcap", web.host], ["GET", "/kv/pcap", web.host]]
    assert tshark(path, "http.response.code", "http.response.phrase",
                  display="http.response") == [["201", "Created"], ["200", "OK"]]
    # each connection's three-way handshake: SYN in, SYN-ACK out, ACK in
    rows = tshark(path, "tcp.stream", "ip.src", "tcp.flags.syn", "tcp.flags.ack",
                  display="tcp")
    for stream in ("0", "1"):
        first = [r[1:] for r in rows if r[0] == stream][:3]
        assert first == [["10.0.2.2", "1", "0"], ["10.0.2.15", "1", "1"],
                         ["10.0.2.2", "0", "1"]], (stream, first)
    # the body crossed in the PUT and came back in the GET's response
    assert tshark(path, "http.file_data", display='http.request.method == "PUT"') \
        == [["real traffic"]]
    n = len(tshark(path, "frame.number"))
    assert cap.err.endswith(summary(n, n, 0)), cap.err


def test_text_line_of_the_http_request_is_tcpdumps(web, tmp_path):
    whole = tmp_path / "req.pcap"
    text = popen_unik(web.env, "tcpdump", "live", "-n", "tcp port 80")
    pcap = popen_unik(web.env, "tcpdump", "live", "-w", whole, "tcp port 80")
    try:
        listening(text)
        listening(pcap)
        curl(web, "-H", "X-Probe: line", f"http://{web.host}/kv/nothing-here")
        quiet([text, pcap])
        for k in (text, pcap):
            assert k.finish(signal.SIGINT) == 0, k.err
    finally:
        text.kill()
        pcap.kill()
    lines = text.out.splitlines()
    assert all(STAMP.match(ln) for ln in lines)
    [req] = [ln for ln in lines if "HTTP: GET" in ln]
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{6} IP 10\.0\.2\.2\.\d+ > 10\.0\.2\.15\.80: "
                     r"Flags \[P\.\], seq 1:\d+, ack 1, win \d+, length \d+: "
                     r"HTTP: GET /kv/nothing-here HTTP/1\.1$", req), req
    [ref] = [ln for ln in tcpdump_r(whole) if "HTTP: GET" in ln]
    assert STAMP.sub("", req) == ref
    [resp] = [ln for ln in lines if "HTTP: HTTP/1.1" in ln]
    assert resp.endswith("HTTP: HTTP/1.1 404 Not Found"), resp
