"""The HTTP application (kernel/apps/http) on lwIP, in real QEMU, through
a forwarded host port: curl against every route and error case, raw
sockets for what curl will not send (bad lengths, bad methods, oversized
heads, pipelining, partial reads), keep-alive, the slow-request and idle
timeouts, 1,000 connections opened and closed with nothing leaked, and
unpredictable TCP initial sequence numbers (read from lwIP's PCBs).

One instance serves the whole module (--mem 8M, the size the app is built
for; short timeouts so the timeout tests are quick).  Fails (never skips)
when QEMU or curl is missing.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from instances import booted, unik, wait_until
from introspect.netopts import free_port

IDLE_MS, REQ_MS = 4000, 1500


def booted_http(tmp_path_factory, append: str, hold: bool = False):
    """The http app booted as "web" (8M, -append `append`) on a free host
    port (.port), once it listens; hold: with a connection from the test
    held open (.client_port).  Also the web fixtures of test_netstat and
    test_sockets."""
    port = free_port()
    args = ["--port", f"{port}:80", "--mem", "8M", "--append", append]
    with booted("http", state=tmp_path_factory.mktemp("state"), name="web",
                boot_args=args) as inst:
        inst.port = port
        wait_until(lambda: "http: listening" in unik(inst.env, "log", "web").stdout, 30,
                   "the http app to listen")
        if not hold:
            yield inst
            return
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            inst.client_port = s.getsockname()[1]
            yield inst


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """The booted http instance; .url is its base URL, .port the host port."""
    if not shutil.which("curl"):
        pytest.fail("curl not found: `make test` installs it (apt-get install curl)")
    for inst in booted_http(tmp_path_factory, f"http.idle_ms={IDLE_MS} http.req_ms={REQ_MS}"):
        inst.url = f"http://127.0.0.1:{inst.port}"
        yield inst


def curl(web, *args) -> tuple[int, dict, bytes]:
    """curl ARGS (paths relative to the instance): status, headers, body."""
    argv = ["curl", "-sS", "-i", "--max-time", "10"]
    argv += [f"{web.url}{a}" if a.startswith("/") else a for a in args]
    r = subprocess.run(argv, capture_output=True, timeout=20)
    assert r.returncode == 0, f"{argv}: {r.stderr.decode()}"
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def raw(web, data: bytes, *, pieces: int = 1, gap: float = 0.0, timeout: float = 10.0) -> bytes:
    """Send data (in `pieces` parts, `gap` s apart) on a fresh connection;
    everything received until the server closes (fails on a hang)."""
    s = socket.create_connection(("127.0.0.1", web.port), timeout=timeout)
    step = max(1, -(-len(data) // pieces))
    for i in range(0, len(data), step):
        s.sendall(data[i:i + step])
        time.sleep(gap)
    out = bytearray()
    t0 = time.monotonic()
    try:
        while chunk := s.recv(65536):
            out += chunk
    except socket.timeout:
        raise AssertionError(f"server hung: no close {timeout}s after {data[:80]!r}; "
                             f"got {bytes(out)!r}") from None
    finally:
        s.close()
    assert time.monotonic() - t0 < timeout
    return bytes(out)


def responses(data: bytes) -> list[tuple[int, dict, bytes]]:
    """Split a byte stream of responses (each with Content-Length)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"truncated response head: {data!r}"
        lines = head.decode().split("\r\n")
        hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(hdrs["content-length"])
        out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        data = rest[n:]
    return out


def stats(web) -> dict:
    st, h, body = curl(web, "/stats")
    assert st == 200 and h["content-type"] == "application/json"
    return json.loads(body)


# ------------------------------------------------------------ routes (curl)

def test_health(web):
    st, h, body = curl(web, "/")
    assert (st, body) == (200, b"ok\n") and h["connection"] == "keep-alive"


