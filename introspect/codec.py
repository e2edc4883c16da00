"""Frame codec for the probe channel: encoder, streaming decoder, kernel model.

Pure: no I/O.  `Decoder` implements byte for byte the same resynchronising
algorithm as the kernel's `kernel/chan/frame.c`, so the host can predict the
kernel's channel statistics for any byte stream (`KernelModel`), which is how
the fuzz test checks that the kernel counts exactly the frames it rejected.

Decoder algorithm (shared with frame.c):
  1. while discarding an oversized payload, drop bytes until it is consumed;
  2. skip bytes up to the first 'U' that is followed by 'K' (or is last):
     those count as `skipped_bytes`;
  3. wait for a whole header; header_crc wrong -> BAD_HEADER, drop one byte;
  4. length > MAX_REQUEST (kernel side) -> OVERSIZED, drop the header and
     discard `length` more bytes;
  5. wait for the payload; payload_crc wrong -> BAD_CHECKSUM, drop the frame;
  6. otherwise deliver the frame.
  On disconnect, any bytes held (a partial frame) count as TRUNCATED.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from . import protocol as P

_HDR = P.HEADER.struct


class ProtocolError(Exception):
    """A frame or payload the host cannot make sense of."""


@dataclass
class Frame:
    type: int
    id: int
    payload: bytes
    crc: int | None = None          # payload CRC as received (verified)

    @property
    def is_reply(self) -> bool:
        return self.type == P.MsgType.ERROR or bool(self.type & P.REPLY)


def encode(mtype: int, rid: int, payload: bytes = b"", crc: int | None = None) -> bytes:
    """One frame as bytes; `crc` is the payload's CRC when already known."""
    if crc is None:
        crc = zlib.crc32(payload)
    head = _HDR.pack(P.MAGIC, mtype & 0xFFFF, len(payload), rid & 0xFFFFFFFF, crc, 0)[:16]
    return head + zlib.crc32(head).to_bytes(4, "little") + payload


def reframe(fr: Frame, rid: int) -> bytes:
    """`fr` again under request id `rid` (the mux's id rewriting): only the
    header is new, the payload CRC checked on receipt is reused."""
    return encode(fr.type, rid, fr.payload, fr.crc)


def new_stats() -> dict:
    return {f: 0 for f, _, _ in P.CHANSTAT_REP.fields}


_REJ_FIELD = {r: "rej_" + r.name.lower() for r in P.Reject}


@dataclass
class Decoder:
    """Streaming frame decoder.  `max_payload` is MAX_REQUEST on the kernel
    side and MAX_PAYLOAD on the host side."""
    max_payload: int = P.MAX_PAYLOAD
    stats: dict = field(default_factory=new_stats)
    buf: bytearray = field(default_factory=bytearray)
    discard: int = 0

    def reject(self, why: P.Reject) -> None:
        self.stats[_REJ_FIELD[why]] += 1

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames they complete."""
        self.stats["bytes_in"] += len(data)
        self.buf += data
        out: list[Frame] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list) -> bool:
        """One decoding step; False when more bytes are needed."""
        buf = self.buf
        if self.discard:
            n = min(self.discard, len(buf))
            del buf[:n]
            self.discard -= n
            if self.discard:
                return False
        i = _find_magic(buf)
        self.stats["skipped_bytes"] += i
        del buf[:i]
        if len(buf) < P.HEADER_SIZE:
            return False
        magic, mtype, length, rid, pcrc, hcrc = _HDR.unpack_from(buf)
        if zlib.crc32(bytes(buf[:16])) != hcrc:
            self.reject(P.Reject.BAD_HEADER)
            del buf[:1]
            return True
        if length > self.max_payload:
            self.reject(P.Reject.OVERSIZED)
            del buf[:P.HEADER_SIZE]
            self.discard = length
            return True
        end = P.HEADER_SIZE + length
        if len(buf) < end:
            return False
        payload = bytes(buf[P.HEADER_SIZE:end])
        del buf[:end]
        if zlib.crc32(payload) != pcrc:
            self.reject(P.Reject.BAD_CHECKSUM)
            return True
        self.stats["frames_in"] += 1
        out.append(Frame(mtype, rid, payload, pcrc))
        return True

    def disconnect(self) -> None:
        """The peer left: a partial frame held counts as TRUNCATED."""
        if self.buf:
            self.reject(P.Reject.TRUNCATED)
        self.buf.clear()
        self.discard = 0
        self.stats["disconnects"] += 1


def _find_magic(buf: bytearray) -> int:
    """Index of the first possible frame start (len(buf) if none)."""
    start = 0
    while True:
        i = buf.find(b"U", start)
        if i < 0:
            return len(buf)
        if i + 1 == len(buf) or buf[i + 1] == 0x4B:
            return i
        start = i + 1


class KernelModel:
    """What the kernel's channel does with a byte stream, minus the replies'
    contents: used to predict CHANSTAT exactly."""

    def __init__(self) -> None:
        self.dec = Decoder(max_payload=P.MAX_REQUEST)

    @property
    def stats(self) -> dict:
        return self.dec.stats

    def feed(self, data: bytes) -> list[Frame]:
        """Feed bytes; return the frames the kernel would serve."""
        served = []
        for fr in self.dec.feed(data):
            why = classify(fr)
            if why is None:
                served.append(fr)
            else:
                self.dec.reject(why)
        return served

    def disconnect(self) -> None:
        self.dec.disconnect()


def classify(fr: Frame):
    """Reject reason the kernel gives a well-formed frame, or None: by the
    request table (protocol.REQUESTS), as the kernel's frame_classify."""
    req = P.REQUESTS.get(fr.type)
    if req is None:
        return P.Reject.UNKNOWN_TYPE
    if not req.size_ok(len(fr.payload)):
        return P.Reject.BAD_PAYLOAD
    return None


