"""The fake kernel's trace sessions (tests/fakekernel.py): a small but
faithful model of what the kernel's chan/trace.c does with the trace
requests, for host-side tests of the codec, the mux and TraceSession.

Its "verifier" accepts a container with isa.PROG_MAGIC and refuses
anything else at pc -1; BEGIN (probe 1) enablings record once at GO, END
at STOP, tick enablings (probe 4, arg = period ns) every period; each
record is a REC_HDR (desc = clause) and one u64 (a running count), and
aggregation 0 counts firings per probe.  Records go through a bufsize
buffer (full: drops_buf) drained every switchrate into TRACE_DATA frames.
Every request is recorded in `log` for the tests to inspect.  The drain
deadman is modelled as the kernel's: TRACE_DEADMAN's timeout, every request
naming the session a heartbeat, a silent host's session stopped and a
TRACE_ABORT sent; `abort()` injects any abort (the CPU budget needs a real
kernel).
"""
from __future__ import annotations

import struct
import threading
import time

from introspect import codec
from introspect import protocol as P
from probes import isa

MAX_SESSIONS = 32


class Session:
    def __init__(self, sid: int, req: dict) -> None:
        self.sid = sid
        self.opts = req
        self.blob = bytearray(req["prog_len"])
        self.loaded = False
        self.enablings: list = []
        self.running = False
        self.exiting = False
        self.buf: list = []             # committed records not yet drained
        self.bufbytes = 0
        self.stats = dict.fromkeys(f for f, _, _ in P.TRACE_STATUS_REP.fields
                                   if f not in ("pad", "exiting"))
        for k in self.stats:
            self.stats[k] = 0
        self.counts: dict = {}           # probe id -> firings (aggregation 0)
        self.seq = 0
        self.exit_sent = False
        self.next_tick: dict = {}        # enabling index -> due (ns)
        self.deadman = {"timeout_ms": 0, "cpu_pct": 50, "window_ms": 1000}
        self.alive_ns = 0                # last request naming the session


