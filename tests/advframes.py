"""Malformed and adversarial Ethernet frames for the flood test
(tests/test_net_adversarial.py), built with scapy.  Pure: no I/O, and
deterministic for a seed.

    for b in flood(Env(), seed=7):
        b.name, b.frames, b.expect     # class, list of bytes, counter -> minimum

Each class is a Batch whose `expect` names the counters its frames must
move and by at least how much: lwIP's `netstat -s` counters as
"proto.field" ("tcp.chkerr"), the driver's as "driver.field"
("driver.rx_drop_bad").  What lwIP 2.1.3 does with each kind is read from
its sources (ip4.c, tcp_in.c, udp.c, icmp.c, ip4_frag.c, etharp.c,
ethernet.c); docs/netstat.md has the table and a run's numbers.

Scapy is slow (~0.3 ms a packet here), so each class builds a few
templates with scapy and derives its thousands of variants by rewriting
bytes (ports, ids, lengths) and recomputing checksums with `csum`, the
Internet checksum (tested against scapy's own).
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption, fragment
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

ETH = 14                              # Ethernet header bytes
RX_FRAME_MAX = 2048 - 12              # driver buffer less virtio_net_hdr; QEMU drops longer


@dataclass(frozen=True)
class Env:
    """Addresses of the link: the guest and the host that plays 10.0.2.2."""
    guest_mac: str = "52:54:00:12:34:56"
    guest_ip: str = "10.0.2.15"
    peer_mac: str = "02:00:00:00:00:02"
    peer_ip: str = "10.0.2.2"
    listen_port: int = 80
    closed_port: int = 81


@dataclass
class Batch:
    name: str
    frames: list = field(default_factory=list)
    expect: dict = field(default_factory=dict)


# ------------------------------------------------------------------ checksums

def csum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data."""
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def wrong(good: int, rng: random.Random) -> int:
    """A checksum that fails: not good, not its ones'-complement twin
    (0x0000 and 0xFFFF are the same number), and not 0 (for UDP, 0 means
    no checksum)."""
    while True:
        w = rng.randrange(1, 0xFFFF)
        if w != good and {w, good} != {0, 0xFFFF}:
            return w


def fix_ip(f: bytearray) -> None:
    """Recompute the IP header checksum of frame f in place."""
    ihl = (f[ETH] & 0x0F) * 4
    f[ETH + 10:ETH + 12] = b"\0\0"
    f[ETH + 10:ETH + 12] = struct.pack("!H", csum(bytes(f[ETH:ETH + ihl])))


def l4_offset(f: bytes) -> int:
    return ETH + (f[ETH] & 0x0F) * 4


def l4_csum(f: bytes, proto: int, at: int) -> int:
    """The correct TCP/UDP checksum of frame f (the field at offset `at`
    within the L4 header counts as zero)."""
    off = l4_offset(f)
    seg = bytearray(f[off:])
    seg[at:at + 2] = b"\0\0"
    pseudo = f[ETH + 12:ETH + 20] + struct.pack("!BBH", 0, proto, len(seg))
    c = csum(pseudo + bytes(seg))
    return 0xFFFF if proto == 17 and c == 0 else c


def set_l4(f: bytearray, proto: int, at: int, value: int | None = None) -> None:
    """Write the L4 checksum: the correct one, or `value`."""
    off = l4_offset(f)
    v = l4_csum(bytes(f), proto, at) if value is None else value
    f[off + at:off + at + 2] = struct.pack("!H", v)


# ------------------------------------------------------------------ templates

def _eth(env: Env, **kw):
    return Ether(**{"dst": env.guest_mac, "src": env.peer_mac, **kw})


def _ip(env: Env, **kw):
    return _eth(env) / IP(src=env.peer_ip, dst=env.guest_ip, **kw)


def _templates(env: Env) -> dict:
    """One scapy-built frame of each kind the classes vary."""
    opts = [("MSS", 1460), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (1, 0))]
    return {
        "syn": bytes(_ip(env) / TCP(sport=40000, dport=env.listen_port, flags="S",
                                    seq=1000, options=opts)),
        "udp": bytes(_ip(env) / UDP(sport=40000, dport=9) / Raw(b"u" * 30)),
        "echo": bytes(_ip(env) / ICMP(type=8, id=0x4242, seq=1) / Raw(b"e" * 40)),
        "ipopt": bytes(_ip(env, options=[IPOption(b"\x07\x07\x04\0\0\0\0\x00")]) /
                       TCP(sport=40001, dport=env.listen_port, flags="S", seq=7)),
        "arp": bytes(_eth(env, dst="ff:ff:ff:ff:ff:ff") /
                     ARP(op=1, hwsrc=env.peer_mac, psrc=env.peer_ip, pdst=env.guest_ip)),
    }