# ------------------------------------------------------------ payloads

def decode_error(payload: bytes) -> dict:
    if len(payload) < P.ERROR_REP.size:
        raise ProtocolError(f"ERROR reply of {len(payload)} bytes, want {P.ERROR_REP.size}")
    d = P.ERROR_REP.unpack(payload)
    try:
        d["code_name"] = P.ErrCode(d["code"]).name
    except ValueError:
        d["code_name"] = f"code {d['code']}"
    return d


def decode_records(payload: bytes, head: P.Layout, rec: P.Layout,
                   count_field: str) -> tuple[dict, list[dict]]:
    """Split a reply made of a head and `head[count_field]` records."""
    if len(payload) < head.size:
        raise ProtocolError(f"{head.name}: {len(payload)} bytes, want >= {head.size}")
    h = head.unpack(payload)
    n = h[count_field]
    if len(payload) != head.size + n * rec.size:
        raise ProtocolError(f"{head.name}: {len(payload)} bytes for {n} records "
                            f"of {rec.size}")
    recs = [rec.unpack(payload, head.size + i * rec.size) for i in range(n)]
    return h, recs


def _exact(payload: bytes, lay: P.Layout) -> dict:
    if len(payload) != lay.size:
        raise ProtocolError(f"{lay.name}: {len(payload)} bytes, want {lay.size}")
    return lay.unpack(payload)


def _head_and_bytes(payload: bytes, lay: P.Layout, len_field: str) -> tuple[dict, bytes]:
    if len(payload) < lay.size:
        raise ProtocolError(f"{lay.name}: {len(payload)} bytes, want >= {lay.size}")
    h = lay.unpack(payload)
    data = payload[lay.size:]
    if len(data) != h[len_field]:
        raise ProtocolError(f"{lay.name}: {len(data)} bytes follow, head says "
                            f"{h[len_field]}")
    return h, data


# requests (payloads the host sends)

def hello_request(version: int = P.VERSION, features: int = P.FEATURES_ALL) -> bytes:
    return P.HELLO_REQ.pack(version=version, features=features)


def log_subscribe_request(on: bool) -> bytes:
    return P.LOG_SUBSCRIBE_REQ.pack(on=int(on))


def log_request(offset: int, max_len: int = P.LOG_READ_MAX) -> bytes:
    return P.LOG_REQ.pack(offset=offset, max_len=max_len, flags=0)


def memread_request(addr: int, length: int) -> bytes:
    return P.MEMREAD_REQ.pack(addr=addr, len=length, flags=0)


def subscribe_request(type_lo: int = 0, type_hi: int = 0xFFFF, on: bool = True) -> bytes:
    return P.MUX_SUBSCRIBE_REQ.pack(type_lo=type_lo, type_hi=type_hi, on=int(on))


def error_payload(code: int, req_type: int, msg: str) -> bytes:
    return P.ERROR_REP.pack(code=int(code), req_type=req_type,
                            msg=msg.encode()[:55])


# replies (payloads the host receives)

def decode_hello(payload: bytes) -> dict:
    d = _exact(payload, P.HELLO_REP)
    n = min(d["build_id_len"], 32)
    d["build_id"] = d["build_id"][:n].hex()
    d.pop("pad", None)
    d["feature_names"] = [f.name for f in P.Feature if d["features"] & f]
    return d


def decode_threads(payload: bytes) -> tuple[dict, list[dict]]:
    head, recs = decode_records(payload, P.THREADS_REP, P.THREAD_INFO, "count")
    for r in recs:
        try:
            r["state_name"] = P.ThreadState(r["state"]).name.lower()
        except ValueError:
            r["state_name"] = f"?{r['state']}"
    return head, recs


def decode_memstat(payload: bytes) -> tuple[dict, list[dict]]:
    head, classes = decode_records(payload, P.MEMSTAT_REP, P.HEAP_CLASS, "nclasses")
    for c in classes:
        c.pop("pad", None)
    return head, classes


def decode_log_subscribe(payload: bytes) -> dict:
    return _exact(payload, P.LOG_SUBSCRIBE_REP)


