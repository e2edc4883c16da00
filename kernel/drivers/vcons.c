/* virtio-console multiport driver for one named port, interrupt-driven
 * (the caller's wake function) or polled.  See vcons.h for the queue map
 * and how events are ordered. */
#include "vcons.h"
#include "arch.h"
#include "virtio_mmio.h"
#include "virtq.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "thread.h"
#include "tunables.h"
#include "wire.h"
#include "x86.h"

#define MAX_PORTS 32                 /* ports we track host state for */
#define TX_CAP (WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD)

struct __attribute__((packed)) vcons_ctrl {
    u32 id;
    u16 event;
    u16 value;
};

static struct {
    struct vmmio_dev dev;
    const char *name;
    u32 max_ports;
    struct virtq crx, ctx;           /* control receive / transmit */
    struct virtq rx, tx;             /* our port's receive / transmit */
    int port;                        /* our port id, -1 until PORT_NAME */
    int queues_port;                 /* port whose data queues are set up, -1 none */
    bool host_open;                  /* host state as reported by vcons_next */
    u8 host_state[MAX_PORTS];        /* PORT_OPEN value per port, any port */
    int pending;                     /* event to report first (from the handshake) */
    u32 ctrl_posted;                 /* control receive buffers handed to the device */
    bool resync;                     /* control ring was full: messages may be lost */
    bool resync_wait;                /* PORT_READY re-sent; its PORT_NAME will mark the reply */
    u16 snap_c, snap_d;              /* used indexes of the current snapshot */
    u8 *held;                        /* rx buffer lent to the caller */
    u8 *ctrl_bufs;
    u8 *rx_bufs;
    u8 *tx_buf;
    struct vcons_ctrl ctrl_msg;      /* the control message being sent */
    void (*wake)(void);              /* called by the interrupt handler */
    bool irq;                        /* interrupts in use (else polled) */
    struct irq_route route;          /* where they arrive */
} vc = { .port = -1, .queues_port = -1 };

static inline u16 used_idx(struct virtq *q)
{
    return *(volatile u16 *)&q->used->idx;
}

static bool rx_ready(void)
{
    return vc.port >= 0 && vc.queues_port == vc.port;
}

/* Send one control message and wait for the device to take it (QEMU handles
 * the control queue synchronously on the notify). */
static bool send_ctrl(u32 id, u16 event, u16 value)
{
    vc.ctrl_msg.id = id;
    vc.ctrl_msg.event = event;
    vc.ctrl_msg.value = value;
    int d = virtq_add(&vc.ctx, &vc.ctrl_msg, sizeof(vc.ctrl_msg), false, &vc.ctrl_msg);
    if (d < 0)
        return false;
    virtq_kick(&vc.ctx);
    for (u32 spin = 0; spin < 1000000; spin++) {
        if (virtq_pop(&vc.ctx, NULL, NULL))
            return true;
        cpu_relax();
    }
    virtq_reclaim(&vc.ctx, d);
    kprintf("chan: control message %u for port %u not taken by the device\n", event, id);
    return false;
}

static void post_ctrl(u8 *buf)
{
    virtq_add(&vc.crx, buf, CHAN_CTRL_BUF_SIZE, true, buf);
}

static void post_rx(u8 *buf)
{
    virtq_add(&vc.rx, buf, CHAN_RX_BUF_SIZE, true, buf);
}

/* The data queues of port `id`: set up once (QEMU accepts QueueReady after
 * DRIVER_OK), then every receive buffer posted. */
static bool setup_port_queues(u32 id)
{
    if (vc.queues_port == (int)id)
        return true;
    if (vc.queues_port >= 0) {
        kprintf("chan: port %u renamed to ours, but port %d's queues are in use\n",
                id, vc.queues_port);
        return false;
    }
    u16 rxq = (u16)(2 * (id + 1)), txq = (u16)(2 * (id + 1) + 1);
    if (!virtq_setup(&vc.rx, &vc.dev, rxq, CHAN_VQ_SIZE) ||
        !virtq_setup(&vc.tx, &vc.dev, txq, CHAN_VQ_SIZE)) {
        kprintf("chan: cannot set up queues %u/%u of port %u\n", rxq, txq, id);
        return false;
    }
    if (vc.rx.size < CHAN_RX_BUFS)
        kprintf("chan: rx queue holds %u buffers, fewer than CHAN_RX_BUFS\n", vc.rx.size);
    for (u32 i = 0; i < CHAN_RX_BUFS && i < vc.rx.size; i++)
        post_rx(vc.rx_bufs + (size_t)i * CHAN_RX_BUF_SIZE);
    virtq_interrupts(&vc.rx, vc.irq);
    virtq_kick(&vc.rx);
    vc.queues_port = (int)id;
    vc.snap_d = used_idx(&vc.rx);
    return true;
}

