"""The virtio-net driver (kernel/drivers/vnet.c) without a TCP/IP stack,
and the networking options of `unik boot` (introspect/netopts.py).

- The in-guest self-test (kernel/selftest_net.c) sends an ARP request for
  10.0.2.2 and waits for the reply: over QEMU user networking (slirp
  answers) and over the raw-frame dgram backend, where this test reads the
  guest's request from a host UDP socket and answers it itself.
- On a booted instance with `--net dgram:Q:P`, frames the host injects
  move the driver's counters (read through DWARF from `vnet.stats`): good
  frames counted as received (and as dropped for want of a receiver, the
  demo app has none), runts and oversize frames as bad.

Fails (never skips) when QEMU is missing.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import threading

import pytest

from conftest import build_kernel, require_qemu
from introspect import netopts as N
from introspect import qemu as Q
from introspect.errors import UnikError

BOOT_TIMEOUT = 60
GW_MAC = bytes.fromhex("020000000002")      # the gateway the dgram test plays


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def selftest_argv(qemu: str, elf, netdev: str) -> list[str]:
    return [qemu, "-M", "microvm", "-accel", "tcg", "-m", "32M",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(elf), "-append", "unik.selftest=1", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-global", "virtio-mmio.force-legacy=false",
            "-netdev", netdev, "-device", "virtio-net-device,netdev=n0"]


def check_selftest(out: str, rc: int) -> None:
    m = re.search(r"selftest: (\d+) passed, (\d+) failed", out)
    assert m and m.group(2) == "0", out
    assert "PANIC" not in out and rc == 1, out


# ------------------------------------------------------------ pure options

@pytest.mark.parametrize("text,want", [("8080", [8080, 80]), ("8080:8081", [8080, 8081]),
                                       (" 1:65535 ", [1, 65535])])
def test_parse_port_ok(text, want):
    assert N.parse_port(text) == want


@pytest.mark.parametrize("text,what", [("", "bad --port"), ("80:", "bad --port"),
                                       ("0", "not in 1..65535"), ("8080:70000", "not in 1..65535"),
                                       ("a:b", "bad --port"), ("-1", "bad --port")])
def test_parse_port_bad(text, what):
    with pytest.raises(UnikError, match=re.escape(what)) as e:
        N.parse_port(text)
    assert e.value.hint


def test_parse_ports_duplicate_and_net():
    with pytest.raises(UnikError, match="forwarded twice"):
        N.parse_ports(["8080", "8080:81"])
    assert N.parse_net(None, []) == ("user", [])
    assert N.parse_net("none", []) == ("none", [])
    assert N.parse_net("dgram:5000:5001", []) == ("dgram", [5000, 5001])
    with pytest.raises(UnikError, match="needs user networking"):
        N.parse_net("none", [[8080, 80]])
    for bad in ("tap", "dgram:1", "dgram:0:5"):
        with pytest.raises(UnikError):
            N.parse_net(bad, [])


def test_net_args_and_describe():
    o = Q.BootOptions(net="user", ports=[[8080, 80], [2222, 22]])
    argv = Q.command_line("k.elf", "/s/x", o)
    i = argv.index("-netdev")
    assert argv[i:i + 4] == ["-netdev",
                             "user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,"
                             "hostfwd=tcp:127.0.0.1:2222-:22",
                             "-device", "virtio-net-device,netdev=n0"]
    d = N.net_args("dgram", [], [5000, 5001])
    assert d[1] == ("dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=5000,"
                    "remote.type=inet,remote.host=127.0.0.1,remote.port=5001")
    assert "-netdev" not in Q.command_line("k.elf", "/s/x", Q.BootOptions())
    assert N.describe(o.to_json()) == "127.0.0.1:8080->80,127.0.0.1:2222->22"
    assert N.describe({"net": "user"}) == "user"
    assert N.describe({"net": "dgram", "dgram": [5, 6]}) == "dgram:5<->6"
    assert N.describe({}) == "-"
    assert Q.BootOptions.from_json(o.to_json()) == o


def test_port_in_use_is_one_line():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        with pytest.raises(UnikError, match="is not free") as e:
            N.check_host_ports([[s.getsockname()[1], 80]])
        assert "--port" in e.value.hint
    finally:
        s.close()


# ------------------------------------------------------------ in the guest

def test_netdev_selftest_user_arp():
    """slirp's gateway answers the guest's ARP request."""
    qemu = require_qemu()
    elf = build_kernel("demo")
    r = subprocess.run(selftest_argv(qemu, elf, "user,id=n0"), capture_output=True,
                       text=True, timeout=BOOT_TIMEOUT, stdin=subprocess.DEVNULL)
    assert "net: virtio-net at slot" in r.stdout and ", interrupts" in r.stdout, r.stdout
    assert re.search(r"selftest: net: arp reply: 10\.0\.2\.2 is at 52:55:0a:00:02:02",
                     r.stdout), r.stdout
    check_selftest(r.stdout, r.returncode)


def answer_arp(sock: socket.socket, qport: int, seen: list) -> None:
    """Play the gateway on the dgram backend: read the guest's frames,
    answer an ARP request for 10.0.2.2 with GW_MAC."""
    while True:
        try:
            f, _ = sock.recvfrom(4096)
        except OSError:
            return
        seen.append(f)
        if len(f) < 42 or f[12:14] != b"\x08\x06" or f[20:22] != b"\x00\x01" \
                or f[38:42] != bytes([10, 0, 2, 2]):
            continue
        mac, ip = f[22:28], f[28:32]
        reply = (mac + GW_MAC + b"\x08\x06" + bytes.fromhex("0001080006040002") +
                 GW_MAC + bytes([10, 0, 2, 2]) + mac + ip).ljust(60, b"\0")
        sock.sendto(reply, ("127.0.0.1", qport))


def test_netdev_selftest_dgram_arp():
    """The raw-frame backend carries the guest's request to a host socket
    and the host's crafted reply back into the guest."""
    qemu = require_qemu()
    elf = build_kernel("demo")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    qport = free_udp_port()
    nd = N.net_args("dgram", [], [qport, peer.getsockname()[1]])[1]
    seen: list[bytes] = []
    t = threading.Thread(target=answer_arp, args=(peer, qport, seen), daemon=True)
    t.start()
    try:
        r = subprocess.run(selftest_argv(qemu, elf, nd), capture_output=True, text=True,
                           timeout=BOOT_TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        peer.close()
        t.join(5)
    assert seen and seen[0][:6] == b"\xff" * 6 and len(seen[0]) == 60, seen
    assert "selftest: net: arp reply: 10.0.2.2 is at 02:00:00:00:00:02" in r.stdout, r.stdout
    check_selftest(r.stdout, r.returncode)


def vnet_stats(name: str, env: dict) -> dict:
    """The driver's counters, read live through DWARF (`unik py -c`)."""
    from instances import unik
    script = ("s = prog['vnet'].stats\n"
              "print(' '.join(f'{k}={int(getattr(s, k))}' for k in "
              "('rx_packets', 'rx_bytes', 'rx_drop_nobuf', 'rx_drop_bad', 'irqs')))\n")
    r = unik(env, "py", name, "-c", script)
    return {k: int(v) for k, v in (w.split("=") for w in r.stdout.split())}


def test_boot_port_forward_shown_by_ls(booted_instance):
    """`unik boot --port H:G` forwards through user networking; `unik ls`
    (and --json) shows the mapping; the guest found its device."""
    from instances import ls, unik
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    host = s.getsockname()[1]
    s.close()
    inst = booted_instance("demo", name="np", boot_args=["--port", f"{host}:8000"])
    cmdline = (inst.dir / "qemu.cmdline").read_text()
    assert f"user,id=n0,hostfwd=tcp:127.0.0.1:{host}-:8000" in cmdline
    rec = [i for i in ls(inst.env) if i["name"] == "np"][0]
    assert rec["net"] == "user"
    assert rec["ports"] == [{"host": host, "guest": 8000, "addr": "127.0.0.1"}]
    out = unik(inst.env, "ls").stdout
    assert out.splitlines()[0].split()[-1] == "NET" and f"127.0.0.1:{host}->8000" in out
    log = unik(inst.env, "log", "np").stdout
    assert "net: virtio-net at slot" in log and "link up, interrupts" in log, log


def test_dgram_injected_frames_counted(booted_instance):
    """Frames injected over UDP reach the driver: good ones counted as
    received (and dropped: no receiver in the demo app), bad ones as bad."""
    from instances import wait_until
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    qport = free_udp_port()
    try:
        inst = booted_instance("demo", name="nd",
                               boot_args=["--net", f"dgram:{qport}:{peer.getsockname()[1]}"])
        s0 = vnet_stats("nd", inst.env)
        frame = b"\xff" * 6 + bytes.fromhex("020000000009") + b"\x88\xb5" + b"x" * 46
        for _ in range(5):
            peer.sendto(frame, ("127.0.0.1", qport))
        peer.sendto(frame[:10], ("127.0.0.1", qport))             # runt
        peer.sendto(frame[:14] + b"y" * 1600, ("127.0.0.1", qport))  # > 1514 bytes
        s1 = wait_until(lambda: (lambda s: s if s["rx_drop_bad"] >= s0["rx_drop_bad"] + 2
                                 and s["rx_packets"] >= s0["rx_packets"] + 5 else None)(
                            vnet_stats("nd", inst.env)), 20, "the injected frames counted")
    finally:
        peer.close()
    assert s1["rx_packets"] - s0["rx_packets"] == 5
    assert s1["rx_bytes"] - s0["rx_bytes"] == 5 * 60
    assert s1["rx_drop_nobuf"] - s0["rx_drop_nobuf"] == 5
    assert s1["rx_drop_bad"] - s0["rx_drop_bad"] == 2
    assert s1["irqs"] > s0["irqs"]


def test_tx_ring_waits_are_not_drops(booted_instance):
    """Under load the http app's transmit ring fills (QEMU empties it
    asynchronously): lwIP's linkoutput waits for room (netdev_tx_room,
    counted in tx_ring_waits) instead of offering the frame to a full ring,
    so a ring-full drop is counted only for a frame really dropped, once
    in the driver and once in the glue, and every frame sent is counted
    alike by both."""
    import http.client
    from instances import unik
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    host = s.getsockname()[1]
    s.close()
    inst = booted_instance("http", name="ntx", boot_args=["--mem", "8M", "--port", f"{host}:80"])
    done = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", host, timeout=10)
        for _ in range(150):
            c.request("GET", "/")
            r = c.getresponse()
            done.append(r.status == 200 and r.read() == b"ok\n")
        c.close()
    ts = [threading.Thread(target=client) for _ in range(24)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert len(done) == 24 * 150 and all(done)
    ifc = json.loads(unik(inst.env, "netstat", "ntx", "-i", "--json").stdout)["interfaces"][0]
    drv, glue = ifc["driver"], ifc["netif"]
    assert drv["tx_drop_ring"] == glue["tx_drop_dev"] == 0, (drv, glue)
    assert drv["tx_packets"] == glue["tx_frames"] == ifc["link"]["xmit"], (drv, glue)
    assert glue["tx_ring_waits"] >= 0
