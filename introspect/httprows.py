"""The HTTP benchmark's rows from its measurements (pure: no I/O).

introspect/httpbench.py measures; build_rows turns its dict into
`unik bench` rows ({"name", "value", "unit", "detail", "target"}, plus
"failed": True on a row whose runs had errors, its detail then starting
with FAILED: an error is reported, never averaged away).
"""
from __future__ import annotations

from .wrkout import median, ratio

TRACE_TARGET = ">= 0.95"


def _row(name, value, unit, detail="", target=None, failed=False):
    r = {"name": name, "value": value, "unit": unit, "detail": detail, "target": target}
    if failed:
        r["failed"] = True
        r["detail"] = "FAILED: " + detail
    return r


def errors_text(runs: list[dict]) -> tuple[int, str]:
    """Total errors over the runs and what they were ('' when none)."""
    total = sum(r["errors"] for r in runs)
    if not total:
        return 0, ""
    kinds = {}
    for r in runs:
        for k, v in r["socket_errors"].items():
            kinds[k] = kinds.get(k, 0) + v
        kinds["non-2xx/3xx"] = kinds.get("non-2xx/3xx", 0) + r["non2xx"]
    what = ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
    ov = sum(r.get("listen_overflows", 0) for r in runs)
    why = (f", {ov} SYNs dropped meanwhile by full host accept queues (QEMU's "
           "forwarded port listens with a backlog of 1; wrk counts a connection "
           "still connecting after 2 s as a timeout)") if ov else ""
    return total, (f"{total} errors ({what}) over {sum(r['requests'] for r in runs)} "
                   f"requests{why}; ")


def latency_text(runs: list[dict]) -> str:
    p50 = median([r["latency_ms"]["50"] for r in runs])
    p99 = median([r["latency_ms"]["99"] for r in runs])
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"


def _rates(runs):
    return [r["rps"] for r in runs]


def _spread(runs) -> str:
    return "/".join(f"{r['rps']:.0f}" for r in runs)


def plain_row(m: dict) -> dict:
    runs = m["runs"]["plain"]
    n, errs = errors_text(runs)
    ifc = m.get("iface") or {}
    drv, glue = ifc.get("driver", {}), ifc.get("netif", {})
    ring = (f"; tx ring: {glue.get('tx_ring_waits', 0)} waits for room, "
            f"{drv.get('tx_drop_ring', 0)} ring-full drops" if drv else "")
    return _row(f"HTTP requests/s (wrk, {m['conns']} keep-alive connections, "
                f"{m['seconds']:g} s)", round(median(_rates(runs))), "req/s",
                f"{errs}TCG on this host, http app `--mem 8M`, user networking; median of "
                f"{len(runs)} ({_spread(runs)}); {latency_text(runs)}{ring}", failed=bool(n))


def capture_row(m: dict, state: str) -> dict:
    runs = m["runs"][state]
    n, errs = errors_text(runs)
    side = [r["side"] for r in runs]
    what = ("`unik tcpdump -w` capturing everything" if state == "capture" else
            "`unik tcpdump -w` with `udp port 9` (matches nothing: the cBPF check)")
    return _row(f"HTTP throughput with {what}", round(ratio(_rates(runs),
                _rates(m["runs"]["plain"])), 3), "x",
                f"{errs}req/s median {median(_rates(runs)):.0f} vs "
                f"{median(_rates(m['runs']['plain'])):.0f} without ({_spread(runs)}); "
                f"{latency_text(runs)}; captured "
                f"{'/'.join(str(s['captured']) for s in side)} packets, received by filter "
                f"{'/'.join(str(s['received']) for s in side)}, dropped by kernel "
                f"{'/'.join(str(s['dropped']) for s in side)}", failed=bool(n))


