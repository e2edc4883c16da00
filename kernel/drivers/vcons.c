/* virtio-console multiport driver for one named port, interrupt-driven
 * (the caller's wake function) or polled: device setup, the port's data
 * queues, the order of events and the interrupt.  The control queue (the
 * handshake, control messages) is in vcons_ctrl.c.  See vcons.h for the
 * queue map and how events are ordered. */
#include "vcons_int.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

struct vcons_state vcons = { .port = -1, .queues_port = -1 };

/* The used index the device last published for q.  Read when taking a
 * snapshot (vcons_snapshot), setting up the port and sending. */
static inline u16 vcons_used_idx(struct virtq *q)
{
    return *(volatile u16 *)&q->used->idx;
}

/* Are our port's data queues set up (vcons_next may read them)? */
static bool vcons_rx_ready(void)
{
    return vcons.port >= 0 && vcons.queues_port == vcons.port;
}

/* Hand receive buffer buf to the device (the caller kicks).  Called by
 * vcons_setup_port and to give back a consumed buffer. */
static void vcons_post_rx(u8 *buf)
{
    virtq_add(&vcons.rx, buf, CHAN_RX_BUF_SIZE, true, buf);
}

/* The data queues of port `id`: set up once (QEMU accepts QueueReady after
 * DRIVER_OK), then every receive buffer posted.  Called by
 * vcons_ctrl_named (vcons_ctrl.c) on the PORT_NAME of our port. */
bool vcons_setup_port(u32 id)
{
    if (vcons.queues_port == (int)id)
        return true;
    if (vcons.queues_port >= 0) {
        kprintf("chan: port %u renamed to ours, but port %d's queues are in use\n",
                id, vcons.queues_port);
        return false;
    }
    u16 rxq = (u16)(2 * (id + 1)), txq = (u16)(2 * (id + 1) + 1);
    if (!virtq_setup(&vcons.rx, &vcons.dev, rxq, CHAN_VQ_SIZE) ||
        !virtq_setup(&vcons.tx, &vcons.dev, txq, CHAN_VQ_SIZE)) {
        kprintf("chan: cannot set up queues %u/%u of port %u\n", rxq, txq, id);
        return false;
    }
    if (vcons.rx.size < CHAN_RX_BUFS)
        kprintf("chan: rx queue holds %u buffers, fewer than CHAN_RX_BUFS\n", vcons.rx.size);
    for (u32 i = 0; i < CHAN_RX_BUFS && i < vcons.rx.size; i++)
        vcons_post_rx(vcons.rx_bufs + (size_t)i * CHAN_RX_BUF_SIZE);
    virtq_interrupts(&vcons.rx, vcons.irq);
    virtq_kick(&vcons.rx);
    vcons.queues_port = (int)id;
    vcons.snap_d = vcons_used_idx(&vcons.rx);
    return true;
}

/* Is a host client connected now: the state vcons_next last reported,
 * updated by the control messages still pending.  Called by the tx ring
 * (and public, vcons.h). */
bool vcons_host_connected(void)
{
    if (vcons.port < 0)
        return false;
    bool st = vcons.host_open;
    void *tok;
    u32 len;
    for (u16 k = 0; virtq_peek(&vcons.crx, k, &tok, &len); k++) {
        int c = vcons_ctrl_change(tok, len);
        if (c >= 0)
            st = c;
    }
    return st;
}

/* Does a host connect follow the first (pending) control message within
 * the snapshot?  Then the pending data cannot be ordered against the
 * disconnect (see vcons.h) and is given to the new connection.  Called by
 * vcons_take_ctrl. */
static bool vcons_reopened(void)
{
    u16 n = (u16)(vcons.snap_c - vcons.crx.last_used);
    void *tok;
    u32 len;
    for (u16 k = 1; k < n && virtq_peek(&vcons.crx, k, &tok, &len); k++)
        if (vcons_ctrl_change(tok, len) == 1)
            return true;
    return false;
}

/* Give the receive buffer lent by the last DATA event back to the device.
 * Called by vcons_next. */
static void vcons_release(void)
{
    if (!vcons.held)
        return;
    vcons_post_rx(vcons.held);
    virtq_kick(&vcons.rx);
    vcons.held = NULL;
}

/* The next received bytes as a DATA event (the buffer is lent until the
 * next vcons_next); empty buffers are reposted on the way.  NONE if the
 * receive queue has no more.  Called by vcons_take_data and
 * vcons_take_ctrl. */
