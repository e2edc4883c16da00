/* The probe channel: the "probe-chan" kernel thread.
 *
 * It waits for the virtio-console's interrupt (or polls it when there is
 * none), takes its events (control first, then data; see vcons.h),
 * feeds received bytes to the frame decoder (frame.c), classifies each frame
 * as codec.classify() does (the request table generated from
 * introspect/protocol.py) and answers it.  Replies are built in place in a
 * buffer of the transmit ring and queued without waiting for the device
 * (a reply waits only when the whole ring is queued); a reply that cannot
 * be sent because no host is connected is counted in tx_dropped, never
 * lost silently.  Between requests it pushes the stream frames that are
 * due (stream.c).  The CHANSTAT reply carries the counters as they are when the
 * request is served (the request itself counted in, its reply not yet). */
#include "chan_int.h"
#include "crash.h"
#include "frame.h"
#include "vcons.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "log.h"
#include "mm.h"
#include "flight.h"
#include "probe_site.h"
#include "thread.h"
#include "tunables.h"
#include "wire.h"
#include "x86.h"

/* chan:::request -- a well-formed frame arrived (before it is classified):
 * its message type, request id and payload length. */
PROBE_DEFINE(chan, request, uint16_t, type, uint32_t, id, uint32_t, len);
/* chan:::reject -- the server refuses that frame: reason is enum wire_rej
 * (3 unknown type, 4 bad payload size), type its message type. */
PROBE_DEFINE(chan, reject, int, reason, uint16_t, type);

#define HDR WIRE_HEADER_SIZE

_Static_assert(CHAN_TX_BUF_SIZE >= HDR + WIRE_MAX_PAYLOAD,
               "a transmit buffer must hold the largest frame");

struct wire_chanstat_rep chan_stats;    /* CHANSTAT; stream.c counts too */
static u8 *chan_txbuf;                  /* the transmit buffer being built */
static struct frame_dec chan_dec;
static u64 chan_tsc_ready;              /* TSC when the channel became ready */
static struct thread *chan_thread;      /* probe-chan, woken by the interrupt */
static u64 chan_lost_irqs;              /* safety timeouts that found work */
static volatile bool chan_parked;       /* probe-chan waits for work: no tx in flight */

/* Where a reply's payload is built: just after the header in a transmit
 * buffer, waiting for one if the ring is full (replies are never dropped
 * for that); *cap is the room there.  Called by the handlers and
 * chan_error, always before chan_reply. */
u8 *chan_payload(u32 *cap)
{
    u32 c;
    chan_txbuf = vcons_tx_wait(&c);
    *cap = c > HDR ? c - HDR : 0;
    if (*cap > WIRE_MAX_PAYLOAD)
        *cap = WIRE_MAX_PAYLOAD;
    return chan_txbuf + HDR;
}

/* Where a stream frame's payload is built, or NULL when the ring is full
 * (the caller drops the frame and counts it).  Called by stream.c. */
u8 *chan_stream_payload(u32 *cap)
{
    u32 c;
    chan_txbuf = vcons_tx_get(&c);
    *cap = c > HDR ? c - HDR : 0;
    if (*cap > WIRE_MAX_PAYLOAD)
        *cap = WIRE_MAX_PAYLOAD;
    return chan_txbuf ? chan_txbuf + HDR : NULL;
}

/* Frame the payload built by chan_payload or chan_stream_payload (len
 * bytes) and queue it; counts it sent, or dropped when no host takes it.
 * Returns whether it was queued.  Called by the handlers, chan_error and
 * stream.c. */
bool chan_reply(u16 type, u32 id, u32 len)
{
    u8 *buf = chan_txbuf;
    u32 n = buf ? frame_encode(buf, CHAN_TX_BUF_SIZE, type, id, buf + HDR, len) : 0;
    chan_txbuf = NULL;
    if (n && vcons_tx_put(buf, n)) {
        chan_stats.frames_out++;
        chan_stats.bytes_out += n;
        return true;
    }
    chan_stats.tx_dropped++;
    return false;
}

