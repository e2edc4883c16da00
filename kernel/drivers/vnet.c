/* The virtio-net driver (netdev.h): one device on the virtio-mmio
 * transport (version 2), sharing virtio_mmio.c, virtq.c and virtio_irq.c
 * with the console driver.  Queue 0 receives, queue 1 transmits; no
 * offloads, no mergeable buffers, so every frame is one buffer behind the
 * 12-byte virtio_net_hdr (VERSION_1 always has num_buffers).
 *
 * Receive: NET_RX_BUFS buffers stay posted; the interrupt handler hands
 * each frame to the receiver and posts the buffer again at once.
 * Transmit: NET_TX_BUFS buffers in a ring; netdev_send copies the frame
 * into a free one and queues it; the completion interrupt (or the next
 * send) takes used ones back.  A full ring is a counted drop, never a wait
 * (netdev_tx_room lets a sender wait for room instead).
 * Everything runs with interrupts off (single CPU).
 *
 * Without a routable interrupt the driver polls from a service thread.
 * Called by kmain (netdev_init) and the TCP/IP stack's netif (net/). */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "netdev.h"
#include "sync.h"
#include "thread.h"
#include "tunables.h"
#include "virtio_mmio.h"
#include "virtq.h"
#include "x86.h"

#define VNET_F_MAC (1ULL << 5)          /* config has the MAC */
#define VNET_F_STATUS (1ULL << 16)      /* config has the link status */
#define VNET_S_LINK_UP 1
#define VNET_CFG_MAC 0                  /* config: mac[6] */
#define VNET_CFG_STATUS 6               /* config: u16 status */
#define VNET_RXQ 0
#define VNET_TXQ 1

/* The header before every frame (virtio 1.x, 5.1.6); all zero: no
 * checksum or segmentation offload. */
struct __attribute__((packed)) vnet_hdr {
    u8 flags;
    u8 gso_type;
    u16 hdr_len;
    u16 gso_size;
    u16 csum_start;
    u16 csum_offset;
    u16 num_buffers;
};

#define VNET_HDR_LEN ((u32)sizeof(struct vnet_hdr))

/* The device's state: one instance, read by tests through DWARF
 * (vnet.stats). */
struct vnet_state {
    struct vmmio_dev dev;
    bool present;
    bool irq;                          /* interrupts routed (else polled) */
    struct irq_route route;
    struct virtq rx, tx;
    u8 mac[6];
    u8 *rx_bufs;                       /* NET_RX_BUFS * NET_BUF_SIZE */
    u8 *tx_bufs;                       /* NET_TX_BUFS * NET_BUF_SIZE */
    u64 tx_free;                       /* bit i: tx buffer i is ours */
    struct waitq tx_wait;              /* senders waiting for a free tx buffer */
    netdev_rx_fn rx_fn;
    void *rx_arg;
    struct netdev_stats stats;
};

struct vnet_state vnet;

/* Post receive buffer buf again (interrupts off; the caller kicks).
 * Called at init and by vnet_rx after each frame. */
static void vnet_post_rx(u8 *buf)
{
    if (virtq_add(&vnet.rx, buf, NET_BUF_SIZE, true, buf) < 0)
        panic("vnet: receive ring full reposting a buffer");
}

/* One received buffer of len bytes (header included): count it, hand the
 * frame to the receiver.  Interrupts off.  Called by vnet_rx. */
static void vnet_deliver(const u8 *buf, u32 len)
{
    struct netdev_stats *s = &vnet.stats;
    if (len < VNET_HDR_LEN + 14 || len > VNET_HDR_LEN + NETDEV_FRAME_MAX) {
        s->rx_drop_bad++;
        return;
    }
    u32 n = len - VNET_HDR_LEN;
    s->rx_packets++;
    s->rx_bytes += n;
    if (!vnet.rx_fn) {
        s->rx_drop_nobuf++;
        return;
    }
    vnet.rx_fn(vnet.rx_arg, buf + VNET_HDR_LEN, n);
}

/* Drain the receive queue: deliver each frame, repost its buffer, kick
 * once.  Interrupts off.  Called by the interrupt handler and the poller. */
static void vnet_rx(void)
{
    void *tok;
    u32 len, n = 0;
    while (virtq_pop(&vnet.rx, &tok, &len)) {
        vnet_deliver(tok, len);
        vnet_post_rx(tok);
        n++;
    }
    if (n)
        virtq_kick(&vnet.rx);
}