static int vcons_pop_data(struct vcons_ev *ev)
{
    void *tok;
    u32 len;
    while (virtq_pop(&vcons.rx, &tok, &len)) {
        if (len == 0) {
            vcons_post_rx(tok);
            virtq_kick(&vcons.rx);
            continue;
        }
        vcons.held = tok;
        ev->kind = VCONS_EV_DATA;
        ev->data = tok;
        ev->len = MIN(len, (u32)CHAN_RX_BUF_SIZE);
        return VCONS_EV_DATA;
    }
    return VCONS_EV_NONE;
}

/* A DATA event from the data snapshot, or NONE with the data snapshot
 * marked used up.  Called by vcons_next and vcons_take_ctrl. */
static int vcons_take_data(struct vcons_ev *ev)
{
    int k = vcons_pop_data(ev);
    if (k == VCONS_EV_NONE)
        vcons.snap_d = vcons.rx.last_used;
    return k;
}

/* The next event while the control snapshot has messages left.  If the
 * first is a host disconnect that no reconnect in the snapshot follows,
 * the data before it goes first; then the control message.  Called by
 * vcons_next; d_left: the data snapshot has entries left. */
static int vcons_take_ctrl(struct vcons_ev *ev, bool d_left)
{
    if (d_left && vcons_ctrl_first_change() == 0 && !vcons_reopened()) {
        int k = vcons_take_data(ev);
        if (k != VCONS_EV_NONE)
            return k;
    }
    int e = vcons_ctrl_next();
    if (e != VCONS_EV_NONE)
        ev->kind = e;
    return e;
}

/* The snapshot is used up: send a resync if one is due, then take a new
 * snapshot, control first, then data (data pushed before a control message
 * we see is then in the data snapshot).  False if it is empty.  Called by
 * vcons_next. */
static bool vcons_snapshot(void)
{
    if (vcons.resync && vcons_rx_ready())
        vcons_ctrl_resync();
    vcons.snap_c = vcons_used_idx(&vcons.crx);
    if ((u16)(vcons.snap_c - vcons.crx.last_used) >= vcons.ctrl_posted)
        vcons.resync = true;            /* no buffer was left: QEMU drops */
    mb();
    if (vcons_rx_ready())
        vcons.snap_d = vcons_used_idx(&vcons.rx);
    rmb();
    return vcons.crx.last_used != vcons.snap_c ||
           (vcons_rx_ready() && vcons.rx.last_used != vcons.snap_d);
}

/* The next event, in arrival order (see vcons.h); NONE when idle.  Called
 * by vcons_next. */
static int vcons_next_event(struct vcons_ev *ev)
{
    ev->kind = VCONS_EV_NONE;
    ev->data = NULL;
    ev->len = 0;
    vcons_release();
    if (vcons.pending) {
        ev->kind = vcons.pending;
        vcons.pending = VCONS_EV_NONE;
        return ev->kind;
    }
    for (;;) {
        bool c_left = vcons.crx.last_used != vcons.snap_c;
        bool d_left = vcons_rx_ready() && vcons.rx.last_used != vcons.snap_d;
        int k = VCONS_EV_NONE;
        if (c_left)
            k = vcons_take_ctrl(ev, d_left);
        else if (d_left)
            k = vcons_take_data(ev);
        else if (!vcons_snapshot())
            return VCONS_EV_NONE;
        if (k != VCONS_EV_NONE)
            return k;
    }
}

static void vcons_tx_reset(void);

/* The next event, in arrival order (see vcons.h); NONE when idle.  A host
 * disconnect also takes back the transmit buffers it left queued.  Called
 * by the probe-chan thread (chan/server.c). */
int vcons_next(struct vcons_ev *ev)
{
    int k = vcons_next_event(ev);
    if (k == VCONS_EV_CLOSE)
        vcons_tx_reset();
    return k;
}

_Static_assert(CHAN_TX_BUFS >= 1 && CHAN_TX_BUFS <= 32 && CHAN_TX_BUFS <= CHAN_VQ_SIZE,
               "CHAN_TX_BUFS: one bit each in tx_free, one descriptor each");

/* Index of transmit buffer b in the ring.  Called by the tx functions. */
static u32 vcons_tx_slot(const u8 *b)
{
    return (u32)((size_t)(b - vcons.tx_bufs) / CHAN_TX_BUF_SIZE);
}

/* Take back every transmit buffer the device has returned (used).
 * Called before each get, after each put (under TCG the device usually
 * completes on the notify) and by vcons_tx_reset. */
static void vcons_tx_reclaim(void)
{
    void *tok;
    while (virtq_pop(&vcons.tx, &tok, NULL))
        if (tok)
            vcons.tx_free |= 1u << vcons_tx_slot(tok);
}

/* The host left: kicked, QEMU returns what is queued unsent (as used),
 * and it may have dropped the buffer it was writing (a throttled element
 * is detached, never returned), so with no host connected every buffer
 * still out is taken back.  If a host is connected again, what is queued
 * goes to it and completes normally.  Called by vcons_next on a host
 * disconnect and by vcons_tx_wait. */