/* The kernel panicked (interrupts off, another thread or an interrupt):
 * send the crash record as a CRASH frame, but only while probe-chan is
 * parked in its idle wait, so no transmit of its own is half done, and a
 * host is connected.  Called once by crash_end (arch/crash.c). */
void chan_send_crash(const void *rec, u32 len)
{
    u32 cap, n;
    if (!chan_parked || !chan_thread || thread_current() == chan_thread)
        return;
    u8 *buf = vcons_tx_get(&cap);
    if (!buf)
        return;
    n = frame_encode(buf, cap, WIRE_MSG_CRASH, 0, rec, len);
    if (n && vcons_tx_put(buf, n)) {
        chan_stats.frames_out++;
        chan_stats.bytes_out += n;
    }
}

/* Answer request type/id with the len bytes at rep (len 0: an empty
 * reply, the request succeeded).  Called by the handlers whose reply is
 * one fixed-size struct. */
void chan_answer(u16 type, u32 id, const void *rep, u32 len)
{
    u32 cap;
    u8 *pl = chan_payload(&cap);
    if (len)
        memcpy(pl, rep, len);
    chan_reply(type | WIRE_REPLY, id, len);
}

/* A stream's drain period: rate_us as the host asked (0: dflt_us), no
 * faster than min_us.  Called by the TRACE_OPEN and CAPTURE_OPEN handlers. */
u64 chan_period_ns(u32 rate_us, u32 dflt_us, u32 min_us)
{
    u64 us = rate_us ? rate_us : dflt_us;
    return MAX(us, (u64)min_us) * 1000;
}

/* Answer request req_type/id with an ERROR reply: code and a message.
 * Called by chan_serve and the handlers that refuse a request. */
void chan_error(u16 req_type, u32 id, u32 code, const char *fmt, ...)
{
    struct wire_error_rep e;
    memset(&e, 0, sizeof(e));
    e.code = code;
    e.req_type = req_type;
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    u32 cap;
    memcpy(chan_payload(&cap), &e, sizeof(e));
    chan_reply(WIRE_MSG_ERROR, id, sizeof(e));
}

/* HELLO: check the protocol version, describe the kernel and the features
 * it has.  Called by chan_serve, as are the chan_serve_* below (all with
 * the request's type, id, payload and its length, which frame_classify
 * checked against the request table). */
static void chan_serve_hello(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_hello_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (rq.version != WIRE_VERSION) {
        chan_error(type, id, WIRE_ERR_VERSION, "host speaks protocol %u, kernel %u",
                   rq.version, (unsigned)WIRE_VERSION);
        return;
    }
    struct wire_hello_rep r;
    memset(&r, 0, sizeof(r));
    r.version = WIRE_VERSION;
    r.build_id_len = kernel_build_id(r.build_id, sizeof(r.build_id));
    r.uptime_ns = time_ns();
    r.tsc_hz = time_tsc_hz();
    r.nthreads = thread_count();
    r.mem_kib = (u32)(mm_total_bytes() / 1024);
    str_copy(r.app, kernel_app_name(), sizeof(r.app));
    str_copy(r.kernel, kernel_version(), sizeof(r.kernel));
    r.tsc_entry = kernel_tsc_entry();
    r.tsc_ready = chan_tsc_ready;
    r.features = WIRE_FEATURES_ALL;
    chan_answer(type, id, &r, sizeof(r));
}

/* The wire's ThreadState for a kernel thread state.  Called by
 * chan_serve_threads. */
static u8 chan_wire_state(enum thread_state st)
{
    switch (st) {
    case THREAD_RUNNING: return WIRE_TS_RUNNING;
    case THREAD_RUNNABLE: return WIRE_TS_RUNNABLE;
    case THREAD_SLEEPING: return WIRE_TS_SLEEPING;
    case THREAD_DEAD: return WIRE_TS_DEAD;
    }
    return WIRE_TS_DEAD;
}

