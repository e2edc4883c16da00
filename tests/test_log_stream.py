"""`log -f` rides the LOG_DATA stream: the mux turns the kernel's stream on
for its first subscriber and off after the last, every byte arrives once
and in order, and nothing polls (fake kernel)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from introspect import codec, protocol as P
from introspect.client import Channel, wait_ready

UNIK = str(Path(sys.executable).parent / "unik")


def _log_data(ch, want: bytes, timeout=10.0) -> bytes:
    got = b""
    end = time.monotonic() + timeout
    while want not in got and time.monotonic() < end:
        fr = ch.next_event(timeout=max(0.05, end - time.monotonic()))
        assert fr.type == P.MsgType.LOG_DATA and fr.id == 0
        h, data = codec.decode_log(fr.payload)
        assert h["next"] - h["offset"] == len(data)
        got += data
    return got


def test_two_subscribers_one_kernel_stream(fake):
    inst, _ = fake(extra=("--log-lines", "200"))
    wait_ready(inst, 10)
    with Channel.for_instance(inst) as a, Channel.for_instance(inst) as b:
        a.subscribe(P.MsgType.LOG_DATA, P.MsgType.LOG_DATA)
        b.subscribe(P.MsgType.LOG_DATA, P.MsgType.LOG_DATA)
        ga, gb = _log_data(a, b"line 199\n"), _log_data(b, b"line 199\n")
        assert b"line 199\n" in ga and b"line 199\n" in gb
        # both saw the same byte stream from where they joined
        tail = ga[ga.index(b"line 100\n"):]
        assert tail in gb
        lines = [int(x.split()[1]) for x in tail.decode().splitlines()]
        assert lines == list(range(100, 200))
        before = a.chanstat()["frames_in"]
    with Channel.for_instance(inst) as c:
        # the mux sent one LOG_SUBSCRIBE on and, when both left, one off:
        # the fake counts every frame it served
        st = c.chanstat()
        assert st["frames_in"] == before + 2, st


def test_log_follow_cli_streams_without_polling(fake):
    inst, _ = fake(extra=("--log-lines", "150"))
    wait_ready(inst, 10)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    p = subprocess.Popen([UNIK, "log", "fake", "-f", "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    text, lines = "", []
    try:
        while "line 149\n" not in text:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            d = json.loads(line)
            lines.append(d)
            text += d["text"]
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
    got = [int(x.split()[1]) for x in text.splitlines() if x.startswith("line ")]
    assert got == list(range(150))
    offs = [(d["offset"], d["next"]) for d in lines]
    assert all(a[1] == b[0] for a, b in zip(offs, offs[1:])), offs
    with Channel.for_instance(inst) as c:
        # HELLO(s), the backlog LOG read(s), LOG_SUBSCRIBE on/off, this CHANSTAT:
        # 1.5 s of following polled at 250 ms would add 6 or more LOG requests
        assert c.chanstat()["frames_in"] <= 7
