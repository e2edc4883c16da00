"""The host's end of an instance's raw-frame link (`unik boot --net
dgram:QEMU_PORT:PEER_PORT`): Ethernet frames in UDP datagrams on loopback.

    link = Link(qport)                 # binds 127.0.0.1:PEER (link.port)
    link.barrier()                     # every frame sent before it was processed
    with link.tcp(80) as c:            # a hand-rolled TCP client (Tcp)
        c.send(b"GET / HTTP/1.1\\r\\n...")
        head = c.recv_until(b"\\r\\n\\r\\n")
    link.close()

The host plays 10.0.2.2 (the guest's gateway, so replies to any
off-subnet source come here too) with PEER_MAC.  A reader thread answers
the guest's ARP requests for every address but its own, completes
barriers (ICMP echo replies with BARRIER_ID), feeds the TCP connections
it tracks, and counts the rest by kind (`link.seen`).

Barrier: frames from the host reach lwIP's tcpip thread in order (UDP
socket -> QEMU -> virtio ring -> interrupt -> tcpip mailbox), so an echo
reply to a request sent after a batch means the batch was processed (or
dropped, and counted, on the way).  Used for pacing floods.
"""
from __future__ import annotations

import random
import socket
import struct
import threading
import time

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether

GUEST_IP = "10.0.2.15"
PEER_IP = "10.0.2.2"
PEER_MAC = "02:00:00:00:00:02"
GUEST_MAC = "52:54:00:12:34:56"       # QEMU's default for the first NIC
BARRIER_ID = 0xBA55


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def host_socket_drops(port: int) -> int:
    """Datagrams the host kernel dropped at the UDP socket bound to
    127.0.0.1:port (QEMU's end of the link: it stops reading while the
    guest has no receive buffer posted), from /proc/net/udp."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            w = line.split()
            if w[1] == want:
                return int(w[-1])
    raise AssertionError(f"no UDP socket bound to 127.0.0.1:{port} (is QEMU running?)")


class Link:
    """The host end of the dgram link (see the module docstring)."""

    def __init__(self, qport: int, guest_mac: str = GUEST_MAC) -> None:
        self.qport = qport
        self.guest_mac = guest_mac
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.seen: dict[str, int] = {}
        self.replies: list[bytes] = []       # ICMP echo replies (not barriers)
        self.arp_replies: list[tuple] = []   # (hwdst, pdst) of the guest's ARP replies
        self._barrier_seq = 0
        self._barriers_done: set[int] = set()
        self._conns: dict[tuple[int, int], "Tcp"] = {}
        self._cv = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---------------------------------------------------------- sending
    def send(self, frame: bytes) -> None:
        self.sock.sendto(frame, ("127.0.0.1", self.qport))
        self.sent += 1

    def ether(self):
        """An Ether header from the host to the guest."""
        return Ether(dst=self.guest_mac, src=PEER_MAC)

    def barrier(self, timeout: float = 20.0) -> float:
        """Send an echo request and wait for its reply: every frame sent
        before has been through lwIP.  Resent every second (a reply or
        request may itself be dropped under load).  Returns the seconds."""
        with self._cv:
            self._barrier_seq = (self._barrier_seq + 1) & 0xFFFF
            seq = self._barrier_seq
        req = bytes(self.ether() / IP(src=PEER_IP, dst=GUEST_IP) /
                    ICMP(type=8, id=BARRIER_ID, seq=seq) / b"barrier")
        t0 = time.monotonic()
        end = t0 + timeout
        while True:
            self.send(req)
            with self._cv:
                self._cv.wait_for(lambda: seq in self._barriers_done or self._closed,
                                  min(1.0, max(0.0, end - time.monotonic())))
                if seq in self._barriers_done:
                    self._barriers_done.discard(seq)
                    return time.monotonic() - t0
            if time.monotonic() > end:
                raise AssertionError(f"no echo reply to barrier {seq} within {timeout:g}s: "
                                     "the guest stopped processing frames")

    def wait_replies(self, n: int, timeout: float = 10.0) -> list[bytes]:
        """The first n ICMP echo replies that were not barriers."""
        with self._cv:
            if not self._cv.wait_for(lambda: len(self.replies) >= n, timeout):
                raise AssertionError(f"{len(self.replies)} echo replies of {n} within {timeout:g}s")
            return list(self.replies[:n])

    def tcp(self, dport: int = 80, sport: int | None = None) -> "Tcp":
        """A connected hand-rolled TCP client to the guest's dport."""
        c = Tcp(self, dport, sport or random.Random().randrange(20000, 60000))
        c.connect()
        return c

    def close(self) -> None:
        self._closed = True
        with self._cv:
            self._cv.notify_all()
        self.sock.close()
        self._reader.join(5)

    # ---------------------------------------------------------- receiving
    def _count(self, kind: str) -> None:
        self.seen[kind] = self.seen.get(kind, 0) + 1

    def _read(self) -> None:
        while not self._closed:
            try:
                f, _ = self.sock.recvfrom(65536)
            except OSError:
                return
            try:
                self._frame(f)
            except Exception:          # a frame scapy cannot take apart: counted
                self._count("undecodable")

    def _frame(self, f: bytes) -> None:
        if len(f) >= 42 and f[12:14] == b"\x08\x06":
            self._arp(f)
            return
        if len(f) < 34 or f[12:14] != b"\x08\x00":
            self._count("other")
            return
        proto = f[23]
        if proto == 1:
            pkt = Ether(f)
            icmp = pkt[ICMP]
            if icmp.type == 0 and icmp.id == BARRIER_ID:
                with self._cv:
                    self._barriers_done.add(icmp.seq)
                    self._cv.notify_all()
                return
            self._count(f"icmp{icmp.type}")
            if icmp.type == 0:
                with self._cv:
                    self.replies.append(f)
                    self._cv.notify_all()
            return
        if proto == 6:
            ihl = (f[14] & 0x0F) * 4
            sport, dport = struct.unpack("!HH", f[14 + ihl:18 + ihl])
            conn = self._conns.get((dport, sport))
            if conn:
                conn._input(f, 14 + ihl)
                return
            self._count("tcp-" + str(TCP(f[14 + ihl:]).flags))
            return
        self._count(f"ip{proto}")

    def _arp(self, f: bytes) -> None:
        """Answer a request for any address but the guest's own."""
        a = ARP(f[14:])
        if a.op == 2:
            with self._cv:
                self.arp_replies.append((a.hwdst, a.pdst))
                self._cv.notify_all()
        if a.op != 1 or a.pdst == GUEST_IP:
            self._count("arp")
            return
        self._count("arp-request")
        self.send(bytes(Ether(dst=a.hwsrc, src=PEER_MAC) /
                        ARP(op=2, hwsrc=PEER_MAC, psrc=a.pdst, hwdst=a.hwsrc, pdst=a.psrc)))