class FakeTrace:
    def __init__(self, kernel) -> None:
        self.k = kernel                  # FakeKernel: send(), error(), uptime_ns()
        self.sessions: dict = {}
        self.log: list = []              # (type name, session) of every request
        self.lock = threading.RLock()
        self.closed: list = []           # sessions closed, in order
        self.exit_after = 0              # tick records before a session calls exit()
        threading.Thread(target=self._run, daemon=True).start()

    # ------------------------------------------------------------ requests
    def handle(self, fr: codec.Frame):
        t = P.MsgType(fr.type)
        sid = P.TRACE_SESSION_REQ.unpack(fr.payload)["session"] \
            if t != P.MsgType.TRACE_OPEN else None
        self.log.append((t.name, sid))
        with self.lock:
            if sid in self.sessions:
                self.sessions[sid].alive_ns = self.k.uptime_ns()
            return getattr(self, "do_" + t.name.lower())(fr)

    def _get(self, fr, sid, need=None):
        s = self.sessions.get(sid)
        if s is None or (need is not None and not need(s)):
            return None, self.k.error(fr, P.ErrCode.NO_SESSION, f"no session {sid} in that state")
        return s, None

    def do_trace_open(self, fr):
        req = P.TRACE_OPEN_REQ.unpack(fr.payload)
        free = [i for i in range(MAX_SESSIONS) if i not in self.sessions]
        if not free or req["prog_len"] > isa.MAX_PROG_BYTES:
            return self.k.error(fr, P.ErrCode.NO_SPACE, "no room for a session")
        self.sessions[free[0]] = Session(free[0], req)
        return P.TRACE_OPEN_REP.pack(session=free[0])

    def do_trace_chunk(self, fr):
        h = P.TRACE_CHUNK_REQ.unpack(fr.payload)
        s, err = self._get(fr, h["session"], lambda s: not s.loaded)
        if err:
            return err
        data = fr.payload[P.TRACE_CHUNK_REQ.size:]
        if h["offset"] + len(data) > len(s.blob):
            return self.k.error(fr, P.ErrCode.RANGE, "chunk beyond prog_len")
        s.blob[h["offset"]:h["offset"] + len(data)] = data
        return b""

    def do_trace_load(self, fr):
        s, err = self._get(fr, P.TRACE_SESSION_REQ.unpack(fr.payload)["session"])
        if err:
            return err
        if len(s.blob) < 4 or struct.unpack_from("<I", s.blob)[0] != isa.PROG_MAGIC:
            return P.TRACE_LOAD_REP.pack(ok=0, pc=-1, msg="bad container magic")
        s.loaded = True
        return P.TRACE_LOAD_REP.pack(ok=1, pc=0, msg="")

    def do_trace_enable(self, fr):
        h = P.TRACE_ENABLE_REQ.unpack(fr.payload)
        s, err = self._get(fr, h["session"], lambda s: s.loaded and not s.running)
        if err:
            return err
        body = fr.payload[P.TRACE_ENABLE_REQ.size:]
        for i in range(0, len(body), P.TRACE_ENABLING.size):
            e = P.TRACE_ENABLING.unpack(body, i)
            s.enablings.append((e["clause"], e["probe"], e["arg"]))
        return b""

    def do_trace_go(self, fr):
        s, err = self._get(fr, P.TRACE_SESSION_REQ.unpack(fr.payload)["session"],
                           lambda s: s.loaded and not s.running)
        if err:
            return err
        s.running = True
        now = self.k.uptime_ns()
        for i, (c, p, a) in enumerate(s.enablings):
            if p == isa.SynthProbe.BEGIN:
                self._fire(s, c, p)
            elif p == isa.SynthProbe.TICK:
                s.next_tick[i] = now + a
        return b""

    def do_trace_stop(self, fr):
        s, err = self._get(fr, P.TRACE_SESSION_REQ.unpack(fr.payload)["session"])
        if err:
            return err
        if s.running:
            s.running = False
            for c, p, a in s.enablings:
                if p == isa.SynthProbe.END:
                    self._fire(s, c, p)
        while self._flush(s, force=True):
            pass
        return b""

    def do_trace_close(self, fr):
        sid = P.TRACE_SESSION_REQ.unpack(fr.payload)["session"]
        s, err = self._get(fr, sid)
        if err:
            return err
        del self.sessions[sid]
        self.closed.append(sid)
        return b""

    def do_trace_status(self, fr):
        s, err = self._get(fr, P.TRACE_SESSION_REQ.unpack(fr.payload)["session"])
        if err:
            return err
        return P.TRACE_STATUS_REP.pack(**s.stats, exiting=int(s.exiting))

    def do_trace_deadman(self, fr):
        req = P.TRACE_DEADMAN_REQ.unpack(fr.payload)
        s, err = self._get(fr, req["session"])
        if err:
            return err
        if any(v and not 100 <= v <= 3_600_000 for v in (req["timeout_ms"], req["window_ms"])):
            return self.k.error(fr, P.ErrCode.RANGE, "deadman timeout or window out of range")
        s.deadman = {k: req[k] for k in ("timeout_ms", "cpu_pct", "window_ms")}
        return b""

    def abort(self, sid: int, reason: int, budget: int, used_ns: int, window_ns: int) -> None:
        """The deadman aborts session sid: no more firings, TRACE_ABORT sent,
        TRACE_STATUS says why (as probe_deadman_tick + chan_trace_run)."""
        with self.lock:
            s = self.sessions[sid]
            s.running = False
            why = {"reason": reason, "budget": budget, "used_ns": used_ns,
                   "window_ns": window_ns}
            s.stats.update(deadman=reason, deadman_budget=budget, deadman_used_ns=used_ns,
                           deadman_window_ns=window_ns)
            while self._flush(s):
                pass
            self.k.send(codec.encode(P.MsgType.TRACE_ABORT, 0,
                                     P.TRACE_ABORT.pack(session=sid, **why)))

    def _agg_entries(self, s) -> list:
        return [struct.pack("<HHIQQ", 0, 8, 1, p, n) for p, n in sorted(s.counts.items())]

    def do_agg_read(self, fr):
        req = P.AGG_READ_REQ.unpack(fr.payload)
        s, err = self._get(fr, req["session"])
        if err:
            return err
        ents = self._agg_entries(s)
        page = ents[req["cursor"]:req["cursor"] + 2]        # small pages: paging is tested
        nxt = req["cursor"] + len(page)
        data = b"".join(page)
        return P.AGG_READ_REP.pack(next=nxt if nxt < len(ents) else 0, len=len(data)) + data

    def do_agg_clear(self, fr):
        req = P.AGG_CLEAR_REQ.unpack(fr.payload)
        s, err = self._get(fr, req["session"])
        if err:
            return err
        if req["agg"] not in (0, P.AGG_ALL):
            return self.k.error(fr, P.ErrCode.RANGE, f"no aggregation {req['agg']}")
        s.counts = dict.fromkeys(s.counts, 0)
        return b""

    def host_left(self) -> None:
        """probe_close_all: the host (mux) disconnected."""
        with self.lock:
            self.closed.extend(sorted(self.sessions))
            self.sessions.clear()

    # ------------------------------------------------------------ firing
    def _fire(self, s: Session, clause: int, probe: int) -> None:
        s.stats["fired"] += 1
        s.counts[probe] = s.counts.get(probe, 0) + 1
        rec = isa.REC_HDR.pack(size=24, desc=clause, probe=probe,
                               timestamp=self.k.uptime_ns()) + struct.pack("<Q", s.stats["fired"])
        if s.bufbytes + len(rec) > s.opts["bufsize"]:
            s.stats["drops_buf"] += 1
            return
        s.buf.append(rec)
        s.bufbytes += len(rec)
        s.stats["records"] += 1
        if self.exit_after and probe == isa.SynthProbe.TICK and \
                s.counts[probe] >= self.exit_after:
            s.exiting = True

    def _flush(self, s: Session, force: bool = False) -> bool:
        """One TRACE_DATA frame of s's buffer; False when there was nothing."""
        exit_due = s.exiting and not s.exit_sent
        if not s.buf and not exit_due:
            return False
        room = P.MAX_PAYLOAD - P.TRACE_DATA_HDR.size
        recs, n = [], 0
        while s.buf and n + len(s.buf[0]) <= room:
            r = s.buf.pop(0)
            s.bufbytes -= len(r)
            recs.append(r)
            n += len(r)
        s.stats["drained"] += len(recs)
        head = P.TRACE_DATA_HDR.pack(
            session=s.sid, seq=s.seq, nrec=len(recs),
            flags=P.TRACE_DATA_EXITING if s.exiting else 0,
            drops_buf=s.stats["drops_buf"], drops_chan=s.stats["drops_chan"],
            drops_agg=0, drops_dyn=0, errors=0)
        s.seq += 1
        s.exit_sent = s.exit_sent or s.exiting
        s.stats["frames"] += 1
        self.k.send(codec.encode(P.MsgType.TRACE_DATA, 0, head + b"".join(recs)))
        return True

    def _run(self) -> None:
        while not self.k.stopping:
            time.sleep(0.002)
            now = self.k.uptime_ns()
            with self.lock:
                for s in list(self.sessions.values()):
                    self._tick(s, now)

    def _tick(self, s: Session, now: int) -> None:
        if not s.running:
            return
        timeout = s.deadman["timeout_ms"] * 10**6
        if timeout and now - s.alive_ns > timeout:
            return self.abort(s.sid, P.Deadman.DRAIN, 0, now - s.alive_ns, timeout)
        for i, due in list(s.next_tick.items()):
            c, p, a = s.enablings[i]
            while due <= now and not s.exiting:
                self._fire(s, c, p)
                due += max(a, 1)
            s.next_tick[i] = due
        rate = s.opts["switchrate_us"] * 1000
        if now - getattr(s, "last_flush", 0) >= rate:
            s.last_flush = now
            while self._flush(s):
                pass
