"""One line per packet, the way tcpdump prints it (pure: no I/O).

`Formatter(numeric, quick).line(wall_ns, frame, wirelen)` returns the line
`tcpdump [-n] [-q]` prints for an Ethernet frame: local time, then IPv4 /
IPv6 addresses and ports, TCP flags, sequence and acknowledgement numbers
(relative after the handshake, as tcpdump tracks each conversation), window,
options and length, UDP (DNS summarised: pktdns.py), ICMP echo with id/seq, ARP.  Without `numeric`,
well-known ports are named from the services database as tcpdump does
(addresses stay numeric: no reverse DNS).  Frames cut short end in `[|proto]`
like tcpdump's; nothing raises.  tests/test_pktfmt.py compares the lines with
real `tcpdump -r` output on pcaps made with scapy.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import time

from .pktdns import dns_summary

TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "."),
             (0x20, "U"), (0x40, "E"), (0x80, "W"))
HTTP_PORTS = {80, 8080, 3128}
HTTP_STARTS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"TRACE ",
               b"CONNECT ", b"PATCH ", b"HTTP/1.")
ICMP_TYPES = {0: "echo reply", 8: "echo request", 3: "unreachable", 11: "time exceeded"}


class Truncated(Exception):
    pass


def need(buf: bytes, n: int, what: str) -> None:
    if len(buf) < n:
        raise Truncated(what)


class Formatter:
    def __init__(self, numeric: bool = True, quick: bool = False) -> None:
        self.numeric = numeric
        self.quick = quick
        self.conv: dict = {}            # TCP conversation -> (seq base, ack base)

    # ------------------------------------------------------------ entry
    def line(self, wall_ns: int, frame: bytes, wirelen: int | None = None) -> str:
        wirelen = len(frame) if wirelen is None else wirelen
        try:
            body = self.ether(frame, wirelen)
        except Truncated as t:
            body = f"{t.args[0]}"
        return f"{self.stamp(wall_ns)} {body}"

    @staticmethod
    def stamp(wall_ns: int) -> str:
        sec, ns = divmod(wall_ns, 1_000_000_000)
        return time.strftime("%H:%M:%S", time.localtime(sec)) + f".{ns // 1000:06d}"

    def port(self, p: int, proto: str) -> str:
        if self.numeric:
            return str(p)
        try:
            return socket.getservbyport(p, proto)
        except OSError:
            return str(p)

    # ------------------------------------------------------------ layers
    def ether(self, f: bytes, wirelen: int) -> str:
        if len(f) < 14:
            return " [|ether]"
        etype = struct.unpack_from(">H", f, 12)[0]
        p = f[14:]
        while etype == 0x8100 and len(p) >= 4:     # 802.1Q: tcpdump shows the inside
            etype, p = struct.unpack_from(">H", p, 2)[0], p[4:]
        if etype == 0x0800:
            return self.ipv4(p)
        if etype == 0x86DD:
            return self.ipv6(p)
        if etype == 0x0806:
            return self.arp(p, wirelen - (len(f) - len(p)))
        return f"ethertype Unknown (0x{etype:04x}), length {wirelen}"

    def ipv4(self, p: bytes) -> str:
        if len(p) < 20:
            return "IP  [|ip]"
        ihl = (p[0] & 0x0F) * 4
        total = struct.unpack_from(">H", p, 2)[0]
        if ihl < 20 or total < ihl:
            return f"IP bad-len {total}"
        proto, frag = p[9], struct.unpack_from(">H", p, 6)[0]
        src, dst = socket.inet_ntoa(p[12:16]), socket.inet_ntoa(p[16:20])
        pre = "IP "
        if len(p) < total:
            pre = f"IP truncated-ip - {total - len(p)} bytes missing! "
        payload = p[ihl:total]
        if frag & 0x1FFF:
            return f"{pre}{src} > {dst}: ip-proto-{proto}"
        return pre + self.transport(proto, src, dst, payload, total - ihl, p[12:20])

    def ipv6(self, p: bytes) -> str:
        if len(p) < 40:
            return "IP6  [|ip6]"
        plen, nxt = struct.unpack_from(">HB", p, 4)
        src = str(ipaddress.IPv6Address(p[8:24]))
        dst = str(ipaddress.IPv6Address(p[24:40]))
        return "IP6 " + self.transport(nxt, src, dst, p[40:40 + plen], plen, p[8:40])

    def transport(self, proto: int, src: str, dst: str, seg: bytes, length: int,
                  addrs: bytes) -> str:
        try:
            if proto == 6:
                return self.tcp(src, dst, seg, length, addrs)
            if proto == 17:
                return self.udp(src, dst, seg, length)
            if proto == 1:
                return f"{src} > {dst}: " + self.icmp(seg, length)
            if proto == 58:
                return f"{src} > {dst}: " + self.icmp6(seg, length)
        except Truncated as t:
            return f"{src} > {dst}:  [|{t.args[0]}]"
        return f"{src} > {dst}:  ip-proto-{proto} {length}"

    def udp(self, src: str, dst: str, s: bytes, length: int) -> str:
        need(s, 8, "udp")
        sp, dp, ulen = struct.unpack_from(">HHH", s, 0)
        head = f"{src}.{self.port(sp, 'udp')} > {dst}.{self.port(dp, 'udp')}: "
        if 53 in (sp, dp) and not self.quick:
            text = dns_summary(s[8:ulen], ulen - 8)
            if text is not None:
                return head + text
        return head + f"UDP, length {ulen - 8}"

    def icmp(self, s: bytes, length: int) -> str:
        need(s, 4, "icmp")
        t = s[0]
        if t in (0, 8):
            need(s, 8, "icmp")
            ident, seq = struct.unpack_from(">HH", s, 4)
            return f"ICMP {ICMP_TYPES[t]}, id {ident}, seq {seq}, length {length}"
        return f"ICMP {ICMP_TYPES.get(t, f'type-#{t}')}, length {length}"

    def icmp6(self, s: bytes, length: int) -> str:
        need(s, 4, "icmp6")
        t = s[0]
        if t in (128, 129):
            need(s, 8, "icmp6")
            ident, seq = struct.unpack_from(">HH", s, 4)
            kind = "echo request" if t == 128 else "echo reply"
            return f"ICMP6, {kind}, id {ident}, seq {seq}, length {length}"
        return f"ICMP6, type {t}, length {length}"

    def arp(self, p: bytes, length: int) -> str:
        """length: the bytes after the link header on the wire, padding
        included (what tcpdump prints: 28 for a bare ARP packet, 46 or 50
        for one padded to Ethernet's minimum frame)."""
        if len(p) < 28:
            return "ARP, [|ARP]"
        op = struct.unpack_from(">H", p, 6)[0]
        sha, spa, tpa = p[8:14], socket.inet_ntoa(p[14:18]), socket.inet_ntoa(p[24:28])
        if op == 1:
            return f"ARP, Request who-has {tpa} tell {spa}, length {length}"
        if op == 2:
            mac = ":".join(f"{b:02x}" for b in sha)
            return f"ARP, Reply {spa} is-at {mac}, length {length}"
        return f"ARP, op {op}, length {length}"

    # ------------------------------------------------------------ TCP
    def tcp(self, src: str, dst: str, s: bytes, length: int, addrs: bytes) -> str:
        need(s, 4, "tcp")
        sp, dp = struct.unpack_from(">HH", s, 0)
        head = f"{src}.{self.port(sp, 'tcp')} > {dst}.{self.port(dp, 'tcp')}: "
        if len(s) < 20:
            return head + " [|tcp]"
        seq, ack = struct.unpack_from(">II", s, 4)
        off, flags, win, _, urg = struct.unpack_from(">BBHHH", s, 12)
        hlen = (off >> 4) * 4
        if hlen < 20:
            return head + f"tcp {length} [bad hdr length {hlen} - too short, < 20]"
        data = length - hlen
        if self.quick:
            return head + f"tcp {data}"
        seq, ack = self.relative(addrs, sp, dp, flags, seq, ack)
        fl = "".join(c for b, c in TCP_FLAGS if flags & b) or "none"
        out = [f"Flags [{fl}]"]
        if data > 0 or flags & 0x07:
            out.append(f"seq {seq}:{(seq + data) & 0xFFFFFFFF}" if data > 0 else f"seq {seq}")
        if flags & 0x10:
            out.append(f"ack {ack}")
        out.append(f"win {win}")
        if flags & 0x20:
            out.append(f"urg {urg}")
        if hlen > 20:
            need(s, hlen, "tcp")
            out.append(f"options [{self.options(s[20:hlen])}]")
        out.append(f"length {data}")
        text = head + ", ".join(out)
        body = s[hlen:]
        if data > 0 and (sp in HTTP_PORTS or dp in HTTP_PORTS) and body.startswith(HTTP_STARTS):
            text += ": HTTP: " + body.split(b"\r\n", 1)[0].decode("latin-1")
        elif data > 0 and (sp in HTTP_PORTS or dp in HTTP_PORTS):
            text += ": HTTP"
        return text

    def relative(self, addrs: bytes, sp: int, dp: int, flags: int, seq: int, ack: int):
        """tcpdump's relative numbers: the first ACK-bearing packet of a
        conversation (or a SYN) sets the bases; later ones are shown
        relative to them."""
        if not flags & 0x10:
            return seq, ack
        half = len(addrs) // 2
        a, b = addrs[:half], addrs[half:]
        rev = a > b or (a == b and sp > dp)
        key = (b, a, dp, sp) if rev else (a, b, sp, dp)
        base = self.conv.get(key)
        if base is None or flags & 0x02:
            self.conv[key] = (ack - 1, seq) if rev else (seq, ack - 1)
            return seq, ack
        s0, a0 = base
        if rev:
            return (seq - a0) & 0xFFFFFFFF, (ack - s0) & 0xFFFFFFFF
        return (seq - s0) & 0xFFFFFFFF, (ack - a0) & 0xFFFFFFFF

    @staticmethod
    def options(o: bytes) -> str:
        out, i = [], 0
        while i < len(o):
            kind = o[i]
            if kind == 0:
                out.append("eol")
                break
            if kind == 1:
                out.append("nop")
                i += 1
                continue
            if i + 1 >= len(o) or o[i + 1] < 2 or i + o[i + 1] > len(o):
                out.append("[|tcp]")
                break
            ln, v = o[i + 1], o[i + 2:i + o[i + 1]]
            if kind == 2 and ln == 4:
                out.append(f"mss {struct.unpack('>H', v)[0]}")
            elif kind == 3 and ln == 3:
                out.append(f"wscale {v[0]}")
            elif kind == 4:
                out.append("sackOK")
            elif kind == 8 and ln == 10:
                out.append("TS val {} ecr {}".format(*struct.unpack(">II", v)))
            elif kind == 5:
                out.append("sack {} ".format(len(v) // 8) + " ".join(
                    "{{{}:{}}}".format(*struct.unpack_from(">II", v, j))
                    for j in range(0, len(v) - 7, 8)))
            else:
                out.append(f"opt-{kind}:" + v.hex())
            i += ln
        return ",".join(out)
