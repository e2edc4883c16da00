"""The HTTP benchmark (introspect/httpbench.py, wrkout.py, httprows.py,
anchor.py).

- Pure: wrk 4.1's reports (real ones, captured from runs against the http
  app) parsed, units included; tcpdump's summary; the trace's count()
  aggregation; the rows built from a measurement, a run with errors
  making its row FAILED; the anchor's initramfs format and command line.
- QEMU smoke: every row measured for 1 s over 8 connections against a
  booted http app (no anchor: its download is a bench-time step), and the
  icount instance's instructions per request plain and traced; the rows'
  structure and the side tools' figures checked, never a rate or a time.

Fails (never skips) when QEMU or wrk is missing.
"""
from __future__ import annotations

import gzip
import json
import shutil

import pytest

from introspect import anchor, httprows, wrkout

WRK_OK = """\
Running 5s test @ http://127.0.0.1:18080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    17.52ms  109.21ms   1.68s    97.94%
    Req/Sec     5.92k     1.48k    9.19k    63.00%
  Latency Distribution
     50%    3.73ms
     75%    5.03ms
     90%    6.11ms
     99%  574.03ms
  58946 requests in 5.00s, 5.12MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
Requests/sec:  11781.37
Transfer/sec:      1.02MB
"""

WRK_404 = """\
Running 1s test @ http://127.0.0.1:18080/kv/missing
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   815.49us    1.16ms   9.64ms   88.54%
    Req/Sec     5.76k     3.25k   11.16k    72.73%
  Latency Distribution
     50%  297.00us
     75%    0.94ms
     90%    2.26ms
     99%    5.45ms
  6307 requests in 1.10s, 708.31KB read
  Non-2xx or 3xx responses: 6307
Requests/sec:   5732.41
Transfer/sec:    643.78KB
"""

WRK_CLEAN = """\
Running 1s test @ http://127.0.0.1:18080/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   668.71us    0.98ms   6.51ms   87.71%
    Req/Sec     5.74k     3.49k   10.69k    80.00%
  Latency Distribution
     50%  209.00us
     75%  675.00us
     90%    2.03ms
     99%    4.54ms
  5725 requests in 1.00s, 508.76KB read
Requests/sec:   5709.39
Transfer/sec:    507.38KB
"""


# ------------------------------------------------------------ pure parsing

@pytest.mark.parametrize("text,ms", [("3.73ms", 3.73), ("297.00us", 0.297), ("1.68s", 1680.0),
                                     ("2.00m", 120_000.0), (" 4.54ms ", 4.54)])
def test_parse_time_ms(text, ms):
    assert wrkout.parse_time_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("bad", ["", "3.73", "ms", "3.7 parsecs"])
def test_parse_time_ms_bad(bad):
    with pytest.raises(ValueError, match="not a wrk time"):
        wrkout.parse_time_ms(bad)


