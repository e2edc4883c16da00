/* Split virtqueues (virtio 1.x, section 2.6) for the virtio-mmio transport
 * (kernel/drivers/virtq.c).  Polled by default: the driver sets
 * NO_INTERRUPT and reads the used ring itself; virtq_interrupts() lets a
 * queue interrupt.  Every buffer is one descriptor (no chains). */
#ifndef UNIK_VIRTQ_H
#define UNIK_VIRTQ_H
#include "types.h"

struct vmmio_dev;

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2          /* the device writes the buffer */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

struct virtq_avail {
    u16 flags;
    u16 idx;
    u16 ring[];                       /* then u16 used_event (unused) */
};

struct virtq_used_elem {
    u32 id;
    u32 len;
};

struct virtq_used {
    u16 flags;
    u16 idx;
    struct virtq_used_elem ring[];    /* then u16 avail_event (unused) */
};

struct virtq {
    struct vmmio_dev *dev;
    u16 index;                        /* queue number in the device */
    u16 size;                         /* descriptors (a power of 2) */
    u16 num_free;
    u16 free_head;
    u16 avail_idx;                    /* our copy of avail->idx */
    u16 last_used;                    /* used entries consumed */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    void **token;                     /* caller's pointer per descriptor */
    bool *busy;                       /* descriptor owned by the device */
};

/* Allocate rings of min(QueueNumMax, max_size) entries for queue `index`
 * and enable it.  False if the device lacks the queue or memory is short. */
bool virtq_setup(struct virtq *q, struct vmmio_dev *d, u16 index, u16 max_size);
/* Make one buffer available (device_writes: a receive buffer).  Returns the
 * descriptor id, or -1 when the ring is full.  Call virtq_kick() after. */
int virtq_add(struct virtq *q, void *buf, u32 len, bool device_writes, void *token);
void virtq_kick(struct virtq *q);
/* Used-buffer interrupts for q on or off (off after virtq_setup). */
void virtq_interrupts(struct virtq *q, bool on);
/* Used entries not consumed yet. */
u16 virtq_pending(struct virtq *q);
/* The k-th pending used entry, without consuming it: its token and length.
 * False if fewer than k+1 are pending. */
bool virtq_peek(struct virtq *q, u16 k, void **token, u32 *len);
/* Consume the next used entry; false if none. */
bool virtq_pop(struct virtq *q, void **token, u32 *len);
/* Take back a descriptor the device dropped without using it (QEMU can
 * detach a throttled virtio-serial buffer when the host leaves). */
void virtq_reclaim(struct virtq *q, int id);
#endif
