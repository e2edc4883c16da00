"""Ethernet frames for the capture tests, built with scapy: the common
traffic tcpdump users look at (TCP handshake and data, UDP/DNS, ICMP echo,
ARP, IPv6) and awkward ones (truncated headers, IP options, fragments,
VLAN tags, runts).  `frames()` returns (name, bytes) pairs; the same list
feeds the cBPF differential test, the line formatter test (against real
`tcpdump -r`) and the QEMU end-to-end test."""
from __future__ import annotations

from scapy.all import (ARP, DNS, DNSQR, DNSRR, DNSRROPT, ICMP, IP, TCP, UDP, Dot1Q, Ether, IPv6,
                       ICMPv6EchoRequest, Raw, raw)

G_MAC, H_MAC = "52:54:00:12:34:56", "52:55:0a:00:02:02"
GUEST, GW = "10.0.2.15", "10.0.2.2"


def _e(src=H_MAC, dst=G_MAC):
    return Ether(src=src, dst=dst)


def common():
    """Well-formed frames, the kind tcpdump prints every day."""
    return [
        ("syn", _e() / IP(src=GW, dst=GUEST, id=1) /
         TCP(sport=40000, dport=80, flags="S", seq=1000, window=64240,
             options=[("MSS", 1460)])),
        ("synack", _e(G_MAC, H_MAC) / IP(src=GUEST, dst=GW, id=2) /
         TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001, window=8192,
             options=[("MSS", 1460)])),
        ("ack", _e() / IP(src=GW, dst=GUEST, id=3) /
         TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001, window=64240)),
        ("get", _e() / IP(src=GW, dst=GUEST, id=4) /
         TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5001, window=64240) /
         Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("fin", _e(G_MAC, H_MAC) / IP(src=GUEST, dst=GW, id=5) /
         TCP(sport=80, dport=40000, flags="FA", seq=5001, ack=1028, window=8192)),
        ("rst", _e() / IP(src=GW, dst=GUEST, id=6) /
         TCP(sport=40001, dport=81, flags="R", seq=7, window=0)),
        ("ssh", _e() / IP(src="192.168.1.7", dst=GUEST, id=7) /
         TCP(sport=51000, dport=22, flags="PA", seq=1, ack=1, window=500) / Raw(b"x" * 36)),
        ("dns", _e(G_MAC, H_MAC) / IP(src=GUEST, dst="10.0.2.3", id=8) /
         UDP(sport=5353, dport=53) / DNS(id=0x1234, rd=1, qd=DNSQR(qname="example.com"))),
        ("dnsrep", _e() / IP(src="10.0.2.3", dst=GUEST) / UDP(sport=53, dport=5353) /
         DNS(id=0x1234, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.com"),
             an=DNSRR(rrname="example.com", rdata="93.184.216.34"))),
        ("dnsnx", _e() / IP(src="10.0.2.3", dst=GUEST) / UDP(sport=53, dport=5353) /
         DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="nosuch.example"))),
        ("dnscname", _e() / IP(src="10.0.2.3", dst=GUEST) / UDP(sport=53, dport=1053) /
         DNS(id=8, qr=1, aa=1, ra=1, qd=DNSQR(qname="www.example.org", qtype="AAAA"),
             an=DNSRR(rrname="www.example.org", type="CNAME", rdata="example.org") /
             DNSRR(rrname="example.org", type="AAAA", rdata="2001:db8::1"))),
        ("dnsedns", _e(G_MAC, H_MAC) / IP(src=GUEST, dst="10.0.2.3") / UDP(sport=1053, dport=53) /
         DNS(id=9, rd=1, qd=DNSQR(qname="example.net", qtype="MX"), ar=DNSRROPT(rclass=1232))),
        ("udp", _e() / IP(src=GW, dst=GUEST, id=9) / UDP(sport=9999, dport=7777) /
         Raw(b"hello")),
        ("ping", _e(G_MAC, H_MAC) / IP(src=GUEST, dst=GW, id=10) /
         ICMP(type=8, id=0x77, seq=1) / Raw(b"abcdefgh" * 7)),
        ("pong", _e() / IP(src=GW, dst=GUEST, id=11) /
         ICMP(type=0, id=0x77, seq=1) / Raw(b"abcdefgh" * 7)),
        ("arpreq", Ether(src=G_MAC, dst="ff:ff:ff:ff:ff:ff") /
         ARP(op=1, hwsrc=G_MAC, psrc=GUEST, pdst=GW)),
        ("arprep", _e() / ARP(op=2, hwsrc=H_MAC, psrc=GW, hwdst=G_MAC, pdst=GUEST)),
    ]


def awkward():
    """Frames a filter must not trip over."""
    return [
        ("ipv6", _e() / IPv6(src="fe80::1", dst="fe80::2") / ICMPv6EchoRequest(id=1, seq=2)),
        ("ipv6tcp", _e() / IPv6(src="fe80::1", dst="fe80::2") / TCP(sport=80, dport=1234)),
        ("vlan", _e() / Dot1Q(vlan=5) / IP(src=GW, dst=GUEST) / TCP(dport=80)),
        ("ipopts", _e() / IP(src=GW, dst=GUEST, options=b"\x01\x01\x01\x00") /
         TCP(sport=80, dport=40000)),
        ("frag", _e() / IP(src=GW, dst=GUEST, flags="MF", frag=0) / Raw(b"\x00\x50" + b"z" * 30)),
        ("frag2", _e() / IP(src=GW, dst=GUEST, frag=100, proto=6) / Raw(b"\x00\x50\x00\x50" * 8)),
        ("truncip", raw(_e() / IP(src=GW, dst=GUEST) / TCP(dport=80))[:30]),
        ("trunctcp", raw(_e() / IP(src=GW, dst=GUEST) / TCP(dport=80))[:40]),
        ("runt", bytes(_e())[:10]),
        ("ethonly", bytes(_e())),
        ("badihl", raw(_e() / IP(src=GW, dst=GUEST, ihl=15) / TCP(dport=80))),
        # QEMU's user network pads its ARP replies to a 64-byte frame:
        # tcpdump counts the padding in the length it prints (50, not 28)
        ("arppad", raw(_e() / ARP(op=2, hwsrc=H_MAC, psrc=GW, hwdst=G_MAC, pdst=GUEST))
         + bytes(22)),
    ]


def frames() -> list[tuple[str, bytes]]:
    out = []
    for name, p in common() + awkward():
        out.append((name, p if isinstance(p, bytes) else raw(p)))
    return out


EXPRESSIONS = [
    "", "tcp", "udp", "icmp", "arp", "ip", "ip6", "not tcp", "tcp port 80",
    "port 53", "udp port 53", "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)", "host 10.0.2.2",
    "src host 10.0.2.15", "dst port 80 or dst port 22", "net 192.168.0.0/16",
    "icmp[icmptype] == icmp-echo", "less 64", "greater 100", "ether broadcast",
    "ether host 52:54:00:12:34:56", "vlan", "vlan and tcp", "ip[8] > 32",
    "tcp and (port 80 or port 22) and not host 192.168.1.7", "portrange 20-90",
    "ip proto 17", "len > 60 and udp", "ip[6:2] & 0x1fff != 0", "ip6 and tcp",
    "tcp[13] = 2", "ether[0] & 1 = 1", "arp and ether src 52:54:00:12:34:56",
]