def trace_row(m: dict) -> dict:
    runs = m["runs"]["trace"]
    n, errs = errors_text(runs)
    fired = [r["side"]["total"] for r in runs]
    reqs = [r["requests"] for r in runs]
    per = median([f / q for f, q in zip(fired, reqs) if q])
    return _row("HTTP throughput with `fbt::tcp_*:entry { @[probefunc] = count(); }`",
                round(ratio(_rates(runs), _rates(m["runs"]["plain"])), 3), "x",
                f"{errs}req/s median {median(_rates(runs)):.0f} vs "
                f"{median(_rates(m['runs']['plain'])):.0f} without ({_spread(runs)}); "
                f"{latency_text(runs)}; {'/'.join(str(f) for f in fired)} firings "
                f"({per:.1f} per request) over lwIP's tcp_* functions", target=TRACE_TARGET,
                failed=bool(n))


def memory_row(m: dict) -> dict:
    mem = m["memory"]["memory"]
    pools = mem["pools"]
    hot = ", ".join(f"{k} {hi}/{av}" + (f" ({err} failed)" if err else "")
                    for k, (hi, av, err) in sorted(pools.items()) if hi or err)
    fails = sum(err for _, _, err in pools.values()) + mem.get("lwip_heap_err", 0)
    n, errs = errors_text([m["memory"]])
    return _row("HTTP guest memory under load", round(mem["pages_used"] * 4096 / 1024), "KiB",
                f"{errs}pages in use (highest of {mem['samples']} samples during a "
                f"{m['seconds']:g} s wrk run, {m['memory']['rps']:.0f} req/s) of "
                f"{mem['mem_total'] // 1024} KiB (`--mem 8M`); kernel heap {mem['heap_used']} B "
                f"in use; lwIP heap high-water {mem['lwip_heap_max']} of "
                f"{mem['lwip_heap_avail']} B; pool high-water/size: {hot}; "
                f"{fails} allocation failures", failed=bool(n))


def anchor_row(m: dict) -> dict:
    runs = m["runs"]["anchor"]
    n, errs = errors_text(runs)
    r = ratio(_rates(m["runs"]["plain"]), _rates(runs))
    return _row(f"anchor: {m['anchor']}", round(median(_rates(runs))), "req/s",
                f"{errs}the same wrk runs interleaved with the rows above ({_spread(runs)}); "
                f"{latency_text(runs)}; unik's http app does {r:.2f}x its req/s",
                failed=bool(n))


def icount_row(m: dict) -> dict:
    """Guest instructions per request, each state against plain."""
    ic = m["icount"]
    base = median(ic["plain"])

    def chan(s):
        c = ic.get(s + "/chan")
        return f", probe-chan {median(c):,.0f}" if c else ""
    parts = [f"{s} {median(v):,.0f} ({base / median(v):.3f}x{chan(s)})"
             for s, v in ic.items() if s != "plain" and "/" not in s and v]
    tr = ic.get("trace") or []
    return _row("guest instructions per HTTP request (icount)", round(base), "instructions",
                f"the http app's busy threads' CPU over wrk runs under -icount shift=0, "
                f"medians of {len(ic['plain'])}: plain {base:,.0f}; "
                + "; ".join(parts) + " (plain / state: the throughput ratio a guest-bound "
                "server would see, the host's load left out)"
                + (f"; `fbt::tcp_*` {base / median(tr):.3f}x against target >= 0.95"
                   if tr else ""))


def build_rows(m: dict) -> list[dict]:
    """Every row the measurements support, in the README's order."""
    out = [plain_row(m)]
    for s in ("capture", "nomatch"):
        if m["runs"].get(s):
            out.append(capture_row(m, s))
    if m["runs"].get("trace"):
        out.append(trace_row(m))
    if m.get("memory"):
        out.append(memory_row(m))
    if m["runs"].get("anchor"):
        out.append(anchor_row(m))
    elif m.get("anchor_error"):
        out.append(_row("anchor: nginx on Linux under the same QEMU", 0, "req/s",
                        f"not measured: {m['anchor_error']}", failed=True))
    if m.get("icount") and m["icount"].get("plain"):
        out.append(icount_row(m))
    return out