/* Host state change of our port in control message `buf`: 1 connect,
 * 0 disconnect (or removal), -1 none. */
static int host_change(const u8 *buf, u32 len)
{
    struct vcons_ctrl m;
    if (vc.port < 0 || len < sizeof(m))
        return -1;
    memcpy(&m, buf, sizeof(m));
    if (m.id != (u32)vc.port)
        return -1;
    if (m.event == VCONS_PORT_OPEN)
        return m.value ? 1 : 0;
    if (m.event == VCONS_DEVICE_REMOVE)
        return 0;
    return -1;
}

/* Handle one control message; returns an event for our port or NONE. */
static int handle_ctrl(const u8 *buf, u32 len)
{
    struct vcons_ctrl m;
    if (len < sizeof(m))
        return VCONS_EV_NONE;
    memcpy(&m, buf, sizeof(m));
    bool ours = vc.port >= 0 && m.id == (u32)vc.port;
    switch (m.event) {
    case VCONS_DEVICE_ADD:
        if (m.value && m.id < vc.max_ports)
            send_ctrl(m.id, VCONS_PORT_READY, 1);
        break;
    case VCONS_DEVICE_REMOVE:
        if (m.id < MAX_PORTS)
            vc.host_state[m.id] = 0;
        if (ours) {
            kprintf("chan: port %u removed by the host\n", m.id);
            vc.port = -1;
            if (vc.host_open) {
                vc.host_open = false;
                return VCONS_EV_CLOSE;
            }
        }
        break;
    case VCONS_PORT_NAME: {
        if (ours && vc.resync_wait) {
            /* QEMU answers PORT_READY with PORT_NAME, then PORT_OPEN(1)
             * only if a host client is connected: no PORT_OPEN(1) right
             * after it means the host is gone. */
            vc.resync_wait = false;
            void *tok;
            u32 l2;
            bool open = virtq_peek(&vc.crx, 0, &tok, &l2) &&
                        host_change(tok, MIN(l2, (u32)CHAN_CTRL_BUF_SIZE)) == 1;
            if (!open && vc.host_open) {
                kprintf("chan: control messages were lost; the host has left\n");
                vc.host_open = false;
                return VCONS_EV_CLOSE;
            }
            break;
        }
        u32 n = len - sizeof(m);
        const char *name = (const char *)buf + sizeof(m);
        u32 want = (u32)strlen(vc.name);
        /* the name is NUL-terminated by QEMU; accept it without as well */
        if (vc.port >= 0 || n < want || memcmp(name, vc.name, want) != 0 ||
            (n > want && name[want] != '\0'))
            break;
        if (!setup_port_queues(m.id))
            break;
        vc.port = (int)m.id;
        send_ctrl(m.id, VCONS_PORT_OPEN, 1);      /* the guest side is open */
        if (m.id < MAX_PORTS && vc.host_state[m.id] && !vc.host_open) {
            vc.host_open = true;
            return VCONS_EV_OPEN;
        }
        break;
    }
    case VCONS_PORT_OPEN:
        if (m.id < MAX_PORTS)
            vc.host_state[m.id] = m.value ? 1 : 0;
        if (ours) {
            if (m.value && !vc.host_open) {
                vc.host_open = true;
                return VCONS_EV_OPEN;
            }
            if (!m.value && vc.host_open) {
                vc.host_open = false;
                return VCONS_EV_CLOSE;
            }
        }
        break;
    default:                                      /* CONSOLE_PORT, RESIZE */
        break;
    }
    return VCONS_EV_NONE;
}

