"""The host side of `unik ping` (docs/netstat.md, "ping"): start the
guest's ping (NET_PING_START), read its NET_PING_EVENT frames, stop it
(NET_PING_STOP) for the kernel's exact totals, and format all of it as
iputils' ping does.  `Ping` talks to a Channel; the formatting functions
are pure.
"""
from __future__ import annotations

import ipaddress
import math

from . import protocol as P
from .errors import ChannelTimeout, UnikError

IP_HDR, ICMP_HDR = 20, 8


def parse_host(host: str) -> bytes:
    """HOST as 4 bytes (dotted IPv4 only: the guest has no DNS)."""
    try:
        return ipaddress.IPv4Address(host).packed
    except ValueError:
        raise UnikError(f"unik ping: {host}: not an IPv4 address",
                        "give a dotted address, e.g. 10.0.2.2 (the guest resolves no names)") \
            from None


def ms(ns: int) -> str:
    """An RTT in ms with iputils' precision (3 decimals below 1 ms, fewer above)."""
    us = ns // 1000
    if us >= 100000:
        return f"{us // 1000}"
    if us >= 10000:
        return f"{us // 1000}.{(us % 1000) // 100:01d}"
    if us >= 1000:
        return f"{us // 1000}.{(us % 1000) // 10:02d}"
    return f"{us // 1000}.{us % 1000:03d}"


def header(host: str, size: int) -> str:
    return f"PING {host} ({host}) {size}({size + ICMP_HDR + IP_HDR}) bytes of data."


def reply_line(ev: dict) -> str:
    frm = ".".join(str(b) for b in ev["from_addr"].to_bytes(4, "little"))
    return (f"{ev['bytes']} bytes from {frm}: icmp_seq={ev['seq']} ttl={ev['ttl']} "
            f"time={ms(ev['rtt_ns'])} ms")


def summary(host: str, t: dict) -> list[str]:
    """ping's closing lines from the kernel's totals (NET_PING_STOP)."""
    tx, rx = t["transmitted"], t["received"]
    loss = (tx - rx) * 100 // tx if tx else 0
    errs = f", +{t['errors']} errors" if t["errors"] else ""
    out = ["", f"--- {host} ping statistics ---",
           f"{tx} packets transmitted, {rx} received{errs}, {loss}% packet loss, "
           f"time {t['elapsed_ns'] // 1000000}ms"]
    if rx:
        avg = t["rtt_sum_ns"] / rx
        avg_us = avg / 1000
        mdev_us = math.sqrt(max(t["rtt_sum2_us"] / rx - avg_us * avg_us, 0.0))
        # as iputils: whole microseconds, then three decimals of ms
        out.append(f"rtt min/avg/max/mdev = {t['rtt_min_ns'] // 1000 / 1000:.3f}/"
                   f"{avg_us / 1000:.3f}/{t['rtt_max_ns'] // 1000 / 1000:.3f}/"
                   f"{mdev_us / 1000:.3f} ms")
    return out


class Ping:
    """One ping on a channel: start(), then events(timeout) until a DONE
    event, then stop() for the totals."""

    def __init__(self, ch) -> None:
        self.ch, self.id = ch, None

    def start(self, dst: bytes, count: int, interval_ms: int, size: int,
              timeout_ms: int) -> dict:
        self.ch.subscribe(P.MsgType.NET_PING_EVENT, P.MsgType.NET_PING_EVENT)
        req = P.NET_PING_START_REQ.pack(dst=int.from_bytes(dst, "little"), count=count,
                                        interval_ms=interval_ms, size=size,
                                        timeout_ms=timeout_ms, pad=0)
        rep = P.NET_PING_START_REP.unpack(self.ch.request(P.MsgType.NET_PING_START, req).payload)
        self.id = rep["ping"]
        return rep

    def events(self, timeout: float) -> list[dict]:
        """The events of this ping that came within timeout (maybe none)."""
        out = []
        try:
            fr = self.ch.next_event(timeout)
        except ChannelTimeout:
            return out
        frames = [fr] + [self.ch.events.popleft() for _ in range(len(self.ch.events))]
        for fr in frames:
            if fr.type != P.MsgType.NET_PING_EVENT or len(fr.payload) < P.NET_PING_EVENT_HDR.size:
                continue
            ev = P.NET_PING_EVENT_HDR.unpack(fr.payload)
            if ev["ping"] == self.id:
                out.append(ev)
        return out

    def stop(self) -> tuple[dict, list[dict]]:
        """Stop the ping: (totals, the events that came with the stop)."""
        fr = self.ch.request(P.MsgType.NET_PING_STOP,
                             P.NET_PING_REQ.pack(ping=self.id, pad=0))
        late = []
        for f in list(self.ch.events):
            if f.type == P.MsgType.NET_PING_EVENT and len(f.payload) >= P.NET_PING_EVENT_HDR.size:
                ev = P.NET_PING_EVENT_HDR.unpack(f.payload)
                if ev["ping"] == self.id:
                    late.append(ev)
        self.ch.events.clear()
        return P.NET_PING_STOP_REP.unpack(fr.payload), late
