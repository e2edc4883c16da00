"""The classic pcap file format (what `tcpdump -w` writes and `tshark -r`
and Wireshark read): a 24-byte global header, then a 16-byte record
header and the captured bytes per packet.  Little-endian, link type
DLT_EN10MB; microsecond timestamps (magic a1b2c3d4) or nanosecond ones
(magic a1b23c4d).  `PcapWriter` writes, `read_pcap` reads (tests)."""
from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
GLOBAL = struct.Struct("<IHHiIII")      # magic, major, minor, thiszone, sigfigs, snaplen, linktype
RECORD = struct.Struct("<IIII")          # ts_sec, ts_frac, incl_len, orig_len


class PcapWriter:
    """Write packets to an open binary file (flushed after each packet so
    a reader following the file sees whole records)."""

    def __init__(self, f: BinaryIO, snaplen: int = 262144, nano: bool = False,
                 linktype: int = LINKTYPE_ETHERNET) -> None:
        self.f = f
        self.nano = nano
        self.count = 0
        f.write(GLOBAL.pack(MAGIC_NS if nano else MAGIC_US, 2, 4, 0, 0, snaplen, linktype))
        f.flush()

    def write(self, wall_ns: int, data: bytes, wirelen: int | None = None) -> None:
        """One packet captured at wall_ns (ns since the epoch)."""
        sec, ns = divmod(wall_ns, 1_000_000_000)
        frac = ns if self.nano else ns // 1000
        self.f.write(RECORD.pack(sec, frac, len(data),
                                 len(data) if wirelen is None else wirelen) + data)
        self.f.flush()
        self.count += 1


def read_pcap(f: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """(wall_ns, data, wirelen) per packet of a little-endian pcap."""
    head = f.read(GLOBAL.size)
    magic = struct.unpack_from("<I", head)[0]
    if magic not in (MAGIC_US, MAGIC_NS):
        raise ValueError(f"not a little-endian pcap file (magic {magic:#x})")
    mult = 1 if magic == MAGIC_NS else 1000
    while True:
        rh = f.read(RECORD.size)
        if len(rh) < RECORD.size:
            return
        sec, frac, incl, orig = RECORD.unpack(rh)
        yield sec * 1_000_000_000 + frac * mult, f.read(incl), orig
