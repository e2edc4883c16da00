/* Capture requests and the CAPTURE_DATA stream: the channel's side of the
 * packet capture tap (capture.h, kernel/net/capture.c).
 *
 * A capture is opened (CAPTURE_OPEN: snaplen, ring size, program length),
 * its classic BPF program uploaded in pieces (CAPTURE_PROG), verified and
 * started (CAPTURE_START, whose refusal is a reply with the verifier's pc
 * and reason).  From then on chan_capture_run drains its ring every
 * `rate` into CAPTURE_DATA frames, many packets per frame, never waiting
 * for the transmit ring: packets stay in the ring while it is full (the
 * tap counts those that do not fit), and a frame drained but not queued
 * is counted in drops_chan.  CAPTURE_STOP stops the tap and sends every
 * packet left before its reply, which carries the final counters, so
 * matched = delivered + dropped exactly.  The host leaving closes every
 * capture. */
#include "chan_int.h"
#include "capture.h"
#include "kernel.h"
#include "lib.h"
#include "tunables.h"

_Static_assert(sizeof(struct capture_rec) == sizeof(struct wire_capture_pkt),
               "capture_rec is CAPTURE_DATA's capture_pkt");

/* What the channel keeps per capture (the tap keeps the rest). */
struct chan_capture {
    bool open;
    bool active;                        /* started: drained by chan_capture_run */
    u64 period_ns, due_ns;
    u32 seq;                            /* next CAPTURE_DATA sequence number */
    u64 frames;                         /* CAPTURE_DATA frames queued */
    u64 delivered;                      /* packets in them */
    u64 bytes;                          /* captured bytes in them */
    u64 drops_chan;                     /* packets in frames not queued */
};

static struct chan_capture chan_captures[CAPTURE_MAX];

/* The capture a request names, if open; else an ERROR reply and NULL. */
static struct chan_capture *capture_req_get(u16 type, u32 id, const u8 *p, u32 *cid)
{
    struct wire_capture_req rq;
    memcpy(&rq, p, sizeof(rq));
    *cid = rq.capture;
    if (rq.capture < CAPTURE_MAX && chan_captures[rq.capture].open)
        return &chan_captures[rq.capture];
    chan_error(type, id, WIRE_ERR_NO_SESSION, "no capture %u", rq.capture);
    return NULL;
}

/* CAPTURE_OPEN: a capture with the sizes asked for. */
void chan_serve_capture_open(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_capture_open_req rq;
    memcpy(&rq, p, sizeof(rq));
    u32 cid = 0;
    int err = capture_open(rq.snaplen, rq.bufsize, rq.ninsns, &cid);
    if (err == CAPTURE_E_RANGE) {
        chan_error(type, id, WIRE_ERR_RANGE, "snaplen %u, bufsize %u or %u insns out of range",
                   rq.snaplen, rq.bufsize, rq.ninsns);
        return;
    }
    if (err != CAPTURE_OK) {
        chan_error(type, id, WIRE_ERR_NO_SPACE, "no room for another capture");
        return;
    }
    struct chan_capture *c = &chan_captures[cid];
    memset(c, 0, sizeof(*c));
    c->open = true;
    c->period_ns = chan_period_ns(rq.rate_us, CAPTURE_RATE_US, CAPTURE_MIN_RATE_US);
    struct wire_capture_open_rep r = { .capture = cid };
    chan_answer(type, id, &r, sizeof(r));
}

/* CAPTURE_PROG: instructions of the program at an index. */
void chan_serve_capture_prog(u16 type, u32 id, const u8 *p, u32 len)
{
    u32 cid;
    if (!capture_req_get(type, id, p, &cid))
        return;
    struct wire_capture_prog_req rq;
    memcpy(&rq, p, sizeof(rq));
    u32 n = (len - (u32)sizeof(rq)) / (u32)sizeof(struct cbpf_insn);
    int err = capture_prog(cid, rq.offset, p + sizeof(rq), n);
    if (err == CAPTURE_E_RANGE)
        chan_error(type, id, WIRE_ERR_RANGE, "instructions %u..%u out of range", rq.offset, rq.offset + n);
    else if (err != CAPTURE_OK)
        chan_error(type, id, WIRE_ERR_NO_SESSION, "capture %u already started", cid);
    else
        chan_answer(type, id, NULL, 0);
}

/* CAPTURE_START: verify and start; a refusal is a normal reply with the
 * verifier's pc and reason. */
void chan_serve_capture_start(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 cid;
    struct chan_capture *c = capture_req_get(type, id, p, &cid);
    if (!c)
        return;
    struct cbpf_verr e = { -1, "" };
    int err = capture_start(cid, &e);
    if (err != CAPTURE_OK && err != CAPTURE_E_VERIFY) {
        chan_error(type, id, err == CAPTURE_E_NOSPACE ? WIRE_ERR_NO_SPACE : WIRE_ERR_NO_SESSION,
                   "capture %u cannot start", cid);
        return;
    }
    struct wire_capture_start_rep r;
    memset(&r, 0, sizeof(r));
    r.ok = err == CAPTURE_OK;
    r.pc = r.ok ? 0 : e.pc;
    if (!r.ok)
        str_copy(r.msg, e.msg, sizeof(r.msg));
    if (r.ok) {
        c->active = true;
        c->due_ns = time_ns() + c->period_ns;
    }
    chan_answer(type, id, &r, sizeof(r));
}