def test_parse_wrk_socket_errors():
    r = wrkout.parse_wrk(WRK_OK)
    assert (r["requests"], r["seconds"], r["rps"]) == (58946, 5.0, 11781.37)
    assert (r["threads"], r["connections"]) == (2, 64)
    assert r["latency_ms"] == pytest.approx({"50": 3.73, "75": 5.03, "90": 6.11, "99": 574.03})
    assert r["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 2}
    assert r["non2xx"] == 0 and r["errors"] == 2
    assert r["bytes"] == round(5.12 * 1024 ** 2)


def test_parse_wrk_non2xx_and_units():
    r = wrkout.parse_wrk(WRK_404)
    assert r["non2xx"] == 6307 and r["errors"] == 6307
    assert r["latency_ms"]["50"] == pytest.approx(0.297)
    assert r["seconds"] == pytest.approx(1.1) and r["bytes"] == round(708.31 * 1024)


def test_parse_wrk_clean():
    r = wrkout.parse_wrk(WRK_CLEAN)
    assert r["errors"] == 0 and r["socket_errors"]["timeout"] == 0
    assert r["latency_ms"]["99"] == pytest.approx(4.54) and r["requests"] == 5725


def test_parse_wrk_refuses_other_text():
    with pytest.raises(ValueError, match="not a wrk report"):
        wrkout.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
    no_latency = "\n".join(l for l in WRK_CLEAN.splitlines() if "%" not in l or "Latency" in l
                           or "Req/Sec" in l)
    with pytest.raises(ValueError, match="--latency"):
        wrkout.parse_wrk(no_latency)


def test_parse_capture():
    text = ("unik tcpdump: listening on hb eth0, link-type EN10MB (Ethernet), snapshot length "
            "262144 bytes\n23188 packets captured\n23190 packets received by filter\n"
            "2 packets dropped by kernel\n")
    assert wrkout.parse_capture(text) == {"captured": 23188, "received": 23190, "dropped": 2}
    assert wrkout.parse_capture("1 packet captured\n1 packet received by filter\n"
                                "0 packets dropped by kernel\n")["captured"] == 1
    with pytest.raises(ValueError, match="dropped"):
        wrkout.parse_capture("5 packets captured\n5 packets received by filter\n")


def test_trace_firings():
    agg = {"type": "aggregation", "name": "", "func": "count",
           "entries": [{"key": ["tcp_input"], "value": 7168},
                       {"key": ["tcp_output"], "value": 13553}]}
    text = "noise\n" + json.dumps(agg) + "\n" + json.dumps({"type": "end"}) + "\n"
    f = wrkout.trace_firings(text)
    assert f == {"total": 20721, "by_func": {"tcp_input": 7168, "tcp_output": 13553}}
    with pytest.raises(ValueError, match="count"):
        wrkout.trace_firings(json.dumps({"type": "end"}))


def test_median_ratio():
    assert wrkout.median([3, 1, 2]) == 2 and wrkout.ratio([9, 10, 11], [20, 19, 21]) == 0.5
    assert wrkout.ratio([1], []) == 0.0


# ------------------------------------------------------------ pure rows

def _run(rps, errors=0, side=None):
    r = wrkout.parse_wrk(WRK_CLEAN)
    r["rps"] = rps
    if errors:
        r["socket_errors"]["timeout"] = errors
        r["errors"] = errors
    if side is not None:
        r["side"] = side
    return r


def _measurement(trace_errors=0):
    cap = {"captured": 100, "received": 100, "dropped": 0}
    nom = {"captured": 0, "received": 0, "dropped": 0}
    mem = _run(1000)
    mem["memory"] = {"samples": 2, "pages_used": 178, "heap_used": 196220, "mem_total": 7994368,
                     "lwip_heap_max": 1552, "lwip_heap_avail": 196608, "lwip_heap_err": 0,
                     "pools": {"TCP_PCB": (8, 96, 0), "RAW_PCB": (0, 4, 0),
                               "PBUF_POOL": (19, 192, 1)}}
    return {"runs": {"plain": [_run(1000), _run(1200), _run(1100)],
                     "capture": [_run(900, side=cap)] * 3,
                     "nomatch": [_run(1050, side=nom)] * 3,
                     "trace": [_run(990, errors=trace_errors,
                                    side={"total": 57250, "by_func": {}})] * 3,
                     "anchor": [_run(500)] * 3},
            "memory": mem, "seconds": 10.0, "conns": 64, "rounds": 3,
            "iface": {"driver": {"tx_drop_ring": 0}, "netif": {"tx_ring_waits": 91}},
            "anchor": anchor.DESCRIPTION}


def test_build_rows():
    rows = httprows.build_rows(_measurement())
    assert [r["unit"] for r in rows] == ["req/s", "x", "x", "x", "KiB", "req/s"]
    for r in rows:
        assert set(r) >= {"name", "value", "unit", "detail", "target"} and "failed" not in r
    plain, cap, nom, tr, mem, anc = rows
    assert plain["value"] == 1100 and "91 waits for room, 0 ring-full drops" in plain["detail"]
    assert cap["value"] == pytest.approx(900 / 1100, abs=1e-3)
    assert "captured 100/100/100 packets" in cap["detail"] and "udp port 9" in nom["name"]
    assert tr["target"] == ">= 0.95" and tr["value"] == 0.9
    assert "57250/57250/57250 firings" in tr["detail"]
    assert mem["value"] == 712 and "TCP_PCB 8/96" in mem["detail"] and "RAW_PCB" not in mem["detail"]
    assert "PBUF_POOL 19/192 (1 failed)" in mem["detail"]
    assert "1 allocation failures" in mem["detail"]
    assert anc["value"] == 500 and "2.20x" in anc["detail"] and "nginx" in anc["name"]


def test_icount_row():
    m = _measurement()
    m["icount"] = {"plain": [15000.0, 14000.0], "trace": [20000.0, 19000.0],
                   "nomatch": [15500.0, 15300.0], "capture": [],
                   "trace/chan": [900.0, 1100.0]}
    rows = httprows.build_rows(m)
    ic = rows[-1]
    assert ic["unit"] == "instructions" and ic["value"] == 14500
    assert "trace 19,500 (0.744x, probe-chan 1,000)" in ic["detail"] and "nomatch 15,400" in ic["detail"]
    assert "capture" not in ic["detail"] and "`fbt::tcp_*` 0.744x" in ic["detail"]


def test_row_with_errors_is_failed_not_hidden():
    rows = httprows.build_rows(_measurement(trace_errors=3))
    tr = next(r for r in rows if "fbt" in r["name"])
    assert tr["failed"] is True and tr["detail"].startswith("FAILED: 9 errors (timeout 9)")
    assert tr["value"] == 0.9                  # the figure stays, marked
    assert not any(r.get("failed") for r in rows if r is not tr)


def test_failed_row_names_listen_overflows():
    m = _measurement(trace_errors=2)
    for r in m["runs"]["trace"]:
        r["listen_overflows"] = 5
    tr = next(r for r in httprows.build_rows(m) if "fbt" in r["name"])
    assert "15 SYNs dropped meanwhile" in tr["detail"] and "backlog of 1" in tr["detail"]


def test_anchor_that_could_not_boot_is_a_failed_row():
    m = _measurement()
    del m["runs"]["anchor"]
    m["anchor_error"] = "apt-get download nginx failed: 404"
    anc = httprows.build_rows(m)[-1]
    assert anc["failed"] and anc["detail"] == "FAILED: not measured: apt-get download nginx failed: 404"


def test_rows_without_optional_states():
    m = _measurement()
    m["runs"] = {"plain": m["runs"]["plain"]}
    m["memory"] = None
    assert [r["unit"] for r in httprows.build_rows(m)] == ["req/s"]


# ------------------------------------------------------------ the anchor (pure)

def _read_newc(data: bytes) -> dict:
    """A minimal newc reader: {name: (mode, data)}."""
    out, off = {}, 0
    while True:
        assert data[off:off + 6] == b"070701"
        f = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, nsize = f[1], f[6], f[11]
        name = data[off + 110:off + 110 + nsize - 1].decode()
        off = (off + 110 + nsize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, data[off:off + size])
        off = (off + size + 3) & ~3


def test_newc_round_trip():
    ents = [("bin", 0o40755, b""), ("/init", 0o100755, b"#!/bin/sh\necho hi\n"),
            ("bin/sh", 0o120777, b"busybox"), ("odd", 0o100644, b"x" * 5)]
    data = anchor.newc(ents)
    assert len(data) % 4 == 0
    got = _read_newc(data)
    assert got == {"bin": (0o40755, b""), "init": (0o100755, b"#!/bin/sh\necho hi\n"),
                   "bin/sh": (0o120777, b"busybox"), "odd": (0o100644, b"xxxxx")}
    assert gzip.decompress(gzip.compress(data)) == data


def test_anchor_argv():
    a = anchor.argv("vmlinuz", "initrd", 8123, "log")
    assert a[a.index("-M") + 1] == "microvm" and a[a.index("-accel") + 1] == "tcg"
    assert "user,id=n0,hostfwd=tcp:127.0.0.1:8123-:80" in a
    assert "virtio-net-device,netdev=n0" in a
    assert "nginx" in anchor.DESCRIPTION and "keepalive_requests" in anchor.NGINX_CONF


# ------------------------------------------------------------ QEMU smoke

def test_httpbench_smoke(tmp_path):
    """Every row but the anchor for 1 s over 8 connections: the structure,
    zero errors, the capture's and the trace's figures consistent."""
    from conftest import build_kernel, require_qemu
    from introspect import httpbench
    require_qemu()
    assert shutil.which("wrk"), "wrk is missing: apt-get install wrk (make deps)"
    build_kernel("http")
    m = httpbench.measure(tmp_path, seconds=1, conns=8, rounds=1, anchor=False)
    runs = m["runs"]
    assert set(runs) == {"plain", "capture", "nomatch", "trace"}
    for state, rs in runs.items():
        assert len(rs) == 1 and rs[0]["requests"] > 0, state
        assert rs[0]["errors"] == 0, (state, rs[0]["text"])
        assert rs[0]["connections"] == 8 and rs[0]["threads"] == 8
        assert rs[0]["listen_overflows"] >= 0
    cap, nom = runs["capture"][0]["side"], runs["nomatch"][0]["side"]
    # every request is at least its request and its response segment
    assert cap["captured"] >= 2 * runs["capture"][0]["requests"]
    assert cap["received"] == cap["captured"] + cap["dropped"]
    assert cap["pcap_bytes"] > 24
    assert nom["captured"] == 0 and nom["dropped"] == 0
    tr = runs["trace"][0]["side"]
    assert tr["by_func"].get("tcp_input", 0) >= runs["trace"][0]["requests"] / 8
    assert all(f.startswith("tcp_") for f in tr["by_func"])
    mem = m["memory"]["memory"]
    assert mem["samples"] == 2 and 0 < mem["pages_used"] * 4096 < mem["mem_total"]
    assert mem["pools"]["TCP_PCB"][0] >= 1
    # the transmit path waits for room and never counts a wait as a drop
    drv, glue = m["iface"]["driver"], m["iface"]["netif"]
    assert drv["tx_drop_ring"] == glue["tx_drop_dev"] == 0
    assert drv["tx_packets"] == glue["tx_frames"]
    m["icount"] = httpbench.guest_cost(tmp_path, 1, 8, 1, states=("plain", "trace"))
    assert len(m["icount"]["plain"]) == len(m["icount"]["trace"]) == 1
    assert m["icount"]["plain"][0] > 0 and m["icount"]["trace"][0] > 0
    assert 0 <= m["icount"]["trace/chan"][0] < m["icount"]["trace"][0]
    rows = httprows.build_rows(m)
    assert len(rows) == 6 and not any(r.get("failed") for r in rows)
    assert all(isinstance(r["value"], (int, float)) and r["value"] > 0 for r in rows)