static void vcons_tx_reset(void)
{
    if (!vcons_rx_ready())
        return;
    virtq_kick(&vcons.tx);
    vcons_tx_reclaim();
    if (vcons_host_connected())
        return;
    for (u32 i = 0; i < CHAN_TX_BUFS; i++) {
        if (vcons.tx_free & (1u << i))
            continue;
        virtq_reclaim(&vcons.tx, vcons.tx_desc[i]);
        vcons.tx_free |= 1u << i;
    }
}

/* A free transmit buffer (cap bytes) to build a frame in, or NULL when
 * every buffer is queued to the device (the ring is full).  The same
 * buffer is returned until vcons_tx_put queues it.  Called by chan/ for
 * stream frames (which are dropped when the ring is full). */
u8 *vcons_tx_get(u32 *cap)
{
    *cap = 0;
    if (!vcons.tx_bufs)
        return NULL;
    vcons_tx_reclaim();
    if (!vcons.tx_free)
        return NULL;
    *cap = CHAN_TX_BUF_SIZE;
    return vcons.tx_bufs + (size_t)__builtin_ctz(vcons.tx_free) * CHAN_TX_BUF_SIZE;
}

/* Block until a transmit completion (its interrupt, or CHAN_SLEEP_MS of
 * polling) or a control message may have freed the ring.  Called by
 * vcons_tx_wait. */
static void vcons_tx_block(void)
{
    if (!vcons.irq) {
        thread_sleep_ms(CHAN_SLEEP_MS, "chan-tx");
        return;
    }
    virtq_interrupts(&vcons.tx, true);
    u64 f = irq_save();
    if (!virtq_pending(&vcons.tx) && !virtq_pending(&vcons.crx))
        thread_block("chan-tx", CHAN_TX_WAIT_MS);
    irq_restore(f);
    virtq_interrupts(&vcons.tx, false);
}

/* A free transmit buffer, waiting for one if the ring is full: the host
 * reads slowly and QEMU holds our buffers until its socket drains.  If
 * the host leaves meanwhile the ring is reset, so this always returns.
 * Called by chan/ for replies (which are never dropped for a full ring). */
u8 *vcons_tx_wait(u32 *cap)
{
    for (;;) {
        u8 *b = vcons_tx_get(cap);
        if (b || !vcons.tx_bufs)
            return b;
        vcons.tx_full_waits++;
        if (!vcons_host_connected()) {
            vcons_tx_reset();
            continue;
        }
        vcons_tx_block();
    }
}

/* Queue len bytes of transmit buffer buf (from vcons_tx_get/wait) to the
 * device; it is ours again once the device returns it.  False, with the
 * buffer still free, if no host is connected (QEMU would discard it).
 * Frames go out in the order they are queued.  Called by chan/. */
bool vcons_tx_put(u8 *buf, u32 len)
{
    if (!vcons_rx_ready() || !buf || len == 0 || len > CHAN_TX_BUF_SIZE ||
        !vcons_host_connected())
        return false;
    u32 i = vcons_tx_slot(buf);
    int d = virtq_add(&vcons.tx, buf, len, false, buf);
    if (d < 0)
        return false;
    vcons.tx_free &= ~(1u << i);
    vcons.tx_desc[i] = d;
    virtq_kick(&vcons.tx);
    vcons_tx_reclaim();
    return true;
}

/* Our port id, -1 before the handshake (public, vcons.h; for debugging). */
int vcons_port_id(void)
{
    return vcons.port;
}

/* The device interrupted (interrupt context, status acknowledged): a used
 * buffer on the control or port receive queue, or a config change. */
static void vcons_irq(void *arg, u32 status)
{
    (void)arg;
    (void)status;
    if (vcons.wake)
        vcons.wake();
}

/* Take the device's interrupt for the receive queues if the caller gave a
 * wake function and the line can be routed.  Called by vcons_init before
 * DRIVER_OK (the port's data queues follow in vcons_setup_port). */
static void vcons_irq_setup(void (*wake)(void))
{
    vcons.wake = wake;
    if (!wake || !vmmio_irq_enable(&vcons.dev, vcons_irq, NULL, &vcons.route))
        return;
    vcons.irq = true;
    virtq_interrupts(&vcons.crx, true);
}

/* After the handshake: keep the interrupt only if it fired (the control
 * messages QEMU answered DEVICE_READY with raise it), else poll; log the
 * mode.  Called by vcons_init. */