def decode_log(payload: bytes) -> tuple[dict, bytes]:
    return _head_and_bytes(payload, P.LOG_REP, "len")


def decode_memread(payload: bytes) -> tuple[dict, bytes]:
    h, data = _head_and_bytes(payload, P.MEMREAD_REP, "len")
    h.pop("pad", None)
    return h, data


def decode_chanstat(payload: bytes) -> dict:
    return _exact(payload, P.CHANSTAT_REP)


def decode_mux_info(payload: bytes) -> dict:
    h, hello = _head_and_bytes(payload, P.MUX_INFO_REP, "hello_len")
    h.pop("pad", None)
    h["hello"] = decode_hello(hello) if hello else None
    return h


# ------------------------------------------------------------ trace sessions

def trace_open_request(*, bufsize: int, aggsize: int, dynvarsize: int, prog_len: int,
                       switchrate_us: int, wall_ns: int) -> bytes:
    return P.TRACE_OPEN_REQ.pack(bufsize=bufsize, aggsize=aggsize, dynvarsize=dynvarsize,
                                 prog_len=prog_len, switchrate_us=switchrate_us,
                                 wall_ns=wall_ns)


def trace_chunk_requests(session: int, blob: bytes) -> list[bytes]:
    """The program container as TRACE_CHUNK payloads of at most
    TRACE_CHUNK_MAX bytes each (every request stays under MAX_REQUEST)."""
    step = P.TRACE_CHUNK_MAX
    return [P.TRACE_CHUNK_REQ.pack(session=session, offset=off) + blob[off:off + step]
            for off in range(0, len(blob), step)]


def trace_session_request(session: int) -> bytes:
    return P.TRACE_SESSION_REQ.pack(session=session)


def trace_enable_requests(session: int, enablings) -> list[bytes]:
    """(clause, probe id, arg) triples as TRACE_ENABLE payloads, batched."""
    items = [P.TRACE_ENABLING.pack(clause=c, probe=p, arg=a) for c, p, a in enablings]
    n = P.TRACE_ENABLE_MAX
    head = P.TRACE_ENABLE_REQ.pack(session=session)
    return [head + b"".join(items[i:i + n]) for i in range(0, len(items), n)]


def agg_read_request(session: int, cursor: int) -> bytes:
    return P.AGG_READ_REQ.pack(session=session, cursor=cursor)


def agg_clear_request(session: int, agg: int | None) -> bytes:
    return P.AGG_CLEAR_REQ.pack(session=session, agg=P.AGG_ALL if agg is None else agg)


def decode_trace_open(payload: bytes) -> int:
    return _exact(payload, P.TRACE_OPEN_REP)["session"]


def decode_trace_load(payload: bytes) -> dict:
    d = _exact(payload, P.TRACE_LOAD_REP)
    d.pop("pad", None)
    return d


def decode_trace_status(payload: bytes) -> dict:
    d = _exact(payload, P.TRACE_STATUS_REP)
    d.pop("pad", None)
    return d


def trace_deadman_request(session: int, *, timeout_ms: int, cpu_pct: int,
                          window_ms: int) -> bytes:
    return P.TRACE_DEADMAN_REQ.pack(session=session, timeout_ms=timeout_ms, cpu_pct=cpu_pct,
                                    window_ms=window_ms)


def decode_trace_abort(payload: bytes) -> dict:
    d = _exact(payload, P.TRACE_ABORT)
    d.pop("pad", None)
    return d


def decode_agg_read(payload: bytes) -> tuple[int, bytes]:
    h, data = _head_and_bytes(payload, P.AGG_READ_REP, "len")
    return h["next"], data


def trace_data_session(payload: bytes) -> int | None:
    """The session a TRACE_DATA payload belongs to (the mux routes by it)."""
    if len(payload) < 4:
        return None
    return int.from_bytes(payload[:4], "little")


def split_records(data: bytes) -> list[bytes]:
    """Whole records (isa REC_HDR: u16 size first, a multiple of 8)."""
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 16:
            raise ProtocolError(f"record header cut at byte {i} of {len(data)}")
        n = int.from_bytes(data[i:i + 2], "little")
        if n < 16 or n % 8 or i + n > len(data):
            raise ProtocolError(f"record of size {n} at byte {i} of {len(data)}")
        out.append(data[i:i + n])
        i += n
    return out


def decode_trace_data(payload: bytes) -> tuple[dict, bytes]:
    """TRACE_DATA: its head and the concatenated records (checked whole)."""
    if len(payload) < P.TRACE_DATA_HDR.size:
        raise ProtocolError(f"trace_data: {len(payload)} bytes, want >= "
                            f"{P.TRACE_DATA_HDR.size}")
    h = P.TRACE_DATA_HDR.unpack(payload)
    recs = payload[P.TRACE_DATA_HDR.size:]
    n = len(split_records(recs))
    if n != h["nrec"]:
        raise ProtocolError(f"trace_data: {n} records, head says {h['nrec']}")
    return h, recs
