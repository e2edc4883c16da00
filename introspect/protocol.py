"""The wire protocol of the probe channel: the one source of truth.

Everything the kernel and the host must agree on about frames lives here:
message types, reject reasons, error codes, thread states and the byte
layout of every payload.  `introspect.wiregen` turns this module into the
C header the kernel is built with (build/gen/wire.h); `tests/test_drift.py`
reads the built kernel's DWARF and fails when the two disagree.

Pure data: no I/O.  All integers are little-endian and all structs packed.

Frame = header (20 bytes) + payload (`length` bytes):

    magic u16 'U','K' | type u16 | length u32 | id u32 | payload_crc u32 | header_crc u32

`header_crc` is CRC-32 (IEEE) of the first 16 header bytes, `payload_crc`
the CRC-32 of the payload.  A reply carries the request's id and the type
`request | REPLY`; a failed request is answered with type ERROR.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from .layout import L, Layout  # noqa: F401 (Layout: re-exported for users)

MAGIC = 0x4B55            # the bytes b"UK" read as a little-endian u16
MAGIC_BYTES = b"UK"
VERSION = 3               # bumped whenever a layout below changes (features: HELLO)
HEADER_SIZE = 20
MAX_PAYLOAD = 16384       # largest payload either side sends
MAX_REQUEST = 1024        # largest request payload the kernel accepts
MEMREAD_MAX = 4096        # cap on one MEMREAD
LOG_READ_MAX = 8192       # cap on one LOG read
REPLY = 0x8000            # OR-ed into a request type to form its reply type
PORT_NAME = "org.unik.probe.0"


class MsgType(IntEnum):
    """Request types (replies are `type | REPLY`)."""
    HELLO = 0x0001      # version handshake; reply carries build-id
    THREADS = 0x0002    # ps: one record per kernel thread
    MEMSTAT = 0x0003    # page allocator and heap statistics
    LOG = 0x0004        # read the log ring from an offset
    MEMREAD = 0x0005    # bounded read of guest memory
    CHANSTAT = 0x0006   # channel statistics
    LOG_SUBSCRIBE = 0x0007  # start (on=1) or stop the LOG_DATA stream
    TRACE_OPEN = 0x0010     # new trace session with its buffer sizes -> session id
    TRACE_CHUNK = 0x0011    # a piece of the session's program container
    TRACE_LOAD = 0x0012     # verify the uploaded program (structured refusal)
    TRACE_ENABLE = 0x0013   # enablings: run clause c when probe p fires
    TRACE_GO = 0x0014       # patch the sites, fire BEGIN, start streaming
    TRACE_STOP = 0x0015     # fire END, restore the sites; data stays readable
    TRACE_CLOSE = 0x0016    # free the session
    TRACE_STATUS = 0x0017   # the session's counters
    AGG_READ = 0x0018       # a page of the session's aggregations from a cursor
    AGG_CLEAR = 0x0019      # zero one aggregation (or all)
    TRACE_DEADMAN = 0x001A  # the session's deadman: drain timeout and CPU budget
    # capture (unik tcpdump)
    CAPTURE_OPEN = 0x0030   # new packet capture (snaplen, ring size, program length) -> id
    CAPTURE_PROG = 0x0031   # a piece of the capture's classic BPF program
    CAPTURE_START = 0x0032  # verify the program and start capturing (structured refusal)
    CAPTURE_STATUS = 0x0033  # the capture's exact counters
    CAPTURE_STOP = 0x0034   # stop capturing, flush what is buffered, then the final counters
    CAPTURE_CLOSE = 0x0035  # free the capture
    CAPTURE_INJECT = 0x0036  # debug: run one Ethernet frame through the capture tap
    # network (unik ping)
    NET_PING_START = 0x0040  # the guest starts pinging an IPv4 address -> ping id
    NET_PING_STOP = 0x0041   # stop the ping; its final counters
    LOG_DATA = 0x0200   # unsolicited (id 0): new log bytes while subscribed
    TRACE_DATA = 0x0201  # unsolicited (id 0): a batch of a session's records
    TRACE_ABORT = 0x0202  # unsolicited (id 0): the deadman aborted a session, and why
    CAPTURE_DATA = 0x0210  # unsolicited (id 0): a batch of a capture's packets
    NET_PING_EVENT = 0x0220  # unsolicited (id 0): a ping's reply, timeout or end
    CRASH = 0x0230      # unsolicited (id 0): the kernel panicked; its crash record
    ERROR = 0xFFFF      # reply only: the request failed (payload: error)


class Feature(IntFlag):
    """Capability bits: HELLO's `features`.  The host sends those it knows,
    the kernel replies with those it has; a request of a family the kernel
    lacks is refused by the host with the capability's name (the version
    changes only when a layout does)."""
    LOG_STREAM = 1 << 0     # LOG_SUBSCRIBE and the LOG_DATA stream
    TRACE = 1 << 1          # TRACE_*, AGG_* and the TRACE_DATA stream
    CAPTURE = 1 << 3        # CAPTURE_* and the CAPTURE_DATA stream
    NET = 1 << 6            # NET_PING_* and the NET_PING_EVENT stream
    CRASH = 1 << 7          # crash_record in memory and the CRASH frame on panic


class Reject(IntEnum):
    """Why the kernel's frame decoder rejected a frame (channel statistics)."""
    BAD_HEADER = 0      # magic found but header_crc wrong: resync by one byte
    OVERSIZED = 1       # header fine but length > MAX_REQUEST: payload discarded
    BAD_CHECKSUM = 2    # payload_crc wrong: whole frame dropped
    UNKNOWN_TYPE = 3    # well-formed frame of a type the kernel does not serve
    BAD_PAYLOAD = 4     # known type, payload of the wrong size or bad values
    TRUNCATED = 5       # the host left in the middle of a frame