/* Take back the transmit buffers the device is done with (interrupts
 * off).  Called by the interrupt handler, the poller and netdev_send. */
static void vnet_tx_reclaim(void)
{
    void *tok;
    while (virtq_pop(&vnet.tx, &tok, NULL)) {
        u32 i = (u32)(((u8 *)tok - vnet.tx_bufs) / NET_BUF_SIZE);
        vnet.tx_free |= 1ull << i;
    }
}

/* The device interrupted (status acknowledged): frames received,
 * transmissions completed or the link changed. */
static void vnet_irq(void *arg, u32 status)
{
    (void)arg;
    (void)status;
    vnet.stats.irqs++;
    vnet_rx();
    vnet_tx_reclaim();
    if (vnet.tx_free && vnet.tx_wait.head)
        waitq_wake_all(&vnet.tx_wait);
}

/* Polling fallback: a service thread doing the interrupt's work every
 * NET_POLL_MS.  Spawned by netdev_init when no interrupt can be routed. */
static void vnet_poll_main(void *arg)
{
    (void)arg;
    for (;;) {
        u64 f = irq_save();
        vnet_rx();
        vnet_tx_reclaim();
        if (vnet.tx_free && vnet.tx_wait.head)
            waitq_wake_all(&vnet.tx_wait);
        irq_restore(f);
        thread_sleep_ms(NET_POLL_MS, "vnet-poll");
    }
}

/* Queue one frame (see netdev.h): copied behind a zero header into a
 * free transmit buffer.  False, counted, when too long, empty, or the
 * ring is full.  Any context. */
bool netdev_send(const void *frame, u32 len)
{
    if (!vnet.present)
        return false;
    u64 f = irq_save();
    bool ok = false;
    if (len == 0 || len > NETDEV_FRAME_MAX) {
        vnet.stats.tx_drop_bad++;
        goto out;
    }
    vnet_tx_reclaim();
    if (!vnet.tx_free) {
        vnet.stats.tx_drop_ring++;
        goto out;
    }
    u32 i = (u32)__builtin_ctzll(vnet.tx_free);
    u8 *buf = vnet.tx_bufs + (u64)i * NET_BUF_SIZE;
    memset(buf, 0, VNET_HDR_LEN);
    memcpy(buf + VNET_HDR_LEN, frame, len);
    if (virtq_add(&vnet.tx, buf, VNET_HDR_LEN + len, false, buf) < 0) {
        vnet.stats.tx_drop_ring++;
        goto out;
    }
    vnet.tx_free &= ~(1ull << i);
    vnet.stats.tx_packets++;
    vnet.stats.tx_bytes += len;
    virtq_kick(&vnet.tx);
    ok = true;
out:
    irq_restore(f);
    return ok;
}

/* Free transmit buffers after taking back the used ones, waiting up to
 * wait_ms for one when there are none (see netdev.h; vnet_irq wakes the
 * waiter).  Called by the netif's linkoutput before it sends. */
u32 netdev_tx_room(u32 wait_ms)
{
    if (!vnet.present)
        return 0;
    u64 f = irq_save();
    vnet_tx_reclaim();
    if (!vnet.tx_free && wait_ms) {
        waitq_wait(&vnet.tx_wait, "vnet-txroom", wait_ms);
        vnet_tx_reclaim();
    }
    u32 n = 0;
    for (u64 m = vnet.tx_free; m; m &= m - 1)   /* no popcnt: the CPU may lack it */
        n++;
    irq_restore(f);
    return n;
}

/* Find the device, check it is modern and negotiate MAC and STATUS.
 * False (with a log line) when there is no usable device.  Called by
 * netdev_init. */
static bool vnet_probe(void)
{
    if (!vmmio_find(VIRTIO_ID_NET, &vnet.dev)) {
        kprintf("net: no virtio-net device\n");
        return false;
    }
    if (vnet.dev.version != 2) {
        kprintf("net: virtio-net at slot %u is legacy virtio-mmio (version %u); "
                "run QEMU with -global virtio-mmio.force-legacy=false\n",
                vnet.dev.slot, vnet.dev.version);
        return false;
    }
    if (!vmmio_negotiate(&vnet.dev, VNET_F_MAC | VNET_F_STATUS)) {
        kprintf("net: virtio-net feature negotiation failed\n");
        return false;
    }
    return true;
}

/* Queues and buffers: both queues set up, every receive buffer posted,
 * every transmit buffer free.  False (device FAILED) if they cannot be.
 * Called by netdev_init. */
