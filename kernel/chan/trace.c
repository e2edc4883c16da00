/* Trace requests and the TRACE_DATA stream: the channel's side of the
 * probe engine (probe.h).
 *
 * A session is opened (TRACE_OPEN), its program container uploaded in
 * pieces (TRACE_CHUNK), verified (TRACE_LOAD, whose refusal is a reply
 * carrying the verifier's pc and reason), enabled (TRACE_ENABLE, a batch of
 * enablings) and started (TRACE_GO).  From then on chan_trace_run drains
 * its record buffer every `switchrate` into TRACE_DATA frames, many whole
 * records per frame, without ever blocking a probe site: records wait in
 * the engine's buffer while the transmit ring is full (the engine counts
 * what does not fit as drops_buf), and a frame drained but not queued (the
 * host left) is counted per session in drops_chan.  So records committed =
 * records delivered + drops_chan, exactly.  TRACE_STOP fires END, restores
 * the sites and flushes what remains before its reply; TRACE_CLOSE frees
 * the session.  The host leaving closes every session (probe_close_all).
 * TRACE_DEADMAN sets a session's deadman (probe.h); every request naming
 * a session is its host's heartbeat; a session the deadman aborted has
 * its sites restored here and its host told by a TRACE_ABORT frame. */
#include "chan_int.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "probe.h"
#include "tunables.h"
#include "isa.h"

#define TRACE_MAX 32                    /* sessions: bits of probe_pending() */

/* What the channel keeps per session (the engine keeps the rest). */
struct chan_trace {
    bool open;                          /* TRACE_OPEN answered, not closed */
    bool active;                        /* TRACE_GO done: drained by chan_trace_run */
    bool exit_sent;                     /* a frame flagged EXITING was queued */
    bool abort_sent;                    /* the deadman's TRACE_ABORT was queued */
    u64 period_ns;                      /* switchrate */
    u64 due_ns;                         /* next drain */
    u32 seq;                            /* next TRACE_DATA sequence number */
    u64 frames;                         /* TRACE_DATA frames queued */
    u64 drops_chan;                     /* records in frames not queued */
};

static struct chan_trace chan_traces[TRACE_MAX];

/* The wire error for an engine error, and a reply carrying it.  Called by
 * the handlers when the engine refuses. */
static void trace_refuse(u16 type, u32 id, int err, u32 sid)
{
    u32 code = err == PROBE_E_NOSPACE ? WIRE_ERR_NO_SPACE :
               err == PROBE_E_NOPROBE ? WIRE_ERR_NO_PROBE :
               err == PROBE_E_RANGE ? WIRE_ERR_RANGE : WIRE_ERR_NO_SESSION;
    static const char *const why[] = {
        [PROBE_OK] = "ok", [PROBE_E_NOSESSION] = "no such session in that state",
        [PROBE_E_NOSPACE] = "no room", [PROBE_E_VERIFY] = "not verified",
        [PROBE_E_NOPROBE] = "no such probe", [PROBE_E_RANGE] = "out of range",
    };
    const char *w = err >= 0 && err <= PROBE_E_RANGE ? why[err] : "failed";
    chan_error(type, id, code, "session %u: %s", sid, w);
}

/* The session a request names, if the channel opened it; else an ERROR
 * reply and NULL.  Called by every handler but TRACE_OPEN. */
static struct chan_trace *trace_get(u16 type, u32 id, u32 sid)
{
    if (sid < TRACE_MAX && chan_traces[sid].open) {
        probe_alive(sid);               /* the deadman's heartbeat */
        return &chan_traces[sid];
    }
    chan_error(type, id, WIRE_ERR_NO_SESSION, "no trace session %u", sid);
    return NULL;
}

/* The reply to a request the engine did (err == PROBE_OK: an empty
 * reply) or refused.  Called by the handlers. */
static void trace_done(u16 type, u32 id, int err, u32 sid)
{
    if (err != PROBE_OK)
        trace_refuse(type, id, err, sid);
    else
        chan_answer(type, id, NULL, 0);
}

/* The session a trace_session_req payload names (TRACE_LOAD, GO, STOP,
 * CLOSE, STATUS; TRACE_ENABLE's head starts the same way). */
static u32 trace_sid(const u8 *p)
{
    struct wire_trace_session_req rq;
    memcpy(&rq, p, sizeof(rq));
    return rq.session;
}