def test_kv_lifecycle(web):
    """PUT creates then replaces, GET returns the exact bytes, DELETE
    removes, then GET and DELETE are 404."""
    value = bytes(range(256)) * 16                       # 4096 bytes, binary
    steps = [
        (["-X", "PUT", "--data-binary", "v1", "/kv/life"], 201, b"created\n"),
        (["-X", "PUT", "--data-binary", "@-", "/kv/life"], 200, b"replaced\n"),
        (["/kv/life"], 200, value),
        (["-X", "DELETE", "/kv/life"], 204, b""),
        (["/kv/life"], 404, b"error: no such key\n"),
        (["-X", "DELETE", "/kv/life"], 404, b"error: no such key\n"),
    ]
    for args, want, body in steps:
        if "@-" in args:
            argv = ["curl", "-sS", "-i", "--max-time", "10", "-X", "PUT", "--data-binary", "@-",
                    f"{web.url}/kv/life"]
            r = subprocess.run(argv, input=value, capture_output=True, timeout=20)
            got = responses(r.stdout)[0]
        else:
            got = curl(web, *args)
        assert (got[0], got[2]) == (want, body), f"curl {args}: {got[0]} {got[2][:60]!r}"


def test_kv_empty_value_and_key_charset(web):
    assert curl(web, "-X", "PUT", "--data-binary", "", "/kv/e.m-p_t~y")[0] == 201
    assert curl(web, "/kv/e.m-p_t~y")[:3:2] == (200, b"")
    assert curl(web, "-X", "PUT", "--data-binary", "x", "/kv/" + "k" * 64)[0] == 201


@pytest.mark.parametrize("args,status,reason", [
    (["-X", "PUT", "--data-binary", "x", "/kv/" + "k" * 65], 400, b"bad key"),
    (["-X", "PUT", "--data-binary", "x", "/kv/a%20b"], 400, b"bad key"),
    (["/kv/"], 400, b"bad key"),
    (["-X", "PUT", "--data-binary", "x" * 4097, "/kv/big"], 413, b"body too large"),
    (["/nope"], 404, b"no such route"),
    (["/kv"], 404, b"no such route"),
    (["-X", "POST", "/"], 405, b"method not allowed on /"),
    (["-X", "DELETE", "/stats"], 405, b"method not allowed on /stats"),
    (["-X", "POST", "--data-binary", "x", "/kv/a"], 405, b"method not allowed on /kv"),
    (["-X", "BREW", "/"], 405, b"method not allowed"),
    (["-H", "Transfer-Encoding: chunked", "-X", "PUT", "--data-binary", "x", "/kv/c"], 411,
     b"Transfer-Encoding"),
])
def test_errors_with_curl(web, args, status, reason):
    st, h, body = curl(web, *args)
    assert st == status and body.startswith(b"error: ") and reason in body, (st, body)
    if status == 405:
        assert "GET" in h["allow"]


def test_expect_100_continue(web):
    """A client that asks before sending its body (Expect: 100-continue, as
    curl does for large bodies) is told 100 Continue at once instead of
    waiting out its own timeout."""
    r = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", "-X", "PUT", "--data-binary",
                        "@-", "-H", "Expect: 100-continue", f"{web.url}/kv/cont"], input=b"c" * 3000, capture_output=True,
                       timeout=20)
    assert r.returncode == 0 and b"< HTTP/1.1 100 Continue" in r.stderr, r.stderr
    assert curl(web, "/kv/cont")[2] == b"c" * 3000


def test_http10_closes(web):
    st, h, _ = curl(web, "--http1.0", "/")
    assert st == 200 and h["connection"] == "close"


def test_stats_counts_by_route_and_status(web):
    s0 = stats(web)
    curl(web, "/kv/never-there")
    curl(web, "/")
    curl(web, "/nope")
    s1 = stats(web)
    assert s1["requests"] == s0["requests"] + 4       # three + this /stats
    assert s1["routes"]["/kv"].get("404", 0) == s0["routes"]["/kv"].get("404", 0) + 1
    assert s1["routes"]["/"]["200"] == s0["routes"]["/"]["200"] + 1
    assert s1["routes"]["other"]["404"] == s0["routes"]["other"].get("404", 0) + 1
    assert s1["routes"]["/stats"]["200"] == s0["routes"]["/stats"]["200"] + 1


# ------------------------------------------------------------ bad requests (raw)

H = b"Host: t\r\n"


