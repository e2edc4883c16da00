"""HTTP throughput of the `http` app with wrk, for `unik bench` (issue 7
§7 and issue 6 §4's last row); introspect/bench.py's run_all adds `rows`.

One instance of the http app, `--mem 8M`, QEMU user networking with a
host port forwarded to its port 80.  wrk (Debian's) runs from the host
over CONNS keep-alive connections (a wrk thread each, started 30 ms
apart: see STAGGER_LUA) for SECONDS, with --latency, against
`GET /`, in each of these states of the instance:

  plain     nothing attached
  capture   `unik tcpdump -w FILE` capturing everything
  nomatch   `unik tcpdump -w FILE udp port 9`: every packet goes through
            the kernel's cBPF check and none matches
  trace     `unik trace -e 'fbt::tcp_*:entry { @[probefunc] = count(); }'`
  anchor    not this instance: the same wrk run against a Linux guest under
            the same QEMU (TCG, user networking, hostfwd) serving a static
            page with busybox httpd (introspect/anchor.py)

Runs are interleaved (plain, capture, nomatch, trace, anchor, then again,
the order rotated each round) so that the load other work puts on a shared
machine falls on every state alike; each row quotes the median of the
rounds and its ratio to the plain median.  One more plain run samples the
guest's memory (`unik mem --json`, `unik netstat -s --json`) while loaded.
A run with any socket error or non-2xx/3xx response makes its row FAILED.

The side tools run as the operator runs them: the `unik` CLI in a child
process, stopped with SIGINT after the wrk run.  wrk's output is parsed by
introspect/wrkout.py (pure).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import build, instance, qemu, wrkout
from .client import wait_ready
from .elfinfo import build_id
from .errors import UnikError
from .netopts import free_port

CONNS = 64
SECONDS = 10.0
STAGGER_S = 0.03
# wrk opens all of a thread's connections at once, and QEMU's user network
# listens on the forwarded port with a backlog of 1: most of 64 SYNs at
# once overflow the host's accept queue and wait for a retransmission (1 s,
# then 3 s), and wrk counts a connection still connecting at its 2 s check
# as a timeout.  So each connection gets its own wrk thread, and the
# threads start STAGGER_S apart (wrk calls setup() for each thread just
# before starting it).
STAGGER_LUA = """\
-- unik httpbench: start wrk's threads (one connection each) %g s apart
function setup(thread)
  os.execute("sleep %g")
