/* Split virtqueues over virtio-mmio: polled, or with used-buffer
 * interrupts (virtq_interrupts). */
#include "virtq.h"
#include "virtio_mmio.h"
#include "mm.h"
#include "lib.h"
#include "x86.h"

#define RD16(p) (*(volatile u16 *)&(p))
#define WR16(p, v) (*(volatile u16 *)&(p) = (v))

/* Allocate and lay out the rings of an n-entry queue (n a power of 2):
 * desc | avail (+used_event) | used (+avail_event) | tokens | busy, every
 * descriptor free.  False if memory is short (q untouched).  Called by
 * virtq_setup. */
static bool virtq_alloc(struct virtq *q, u32 n)
{
    size_t off_avail = 16 * n;
    size_t off_used = ALIGN_UP(off_avail + 6 + 2 * n, 4);
    size_t off_tok = ALIGN_UP(off_used + 6 + 8 * n, 8);
    size_t off_busy = off_tok + 8 * n;
    size_t bytes = off_busy + n;
    size_t pages = (bytes + PAGE_SIZE - 1) / PAGE_SIZE;
    u8 *mem = page_alloc_n(pages);                  /* zeroed */
    if (!mem)
        return false;

    q->size = (u16)n;
    q->desc = (struct virtq_desc *)mem;
    q->avail = (struct virtq_avail *)(mem + off_avail);
    q->used = (struct virtq_used *)(mem + off_used);
    q->token = (void **)(mem + off_tok);
    q->busy = (bool *)(mem + off_busy);
    for (u32 i = 0; i < n; i++)
        q->desc[i].next = (u16)(i + 1);
    q->free_head = 0;
    q->num_free = (u16)n;
    q->avail_idx = 0;
    q->last_used = 0;
    q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
    return true;
}

/* Tell the device (queue already selected) where q's rings are and
 * enable the queue.  Called by virtq_setup. */
static void virtq_enable(struct virtq *q)
{
    struct vmmio_dev *d = q->dev;
    u64 da = (u64)(uintptr_t)q->desc, aa = (u64)(uintptr_t)q->avail,
        ua = (u64)(uintptr_t)q->used;   /* identity-mapped: physical = virtual */
    vmmio_write(d, VMMIO_QUEUE_NUM, q->size);
    vmmio_write(d, VMMIO_QUEUE_DESC_LOW, (u32)da);
    vmmio_write(d, VMMIO_QUEUE_DESC_HIGH, (u32)(da >> 32));
    vmmio_write(d, VMMIO_QUEUE_DRIVER_LOW, (u32)aa);
    vmmio_write(d, VMMIO_QUEUE_DRIVER_HIGH, (u32)(aa >> 32));
    vmmio_write(d, VMMIO_QUEUE_DEVICE_LOW, (u32)ua);
    vmmio_write(d, VMMIO_QUEUE_DEVICE_HIGH, (u32)(ua >> 32));
    mb();
    vmmio_write(d, VMMIO_QUEUE_READY, 1);
}

/* Set up queue `index` of device d with min(QueueNumMax, max_size)
 * entries (rounded down to a power of 2).  False if the queue is in use,
 * missing, or memory is short.  Called by the drivers (vcons.c, vnet.c). */
bool virtq_setup(struct virtq *q, struct vmmio_dev *d, u16 index, u16 max_size)
{
    vmmio_write(d, VMMIO_QUEUE_SEL, index);
    if (vmmio_read(d, VMMIO_QUEUE_READY))
        return false;                               /* already in use */
    u32 max = vmmio_read(d, VMMIO_QUEUE_NUM_MAX);
    if (max == 0)
        return false;                               /* no such queue */
    u32 n = 1;
    while (n * 2 <= MIN(max, (u32)max_size))
        n *= 2;
    if (!virtq_alloc(q, n))
        return false;
    q->dev = d;
    q->index = index;
    virtq_enable(q);
    return true;
}

/* Make buf available to the device; its descriptor id, or -1 when the
 * ring is full.  The caller kicks.  Called by the drivers. */
int virtq_add(struct virtq *q, void *buf, u32 len, bool device_writes, void *token)
{
    if (q->num_free == 0)
        return -1;
    u16 id = q->free_head;
    struct virtq_desc *dsc = &q->desc[id];
    q->free_head = dsc->next;
    q->num_free--;
    dsc->addr = (u64)(uintptr_t)buf;
    dsc->len = len;
    dsc->flags = device_writes ? VIRTQ_DESC_F_WRITE : 0;
    dsc->next = 0;
    q->token[id] = token;
    q->busy[id] = true;
    q->avail->ring[q->avail_idx & (q->size - 1)] = id;
    wmb();                                  /* ring entry before the index */
    q->avail_idx++;
    WR16(q->avail->idx, q->avail_idx);
    return id;
}

/* Ask the device to interrupt on used buffers of q (on), or not (the
 * default: NO_INTERRUPT, polled).  A hint the device reads after each use;
 * vcons.c turns it on for the queues it receives on. */
void virtq_interrupts(struct virtq *q, bool on)
{
    WR16(q->avail->flags, on ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT);
    mb();
}

/* Tell the device that buffers were made available on q.  Called by the
 * drivers after virtq_add. */
void virtq_kick(struct virtq *q)
{
    vmmio_notify(q->dev, q->index);
}

/* Used entries the device returned that were not consumed yet.  Called by
 * virtq_peek, virtq_pop and the drivers. */
u16 virtq_pending(struct virtq *q)
{
    u16 v = (u16)(RD16(q->used->idx) - q->last_used);
    rmb();                                  /* index before the entries */
    return v;
}

/* Descriptor id is ours again: back on the free list.  Called by
 * virtq_pop and virtq_reclaim. */
static void virtq_put_free(struct virtq *q, u16 id)
{
    q->busy[id] = false;
    q->token[id] = NULL;
    q->desc[id].next = q->free_head;
    q->free_head = id;
    q->num_free++;
}

/* The k-th pending used entry (token, length), not consumed.  Called by
 * vcons.c and vcons_ctrl.c to look ahead in the control queue. */
bool virtq_peek(struct virtq *q, u16 k, void **token, u32 *len)
{
    if (virtq_pending(q) <= k)
        return false;
    volatile struct virtq_used_elem *e = &q->used->ring[(u16)(q->last_used + k) & (q->size - 1)];
    u32 id = e->id;
    if (token)
        *token = id < q->size ? q->token[id] : NULL;
    if (len)
        *len = e->len;
    return true;
}

/* Consume the next used entry, skipping stale ones (descriptors taken
 * back by virtq_reclaim); false if none.  Called by the drivers. */
bool virtq_pop(struct virtq *q, void **token, u32 *len)
{
    for (;;) {
        if (!virtq_pending(q))
            return false;
        volatile struct virtq_used_elem *e = &q->used->ring[q->last_used & (q->size - 1)];
        u32 id = e->id, n = e->len;
        q->last_used++;
        if (id >= q->size || !q->busy[id])
            continue;               /* stale: a descriptor we reclaimed */
        if (token)
            *token = q->token[id];
        if (len)
            *len = n;
        virtq_put_free(q, (u16)id);
        return true;
    }
}

/* Take back descriptor id if the device still holds it (it dropped the
 * buffer without using it).  Called by vcons.c and vcons_ctrl.c. */
void virtq_reclaim(struct virtq *q, int id)
{
    if (id >= 0 && id < q->size && q->busy[id])
        virtq_put_free(q, (u16)id);
}
