"""Text rendering of ls / ps / mem / chanstat / hexdump from fixed records."""
from console import render as R

HEAD = {"count": 3, "total": 3, "uptime_ns": 10_000_000_000}
THREADS = [
    {"tid": 2, "state": 2, "state_name": "sleeping", "priority": 1, "flags": 2,
     "name": "worker", "wchan": "timer", "cpu_ns": 2_500_000_000, "switches": 77,
     "stack_size": 8192, "stack_hwm": 8000, "start_ns": 5_000_000_000},
    {"tid": 0, "state": 1, "state_name": "runnable", "priority": 0, "flags": 1,
     "name": "idle", "wchan": "", "cpu_ns": 5_000_000_000, "switches": 100,
     "stack_size": 16384, "stack_hwm": 900, "start_ns": 0},
    {"tid": 1, "state": 0, "state_name": "running", "priority": 1, "flags": 1,
     "name": "probe-chan", "wchan": "", "cpu_ns": 1_234_000_000, "switches": 42,
     "stack_size": 16384, "stack_hwm": 4096, "start_ns": 0},
]
MEM = {"page_size": 4096, "nclasses": 2, "mem_total": 32 << 20, "pages_total": 8000,
       "pages_free": 7000, "pages_kernel": 100, "page_failures": 0,
       "heap_bytes_total": 65536, "heap_bytes_used": 16384, "heap_allocs": 500,
       "heap_frees": 400, "heap_failures": 1}
CLASSES = [{"size": 16, "in_use": 3, "allocs": 10, "frees": 7, "failures": 0},
           {"size": 0, "in_use": 1, "allocs": 2, "frees": 1, "failures": 0}]


def test_units():
    assert R.fmt_bytes(0) == "0B"
    assert R.fmt_bytes(1023) == "1023B"
    assert R.fmt_bytes(1536) == "1.5K"
    assert R.fmt_bytes(16384) == "16K"
    assert R.fmt_bytes(32 << 20) == "32M"
    assert R.fmt_bytes(3 << 30) == "3G"
    assert R.fmt_duration(5) == "5s"
    assert R.fmt_duration(125) == "2m05s"
    assert R.fmt_duration(7500) == "2h05m"
    assert R.fmt_duration(90000) == "1d01h"
    assert R.fmt_cputime(1_234_000_000) == "0:01.234"
    assert R.fmt_cputime(61_000_000_000) == "1:01.000"
    assert R.fmt_cputime(3_661_000_000_000) == "1:01:01"
    assert R.pct(1, 0) == 0.0


def test_table_alignment():
    out = R.table(["A", "NUM"], [["x", 1], ["long", 100]])
    assert out.splitlines() == ["A     NUM", "x       1", "long  100"]


def test_ls():
    insts = [{"name": "demo", "app": "demo", "state": "running", "qemu_pid": 1234,
              "mem": "32M", "created": 1000.0, "build_id": "0123456789abcdef0123"},
             {"name": "demo-2", "app": "crash-null", "state": "stale", "qemu_pid": 99,
              "mem": "64M", "created": 900.0, "build_id": ""}]
    out = R.render_ls(insts, now=1125.0)
    assert out.splitlines() == [
        "NAME    APP         STATE     PID  MEM  UPTIME  BUILD-ID",
        "demo    demo        running  1234  32M  2m05s   0123456789ab",
        "demo-2  crash-null  stale       -  64M  -       -",
    ]
    assert "no instances" in R.render_ls([])


def test_ps():
    out = R.render_ps(HEAD, THREADS, title="demo: 3 threads, up 10s")
    assert out.splitlines() == [
        "demo: 3 threads, up 10s",
        "TID  NAME        STATE     WCHAN  %CPU      TIME  CSW  STACK  HWM%  KIND",
        "  0  idle        runnable  -      50.0  0:05.000  100    16K     5  svc",
        "  1  probe-chan  running   -      12.3  0:01.234   42    16K    25  svc",
        "  2  worker      sleeping  timer  50.0  0:02.500   77     8K    98  app",
    ]


def test_ps_sort_cpu_and_override():
    out = R.render_ps(HEAD, THREADS, cpu_pct={0: 1.0, 1: 80.0, 2: 5.0}, sort="cpu", title="")
    tids = [line.split()[0] for line in out.splitlines()[1:]]
    assert tids == ["1", "2", "0"]


def test_ps_capped_title():
    out = R.render_ps({**HEAD, "total": 70}, THREADS)
    assert out.splitlines()[0] == "70 threads, up 10s (showing 3)"


def test_mem():
    out = R.render_mem(MEM, CLASSES)
    lines = out.splitlines()
    assert lines[0] == "RAM 32M, 4K pages"
    assert lines[1].split() == ["total", "used", "free", "kernel"]
    assert lines[2].split() == ["pages", "8000", "1000", "7000", "100"]
    assert lines[3].split() == ["bytes", "31M", "3.9M", "27M", "400K"]
    assert lines[4].split() == ["heap", "64K", "16K", "48K", "-"]
    assert "failures: heap 1, pages 0" in lines[5]
    assert lines[7].split() == ["SIZE", "IN-USE", "ALLOCS", "FREES", "FAILS", "BYTES"]
    assert lines[8].split() == ["16", "3", "10", "7", "0", "48B"]
    assert lines[9].split() == ["large", "1", "2", "1", "0", "-"]


def test_mem_summary():
    s = R.mem_summary(MEM)
    assert s["pages_used"] == 1000 and s["bytes_free"] == 7000 * 4096


def test_chanstat():
    k = {"frames_in": 5, "frames_out": 4, "bytes_in": 100, "bytes_out": 900,
         "skipped_bytes": 3, "rej_bad_header": 1, "rej_oversized": 0,
         "rej_bad_checksum": 2, "rej_unknown_type": 0, "rej_bad_payload": 0,
         "rej_truncated": 0, "tx_dropped": 0, "connects": 1, "disconnects": 0}
    out = R.render_chanstat(k)
    assert "bad_header 1" in out and "bad_checksum 2" in out and "mux:" not in out
    mux = {"pid": 7, "uptime_ns": 61e9, "clients": 2, "clients_total": 5, "frames_up": 9,
           "frames_down": 9, "frames_broadcast": 0, "frames_dropped": 1,
           "frames_local": 2, "pending": 0}
    out = R.render_chanstat(k, mux)
    assert "clients 2 now, 5 ever" in out and "up 1m01s" in out


def test_hexdump():
    out = R.hexdump(0x1000, bytes(range(0x41, 0x41 + 20)))
    assert out.splitlines() == [
        "0000000000001000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|",
        "0000000000001010  51 52 53 54                                       |QRST|",
    ]
    assert R.hexdump(0, b"") == ""