/* One thread_info in wire form.  Called by chan_serve_threads. */
static void chan_wire_thread(struct wire_thread_info *w, const struct thread_info *t)
{
    memset(w, 0, sizeof(*w));
    w->tid = t->tid;
    w->state = chan_wire_state(t->state);
    w->priority = t->priority;
    w->flags = t->flags;
    str_copy(w->name, t->name, sizeof(w->name));
    str_copy(w->wchan, t->wchan, sizeof(w->wchan));
    w->cpu_ns = t->cpu_ns;
    w->switches = t->switches;
    w->stack_size = t->stack_size;
    w->stack_hwm = t->stack_hwm;
    w->start_ns = t->start_ns;
}

/* THREADS: the thread table, as many entries as fit. */
static void chan_serve_threads(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)p;
    (void)len;
    static struct thread_info list[THREAD_MAX];
    u32 cap;
    u8 *pl = chan_payload(&cap);
    struct wire_threads_rep h;
    memset(&h, 0, sizeof(h));
    u32 max = MIN((u32)THREAD_MAX, (cap - (u32)sizeof(h)) / (u32)sizeof(struct wire_thread_info));
    u32 total = 0;
    u32 n = thread_list(list, max, &total);
    struct wire_thread_info w;
    for (u32 i = 0; i < n; i++) {
        chan_wire_thread(&w, &list[i]);
        memcpy(pl + sizeof(h) + i * sizeof(w), &w, sizeof(w));
    }
    h.count = n;
    h.total = total;
    h.uptime_ns = time_ns();
    memcpy(pl, &h, sizeof(h));
    chan_reply(type | WIRE_REPLY, id, sizeof(h) + n * sizeof(struct wire_thread_info));
}

/* MEMSTAT: memory totals and the heap's size classes. */
static void chan_serve_memstat(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)p;
    (void)len;
    struct mm_stats m;
    struct mm_class_stats cls[HEAP_NCLASSES + 1];
    u32 n = mm_stats(&m, cls, HEAP_NCLASSES + 1);
    u32 cap;
    u8 *pl = chan_payload(&cap);
    struct wire_memstat_rep h = {
        .page_size = m.page_size, .nclasses = n, .mem_total = m.mem_total,
        .pages_total = m.pages_total, .pages_free = m.pages_free,
        .pages_kernel = m.pages_kernel, .page_failures = m.page_failures,
        .heap_bytes_total = m.heap_bytes_total, .heap_bytes_used = m.heap_bytes_used,
        .heap_allocs = m.heap_allocs, .heap_frees = m.heap_frees,
        .heap_failures = m.heap_failures,
    };
    memcpy(pl, &h, sizeof(h));
    for (u32 i = 0; i < n; i++) {
        struct wire_heap_class c = {
            .size = cls[i].size, .in_use = cls[i].in_use, .allocs = cls[i].allocs,
            .frees = cls[i].frees, .failures = cls[i].failures,
        };
        memcpy(pl + sizeof(h) + i * sizeof(c), &c, sizeof(c));
    }
    chan_reply(type | WIRE_REPLY, id, sizeof(h) + n * sizeof(struct wire_heap_class));
}

/* LOG: up to max_len bytes of the kernel log from offset. */
static void chan_serve_log(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_log_req rq;
    memcpy(&rq, p, sizeof(rq));
    u32 cap;
    u8 *pl = chan_payload(&cap);
    struct wire_log_rep r;
    memset(&r, 0, sizeof(r));
    u32 max = MIN(rq.max_len, (u32)WIRE_LOG_READ_MAX);
    max = MIN(max, cap - (u32)sizeof(r));
    struct log_span span;
    memset(&span, 0, sizeof(span));
    u32 n = log_read(rq.offset, pl + sizeof(r), max, &span);
    if (n > max)
        n = max;
    r.offset = span.offset;
    r.next = span.next;
    r.oldest = span.oldest;
    r.head = span.head;
    r.len = n;
    r.lost = span.lost;
    memcpy(pl, &r, sizeof(r));
    chan_reply(type | WIRE_REPLY, id, sizeof(r) + n);
}

