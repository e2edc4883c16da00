"""`TraceSession`: one compiled D program running in the kernel.

The host side of the trace requests (docs/protocol.md): open a session with
the program's buffer sizes, upload the program container in TRACE_CHUNK
pieces, have the kernel verify it (a refusal raises `TraceVerifyError` with
the verifier's pc and reason), enable its clauses on their probes and go.
The kernel then drains the session's record buffer every `switchrate` into
TRACE_DATA frames, which the mux routes to this client alone; `poll()`
turns them into events:

  ('records', bytes)   the whole records of one TRACE_DATA frame, concatenated
  ('drops', {kind: n}) drop counters moved by n since the last report; kinds:
                       'buf' (record buffer full), 'chan' (frame lost on the
                       channel), 'agg' (aggregation memory full), 'dyn'
                       (dynamic variables full)
  ('exit',)            the program called exit(): stop() and print
  ('deadman', {...})   the kernel's deadman aborted the session (TRACE_ABORT
                       or TRACE_STATUS fields: reason, budget, used_ns,
                       window_ns; `deadman_text` says it in words)

The deadman (options deadman, cpubudget, cpuwindow) is set with
TRACE_DEADMAN before TRACE_GO; `poll()` sends TRACE_STATUS at least every
`heartbeat` seconds, which tells the kernel that the host still drains.

Every record the kernel emitted is either delivered or counted in 'buf' or
'chan': after stop(), records delivered + chan drops == the kernel's
`records` counter, exactly.

    with TraceSession(channel, prog) as s:
        s.start()
        while ...: for ev in s.poll(0.5): ...
        events = s.stop()
        aggs = s.aggregations()

`close()` (also on leaving the `with`) frees the session; if the client
dies instead, the mux closes its sessions within a second.
"""
from __future__ import annotations

import time
from collections import deque

from . import codec, fbt
from . import protocol as P
from .errors import ChannelError, ChannelTimeout, UnikError

# Options (DTrace's -x names) and their defaults; sizes in bytes.
DEFAULTS = {"bufsize": 256 << 10, "aggsize": 256 << 10, "dynvarsize": 256 << 10,
            "switchrate": "50hz", "deadman": 10_000, "cpubudget": 50, "cpuwindow": 1000}
HEARTBEAT = 1.0                 # seconds between TRACE_STATUS heartbeats (at most)
DROP_KINDS = (("buf", "drops_buf"), ("chan", "drops_chan"), ("agg", "drops_agg"),
              ("dyn", "drops_dyn"))


class TraceVerifyError(UnikError):
    """The kernel's verifier refused the program: at instruction `pc`
    (-1: the container as a whole) for `reason`."""

    def __init__(self, pc: int, reason: str) -> None:
        where = "the program container" if pc < 0 else f"instruction {pc}"
        super().__init__(f"the kernel refused the program at {where}: {reason}",
                         "the compiler and the kernel's verifier disagree: report it "
                         "with the script")
        self.pc = pc
        self.reason = reason


def parse_size(v) -> int:
    """bufsize-style option: an int, or a string with k/m/g suffix."""
    if isinstance(v, int):
        return v
    s = str(v).strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(s[-1:], 1)
    try:
        return int(s[:-1] if mult > 1 else s) * mult
    except ValueError:
        raise UnikError(f"bad size {v!r}", "give bytes, e.g. 65536, 64k or 4m") from None


def parse_rate_us(v) -> int:
    """switchrate: Hz as an int ('50' = 50 Hz, as DTrace), or a string with
    hz / s / ms / us / ns; returns the period in microseconds."""
    s = str(v).strip().lower()
    try:
        for unit, us in (("hz", None), ("ms", 1000), ("us", 1), ("ns", 0.001),
                         ("s", 1_000_000)):
            if s.endswith(unit):
                n = float(s[:-len(unit)])
                return max(1, int(1_000_000 / n if us is None else n * us))
        return max(1, int(1_000_000 / float(s)))
    except (ValueError, ZeroDivisionError):
        raise UnikError(f"bad switchrate {v!r}", "give a rate, e.g. 50hz or 20ms") from None