/* TRACE_OPEN: a new session with the sizes asked for. */
void chan_serve_trace_open(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_trace_open_req rq;
    memcpy(&rq, p, sizeof(rq));
    struct probe_opts o = { .bufsize = rq.bufsize, .aggsize = rq.aggsize,
                            .dynvarsize = rq.dynvarsize, .prog_len = rq.prog_len,
                            .wall_ns = rq.wall_ns };
    u32 sid = 0;
    int err = probe_open(&o, &sid);
    if (err == PROBE_OK && sid >= TRACE_MAX) {
        probe_close(sid);
        err = PROBE_E_NOSPACE;
    }
    if (err == PROBE_E_RANGE) {
        chan_error(type, id, WIRE_ERR_RANGE, "sizes %u/%u/%u or prog_len %u out of range", rq.bufsize, rq.aggsize, rq.dynvarsize, rq.prog_len);
        return;
    }
    if (err != PROBE_OK) {
        chan_error(type, id, WIRE_ERR_NO_SPACE, "no room for another trace session");
        return;
    }
    struct chan_trace *t = &chan_traces[sid];
    memset(t, 0, sizeof(*t));
    t->open = true;
    t->period_ns = chan_period_ns(rq.switchrate_us, CHAN_TRACE_RATE_US, CHAN_TRACE_MIN_RATE_US);
    struct wire_trace_open_rep r = { .session = sid };
    chan_answer(type, id, &r, sizeof(r));
}

/* TRACE_CHUNK: bytes of the program container at an offset. */
void chan_serve_trace_chunk(u16 type, u32 id, const u8 *p, u32 len)
{
    struct wire_trace_chunk_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!trace_get(type, id, rq.session))
        return;
    int err = probe_load_chunk(rq.session, rq.offset, p + sizeof(rq), len - sizeof(rq));
    trace_done(type, id, err, rq.session);
}

/* TRACE_LOAD: verify the uploaded program; a refusal is a normal reply
 * with the verifier's pc and reason. */
void chan_serve_trace_load(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 sid = trace_sid(p);
    if (!trace_get(type, id, sid))
        return;
    struct probe_verr e;
    memset(&e, 0, sizeof(e));
    int err = probe_load(sid, &e);
    if (err != PROBE_OK && err != PROBE_E_VERIFY) {
        trace_refuse(type, id, err, sid);
        return;
    }
    struct wire_trace_load_rep r;
    memset(&r, 0, sizeof(r));
    r.ok = err == PROBE_OK;
    r.pc = err == PROBE_OK ? 0 : e.pc;
    if (err != PROBE_OK)
        str_copy(r.msg, e.msg, sizeof(r.msg));
    chan_answer(type, id, &r, sizeof(r));
}

/* TRACE_ENABLE: a batch of enablings, all or up to the first refused
 * (named in the error). */
void chan_serve_trace_enable(u16 type, u32 id, const u8 *p, u32 len)
{
    struct wire_trace_enable_req rq;
    memcpy(&rq, p, sizeof(rq));
    u32 sid = rq.session;
    if (!trace_get(type, id, sid))
        return;
    u32 n = (len - (u32)sizeof(struct wire_trace_enable_req)) /
            (u32)sizeof(struct wire_trace_enabling);
    for (u32 i = 0; i < n; i++) {
        struct wire_trace_enabling e;
        memcpy(&e, p + sizeof(struct wire_trace_enable_req) + i * sizeof(e), sizeof(e));
        int err = probe_enable(sid, e.clause, e.probe, e.arg);
        if (err != PROBE_OK) {
            chan_error(type, id, err == PROBE_E_NOPROBE ? WIRE_ERR_NO_PROBE :
                       err == PROBE_E_RANGE ? WIRE_ERR_RANGE : WIRE_ERR_NO_SESSION,
                       "enabling %u (clause %u, probe %u) refused", i, e.clause, e.probe);
            return;
        }
    }
    chan_answer(type, id, NULL, 0);
}

/* TRACE_GO: start; the session's buffer is drained from now on. */
void chan_serve_trace_go(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 sid = trace_sid(p);
    struct chan_trace *t = trace_get(type, id, sid);
    if (!t)
        return;
    int err = probe_go(sid);
    if (err != PROBE_OK) {
        trace_refuse(type, id, err, sid);
        return;
    }
    t->active = true;
    t->due_ns = time_ns() + t->period_ns;
    chan_answer(type, id, NULL, 0);
}

/* Records of a TRACE_DATA payload (whole records, u16 size first). */
static u32 trace_count(const u8 *recs, u32 n)
{
    u32 k = 0;
    for (u32 off = 0; off + sizeof(struct isa_rec_hdr) <= n; k++) {
        u16 size;
        memcpy(&size, recs + off, sizeof(size));
        if (size < sizeof(struct isa_rec_hdr))
            break;
        off += size;
    }
    return k;
}

