"""unik-top: throttling and drawing on a fixed-width capture console."""
from console.top import Sample, Throttle, cpu_deltas, frame_text


def _t(tid, name, cpu_ns, state="sleeping", hwm=1000):
    return {"tid": tid, "state": 2, "state_name": state, "priority": 1, "flags": 2,
            "name": name, "wchan": "nap" if state == "sleeping" else "", "cpu_ns": cpu_ns,
            "switches": 5, "stack_size": 16384, "stack_hwm": hwm, "start_ns": 0}


MEM = {"page_size": 4096, "nclasses": 0, "mem_total": 32 << 20, "pages_total": 8000,
       "pages_free": 6000, "pages_kernel": 50, "page_failures": 0,
       "heap_bytes_total": 65536, "heap_bytes_used": 32768, "heap_allocs": 10,
       "heap_frees": 4, "heap_failures": 0}


def sample(up_s, cpus):
    threads = [_t(0, "idle", cpus[0], "runnable"), _t(1, "busy", cpus[1], "running"),
               _t(2, "lazy", cpus[2], hwm=16000)]
    return Sample("demo", 0.0, {"count": 3, "total": 3, "uptime_ns": int(up_s * 1e9)},
                  threads, MEM, [])


def test_cpu_deltas():
    a = sample(10, [5e9, 4e9, 1e9])
    b = sample(11, [5.1e9, 4.9e9, 1e9])
    d = cpu_deltas(a, b)
    assert round(d[0]) == 10 and round(d[1]) == 90 and d[2] == 0
    since = cpu_deltas(None, a)
    assert round(since[0]) == 50 and round(since[1]) == 40


def test_throttle():
    t = Throttle(1.0)
    assert t.due(100.0) and t.wait(100.0) == 0
    t.mark(100.0)
    assert not t.due(100.5) and abs(t.wait(100.5) - 0.5) < 1e-9
    assert t.due(101.0)


def test_frame_sorted_by_cpu_delta():
    a = sample(10, [5e9, 4e9, 1e9])
    b = sample(11, [5.1e9, 4.9e9, 1e9])
    out = frame_text(b, a, width=80)
    lines = out.splitlines()
    assert lines[0].startswith("unik-top demo  up 11s  threads 3  %CPU over 1.0s")
    assert lines[1].startswith("mem 7.8M/31M (25%)  heap 32K/64K")
    rows = [l.split() for l in lines if l.strip() and l.split()[0].isdigit()]
    assert [r[1] for r in rows] == ["busy", "idle", "lazy"]
    assert rows[0][4] == "90.0" and rows[2][-1] == "98"
    assert all(len(l) <= 80 for l in lines)


def test_frame_once_uses_since_start():
    out = frame_text(sample(10, [5e9, 4e9, 1e9]), None, width=100)
    assert "%CPU since start" in out
    rows = [l.split() for l in out.splitlines() if l.strip() and l.split()[0].isdigit()]
    assert [r[1] for r in rows] == ["idle", "busy", "lazy"]