class ErrCode(IntEnum):
    """Codes carried by an ERROR reply."""
    UNKNOWN_TYPE = 1    # no such request type
    BAD_PAYLOAD = 2     # payload of the wrong size for its type
    FAULT = 3           # MEMREAD of an unmapped or forbidden address
    TOO_LARGE = 4       # a length above the request's cap
    VERSION = 5         # HELLO with a protocol version the kernel lacks
    BUSY = 6            # the kernel cannot serve this now
    NO_SESSION = 7      # no such trace session, or not in the state the request needs
    NO_SPACE = 8        # too many sessions, or not enough memory for the sizes asked
    NO_PROBE = 9        # TRACE_ENABLE of a probe id the kernel does not have
    RANGE = 10          # an offset, clause, aggregation or size out of range


class Deadman(IntEnum):
    """Why the kernel's deadman aborted a trace session (TRACE_ABORT,
    TRACE_STATUS `deadman`)."""
    NONE = 0            # it did not
    CPU = 1             # probe time exceeded the budget share of a window
    DRAIN = 2           # no request named the session for the timeout


class ThreadState(IntEnum):
    RUNNING = 0
    RUNNABLE = 1
    SLEEPING = 2
    DEAD = 3


# ---------------------------------------------------------------- layouts
# Field types: u8 u16 u32 u64 i64, char[N] (NUL-padded text), u8[N] (bytes);
# C: struct wire_<name> (introspect/layout.py).

HEADER = L("header", "frame header",
           ("magic", "u16", "MAGIC"),
           ("type", "u16", "MsgType; OR-ed with REPLY in a reply"),
           ("length", "u32", "payload bytes that follow"),
           ("id", "u32", "request id, echoed by the reply"),
           ("payload_crc", "u32", "CRC-32 of the payload"),
           ("header_crc", "u32", "CRC-32 of the 16 bytes before it"))

HELLO_REQ = L("hello_req", "HELLO request",
              ("version", "u32", "protocol version the host speaks"),
              ("features", "u32", "Feature bits the host knows"))

HELLO_REP = L("hello_rep", "HELLO reply",
              ("version", "u32", "protocol version the kernel speaks"),
              ("build_id_len", "u32", "bytes used in build_id"),
              ("build_id", "u8[32]", "GNU build-id of the running kernel"),
              ("uptime_ns", "u64", "time since boot"),
              ("tsc_hz", "u64", "calibrated TSC frequency"),
              ("nthreads", "u32", "threads alive"),
              ("mem_kib", "u32", "guest RAM in KiB"),
              ("app", "char[16]", "application linked in"),
              ("kernel", "char[32]", "kernel version string"),
              ("tsc_entry", "u64", "TSC at the kernel's first instruction"),
              ("tsc_ready", "u64", "TSC when the probe channel became ready"),
              ("features", "u32", "Feature bits the kernel has"),
              ("pad", "u32", "0"))

THREADS_REP = L("threads_rep", "THREADS reply head; `count` thread_info follow",
                ("count", "u32", "records that follow"),
                ("total", "u32", "threads in the kernel (count may be capped)"),
                ("uptime_ns", "u64", "time since boot"))

THREAD_INFO = L("thread_info", "one kernel thread",
                ("tid", "u32", "thread id"),
                ("state", "u8", "ThreadState"),
                ("priority", "u8", "0 idle, 1 application, 2 service (wakeup preemption)"),
                ("flags", "u16", "bit0 kernel service, bit1 application"),
                ("name", "char[24]", "thread name"),
                ("wchan", "char[24]", "what a sleeping thread waits on"),
                ("cpu_ns", "u64", "CPU time consumed"),
                ("switches", "u64", "times switched in"),
                ("stack_size", "u32", "bytes of stack"),
                ("stack_hwm", "u32", "deepest stack use seen, bytes"),
                ("start_ns", "u64", "uptime at creation"))

MEMSTAT_REP = L("memstat_rep", "MEMSTAT reply head; `nclasses` heap_class follow",
                ("page_size", "u32", "bytes per page"),
                ("nclasses", "u32", "heap_class records that follow"),
                ("mem_total", "u64", "bytes of RAM the firmware reported"),
                ("pages_total", "u64", "pages managed by the allocator"),
                ("pages_free", "u64", "pages free now"),
                ("pages_kernel", "u64", "pages holding the kernel image"),
                ("page_failures", "u64", "page allocations that failed"),
                ("heap_bytes_total", "u64", "bytes the heap took from the page allocator"),
                ("heap_bytes_used", "u64", "bytes handed out by the heap"),
                ("heap_allocs", "u64", "heap allocations made"),
                ("heap_frees", "u64", "heap frees made"),
                ("heap_failures", "u64", "heap allocations that failed"))

HEAP_CLASS = L("heap_class", "one heap size class",
               ("size", "u32", "object size in bytes (0 = large, page-backed)"),
               ("pad", "u32", "0"),
               ("in_use", "u64", "objects handed out now"),
               ("allocs", "u64", "allocations ever"),
               ("frees", "u64", "frees ever"),
               ("failures", "u64", "allocations that failed"))

