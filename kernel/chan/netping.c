/* The network requests of the probe channel (unik ping): NET_PING_START
 * starts the guest's ping (net/lwip/ping.c), NET_PING_STOP ends it with
 * its totals, and chan_net_run sends its events as NET_PING_EVENT frames
 * every PING_DRAIN_MS while it runs.  A kernel without lwIP links none
 * of net_ping_* (weak): the requests then fail with one clear reason. */
#include "chan_int.h"
#include "kernel.h"
#include "lib.h"
#include "net.h"
#include "tunables.h"

_Static_assert(NET_PING_REPLY == WIRE_PING_REPLY && NET_PING_TIMEOUT == WIRE_PING_TIMEOUT &&
               NET_PING_SEND_ERROR == WIRE_PING_SEND_ERROR && NET_PING_DONE == WIRE_PING_DONE,
               "net.h's ping events are the wire's NetPingEvent");

static u32 chan_ping_id;                /* the current ping's id (0: none yet) */
static u64 chan_ping_due;               /* when chan_net_run next drains */

/* Is this a kernel with lwIP's ping?  Else answer the request with an
 * error.  Called by the handlers below. */
static bool chan_net_have(u16 type, u32 id)
{
    if (net_ping_start && net_ping_next && net_ping_stop && net_ping_busy)
        return true;
    chan_error(type, id, WIRE_ERR_BUSY, "no network stack in this kernel");
    return false;
}

/* NET_PING_START: check the values and start the ping. */
void chan_serve_net_ping_start(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_net_ping_start_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!chan_net_have(type, id))
        return;
    if (rq.interval_ms < WIRE_NET_PING_INTERVAL_MIN || rq.size > WIRE_NET_PING_SIZE_MAX ||
        rq.timeout_ms == 0 || rq.dst == 0) {
        chan_error(type, id, WIRE_ERR_RANGE, "interval %u ms, size %u or timeout %u ms",
                   rq.interval_ms, rq.size, rq.timeout_ms);
        return;
    }
    u32 ident = 0, src = 0;
    int r = net_ping_start(rq.dst, rq.count, rq.interval_ms, rq.size, rq.timeout_ms,
                           &ident, &src);
    if (r != 0) {
        chan_error(type, id, r == -1 ? WIRE_ERR_BUSY : WIRE_ERR_NO_SPACE, "%s",
                   r == -1 ? "a ping is already running" :
                   r == -2 ? "the network is not up" : "no memory for the ping");
        return;
    }
    struct wire_net_ping_start_rep rep = { .ping = ++chan_ping_id, .ident = ident, .src = src };
    chan_ping_due = 0;
    u32 cap;
    memcpy(chan_payload(&cap), &rep, sizeof(rep));
    chan_reply(type | WIRE_REPLY, id, sizeof(rep));
}

/* Send the queued events, one frame each, while the ring takes them.
 * wait: a reply path that may wait for room.  Called by chan_net_run and
 * chan_serve_net_ping_stop. */
static void chan_net_drain(bool wait)
{
    struct net_ping_ev ev;
    for (u32 n = 0; n < PING_EVENTS && net_ping_next(&ev); n++) {
        u32 cap;
        u8 *pl = wait ? chan_payload(&cap) : chan_stream_payload(&cap);
        if (!pl)
            return;                     /* the event is lost: the totals still count it */
        enum wire_ping kind = (enum wire_ping)ev.kind;   /* keeps the enum in DWARF (drift test) */
        struct wire_net_ping_event e = {
            .ping = chan_ping_id, .kind = kind, .seq = ev.seq, .ttl = ev.ttl,
            .bytes = ev.bytes, .from_addr = ev.from, .rtt_ns = ev.rtt_ns };
        memcpy(pl, &e, sizeof(e));
        chan_reply(WIRE_MSG_NET_PING_EVENT, 0, sizeof(e));
    }
}

/* NET_PING_STOP: stop the ping named, send its last events, then its
 * totals. */
void chan_serve_net_ping_stop(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_net_ping_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (!chan_net_have(type, id))
        return;
    if (rq.ping == 0 || rq.ping != chan_ping_id) {
        chan_error(type, id, WIRE_ERR_NO_SESSION, "no ping %u", rq.ping);
        return;
    }
    struct net_ping_totals t;
    net_ping_stop(&t);
    chan_net_drain(true);
    struct wire_net_ping_stop_rep r = {
        .transmitted = t.transmitted, .received = t.received, .errors = t.errors,
        .dropped = t.dropped, .rtt_min_ns = t.rtt_min_ns, .rtt_max_ns = t.rtt_max_ns,
        .rtt_sum_ns = t.rtt_sum_ns, .rtt_sum2_us = t.rtt_sum2_us, .elapsed_ns = t.elapsed_ns };
    u32 cap;
    memcpy(chan_payload(&cap), &r, sizeof(r));
    chan_reply(type | WIRE_REPLY, id, sizeof(r));
}

/* Send a running ping's events when due.  Called by chan_stream_run. */
void chan_net_run(u64 now)
{
    if (!net_ping_busy || !net_ping_busy() || now < chan_ping_due)
        return;
    chan_ping_due = now + (u64)PING_DRAIN_MS * 1000000;
    chan_net_drain(false);
}

/* ns until chan_net_run is due; ~0 when no ping runs.  Called by
 * chan_stream_wait_ms. */
u64 chan_net_wait_ns(u64 now)
{
    if (!net_ping_busy || !net_ping_busy())
        return ~0ull;
    return chan_ping_due > now ? chan_ping_due - now : 0;
}

/* The host left: stop the ping.  Called by chan_stream_host_left. */
void chan_net_host_left(void)
{
    struct net_ping_totals t;
    if (net_ping_stop && net_ping_busy && net_ping_busy())
        net_ping_stop(&t);
}
