"""unik tcpdump's host pieces that need no instance: words -> (instance,
expression), the summary's wording, a bad filter (libpcap's message, exit
2) and -d (libpcap's program, as `tcpdump -dd` prints it), CAPTURE_DATA
decoding and CAPTURE_PROG splitting."""
from __future__ import annotations

import subprocess

import pytest

from console.commands import tcpdump as T
from console.registry import Context, commands, run_command
from introspect import capture as C
from introspect import codec
from introspect import pcapfilter
from introspect import protocol as P


def test_split_words():
    known = {"web"}.__contains__
    assert T.split_words(["web", "tcp", "port", "80"], None, known) == ("web", "tcp port 80")
    assert T.split_words(["tcp", "port", "80"], None, known) == (None, "tcp port 80")
    assert T.split_words(["web"], None, known) == ("web", "")
    assert T.split_words(["web", "icmp"], "shell-inst", known) == ("shell-inst", "web icmp")
    assert T.split_words([], None, known) == (None, "")


def test_summary_wording():
    assert T.summary(1, {"matched": 1, "dropped": 0}) == (
        "1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n")
    assert T.summary(12, {"matched": 15, "dropped": 3}) == (
        "12 packets captured\n15 packets received by filter\n3 packets dropped by kernel\n")


def _run(argv):
    import io
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(commands()["tcpdump"], argv, Context(out=out, err=err), "unik tcpdump")
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("expr", ["tcp port 80 and", "port 99999", "ether host zz",
                                  "tcp[100000] = 1 and", "host"])
def test_bad_filter_is_one_line_of_libpcap(expr):
    rc, out, err = _run([expr])
    ref = subprocess.run(["tcpdump", "-d", expr], capture_output=True, text=True)
    assert rc == 2 and out == ""
    assert err == "unik tcpdump: " + ref.stderr.strip().splitlines()[-1].removeprefix("tcpdump: ") + "\n"


@pytest.mark.parametrize("expr", ["", "tcp port 80", "icmp or arp", "not tcp and len > 100"])
def test_dump_is_libpcaps_program(expr):
    rc, out, _ = _run(["-d", *expr.split()])
    ref = subprocess.run(["tcpdump", "-dd", *expr.split()], capture_output=True, text=True)
    assert rc == 0 and out == ref.stdout


def test_decode_data_round_trip():
    pkts = [(5, 60, 0, b"a" * 60), (6, 1514, 1, b"b" * 13), (7, 0, 0, b"")]
    body = b"".join(P.CAPTURE_PKT.pack(ts_ns=t, wirelen=w, caplen=len(d), dir=di, pad=0) +
                    d + b"\0" * (-len(d) % 8) for t, w, di, d in pkts)
    head = P.CAPTURE_DATA_HDR.pack(capture=3, seq=0, npkt=3, pad=0, matched=9, dropped=1)
    h, got = C.decode_data(head + body)
    assert h["capture"] == 3 and h["matched"] == 9 and got == pkts
    for cut in (len(head) - 1, len(head) + 5, len(head) + 16 + 59):
        with pytest.raises(codec.ProtocolError):
            C.decode_data((head + body)[:cut])


def test_prog_requests_cover_the_program():
    prog = [(0x06, 0, 0, i) for i in range(300)]
    reqs = C.prog_requests(4, pcapfilter.encode(prog))
    assert [len(r) for r in reqs] == [8 + 127 * 8, 8 + 127 * 8, 8 + 46 * 8]
    assert all(P.REQUESTS[P.MsgType.CAPTURE_PROG].size_ok(len(r)) for r in reqs)
    back = b"".join(r[8:] for r in reqs)
    assert pcapfilter.decode(back) == prog
    assert [P.CAPTURE_PROG_REQ.unpack(r[:8])["offset"] for r in reqs] == [0, 127, 254]