LOG_REQ = L("log_req", "LOG request",
            ("offset", "u64", "byte offset in the log stream to read from"),
            ("max_len", "u32", "most bytes wanted (capped at LOG_READ_MAX)"),
            ("flags", "u32", "reserved, 0"))

LOG_REP = L("log_rep", "LOG reply head; `len` bytes of text follow",
            ("offset", "u64", "offset of the first byte returned"),
            ("next", "u64", "offset to ask for next"),
            ("oldest", "u64", "oldest offset still in the ring"),
            ("head", "u64", "offset one past the newest byte"),
            ("len", "u32", "bytes that follow"),
            ("lost", "u32", "bytes between the asked offset and `offset` lost to wrap"))

LOG_SUBSCRIBE_REQ = L("log_subscribe_req", "LOG_SUBSCRIBE request (the mux sends it "
                      "when its first LOG_DATA subscriber comes and its last goes)",
                      ("on", "u32", "1 start the stream at the log's head, 0 stop it"),
                      ("pad", "u32", "0"))

LOG_SUBSCRIBE_REP = L("log_subscribe_rep", "LOG_SUBSCRIBE reply",
                      ("head", "u64", "log offset the stream starts at (on) or stopped at"))

TRACE_OPEN_REQ = L("trace_open_req", "TRACE_OPEN request",
                   ("bufsize", "u32", "bytes of record buffer"),
                   ("aggsize", "u32", "bytes of aggregation memory"),
                   ("dynvarsize", "u32", "bytes of dynamic-variable memory"),
                   ("prog_len", "u32", "bytes of program container TRACE_CHUNK will send"),
                   ("switchrate_us", "u32", "how often the kernel drains the buffer to TRACE_DATA"),
                   ("pad", "u32", "0"),
                   ("wall_ns", "u64", "host wall clock (ns since the epoch) for walltimestamp"))

TRACE_OPEN_REP = L("trace_open_rep", "TRACE_OPEN reply",
                   ("session", "u32", "session id (0..31)"),
                   ("pad", "u32", "0"))

TRACE_CHUNK_REQ = L("trace_chunk_req", "TRACE_CHUNK request head; the bytes follow "
                    "(the rest of the payload)",
                    ("session", "u32", "session id"),
                    ("offset", "u32", "where the bytes go in the program container"))

TRACE_SESSION_REQ = L("trace_session_req", "request naming only a session (TRACE_LOAD, "
                      "TRACE_GO, TRACE_STOP, TRACE_CLOSE, TRACE_STATUS)",
                      ("session", "u32", "session id"),
                      ("pad", "u32", "0"))

TRACE_LOAD_REP = L("trace_load_rep", "TRACE_LOAD reply: loaded, or the verifier's refusal",
                   ("ok", "u32", "1 the program was verified and loaded, 0 refused"),
                   ("pad", "u32", "0"),
                   ("pc", "i64", "refused: the instruction at fault (-1: the container)"),
                   ("msg", "char[64]", "refused: the verifier's reason"))

TRACE_ENABLE_REQ = L("trace_enable_req", "TRACE_ENABLE request head; 1..TRACE_ENABLE_MAX "
                     "trace_enabling follow",
                     ("session", "u32", "session id"),
                     ("pad", "u32", "0"))

TRACE_ENABLING = L("trace_enabling", "one enabling",
                   ("clause", "u32", "clause index in the program"),
                   ("probe", "u32", "probe id (SynthProbe or FIRST_STATIC_PROBE + i)"),
                   ("arg", "u64", "tick-N: the period in ns; else 0"))

TRACE_STATUS_REP = L("trace_status_rep", "TRACE_STATUS reply",
                     ("fired", "u64", "clause executions"),
                     ("records", "u64", "records committed to the buffer"),
                     ("drops_buf", "u64", "records dropped: buffer full"),
                     ("drops_agg", "u64", "aggregation keys dropped: aggsize full"),
                     ("drops_dyn", "u64", "dynamic variables dropped: dynvarsize full"),
                     ("errors", "u64", "clause faults (ERROR fired)"),
                     ("reentrant", "u64", "firings skipped: already inside the engine"),
                     ("drained", "u64", "records taken from the buffer by the channel"),
                     ("drops_chan", "u64", "of those, records in TRACE_DATA frames the "
                      "transmit ring could not take"),
                     ("frames", "u64", "TRACE_DATA frames sent"),
                     ("exiting", "u32", "1 once the program called exit()"),
                     ("pad", "u32", "0"),
                     # deadman (protocol 3): the same four fields as trace_abort
                     ("deadman", "u32", "Deadman: why the deadman aborted the session "
                      "(0: it did not)"),
                     ("deadman_budget", "u32", "CPU: the budget in percent of the window; DRAIN: 0"),
                     ("deadman_used_ns", "u64", "CPU: probe time in the window; DRAIN: how long "
                      "the host was silent"),
                     ("deadman_window_ns", "u64", "CPU: the window; DRAIN: the timeout"))

AGG_READ_REQ = L("agg_read_req", "AGG_READ request",
                 ("session", "u32", "session id"),
                 ("cursor", "u32", "0 to start, then the reply's `next`"))

AGG_READ_REP = L("agg_read_rep", "AGG_READ reply head; `len` bytes of entries follow "
                 "(each: u16 agg, u16 keylen, u32 nwords, key bytes padded to 8, nwords u64)",
                 ("next", "u32", "cursor for the next page; 0 when this was the last"),
                 ("len", "u32", "bytes that follow"))

AGG_CLEAR_REQ = L("agg_clear_req", "AGG_CLEAR request",
                  ("session", "u32", "session id"),
                  ("agg", "u32", "aggregation index; 0xffffffff clears all"))