/* Consume one control message: copy it out, repost its buffer at once. */
static int next_ctrl(void)
{
    void *tok;
    u32 len;
    if (!virtq_pop(&vc.crx, &tok, &len))
        return VCONS_EV_NONE;
    u8 msg[CHAN_CTRL_BUF_SIZE];
    len = MIN(len, (u32)CHAN_CTRL_BUF_SIZE);
    memcpy(msg, tok, len);
    post_ctrl(tok);
    virtq_kick(&vc.crx);
    return handle_ctrl(msg, len);
}

bool vcons_host_connected(void)
{
    if (vc.port < 0)
        return false;
    bool st = vc.host_open;
    void *tok;
    u32 len;
    for (u16 k = 0; virtq_peek(&vc.crx, k, &tok, &len); k++) {
        int c = host_change(tok, MIN(len, (u32)CHAN_CTRL_BUF_SIZE));
        if (c >= 0)
            st = c;
    }
    return st;
}

/* Does a host connect follow the first (pending) control message within
 * the snapshot?  Then the pending data cannot be ordered against the
 * disconnect (see vcons.h) and is given to the new connection. */
static bool reopened_in_snapshot(void)
{
    u16 n = (u16)(vc.snap_c - vc.crx.last_used);
    void *tok;
    u32 len;
    for (u16 k = 1; k < n && virtq_peek(&vc.crx, k, &tok, &len); k++)
        if (host_change(tok, MIN(len, (u32)CHAN_CTRL_BUF_SIZE)) == 1)
            return true;
    return false;
}

static int next_data(struct vcons_ev *ev)
{
    void *tok;
    u32 len;
    while (virtq_pop(&vc.rx, &tok, &len)) {
        if (len == 0) {
            post_rx(tok);
            virtq_kick(&vc.rx);
            continue;
        }
        vc.held = tok;
        ev->kind = VCONS_EV_DATA;
        ev->data = tok;
        ev->len = MIN(len, (u32)CHAN_RX_BUF_SIZE);
        return VCONS_EV_DATA;
    }
    return VCONS_EV_NONE;
}

int vcons_next(struct vcons_ev *ev)
{
    ev->kind = VCONS_EV_NONE;
    ev->data = NULL;
    ev->len = 0;
    if (vc.held) {
        post_rx(vc.held);
        virtq_kick(&vc.rx);
        vc.held = NULL;
    }
    if (vc.pending) {
        ev->kind = vc.pending;
        vc.pending = VCONS_EV_NONE;
        return ev->kind;
    }
    for (;;) {
        bool c_left = vc.crx.last_used != vc.snap_c;
        bool d_left = rx_ready() && vc.rx.last_used != vc.snap_d;
        if (!c_left && !d_left) {
            if (vc.resync && rx_ready()) {
                /* ask QEMU to restate the port: PORT_NAME [+ PORT_OPEN 1] */
                vc.resync = false;
                vc.resync_wait = true;
                kprintf("chan: control queue was full; asking QEMU to restate port %d\n",
                        vc.port);
                send_ctrl((u32)vc.port, VCONS_PORT_READY, 1);
            }
            /* control first, then data: data pushed before a control
             * message we see is then in the data snapshot */
            vc.snap_c = used_idx(&vc.crx);
            if ((u16)(vc.snap_c - vc.crx.last_used) >= vc.ctrl_posted)
                vc.resync = true;           /* no buffer was left: QEMU drops */
            mb();
            if (rx_ready())
                vc.snap_d = used_idx(&vc.rx);
            rmb();
            if (vc.crx.last_used == vc.snap_c &&
                (!rx_ready() || vc.rx.last_used == vc.snap_d))
                return VCONS_EV_NONE;
            continue;
        }
        if (c_left) {
            void *tok;
            u32 len;
            if (d_left && virtq_peek(&vc.crx, 0, &tok, &len) &&
                host_change(tok, MIN(len, (u32)CHAN_CTRL_BUF_SIZE)) == 0 &&
                !reopened_in_snapshot()) {
                /* a disconnect: the data before it goes first */
                int k = next_data(ev);
                if (k != VCONS_EV_NONE)
                    return k;
                vc.snap_d = vc.rx.last_used;
            }
            int e = next_ctrl();
            if (e != VCONS_EV_NONE) {
                ev->kind = e;
                return e;
            }
            continue;
        }
        int k = next_data(ev);
        if (k != VCONS_EV_NONE)
            return k;
        vc.snap_d = vc.rx.last_used;
    }
}

