"""The flight recorder (kernel/flight.c) and `unik events`, and `unik
trace --core` (BEGIN/END over a core with the host-built probe VM).

The kinds' drift check reads the kernel's DWARF; the rest boots QEMU: a
demo instance gets channel requests the test chooses (an unknown type, a
THREADS with a bad payload) and its ring must end with them, live and in
a core dumped right after; a crash-null core's ring ends in the panic
after the app thread's creation; one D script gives the same output over
a live demo instance and its core, and a golden output over crash-null."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import build_kernel
import crashcores
from instances import booted, unik, wait_until
from introspect import protocol as P
from introspect.dwarf import TypeDB
from introspect.helpers import flight

GOLDEN = Path(__file__).resolve().parent / "golden"
ODD_TYPE = 0x0FF7                      # no such request type


# ------------------------------------------------------------------ drift

def test_every_kind_has_a_decoder():
    """enum flight_kind (flight.h, the one declaration) and DECODERS agree,
    and struct flight_event is the layout helpers/flight.py unpacks."""
    db = TypeDB.from_elf(build_kernel("demo"))
    kinds = {k.removeprefix("FLIGHT_") for k in db.parse_type("enum flight_kind").enumerators}
    assert kinds == set(flight.DECODERS)
    ev = db.parse_type("struct flight_event")
    assert ev.size == flight.EVENT.size
    offs = {m.name: m.offset for m in ev.members}
    assert offs == {"tsc": 0, "kind": 8, "flags": 10, "tid": 12, "a": 16, "b": 24, "c": 32}


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    with booted("demo", state=state, name="fl") as inst:
        yield inst


null_core = crashcores.null_core         # crash-null, dumped (a module fixture)


def _poke(inst) -> None:
    """The requests the test makes: an unknown type, then THREADS with a
    3-byte payload (both rejected and answered with ERROR)."""
    from introspect.client import Channel
    from introspect.errors import ChannelError
    with Channel.for_instance(inst) as ch:
        for t, payload in ((ODD_TYPE, b""), (P.MsgType.THREADS, b"abc")):
            with pytest.raises(ChannelError):
                ch.request(t, payload)


def _mine(evs: list[dict]) -> list[tuple]:
    """The rejects among events, as (reason, type, len)."""
    return [(e["text"].split()[0], e["b"], e["c"]) for e in evs if e["kind"] == "CHAN_REJECT"]


EXPECTED = [("UNKNOWN_TYPE", ODD_TYPE, 0), ("BAD_PAYLOAD", int(P.MsgType.THREADS), 3)]


# ------------------------------------------------------------------ live and core

def test_events_match_requests_live_and_core(demo, tmp_path):
    """Poke, dump, read the core; poke again, read live: each time the
    ring ends with the two rejects (the ring holds ~8 s of the demo, so
    each read follows its requests at once)."""
    _poke(demo)
    core = tmp_path / "fl.core"
    unik(demo.env, "dump", "fl", "-o", core)
    post = json.loads(unik(demo.env, "events", "--core", core, "-n", "0", "--json").stdout)
    assert _mine(post["events"])[-2:] == EXPECTED
    _poke(demo)
    live = json.loads(unik(demo.env, "events", "fl", "-n", "0", "--json").stdout)
    assert live["on"] and live["size"] == 4096 and live["recorded"] >= live["kept"] > 0
    evs = live["events"]
    assert [e["seq"] for e in evs] == list(range(evs[0]["seq"], evs[0]["seq"] + len(evs)))
    assert _mine(evs)[-2:] == EXPECTED
    # recorded by the probe channel's thread, the unknown type before the bad payload
    rej = [e for e in evs if e["kind"] == "CHAN_REJECT"][-2:]
    assert {e["thread"] for e in rej} == {"probe-chan"} and rej[0]["seq"] < rej[1]["seq"]
    times = [e["time"] for e in evs]
    assert times == sorted(times) and 0 < times[-1] < 600
    # what both saw is the same event at the same sequence number
    assert live["recorded"] > post["recorded"]
    by_seq = {e["seq"]: e for e in evs}
    common = [e for e in post["events"] if e["seq"] in by_seq]
    for e in common:
        assert by_seq[e["seq"]] == e


def test_events_text_and_switches(demo):
    out = unik(demo.env, "events", "fl", "-n", "30").stdout.splitlines()
    assert len(out) == 30
    sw = [ln for ln in out if " sched switch -> tid " in ln]
    assert sw, out
    # a line: time, the running thread, the event
    t, tid, rest = sw[0].split(None, 2)
    assert float(t) > 0 and tid == "tid"


def test_crash_core_events_end_in_panic(null_core):
    inst, core = null_core
    d = json.loads(unik(inst.env, "events", "--core", core, "-n", "0", "--json").stdout)
    evs = d["events"]
    assert evs[-1]["kind"] == "PANIC" and evs[-1]["thread"] == "app"
    assert evs[-1]["a"] == 14 and "page fault" in evs[-1]["text"]
    creates = [e["text"] for e in evs if e["kind"] == "THREAD_CREATE"]
    assert any(c.endswith("(app)") for c in creates)
    assert any(c.endswith("(probe-chan)") for c in creates)
    rep = json.loads(unik(inst.env, "core", core, "--json").stdout)
    assert rep["events"][-1]["kind"] == "PANIC"
    text = unik(inst.env, "core", core).stdout
    assert "flight recorder (last 20 events):" in text, text
    assert " kernel panic vector 14 " in text, text


# ------------------------------------------------------------------ unik trace --core

SCRIPT = r"""
BEGIN {
    printf("slot1 %s tid %d\n", stringof(`sched_threads[1].name), `sched_threads[1].tid);
    @names[stringof(`sched_threads[2].name)] = count();
    @tids = sum(`sched_threads[1].tid + `sched_threads[2].tid);
    self->x = 1;
    exit(0);
}
END { printa("%-12s %@d\n", @names); printf("size %d\n", `flight.size); }
"""


def test_trace_core_same_as_live(demo, tmp_path):
    """The same script over the live instance and over its core."""
    core = tmp_path / "fl2.core"
    unik(demo.env, "dump", "fl", "-o", core)
    live = unik(demo.env, "trace", "fl", "-q", "-e", SCRIPT)
    post = unik(demo.env, "trace", "--core", core, "-q", "-e", SCRIPT)
    assert post.stdout == live.stdout
    assert "slot1 probe-chan tid 1" in post.stdout and "size 4096" in post.stdout


def test_trace_core_golden(null_core):
    inst, core = null_core
    r = unik(inst.env, "trace", "--core", core, "-e", SCRIPT)
    assert r.stdout == (GOLDEN / "trace_core_crash_null.txt").read_text()
    assert "matched 2 probes (over the core" in r.stderr


def test_trace_core_fault_and_error_clause(null_core):
    inst, core = null_core
    r = unik(inst.env, "trace", "--core", core, "-q", "-e",
             'BEGIN { trace(*(int *)0); } ERROR { printf("fault %d at %x\\n", arg4, arg5); }')
    assert r.stdout.startswith("fault 1 at 0")
    assert "invalid address (0x0)" in r.stderr


def test_trace_core_bad_inputs(null_core, tmp_path):
    inst, core = null_core
    env = inst.env
    r = unik(env, "trace", "--core", core, "-n", "sched:::switch", check=False)
    assert r.returncode != 0 and "cannot fire in a core" in r.stderr and "hint:" in r.stderr
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for bad in (empty, Path("/etc/hostname")):
        for cmd in (["trace", "--core", bad, "-e", "BEGIN { exit(0); }"],
                    ["events", "--core", bad]):
            r = unik(env, *cmd, check=False)
            assert r.returncode != 0 and "Traceback" not in r.stderr
            assert r.stderr.startswith("unik: error: ") and "hint:" in r.stderr, r.stderr
    r = unik(env, "events", "--core", core, "-f", check=False)
    assert r.returncode != 0 and "-f follows a live instance" in r.stderr
    r = unik(env, "trace", "--kernel", "x.elf", "-e", "BEGIN {}", check=False)
    assert r.returncode != 0 and "--kernel goes with --core" in r.stderr
    r = unik(env, "events", "--core", core, "-n", "-3", check=False)
    assert r.returncode != 0 and "bad -n" in r.stderr


def test_flight_bench_rows(tmp_path):
    """`unik bench`'s rows: unik.flight=0 really turns recording off (the
    ping-pong is cheaper without it), and an event costs tens of
    instructions, not hundreds."""
    from introspect import flightbench
    rows = {r["name"]: r for r in flightbench.rows(tmp_path, quick=True)}
    per_event = rows["flight recorder: one event"]["value"]
    assert 10 <= per_event <= 80, rows
    assert 0.9 <= rows["demo throughput with the flight recorder on"]["value"] <= 1.1


# ------------------------------------------------------------------ threads coming and going

def _children(evs: list[dict]) -> dict[str, list[str]]:
    """child name -> the kinds of its events in ring order: its creation
    (recorded by app), then what it did itself (its tid)."""
    tids, out = {}, {}
    for e in evs:
        if e["kind"] == "THREAD_CREATE" and "(child-" in e["text"]:
            name = e["text"].split("(", 1)[1].rstrip(")")
            tids[e["a"]] = name
            out[name] = ["THREAD_CREATE"]
        elif e["tid"] in tids and e["kind"] in ("SCHED_SLEEP", "THREAD_EXIT"):
            out[tids[e["tid"]]].append(e["kind"] + ":" + e["text"].split()[1]
                                       if e["kind"] == "SCHED_SLEEP" else e["kind"])
    return out


def test_spawned_threads_live_and_core(tmp_path, monkeypatch):
    """The spawner app starts child-N every 100 ms; each naps 5 ms on
    child-nap and exits: the ring has create, sleep, exit for each, in
    order, live and in a core, and the children's numbers are
    consecutive up to what the app counted."""
    state = tmp_path / "state"
    monkeypatch.setenv("UNIK_STATE_DIR", str(state))
    with booted("spawner", state=state, name="sp") as inst:
        from introspect.program import Program
        wait_until(lambda: _count(inst) >= 5, timeout=60, interval=0.2,
                   what="spawner to start 5 children")
        live = json.loads(unik(inst.env, "events", "sp", "-n", "0", "--json").stdout)
        core = tmp_path / "sp.core"
        unik(inst.env, "dump", "sp", "-o", core)
        with Program.from_core(core, inst.kernel) as prog:
            started = int(prog["spawner_children"])
        post = json.loads(unik(inst.env, "events", "--core", core, "-n", "0",
                               "--json").stdout)
    for d in (live, post):
        kids = _children(d["events"])
        done = {k: v for k, v in kids.items() if len(v) == 3}
        assert len(done) >= 3, kids
        for name, kinds in done.items():
            assert kinds == ["THREAD_CREATE", "SCHED_SLEEP:child-nap", "THREAD_EXIT"], \
                (name, kinds)
        nums = sorted(int(k.split("-")[1]) for k in kids)
        assert nums == list(range(nums[0], nums[-1] + 1))
    assert max(int(k.split("-")[1]) for k in _children(post["events"])) == started


def _count(inst) -> int:
    from introspect.program import Program
    with Program.live("sp") as prog:
        return int(prog["spawner_children"])


def test_trace_core_json_and_exit_status(null_core):
    """--json over a core, exit()'s status, timestamp = the dump's moment."""
    inst, core = null_core
    r = unik(inst.env, "trace", "--core", core, "--json", "-e",
             'BEGIN { printf("%s\\n", stringof(`sched_threads[2].name)); '
             '@c[stringof(`sched_threads[1].name)] = count(); exit(3); }', check=False)
    assert r.returncode == 3, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0]["type"] == "printf" and lines[0]["text"] == "app\n"
    assert lines[1] == {"type": "exit", "code": 3, "probe": "dtrace:::BEGIN",
                        "timestamp": lines[0]["timestamp"]}
    assert lines[2]["entries"] == [{"key": ["probe-chan"], "value": 1}]
    panic = json.loads(unik(inst.env, "events", "--core", core, "-n", "1", "--json").stdout)
    assert abs(lines[0]["timestamp"] / 1e9 - panic["events"][-1]["time"]) < 0.01