end
"""
TRACE_PROG = "fbt::tcp_*:entry { @[probefunc] = count(); }"
ARMED_CLAUSE = 'BEGIN { printf("armed\\n"); } '    # the session runs: fires once, at its start
NOMATCH = "udp port 9"
STATES = ("plain", "capture", "nomatch", "trace", "anchor")


def unik_cmd(*argv: str) -> list[str]:
    """The unik CLI as a child process (the venv's script, else -m)."""
    exe = Path(sys.executable).parent / "unik"
    return [str(exe), *argv] if exe.exists() else [sys.executable, "-m", "console.cli", *argv]


def _env(base: Path) -> dict:
    return dict(os.environ, UNIK_STATE_DIR=str(base))


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def listen_overflows() -> int:
    """The host's TcpExt ListenOverflows (SYNs dropped on a full accept
    queue, every socket of the host): read before and after each run."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:]))
            return int(d.get("ListenOverflows", 0))
    return 0


def run_wrk(url: str, seconds: float, conns: int) -> dict:
    """One wrk run (--latency; a thread per connection, started STAGGER_S
    apart), parsed; 'text' keeps wrk's report, 'listen_overflows' the
    host's accept-queue overflows meanwhile."""
    import shutil
    import tempfile
    from .errors import UnikError
    if not shutil.which("wrk"):
        raise UnikError("wrk is not installed", "apt-get install wrk (or `make deps`)")
    secs = max(1, round(seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="unik-wrk-") as lua:
        lua.write(STAGGER_LUA % (STAGGER_S, STAGGER_S))
        lua.flush()
        ov = listen_overflows()
        r = subprocess.run(["wrk", f"-t{conns}", f"-c{conns}", f"-d{secs}s", "--latency",
                            "--timeout", "5s", "-s", lua.name, url], capture_output=True,
                           text=True, timeout=secs + conns * STAGGER_S + 60)
        ov = listen_overflows() - ov
    if r.returncode != 0:
        raise UnikError(f"wrk failed (exit {r.returncode}): {r.stderr.strip()[:200]}",
                        f"is {url} answering? try curl {url}")
    out = wrkout.parse_wrk(r.stdout)
    out["text"] = r.stdout
    out["listen_overflows"] = ov
    return out


class Side:
    """A `unik tcpdump` or `unik trace` child running while wrk runs:
    started, waited for until `armed` appears in its output (the capture
    or the session is then running in the kernel), stopped with SIGINT,
    its output kept."""

    def __init__(self, argv: list[str], env: dict, armed: str, settle: float):
        self.argv, self.env, self.armed, self.settle = argv, env, armed, settle
        self.out = self.err = ""

    def __enter__(self):
        self.errf = open(self._tmp("err"), "w+")
        self.outf = open(self._tmp("out"), "w+")
        self.p = subprocess.Popen(self.argv, stdout=self.outf, stderr=self.errf,
                                  stdin=subprocess.DEVNULL, env=self.env,
                                  preexec_fn=_sigint_default)
        end = time.monotonic() + 90          # a loaded 2-core host: the CLI's start is slow
        while time.monotonic() < end:
            if self.p.poll() is not None:
                break
            if self.armed in Path(self.outf.name).read_text() + Path(self.errf.name).read_text():
                break
            time.sleep(0.05)
        time.sleep(self.settle)           # the kernel side takes effect
        if self.p.poll() is not None:
            self._collect()
            from .errors import UnikError
            raise UnikError(f"{' '.join(self.argv[1:3])} exited early: {self.err.strip()[:300]}",
                            "run the same command by hand to see why")
        return self

    def _tmp(self, what: str) -> str:
        import tempfile
        fd, path = tempfile.mkstemp(prefix=f"unik-httpbench-{what}-")
        os.close(fd)
        return path

    def _collect(self):
        for f, attr in ((self.outf, "out"), (self.errf, "err")):
            f.flush()
            setattr(self, attr, Path(f.name).read_text())

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._collect()
        for f in (self.outf, self.errf):
            f.close()
            os.unlink(f.name)
        return False


def side_for(state: str, name: str, base: Path, pcap: Path) -> Side | None:
    """The side tool of a state (None for plain and anchor)."""
    env = _env(base)
    if state == "capture":
        return Side(unik_cmd("tcpdump", name, "-w", str(pcap)), env, "listening on", 0.3)
    if state == "nomatch":
        return Side(unik_cmd("tcpdump", name, "-w", str(pcap), *NOMATCH.split()), env,
                    "listening on", 0.3)
    if state == "trace":
        return Side(unik_cmd("trace", name, "--json", "-e", ARMED_CLAUSE + TRACE_PROG), env,
                    '"text": "armed', 0.3)
    return None


def measure_state(state: str, url: str, name: str, base: Path, seconds: float,
                  conns: int) -> dict:
    """One wrk run in one state; the side tool's figures under 'side'."""
    pcap = base / f"httpbench-{state}.pcap"
    side = side_for(state, name, base, pcap)
    if side is None:
        return run_wrk(url, seconds, conns)
    with side:
        res = run_wrk(url, seconds, conns)
    if state == "trace":
        res["side"] = wrkout.trace_firings(side.out)
    else:
        res["side"] = wrkout.parse_capture(side.err)
        res["side"]["pcap_bytes"] = pcap.stat().st_size if pcap.exists() else 0
        pcap.unlink(missing_ok=True)
    return res


def _cli_json(base: Path, *argv: str) -> dict:
    r = subprocess.run(unik_cmd(*argv, "--json"), capture_output=True, text=True,
                       timeout=60, env=_env(base), stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        from .errors import UnikError
        raise UnikError(f"unik {' '.join(argv)} failed: {r.stderr.strip()[:200]}",
                        "is the instance still running?")
    return json.loads(r.stdout)


def memory_under_load(url: str, name: str, base: Path, seconds: float, conns: int) -> dict:
    """A plain wrk run while `unik mem` and `unik netstat -s` sample the
    guest twice (at ~40 % and ~80 % of the run); the highest of each."""
    import threading
    samples: list[tuple[dict, dict]] = []
    errors: list[Exception] = []

    def sampler():
        try:
            for frac in (0.4, 0.4):
                time.sleep(seconds * frac)
                samples.append((_cli_json(base, "mem", name),
                                _cli_json(base, "netstat", name, "-s")))
        except Exception as e:      # reported after the run, never lost
            errors.append(e)
    t = threading.Thread(target=sampler, daemon=True)
    t.start()
    res = run_wrk(url, seconds, conns)
    t.join(60)
    if errors:
        raise errors[0]
    res["memory"] = memory_summary(samples)
    return res


def memory_summary(samples: list[tuple[dict, dict]]) -> dict:
    """The highest of each figure over the samples (pure): pages and heap
    in use (unik mem), lwIP's heap and pools' high-water marks; pools
    map name -> (high-water, size, allocation failures)."""
    out = {"samples": len(samples), "pages_used": 0, "heap_used": 0, "mem_total": 0,
           "lwip_heap_max": 0, "lwip_heap_avail": 0, "lwip_heap_err": 0, "pools": {}}
    for mem, ns in samples:
        out["pages_used"] = max(out["pages_used"], mem["summary"]["pages_used"])
        out["heap_used"] = max(out["heap_used"], mem["heap_bytes_used"])
        out["mem_total"] = mem["mem_total"]
        st = ns["statistics"]
        out["lwip_heap_max"] = max(out["lwip_heap_max"], st["mem"]["max"])
        out["lwip_heap_avail"] = st["mem"]["avail"]
        out["lwip_heap_err"] = st["mem"]["err"]
        for p in st["memp"]:
            hi, _, _ = out["pools"].get(p["name"], (0, 0, 0))
            out["pools"][p["name"]] = (max(hi, p["max"]), p["avail"], p["err"])
    return out


def boot_http(base: Path, name: str = "bench-http"):
    """The http app, --mem 8M, user networking, a free host port -> 80;
    returns (instance, url)."""
    elf = build.ensure_built("http", auto=True)
    port = free_port()
    opts = qemu.BootOptions(mem="8M", net="user", ports=[[port, 80]])
    inst = instance.boot(app="http", kernel=elf, build_id=build_id(elf), name=name,
                         opts=opts, mux=True, base=base)
    try:
        wait_ready(inst, 60)
    except Exception:
        instance.stop(inst)
        raise
    return inst, f"http://127.0.0.1:{port}/"


def measure(base: Path, seconds: float = SECONDS, conns: int = CONNS, rounds: int = 3,
            anchor: bool = True, states=STATES) -> dict:
    """Every state, `rounds` interleaved rounds: {'runs': {state: [wrk
    results]}, 'memory': ..., 'iface': netstat -i after, 'anchor': what}."""
    states = [s for s in states if s != "anchor" or anchor]
    runs: dict[str, list] = {s: [] for s in states}
    anc = None
    inst, url = boot_http(base)
    anchor_error = None
    from . import anchor as A
    try:
        if "anchor" in states:
            try:
                anc = A.boot(base)
            except UnikError as e:             # no archive, no boot: the other rows go on
                anchor_error = f"{e} ({e.hint})" if getattr(e, "hint", "") else str(e)
                states.remove("anchor")
                runs.pop("anchor")
        run_wrk(url, 1, conns)                       # warm-up: ARP, first connections
        if anc:
            run_wrk(anc.url, 1, conns)
        for r in range(rounds):
            order = states[r % len(states):] + states[:r % len(states)]
            for s in order:
                target = anc.url if s == "anchor" else url
                runs[s].append(measure_state(s, target, inst.name, base, seconds, conns))
        if anc:
            anc.stop()
            anc = None
        mem = memory_under_load(url, inst.name, base, seconds, conns)
        iface = _cli_json(base, "netstat", inst.name, "-i")["interfaces"][0]
    finally:
        if anc:
            anc.stop()
        instance.stop(inst)
    return {"runs": runs, "memory": mem, "iface": iface, "seconds": seconds,
            "conns": conns, "rounds": rounds, "anchor_error": anchor_error,
            "anchor": A.DESCRIPTION if "anchor" in states else None}


def _busy_ns(ch) -> tuple[int, int]:
    """Guest CPU time of every thread but idle, and of probe-chan alone
    (ns; under -icount shift=0 one ns of guest time is one instruction)."""
    _, threads = ch.threads()
    return (sum(t["cpu_ns"] for t in threads if t["name"] != "idle"),
            sum(t["cpu_ns"] for t in threads if t["name"] == "probe-chan"))


def guest_cost(base: Path, seconds: float, conns: int, rounds: int,
               states=("plain", "trace", "nomatch", "capture")) -> dict:
    """Guest instructions per request in each state (the host's load does
    not enter): the http app under -icount shift=0, its busy threads' CPU
    time over a wrk run divided by the requests.  {state: [per request]},
    and {state + "/chan": [...]}: the share of the probe channel's thread
    (draining the capture or the trace session to the host)."""
    from .client import Channel
    elf = build.ensure_built("http", auto=True)
    port = free_port()
    opts = qemu.BootOptions(mem="8M", net="user", ports=[[port, 80]], icount=True)
    inst = instance.boot(app="http", kernel=elf, build_id=build_id(elf),
                         name="bench-http-icount", opts=opts, mux=True, base=base)
    url = f"http://127.0.0.1:{port}/"
    out = {k: [] for s in states for k in (s, s + "/chan")}
    try:
        wait_ready(inst, 60)
        run_wrk(url, 1, conns)
        with Channel.for_instance(inst, timeout=30) as ch:
            for r in range(rounds):
                for state in states:
                    side = side_for(state, inst.name, base, base / "icount.pcap")
                    with side if side else _Nothing():
                        b0 = _busy_ns(ch)
                        w = run_wrk(url, seconds, conns)
                        b1 = _busy_ns(ch)
                    if w["errors"] == 0 and w["requests"]:
                        out[state].append((b1[0] - b0[0]) / w["requests"])
                        out[state + "/chan"].append((b1[1] - b0[1]) / w["requests"])
    finally:
        instance.stop(inst)
        (base / "icount.pcap").unlink(missing_ok=True)
    return out


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def rows(base: Path, quick: bool = False) -> list[dict]:
    """The benchmark rows (introspect/bench.py's run_all)."""
    m = measure(base, seconds=2 if quick else SECONDS, conns=8 if quick else CONNS,
                rounds=1 if quick else 3)
    m["icount"] = guest_cost(base, 2 if quick else 5, 8 if quick else CONNS,
                             1 if quick else 2)
    from .httprows import build_rows
    return build_rows(m)
