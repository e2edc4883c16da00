/* The channel's unsolicited frames (id 0), pushed by the probe-chan
 * thread between requests: LOG_DATA carries new log bytes to the host
 * while it subscribes (LOG_SUBSCRIBE, sent by the mux for its clients);
 * TRACE_DATA carries trace sessions' records (trace.c, drained here on
 * each session's switchrate).
 * A stream frame never waits for the transmit ring: when the ring is full
 * it is not sent now, and the log stream simply resends from its cursor
 * later (the log ring keeps the bytes; bytes overwritten meanwhile are
 * reported in `lost`, never skipped silently). */
#include "chan_int.h"
#include "kernel.h"
#include "lib.h"
#include "log.h"
#include "tunables.h"

static bool stream_log_on;              /* LOG_DATA stream on (LOG_SUBSCRIBE) */
static u64 stream_log_next;             /* log offset the stream sends next */
static u64 stream_due_ns;               /* when chan_stream_run next pushes */

/* LOG_SUBSCRIBE: start the LOG_DATA stream at the log's head, or stop it.
 * Called by chan_serve (server.c). */
void chan_serve_log_subscribe(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_log_subscribe_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (rq.on && !stream_log_on)
        stream_log_next = log_head();
    stream_log_on = rq.on != 0;
    struct wire_log_subscribe_rep r = { .head = stream_log_next };
    chan_answer(type, id, &r, sizeof(r));
}

/* One LOG_DATA frame with the log bytes from the stream's cursor; the
 * cursor moves only if the frame was queued.  False when there is nothing
 * more to send now (caught up, or the ring is full).  Called by
 * stream_log. */
static bool stream_log_frame(void)
{
    if (log_head() == stream_log_next)
        return false;
    u32 cap;
    u8 *pl = chan_stream_payload(&cap);
    if (!pl)
        return false;
    struct wire_log_rep r;
    struct log_span span;
    memset(&span, 0, sizeof(span));
    u32 max = cap - (u32)sizeof(r);
    u32 n = log_read(stream_log_next, pl + sizeof(r), max, &span);
    r.offset = span.offset;
    r.next = span.next;
    r.oldest = span.oldest;
    r.head = span.head;
    r.len = MIN(n, max);
    r.lost = span.lost;
    memcpy(pl, &r, sizeof(r));
    if (!chan_reply(WIRE_MSG_LOG_DATA, 0, sizeof(r) + r.len))
        return false;
    stream_log_next = span.next;
    return true;
}

/* Push the log written since the last frame, a few frames at most per
 * call so requests are not held up.  Called by chan_stream_run. */
static void stream_log(void)
{
    for (int i = 0; stream_log_on && i < 4 && stream_log_frame(); i++)
        ;
}

/* Push what is due: trace sessions on their switchrate, the log stream
 * every CHAN_STREAM_MS.  Called by the
 * probe-chan loop (server.c) after each event and each wait. */
void chan_stream_run(void)
{
    u64 now = time_ns();
    chan_trace_run(now);
    chan_capture_run(now);
    chan_net_run(now);
    if (!stream_log_on || now < stream_due_ns)
        return;
    stream_due_ns = now + (u64)CHAN_STREAM_MS * 1000000;
    stream_log();
}

/* How long the probe-chan thread may block: until the next push is due
 * while a stream is on, else the idle safety timeout.  Called by
 * chan_irq_idle (server.c). */
u32 chan_stream_wait_ms(void)
{
    u64 now = time_ns();
    u64 ns = chan_trace_wait_ns(now);
    ns = MIN(ns, chan_capture_wait_ns(now));
    ns = MIN(ns, chan_net_wait_ns(now));
    if (stream_log_on)
        ns = MIN(ns, stream_due_ns > now ? stream_due_ns - now : 0);
    if (ns == ~0ull)
        return CHAN_BLOCK_TIMEOUT_MS;
    return (u32)MAX(MIN(ns / 1000000, (u64)CHAN_BLOCK_TIMEOUT_MS - 1), 1);
}

/* The host (the mux) left: nobody subscribes any more, and every trace
 * session is closed.  Called by
 * chan_event (server.c) on a disconnect. */
void chan_stream_host_left(void)
{
    stream_log_on = false;
    chan_trace_host_left();
    chan_capture_host_left();
    chan_net_host_left();
}