static void vcons_irq_check(void)
{
    if (vcons.irq && vmmio_irq_count(&vcons.dev) == 0) {
        kprintf("chan: no interrupt came on IRQ %u during the handshake\n", vcons.route.gsi);
        vmmio_irq_disable(&vcons.dev);
        vcons.irq = false;
        virtq_interrupts(&vcons.crx, false);
        if (vcons_rx_ready())
            virtq_interrupts(&vcons.rx, false);
    }
    if (vcons.irq)
        kprintf("chan: interrupts on IRQ %u (ioapic%u pin %u, vector 0x%x, %s)\n",
                vcons.route.gsi, vcons.route.ioapic, vcons.route.pin, vcons.route.vector,
                vcons.route.level ? "level" : "edge");
    else
        kprintf("chan: no interrupt, polling\n");
}

/* Interrupt mode (else polling)?  chan/server.c picks its idle wait. */
bool vcons_irq_on(void)
{
    return vcons.irq;
}

/* Work for vcons_next: a held event, a resync to send, or used entries
 * on the control or port receive queue.  chan/server.c checks it with
 * interrupts off before blocking. */
bool vcons_pending(void)
{
    return vcons.pending != VCONS_EV_NONE || (vcons.resync && vcons_rx_ready()) ||
           virtq_pending(&vcons.crx) || (vcons_rx_ready() && virtq_pending(&vcons.rx));
}

/* Find the virtio-console, check it is virtio-mmio version 2 and negotiate
 * MULTIPORT.  False (and a log line) if it cannot be used.  Called by
 * vcons_init. */
static bool vcons_probe(void)
{
    if (!vmmio_find(VIRTIO_ID_CONSOLE, &vcons.dev)) {
        kprintf("chan: no virtio-console device in the virtio-mmio slots\n");
        return false;
    }
    if (vcons.dev.version != 2) {
        kprintf("chan: virtio-console at slot %u is legacy virtio-mmio (version %u); "
                "run QEMU with -global virtio-mmio.force-legacy=false\n",
                vcons.dev.slot, vcons.dev.version);
        return false;
    }
    if (!vmmio_negotiate(&vcons.dev, VIRTIO_CONSOLE_F_MULTIPORT)) {
        kprintf("chan: virtio-console feature negotiation failed\n");
        return false;
    }
    if (!(vcons.dev.features & VIRTIO_CONSOLE_F_MULTIPORT)) {
        kprintf("chan: virtio-console without MULTIPORT: named ports unavailable\n");
        vmmio_failed(&vcons.dev);
        return false;
    }
    return true;
}

/* Pages for the control and receive buffers and the transmit ring.
 * False (device marked FAILED) if memory is short.  Called by vcons_init. */
static bool vcons_alloc(void)
{
    size_t ctrl_bytes = (size_t)CHAN_CTRL_BUFS * CHAN_CTRL_BUF_SIZE;
    size_t rx_bytes = (size_t)CHAN_RX_BUFS * CHAN_RX_BUF_SIZE;
    vcons.ctrl_bufs = page_alloc_n((ctrl_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vcons.rx_bufs = page_alloc_n((rx_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vcons.tx_bufs = page_alloc_n(((size_t)CHAN_TX_BUFS * CHAN_TX_BUF_SIZE + PAGE_SIZE - 1) /
                                 PAGE_SIZE);
    vcons.tx_free = (u32)((1ull << CHAN_TX_BUFS) - 1);
    if (!vcons.ctrl_bufs || !vcons.rx_bufs || !vcons.tx_bufs) {
        kprintf("chan: out of memory for virtio-console buffers\n");
        vmmio_failed(&vcons.dev);
        return false;
    }
    return true;
}

/* Bring the device up and open the port named `name` (see vcons.h).
 * Called once by the probe-chan thread (chan/server.c). */
bool vcons_init(const char *name, void (*wake)(void))
{
    vcons.name = name;
    if (!vcons_probe())
        return false;
    vcons.max_ports = vmmio_config32(&vcons.dev, 4);   /* cols u16, rows u16, max_nr_ports */
    if (!vcons_alloc())
        return false;
    if (!vcons_ctrl_setup()) {
        kprintf("chan: cannot set up the virtio-console control queues\n");
        vmmio_failed(&vcons.dev);
        return false;
    }
    vcons_irq_setup(wake);
    vmmio_driver_ok(&vcons.dev);
    virtq_kick(&vcons.crx);
    kprintf("chan: virtio-console at slot %u (0x%lx), %u ports max\n",
            vcons.dev.slot, (unsigned long)vcons.dev.base, vcons.max_ports);

    if (!vcons_ctrl_handshake(name)) {
        if (vcons.irq)
            vmmio_irq_disable(&vcons.dev);
        vcons.irq = false;
        return false;
    }
    vcons.snap_c = vcons.crx.last_used;
    vcons.snap_d = vcons.rx.last_used;
    vcons_irq_check();
    return true;
}
