"""unik tcpdump end to end on the real kernel under QEMU.  The network
driver is not needed: frames built with scapy (tests/pktcorpus.py) go
through the kernel's capture tap with the CAPTURE_INJECT debug request,
exactly as the network interface will hand them over, and what `unik
tcpdump` prints or writes is compared with what the real tcpdump and
tshark make of the same frames."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time

import pytest

import pktcorpus
from instances import booted, popen_unik, unik, wait_until
from introspect import capture as C
from introspect import pcapfilter
from introspect import protocol as P
from introspect.client import Channel
from introspect.errors import ChannelError
from introspect.pcapfile import PcapWriter

OUT = {"synack", "fin", "dns", "ping", "arpreq"}      # frames the guest "sent"
STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} ")


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    with booted("demo", state=tmp_path_factory.mktemp("unik-tcpdump"), name="tcpdump") as i:
        yield i


def frames():
    return [(n, f) for n, f in pktcorpus.frames() if len(f) >= 14 and n != "ethonly"]


def inject_all(inst, fr):
    with Channel.for_instance(inst) as ch:
        for n, f in fr:
            C.inject(ch, f, 1 if n in OUT else 0)


def tcpdump_says(tmp_path, fr, expr="", *flags):
    """The real tcpdump's lines (no timestamps) for frames fr and expr."""
    path = tmp_path / "ref.pcap"
    with open(path, "wb") as f:
        w = PcapWriter(f)
        for i, (_, b) in enumerate(fr):
            w.write(1_700_000_000_000_000_000 + i * 1000, b)
    r = subprocess.run(["tcpdump", "-n", *flags, "-r", str(path), *([expr] if expr else [])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [STAMP.sub("", ln) for ln in r.stdout.splitlines()]


def listening(child):
    wait_until(lambda: "listening on" in child.err or child.p.poll() is not None, 30,
               "unik tcpdump to start")
    assert "listening on" in child.err, child.err


def summary(n_capt, n_recv, n_drop):
    def s(v, what):
        return f"{v} packet{'' if v == 1 else 's'} {what}"
    return "\n".join([s(n_capt, "captured"), s(n_recv, "received by filter"),
                      s(n_drop, "dropped by kernel")]) + "\n"


def test_count_prints_tcpdump_lines(inst, tmp_path):
    """-n -c N: N lines, each tcpdump's own for that frame, then the summary."""
    fr = frames()
    child = popen_unik(inst.env, "tcpdump", inst.name, "-n", "-c", len(fr))
    listening(child)
    inject_all(inst, fr)
    assert child.finish(timeout=30) == 0, child.err
    got = [STAMP.sub("", ln) for ln in child.out.splitlines()]
    assert all(STAMP.match(ln) for ln in child.out.splitlines())
    assert got == tcpdump_says(tmp_path, fr)
    assert child.err.endswith(summary(len(fr), len(fr), 0)), child.err


def test_filters_select_the_right_packets(inst, tmp_path):
    """Three captures at once, each with its filter; Ctrl-C ends each with
    tcpdump's exact summary."""
    fr = frames()
    exprs = ["tcp port 80", "icmp", "not tcp"]
    kids = [popen_unik(inst.env, "tcpdump", inst.name, "-n", e) for e in exprs]
    try:
        for k in kids:
            listening(k)
        inject_all(inst, fr)
        for e, k in zip(exprs, kids):
            want = tcpdump_says(tmp_path, fr, e)
            wait_until(lambda: len(k.out.splitlines()) >= len(want), 10, f"lines for {e}")
            assert k.finish(signal.SIGINT) == 0, k.err
            got = [STAMP.sub("", ln) for ln in k.out.splitlines()]
            assert got == want and want, e
            assert k.err.endswith(summary(len(want), len(want), 0)), k.err
    finally:
        for k in kids:
            k.kill()


def test_json_lines(inst):
    import json
    child = popen_unik(inst.env, "tcpdump", inst.name, "--json", "-n", "-c", 2, "icmp")
    listening(child)
    inject_all(inst, frames())
    assert child.finish(timeout=30) == 0, child.err
    objs = [json.loads(ln) for ln in child.out.splitlines()]
    assert [o["dir"] for o in objs] == ["out", "in"]
    assert objs[0]["line"] == "IP 10.0.2.15 > 10.0.2.2: ICMP echo request, id 119, seq 1, length 64"
    assert bytes.fromhex(objs[1]["data"]) == dict(frames())["pong"]
    assert objs[0]["wirelen"] == objs[0]["caplen"] == 98


def test_write_pcap_tshark_reads(inst, tmp_path):
    if not shutil.which("tshark"):
        pytest.fail("tshark is not installed (make deps)")
    path = tmp_path / "cap.pcap"
    child = popen_unik(inst.env, "tcpdump", inst.name, "-w", path, "-c", 4, "tcp port 80")
    listening(child)
    inject_all(inst, frames())
    assert child.finish(timeout=30) == 0, child.err
    r = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "ip.src",
                        "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags.syn",
                        "-e", "http.request.method", "-e", "http.request.uri"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert rows == [["10.0.2.2", "40000", "80", "1", "", ""],
                    ["10.0.2.15", "80", "40000", "1", "", ""],
                    ["10.0.2.2", "40000", "80", "0", "", ""],
                    ["10.0.2.2", "40000", "80", "0", "GET", "/"]]
    assert "4 packets captured\n" in child.err


def test_nanosecond_pcap_and_snaplen(inst, tmp_path):
    path = tmp_path / "ns.pcap"
    child = popen_unik(inst.env, "tcpdump", inst.name, "-w", path, "-c", 1, "-s", 40,
                       "--time-stamp-precision", "nano", "icmp")
    listening(child)
    inject_all(inst, frames())
    assert child.finish(timeout=30) == 0, child.err
    from introspect.pcapfile import read_pcap
    with open(path, "rb") as f:
        assert f.read(4) == bytes.fromhex("4d3cb2a1")
        f.seek(0)
        (ts, data, wirelen), = list(read_pcap(f))
    assert len(data) == 40 and wirelen == 98 and abs(ts - time.time_ns()) < 60e9


def test_bad_filter_is_libpcaps_message(inst):
    for expr in ("tcp port 80 and", "port 99999", "ether host zz"):
        r = unik(inst.env, "tcpdump", inst.name, expr, check=False)
        ref = subprocess.run(["tcpdump", "-d", expr], capture_output=True, text=True)
        msg = ref.stderr.strip().splitlines()[-1].removeprefix("tcpdump: ")
        assert r.returncode == 2
        assert r.stderr == f"unik tcpdump: {msg}\n" and r.stdout == ""


def test_drops_are_counted_exactly(inst):
    """A small ring drained rarely: what does not fit is dropped and
    counted, and delivered + dropped == matched == received, exactly."""
    prog = pcapfilter.compile_filter("")
    big = pktcorpus.frames()[3][1] + b"\0" * 200
    with Channel.for_instance(inst) as ch, C.Capture(ch, prog, bufsize=4096,
                                                     rate_us=5_000_000) as cap:
        cap.start()
        for _ in range(40):
            C.inject(ch, big)
        rest, counters = cap.stop()
        got = cap.received
    assert counters["received"] == counters["matched"] == 40
    assert 0 < counters["dropped"] < 40
    assert got + counters["dropped"] == 40 == counters["delivered"] + counters["dropped"]
    assert 0 < counters["tap_ns"] / 40 < 1_000_000          # the per-frame cost of the tap


def test_verifier_refusal_is_structured(inst):
    with Channel.for_instance(inst) as ch:
        cap = C.Capture(ch, [(0x15, 3, 0, 0), (0x06, 0, 0, 0)])
        with pytest.raises(C.CaptureVerifyError) as e:
            cap.start()
    assert e.value.pc == 0 and e.value.reason == "jump out of the program"


def test_capture_closed_when_client_leaves(inst):
    """The owner's connection goes without CAPTURE_CLOSE: the mux closes
    its capture within a second."""
    with Channel.for_instance(inst) as owner:
        cap = C.Capture(owner, pcapfilter.compile_filter("icmp"))
        cap.start()
        cid = cap.cid
        with Channel.for_instance(inst) as other:
            assert other.request(P.MsgType.CAPTURE_STATUS, C.capture_req(cid))
    t0 = time.monotonic()
    with Channel.for_instance(inst) as other:
        while True:
            try:
                other.request(P.MsgType.CAPTURE_STATUS, C.capture_req(cid))
            except ChannelError as e:
                assert e.code_name == "NO_SESSION"
                break
            assert time.monotonic() - t0 < 1.0, "capture still open 1 s after its client left"
            time.sleep(0.01)
