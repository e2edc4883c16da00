/* virtio-mmio transport (version 2): discovery, feature negotiation, status.
 * Queue registers are programmed by virtq_setup() (kernel/drivers/virtq.c). */
#include "virtio_mmio.h"
#include "x86.h"

/* Read register reg of d.  Called by the transport, virtq.c and
 * virtio_irq.c. */
u32 vmmio_read(struct vmmio_dev *d, u32 reg)
{
    return mmio_read32(d->base + reg);
}

/* Write v to register reg of d.  Called as vmmio_read is. */
void vmmio_write(struct vmmio_dev *d, u32 reg, u32 v)
{
    mmio_write32(d->base + reg, v);
}

/* Scan the slots for the first device with this id; fills *d.  Called by
 * the drivers' init (vcons.c, vnet.c). */
bool vmmio_find(u32 device_id, struct vmmio_dev *d)
{
    for (u32 i = 0; i < VMMIO_SLOTS; i++) {
        u64 base = VMMIO_BASE + (u64)VMMIO_STRIDE * i;
        if (mmio_read32(base + VMMIO_MAGIC) != VMMIO_MAGIC_VALUE)
            continue;
        if (mmio_read32(base + VMMIO_DEVICE_ID) != device_id)
            continue;                   /* 0 = empty slot */
        d->base = base;
        d->version = mmio_read32(base + VMMIO_VERSION);
        d->slot = i;
        d->device_id = device_id;
        d->features = 0;
        return true;
    }
    return false;
}

/* Add status bits (the device status only grows until a reset).  Called
 * by vmmio_failed, vmmio_negotiate and vmmio_driver_ok. */
static void vmmio_set_status(struct vmmio_dev *d, u32 bits)
{
    vmmio_write(d, VMMIO_STATUS, vmmio_read(d, VMMIO_STATUS) | bits);
}

/* Mark d FAILED: the driver gives up on it.  Called by vmmio_negotiate
 * and the drivers. */
void vmmio_failed(struct vmmio_dev *d)
{
    vmmio_set_status(d, VIRTIO_STATUS_FAILED);
}

/* Reset d, then ACKNOWLEDGE, DRIVER, features (want & offered, VERSION_1
 * required), FEATURES_OK; d->features is what was agreed.  False (d marked
 * FAILED) if the device refuses.  Called by the drivers' init. */
bool vmmio_negotiate(struct vmmio_dev *d, u64 want)
{
    vmmio_write(d, VMMIO_STATUS, 0);                 /* reset */
    while (vmmio_read(d, VMMIO_STATUS) != 0)
        cpu_relax();
    vmmio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    vmmio_set_status(d, VIRTIO_STATUS_DRIVER);

    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 0);
    u64 dev = vmmio_read(d, VMMIO_DEVICE_FEATURES);
    vmmio_write(d, VMMIO_DEVICE_FEATURES_SEL, 1);
    dev |= (u64)vmmio_read(d, VMMIO_DEVICE_FEATURES) << 32;

    u64 use = dev & (want | VIRTIO_F_VERSION_1);
    if (!(use & VIRTIO_F_VERSION_1)) {
        vmmio_failed(d);
        return false;
    }
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 0);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (u32)use);
    vmmio_write(d, VMMIO_DRIVER_FEATURES_SEL, 1);
    vmmio_write(d, VMMIO_DRIVER_FEATURES, (u32)(use >> 32));
    vmmio_set_status(d, VIRTIO_STATUS_FEATURES_OK);
    if (!(vmmio_read(d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        vmmio_failed(d);
        return false;
    }
    d->features = use;
    return true;
}

/* DRIVER_OK: the device is live.  Called by the drivers' init once its
 * first queues are set up (vcons.c: the control queues). */
void vmmio_driver_ok(struct vmmio_dev *d)
{
    vmmio_set_status(d, VIRTIO_STATUS_DRIVER_OK);
}

/* Notify d of new buffers on queue `queue`.  Called by virtq_kick. */
void vmmio_notify(struct vmmio_dev *d, u16 queue)
{
    mb();
    vmmio_write(d, VMMIO_QUEUE_NOTIFY, queue);
}

/* A 32-bit field at off in the device configuration, read consistently
 * (retried while the config generation changes).  Called by the drivers. */
u32 vmmio_config32(struct vmmio_dev *d, u32 off)
{
    u32 gen, v;
    do {
        gen = vmmio_read(d, VMMIO_CONFIG_GENERATION);
        v = mmio_read32(d->base + VMMIO_CONFIG + off);
    } while (gen != vmmio_read(d, VMMIO_CONFIG_GENERATION));
    return v;
}

/* The same for a 16-bit field. */
u16 vmmio_config16(struct vmmio_dev *d, u32 off)
{
    u32 gen;
    u16 v;
    do {
        gen = vmmio_read(d, VMMIO_CONFIG_GENERATION);
        v = *(volatile u16 *)(d->base + VMMIO_CONFIG + off);
    } while (gen != vmmio_read(d, VMMIO_CONFIG_GENERATION));
    return v;
}
