/* The log ring (dmesg): every byte kprintf wrote, addressed by a stream
 * offset that only grows; the ring keeps the newest LOG_RING_SIZE bytes. */
#ifndef UNIK_LOG_H
#define UNIK_LOG_H
#include "types.h"
struct log_span {
    u64 offset;   /* offset of the first byte copied */
    u64 next;     /* offset to ask for next */
    u64 oldest;   /* oldest offset still in the ring */
    u64 head;     /* one past the newest byte */
    u32 len;      /* bytes copied */
    u32 lost;     /* bytes skipped because the asked offset was overwritten */
};
void log_write(const char *s, size_t n);
/* Copy up to max bytes from stream offset `offset` into buf. */
u32 log_read(u64 offset, void *buf, u32 max, struct log_span *span);

/* The ring itself, exposed so the self-test can exercise wrap-around on a
 * small private ring; log_write/log_read use the kernel's LOG_RING_SIZE one. */
struct log_ring {
    char *buf;
    u32 size;     /* power of 2 */
    u64 head;     /* stream offset one past the newest byte */
};
void log_ring_init(struct log_ring *r, char *buf, u32 size);
void log_ring_write(struct log_ring *r, const char *s, size_t n);
u32 log_ring_read(const struct log_ring *r, u64 offset, void *buf, u32 max,
                  struct log_span *span);
/* Stream offset one past the newest byte of the kernel log. */
u64 log_head(void);
#endif
