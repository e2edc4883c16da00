"""`unik ping` over QEMU: the guest pings the user network's gateway
(10.0.2.2) and the host prints three replies with icmp_seq, ttl and the
guest's RTT, then ping's summary with 0% loss; an address nobody has
times out with 100% loss and exit 1; the netstat counters see the ICMP
traffic; a kernel without lwIP and bad arguments give one line."""
from __future__ import annotations

import json
import re

import pytest

from instances import booted, unik

REPLY = re.compile(r"^64 bytes from 10\.0\.2\.2: icmp_seq=(\d+) ttl=(\d+) time=([\d.]+) ms$")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with booted("http", state=tmp_path_factory.mktemp("state"), name="pg",
                boot_args=["--mem", "8M"]) as inst:
        yield inst


def test_ping_gateway(web):
    before = json.loads(unik(web.env, "netstat", "pg", "-s", "--json").stdout)["statistics"]
    r = unik(web.env, "ping", "pg", "10.0.2.2", "-c", "3", "-i", "0.2")
    lines = r.stdout.splitlines()
    assert lines[0] == "PING 10.0.2.2 (10.0.2.2) 56(84) bytes of data.", r.stdout
    replies = [REPLY.match(x) for x in lines[1:4]]
    assert all(replies), r.stdout
    assert [int(m[1]) for m in replies] == [1, 2, 3]
    assert all(int(m[2]) > 0 for m in replies)
    rtts = [float(m[3]) for m in replies]
    assert lines[4:6] == ["", "--- 10.0.2.2 ping statistics ---"], r.stdout
    assert re.fullmatch(r"3 packets transmitted, 3 received, 0% packet loss, time \d+ms",
                        lines[6]), lines[6]
    m = re.fullmatch(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", lines[7])
    assert m, lines[7]
    lo, avg, hi = float(m[1]), float(m[2]), float(m[3])
    assert lo <= avg <= hi and lo <= min(rtts) + 0.01 and hi >= max(rtts) - 0.01
    assert len(lines) == 8 and r.returncode == 0
    after = json.loads(unik(web.env, "netstat", "pg", "-s", "--json").stdout)["statistics"]
    # raw PCBs send and take these before lwIP's icmp.c: they count in ip
    assert after["ip"]["xmit"] >= before["ip"]["xmit"] + 3
    assert after["ip"]["recv"] >= before["ip"]["recv"] + 3


def test_ping_size(web):
    r = unik(web.env, "ping", "pg", "10.0.2.2", "-c", "1", "-s", "1472")
    assert r.stdout.startswith("PING 10.0.2.2 (10.0.2.2) 1472(1500) bytes of data.\n"
                               "1480 bytes from 10.0.2.2: icmp_seq=1 "), r.stdout


def test_ping_unreachable_times_out(web):
    r = unik(web.env, "ping", "pg", "10.0.2.99", "-c", "2", "-i", "0.2", "-W", "1",
             check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bytes from" not in r.stdout
    assert re.search(r"^2 packets transmitted, 0 received, 100% packet loss, time \d+ms$",
                     r.stdout, re.M), r.stdout
    assert "rtt min" not in r.stdout
    # the ping ended: another one may start at once
    unik(web.env, "ping", "pg", "10.0.2.2", "-c", "1")


@pytest.mark.parametrize("argv, what", [
    (["pg", "10.0.2.2", "-c", "0"], "-c 0: the count must be at least 1"),
    (["pg", "10.0.2.2", "-s", "2000"], "-s 2000: the size must be 0..1472"),
    (["pg", "10.0.2.2", "-i", "0.001"], "-i 0.001: the interval must be"),
    (["pg", "10.0.2.2", "-W", "0"], "-W 0: the timeout must be"),
    (["pg", "example.org"], "example.org: not an IPv4 address"),
    (["pg", "10.0.2.2", "extra"], "unrecognized arguments: extra"),
])
def test_bad_arguments(web, argv, what):
    r = unik(web.env, "ping", *argv, check=False)
    assert r.returncode == 2 and what in r.stderr, (argv, r.stderr)
    assert len(r.stderr.splitlines()) == 2 and "Traceback" not in r.stderr   # error + hint


def test_kernel_without_lwip(tmp_path):
    with booted("demo", state=tmp_path, name="plain") as inst:
        r = unik(inst.env, "ping", "plain", "10.0.2.2", "-c", "1", check=False)
        assert r.returncode == 2 and r.stdout == ""
        assert "no network stack in this kernel" in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 2 and "Traceback" not in r.stderr


def test_ctrl_c_and_killed_client(web):
    """Ctrl-C ends an endless ping with the summary; a ping whose client
    is killed is stopped by the mux, so the next one starts."""
    import signal
    from instances import UNIK, Child, wait_until
    c = Child([UNIK, "ping", "pg", "10.0.2.2", "-i", "0.1"], web.env)
    try:
        wait_until(lambda: c.out.count("bytes from") >= 2, 30, "two replies")
        assert c.finish(signal.SIGINT) == 0
    finally:
        c.kill()
    m = re.search(r"^(\d+) packets transmitted, (\d+) received", c.out, re.M)
    assert m and int(m[2]) >= 2 and int(m[1]) >= int(m[2]), c.out
    c = Child([UNIK, "ping", "pg", "10.0.2.2", "-i", "0.1"], web.env)
    try:
        wait_until(lambda: "bytes from" in c.out, 30, "a reply")
    finally:
        c.kill()
    wait_until(lambda: unik(web.env, "ping", "pg", "10.0.2.2", "-c", "1",
                            check=False).returncode == 0, 20,
               "the killed client's ping to be stopped by the mux")


def test_format_like_iputils():
    """The pure formatting (introspect/ping.py): iputils' precision and summary."""
    from introspect.ping import ms, reply_line, summary
    assert [ms(n) for n in (123_456, 1_234_567, 12_345_678, 123_456_789)] == \
        ["0.123", "1.23", "12.3", "123"]
    ev = {"bytes": 64, "from_addr": int.from_bytes(bytes([10, 0, 2, 2]), "little"),
          "seq": 7, "ttl": 255, "rtt_ns": 345_678}
    assert reply_line(ev) == "64 bytes from 10.0.2.2: icmp_seq=7 ttl=255 time=0.345 ms"
    t = {"transmitted": 3, "received": 2, "errors": 0, "elapsed_ns": 2_003_000_000,
         "rtt_min_ns": 1_000_000, "rtt_max_ns": 3_000_000, "rtt_sum_ns": 4_000_000,
         "rtt_sum2_us": 1000 ** 2 + 3000 ** 2}
    assert summary("h", t) == ["", "--- h ping statistics ---",
                               "3 packets transmitted, 2 received, 33% packet loss, time 2003ms",
                               "rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms"]
    t.update(received=0, errors=1)
    assert summary("h", t)[2:] == ["3 packets transmitted, 0 received, +1 errors, "
                                   "100% packet loss, time 2003ms"]


def test_ping_json(web):
    r = unik(web.env, "ping", "pg", "10.0.2.2", "-c", "2", "-i", "0.1", "--json")
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["kind"] for o in objs[:-1]] == ["reply", "reply", "done"], objs
    assert [o["seq"] for o in objs[:2]] == [1, 2] and all(o["rtt_ns"] > 0 for o in objs[:2])
    t = objs[-1]
    assert t["summary"] and (t["transmitted"], t["received"]) == (2, 2)
    assert t["rtt_min_ns"] <= t["rtt_max_ns"] and t["rtt_sum_ns"] >= 2 * t["rtt_min_ns"]