@pytest.mark.parametrize("req,status,reason", [
    (b"GET / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400, b"Content-Length"),
    (b"GET / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, b"Content-Length"),
    (b"GET / HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400, b"Content-Length"),
    (b"PUT /kv/a HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     b"two different"),
    (b"PUT /kv/a HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999\r\n\r\n", 413,
     b"too large"),
    (b"PUT /kv/a HTTP/1.1\r\n" + H + b"\r\n", 411, b"Content-Length"),
    (b"get / HTTP/1.1\r\n" + H + b"\r\n", 400, b"bad method"),
    (b"G@T / HTTP/1.1\r\n" + H + b"\r\n", 400, b"bad method"),
    (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400, b"bad request target"),
    (b"GET http://x/ HTTP/1.1\r\n" + H + b"\r\n", 400, b"bad request target"),
    (b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, b"version"),
    (b"GET / HTTP/1.1x\r\n" + H + b"\r\n", 400, b"HTTP version"),
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Host"),
    (b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400, b"Host"),
    (b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n", 400, b"bad header field"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", 400, b"bad header field"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n folded\r\n\r\n", 400, b"folding"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400, b"control character"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, b"bare CR"),
    (b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(40)) + b"\r\n",
     431, b"too many header fields"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n", 431, b"too large"),
    (b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 5000, 431, b"too large"),
    (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, b"too long"),
    (b"GET /" + b"a" * 2000, 414, b"too long"),
])
def test_bad_request_answered_and_closed(web, req, status, reason):
    """Every malformed request gets its 4xx (505 for a version) with a
    reason, then the server closes: never a hang, never a 2xx."""
    got = responses(raw(web, req))
    assert len(got) == 1, got
    st, h, body = got[0]
    assert st == status and reason in body and h["connection"] == "close", (st, body)


# ------------------------------------------------------------ keep-alive, pipelining

def test_keepalive_reuses_one_connection(web):
    s0 = stats(web)["connections"]["accepted"]
    r = subprocess.run(["curl", "-sS", "-v", "--max-time", "10", f"{web.url}/", f"{web.url}/",
                        f"{web.url}/stats"], capture_output=True, timeout=20)
    assert r.returncode == 0 and r.stderr.count(b"Re-using existing connection") == 2, r.stderr
    assert json.loads(r.stdout.split(b"ok\n")[-1])["connections"]["accepted"] == s0 + 1


PIPELINE = (b"PUT /kv/pipe HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello"
            b"GET /kv/pipe HTTP/1.1\r\n" + H + b"\r\n"
            b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"
            b"DELETE /kv/pipe HTTP/1.1\r\n" + H + b"\r\n"
            b"GET /kv/pipe HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
PIPELINE_WANT = [(201, b"created\n"), (200, b"hello"), (200, b"ok\n"), (204, b""),
                 (404, b"error: no such key\n")]


@pytest.mark.parametrize("pieces,gap", [(1, 0.0), (13, 0.02), (len(PIPELINE), 0.0)],
                         ids=["one-send", "13-pieces", "byte-by-byte"])
def test_pipelined_and_partial(web, pieces, gap):
    """Five requests in one stream, answered in order whatever the reads'
    boundaries (one send, pieces, single bytes)."""
    got = responses(raw(web, PIPELINE, pieces=pieces, gap=gap))
    assert [(st, body) for st, _, body in got] == PIPELINE_WANT


def test_many_pipelined_requests_fill_send_buffer(web):
    """200 pipelined GETs of a 4 KiB value: the answers (800 KiB) exceed
    the send buffer, so the server parks the rest until it drains."""
    curl(web, "-X", "PUT", "--data-binary", "v" * 4096, "/kv/big4k")
    req = b"GET /kv/big4k HTTP/1.1\r\n" + H + b"\r\n"
    got = responses(raw(web, req * 199 + req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")))
    assert len(got) == 200 and all(st == 200 and body == b"v" * 4096 for st, _, body in got)


# ------------------------------------------------------------ timeouts

def test_slow_request_gets_408(web):
    s = socket.create_connection(("127.0.0.1", web.port), timeout=REQ_MS / 1000 + 5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")          # never finished
    t0 = time.monotonic()
    data = s.recv(4096)
    while (more := s.recv(4096)):
        data += more
    s.close()
    (st, _, body), = responses(data)
    assert st == 408 and b"not complete in time" in body
    assert REQ_MS / 1000 - 0.5 < time.monotonic() - t0 < REQ_MS / 1000 + 2


def test_idle_connection_closed(web):
    s = socket.create_connection(("127.0.0.1", web.port), timeout=IDLE_MS / 1000 + 5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    t0 = time.monotonic()
    assert responses(s.recv(4096))[0][0] == 200
    assert s.recv(4096) == b""                            # closed by the server
    s.close()
    assert IDLE_MS / 1000 - 0.5 < time.monotonic() - t0 < IDLE_MS / 1000 + 2


# ------------------------------------------------------------ load, leaks, ISN

LWIP_POOLS = ("TCP_PCB", "NETCONN", "TCP_SEG", "PBUF_POOL", "PBUF", "TCPIP_MSG_INPKT",
              "TCPIP_MSG_API")


def lwip_usage(web) -> dict:
    """lwIP's pools and heap in use, and its PCBs by list (active ones and
    those in TIME_WAIT, which linger 2 MSL by design), read live through
    DWARF."""
    script = ("import json\n"
              f"d = {{n: int(prog['memp_stats_' + n].used) for n in {LWIP_POOLS!r}}}\n"
              "d['mem'] = int(prog['lwip_stats'].mem.used)\n"
              "for lst in ('tcp_active_pcbs', 'tcp_tw_pcbs'):\n"
              "    p, d[lst] = prog[lst], 0\n"
              "    while int(p):\n"
              "        d[lst] += 1\n"
              "        p = p.next\n"
              "print(json.dumps(d))\n")
    d = json.loads(unik(web.env, "py", "web", "-c", script).stdout)
    assert d["TCP_PCB"] == d["tcp_active_pcbs"] + d["tcp_tw_pcbs"], d   # listeners: own pool
    return d


def without_tw(d: dict) -> dict:
    """lwip_usage less what TIME_WAIT PCBs account for."""
    return {k: v for k, v in d.items() if k not in ("TCP_PCB", "tcp_tw_pcbs")}


def diagnosis(web) -> str:
    """The server's and lwIP's view, for a failure message."""
    script = ("p = prog['tcp_active_pcbs']\n"
              "while int(p):\n"
              "    print('pcb', int(p.state), int(p.local_port), int(p.remote_port), "
              "int(p.snd_queuelen), int(p.nrtx))\n"
              "    p = p.next\n"
              "for c in prog['srv_conns']:\n"
              "    if int(c.fd) >= 0: print('conn', c.value_())\n"
              "print(prog['net_stats'].value_())\n"
              "print(prog['lwip_stats'].tcp.value_())\n"
              "print(prog['tcp_listen_pcbs'].listen_pcbs.value_())\n")
    out = unik(web.env, "py", "web", "-c", script, check=False)
    ps = unik(web.env, "ps", "web", check=False)
    return out.stdout + out.stderr + ps.stdout


def heap_usage(web) -> tuple:
    """`unik mem`: heap bytes and objects in use by class, and pages in use
    other than those the heap keeps for its classes (it keeps what a burst
    made it take: a high-water mark, not a leak)."""
    m = json.loads(unik(web.env, "mem", "web", "--json").stdout)
    pages = m["pages_total"] - m["pages_free"] - m["heap_bytes_total"] // m["page_size"]
    return m["heap_bytes_used"], tuple((c["size"], c["in_use"]) for c in m["classes"]), pages


def test_1000_connections_leak_nothing(web):
    """1,000 connections, 20 rounds of 50 held open at once (each makes a
    keep-alive request, then the client closes them all): afterwards the
    kernel heap, the free pages, lwIP's pools and heap and the server's
    open count are what they were.  Connections are opened one after the
    other: QEMU's slirp listens for the forwarded port with a backlog of 1,
    so a burst of connects waits out the host's SYN retransmissions."""
    stats(web)                                            # settle lazy allocations
    wait_until(lambda: lwip_usage(web)["tcp_active_pcbs"] == 0, 15, "earlier connections to end")
    heap0, lwip0, open0 = heap_usage(web), without_tw(lwip_usage(web)), stats(web)["connections"]
    req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(20):
        socks = []
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", web.port), timeout=20)
            socks.append(s)
            s.sendall(req)
            try:
                assert s.recv(4096).endswith(b"ok\n")
            except TimeoutError:
                raise AssertionError(f"no answer in 20 s on {s.getsockname()}\n"
                                     f"{diagnosis(web)}") from None
        assert stats(web)["connections"]["open"] == open0["open"] + 50
        for s in socks:
            s.close()
    wait_until(lambda: lwip_usage(web)["tcp_active_pcbs"] == 0, 15, "the server's PCBs to be freed")
    after = stats(web)["connections"]
    assert after["accepted"] - open0["accepted"] == 1000 + 20 + 1 and after["rejected"] == 0
    assert after["open"] == open0["open"]
    assert without_tw(lwip_usage(web)) == lwip0
    assert heap_usage(web) == heap0


def test_isn_unpredictable(web):
    """RFC 6528 ISNs (LWIP_HOOK_TCP_ISN): 16 connections made back to back
    have distinct ISNs whose successive differences are spread over the
    32-bit space; lwIP's default (iss += tcp_ticks) would step each by the
    tick count, a few thousand at most."""
    socks = []
    for _ in range(16):                                   # slirp's listen backlog is 1
        socks.append(socket.create_connection(("127.0.0.1", web.port), timeout=10))
        time.sleep(0.05)
    try:
        wait_until(lambda: lwip_usage(web)["tcp_active_pcbs"] == 16, 30, "16 established PCBs")
        script = ("p = prog['tcp_active_pcbs']\nout = []\n"
                  "while int(p):\n"
                  "    out.append((int(p.local_port), int(p.lastack) - 1))\n"
                  "    p = p.next\n"
                  "print(' '.join(str(i) for port, i in out if port == 80))\n")
        isns = [int(x) % 2**32 for x in unik(web.env, "py", "web", "-c", script).stdout.split()]
    finally:
        for s in socks:
            s.close()
    assert len(isns) == 16 and len(set(isns)) == 16, isns
    isns.reverse()                                        # lwIP pushes new PCBs first
    steps = [(b - a) % 2**32 for a, b in zip(isns, isns[1:])]
    small = [d for d in steps if d < 2**24 or d > 2**32 - 2**24]
    assert len(small) <= 2, f"predictable ISN steps {steps}"


def test_port_reuse_after_server_close(web):
    """Behind slirp every client is 10.0.2.2:<its host port>.  A connection
    the server closed first leaves that 4-tuple in TIME_WAIT in the guest;
    a new connection from the same host port must still be served (the
    TIME_WAIT PCB is recycled for its SYN, net_tw_recycled counts it), not
    hang for 2 MSL."""
    def from_port(port: int) -> bytes:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.settimeout(15)
        s.connect(("127.0.0.1", web.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        s.close()
        return out

    def recycled() -> int:
        return int(unik(web.env, "py", "web", "-c", "print(int(prog['net_tw_recycled']))").stdout)

    port, n0 = free_port(), recycled()
    assert from_port(port).endswith(b"ok\n")
    time.sleep(0.5)               # slirp forgets the old connection (its own race)
    t0 = time.monotonic()
    assert from_port(port).endswith(b"ok\n")
    assert time.monotonic() - t0 < 3 and recycled() == n0 + 1      # no SYN retransmission waited


def test_bad_net_config_refused(booted_instance):
    """A malformed net.ip= is refused with one log line naming it; the app
    says it has no network and the kernel keeps answering the channel."""
    inst = booted_instance("http", name="badip", boot_args=["--append", "net.ip=10.0.2/99"])
    def gave_up():
        text = unik(inst.env, "log", "badip").stdout
        return text if "http: no network" in text else None
    log = wait_until(gave_up, 30, "the app to give up")
    assert "net: bad net.ip=10.0.2/99 (want A.B.C.D or A.B.C.D/N)" in log
    assert "http: listening" not in log
