/* The packet capture tap (capture.h).
 *
 * capture_tap runs every running capture's classic BPF program on a
 * frame and copies the frames it accepts, with the kernel's timestamp,
 * into that capture's ring: interrupts are off meanwhile (the tap may be
 * called from the network interrupt and the probe-chan thread drains the
 * rings), nothing blocks and nothing is allocated.  A frame that does not
 * fit is dropped and counted: matched = drained + dropped + waiting,
 * exactly.  Rings and programs are allocated by capture_open and freed by
 * capture_close (thread context).  The drain (capture_drain) is called by
 * kernel/chan/capture.c. */
#include "kernel.h"
#include "lib.h"
#include "mm.h"
#include "tunables.h"
#include "x86.h"
#include "capture.h"

enum cap_state { CAP_FREE, CAP_LOADING, CAP_RUNNING, CAP_STOPPED };

struct capture {
    enum cap_state state;
    u32 snaplen;
    u32 ninsns;
    struct cbpf_insn *prog;            /* ninsns instructions */
    u8 *ring;                          /* size bytes */
    u32 size;
    u64 head, tail;                    /* bytes ever written, read */
    struct capture_stats st;
};

static struct capture captures[CAPTURE_MAX];
static volatile u32 capture_running;   /* bitmask: state == CAP_RUNNING */

/* Copy n bytes in at ring offset `at` (mod size), wrapping.  Called by
 * capture_put. */
static void ring_write(struct capture *c, u64 at, const void *src, u32 n)
{
    u32 off = (u32)(at % c->size), first = MIN(n, c->size - off);
    memcpy(c->ring + off, src, first);
    memcpy(c->ring, (const u8 *)src + first, n - first);
}

/* Copy n bytes out from ring offset `at`, wrapping.  Called by
 * capture_drain. */
static void ring_read(const struct capture *c, u64 at, void *dst, u32 n)
{
    u32 off = (u32)(at % c->size), first = MIN(n, c->size - off);
    memcpy(dst, c->ring + off, first);
    memcpy((u8 *)dst + first, c->ring, n - first);
}

/* Bytes a record with caplen bytes takes (header, bytes padded to 8). */
static u32 rec_size(u32 caplen)
{
    return (u32)sizeof(struct capture_rec) + (u32)ALIGN_UP(caplen, 8);
}

/* Run one capture's filter on a frame and keep it if accepted (or count
 * the drop).  Interrupts are off.  Called by capture_tap_wire. */
static void capture_put(struct capture *c, int dir, const u8 *frame, u32 caplen,
                        u32 wirelen, u64 now)
{
    c->st.received++;
    u32 keep = cbpf_run(c->prog, frame, wirelen, caplen);
    if (keep == 0)
        return;
    c->st.matched++;
    keep = MIN(MIN(keep, c->snaplen), MIN(caplen, (u32)CAPTURE_SNAP_MAX));
    u32 need = rec_size(keep);
    if (c->size - (c->head - c->tail) < need) {
        c->st.dropped++;
        return;
    }
    struct capture_rec r = { .ts_ns = now, .wirelen = wirelen, .caplen = (u16)keep,
                             .dir = (u8)dir };
    static const u8 zeros[8];
    ring_write(c, c->head, &r, sizeof(r));
    ring_write(c, c->head + sizeof(r), frame, keep);
    ring_write(c, c->head + sizeof(r) + keep, zeros, need - (u32)sizeof(r) - keep);
    c->head += need;
    c->st.waiting++;
}

/* The tap (capture.h). */
void capture_tap_wire(int dir, const u8 *frame, u32 caplen, u32 wirelen)
{
    if (!capture_running)
        return;
    u64 f = irq_save();
    u64 now = time_ns(), t = now;
    u32 run = capture_running;
    for (u32 i = 0; i < CAPTURE_MAX; i++) {
        if (!(run & (1u << i)))
            continue;
        capture_put(&captures[i], dir, frame, caplen, wirelen, now);
        u64 t2 = time_ns();
        captures[i].st.tap_ns += t2 - t;
        t = t2;
    }
    irq_restore(f);
}

/* The tap for a whole frame (capture.h).  Called by the netif glue. */
void capture_tap(int dir, const void *frame, u32 len)
{
    capture_tap_wire(dir, (const u8 *)frame, len, len);
}

/* A capture id in a state other than FREE, or NULL. */
static struct capture *capture_get(u32 id)
{
    return id < CAPTURE_MAX && captures[id].state != CAP_FREE ? &captures[id] : NULL;
}