TRACE_DATA_HDR = L("trace_data", "TRACE_DATA frame head; `nrec` whole records follow "
                   "(isa.REC_HDR each).  The drop counters are the session's totals so far",
                   ("session", "u32", "session id"),
                   ("seq", "u32", "frame sequence number in the session, from 0 (dropped "
                    "frames use one too)"),
                   ("nrec", "u32", "records that follow"),
                   ("flags", "u32", "bit 0: the session is exiting (exit() was called)"),
                   ("drops_buf", "u64", "records dropped: buffer full"),
                   ("drops_chan", "u64", "records dropped: frame not taken by the transmit ring"),
                   ("drops_agg", "u64", "aggregation keys dropped"),
                   ("drops_dyn", "u64", "dynamic variables dropped"),
                   ("errors", "u64", "clause faults"))

# deadman (protocol 3)
TRACE_DEADMAN_REQ = L("trace_deadman_req", "TRACE_DEADMAN request: the session's deadman "
                      "limits (sent before TRACE_GO; any request naming the session "
                      "afterwards is the host's heartbeat)",
                      ("session", "u32", "session id"),
                      ("timeout_ms", "u32", "abort when no request names the session for "
                       "this long; 0: no drain deadman"),
                      ("cpu_pct", "u32", "abort when probe time exceeds this percent of a "
                       "window; 0 or >= 100: no CPU deadman"),
                      ("window_ms", "u32", "the CPU window; 0: the kernel's default"))

TRACE_ABORT = L("trace_abort", "TRACE_ABORT frame: the deadman stopped the session (its "
                "sites are restored; records and aggregations stay readable until "
                "TRACE_CLOSE)",
                ("session", "u32", "session id"),
                ("reason", "u32", "Deadman"),
                ("budget", "u32", "CPU: the budget in percent of the window; DRAIN: 0"),
                ("pad", "u32", "0"),
                ("used_ns", "u64", "CPU: probe time in the window; DRAIN: how long the "
                 "host was silent"),
                ("window_ns", "u64", "CPU: the window; DRAIN: the timeout"))

MEMREAD_REQ = L("memread_req", "MEMREAD request",
                ("addr", "u64", "guest physical (= virtual) address"),
                ("len", "u32", "bytes wanted, at most MEMREAD_MAX"),
                ("flags", "u32", "reserved, 0"))

MEMREAD_REP = L("memread_rep", "MEMREAD reply head; `len` bytes follow",
                ("addr", "u64", "address read"),
                ("len", "u32", "bytes that follow"),
                ("pad", "u32", "0"))

CHANSTAT_REP = L("chanstat_rep", "CHANSTAT reply",
                 ("frames_in", "u64", "well-formed frames received"),
                 ("frames_out", "u64", "frames sent"),
                 ("bytes_in", "u64", "bytes received"),
                 ("bytes_out", "u64", "bytes sent"),
                 ("skipped_bytes", "u64", "bytes skipped while resynchronising"),
                 ("rej_bad_header", "u64", "Reject.BAD_HEADER"),
                 ("rej_oversized", "u64", "Reject.OVERSIZED"),
                 ("rej_bad_checksum", "u64", "Reject.BAD_CHECKSUM"),
                 ("rej_unknown_type", "u64", "Reject.UNKNOWN_TYPE"),
                 ("rej_bad_payload", "u64", "Reject.BAD_PAYLOAD"),
                 ("rej_truncated", "u64", "Reject.TRUNCATED"),
                 ("tx_dropped", "u64", "frames the kernel could not send (no host)"),
                 ("connects", "u64", "host connections seen"),
                 ("disconnects", "u64", "host disconnections seen"))

ERROR_REP = L("error_rep", "ERROR reply",
              ("code", "u32", "ErrCode"),
              ("req_type", "u32", "type of the failed request"),
              ("msg", "char[56]", "human-readable reason"))

LAYOUTS = (HEADER, HELLO_REQ, HELLO_REP, THREADS_REP, THREAD_INFO, MEMSTAT_REP,
           HEAP_CLASS, LOG_REQ, LOG_REP, LOG_SUBSCRIBE_REQ, LOG_SUBSCRIBE_REP,
           MEMREAD_REQ, MEMREAD_REP, CHANSTAT_REP, ERROR_REP,
           TRACE_OPEN_REQ, TRACE_OPEN_REP, TRACE_CHUNK_REQ, TRACE_SESSION_REQ,
           TRACE_LOAD_REP, TRACE_ENABLE_REQ, TRACE_ENABLING, TRACE_STATUS_REP,
           AGG_READ_REQ, AGG_READ_REP, AGG_CLEAR_REQ, TRACE_DATA_HDR,
           TRACE_DEADMAN_REQ, TRACE_ABORT)

TRACE_DATA_EXITING = 1                  # TRACE_DATA flags bit 0
AGG_ALL = 0xFFFFFFFF                    # AGG_CLEAR: every aggregation
TRACE_CHUNK_MAX = MAX_REQUEST - TRACE_CHUNK_REQ.size   # program bytes per TRACE_CHUNK
TRACE_ENABLE_MAX = (MAX_REQUEST - TRACE_ENABLE_REQ.size) // TRACE_ENABLING.size


