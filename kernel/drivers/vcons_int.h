/* Internal: the virtio-console driver state shared by vcons.c (device
 * setup, the data queues, event order, interrupts) and vcons_ctrl.c (the
 * control queue: the handshake and what each control message means).
 * Everything here runs in the probe-chan thread, except the interrupt
 * handler, which only calls vcons.wake. */
#ifndef UNIK_VCONS_INT_H
#define UNIK_VCONS_INT_H
#include "arch.h"
#include "vcons.h"
#include "virtio_mmio.h"
#include "virtq.h"
#include "tunables.h"

#define VCONS_MAX_PORTS 32           /* ports we track host state for */

/* A control message (virtio 1.x, 5.3.6.2); PORT_NAME's name follows it. */
struct __attribute__((packed)) vcons_ctrl_msg {
    u32 id;
    u16 event;
    u16 value;
};

struct vcons_state {
    struct vmmio_dev dev;
    const char *name;
    u32 max_ports;
    struct virtq crx, ctx;           /* control receive / transmit */
    struct virtq rx, tx;             /* our port's receive / transmit */
    int port;                        /* our port id, -1 until PORT_NAME */
    int queues_port;                 /* port whose data queues are set up, -1 none */
    bool host_open;                  /* host state as reported by vcons_next */
    u8 host_state[VCONS_MAX_PORTS];  /* PORT_OPEN value per port, any port */
    int pending;                     /* event to report first (from the handshake) */
    u32 ctrl_posted;                 /* control receive buffers handed to the device */
    bool resync;                     /* control ring was full: messages may be lost */
    bool resync_wait;                /* PORT_READY re-sent; its PORT_NAME will mark the reply */
    u16 snap_c, snap_d;              /* used indexes of the current snapshot */
    u8 *held;                        /* rx buffer lent to the caller */
    u8 *ctrl_bufs;
    u8 *rx_bufs;
    u8 *tx_bufs;                     /* CHAN_TX_BUFS transmit buffers */
    u32 tx_free;                     /* bit i: tx buffer i is ours (not queued) */
    int tx_desc[CHAN_TX_BUFS];       /* descriptor of each queued tx buffer */
    u64 tx_full_waits;               /* times a reply found the ring full */
    struct vcons_ctrl_msg ctrl_msg;  /* the control message being sent */
    void (*wake)(void);              /* called by the interrupt handler */
    bool irq;                        /* interrupts in use (else polled) */
    struct irq_route route;          /* where they arrive */
};

extern struct vcons_state vcons;     /* vcons.c */

/* vcons.c: set up port id's data queues and post its receive buffers
 * (PORT_NAME of our port).  False if they cannot be. */
bool vcons_setup_port(u32 id);

/* vcons_ctrl.c */
/* Control queues 2/3 set up, every receive buffer posted (not kicked). */
bool vcons_ctrl_setup(void);
/* DEVICE_READY, then control messages until our port is open. */
bool vcons_ctrl_handshake(const char *name);
/* Send one control message; false if the device did not take it. */
bool vcons_ctrl_send(u32 id, u16 event, u16 value);
/* Consume and handle the next control message: an event or NONE. */
int vcons_ctrl_next(void);
/* Ask QEMU to restate our port after control messages were lost. */
void vcons_ctrl_resync(void);
/* Host state change of our port in a control message still in its ring
 * buffer (tok, len bytes as the device reported): 1 connect, 0 disconnect
 * (or removal), -1 none. */
int vcons_ctrl_change(const void *tok, u32 len);
/* The same for the first pending control message; -1 if there is none. */
int vcons_ctrl_first_change(void);
#endif
