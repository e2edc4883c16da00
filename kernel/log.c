/* The log ring (dmesg): kprintf appends every byte it prints; the probe
 * channel's LOG request reads it back from any stream offset.  Offsets
 * grow forever; the ring keeps the newest LOG_RING_SIZE bytes.  Callers may
 * be threads or interrupt handlers: the kernel ring is guarded by
 * irq_save (one CPU). */
#include "lib.h"
#include "log.h"
#include "probe_site.h"
#include "tunables.h"
#include "x86.h"

/* log:::line -- a line was completed in the kernel log: text is the whole
 * line as LOG returns it (uptime stamp included, newline not), len its
 * length, offset the log stream offset of its first byte.  Lines longer
 * than LOG_LINE_MAX - 1 bytes pass their last bytes. */
PROBE_DEFINE(log, line, string, text, size_t, len, uint64_t, offset);

_Static_assert((LOG_RING_SIZE & (LOG_RING_SIZE - 1)) == 0, "LOG_RING_SIZE power of 2");

static char log_buf[LOG_RING_SIZE];
static struct log_ring log_kernel = { log_buf, LOG_RING_SIZE, 0 };
static char log_line_text[LOG_LINE_MAX];    /* log:::line's text (interrupts off) */
static u32 log_line_len;
static u64 log_line_off;

/* Prepare an empty ring over buf (size must be a power of 2). */
void log_ring_init(struct log_ring *r, char *buf, u32 size)
{
    r->buf = buf;
    r->size = size;
    r->head = 0;
}

/* Append n bytes; only the last r->size of them can survive. */
void log_ring_write(struct log_ring *r, const char *s, size_t n)
{
    if (n > r->size) {
        r->head += n - r->size;
        s += n - r->size;
        n = r->size;
    }
    u32 pos = (u32)(r->head & (r->size - 1));
    size_t first = MIN(n, (size_t)(r->size - pos));
    memcpy(r->buf + pos, s, first);
    memcpy(r->buf, s + first, n - first);
    r->head += n;
}

/* Copy up to max bytes starting at stream offset `offset`.  An offset that
 * was overwritten starts at the oldest byte (span->lost says how much was
 * skipped); one beyond the head returns nothing. */
u32 log_ring_read(const struct log_ring *r, u64 offset, void *buf, u32 max,
                  struct log_span *span)
{
    u64 oldest = r->head > r->size ? r->head - r->size : 0;
    u64 lost = 0;
    if (offset < oldest) {
        lost = oldest - offset;
        offset = oldest;
    }
    if (offset > r->head)
        offset = r->head;
    u32 len = (u32)MIN((u64)max, r->head - offset);
    u32 pos = (u32)(offset & (r->size - 1));
    u32 first = MIN(len, r->size - pos);
    memcpy(buf, r->buf + pos, first);
    memcpy((char *)buf + first, r->buf, len - first);
    if (span) {
        span->offset = offset;
        span->next = offset + len;
        span->oldest = oldest;
        span->head = r->head;
        span->len = len;
        span->lost = (u32)MIN(lost, (u64)0xffffffffu);
    }
    return len;
}

/* If the write (s, n) just ended a line, copy that line (from the ring,
 * after the previous newline, newline left out) into log_line_text and
 * say so.  Runs only in log:::line's out-of-line block, when the probe is
 * enabled; interrupts off (log_write's). */
static bool log_line_take(const char *s, size_t n)
{
    const struct log_ring *r = &log_kernel;
    if (n == 0 || s[n - 1] != '\n')
        return false;
    u64 end = r->head - 1;                  /* offset of the newline */
    u64 oldest = r->head > r->size ? r->head - r->size : 0;
    u64 lo = end > LOG_LINE_MAX - 1 ? end - (LOG_LINE_MAX - 1) : 0;
    u64 start = end;
    lo = MAX(lo, oldest);
    while (start > lo && r->buf[(start - 1) & (r->size - 1)] != '\n')
        start--;
    log_line_len = log_ring_read(r, start, log_line_text, (u32)(end - start), NULL);
    log_line_text[log_line_len] = 0;
    log_line_off = start;
    return true;
}

/* Append to the kernel log (kprintf's second sink). */
void log_write(const char *s, size_t n)
{
    u64 f = irq_save();
    log_ring_write(&log_kernel, s, n);
    PROBE_FIRE_IF(log_line_take(s, n), log, line, log_line_text, log_line_len, log_line_off);
    irq_restore(f);
}

/* Read the kernel log (the probe channel's LOG request). */
u32 log_read(u64 offset, void *buf, u32 max, struct log_span *span)
{
    u64 f = irq_save();
    u32 n = log_ring_read(&log_kernel, offset, buf, max, span);
    irq_restore(f);
    return n;
}

u64 log_head(void)
{
    u64 f = irq_save();
    u64 h = log_kernel.head;
    irq_restore(f);
    return h;
}