# ---------------------------------------------------------------- requests
@dataclass(frozen=True)
class Request:
    """What the kernel accepts for one request type: a fixed head (`layout`,
    None = nothing) followed by `min_items`..`max_items` items of `item`
    bytes each (a variable part; 0 = none).  Any other payload size is
    BAD_PAYLOAD.  `feature`: the capability bit of its family (0 = always
    there).  `reply`: what the reply carries (docs).  The kernel's request
    table (wire.h's WIRE_REQUESTS) and codec.classify() both come from this,
    and the kernel's handler is chan_serve_<name>."""
    layout: Layout | None
    reply: str
    item: int = 0
    min_items: int = 0
    max_items: int = 0
    feature: int = 0

    @property
    def head(self) -> int:
        return 0 if self.layout is None else self.layout.size

    @property
    def max_size(self) -> int:
        return self.head + self.item * self.max_items

    def size_ok(self, n: int) -> bool:
        """Is n bytes a payload this request accepts (by size alone)?"""
        if self.item == 0:
            return n == self.head
        k, rem = divmod(n - self.head, self.item)
        return n >= self.head and rem == 0 and self.min_items <= k <= self.max_items


REQUESTS = {
    MsgType.HELLO: Request(HELLO_REQ, "hello_rep"),
    MsgType.THREADS: Request(None, "threads_rep + count × thread_info"),
    MsgType.MEMSTAT: Request(None, "memstat_rep + nclasses × heap_class"),
    MsgType.LOG: Request(LOG_REQ, "log_rep + len bytes of text"),
    MsgType.MEMREAD: Request(MEMREAD_REQ, "memread_rep + len bytes"),
    MsgType.CHANSTAT: Request(None, "chanstat_rep"),
    MsgType.LOG_SUBSCRIBE: Request(LOG_SUBSCRIBE_REQ, "log_subscribe_rep",
                                   feature=Feature.LOG_STREAM),
    MsgType.TRACE_OPEN: Request(TRACE_OPEN_REQ, "trace_open_rep", feature=Feature.TRACE),
    MsgType.TRACE_CHUNK: Request(TRACE_CHUNK_REQ, "empty", item=1, min_items=1,
                                 max_items=TRACE_CHUNK_MAX, feature=Feature.TRACE),
    MsgType.TRACE_LOAD: Request(TRACE_SESSION_REQ, "trace_load_rep", feature=Feature.TRACE),
    MsgType.TRACE_ENABLE: Request(TRACE_ENABLE_REQ, "empty", item=TRACE_ENABLING.size,
                                  min_items=1, max_items=TRACE_ENABLE_MAX,
                                  feature=Feature.TRACE),
    MsgType.TRACE_GO: Request(TRACE_SESSION_REQ, "empty", feature=Feature.TRACE),
    MsgType.TRACE_STOP: Request(TRACE_SESSION_REQ, "empty", feature=Feature.TRACE),
    MsgType.TRACE_CLOSE: Request(TRACE_SESSION_REQ, "empty", feature=Feature.TRACE),
    MsgType.TRACE_STATUS: Request(TRACE_SESSION_REQ, "trace_status_rep", feature=Feature.TRACE),
    MsgType.AGG_READ: Request(AGG_READ_REQ, "agg_read_rep + len bytes of entries",
                              feature=Feature.TRACE),
    MsgType.AGG_CLEAR: Request(AGG_CLEAR_REQ, "empty", feature=Feature.TRACE),
    MsgType.TRACE_DEADMAN: Request(TRACE_DEADMAN_REQ, "empty", feature=Feature.TRACE),
}

# Unsolicited kernel frames (id 0): what each carries (docs).
STREAMS = {
    MsgType.LOG_DATA: (LOG_REP, "log_rep + len bytes of text: the bytes from `offset` "
                       "(`lost` before it were overwritten first)", Feature.LOG_STREAM),
    MsgType.TRACE_DATA: (TRACE_DATA_HDR, "trace_data + nrec records; the mux routes it to "
                         "the client that opened the session", Feature.TRACE),
    MsgType.TRACE_ABORT: (TRACE_ABORT, "trace_abort; routed like TRACE_DATA", Feature.TRACE),
}

# ---------------------------------------------------------------- capture
# unik tcpdump: the kernel runs a verified classic BPF program (libpcap's,
# kernel/net/cbpf.c) on every frame at the driver boundary and streams the
# matching ones in CAPTURE_DATA frames (docs/capture.md).
CAPTURE_OPEN_REQ = L("capture_open_req", "CAPTURE_OPEN request",
                     ("snaplen", "u32", "bytes kept of each packet (the program's verdict caps it too)"),
                     ("bufsize", "u32", "bytes of the kernel's packet ring"),
                     ("ninsns", "u32", "instructions of the cBPF program CAPTURE_PROG will send"),
                     ("rate_us", "u32", "how often the kernel drains the ring to CAPTURE_DATA (0: default)"))
CAPTURE_OPEN_REP = L("capture_open_rep", "CAPTURE_OPEN reply",
                     ("capture", "u32", "capture id"),
                     ("pad", "u32", "0"))
CAPTURE_PROG_REQ = L("capture_prog_req", "CAPTURE_PROG request head; 1..CAPTURE_PROG_MAX "
                     "8-byte instructions follow (struct bpf_insn: u16 code, u8 jt, u8 jf, u32 k)",
                     ("capture", "u32", "capture id"),
                     ("offset", "u32", "index of the first instruction sent"))
CAPTURE_REQ = L("capture_req", "request naming only a capture (CAPTURE_START, STATUS, "
                "STOP, CLOSE)",
                ("capture", "u32", "capture id"),
                ("pad", "u32", "0"))
