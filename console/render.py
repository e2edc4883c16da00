"""Plain-text rendering of what the commands show (pure: strings in, strings out).

Tables are laid out here, without rich, so `unik ps` starts fast and the
output is easy to test from fixed records.
"""
from __future__ import annotations

import time

# ------------------------------------------------------------ units

def fmt_bytes(n: int | float) -> str:
    """1536 -> '1.5K', 33554432 -> '32M' (binary units, like `free -h`)."""
    n = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            if unit == "B":
                return f"{int(n)}B"
            return f"{n:.1f}{unit}" if abs(n) < 10 and n != int(n) else f"{n:.0f}{unit}"
        n /= 1024
    return f"{n:.0f}T"


def fmt_duration(seconds: float) -> str:
    """Coarse uptime: '45s', '3m05s', '2h07m', '4d03h'."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_cputime(ns: int) -> str:
    """CPU time as M:SS.mmm (H:MM:SS past an hour)."""
    ms = int(ns // 1_000_000)
    s, ms = divmod(ms, 1000)
    m, s = divmod(s, 60)
    if m >= 60:
        h, m = divmod(m, 60)
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m}:{s:02d}.{ms:03d}"


def pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


# ------------------------------------------------------------ tables

def table(headers: list[str], rows: list[list], right: set[int] | None = None,
          sep: str = "  ") -> str:
    """Columns sized to their widest cell; columns in `right` right-aligned
    (default: every column whose cells are all numbers)."""
    cells = [[str(c) for c in r] for r in rows]
    if right is None:
        right = {i for i in range(len(headers))
                 if rows and all(isinstance(r[i], (int, float)) for r in rows)}
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(r):
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(r)]
        return sep.join(out).rstrip()
    return "\n".join([line(headers)] + [line(r) for r in cells])


# ------------------------------------------------------------ ls

def render_ls(insts: list[dict], now: float | None = None) -> str:
    """`unik ls` from Instance.to_json() records."""
    if not insts:
        return "no instances (start one with: unik boot --detach)"
    now = time.time() if now is None else now
    rows = []
    for i in insts:
        running = i.get("state") in ("running", "panicked")
        rows.append([i["name"], i.get("app", "?"), i.get("state", "?"),
                     i.get("qemu_pid") or "-" if running else "-",
                     i.get("mem", "?"),
                     fmt_duration(now - i["created"]) if running and i.get("created") else "-",
                     (i.get("build_id") or "-")[:12]])
    heads = ["NAME", "APP", "STATE", "PID", "MEM", "UPTIME", "BUILD-ID"]
    if any((i.get("boot") or {}).get("net", "none") != "none" for i in insts):
        from introspect.netopts import describe      # the network column, when any has one
        heads.append("NET")
        for r, i in zip(rows, insts):
            r.append(describe(i.get("boot") or {}))
    out = table(heads, rows, right={3})
    for i in insts:                 # the automatic core of a panicked instance
        if i.get("core"):
            out += f"\n{i['name']}: core {i['core']} ({i['crash'].get('reason', '?')})"
    return out


# ------------------------------------------------------------ ps

def thread_rows(head: dict, threads: list[dict], cpu_pct: dict | None = None) -> list[dict]:
    """Per-thread derived values: %CPU (since the thread started, or from
    `cpu_pct` tid -> percent; None when the uptime is unknown, as in a core
    without the kernel's clock), stack high-water mark as a percentage."""
    up = head.get("uptime_ns", 0)
    out = []
    for t in threads:
        r = dict(t)
        if t["tid"] in (cpu_pct or {}):
            r["cpu_pct"] = cpu_pct[t["tid"]]
        elif up is None:
            r["cpu_pct"] = None
        else:
            r["cpu_pct"] = pct(t["cpu_ns"], max(1, up - t.get("start_ns", 0)))
        r["hwm_pct"] = pct(t["stack_hwm"], t["stack_size"])
        kind = [k for bit, k in ((1, "svc"), (2, "app")) if t.get("flags", 0) & bit]
        r["kind"] = ",".join(kind) or "-"
        out.append(r)
    return out


PS_HEADERS = ["TID", "NAME", "STATE", "WCHAN", "%CPU", "TIME", "CSW", "STACK", "HWM%", "KIND"]


def render_ps(head: dict, threads: list[dict], cpu_pct: dict | None = None,
              sort: str = "tid", title: str | None = None) -> str:
    rows = thread_rows(head, threads, cpu_pct)
    if sort == "cpu":
        rows.sort(key=lambda r: (-(r["cpu_pct"] or 0), r["tid"]))
    else:
        rows.sort(key=lambda r: r["tid"])
    body = [[r["tid"], r["name"], r["state_name"] if "state_name" in r else r["state"],
             r["wchan"] or "-", "-" if r["cpu_pct"] is None else f"{r['cpu_pct']:.1f}",
             fmt_cputime(r["cpu_ns"]),
             r["switches"], fmt_bytes(r["stack_size"]), f"{r['hwm_pct']:.0f}", r["kind"]]
            for r in rows]
    up = head.get("uptime_ns", 0)
    top = title if title is not None else (
        f"{head.get('total', len(threads))} threads, up "
        f"{'?' if up is None else fmt_duration(up / 1e9)}"
        + (f" (showing {len(threads)})" if head.get("total", len(threads)) != len(threads) else ""))
    return (top + "\n" if top else "") + table(PS_HEADERS, body, right={0, 4, 5, 6, 7, 8})


def ps_title(head: dict, threads: list[dict]) -> str:
    """'5 threads, up 3s' ('up ?' when the uptime is unknown)."""
    n = head.get("total", len(threads))
    extra = f" (showing {len(threads)})" if n != len(threads) else ""
    up = head.get("uptime_ns", 0)
    return f"{n} threads{extra}, up {'?' if up is None else fmt_duration(up / 1e9)}"


# ------------------------------------------------------------ mem

def mem_summary(h: dict) -> dict:
    ps = h["page_size"] or 4096
    used = h["pages_total"] - h["pages_free"]
    return {"page_size": ps, "pages_total": h["pages_total"], "pages_used": used,
            "pages_free": h["pages_free"], "pages_kernel": h["pages_kernel"],
            "bytes_total": h["pages_total"] * ps, "bytes_used": used * ps,
            "bytes_free": h["pages_free"] * ps}


def render_mem(h: dict, classes: list[dict]) -> str:
    s = mem_summary(h)
    heap_free = h["heap_bytes_total"] - h["heap_bytes_used"]
    top = table(["", "total", "used", "free", "kernel"], [
        ["pages", s["pages_total"], s["pages_used"], s["pages_free"], s["pages_kernel"]],
        ["bytes", fmt_bytes(s["bytes_total"]), fmt_bytes(s["bytes_used"]),
         fmt_bytes(s["bytes_free"]), fmt_bytes(s["pages_kernel"] * s["page_size"])],
        ["heap", fmt_bytes(h["heap_bytes_total"]), fmt_bytes(h["heap_bytes_used"]),
         fmt_bytes(heap_free), "-"],
    ], right={1, 2, 3, 4})
    lines = [f"RAM {fmt_bytes(h['mem_total'])}, {fmt_bytes(s['page_size'])} pages", top,
             f"heap: {h['heap_allocs']} allocs, {h['heap_frees']} frees, "
             f"{h['heap_allocs'] - h['heap_frees']} live; "
             f"failures: heap {h['heap_failures']}, pages {h['page_failures']}"]
    if classes:
        rows = [["large" if c["size"] == 0 else c["size"], c["in_use"], c["allocs"],
                 c["frees"], c["failures"],
                 fmt_bytes(c["in_use"] * c["size"]) if c["size"] else "-"]
                for c in classes]
        lines += ["", table(["SIZE", "IN-USE", "ALLOCS", "FREES", "FAILS", "BYTES"], rows,
                            right={0, 1, 2, 3, 4, 5})]
    return "\n".join(lines)


# ------------------------------------------------------------ chanstat

def render_chanstat(k: dict, mux: dict | None = None) -> str:
    rej = {key[4:]: v for key, v in k.items() if key.startswith("rej_")}
    lines = ["kernel channel:",
             f"  frames  in {k['frames_in']}  out {k['frames_out']}  "
             f"(tx dropped {k['tx_dropped']})",
             f"  bytes   in {k['bytes_in']}  out {k['bytes_out']}  "
             f"(skipped resyncing {k['skipped_bytes']})",
             "  rejects " + "  ".join(f"{n} {v}" for n, v in rej.items()),
             f"  hosts   connects {k['connects']}  disconnects {k['disconnects']}"]
    if mux:
        lines += ["mux:",
                  f"  pid {mux['pid']}  up {fmt_duration(mux['uptime_ns'] / 1e9)}  "
                  f"clients {mux['clients']} now, {mux['clients_total']} ever",
                  f"  frames  up {mux['frames_up']}  down {mux['frames_down']}  "
                  f"broadcast {mux['frames_broadcast']}  dropped {mux['frames_dropped']}  "
                  f"local {mux['frames_local']}  pending {mux['pending']}"]
    return "\n".join(lines)


# ------------------------------------------------------------ memory dump

def hexdump(addr: int, data: bytes, width: int = 16) -> str:
    out = []
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        hx = " ".join(f"{b:02x}" for b in chunk)
        half = width // 2 * 3
        if len(chunk) > width // 2:
            hx = hx[:half] + " " + hx[half:]
        txt = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{addr + off:016x}  {hx:<{width * 3}}  |{txt}|")
    return "\n".join(out)


# ------------------------------------------------------------ info

def render_info(inst: dict, hello: dict | None, status: str | None) -> str:
    rows = [("name", inst["name"]), ("app", inst.get("app")), ("state", inst.get("state")),
            ("qemu", f"pid {inst.get('qemu_pid')}" + (f", {status}" if status else "")),
            ("mux", f"pid {inst.get('mux_pid')}" if inst.get("mux_pid") else "-"),
            ("kernel", inst.get("kernel_src") or inst.get("kernel")),
            ("image", inst.get("kernel")), ("build-id", inst.get("build_id") or "-"),
            ("mem", inst.get("mem")), ("accel", inst.get("accel")),
            ("dir", inst.get("dir"))]
    if hello:
        rows += [("kernel says", f"{hello['kernel']} app {hello['app']}, "
                                 f"protocol {hello['version']}"),
                 ("uptime", fmt_duration(hello["uptime_ns"] / 1e9)),
                 ("threads", hello["nthreads"]), ("ram", fmt_bytes(hello["mem_kib"] * 1024)),
                 ("tsc", f"{hello['tsc_hz'] / 1e6:.1f} MHz")]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
