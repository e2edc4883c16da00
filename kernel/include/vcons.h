/* virtio-console (virtio-serial) with VIRTIO_CONSOLE_F_MULTIPORT, one named
 * port, interrupt-driven or polled (kernel/drivers/vcons.c; the control
 * queue in vcons_ctrl.c).
 *
 * Queues: 2/3 control rx/tx; port n uses 2(n+1) rx and 2(n+1)+1 tx.  The
 * port is found by the PORT_NAME control message, not by assuming its nr.
 * Control receive buffers stay posted at all times, so QEMU can report host
 * clients connecting (PORT_OPEN 1) and leaving (PORT_OPEN 0).
 *
 * Ordering: data and control arrive on different queues, with nothing that
 * orders one against the other.  vcons_next() takes a snapshot of the
 * control ring, then of the data ring (so data QEMU pushed before a control
 * message seen is in the snapshot), and reports a host connect before the
 * pending data and a host disconnect after it.  A disconnect followed by a
 * reconnect within one snapshot cannot be ordered against the data: the
 * data is then given to the new connection (right when the old client had
 * read its replies before leaving).  Hosts that reconnect must therefore
 * leave the channel time to see the disconnect (with interrupts, the
 * thread's wakeup; when polling, a few CHAN_SLEEP_MS intervals) between
 * closing and sending on the next connection for exact statistics. */
#ifndef UNIK_VCONS_H
#define UNIK_VCONS_H
#include "types.h"

/* virtio-console control events (virtio 1.x, 5.3.6.2). */
#define VCONS_DEVICE_READY 0
#define VCONS_DEVICE_ADD 1
#define VCONS_DEVICE_REMOVE 2
#define VCONS_PORT_READY 3
#define VCONS_CONSOLE_PORT 4
#define VCONS_RESIZE 5
#define VCONS_PORT_OPEN 6
#define VCONS_PORT_NAME 7
#define VIRTIO_CONSOLE_F_MULTIPORT (1ULL << 1)

enum vcons_ev_kind {
    VCONS_EV_NONE = 0,       /* nothing to do */
    VCONS_EV_OPEN,           /* a host client connected */
    VCONS_EV_CLOSE,          /* the host client left */
    VCONS_EV_DATA,           /* bytes received: data, len */
};

struct vcons_ev {
    int kind;
    const u8 *data;          /* valid until the next vcons_next() */
    u32 len;
};

/* Find the device, negotiate, do the control handshake until the port named
 * `name` is open on the guest side.  False (and a log line) on failure.
 * With wake (not NULL), the device's interrupt is used if it can be routed
 * and fires: wake() is then called in interrupt context whenever a control
 * or data buffer arrives; the log says which mode is active. */
bool vcons_init(const char *name, void (*wake)(void));
/* Does wake() come when there is work (else the caller polls)? */
bool vcons_irq_on(void);
/* Is an event waiting (vcons_next would not say NONE)?  Checked with
 * interrupts off before blocking, so no wakeup is lost. */
bool vcons_pending(void);
/* The next event, in arrival order; VCONS_EV_NONE when idle. */
int vcons_next(struct vcons_ev *ev);
/* Transmit ring (CHAN_TX_BUFS buffers of CHAN_TX_BUF_SIZE bytes): a frame
 * is built in a free buffer and queued; the device returns the buffer
 * when it has the bytes (at once under TCG, later when the host reads
 * slowly).  Buffers are reclaimed on the next get or put, and a reply
 * waiting for a full ring is woken by the transmit-completion interrupt.
 * Frames go out in the order they were queued.
 *
 * A free buffer (cap bytes), or NULL when the ring is full; the same one
 * until it is queued.  For stream frames, dropped when the ring is full. */
u8 *vcons_tx_get(u32 *cap);
/* A free buffer, waiting for the ring to drain (or the host to leave,
 * which resets it).  For replies. */
u8 *vcons_tx_wait(u32 *cap);
/* Queue len bytes of buffer buf.  False (buffer still free) when no host
 * is connected: the caller counts the frame as dropped. */
bool vcons_tx_put(u8 *buf, u32 len);
/* Is a host client connected now (counting control messages not yet
 * returned by vcons_next)? */
bool vcons_host_connected(void);
/* Our port id (-1 before the handshake). */
int vcons_port_id(void);
#endif