CAPTURE_START_REP = L("capture_start_rep", "CAPTURE_START reply: started, or the verifier's refusal",
                      ("ok", "u32", "1 verified and capturing, 0 refused"),
                      ("pad", "u32", "0"),
                      ("pc", "i64", "refused: the instruction at fault (-1: the program)"),
                      ("msg", "char[64]", "refused: the verifier's reason"))
CAPTURE_STATUS_REP = L("capture_status_rep", "CAPTURE_STATUS and CAPTURE_STOP reply: the "
                       "capture's counters.  matched = delivered + dropped + waiting",
                       ("received", "u64", "frames the tap ran the filter on"),
                       ("matched", "u64", "frames the filter accepted"),
                       ("dropped", "u64", "accepted frames dropped: ring full or the "
                        "transmit ring refused their CAPTURE_DATA frame"),
                       ("delivered", "u64", "accepted frames queued in CAPTURE_DATA frames"),
                       ("waiting", "u64", "accepted frames still in the ring"),
                       ("frames", "u64", "CAPTURE_DATA frames sent"),
                       ("bytes", "u64", "captured packet bytes queued"),
                       ("tap_ns", "u64", "kernel time spent in the tap for this capture "
                        "(filter and copy; per frame: tap_ns / received)"))
CAPTURE_INJECT_REQ = L("capture_inject_req", "CAPTURE_INJECT request head; the frame's "
                       "bytes follow (a debug request: the frame reaches the tap only, "
                       "never the network stack)",
                       ("dir", "u32", "0 received, 1 sent"),
                       ("wirelen", "u32", "length on the wire (0: the bytes sent)"))
CAPTURE_DATA_HDR = L("capture_data", "CAPTURE_DATA frame head; `npkt` packets follow, "
                     "each a capture_pkt then caplen bytes padded to 8",
                     ("capture", "u32", "capture id"),
                     ("seq", "u32", "frame sequence number in the capture, from 0"),
                     ("npkt", "u32", "packets that follow"),
                     ("pad", "u32", "0"),
                     ("matched", "u64", "frames the filter accepted so far"),
                     ("dropped", "u64", "accepted frames dropped so far"))
CAPTURE_PKT = L("capture_pkt", "one captured packet's header in CAPTURE_DATA",
                ("ts_ns", "u64", "kernel time of capture, ns since boot"),
                ("wirelen", "u32", "length of the frame on the wire"),
                ("caplen", "u16", "bytes that follow (then padding to 8)"),
                ("dir", "u8", "0 received, 1 sent"),
                ("pad", "u8", "0"))
LAYOUTS += (CAPTURE_OPEN_REQ, CAPTURE_OPEN_REP, CAPTURE_PROG_REQ, CAPTURE_REQ,
            CAPTURE_START_REP, CAPTURE_STATUS_REP, CAPTURE_INJECT_REQ, CAPTURE_DATA_HDR,
            CAPTURE_PKT)
CAPTURE_PROG_MAX = (MAX_REQUEST - CAPTURE_PROG_REQ.size) // 8  # instructions per CAPTURE_PROG
CAPTURE_INJECT_MAX = MAX_REQUEST - CAPTURE_INJECT_REQ.size     # frame bytes per CAPTURE_INJECT
REQUESTS.update({
    MsgType.CAPTURE_OPEN: Request(CAPTURE_OPEN_REQ, "capture_open_rep", feature=Feature.CAPTURE),
    MsgType.CAPTURE_PROG: Request(CAPTURE_PROG_REQ, "empty", item=8, min_items=1,
                                  max_items=CAPTURE_PROG_MAX, feature=Feature.CAPTURE),
    MsgType.CAPTURE_START: Request(CAPTURE_REQ, "capture_start_rep", feature=Feature.CAPTURE),
    MsgType.CAPTURE_STATUS: Request(CAPTURE_REQ, "capture_status_rep", feature=Feature.CAPTURE),
    MsgType.CAPTURE_STOP: Request(CAPTURE_REQ, "capture_status_rep", feature=Feature.CAPTURE),
    MsgType.CAPTURE_CLOSE: Request(CAPTURE_REQ, "empty", feature=Feature.CAPTURE),
    MsgType.CAPTURE_INJECT: Request(CAPTURE_INJECT_REQ, "empty", item=1, min_items=14,
                                    max_items=CAPTURE_INJECT_MAX, feature=Feature.CAPTURE),
})
STREAMS[MsgType.CAPTURE_DATA] = (CAPTURE_DATA_HDR, "capture_data + npkt packets; the mux "
                                 "routes it to the client that opened the capture",
                                 Feature.CAPTURE)

# ---------------------------------------------------------------- network
# unik ping: the guest sends ICMP echo requests with lwIP's raw API
# (kernel/net/lwip/ping.c) and measures each reply's round trip itself;
# events stream in NET_PING_EVENT frames (docs/netstat.md).
NET_PING_START_REQ = L("net_ping_start_req", "NET_PING_START request",
                       ("dst", "u32", "IPv4 address, network byte order (first octet first)"),
                       ("count", "u32", "echo requests to send; 0: until NET_PING_STOP"),
                       ("interval_ms", "u32", "between requests (NET_PING_INTERVAL_MIN..)"),
                       ("size", "u32", "data bytes after the 8-byte ICMP header "
                        "(..NET_PING_SIZE_MAX)"),
                       ("timeout_ms", "u32", "how long each request waits for its reply"),
                       ("pad", "u32", "0"))
