/* virtio-mmio transport (version 2): discovery, feature negotiation, status.
 * Queue registers are programmed by virtq_setup() (kernel/drivers/virtq.c). */
#include "virtio_mmio.h"
#include "x86.h"

u32 vmmio_read(struct vmmio_dev *d, u32 reg)
{
    return mmio_read32(d->base + reg);
}

void vmmio_write(struct vmmio_dev *d, u32 reg, u32 v)
{
    mmio_write32(d->base + reg, v);
}

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

static void set_status(struct vmmio_dev *d, u32 bits)
{
    vmmio_write(d, VMMIO_STATUS, vmmio_read(d, VMMIO_STATUS) | bits);
}

void vmmio_failed(struct vmmio_dev *d)
{
    set_status(d, VIRTIO_STATUS_FAILED);
}

bool vmmio_negotiate(struct vmmio_dev *d, u64 want)
{
    vmmio_write(d, VMMIO_STATUS, 0);                 /* reset */
    while (vmmio_read(d, VMMIO_STATUS) != 0)
        cpu_relax();
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    set_status(d, VIRTIO_STATUS_DRIVER);

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
    set_status(d, VIRTIO_STATUS_FEATURES_OK);
    if (!(vmmio_read(d, VMMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        vmmio_failed(d);
        return false;
    }
    d->features = use;
    return true;
}

void vmmio_driver_ok(struct vmmio_dev *d)
{
    set_status(d, VIRTIO_STATUS_DRIVER_OK);
}

void vmmio_notify(struct vmmio_dev *d, u16 queue)
{
    mb();
    vmmio_write(d, VMMIO_QUEUE_NOTIFY, queue);
}

u32 vmmio_config32(struct vmmio_dev *d, u32 off)
{
    u32 gen, v;
    do {
        gen = vmmio_read(d, VMMIO_CONFIG_GENERATION);
        v = mmio_read32(d->base + VMMIO_CONFIG + off);
    } while (gen != vmmio_read(d, VMMIO_CONFIG_GENERATION));
    return v;
}

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
