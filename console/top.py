"""`unik-top` / `unik top`: a live view of threads (by CPU use) and memory.

Three separate parts:
  * collecting — `Collector.sample()` asks the kernel for THREADS and MEMSTAT;
  * throttling — `Throttle` decides when the next sample is due (pure);
  * drawing — `draw(cur, prev)` builds a rich renderable from two samples
    (pure), `frame_text` renders it on a fixed-width capture console, which
    is what `--once` prints and what the tests check.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from .render import fmt_bytes, fmt_cputime, fmt_duration, mem_summary, pct, thread_rows


# ------------------------------------------------------------ collecting

@dataclass
class Sample:
    name: str
    host_t: float                 # host monotonic seconds when taken
    head: dict                    # THREADS head (uptime_ns)
    threads: list
    mem: dict                     # MEMSTAT head
    classes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"instance": self.name, "uptime_ns": self.head["uptime_ns"],
                "threads": self.threads, "mem": self.mem, "classes": self.classes}


class Collector:
    def __init__(self, ch) -> None:
        self.ch = ch

    def sample(self) -> Sample:
        head, threads = self.ch.threads()
        mem, classes = self.ch.memstat()
        return Sample(self.ch.name, time.monotonic(), head, threads, mem, classes)


# ------------------------------------------------------------ throttling

@dataclass
class Throttle:
    """Samples at most every `interval` seconds, never catching up bursts."""
    interval: float = 1.0
    last: float | None = None

    def due(self, now: float) -> bool:
        return self.last is None or now - self.last >= self.interval

    def wait(self, now: float) -> float:
        """Seconds until the next sample is due."""
        return 0.0 if self.last is None else max(0.0, self.last + self.interval - now)

    def mark(self, now: float) -> None:
        self.last = now


# ------------------------------------------------------------ drawing

def cpu_deltas(prev: Sample | None, cur: Sample) -> dict:
    """tid -> %CPU over the interval between the two samples (kernel time);
    since the thread started when there is no previous sample."""
    if prev is None:
        return {r["tid"]: r["cpu_pct"] for r in thread_rows(cur.head, cur.threads)}
    dt = cur.head["uptime_ns"] - prev.head["uptime_ns"]
    before = {t["tid"]: t["cpu_ns"] for t in prev.threads}
    out = {}
    for t in cur.threads:
        d = t["cpu_ns"] - before.get(t["tid"], 0)
        out[t["tid"]] = pct(max(0, d), dt) if dt > 0 else 0.0
    return out


def draw(cur: Sample, prev: Sample | None = None):
    """The frame as a rich renderable (pure)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    cpu = cpu_deltas(prev, cur)
    rows = thread_rows(cur.head, cur.threads, cpu)
    rows.sort(key=lambda r: (-r["cpu_pct"], r["tid"]))
    m = mem_summary(cur.mem)
    basis = "since start" if prev is None else \
        f"over {(cur.head['uptime_ns'] - prev.head['uptime_ns']) / 1e9:.1f}s"
    title = Text.assemble(
        ("unik-top ", "bold"), (cur.name, "bold cyan"),
        f"  up {fmt_duration(cur.head['uptime_ns'] / 1e9)}"
        f"  threads {cur.head.get('total', len(cur.threads))}"
        f"  %CPU {basis}")
    memline = Text(
        f"mem {fmt_bytes(m['bytes_used'])}/{fmt_bytes(m['bytes_total'])}"
        f" ({pct(m['pages_used'], m['pages_total']):.0f}%)"
        f"  heap {fmt_bytes(cur.mem['heap_bytes_used'])}/"
        f"{fmt_bytes(cur.mem['heap_bytes_total'])}"
        f"  allocs {cur.mem['heap_allocs']} frees {cur.mem['heap_frees']}"
        f" fails {cur.mem['heap_failures'] + cur.mem['page_failures']}")
    t = Table(box=None, pad_edge=False, header_style="bold reverse", expand=False)
    for col, just in (("TID", "right"), ("NAME", "left"), ("STATE", "left"),
                      ("WCHAN", "left"), ("%CPU", "right"), ("TIME", "right"),
                      ("CSW", "right"), ("STACK", "right"), ("HWM%", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for r in rows:
        style = "bold" if r["state_name"] == "running" else None
        hwm = f"{r['hwm_pct']:.0f}"
        t.add_row(str(r["tid"]), r["name"], r["state_name"], r["wchan"] or "-",
                  f"{r['cpu_pct']:.1f}", fmt_cputime(r["cpu_ns"]), str(r["switches"]),
                  fmt_bytes(r["stack_size"]),
                  Text(hwm, style="red" if r["hwm_pct"] >= 90 else ""), style=style)
    return Group(title, memline, Text(""), t)


def frame_text(cur: Sample, prev: Sample | None = None, width: int = 100,
               color: bool = False) -> str:
    """The frame rendered as text on a fixed-width console (pure)."""
    import io
    from rich.console import Console
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=color, color_system=None
                  if not color else "standard", legacy_windows=False)
    con.print(draw(cur, prev))
    return buf.getvalue()


# ------------------------------------------------------------ running

def run_top(ctx, name: str | None, *, once: bool = False, interval: float = 1.0,
            as_json: bool = False) -> int:
    from .registry import UsageError
    if interval <= 0:
        raise UsageError(f"bad --interval {interval:g}", "give a positive number of seconds")
    with ctx.channel(name=name) as ch:
        col = Collector(ch)
        if once:
            cur = col.sample()
            if as_json:
                ctx.json(cur.to_json())
            else:
                import shutil
                ctx.out.write(frame_text(cur, None, width=shutil.get_terminal_size((100, 24))[0]))
            return 0
        from rich.console import Console
        from rich.live import Live
        throttle, prev = Throttle(interval), None
        con = Console(file=ctx.out)
        try:
            with Live(console=con, auto_refresh=False, screen=False, transient=False) as live:
                while True:
                    now = time.monotonic()
                    if throttle.due(now):
                        cur = col.sample()
                        throttle.mark(now)
                        live.update(draw(cur, prev), refresh=True)
                        prev = cur
                    time.sleep(max(0.01, throttle.wait(time.monotonic())))
        except KeyboardInterrupt:
            return 0


def main(argv: list[str] | None = None) -> int:
    from .cli import main as cli_main
    return cli_main(["top", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