/* MEMREAD: a copy of readable RAM, or an ERROR (too large, not RAM). */
static void chan_serve_memread(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)len;
    struct wire_memread_req rq;
    memcpy(&rq, p, sizeof(rq));
    if (rq.len > WIRE_MEMREAD_MAX) {
        chan_error(type, id, WIRE_ERR_TOO_LARGE, "MEMREAD of %u bytes, limit %u",
                   rq.len, (unsigned)WIRE_MEMREAD_MAX);
        return;
    }
    if (rq.addr + rq.len < rq.addr || !mm_readable(rq.addr, rq.len)) {
        chan_error(type, id, WIRE_ERR_FAULT, "cannot read 0x%llx+%u: not readable RAM",
                   (unsigned long long)rq.addr, rq.len);
        return;
    }
    u32 cap;
    u8 *pl = chan_payload(&cap);
    struct wire_memread_rep r;
    memset(&r, 0, sizeof(r));
    r.addr = rq.addr;
    r.len = rq.len;
    /* memmove: the range may be the tx buffer itself */
    memmove(pl + sizeof(r), (const void *)(uintptr_t)rq.addr, rq.len);
    memcpy(pl, &r, sizeof(r));
    chan_reply(type | WIRE_REPLY, id, sizeof(r) + rq.len);
}

/* CHANSTAT: the channel's counters, this request counted in. */
static void chan_serve_chanstat(u16 type, u32 id, const u8 *p, u32 len)
{
    (void)p;
    (void)len;
    chan_answer(type, id, &chan_stats, sizeof(chan_stats));
}

/* One well-formed frame from the decoder (frame_feed's callback): reject
 * it as codec.classify() would, or answer it. */
static void chan_serve(void *ctx, u16 type, u32 id, const u8 *p, u32 len)
{
    (void)ctx;
    PROBE_FIRE(chan, request, type, id, len);
    int why = frame_classify(type, len);
    PROBE_FIRE_IF(why >= 0, chan, reject, why, type);
    flight_record(why >= 0 ? FLIGHT_CHAN_REJECT : FLIGHT_CHAN_REQUEST,
                  why >= 0 ? (u64)why : type, why >= 0 ? type : id, len);
    if (why == WIRE_REJ_UNKNOWN_TYPE) {
        frame_reject(&chan_dec, why);
        chan_error(type, id, WIRE_ERR_UNKNOWN_TYPE, "unknown request type 0x%x", type);
        return;
    }
    if (why == WIRE_REJ_BAD_PAYLOAD) {
        frame_reject(&chan_dec, why);
        chan_error(type, id, WIRE_ERR_BAD_PAYLOAD, "type 0x%x: payload of %u bytes is wrong",
                   type, len);
        return;
    }
    switch (type) {                     /* generated from the request table */
#define CHAN_DISPATCH(N, n, head, item, lo, hi, feat) \
    case WIRE_MSG_##N: chan_serve_##n(type, id, p, len); break;
    WIRE_REQUESTS(CHAN_DISPATCH)
#undef CHAN_DISPATCH
    default: break;                     /* frame_classify() said it was known */
    }
}

/* Idle with polling (no interrupt): keep polling for CHAN_IDLE_SPINS
 * empty polls and CHAN_LINGER_US since the last event, so a host sending
 * request after request (ps, top, bench) finds the thread still polling
 * instead of asleep for a tick; then sleep CHAN_SLEEP_MS.  Called by
 * chan_main on VCONS_EV_NONE; `last` is the time of the last event. */
static void chan_poll_idle(u32 *idle, u64 *last)
{
    u64 linger_ns = (u64)CHAN_LINGER_US * 1000;
    if (++*idle < CHAN_IDLE_SPINS || (*last && time_ns() - *last < linger_ns)) {
        cpu_relax();
        return;
    }
    *idle = 0;
    *last = 0;
    chan_parked = true;
    thread_sleep_ms(CHAN_SLEEP_MS, "chan-rx");
    chan_parked = false;
}

