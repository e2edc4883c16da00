"""What the HTTP benchmark's tools print, parsed (pure: no I/O).

introspect/httpbench.py runs the tools and hands their output here:

  parse_wrk        wrk 4.1's report with --latency: requests, duration,
                   requests/s, the latency percentiles, socket errors and
                   non-2xx/3xx responses
  parse_capture    `unik tcpdump`'s closing summary (tcpdump's three lines)
  trace_firings    the count() aggregation `unik trace --json` prints at
                   the end: the firings, in total and by function
  median, ratio    the figures the rows quote

A report that is not wrk's raises ValueError naming what was missing.
"""
from __future__ import annotations

import json
import re
import statistics

# wrk's units (wrk's src/units.c): time as us/ms/s/m/h, sizes with B/KB/MB/GB.
_TIME_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME_RE = re.compile(r"^\s*([0-9.]+)\s*(us|ms|s|m|h)\s*$")
_REQS_RE = re.compile(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)([KMGT]?B) read",
                      re.M)
_RPS_RE = re.compile(r"^Requests/sec:\s*([0-9.]+)\s*$", re.M)
_SOCKERR_RE = re.compile(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), "
                         r"timeout (\d+)\s*$", re.M)
_NON2XX_RE = re.compile(r"^\s*Non-2xx or 3xx responses: (\d+)\s*$", re.M)
_PCT_RE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([0-9.]+\s*(?:us|ms|s|m|h))\s*$", re.M)
_HEAD_RE = re.compile(r"^\s*(\d+) threads and (\d+) connections", re.M)
_SIZE = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def parse_time_ms(text: str) -> float:
    """One of wrk's times ('3.73ms', '574.03us', '1.20s') in milliseconds."""
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError(f"not a wrk time: {text!r}")
    return float(m.group(1)) * _TIME_MS[m.group(2)]


def parse_wrk(text: str) -> dict:
    """wrk's report (run with --latency) as a dict:
    requests, seconds, rps, bytes, threads, connections, latency_ms
    {'50', '75', '90', '99'}, socket errors {connect, read, write,
    timeout}, non2xx, errors (the sum of all of them)."""
    m = _REQS_RE.search(text)
    rps = _RPS_RE.search(text)
    if not m or not rps:
        raise ValueError("not a wrk report: no 'N requests in T' and 'Requests/sec:' lines")
    pct = {p: parse_time_ms(t) for p, t in _PCT_RE.findall(text)}
    if "50" not in pct or "99" not in pct:
        raise ValueError("wrk report without its latency distribution: run wrk with --latency")
    se = _SOCKERR_RE.search(text)
    sock = dict(zip(("connect", "read", "write", "timeout"),
                    (int(x) for x in se.groups()))) if se else \
        {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    n2 = _NON2XX_RE.search(text)
    non2xx = int(n2.group(1)) if n2 else 0
    head = _HEAD_RE.search(text)
    return {"requests": int(m.group(1)),
            "seconds": parse_time_ms(m.group(2) + m.group(3)) / 1000,
            "bytes": round(float(m.group(4)) * _SIZE[m.group(5)]),
            "rps": float(rps.group(1)),
            "threads": int(head.group(1)) if head else None,
            "connections": int(head.group(2)) if head else None,
            "latency_ms": pct, "socket_errors": sock, "non2xx": non2xx,
            "errors": sum(sock.values()) + non2xx}


_CAPTURE_RE = {k: re.compile(rf"^(\d+) packets? {w}\s*$", re.M) for k, w in (
    ("captured", "captured"), ("received", "received by filter"),
    ("dropped", "dropped by kernel"))}


def parse_capture(text: str) -> dict:
    """`unik tcpdump`'s summary: {captured, received, dropped}."""
    out = {}
    for k, rx in _CAPTURE_RE.items():
        m = rx.search(text)
        if not m:
            raise ValueError(f"no 'packets {k}' line in unik tcpdump's summary")
        out[k] = int(m.group(1))
    return out


def trace_firings(text: str) -> dict:
    """The count() aggregation of `unik trace --json` (one JSON object a
    line): {'total': firings, 'by_func': {probefunc: count}}."""
    by = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        obj = json.loads(line)
        if obj.get("type") != "aggregation" or obj.get("func") != "count":
            continue
        for e in obj.get("entries", []):
            key = e["key"][0] if isinstance(e["key"], list) and e["key"] else str(e["key"])
            by[key] = by.get(key, 0) + int(e["value"])
    if not by:
        raise ValueError("no count() aggregation in unik trace's output")
    return {"total": sum(by.values()), "by_func": by}


def median(xs) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def ratio(with_, without) -> float:
    """median(with_) / median(without); 0.0 when there is no baseline."""
    base = median(without)
    return median(with_) / base if base else 0.0