/* Captured packet bytes in a drained batch of capture_pkt records.
 * Called by capture_frame. */
static u64 capture_bytes(const u8 *recs, u32 n)
{
    u64 sum = 0;
    for (u32 off = 0; off + sizeof(struct wire_capture_pkt) <= n;) {
        struct wire_capture_pkt r;
        memcpy(&r, recs + off, sizeof(r));
        sum += r.caplen;
        off += (u32)sizeof(r) + (u32)ALIGN_UP(r.caplen, 8);
    }
    return sum;
}

/* One CAPTURE_DATA frame of capture cid with the packets waiting (as many
 * as fit).  wait: a reply path (STOP) that may wait for the ring.  False
 * when there was nothing to send (or no room).  Called by
 * chan_capture_run and chan_serve_capture_stop. */
static bool capture_frame(u32 cid, bool wait)
{
    struct chan_capture *c = &chan_captures[cid];
    if (!(capture_pending() & (1u << cid)))
        return false;
    u32 cap;
    u8 *pl = wait ? chan_payload(&cap) : chan_stream_payload(&cap);
    if (!pl)
        return false;
    struct wire_capture_data h;
    u32 npkt = 0;
    u32 n = capture_drain(cid, pl + sizeof(h), cap - (u32)sizeof(h), &npkt);
    if (npkt == 0)
        return false;
    struct capture_stats st;
    capture_stats(cid, &st);
    h = (struct wire_capture_data){ .capture = cid, .seq = c->seq++, .npkt = npkt,
                                    .matched = st.matched,
                                    .dropped = st.dropped + c->drops_chan };
    memcpy(pl, &h, sizeof(h));
    if (chan_reply(WIRE_MSG_CAPTURE_DATA, 0, sizeof(h) + n)) {
        c->frames++;
        c->delivered += npkt;
        c->bytes += capture_bytes(pl + sizeof(h), n);
    } else {
        c->drops_chan += npkt;
    }
    return true;
}

/* The status reply (CAPTURE_STATUS, CAPTURE_STOP). */
static void capture_status_reply(u16 type, u32 id, u32 cid, const struct chan_capture *c)
{
    struct capture_stats st;
    memset(&st, 0, sizeof(st));
    capture_stats(cid, &st);
    struct wire_capture_status_rep r = {
        .received = st.received, .matched = st.matched,
        .dropped = st.dropped + c->drops_chan, .delivered = c->delivered,
        .waiting = st.waiting, .frames = c->frames, .bytes = c->bytes, .tap_ns = st.tap_ns,
    };
    chan_answer(type, id, &r, sizeof(r));
}

/* CAPTURE_STATUS: the counters so far. */
void chan_serve_capture_status(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 cid;
    struct chan_capture *c = capture_req_get(type, id, p, &cid);
    if (c)
        capture_status_reply(type, id, cid, c);
}

/* CAPTURE_STOP: stop the tap, send every packet left, then the final
 * counters. */
void chan_serve_capture_stop(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 cid;
    struct chan_capture *c = capture_req_get(type, id, p, &cid);
    if (!c)
        return;
    capture_stop(cid);
    while (capture_frame(cid, true))
        ;
    c->active = false;
    capture_status_reply(type, id, cid, c);
}

/* CAPTURE_CLOSE: free the capture. */
void chan_serve_capture_close(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    u32 cid;
    struct chan_capture *c = capture_req_get(type, id, p, &cid);
    if (!c)
        return;
    capture_close(cid);
    memset(c, 0, sizeof(*c));
    chan_answer(type, id, NULL, 0);
}

/* CAPTURE_INJECT (debug): one frame through the tap, as if the network
 * interface had received or sent it; the stack never sees it. */
void chan_serve_capture_inject(u16 type, u32 id, const u8 *p, u32 len)
{
    struct wire_capture_inject_req rq;
    memcpy(&rq, p, sizeof(rq));
    u32 n = len - (u32)sizeof(rq);
    u32 wire = rq.wirelen ? rq.wirelen : n;
    if (rq.dir > 1 || wire < n) {
        chan_error(type, id, WIRE_ERR_RANGE, "dir %u or wirelen %u < %u bytes", rq.dir, wire, n);
        return;
    }
    capture_tap_wire((int)rq.dir, p + sizeof(rq), n, wire);
    chan_answer(type, id, NULL, 0);
}

/* Drain every active capture that is due.  Called by chan_stream_run. */
void chan_capture_run(u64 now)
{
    for (u32 i = 0; i < CAPTURE_MAX; i++) {
        struct chan_capture *c = &chan_captures[i];
        if (!c->active || now < c->due_ns)
            continue;
        c->due_ns = now + c->period_ns;
        for (int k = 0; k < CAPTURE_FRAMES && capture_frame(i, false); k++)
            ;
    }
}

/* ns until a capture drain is due; ~0 when none is active.  Called by
 * chan_stream_wait_ms. */
u64 chan_capture_wait_ns(u64 now)
{
    u64 best = ~0ull;
    for (u32 i = 0; i < CAPTURE_MAX; i++)
        if (chan_captures[i].active)
            best = MIN(best, chan_captures[i].due_ns > now ? chan_captures[i].due_ns - now : 0);
    return best;
}

/* The host left: close every capture.  Called by chan_stream_host_left. */
void chan_capture_host_left(void)
{
    capture_close_all();
    memset(chan_captures, 0, sizeof(chan_captures));
}
