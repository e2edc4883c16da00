/* virtio-console control queue (queues 2/3): the handshake that finds our
 * named port, and what each control message QEMU sends means for it (host
 * connects and disconnects, port removal, a restated port after lost
 * messages).  vcons.c owns the data queues and the order of events; see
 * vcons.h. */
#include "vcons_int.h"
#include "flight.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

/* Hand control receive buffer buf to the device (the caller kicks).
 * Called by vcons_ctrl_setup and, to repost, vcons_ctrl_next. */
static void vcons_ctrl_post(u8 *buf)
{
    virtq_add(&vcons.crx, buf, CHAN_CTRL_BUF_SIZE, true, buf);
}

/* Set up the control queues and post every control receive buffer; the
 * kick follows DRIVER_OK.  False if the device refuses a queue.  Called by
 * vcons_init. */
bool vcons_ctrl_setup(void)
{
    if (!virtq_setup(&vcons.crx, &vcons.dev, 2, CHAN_VQ_SIZE) ||
        !virtq_setup(&vcons.ctx, &vcons.dev, 3, CHAN_VQ_SIZE))
        return false;
    for (u32 i = 0; i < CHAN_CTRL_BUFS && i < vcons.crx.size; i++) {
        vcons_ctrl_post(vcons.ctrl_bufs + (size_t)i * CHAN_CTRL_BUF_SIZE);
        vcons.ctrl_posted++;
    }
    return true;
}

/* Send one control message and wait for the device to take it (QEMU handles
 * the control queue synchronously on the notify).  Called for PORT_READY
 * and PORT_OPEN replies, the handshake and resyncs. */
bool vcons_ctrl_send(u32 id, u16 event, u16 value)
{
    vcons.ctrl_msg.id = id;
    vcons.ctrl_msg.event = event;
    vcons.ctrl_msg.value = value;
    int d = virtq_add(&vcons.ctx, &vcons.ctrl_msg, sizeof(vcons.ctrl_msg), false,
                      &vcons.ctrl_msg);
    if (d < 0)
        return false;
    virtq_kick(&vcons.ctx);
    for (u32 spin = 0; spin < 1000000; spin++) {
        if (virtq_pop(&vcons.ctx, NULL, NULL))
            return true;
        cpu_relax();
    }
    virtq_reclaim(&vcons.ctx, d);
    kprintf("chan: control message %u for port %u not taken by the device\n", event, id);
    return false;
}

/* Host state change of our port in control message tok (len bytes as the
 * device reported, at most a buffer's worth is read): 1 connect, 0
 * disconnect (or removal), -1 none.  Reads pending messages without
 * consuming them: vcons.c's ordering checks and vcons_ctrl_restated. */
int vcons_ctrl_change(const void *tok, u32 len)
{
    struct vcons_ctrl_msg m;
    len = MIN(len, (u32)CHAN_CTRL_BUF_SIZE);
    if (vcons.port < 0 || len < sizeof(m))
        return -1;
    memcpy(&m, tok, sizeof(m));
    if (m.id != (u32)vcons.port)
        return -1;
    if (m.event == VCONS_PORT_OPEN)
        return m.value ? 1 : 0;
    if (m.event == VCONS_DEVICE_REMOVE)
        return 0;
    return -1;
}

/* vcons_ctrl_change of the first pending control message; -1 if none is
 * pending.  Called by vcons_take_ctrl (vcons.c) and vcons_ctrl_restated. */
int vcons_ctrl_first_change(void)
{
    void *tok;
    u32 len;
    if (!virtq_peek(&vcons.crx, 0, &tok, &len))
        return -1;
    return vcons_ctrl_change(tok, len);
}

/* Our port's host is now open (or not): the event to report if that
 * changes what vcons_next last said, else NONE.  Called by the message
 * handlers below. */
static int vcons_ctrl_host(bool open)
{
    if (open == vcons.host_open)
        return VCONS_EV_NONE;
    vcons.host_open = open;
    flight_record(FLIGHT_CHAN_CONNECT, open, 0, 0);
    return open ? VCONS_EV_OPEN : VCONS_EV_CLOSE;
}

/* DEVICE_REMOVE of port m->id (ours: the port and its host are gone).
 * Called by vcons_ctrl_handle. */
static int vcons_ctrl_removed(const struct vcons_ctrl_msg *m, bool ours)
{
    if (m->id < VCONS_MAX_PORTS)
        vcons.host_state[m->id] = 0;
    if (!ours)
        return VCONS_EV_NONE;
    kprintf("chan: port %u removed by the host\n", m->id);
    vcons.port = -1;
    return vcons_ctrl_host(false);
}

/* PORT_NAME of our port while a resync waits: QEMU's answer to the
 * PORT_READY of vcons_ctrl_resync.  QEMU follows it with PORT_OPEN(1) only
 * if a host client is connected: no PORT_OPEN(1) right after it means the
 * host is gone.  Called by vcons_ctrl_handle. */
static int vcons_ctrl_restated(void)
{
    vcons.resync_wait = false;
    if (vcons_ctrl_first_change() == 1 || !vcons.host_open)
        return VCONS_EV_NONE;
    kprintf("chan: control messages were lost; the host has left\n");
    return vcons_ctrl_host(false);
}

