"""DNS messages summarised as tcpdump prints them without -v (pure).

`dns_summary(msg, length)` -> the text tcpdump puts after "a.53 > b.x: "
for a DNS message over UDP, e.g. `4660+ A? example.com. (29)` for a query
and `4660 1/0/0 A 93.184.216.34 (45)` for a response; None when the message
is too short to read (the caller prints it as plain UDP).  Used by
introspect/pktfmt.py for UDP port 53."""
from __future__ import annotations

import ipaddress
import struct

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
         28: "AAAA", 33: "SRV", 41: "OPT", 255: "ANY"}
RCODES = {1: " FormErr", 2: " ServFail", 3: " NXDomain", 4: " NotImp", 5: " Refused"}
OPS = {0: "", 1: " inv_q", 2: " stat", 4: " notify", 5: " update"}


class Short(Exception):
    pass


def _name(msg: bytes, off: int) -> tuple[str, int]:
    """A (possibly compressed) name at off: (text with a final dot, the
    offset after it in the message)."""
    labels, end, hops = [], None, 0
    while True:
        if off >= len(msg):
            raise Short
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or hops > 32:
                raise Short
            end = off + 2 if end is None else end
            off, hops = ((n & 0x3F) << 8) | msg[off + 1], hops + 1
            continue
        if n == 0:
            end = off + 1 if end is None else end
            return ("".join(l + "." for l in labels) or "."), end
        if off + 1 + n > len(msg):
            raise Short
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n


def _rr(msg: bytes, off: int) -> tuple[str, int]:
    _, off = _name(msg, off)
    if off + 10 > len(msg):
        raise Short
    typ, cls, _ttl, rdlen = struct.unpack_from(">HHIH", msg, off)
    off += 10
    rd = msg[off:off + rdlen]
    if len(rd) < rdlen:
        raise Short
    text = ""
    if cls != 1 and typ != 41:
        text += f" (Class {cls})"
    text += " " + TYPES.get(typ, f"Type{typ}")
    if typ == 1 and rdlen == 4:
        text += " " + ".".join(str(b) for b in rd)
    elif typ == 28 and rdlen == 16:
        text += " " + str(ipaddress.IPv6Address(rd))
    elif typ in (2, 5, 12):
        text += " " + _name(msg, off)[0]
    elif typ == 15 and rdlen >= 3:
        text += " " + _name(msg, off + 2)[0] + f" {struct.unpack_from('>H', rd)[0]}"
    elif typ == 41:
        text += f" UDPsize={cls}"
    return text, off + rdlen


def dns_summary(msg: bytes, length: int) -> str | None:
    try:
        return _summary(msg, length)
    except (Short, struct.error):
        return None


def _summary(msg: bytes, length: int) -> str:
    if len(msg) < 12:
        raise Short
    ident, b2, qd, an, ns, ar = struct.unpack_from(">HHHHHH", msg, 0)
    op, off = OPS.get((b2 >> 11) & 0xF, f" op{(b2 >> 11) & 0xF}"), 12
    if b2 & 0x8000:                       # response
        out = (f"{ident}{op}{RCODES.get(b2 & 0xF, '' if not b2 & 0xF else f' Resp{b2 & 0xF}')}"
               f"{'*' if b2 & 0x400 else ''}{'' if b2 & 0x80 else '-'}"
               f"{'|' if b2 & 0x200 else ''}{'$' if b2 & 0x20 else ''}")
        if qd != 1:
            out += f" [{qd}q]"
        for _ in range(qd):
            off = _name(msg, off)[1] + 4
        out += f" {an}/{ns}/{ar}"
        for i in range(an):
            text, off = _rr(msg, off)
            out += ("," if i else "") + text
        return out + f" ({length})"
    out = f"{ident}{op}{'+' if b2 & 0x100 else ''}{'%' if b2 & 0x10 else ''}"
    if b2 & 0x6CF:
        out += f" [b2&3=0x{b2:x}]"
    if an:
        out += f" [{an}a]"
    if qd != 1:
        out += f" [{qd}q]"
    if ns:
        out += f" [{ns}n]"
    if ar:
        out += f" [{ar}au]"
    if qd:
        name, off = _name(msg, off)
        if off + 4 > len(msg):
            raise Short
        typ, cls = struct.unpack_from(">HH", msg, off)
        out += " " + TYPES.get(typ, f"Type{typ}")
        if cls != 1:
            out += f" (Class {cls})"
        out += f"? {name}"
    return out + f" ({length})"
