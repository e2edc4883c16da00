"""The per-instance mux against a fake kernel: routing, subscriptions,
mux-local requests, build-id refusal, lifecycle."""
import os
import signal
import threading
import time

import pytest

import fakekernel
from instances import mux_info
from introspect import codec, instance as I, protocol as P
from introspect.client import Channel, wait_ready
from introspect.errors import ChannelDown, ChannelError


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIK_STATE_DIR", str(tmp_path))
    return tmp_path


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_three_concurrent_clients_get_their_own_replies(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    errors = []

    def worker(k):
        try:
            with Channel.for_instance(inst) as ch:
                for i in range(100):          # every client uses ids 1, 2, 3...
                    addr = fakekernel.MEM_BASE + 256 * k + i
                    data = ch.memread(addr, 8)
                    assert data == bytes((addr + j) & 0xFF for j in range(8))
                    if i % 10 == 0:
                        assert len(ch.threads()[1]) == 3
        except Exception as e:              # pragma: no cover - reported below
            errors.append(f"client {k}: {e!r}")
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors
    with Channel.for_instance(inst) as ch:
        info = ch.mux_info()
    assert info["clients_total"] >= 4 and info["pending"] == 0
    assert info["frames_up"] == info["frames_down"] >= 330
    assert info["hello"]["build_id"] == inst.build_id


def test_broadcast_only_to_subscribers(fake):
    inst, _ = fake(events=0.05)
    wait_ready(inst, 10)
    with Channel.for_instance(inst) as a, Channel.for_instance(inst) as b:
        a.subscribe(fakekernel.EVENT_TYPE, fakekernel.EVENT_TYPE)
        ev1 = a.next_event(2)
        ev2 = a.next_event(2)
        assert ev1.type == ev2.type == fakekernel.EVENT_TYPE and ev1.id == 0
        assert int.from_bytes(ev2.payload, "little") > int.from_bytes(ev1.payload, "little")
        a.next_event(2), a.next_event(2)      # two broadcasts since b connected
        b.hello()
        assert not b.events
        a.subscribe(0, 0xFFFF, on=False)
        # (its reply came after every event the mux still sent to a)
        a.hello()
        a.events.clear()
        with pytest.raises(ChannelDown):
            a.next_event(0.3)


def test_mux_local_unknown_and_bad_payload(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    with Channel.for_instance(inst) as ch:
        with pytest.raises(ChannelError) as e:
            ch.request(0x4FFF)
        assert e.value.code_name == "UNKNOWN_TYPE"
        with pytest.raises(ChannelError) as e:
            ch.request(P.MuxType.MUX_SUBSCRIBE, b"\0")
        assert e.value.code_name == "BAD_PAYLOAD"
        # a kernel-side error comes back to the right client too
        with pytest.raises(ChannelError) as e:
            ch.request(0x0777)
        assert e.value.code_name == "UNKNOWN_TYPE"
        assert ch.hello()["app"] == "fake"


def test_garbage_from_one_client_does_not_disturb_others(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    with Channel.for_instance(inst) as good, Channel.for_instance(inst) as bad:
        bad.send_raw(b"UKgarbage" + b"\xff" * 100 + b"UK")
        bad.send_raw(codec.encode(P.MsgType.HELLO, 5, codec.hello_request())[:10])
        assert good.hello()["build_id"] == inst.build_id
        bad.send_raw(b"\0" * 30)
        # the bad client's stream resynchronises at its next good frame
        assert bad.hello()["version"] == P.VERSION
        assert good.chanstat()["rej_bad_header"] == 0   # the kernel saw no garbage


def test_abandoned_request_is_dropped(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    ch = Channel.for_instance(inst)
    ch.send(P.MsgType.THREADS)
    ch.close()                                   # leaves before the reply
    assert _wait(lambda: mux_info(inst)["pending"] == 0)   # the reply came and was dropped
    with Channel.for_instance(inst) as c2:
        info = c2.mux_info()
        assert info["pending"] == 0
        assert len(c2.threads()[1]) == 3


def test_build_id_mismatch_refused(fake):
    inst, _ = fake(build_id="ab" * 20, kernel_build_id="cd" * 20)
    with pytest.raises(ChannelDown) as e:
        wait_ready(inst, 10)
    assert "build-id mismatch" in e.value.msg
    assert "cdcd" in e.value.msg and "abab" in e.value.msg
    assert not inst.chan_sock.exists()
    # a later client does not restart a mux that refused for good
    with pytest.raises(ChannelDown, match="build-id mismatch"):
        Channel.for_instance(inst)


def test_mux_exits_when_the_kernel_goes(fake):
    inst, proc = fake()
    wait_ready(inst, 10)
    ch = Channel.for_instance(inst)
    mux_pid = inst.reload().mux_pid
    assert I.pid_alive(mux_pid)
    proc.kill()
    proc.wait()
    assert _wait(lambda: not I.pid_alive(mux_pid, str(inst.dir)))
    assert not inst.chan_sock.exists()
    with pytest.raises(ChannelDown):
        ch.hello()
    ch.close()


def test_client_restarts_a_dead_mux(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    old = inst.reload().mux_pid
    os.kill(old, signal.SIGKILL)
    # no needle: an exiting process loses its cmdline before its sockets
    assert _wait(lambda: not I.pid_alive(old))
    with Channel.for_instance(inst) as ch:
        assert ch.hello()["build_id"] == inst.build_id
    new = inst.reload().mux_pid
    assert new != old and I.pid_alive(new, str(inst.dir))


def test_direct_mode_without_mux(fake):
    inst, _ = fake(mux=False)
    with Channel.for_instance(inst, direct=True) as ch:
        assert ch.hello()["app"] == "fake"
        st = ch.chanstat()
        assert st["frames_in"] == 2 and st["connects"] == 1
    with pytest.raises(ChannelDown, match="without a mux"):
        Channel.for_instance(inst)


def test_direct_mode_busy_times_out(fake):
    inst, _ = fake()
    wait_ready(inst, 10)                     # the mux holds the chardev
    with Channel.for_instance(inst, direct=True, timeout=0.5) as ch:
        with pytest.raises(ChannelDown) as e:
            ch.hello()
    assert "held by another client" in e.value.hint


def test_concurrent_restart_race_leaves_one_mux(fake):
    inst, _ = fake()
    wait_ready(inst, 10)
    os.kill(inst.reload().mux_pid, signal.SIGKILL)
    assert _wait(lambda: not inst.mux_running())            # its lock died with it
    results = []

    def go():
        try:
            with Channel.for_instance(inst) as ch:
                results.append(ch.hello()["version"])
        except Exception as e:           # pragma: no cover
            results.append(repr(e))
    ts = [threading.Thread(target=go) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results == [P.VERSION] * 3
    def muxes():
        out = []
        for p in os.listdir("/proc"):
            try:
                if p.isdigit() and I.pid_alive(int(p), str(inst.dir)) and \
                        b"introspect.muxd" in open(f"/proc/{p}/cmdline", "rb").read():
                    out.append(p)
            except OSError:
                pass
        return out
    assert len(muxes()) == 1