NET_PING_START_REP = L("net_ping_start_rep", "NET_PING_START reply",
                       ("ping", "u32", "ping id (names the ping's events)"),
                       ("ident", "u32", "the ICMP identifier the requests carry"),
                       ("src", "u32", "the guest's address, network byte order"),
                       ("pad", "u32", "0"))
NET_PING_REQ = L("net_ping_req", "NET_PING_STOP request",
                 ("ping", "u32", "ping id"),
                 ("pad", "u32", "0"))
NET_PING_STOP_REP = L("net_ping_stop_rep", "NET_PING_STOP reply: the ping's final "
                      "counters, kept by the kernel (exact even if events were dropped)",
                      ("transmitted", "u32", "echo requests sent"),
                      ("received", "u32", "replies matched to a request"),
                      ("errors", "u32", "requests lwIP refused to send"),
                      ("dropped", "u32", "events the kernel could not queue or send"),
                      ("rtt_min_ns", "u64", "fastest reply"),
                      ("rtt_max_ns", "u64", "slowest reply"),
                      ("rtt_sum_ns", "u64", "sum of the replies' round trips"),
                      ("rtt_sum2_us", "u64", "sum of their squares in us^2 (for mdev)"),
                      ("elapsed_ns", "u64", "first request to the end"))
NET_PING_EVENT_HDR = L("net_ping_event", "NET_PING_EVENT frame: one event of a ping",
                       ("ping", "u32", "ping id"),
                       ("kind", "u32", "NetPingEvent"),
                       ("seq", "u32", "icmp_seq of the request (from 1)"),
                       ("ttl", "u32", "REPLY: the reply's IP TTL"),
                       ("bytes", "u32", "REPLY: ICMP bytes received"),
                       ("from_addr", "u32", "REPLY: the sender, network byte order"),
                       ("rtt_ns", "u64", "REPLY: round trip as the guest measured it"))
LAYOUTS += (NET_PING_START_REQ, NET_PING_START_REP, NET_PING_REQ, NET_PING_STOP_REP,
            NET_PING_EVENT_HDR)


class NetPingEvent(IntEnum):
    """What a NET_PING_EVENT reports."""
    REPLY = 0           # an echo reply to request `seq`
    TIMEOUT = 1         # request `seq` got no reply within timeout_ms
    SEND_ERROR = 2      # lwIP refused to send request `seq`
    DONE = 3            # the last request was answered or timed out: NET_PING_STOP next


NET_PING_INTERVAL_MIN = 10              # ms
NET_PING_SIZE_MAX = 1472                # one Ethernet frame: 1500 - IP 20 - ICMP 8
REQUESTS.update({
    MsgType.NET_PING_START: Request(NET_PING_START_REQ, "net_ping_start_rep",
                                    feature=Feature.NET),
    MsgType.NET_PING_STOP: Request(NET_PING_REQ, "net_ping_stop_rep", feature=Feature.NET),
})
STREAMS[MsgType.NET_PING_EVENT] = (NET_PING_EVENT_HDR, "net_ping_event; to the clients that "
                                   "subscribe (one ping runs at a time: its `ping` id "
                                   "tells them apart)", Feature.NET)

FEATURES_ALL = 0
for _f in Feature:
    FEATURES_ALL |= int(_f)


def feature_of(mtype: int) -> int:
    """Capability bit a request type needs (0: none)."""
    r = REQUESTS.get(mtype)
    return r.feature if r else 0


# Constants exported to C as #define WIRE_<NAME>.
CONSTANTS = {
    "MAGIC": MAGIC, "VERSION": VERSION, "HEADER_SIZE": HEADER_SIZE,
    "MAX_PAYLOAD": MAX_PAYLOAD, "MAX_REQUEST": MAX_REQUEST,
    "MEMREAD_MAX": MEMREAD_MAX, "LOG_READ_MAX": LOG_READ_MAX, "REPLY": REPLY,
    "TRACE_DATA_EXITING": TRACE_DATA_EXITING, "AGG_ALL": AGG_ALL,
}

ENUMS = (("MSG", MsgType), ("REJ", Reject), ("ERR", ErrCode), ("TS", ThreadState),
         ("F", Feature), ("DEADMAN", Deadman))
ENUMS += (("PING", NetPingEvent),)
CONSTANTS.update(NET_PING_INTERVAL_MIN=NET_PING_INTERVAL_MIN,
                 NET_PING_SIZE_MAX=NET_PING_SIZE_MAX)


# ================================================================ mux-local
# Request types MUX_FIRST..MUX_LAST are answered by the per-instance
# multiplexer (introspect/muxd.py) and never reach the kernel.  They are host
# only: deliberately NOT in ENUMS or LAYOUTS, so wire.h does not carry them.
# Replies follow the same rules (type | REPLY, ERROR on failure).

MUX_FIRST = 0x4000
MUX_LAST = 0x4FFF


class MuxType(IntEnum):
    MUX_INFO = 0x4000       # mux statistics and the cached kernel HELLO reply
    MUX_SUBSCRIBE = 0x4001  # (un)subscribe to unsolicited kernel frames (id 0)


def is_mux_local(mtype: int) -> bool:
    """True for a request (or reply) type the mux serves itself."""
    return MUX_FIRST <= (mtype & ~REPLY & 0xFFFF) <= MUX_LAST