/* One TRACE_DATA frame of session sid: the records waiting (as many as fit)
 * and the drop counters so far.  wait: a reply path (STOP) that may wait
 * for the ring; else nothing is drained while the ring is full.  False
 * when there was nothing to send (or no room).  Called by chan_trace_run
 * and chan_serve_trace_stop. */
static bool trace_frame(u32 sid, bool wait)
{
    struct chan_trace *t = &chan_traces[sid];
    bool exiting = probe_exiting(sid) == 1;
    if (!(probe_pending() & (1u << sid)) && !(exiting && !t->exit_sent))
        return false;
    u32 cap;
    u8 *pl = wait ? chan_payload(&cap) : chan_stream_payload(&cap);
    if (!pl)
        return false;
    struct wire_trace_data h;
    u32 n = probe_drain(sid, pl + sizeof(h), cap - (u32)sizeof(h));
    if (n == 0 && !(exiting && !t->exit_sent))
        return false;                   /* the buffer we looked at stays free */
    struct probe_stats st;
    memset(&st, 0, sizeof(st));
    probe_stats(sid, &st);
    u32 nrec = trace_count(pl + sizeof(h), n);
    h = (struct wire_trace_data){
        .session = sid, .seq = t->seq++, .nrec = nrec,
        .flags = exiting ? WIRE_TRACE_DATA_EXITING : 0, .drops_buf = st.drops_buf,
        .drops_chan = t->drops_chan, .drops_agg = st.drops_agg, .drops_dyn = st.drops_dyn,
        .errors = st.errors,
    };
    memcpy(pl, &h, sizeof(h));
    if (chan_reply(WIRE_MSG_TRACE_DATA, 0, sizeof(h) + n)) {
        t->frames++;
        t->exit_sent |= exiting;
    } else {
        t->drops_chan += nrec;
    }
    return true;
}

/* TRACE_STOP: END fires, the sites are restored; every record left is
 * sent before the reply, so the host has them all when it sees it. */
void chan_serve_trace_stop(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 sid = trace_sid(p);
    struct chan_trace *t = trace_get(type, id, sid);
    if (!t)
        return;
    int err = probe_stop(sid);
    if (err != PROBE_OK) {
        trace_refuse(type, id, err, sid);
        return;
    }
    while (trace_frame(sid, true))
        ;
    t->active = false;
    chan_answer(type, id, NULL, 0);
}

/* TRACE_CLOSE: free the session (stopping it if needed). */
void chan_serve_trace_close(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 sid = trace_sid(p);
    struct chan_trace *t = trace_get(type, id, sid);
    if (!t)
        return;
    probe_close(sid);
    memset(t, 0, sizeof(*t));
    chan_answer(type, id, NULL, 0);
}

/* The wire's Deadman reason for the engine's PROBE_DM_* (TRACE_ABORT,
 * TRACE_STATUS). */
static enum wire_deadman trace_reason(u32 dm)
{
    return dm == PROBE_DM_CPU ? WIRE_DEADMAN_CPU :
           dm == PROBE_DM_DRAIN ? WIRE_DEADMAN_DRAIN : WIRE_DEADMAN_NONE;
}

/* TRACE_STATUS: the engine's counters and the channel's. */
void chan_serve_trace_status(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 sid = trace_sid(p);
    struct chan_trace *t = trace_get(type, id, sid);
    if (!t)
        return;
    struct probe_stats st;
    memset(&st, 0, sizeof(st));
    int err = probe_stats(sid, &st);
    if (err != PROBE_OK) {
        trace_refuse(type, id, err, sid);
        return;
    }
    struct probe_abort ab;
    memset(&ab, 0, sizeof(ab));
    probe_aborted(sid, &ab);
    struct wire_trace_status_rep r = {
        .fired = st.fired, .records = st.records, .drops_buf = st.drops_buf,
        .drops_agg = st.drops_agg, .drops_dyn = st.drops_dyn, .errors = st.errors,
        .reentrant = st.reentrant, .drained = st.drained, .drops_chan = t->drops_chan,
        .frames = t->frames, .exiting = probe_exiting(sid) == 1,
        .deadman = trace_reason(ab.reason), .deadman_budget = ab.budget,
        .deadman_used_ns = ab.used_ns, .deadman_window_ns = ab.window_ns,
    };
    chan_answer(type, id, &r, sizeof(r));
}