class TraceSession:
    def __init__(self, channel, prog) -> None:
        self.ch = channel
        self.prog = prog
        self.session: int | None = None
        self.exiting = False
        self.drops = dict.fromkeys(k for k, _ in DROP_KINDS)   # totals seen
        self.delivered = 0              # records received
        self.frames = 0
        self._queues = channel.__dict__.setdefault("_trace_frames", {})
        self.aborted: dict | None = None    # the deadman's reason, once heard
        self.heartbeat = HEARTBEAT
        self._beat = 0.0                    # time.monotonic() of the last heartbeat

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Open, upload, verify, enable and go.  TraceVerifyError when the
        verifier refuses; MissingFeature when the kernel has no TRACE."""
        ch, prog = self.ch, self.prog
        ch.require(P.Feature.TRACE, "tracing")
        opts = {**DEFAULTS, **{k: v for k, v in (prog.options or {}).items()
                               if k in DEFAULTS}}
        try:
            fr = ch.request(P.MsgType.TRACE_OPEN, codec.trace_open_request(
                bufsize=parse_size(opts["bufsize"]), aggsize=parse_size(opts["aggsize"]),
                dynvarsize=parse_size(opts["dynvarsize"]), prog_len=len(prog.blob),
                switchrate_us=parse_rate_us(opts["switchrate"]), wall_ns=time.time_ns()))
        except ChannelError as e:
            if e.code_name != "NO_SPACE":
                raise
            raise UnikError(f"{ch.name}: no room for another trace session ({e.msg})",
                            "every session slot (PROBE_SESSIONS_MAX in kernel tunables) or "
                            "the memory asked with -x bufsize/aggsize/dynvarsize is in use: "
                            "end another `unik trace` or ask for less") from None
        self.session = ch._decode(codec.decode_trace_open, fr.payload)
        self._queues[self.session] = deque()
        try:
            self._load()
            for pl in codec.trace_enable_requests(self.session, fbt.runs(prog.enablings)):
                ch.request(P.MsgType.TRACE_ENABLE, pl)
            self._deadman(opts)
            ch.request(P.MsgType.TRACE_GO, codec.trace_session_request(self.session))
        except BaseException:
            self.close()
            raise

    def _deadman(self, opts: dict) -> None:
        """TRACE_DEADMAN from the options; heartbeats at most every
        HEARTBEAT s and four times per drain timeout."""
        timeout = int(opts["deadman"])
        self.ch.request(P.MsgType.TRACE_DEADMAN, codec.trace_deadman_request(
            self.session, timeout_ms=timeout, cpu_pct=int(opts["cpubudget"]),
            window_ms=int(opts["cpuwindow"])))
        if timeout:
            self.heartbeat = min(HEARTBEAT, timeout / 4000)
        self._beat = time.monotonic()

    def _load(self) -> None:
        for pl in codec.trace_chunk_requests(self.session, self.prog.blob):
            self.ch.request(P.MsgType.TRACE_CHUNK, pl)
        fr = self.ch.request(P.MsgType.TRACE_LOAD, codec.trace_session_request(self.session))
        r = self.ch._decode(codec.decode_trace_load, fr.payload)
        if not r["ok"]:
            raise TraceVerifyError(r["pc"], r["msg"])

    def stop(self) -> list:
        """Stop the program (END fires, sites restored); return the events
        of the records that remain, drops reconciled with the kernel's
        final counters."""
        if self.session is None:
            return []
        self.ch.request(P.MsgType.TRACE_STOP, codec.trace_session_request(self.session))
        events: list = []
        self._collect(events)           # the kernel sent them before its reply
        st = self.status()
        self._drops(st, events)
        self._aborted(st, events)
        if st.get("reentrant"):
            # firings skipped because they came from inside the engine
            # (a probe in an interrupt that hit a running clause): lost too
            events.append(("drops", {"reentrant": st["reentrant"]}))
        return events

    def close(self) -> None:
        """Free the session (idempotent)."""
        sid, self.session = self.session, None
        if sid is None:
            return
        self._queues.pop(sid, None)
        try:
            self.ch.request(P.MsgType.TRACE_CLOSE, codec.trace_session_request(sid))
        except UnikError:
            pass                        # the channel is gone: the mux closes it

    def __enter__(self) -> "TraceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ results
    def status(self) -> dict:
        fr = self.ch.request(P.MsgType.TRACE_STATUS, codec.trace_session_request(self._sid()))
        return self.ch._decode(codec.decode_trace_status, fr.payload)

    def aggregations(self) -> bytes:
        """Every aggregation entry (AGG_READ pages concatenated)."""
        out, cursor = bytearray(), 0
        while True:
            fr = self.ch.request(P.MsgType.AGG_READ, codec.agg_read_request(self._sid(), cursor))
            cursor, data = self.ch._decode(codec.decode_agg_read, fr.payload)
            out += data
            if cursor == 0:
                return bytes(out)

    def clear(self, agg: int | None = None) -> None:
        """Zero aggregation `agg` (all when None); keys stay."""
        self.ch.request(P.MsgType.AGG_CLEAR, codec.agg_clear_request(self._sid(), agg))

    def _sid(self) -> int:
        if self.session is None:
            raise UnikError("the trace session is closed", "start a new one")
        return self.session

    # ------------------------------------------------------------ stream
    def poll(self, timeout: float) -> list:
        """Events that arrived, waiting up to `timeout` seconds for the first."""
        self._sid()
        events: list = []
        end = time.monotonic() + timeout
        self._collect(events)
        self._heartbeat(events)
        while not events:
            left = end - time.monotonic()
            if left <= 0:
                break
            try:
                fr = self.ch.recv_frame(max(0.001, min(left, self._beat + self.heartbeat
                                                       - time.monotonic())))
            except ChannelTimeout:
                self._heartbeat(events)
                self._collect(events)
                continue
            if fr.id == 0:
                self.ch.events.append(fr)
            self._collect(events)
        return events

    def _heartbeat(self, events: list) -> None:
        """TRACE_STATUS when one is due: the kernel's deadman hears that
        the host still drains, and the reply says if it aborted anyway."""
        if time.monotonic() - self._beat >= self.heartbeat:
            self._beat = time.monotonic()
            self._aborted(self.status(), events)

    def _collect(self, events: list) -> None:
        """Sort the channel's unsolicited frames into sessions; turn ours
        into events."""
        self.ch.route_events((P.MsgType.TRACE_DATA, P.MsgType.TRACE_ABORT), self._queues)
        q = self._queues.get(self.session)
        while q:
            self._frame(q.popleft(), events)

    def _frame(self, fr, events: list) -> None:
        if fr.type == P.MsgType.TRACE_ABORT:
            return self._aborted(self.ch._decode(codec.decode_trace_abort, fr.payload), events)
        h, recs = self.ch._decode(codec.decode_trace_data, fr.payload)
        self.frames += 1
        if recs:
            self.delivered += h["nrec"]
            events.append(("records", recs))
        self._drops(h, events)
        if h["flags"] & P.TRACE_DATA_EXITING and not self.exiting:
            self.exiting = True
            events.append(("exit",))

    def _aborted(self, d: dict, events: list) -> None:
        """A TRACE_ABORT frame or a TRACE_STATUS reply: the deadman's
        reason (first heard only) as a ('deadman', ...) event."""
        reason = d.get("reason", d.get("deadman", 0))
        if not reason or self.aborted:
            return
        self.aborted = {"reason": reason,
                        "budget": d.get("budget", d.get("deadman_budget", 0)),
                        "used_ns": d.get("used_ns", d.get("deadman_used_ns", 0)),
                        "window_ns": d.get("window_ns", d.get("deadman_window_ns", 0))}
        events.append(("deadman", self.aborted))

    def _drops(self, counters: dict, events: list) -> None:
        moved = {}
        for kind, field in DROP_KINDS:
            now, was = counters[field], self.drops[kind] or 0
            if now > was:
                moved[kind] = now - was
            self.drops[kind] = max(now, was)
        if moved:
            events.append(("drops", moved))
        if counters.get("exiting") and not self.exiting:
            self.exiting = True
            events.append(("exit",))


def deadman_text(d: dict) -> str:
    """The deadman's reason in words (one line, no prefix)."""
    used, window = d["used_ns"], d["window_ns"]
    if d["reason"] == P.Deadman.CPU:
        pct = 100 * used / window if window else 0
        return (f"probe time {pct:.0f}% of CPU over {window / 1e9:.1f} s "
                f"(budget {d['budget']}%)")
    if d["reason"] == P.Deadman.DRAIN:
        return (f"the host did not drain it for {used / 1e9:.1f} s "
                f"(timeout {window / 1e9:.1f} s)")
    return f"reason {d['reason']}"
