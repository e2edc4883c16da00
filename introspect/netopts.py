"""Networking options of `unik boot` (pure): parsing `--port` and `--net`,
the QEMU arguments they become, and how `unik ls` shows them.

- user (the CLI's default): QEMU user networking, no privileges; the guest
  is 10.0.2.15, the gateway 10.0.2.2.  `--port HOST[:GUEST]` (repeatable)
  forwards host 127.0.0.1:HOST to guest port GUEST (default 80).
- dgram:QEMU_PORT:PEER_PORT: raw Ethernet frames in UDP datagrams on the
  host's loopback (QEMU 7.2 `-netdev dgram`): QEMU receives on
  127.0.0.1:QEMU_PORT and sends every frame the guest transmits to
  127.0.0.1:PEER_PORT.  For tests that inject crafted frames.
- none: no network device at all.
The device is always `virtio-net-device` (virtio-mmio, version 2).
"""
from __future__ import annotations

import re
import socket

from .errors import UnikError

NETS = ("user", "dgram", "none")
DEFAULT_GUEST_PORT = 80
_PORT_RE = re.compile(r"^([0-9]+)(?::([0-9]+))?$")
_DGRAM_RE = re.compile(r"^dgram:([0-9]+):([0-9]+)$")


def _port(text: str, what: str, arg: str) -> int:
    n = int(text)
    if not 1 <= n <= 65535:
        raise UnikError(f"bad {arg} {what} port {n}: not in 1..65535",
                        "give a TCP port number between 1 and 65535")
    return n


def parse_port(text: str) -> list[int]:
    """`--port HOST` or `--port HOST:GUEST` -> [host, guest]."""
    m = _PORT_RE.match(str(text).strip())
    if not m:
        raise UnikError(f"bad --port {text!r}",
                        "use --port HOST (to guest port 80) or --port HOST:GUEST, e.g. 8080:80")
    host = _port(m.group(1), "host", "--port")
    guest = _port(m.group(2), "guest", "--port") if m.group(2) else DEFAULT_GUEST_PORT
    return [host, guest]


def parse_ports(texts) -> list[list[int]]:
    """Every --port, checked for a host port given twice."""
    out, seen = [], set()
    for t in texts or ():
        hp = parse_port(t)
        if hp[0] in seen:
            raise UnikError(f"host port {hp[0]} is forwarded twice",
                            "give each --port HOST only once")
        seen.add(hp[0])
        out.append(hp)
    return out


def parse_net(text: str | None, ports: list) -> tuple[str, list[int]]:
    """`--net user|none|dgram:QEMU_PORT:PEER_PORT` -> (net, dgram ports).
    No --net means user networking; ports need it."""
    t = (text or "user").strip()
    m = _DGRAM_RE.match(t)
    if m:
        net, dgram = "dgram", [_port(m.group(1), "QEMU", "--net dgram"),
                               _port(m.group(2), "peer", "--net dgram")]
    elif t in ("user", "none"):
        net, dgram = t, []
    else:
        raise UnikError(f"bad --net {text!r}",
                        "use --net user, --net none or --net dgram:QEMU_PORT:PEER_PORT")
    if ports and net != "user":
        raise UnikError(f"--port needs user networking, not --net {t}",
                        "drop --net (user is the default) or the --port options")
    return net, dgram


def check_host_ports(ports: list) -> None:
    """Fail with one line when a forwarded host port is taken (QEMU would
    only say so in its log and exit)."""
    for host, _ in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", host))
        except OSError as e:
            raise UnikError(f"host port 127.0.0.1:{host} is not free: {e.strerror}",
                            "pick another with --port HOST:GUEST (see: unik ls)") from None
        finally:
            s.close()


def net_args(net: str, ports: list, dgram: list) -> list[str]:
    """The QEMU arguments for one instance's network (pure)."""
    if net in ("none", "", None):
        return []
    if net == "user":
        nd = "user,id=n0" + "".join(f",hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in ports)
    elif net == "dgram":
        q, p = dgram
        nd = ("dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port="
              f"{q},remote.type=inet,remote.host=127.0.0.1,remote.port={p}")
    else:
        raise UnikError(f"unknown network {net!r}", "use user, dgram or none")
    return ["-netdev", nd, "-device", "virtio-net-device,netdev=n0"]


def describe(boot: dict) -> str:
    """One word for `unik ls`: the forwarded ports, user, dgram or -."""
    net = (boot or {}).get("net") or "none"
    if net == "user":
        fw = [f"127.0.0.1:{h}->{g}" for h, g in boot.get("ports") or []]
        return ",".join(fw) or "user"
    if net == "dgram":
        q, p = boot.get("dgram") or ["?", "?"]
        return f"dgram:{q}<->{p}"
    return "-"


def free_port() -> int:
    """A TCP port on the host's loopback that is free now (for --port in
    benchmarks and tests; someone may still take it before QEMU does)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