/* AGG_READ: a page of aggregation entries from a cursor. */
void chan_serve_agg_read(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_agg_read_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!trace_get(type, id, rq.session))
        return;
    u32 cap;
    u8 *pl = chan_payload(&cap);
    struct wire_agg_read_rep r;
    u32 cursor = rq.cursor;
    u32 n = probe_agg_read(rq.session, &cursor, pl + sizeof(r), cap - (u32)sizeof(r));
    r.next = cursor;
    r.len = n;
    memcpy(pl, &r, sizeof(r));
    chan_reply(type | WIRE_REPLY, id, sizeof(r) + n);
}

/* AGG_CLEAR: zero one aggregation, or all (AGG_ALL). */
void chan_serve_agg_clear(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_agg_clear_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!trace_get(type, id, rq.session))
        return;
    int err = probe_agg_clear(rq.session, rq.agg == WIRE_AGG_ALL ? -1 : (i32)rq.agg);
    trace_done(type, id, err, rq.session);
}

/* TRACE_DEADMAN: set a session's deadman limits. */
void chan_serve_trace_deadman(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_trace_deadman_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!trace_get(type, id, rq.session))
        return;
    struct probe_deadman_opts o = { .timeout_ms = rq.timeout_ms, .cpu_pct = rq.cpu_pct,
                                    .window_ms = rq.window_ms };
    int err = probe_deadman_set(rq.session, &o);
    if (err == PROBE_E_RANGE)
        chan_error(type, id, WIRE_ERR_RANGE, "deadman timeout %u ms or window %u ms "
                   "outside %u..%u", rq.timeout_ms, rq.window_ms, DEADMAN_MIN_MS, DEADMAN_MAX_MS);
    else
        trace_done(type, id, err, rq.session);
}

/* Tell the host that the deadman aborted session sid (once, when the
 * records before it have gone; retried while the transmit ring is full).
 * Called by chan_trace_run. */
static void trace_abort_send(u32 sid)
{
    struct chan_trace *t = &chan_traces[sid];
    struct probe_abort ab;
    if (t->abort_sent || probe_aborted(sid, &ab) != 1 || (probe_pending() & (1u << sid)))
        return;
    u32 cap;
    u8 *pl = chan_stream_payload(&cap);
    if (!pl)
        return;
    struct wire_trace_abort r = { .session = sid, .reason = trace_reason(ab.reason), .budget = ab.budget,
                                  .used_ns = ab.used_ns, .window_ns = ab.window_ns };
    memcpy(pl, &r, sizeof(r));
    t->abort_sent = chan_reply(WIRE_MSG_TRACE_ABORT, 0, sizeof(r));
}

/* Finish the deadman's abort of session sid (its sites restored now) and
 * say so in the kernel log, whether or not the host hears of it by
 * TRACE_ABORT or by TRACE_STATUS first.  Called by chan_trace_run. */
static void trace_abort_finish(u32 sid)
{
    struct probe_abort ab;
    probe_abort_finish(sid);
    if (probe_aborted(sid, &ab) == 1)
        kprintf("probe: deadman aborted trace session %u (%s)\n", sid,
                ab.reason == PROBE_DM_CPU ? "CPU budget" : "host not draining");
}

/* Drain every active session that is due, a few frames each per call so
 * requests are not held up; finish the deadman's aborts first (restore
 * the sites now, whatever the drain).  Called by chan_stream_run. */
void chan_trace_run(u64 now)
{
    u32 aborted = probe_abort_pending();
    for (u32 sid = 0; sid < TRACE_MAX; sid++) {
        struct chan_trace *t = &chan_traces[sid];
        if (aborted & (1u << sid))
            trace_abort_finish(sid);
        if (!t->active || now < t->due_ns)
            continue;
        t->due_ns = now + t->period_ns;
        for (int i = 0; i < CHAN_TRACE_FRAMES && trace_frame(sid, false); i++)
            ;
        trace_abort_send(sid);
    }
}

/* Nanoseconds until the next session drain is due; ~0 when none is
 * active.  Called by chan_stream_wait_ms (stream.c). */
u64 chan_trace_wait_ns(u64 now)
{
    u64 best = ~0ull;
    for (u32 sid = 0; sid < TRACE_MAX; sid++) {
        const struct chan_trace *t = &chan_traces[sid];
        if (t->active)
            best = MIN(best, t->due_ns > now ? t->due_ns - now : 0);
    }
    return best;
}

/* The host (the mux) left: close every session, restoring their sites.
 * Called by chan_stream_host_left (stream.c). */
void chan_trace_host_left(void)
{
    probe_close_all();
    memset(chan_traces, 0, sizeof(chan_traces));
}