u8 *vcons_tx_buffer(u32 *cap)
{
    if (cap)
        *cap = vc.tx_buf ? TX_CAP : 0;
    return vc.tx_buf;
}

/* Did the host leave (a disconnect of our port) in the control messages
 * QEMU pushed since the used index was `mark`? */
static bool closed_since(u16 mark)
{
    u16 skip = (u16)(mark - vc.crx.last_used);
    void *tok;
    u32 len;
    if (skip > virtq_pending(&vc.crx))
        skip = 0;                     /* consumed meanwhile: look at all */
    for (u16 k = skip; virtq_peek(&vc.crx, k, &tok, &len); k++)
        if (host_change(tok, MIN(len, (u32)CHAN_CTRL_BUF_SIZE)) == 0)
            return true;
    return false;
}

bool vcons_send(u32 len)
{
    if (!rx_ready() || len == 0 || len > TX_CAP || !vcons_host_connected())
        return false;
    int d = virtq_add(&vc.tx, vc.tx_buf, len, false, vc.tx_buf);
    if (d < 0)
        return false;
    u16 mark = used_idx(&vc.crx);
    virtq_kick(&vc.tx);
    /* Under TCG virtio-mmio completes on the notify; a slow host reader
     * (chardev write would block) makes QEMU hold the buffer until the
     * socket drains, or until the client leaves. */
    if (virtq_pop(&vc.tx, NULL, NULL))
        return true;
    for (u32 spins = 0;; spins++) {
        if (closed_since(mark)) {
            /* the host left while QEMU held the buffer: it returns it
             * unsent, or drops it (some QEMUs detach a throttled element) */
            if (!virtq_pop(&vc.tx, NULL, NULL))
                virtq_reclaim(&vc.tx, d);
            return false;
        }
        if (virtq_pop(&vc.tx, NULL, NULL))
            return true;
        if (spins < CHAN_IDLE_SPINS)
            cpu_relax();
        else
            thread_sleep_ms(CHAN_SLEEP_MS, "chan-tx");
    }
}

int vcons_port_id(void)
{
    return vc.port;
}

/* The device interrupted (interrupt context, status acknowledged): a used
 * buffer on the control or port receive queue, or a config change. */
static void vcons_irq(void *arg, u32 status)
{
    (void)arg;
    (void)status;
    if (vc.wake)
        vc.wake();
}

/* Take the device's interrupt for the receive queues if the caller gave a
 * wake function and the line can be routed.  Called by vcons_init before
 * DRIVER_OK (the port's data queues follow in setup_port_queues). */
static void vcons_irq_setup(void (*wake)(void))
{
    vc.wake = wake;
    if (!wake || !vmmio_irq_enable(&vc.dev, vcons_irq, NULL, &vc.route))
        return;
    vc.irq = true;
    virtq_interrupts(&vc.crx, true);
}

/* After the handshake: keep the interrupt only if it fired (the control
 * messages QEMU answered DEVICE_READY with raise it), else poll; log the
 * mode.  Called by vcons_init. */
static void vcons_irq_check(void)
{
    if (vc.irq && vmmio_irq_count(&vc.dev) == 0) {
        kprintf("chan: no interrupt came on IRQ %u during the handshake\n", vc.route.gsi);
        vmmio_irq_disable(&vc.dev);
        vc.irq = false;
        virtq_interrupts(&vc.crx, false);
        if (rx_ready())
            virtq_interrupts(&vc.rx, false);
    }
    if (vc.irq)
        kprintf("chan: interrupts on IRQ %u (ioapic%u pin %u, vector 0x%x, %s)\n",
                vc.route.gsi, vc.route.ioapic, vc.route.pin, vc.route.vector,
                vc.route.level ? "level" : "edge");
    else
        kprintf("chan: no interrupt, polling\n");
}

/* DEVICE_READY -> DEVICE_ADD per port -> PORT_READY -> PORT_NAME (and
 * PORT_OPEN if a host client is there) -> PORT_OPEN(1) from us, until our
 * port is open or CHAN_HANDSHAKE_MS passed.  Waits on the interrupt when
 * there is one.  Called by vcons_init once the device is live. */