/* CAPTURE_OPEN: a free slot with its ring and program space. */
int capture_open(u32 snaplen, u32 bufsize, u32 ninsns, u32 *id)
{
    if (bufsize < CAPTURE_BUF_MIN || bufsize > CAPTURE_BUF_MAX || snaplen == 0 ||
        ninsns == 0 || ninsns > CBPF_MAXINSNS)
        return CAPTURE_E_RANGE;
    for (u32 i = 0; i < CAPTURE_MAX; i++) {
        struct capture *c = &captures[i];
        if (c->state != CAP_FREE)
            continue;
        memset(c, 0, sizeof(*c));
        c->prog = kzalloc(ninsns * sizeof(struct cbpf_insn));
        c->ring = kmalloc(bufsize);
        if (!c->prog || !c->ring) {
            kfree(c->prog);
            kfree(c->ring);
            c->prog = NULL;
            c->ring = NULL;
            return CAPTURE_E_NOSPACE;
        }
        c->snaplen = snaplen;
        c->ninsns = ninsns;
        c->size = bufsize;
        c->state = CAP_LOADING;
        *id = i;
        return CAPTURE_OK;
    }
    return CAPTURE_E_NOSPACE;
}

/* CAPTURE_PROG: instructions at an index, before the capture starts. */
int capture_prog(u32 id, u32 offset, const u8 *insns, u32 n)
{
    struct capture *c = capture_get(id);
    if (!c || c->state != CAP_LOADING)
        return CAPTURE_E_NOCAPTURE;
    if (offset > c->ninsns || n > c->ninsns - offset)
        return CAPTURE_E_RANGE;
    memcpy(c->prog + offset, insns, n * sizeof(struct cbpf_insn));
    return CAPTURE_OK;
}

/* CAPTURE_START: verify the program; if good, the tap runs it from now. */
int capture_start(u32 id, struct cbpf_verr *e)
{
    struct capture *c = capture_get(id);
    if (!c || c->state != CAP_LOADING)
        return CAPTURE_E_NOCAPTURE;
    u16 *masks = kmalloc(c->ninsns * sizeof(u16));
    if (!masks)
        return CAPTURE_E_NOSPACE;
    bool ok = cbpf_verify(c->prog, c->ninsns, masks, e);
    kfree(masks);
    if (!ok)
        return CAPTURE_E_VERIFY;
    u64 f = irq_save();
    c->state = CAP_RUNNING;
    capture_running |= 1u << id;
    irq_restore(f);
    return CAPTURE_OK;
}

/* CAPTURE_STOP: the tap leaves this capture alone; its ring stays
 * readable. */
int capture_stop(u32 id)
{
    struct capture *c = capture_get(id);
    if (!c)
        return CAPTURE_E_NOCAPTURE;
    u64 f = irq_save();
    capture_running &= ~(1u << id);
    if (c->state == CAP_RUNNING)
        c->state = CAP_STOPPED;
    irq_restore(f);
    return CAPTURE_OK;
}

/* CAPTURE_CLOSE: stop and free. */
int capture_close(u32 id)
{
    struct capture *c = capture_get(id);
    if (!c)
        return CAPTURE_E_NOCAPTURE;
    capture_stop(id);
    kfree(c->prog);
    kfree(c->ring);
    memset(c, 0, sizeof(*c));
    return CAPTURE_OK;
}

/* Close every capture (the host left).  Called by chan_capture_host_left. */
void capture_close_all(void)
{
    for (u32 i = 0; i < CAPTURE_MAX; i++)
        if (captures[i].state != CAP_FREE)
            capture_close(i);
}

/* A capture's counters, read with the tap held off. */
int capture_stats(u32 id, struct capture_stats *out)
{
    struct capture *c = capture_get(id);
    if (!c)
        return CAPTURE_E_NOCAPTURE;
    u64 f = irq_save();
    *out = c->st;
    irq_restore(f);
    return CAPTURE_OK;
}

/* Which captures have records waiting (bit i: capture i). */
u32 capture_pending(void)
{
    u32 m = 0;
    for (u32 i = 0; i < CAPTURE_MAX; i++)
        if (captures[i].state != CAP_FREE && captures[i].st.waiting)
            m |= 1u << i;
    return m;
}

/* Take whole records out of a ring into buf (capture.h). */
u32 capture_drain(u32 id, u8 *buf, u32 cap, u32 *npkt)
{
    struct capture *c = capture_get(id);
    *npkt = 0;
    if (!c)
        return 0;
    u32 n = 0;
    u64 f = irq_save();
    while (c->head != c->tail) {
        struct capture_rec r;
        ring_read(c, c->tail, &r, sizeof(r));
        u32 sz = rec_size(r.caplen);
        if (n + sz > cap)
            break;
        ring_read(c, c->tail, buf + n, sz);
        c->tail += sz;
        n += sz;
        c->st.waiting--;
        c->st.drained++;
        (*npkt)++;
    }
    irq_restore(f);
    return n;
}