MUX_INFO_REP = L("mux_info_rep", "MUX_INFO reply head; `hello_len` bytes of the "
                 "kernel's cached HELLO reply payload follow",
                 ("version", "u32", "protocol version the mux speaks"),
                 ("pid", "u32", "mux process id"),
                 ("clients", "u32", "host clients connected now"),
                 ("pending", "u32", "requests forwarded and not yet answered"),
                 ("clients_total", "u64", "host clients ever connected"),
                 ("frames_up", "u64", "client frames forwarded to the kernel"),
                 ("frames_down", "u64", "kernel replies routed to a client"),
                 ("frames_broadcast", "u64", "unsolicited kernel frames delivered"),
                 ("frames_dropped", "u64", "kernel frames no client wanted"),
                 ("frames_local", "u64", "mux-local requests served"),
                 ("uptime_ns", "u64", "time since the mux started"),
                 ("hello_len", "u32", "bytes of cached HELLO reply that follow"),
                 ("pad", "u32", "0"))

MUX_SUBSCRIBE_REQ = L("mux_subscribe_req", "MUX_SUBSCRIBE request: unsolicited "
                      "kernel frames whose type is in [type_lo, type_hi]",
                      ("type_lo", "u16", "first frame type wanted"),
                      ("type_hi", "u16", "last frame type wanted"),
                      ("on", "u32", "1 subscribe, 0 unsubscribe the range"))

MUX_REQUESTS = {
    MuxType.MUX_INFO: None,
    MuxType.MUX_SUBSCRIBE: MUX_SUBSCRIBE_REQ,
}


# ================================================================ crash
# The crash record: kernel/arch/crash.c fills the global `crash_record`
# (struct wire_crash_record) when the kernel panics, sends it as the
# payload of a CRASH frame when the channel can still send, and halts.
# The host reads it by symbol from a core (introspect/helpers/crash.py)
# or from the frame (the mux), with this one layout.

CRASH_MAGIC = 0x48535243                # "CRSH" at the record's start
CRASH_TEXT = 4096                       # bytes of panic report text kept
CRASH_FRAMES = 32                       # return addresses kept


class CrashKind(IntEnum):
    """Why the kernel panicked (crash_record.kind)."""
    NONE = 0            # no panic (the record is all zeroes)
    TRAP = 1            # a CPU exception (vector, err, cr2 are the CPU's)
    PANIC = 2           # a panic() call
    ASSERT = 3          # a failed KASSERT (file, line)
    STACK_OVERFLOW = 4  # a thread ran into the guard page below its stack
    HEAP = 5            # the heap's checks: double free, bad pointer
    WATCHDOG = 6        # a watchdog saw a stall


class CrashState(IntEnum):
    """How far the kernel got with the record (crash_record.state)."""
    EMPTY = 0           # never panicked
    WRITING = 1         # panicking: the report is being written
    COMPLETE = 2        # the report is whole; the kernel is halted


CRASH_RECORD = L("crash_record", "the crash record (kernel global crash_record; CRASH "
                 "frame payload)",
                 ("magic", "u32", "CRASH_MAGIC once a panic began"),
                 ("state", "u32", "CrashState"),
                 ("kind", "u32", "CrashKind"),
                 ("vector", "u32", "CPU exception vector (TRAP, STACK_OVERFLOW), else 0xffffffff"),
                 ("err", "u64", "the exception's error code"),
                 ("cr2", "u64", "CR2 (faulting address of a #PF)"),
                 ("rax", "u64", ""), ("rbx", "u64", ""), ("rcx", "u64", ""),
                 ("rdx", "u64", ""), ("rsi", "u64", ""), ("rdi", "u64", ""),
                 ("rbp", "u64", ""), ("rsp", "u64", ""), ("r8", "u64", ""),
                 ("r9", "u64", ""), ("r10", "u64", ""), ("r11", "u64", ""),
                 ("r12", "u64", ""), ("r13", "u64", ""), ("r14", "u64", ""),
                 ("r15", "u64", ""),
                 ("rip", "u64", "faulting instruction (TRAP), or panic()'s return address"),
                 ("rflags", "u64", ""), ("cs", "u64", ""), ("ss", "u64", ""),
                 ("cr0", "u64", ""), ("cr3", "u64", ""), ("cr4", "u64", ""),
                 ("uptime_ns", "u64", "time since boot at the panic"),
                 ("tsc", "u64", "TSC at the panic"),
                 ("tid", "u32", "faulting thread's id (0xffffffff: before threads)"),
                 ("line", "u32", "KASSERT's source line, else 0"),
                 ("thread", "char[24]", "faulting thread's name"),
                 ("reason", "char[160]", "one line: the exception's name or panic()'s message"),
                 ("file", "char[64]", "KASSERT's source file, else empty"),
                 ("addr", "u64", "what the reason is about: the guard page's address, the "
                  "heap block's, else 0"),
                 ("stack_lo", "u64", "STACK_OVERFLOW: the thread's stack, lowest byte"),
                 ("nframes", "u32", "return addresses in frames"),
                 ("text_len", "u32", "bytes of text"),
                 ("frames", f"u8[{8 * CRASH_FRAMES}]",
                  "the backtrace the report printed: nframes u64 addresses"),
                 ("text", f"char[{CRASH_TEXT}]", "the panic report as printed (log text)"))

LAYOUTS = LAYOUTS + (CRASH_RECORD,)
ENUMS = ENUMS + (("CRASH", CrashKind), ("CS", CrashState))
CONSTANTS.update(CRASH_MAGIC=CRASH_MAGIC, CRASH_TEXT=CRASH_TEXT, CRASH_FRAMES=CRASH_FRAMES)
STREAMS[MsgType.CRASH] = (CRASH_RECORD, "crash_record: sent once, as the kernel halts after "
                          "a panic; the mux takes a core", Feature.CRASH)