static bool vcons_handshake(const char *name)
{
    if (!send_ctrl(0, VCONS_DEVICE_READY, 1))
        return false;
    u64 deadline = time_ns() + (u64)CHAN_HANDSHAKE_MS * 1000000;
    while (vc.port < 0) {
        if (virtq_pending(&vc.crx)) {
            int e = next_ctrl();
            if (e != VCONS_EV_NONE)
                vc.pending = e;
            continue;
        }
        if (time_ns() > deadline) {
            kprintf("chan: no virtio-console port named %s\n", name);
            return false;
        }
        if (vc.irq)
            thread_block("chan-init", CHAN_SLEEP_MS);
        else
            thread_sleep_ms(CHAN_SLEEP_MS, "chan-init");
    }
    return true;
}

/* Interrupt mode (else polling)?  chan/server.c picks its idle wait. */
bool vcons_irq_on(void)
{
    return vc.irq;
}

/* Work for vcons_next: a held event, a resync to send, or used entries
 * on the control or port receive queue.  chan/server.c checks it with
 * interrupts off before blocking. */
bool vcons_pending(void)
{
    return vc.pending != VCONS_EV_NONE || (vc.resync && rx_ready()) ||
           virtq_pending(&vc.crx) || (rx_ready() && virtq_pending(&vc.rx));
}

bool vcons_init(const char *name, void (*wake)(void))
{
    vc.name = name;
    if (!vmmio_find(VIRTIO_ID_CONSOLE, &vc.dev)) {
        kprintf("chan: no virtio-console device in the virtio-mmio slots\n");
        return false;
    }
    if (vc.dev.version != 2) {
        kprintf("chan: virtio-console at slot %u is legacy virtio-mmio (version %u); "
                "run QEMU with -global virtio-mmio.force-legacy=false\n",
                vc.dev.slot, vc.dev.version);
        return false;
    }
    if (!vmmio_negotiate(&vc.dev, VIRTIO_CONSOLE_F_MULTIPORT)) {
        kprintf("chan: virtio-console feature negotiation failed\n");
        return false;
    }
    if (!(vc.dev.features & VIRTIO_CONSOLE_F_MULTIPORT)) {
        kprintf("chan: virtio-console without MULTIPORT: named ports unavailable\n");
        vmmio_failed(&vc.dev);
        return false;
    }
    vc.max_ports = vmmio_config32(&vc.dev, 4);     /* cols u16, rows u16, max_nr_ports */
    size_t ctrl_bytes = (size_t)CHAN_CTRL_BUFS * CHAN_CTRL_BUF_SIZE;
    size_t rx_bytes = (size_t)CHAN_RX_BUFS * CHAN_RX_BUF_SIZE;
    vc.ctrl_bufs = page_alloc_n((ctrl_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vc.rx_bufs = page_alloc_n((rx_bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    vc.tx_buf = page_alloc_n((TX_CAP + PAGE_SIZE - 1) / PAGE_SIZE);
    if (!vc.ctrl_bufs || !vc.rx_bufs || !vc.tx_buf) {
        kprintf("chan: out of memory for virtio-console buffers\n");
        vmmio_failed(&vc.dev);
        return false;
    }
    if (!virtq_setup(&vc.crx, &vc.dev, 2, CHAN_VQ_SIZE) ||
        !virtq_setup(&vc.ctx, &vc.dev, 3, CHAN_VQ_SIZE)) {
        kprintf("chan: cannot set up the virtio-console control queues\n");
        vmmio_failed(&vc.dev);
        return false;
    }
    for (u32 i = 0; i < CHAN_CTRL_BUFS && i < vc.crx.size; i++) {
        post_ctrl(vc.ctrl_bufs + (size_t)i * CHAN_CTRL_BUF_SIZE);
        vc.ctrl_posted++;
    }
    vcons_irq_setup(wake);
    vmmio_driver_ok(&vc.dev);
    virtq_kick(&vc.crx);
    kprintf("chan: virtio-console at slot %u (0x%lx), %u ports max\n",
            vc.dev.slot, (unsigned long)vc.dev.base, vc.max_ports);

    if (!vcons_handshake(name)) {
        if (vc.irq)
            vmmio_irq_disable(&vc.dev);
        vc.irq = false;
        return false;
    }
    vc.snap_c = vc.crx.last_used;
    vc.snap_d = vc.rx.last_used;
    vcons_irq_check();
    return true;
}