/* Is name (n bytes from PORT_NAME) the name of the port we want?  QEMU
 * NUL-terminates it; accept it without as well.  Called by
 * vcons_ctrl_named. */
static bool vcons_ctrl_name_is_ours(const char *name, u32 n)
{
    u32 want = (u32)strlen(vcons.name);
    return n >= want && memcmp(name, vcons.name, want) == 0 &&
           (n == want || name[want] == '\0');
}

/* PORT_NAME of port m->id: if it is the port we want and we have none yet,
 * set up its data queues, open the guest side, and report the host if it
 * is already there.  Called by vcons_ctrl_handle. */
static int vcons_ctrl_named(const struct vcons_ctrl_msg *m, const char *name, u32 n)
{
    if (vcons.port >= 0 || !vcons_ctrl_name_is_ours(name, n))
        return VCONS_EV_NONE;
    if (!vcons_setup_port(m->id))
        return VCONS_EV_NONE;
    vcons.port = (int)m->id;
    vcons_ctrl_send(m->id, VCONS_PORT_OPEN, 1);     /* the guest side is open */
    if (m->id < VCONS_MAX_PORTS && vcons.host_state[m->id])
        return vcons_ctrl_host(true);
    return VCONS_EV_NONE;
}

/* PORT_OPEN of port m->id: a host client connected (value 1) or left (0).
 * Called by vcons_ctrl_handle. */
static int vcons_ctrl_opened(const struct vcons_ctrl_msg *m, bool ours)
{
    if (m->id < VCONS_MAX_PORTS)
        vcons.host_state[m->id] = m->value ? 1 : 0;
    if (!ours)
        return VCONS_EV_NONE;
    return vcons_ctrl_host(m->value != 0);
}

/* Handle one control message (copied out of its buffer); returns an event
 * for our port or NONE.  Called by vcons_ctrl_next. */
static int vcons_ctrl_handle(const u8 *buf, u32 len)
{
    struct vcons_ctrl_msg m;
    if (len < sizeof(m))
        return VCONS_EV_NONE;
    memcpy(&m, buf, sizeof(m));
    bool ours = vcons.port >= 0 && m.id == (u32)vcons.port;
    switch (m.event) {
    case VCONS_DEVICE_ADD:
        if (m.value && m.id < vcons.max_ports)
            vcons_ctrl_send(m.id, VCONS_PORT_READY, 1);
        return VCONS_EV_NONE;
    case VCONS_DEVICE_REMOVE:
        return vcons_ctrl_removed(&m, ours);
    case VCONS_PORT_NAME:
        if (ours && vcons.resync_wait)
            return vcons_ctrl_restated();
        return vcons_ctrl_named(&m, (const char *)buf + sizeof(m), len - sizeof(m));
    case VCONS_PORT_OPEN:
        return vcons_ctrl_opened(&m, ours);
    default:                                      /* CONSOLE_PORT, RESIZE */
        return VCONS_EV_NONE;
    }
}

/* Consume one control message: copy it out, repost its buffer at once,
 * then handle it.  An event for our port or NONE (also when none was
 * pending).  Called by vcons_take_ctrl (vcons.c) and the handshake. */
int vcons_ctrl_next(void)
{
    void *tok;
    u32 len;
    if (!virtq_pop(&vcons.crx, &tok, &len))
        return VCONS_EV_NONE;
    u8 msg[CHAN_CTRL_BUF_SIZE];
    len = MIN(len, (u32)CHAN_CTRL_BUF_SIZE);
    memcpy(msg, tok, len);
    vcons_ctrl_post(tok);
    virtq_kick(&vcons.crx);
    return vcons_ctrl_handle(msg, len);
}

/* The control ring was full, so QEMU may have dropped messages: ask it to
 * restate our port (PORT_READY; it answers PORT_NAME [+ PORT_OPEN 1], read
 * by vcons_ctrl_restated).  Called by vcons_snapshot (vcons.c). */
void vcons_ctrl_resync(void)
{
    vcons.resync = false;
    vcons.resync_wait = true;
    kprintf("chan: control queue was full; asking QEMU to restate port %d\n", vcons.port);
    vcons_ctrl_send((u32)vcons.port, VCONS_PORT_READY, 1);
}

/* DEVICE_READY -> DEVICE_ADD per port -> PORT_READY -> PORT_NAME (and
 * PORT_OPEN if a host client is there) -> PORT_OPEN(1) from us, until our
 * port is open or CHAN_HANDSHAKE_MS passed.  Waits on the interrupt when
 * there is one.  Called by vcons_init once the device is live. */
bool vcons_ctrl_handshake(const char *name)
{
    if (!vcons_ctrl_send(0, VCONS_DEVICE_READY, 1))
        return false;
    u64 deadline = time_ns() + (u64)CHAN_HANDSHAKE_MS * 1000000;
    while (vcons.port < 0) {
        if (virtq_pending(&vcons.crx)) {
            int e = vcons_ctrl_next();
            if (e != VCONS_EV_NONE)
                vcons.pending = e;
            continue;
        }
        if (time_ns() > deadline) {
            kprintf("chan: no virtio-console port named %s\n", name);
            return false;
        }
        if (vcons.irq)
            thread_block("chan-init", CHAN_SLEEP_MS);
        else
            thread_sleep_ms(CHAN_SLEEP_MS, "chan-init");
    }
    return true;
}