def _vary(t: bytes, rng: random.Random, proto: int) -> bytearray:
    """A copy of IP template t with a new IP id and source port."""
    f = bytearray(t)
    f[ETH + 4:ETH + 6] = struct.pack("!H", rng.randrange(65536))
    off = l4_offset(f)
    f[off:off + 2] = struct.pack("!H", rng.randrange(1024, 65536))
    if proto == 6:
        f[off + 4:off + 8] = struct.pack("!I", rng.getrandbits(32))
        f[off + 13] = rng.randrange(256)                  # any flags: dropped before they matter
    fix_ip(f)
    return f


# ------------------------------------------------------------------ classes

def bad_checksums(env: Env, rng: random.Random, n_ip: int, n_tcp: int, n_udp: int,
                  n_icmp: int) -> list[Batch]:
    """Well-formed frames but for one checksum: IP header, TCP, UDP, ICMP
    echo.  lwIP drops each at its checksum check and counts it there."""
    t = _templates(env)
    out = []
    b = Batch("bad-ip-checksum", expect={"ip.chkerr": n_ip})
    for _ in range(n_ip):
        f = _vary(t["udp"], rng, 17)
        set_l4(f, 17, 6)
        good = struct.unpack("!H", f[ETH + 10:ETH + 12])[0]
        f[ETH + 10:ETH + 12] = struct.pack("!H", wrong(good, rng))
        b.frames.append(bytes(f))
    out.append(b)
    b = Batch("bad-tcp-checksum", expect={"tcp.chkerr": n_tcp})
    for i in range(n_tcp):
        f = _vary(t["syn"], rng, 6)
        off = l4_offset(f)
        f[off + 2:off + 4] = struct.pack("!H", env.listen_port if i & 1 else env.closed_port)
        set_l4(f, 6, 16, wrong(l4_csum(bytes(f), 6, 16), rng))
        b.frames.append(bytes(f))
    out.append(b)
    b = Batch("bad-udp-checksum", expect={"udp.chkerr": n_udp})
    for _ in range(n_udp):
        f = _vary(t["udp"], rng, 17)
        off = l4_offset(f)
        f[off + 2:off + 4] = struct.pack("!H", rng.randrange(1, 65536))
        set_l4(f, 17, 6, wrong(l4_csum(bytes(f), 17, 6), rng))
        b.frames.append(bytes(f))
    out.append(b)
    b = Batch("bad-icmp-checksum", expect={"icmp.chkerr": n_icmp})
    for i in range(n_icmp):
        f = bytearray(t["echo"])
        off = l4_offset(f)
        f[off + 6:off + 8] = struct.pack("!H", i & 0xFFFF)
        f[off + 2:off + 4] = b"\0\0"
        good = csum(bytes(f[off:]))
        f[off + 2:off + 4] = struct.pack("!H", wrong(good, rng))
        b.frames.append(bytes(f))
    out.append(b)
    return out


def truncated(env: Env, rounds: int) -> list[Batch]:
    """Every template cut at every length from 1 byte to one short of
    whole.  Below 14 bytes the driver drops it (rx_drop_bad); the netif
    pads the rest to 60 bytes with zeros, so a bare 14-byte IPv4 header
    is an IP packet of version 0 (ip.err); a cut IP packet fails
    ip4_input's length check (ip.lenerr: its total length is longer than
    what came, or zero); an ARP packet cut inside its type and length
    fields has zeros there (etharp.proterr), one cut inside its opcode
    has opcode 0 (etharp.err), one cut inside its addresses has zero
    addresses (not for the guest: no counter)."""
    t = _templates(env)
    b = Batch("truncated", expect={"driver.rx_drop_bad": 0, "ip.err": 0, "ip.lenerr": 0,
                                   "etharp.proterr": 0, "etharp.err": 0})
    for r in range(rounds):
        for name in ("syn", "udp", "echo", "ipopt", "arp"):
            f = t[name]
            for n in range(1, len(f)):
                cut = bytearray(f[:n])
                if n > 11:
                    cut[6 + 5] = r & 0xFF          # a different source MAC each round
                b.frames.append(bytes(cut))
                if n < ETH:
                    b.expect["driver.rx_drop_bad"] += 1
                elif name != "arp":
                    b.expect["ip.err" if n == ETH else "ip.lenerr"] += 1
                elif n < ETH + 6:
                    b.expect["etharp.proterr"] += 1
                elif n < ETH + 8:
                    b.expect["etharp.err"] += 1
    return [b]


