/* virtio-mmio transport, version 2 only (kernel/drivers/virtio_mmio.c).
 *
 * microvm puts its virtio-mmio slots at VMMIO_BASE + VMMIO_STRIDE * i; the
 * kernel is identity-mapped, so the registers are read at their physical
 * addresses.  Drivers poll, or take the slot's interrupt (virtio_irq.c). */
#ifndef UNIK_VIRTIO_MMIO_H
#define UNIK_VIRTIO_MMIO_H
#include "types.h"
struct irq_route;

#define VMMIO_BASE 0xfeb00000ULL
#define VMMIO_STRIDE 0x200
#define VMMIO_SLOTS 24
#define VMMIO_MAGIC_VALUE 0x74726976   /* "virt" */

/* Registers (virtio 1.x, section 4.2.2). */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_VENDOR_ID 0x00c
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_STATUS 0x060
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_DRIVER_LOW 0x090
#define VMMIO_QUEUE_DRIVER_HIGH 0x094
#define VMMIO_QUEUE_DEVICE_LOW 0x0a0
#define VMMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_F_VERSION_1 (1ULL << 32)

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_NET 1

struct vmmio_dev {
    u64 base;         /* register block */
    u32 slot;         /* index of the slot scanned */
    u32 device_id;
    u32 version;      /* 2 = modern; 1 = legacy (unsupported) */
    u64 features;     /* features negotiated */
};

/* Find the first device with this id (any version: the caller must check
 * d->version == 2, which needs -global virtio-mmio.force-legacy=false). */
bool vmmio_find(u32 device_id, struct vmmio_dev *d);
/* Reset, ACKNOWLEDGE|DRIVER, offer `want` & device features (VERSION_1 is
 * required), FEATURES_OK.  False (device marked FAILED) if refused. */
bool vmmio_negotiate(struct vmmio_dev *d, u64 want);
void vmmio_driver_ok(struct vmmio_dev *d);
void vmmio_failed(struct vmmio_dev *d);
void vmmio_notify(struct vmmio_dev *d, u16 queue);
u32 vmmio_read(struct vmmio_dev *d, u32 reg);
void vmmio_write(struct vmmio_dev *d, u32 reg, u32 v);
/* Device-specific configuration space (offset from VMMIO_CONFIG). */
u32 vmmio_config32(struct vmmio_dev *d, u32 off);
u16 vmmio_config16(struct vmmio_dev *d, u32 off);

/* virtio_irq.c: the slot's interrupt (level-triggered, one line per slot).
 * fn runs in interrupt context with InterruptStatus, already acknowledged. */
#define VMMIO_INT_USED 1                /* InterruptStatus: a used buffer */
#define VMMIO_INT_CONFIG 2              /* InterruptStatus: configuration changed */
typedef void (*vmmio_irq_fn)(void *arg, u32 status);
bool vmmio_irq_enable(struct vmmio_dev *d, vmmio_irq_fn fn, void *arg, struct irq_route *out);
void vmmio_irq_disable(struct vmmio_dev *d);
u64 vmmio_irq_count(struct vmmio_dev *d);   /* interrupts handled so far */

#endif
