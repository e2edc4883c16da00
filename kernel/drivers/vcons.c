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

#define TX_CAP CHAN_TX_BUF_SIZE

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
 * updated by the control messages still pending.  Called by vcons_send
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
 * by the probe-chan thread (chan/server.c). */
int vcons_next(struct vcons_ev *ev)
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

/* The transmit buffer (and its size) replies are built in.  Called by
 * chan/server.c. */
u8 *vcons_tx_buffer(u32 *cap)
{
    if (cap)
        *cap = vcons.tx_buf ? TX_CAP : 0;
    return vcons.tx_buf;
}

/* Did the host leave (a disconnect of our port) in the control messages
 * QEMU pushed since the used index was `mark`?  Called by vcons_send_wait. */
static bool vcons_closed_since(u16 mark)
{
    u16 skip = (u16)(mark - vcons.crx.last_used);
    void *tok;
    u32 len;
    if (skip > virtq_pending(&vcons.crx))
        skip = 0;                     /* consumed meanwhile: look at all */
    for (u16 k = skip; virtq_peek(&vcons.crx, k, &tok, &len); k++)
        if (vcons_ctrl_change(tok, len) == 0)
            return true;
    return false;
}

/* Wait until the device returns transmit descriptor d, or the host leaves
 * (a disconnect after control used index `mark`): true if it was sent.
 * Under TCG virtio-mmio completes on the notify; a slow host reader
 * (chardev write would block) makes QEMU hold the buffer until the socket
 * drains, or until the client leaves.  Called by vcons_send. */
static bool vcons_send_wait(int d, u16 mark)
{
    for (u32 spins = 0;; spins++) {
        if (vcons_closed_since(mark)) {
            /* the host left while QEMU held the buffer: it returns it
             * unsent, or drops it (some QEMUs detach a throttled element) */
            if (!virtq_pop(&vcons.tx, NULL, NULL))
                virtq_reclaim(&vcons.tx, d);
            return false;
        }
        if (virtq_pop(&vcons.tx, NULL, NULL))
            return true;
        if (spins < CHAN_IDLE_SPINS)
            cpu_relax();
        else
            thread_sleep_ms(CHAN_SLEEP_MS, "chan-tx");
    }
}

/* Send len bytes of the transmit buffer and wait until the device has
 * them; false if no host is connected or it left first.  Called by
 * chan/server.c for every reply. */
bool vcons_send(u32 len)
{
    if (!vcons_rx_ready() || len == 0 || len > TX_CAP || !vcons_host_connected())
        return false;
    int d = virtq_add(&vcons.tx, vcons.tx_buf, len, false, vcons.tx_buf);
    if (d < 0)
        return false;
    u16 mark = vcons_used_idx(&vcons.crx);
    virtq_kick(&vcons.tx);
    if (virtq_pop(&vcons.tx, NULL, NULL))
        return true;
    return vcons_send_wait(d, mark);
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

/* Pages for the control and receive buffers and the transmit buffer.
 * False (device marked FAILED) if memory is short.  Called by vcons_init. */
static bool vcons_alloc(void)
{
    size_t ctrl_bytes = (size_t)CHAN_CTRL_BUFS * CHAN_CTRL_BUF_SIZE;
    size_t rx_bytes = (size_t)CHAN_RX_BUFS * CHAN_RX_BUF_SIZE;
    vcons.ctrl_bufs = page_alloc_n((ctrl_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vcons.rx_bufs = page_alloc_n((rx_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vcons.tx_buf = page_alloc_n((TX_CAP + PAGE_SIZE - 1) / PAGE_SIZE);
    if (!vcons.ctrl_bufs || !vcons.rx_bufs || !vcons.tx_buf) {
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