def lying_lengths(env: Env, rng: random.Random, reps: int) -> list[Batch]:
    """IP total length and IHL that lie, with a valid header checksum:
    total length longer than the frame, or shorter than the header; IHL
    under 5, or past the end of the packet: ip.lenerr each.  Total length
    shorter than the frame but cutting into the TCP or UDP header: the IP
    packet is trimmed to it, then tcp.lenerr / udp.lenerr."""
    t = _templates(env)
    b = Batch("lying-lengths", expect={"ip.lenerr": 0, "tcp.lenerr": 0, "udp.lenerr": 0})

    def emit(f: bytearray, counter: str) -> None:
        fix_ip(f)
        b.frames.append(bytes(f))
        b.expect[counter] += 1

    for _ in range(reps):
        for name, proto in (("syn", 6), ("udp", 17), ("echo", 1)):
            base = _vary(t[name], rng, proto) if proto != 1 else bytearray(t[name])
            ip_len = len(base) - ETH
            for tl in list(range(0, 20)) + [ip_len + 1, ip_len + 8, 1500, 65535]:
                f = bytearray(base)
                f[ETH + 2:ETH + 4] = struct.pack("!H", tl)
                emit(f, "ip.lenerr")
            for ihl in (0, 1, 2, 3, 4) + tuple(range((ip_len + 3) // 4 + 1, 16)):
                f = bytearray(base)
                f[ETH] = 0x40 | ihl
                emit(f, "ip.lenerr")
            if proto in (6, 17):
                for l4 in range(1, 20 if proto == 6 else 8):
                    f = bytearray(base)
                    f[ETH + 2:ETH + 4] = struct.pack("!H", 20 + l4)
                    emit(f, "tcp.lenerr" if proto == 6 else "udp.lenerr")
    return [b]


def ip_options(env: Env, rng: random.Random, n: int) -> list[Batch]:
    """ICMP echo requests with IP options, valid (NOP, EOL, record route,
    timestamp, router alert) and garbage (random bytes, lengths that point
    past the header), checksums right.  lwIP accepts options without
    parsing them (IP_OPTIONS_ALLOWED): each is received (ip.recv)."""
    valid = [b"\x01\x01\x01\x00",                             # NOP NOP NOP EOL
             b"\x07\x07\x04" + b"\0" * 4 + b"\0",            # record route, 1 slot
             b"\x44\x0c\x05\x00" + b"\0" * 8,                # timestamp
             b"\x94\x04\x00\x00"]                            # router alert
    tmpl = [bytes(_ip(env, options=[IPOption(o)]) / ICMP(type=8, id=0x0b71, seq=i) / Raw(b"o" * 16))
            for i, o in enumerate(valid)]
    b = Batch("ip-options", expect={"ip.recv": n})
    for i in range(n):
        if i % 2 == 0:
            f = bytearray(tmpl[i // 2 % len(tmpl)])
        else:                                                 # garbage options, same length
            f = bytearray(tmpl[0])
            olen = (f[ETH] & 0x0F) * 4 - 20
            f[ETH + 20:ETH + 20 + olen] = bytes(rng.randrange(256) for _ in range(olen))
        f[ETH + 4:ETH + 6] = struct.pack("!H", i & 0xFFFF)
        fix_ip(f)
        b.frames.append(bytes(f))
    return [b]


def fragments(env: Env, rng: random.Random, n: int) -> list[Batch]:
    """IP fragments: complete datagrams sent out of order, overlapping
    fragments, 8-byte (tiny) fragments, first fragments never completed,
    fragments reaching past 64 KiB.  Every one enters ip4_reass
    (ip_frag.recv)."""
    b = Batch("fragments", expect={"ip_frag.recv": 0})
    k = 0
    while len(b.frames) < n:
        k += 1
        ident = k & 0xFFFF
        kind = k % 5
        if kind == 0:                  # a 1200-byte echo in 3 pieces, reversed
            p = IP(src=env.peer_ip, dst=env.guest_ip, id=ident) / ICMP(type=8, id=0x0f0f, seq=k) \
                / Raw(bytes(rng.randrange(256) for _ in range(1200)))
            frags = list(reversed(fragment(p, fragsize=480)))
        elif kind == 1:                # overlapping: the second restarts inside the first
            data = bytes(64)
            frags = [IP(src=env.peer_ip, dst=env.guest_ip, id=ident, proto=17, flags="MF",
                        frag=0) / Raw(data),
                     IP(src=env.peer_ip, dst=env.guest_ip, id=ident, proto=17, frag=4) / Raw(data)]
        elif kind == 2:                # tiny: a TCP SYN to a closed port in 8-byte pieces
            p = IP(src=env.peer_ip, dst=env.guest_ip, id=ident) / \
                TCP(sport=30000 + k % 1000, dport=env.closed_port, flags="S")
            frags = fragment(p, fragsize=8)
        elif kind == 3:                # a first fragment never completed
            frags = [IP(src=env.peer_ip, dst=env.guest_ip, id=ident, proto=17, flags="MF",
                        frag=0) / Raw(bytes(200))]
        else:                          # past the end of an IP datagram
            frags = [IP(src=env.peer_ip, dst=env.guest_ip, id=ident, proto=17, flags="MF",
                        frag=8189) / Raw(bytes(64))]
        for fr in frags:
            b.frames.append(bytes(_eth(env) / fr))
            b.expect["ip_frag.recv"] += 1
    return [b]


def tcp_flags(env: Env, rng: random.Random) -> list[Batch]:
    """Every one of the 256 TCP flag combinations against the listening
    port and a closed port, each from its own source port.  No PCB (the
    closed port): every segment without RST is answered with RST and
    counted (tcp.proterr); the listening port: a SYN without ACK or RST
    makes a half-open connection, one with ACK gets a RST."""
    b = Batch("tcp-flags", expect={"tcp.recv": 512, "tcp.proterr": 128})
    for port in (env.listen_port, env.closed_port):
        for flags in range(256):
            p = _ip(env) / TCP(sport=50000 + flags + (256 if port == env.closed_port else 0),
                               dport=port, flags=flags, seq=rng.getrandbits(32),
                               ack=rng.getrandbits(32), urgptr=rng.randrange(2) * 10)
            b.frames.append(bytes(p))
    return [b]


def syn_flood(env: Env, rng: random.Random, n: int) -> list[Batch]:
    """n SYNs to the listening port from 16 off-link addresses (so the
    guest answers through its gateway, the host) and thousands of source
    ports.  More than MEMP_NUM_TCP_PCB: lwIP recycles or refuses PCBs."""
    t = bytes(_eth(env) / IP(src="198.51.100.1", dst=env.guest_ip) /
              TCP(sport=1, dport=env.listen_port, flags="S", options=[("MSS", 1460)]))
    b = Batch("syn-flood", expect={"tcp.recv": n})
    for i in range(n):
        f = bytearray(t)
        f[ETH + 15] = 1 + i % 16
        f[ETH + 4:ETH + 6] = struct.pack("!H", i & 0xFFFF)
        off = l4_offset(f)
        f[off:off + 2] = struct.pack("!H", 1024 + i % 60000)
        f[off + 4:off + 8] = struct.pack("!I", rng.getrandbits(32))
        fix_ip(f)
        set_l4(f, 6, 16)
        b.frames.append(bytes(f))
    return [b]


def bad_arp(env: Env, rng: random.Random, reps: int) -> list[Batch]:
    """ARP that RFC 826 refuses (wrong hardware type, protocol, address
    lengths: etharp.proterr), unknown opcodes (etharp.err), and ARP that
    is well-formed but hostile: replies nobody asked for, a broadcast
    sender address, another host claiming the guest's own address."""
    b = Batch("bad-arp", expect={"etharp.proterr": 0, "etharp.err": 0})
    base = dict(hwsrc=env.peer_mac, psrc="10.0.2.77", pdst=env.guest_ip)
    for r in range(reps):
        for fld, val in (("hwtype", 6), ("ptype", 0x86dd), ("hwlen", 8), ("plen", 16)):
            b.frames.append(bytes(_eth(env) / ARP(op=1, **{fld: val}, **base)))
            b.expect["etharp.proterr"] += 1
        for op in (0, 3, 4, 8, 9, 255, rng.randrange(5, 255)):
            b.frames.append(bytes(_eth(env) / ARP(op=op, **base)))
            b.expect["etharp.err"] += 1
        b.frames.append(bytes(_eth(env) / ARP(op=2, hwsrc="ff:ff:ff:ff:ff:ff", psrc="10.0.2.78",
                                              pdst=env.guest_ip)))
        b.frames.append(bytes(_eth(env) / ARP(op=2, hwsrc="02:66:66:66:66:66", psrc=env.guest_ip,
                                              pdst=env.guest_ip)))
        b.frames.append(bytes(_eth(env) / ARP(op=1, hwsrc="01:00:5e:00:00:01",
                                              psrc=f"10.0.2.{100 + r % 100}", pdst=env.guest_ip)))
    return [b]


def odd_ethernet(env: Env, rng: random.Random, reps: int) -> list[Batch]:
    """Runts (under 14 bytes) and frames longer than 1514 bytes that still
    fit the driver's buffer: driver.rx_drop_bad.  Unknown ethertypes and
    VLAN tags (no VLAN support): etharp.proterr.  Never a zero-length
    datagram: QEMU 7.2's dgram backend takes one for the end of the
    connection and stops reading the socket."""
    b = Batch("odd-ethernet", expect={"driver.rx_drop_bad": 0, "etharp.proterr": 0})
    hdr = bytes(_eth(env, type=0x0800))
    for _ in range(reps):
        for n in range(1, ETH):
            b.frames.append(hdr[:n])
            b.expect["driver.rx_drop_bad"] += 1
        for n in (1515, 1516, 1600, rng.randrange(1517, RX_FRAME_MAX), RX_FRAME_MAX):
            b.frames.append(hdr + bytes(rng.randrange(256) for _ in range(n - ETH)))
            b.expect["driver.rx_drop_bad"] += 1
        for et in (0x0000, 0x88b5, 0x86dd, 0x8100, 0xffff, rng.randrange(0x0600, 0x10000)):
            if et in (0x0800, 0x0806):
                et = 0x88b6
            b.frames.append(bytes(_eth(env, type=et)) + bytes(46))
            b.expect["etharp.proterr"] += 1
    return [b]


def mutations(env: Env, rng: random.Random, n: int) -> list[Batch]:
    """Valid frames of every template with 1-4 random bytes overwritten
    after the Ethernet header (IP version, lengths, flags, addresses,
    options...): whatever they become, nothing may break.  No counter is
    expected of them."""
    t = [v for k, v in _templates(env).items()]
    b = Batch("mutations")
    for _ in range(n):
        f = bytearray(rng.choice(t))
        for _ in range(rng.randrange(1, 5)):
            f[rng.randrange(ETH, len(f))] = rng.randrange(256)
        if rng.randrange(2):
            fix_ip(f)                      # half of them with a header checksum that holds
        b.frames.append(bytes(f))
    return [b]


def flood(env: Env = Env(), seed: int = 7, scale: float = 1.0) -> list[Batch]:
    """Every class; about 100,000 frames at scale 1."""
    rng = random.Random(seed)

    def s(n: int) -> int:
        return max(1, int(n * scale))

    out = []
    out += bad_checksums(env, rng, s(12000), s(20000), s(12000), s(12000))
    out += truncated(env, s(10))
    out += lying_lengths(env, rng, s(40))
    out += ip_options(env, rng, s(2000))
    out += fragments(env, rng, s(8000))
    out += tcp_flags(env, rng)
    out += syn_flood(env, rng, s(5000))
    out += bad_arp(env, rng, s(150))
    out += odd_ethernet(env, rng, s(40))
    out += mutations(env, rng, s(22000))
    return out


def expected(batches: list[Batch]) -> dict:
    """The sum of every batch's expectations: counter -> minimum delta."""
    tot: dict[str, int] = {}
    for b in batches:
        for k, v in b.expect.items():
            tot[k] = tot.get(k, 0) + v
    return tot