class Tcp:
    """A minimal TCP client over the link: three-way handshake, data in
    order (out-of-order guest segments are ignored: the guest resends),
    an ACK for every data segment, FIN or RST to end.  Enough to speak
    HTTP to the guest and to aim crafted segments at a live connection
    (`seg` builds one with this connection's addresses)."""

    def __init__(self, link: Link, dport: int, sport: int, iss: int | None = None) -> None:
        self.link, self.dport, self.sport = link, dport, sport
        self.iss = random.Random().getrandbits(32) if iss is None else iss & 0xFFFFFFFF
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.irs = None
        self.data = bytearray()
        self.fin = False
        self.rst = False
        self.cv = link._cv
        link._conns[(sport, dport)] = self

    def seg(self, flags: str = "A", seq: int | None = None, ack: int | None = None,
            payload: bytes = b"", **tcp) -> bytes:
        """One frame of this connection (defaults: the current seq/ack)."""
        return bytes(self.link.ether() / IP(src=PEER_IP, dst=GUEST_IP) /
                     TCP(sport=self.sport, dport=self.dport, flags=flags,
                         seq=self.snd_nxt if seq is None else seq & 0xFFFFFFFF,
                         ack=(self.rcv_nxt or 0) if ack is None else ack & 0xFFFFFFFF,
                         window=65535, **tcp) / payload)

    def connect(self, timeout: float = 10.0, syn: list | None = None) -> None:
        """Handshake.  syn: the frames to send as the SYN (e.g. IP
        fragments), sent once; by default one plain SYN, resent every
        second."""
        frames = syn or [self.seg("S", ack=0, options=[("MSS", 1460)])]
        self.snd_nxt += 1
        end = time.monotonic() + timeout
        sent = False
        while self.rcv_nxt is None:
            if not (sent and syn):
                for f in frames:
                    self.link.send(f)
                sent = True
            with self.cv:
                self.cv.wait_for(lambda: self.rcv_nxt is not None or self.rst, 1.0)
            if self.rst:
                raise AssertionError(f"connection to port {self.dport} refused (RST)")
            if time.monotonic() > end:
                raise AssertionError(f"no SYN-ACK from port {self.dport} within {timeout:g}s")
        self.link.send(self.seg("A"))

    def _input(self, f: bytes, off: int) -> None:
        """A segment from the guest (reader thread): f the frame, off
        where its TCP header starts."""
        iplen = struct.unpack("!H", f[16:18])[0]
        seq, _ack, doff, flags = struct.unpack("!IIBB", f[off + 4:off + 14])
        data = f[off + (doff >> 4) * 4:14 + iplen]
        with self.cv:
            if flags & 0x04:
                self.rst = True
            elif flags & 0x12 == 0x12 and self.rcv_nxt is None:
                self.irs = seq
                self.rcv_nxt = (seq + 1) & 0xFFFFFFFF
            elif self.rcv_nxt is not None and seq == self.rcv_nxt:
                self.data += data
                self.rcv_nxt = (self.rcv_nxt + len(data) + (flags & 0x01)) & 0xFFFFFFFF
                self.fin = self.fin or bool(flags & 0x01)
                if data or flags & 0x01:
                    self.link.send(self.seg("A"))
            elif self.rcv_nxt is not None and (data or flags & 0x01):
                self.link.send(self.seg("A"))     # a retransmission: acknowledge again
            self.cv.notify_all()

    def send(self, data: bytes, mss: int = 1400) -> None:
        for i in range(0, len(data), mss):
            self.link.send(self.seg("PA", payload=data[i:i + mss]))
            self.snd_nxt = (self.snd_nxt + len(data[i:i + mss])) & 0xFFFFFFFF

    def recv_until(self, pred, timeout: float = 15.0) -> bytes:
        """Wait until pred(bytes received so far) (or FIN/RST); return them."""
        with self.cv:
            ok = self.cv.wait_for(lambda: pred(bytes(self.data)) or self.fin or self.rst, timeout)
            if not ok:
                raise AssertionError(f"timed out after {timeout:g}s; received {bytes(self.data)!r}")
            return bytes(self.data)

    def close(self, timeout: float = 15.0) -> None:
        """FIN first (the guest then closes without TIME_WAIT), wait for its FIN."""
        self.link.send(self.seg("FA"))
        self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
        with self.cv:
            ok = self.cv.wait_for(lambda: self.fin or self.rst, timeout)
        self.link._conns.pop((self.sport, self.dport), None)
        if not ok:
            self.reset()
            raise AssertionError(f"no FIN from port {self.dport} within {timeout:g}s")

    def reset(self) -> None:
        self.link.send(self.seg("R", ack=0))
        self.link._conns.pop((self.sport, self.dport), None)

    def __enter__(self) -> "Tcp":
        return self

    def __exit__(self, *exc) -> None:
        if (self.sport, self.dport) in self.link._conns:
            self.reset()