static bool vnet_setup(void)
{
    vnet.rx_bufs = page_alloc_n((NET_RX_BUFS * NET_BUF_SIZE + PAGE_SIZE - 1) / PAGE_SIZE);
    vnet.tx_bufs = page_alloc_n((NET_TX_BUFS * NET_BUF_SIZE + PAGE_SIZE - 1) / PAGE_SIZE);
    if (!vnet.rx_bufs || !vnet.tx_bufs ||
        !virtq_setup(&vnet.rx, &vnet.dev, VNET_RXQ, NET_VQ_SIZE) ||
        !virtq_setup(&vnet.tx, &vnet.dev, VNET_TXQ, NET_VQ_SIZE) ||
        vnet.rx.size < NET_RX_BUFS || vnet.tx.size < NET_TX_BUFS) {
        kprintf("net: cannot set up the virtio-net queues and buffers\n");
        vmmio_failed(&vnet.dev);
        return false;
    }
    for (u32 i = 0; i < NET_RX_BUFS; i++)
        vnet_post_rx(vnet.rx_bufs + (u64)i * NET_BUF_SIZE);
    vnet.tx_free = NET_TX_BUFS == 64 ? ~0ull : (1ull << NET_TX_BUFS) - 1;
    return true;
}

/* The MAC from the configuration space (6 bytes at offset 0). */
static void vnet_read_mac(void)
{
    u32 lo = vmmio_config32(&vnet.dev, VNET_CFG_MAC);
    u16 hi = vmmio_config16(&vnet.dev, VNET_CFG_MAC + 4);
    for (u32 i = 0; i < 4; i++)
        vnet.mac[i] = (u8)(lo >> (8 * i));
    vnet.mac[4] = (u8)hi;
    vnet.mac[5] = (u8)(hi >> 8);
}

/* Route the interrupt and ask for used-buffer interrupts on both queues;
 * else start the poller.  Called by netdev_init. */
static void vnet_irq_setup(void)
{
    vnet.irq = vmmio_irq_enable(&vnet.dev, vnet_irq, NULL, &vnet.route);
    virtq_interrupts(&vnet.rx, vnet.irq);
    virtq_interrupts(&vnet.tx, vnet.irq);
    if (!vnet.irq && !thread_spawn("vnet-poll", vnet_poll_main, NULL, THREAD_F_SERVICE, 0))
        panic("vnet: cannot spawn the polling thread");
}

/* Find and start the device (see netdev.h).  Called once by kmain. */
bool netdev_init(void)
{
    if (!vnet_probe())
        return false;
    waitq_init(&vnet.tx_wait, "vnet-tx");
    if (!vnet_setup())
        return false;
    if (vnet.dev.features & VNET_F_MAC)
        vnet_read_mac();
    else
        memcpy(vnet.mac, (u8[6]){0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 6);
    vnet_irq_setup();
    vmmio_driver_ok(&vnet.dev);
    virtq_kick(&vnet.rx);
    vnet.present = true;                /* netdev_send and netdev_link_up work from here */
    const u8 *m = vnet.mac;
    kprintf("net: virtio-net at slot %u, mac %02x:%02x:%02x:%02x:%02x:%02x, link %s, %s\n",
            vnet.dev.slot, m[0], m[1], m[2], m[3], m[4], m[5],
            netdev_link_up() ? "up" : "down",
            vnet.irq ? "interrupts" : "polling");
    return true;
}

bool netdev_present(void)
{
    return vnet.present;
}

void netdev_mac(u8 mac[6])
{
    memcpy(mac, vnet.mac, 6);
}

/* Link up: the STATUS bit when negotiated, else up whenever present. */
bool netdev_link_up(void)
{
    if (!vnet.present)
        return false;
    if (!(vnet.dev.features & VNET_F_STATUS))
        return true;
    return vmmio_config16(&vnet.dev, VNET_CFG_STATUS) & VNET_S_LINK_UP;
}

/* Register the receiver (interrupt context, see netdev.h); NULL to stop
 * receiving (frames are then counted in rx_drop_nobuf). */
void netdev_set_rx(netdev_rx_fn fn, void *arg)
{
    u64 f = irq_save();
    vnet.rx_fn = fn;
    vnet.rx_arg = arg;
    irq_restore(f);
}

/* A consistent copy of the counters. */
void netdev_get_stats(struct netdev_stats *out)
{
    u64 f = irq_save();
    *out = vnet.stats;
    irq_restore(f);
}