/* Idle with interrupts: block until the device interrupts (chan_wake) or
 * a stream push is due (chan_stream_wait_ms).  Pending work is checked
 * with interrupts off, so an interrupt between the check and the block is
 * not lost.  With no stream on, the block has a safety timeout; work
 * found by it means an interrupt went missing: counted and logged.  Called
 * by chan_main on VCONS_EV_NONE. */
static void chan_irq_idle(void)
{
    u32 ms = chan_stream_wait_ms();
    u64 f = irq_save();
    chan_parked = true;
    bool woken = vcons_pending() || thread_block("chan-rx", ms);
    chan_parked = false;
    irq_restore(f);
    if (!woken && ms == CHAN_BLOCK_TIMEOUT_MS && vcons_pending()) {
        chan_lost_irqs++;
        kprintf("chan: the %u ms safety timeout found work (%lu times): lost interrupt?\n",
                (unsigned)CHAN_BLOCK_TIMEOUT_MS, (unsigned long)chan_lost_irqs);
    }
}

/* The device's interrupt handler's wake-up (interrupt context): the wake
 * function chan_main gives vcons_init. */
static void chan_wake(void)
{
    thread_wake(chan_thread);
}

/* Does the command line say unik.chan=poll (no interrupt)?  An escape
 * hatch, and how tests reach the polling fallback.  Called by chan_main. */
static bool chan_poll_forced(void)
{
    char mode[8];
    if (!kernel_cmdline_get("unik.chan", mode, sizeof mode) || strcmp(mode, "poll"))
        return false;
    kprintf("chan: unik.chan=poll on the command line\n");
    return true;
}

/* Serve one event of kind `kind` (not NONE) from vcons_next: count a
 * host connect, end the connection's partial frame on a disconnect, feed
 * received bytes to the decoder (which calls chan_serve per frame).
 * Called by chan_main. */
static void chan_event(int kind, const struct vcons_ev *ev)
{
    switch (kind) {
    case VCONS_EV_OPEN:
        chan_stats.connects++;
        kprintf("chan: host connected (connection %lu)\n", (unsigned long)chan_stats.connects);
        break;
    case VCONS_EV_CLOSE: {
        u64 trunc = chan_stats.rej_truncated;
        frame_disconnect(&chan_dec);            /* counts the disconnect */
        chan_stream_host_left();
        kprintf("chan: host disconnected%s\n",
                chan_stats.rej_truncated != trunc ? " (partial frame dropped)" : "");
        break;
    }
    case VCONS_EV_DATA:
        frame_feed(&chan_dec, ev->data, ev->len, chan_serve, NULL);
        break;
    }
}

/* The probe-chan thread (started by chan_start): bring up the device,
 * then serve events forever, waiting on the interrupt (or polling) when
 * there are none. */
static void chan_main(void *arg)
{
    (void)arg;
    chan_thread = thread_current();
    if (!vcons_init(WIRE_PORT_NAME, chan_poll_forced() ? NULL : chan_wake)) {
        kprintf("chan: probe channel disabled\n");
        thread_exit();
    }
    chan_tsc_ready = rdtsc();
    frame_init(&chan_dec, &chan_stats);
    kprintf("chan: probe channel ready on %s\n", WIRE_PORT_NAME);
    u32 idle = 0;
    u64 last = 0;
    for (;;) {
        struct vcons_ev ev;
        int kind = vcons_next(&ev);
        if (kind == VCONS_EV_NONE) {
            if (vcons_irq_on())
                chan_irq_idle();
            else
                chan_poll_idle(&idle, &last);
            chan_stream_run();
            continue;
        }
        chan_event(kind, &ev);
        chan_stream_run();
        if (!vcons_irq_on()) {              /* only the polling loop lingers */
            idle = 0;
            last = time_ns();
        }
    }
}

/* Start the probe-chan thread.  Called by kmain (main.c) at boot. */
void chan_start(void)
{
    if (!thread_spawn("probe-chan", chan_main, NULL, THREAD_F_SERVICE, 0))
        kprintf("chan: cannot create the probe-chan thread\n");
}
