/* The demo application: "app" starts two workers that compute, churn the
 * heap and sleep, and every few seconds logs a summary, so `unik ps`,
 * `unik log` and heap statistics all have something moving to show. */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "thread.h"

#define DEMO_WORKERS 2
#define DEMO_REPORT_MS 5000
#define DEMO_SLOTS 16

const char app_name[] = "demo";

struct demo_worker {
    const char *name;
    u32 work;           /* bytes hashed per round */
    u32 nap_ms;         /* sleep between rounds */
    u64 rounds;
    u32 crc;
};

static struct demo_worker demo_workers[DEMO_WORKERS] = {
    { "worker-1", 64 * 1024, 20, 0, 0 },
    { "worker-2", 16 * 1024, 7, 0, 0 },
};

/* Allocate and free buffers of pseudo-random sizes, keeping some alive
 * across rounds so the heap's in-use counts move. */
static void demo_churn(void **slots, u32 *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    u32 i = (*seed >> 16) % DEMO_SLOTS;
    kfree(slots[i]);
    u32 size = 8u << ((*seed >> 8) % 11);          /* 8 .. 8192 bytes */
    slots[i] = kmalloc(size);
    if (slots[i])
        memset(slots[i], (int)i, size);
}

/* A worker: hash a buffer (CPU work), churn the heap, nap; log now and
 * then. */
static void demo_worker_main(void *arg)
{
    struct demo_worker *w = arg;
    void *slots[DEMO_SLOTS] = {0};
    u32 seed = w->work;
    u8 *buf = kmalloc(w->work);
    if (!buf)
        panic("%s: out of memory", w->name);
    for (u32 i = 0; i < w->work; i++)
        buf[i] = (u8)(i * 7);
    for (;;) {
        w->crc = crc32_update(w->crc, buf, w->work);
        demo_churn(slots, &seed);
        w->rounds++;
        if (w->rounds % (3000 / w->nap_ms) == 0)
            kprintf("%s: round %lu crc 0x%08x\n", w->name, w->rounds, w->crc);
        thread_sleep_ms(w->nap_ms, "nap");
    }
}

/* The app thread: start the workers, then report every DEMO_REPORT_MS. */
void app_main(void *arg)
{
    struct mm_stats m;
    struct mm_class_stats cls[1];
    (void)arg;

    kprintf("demo: starting %d workers\n", DEMO_WORKERS);
    for (int i = 0; i < DEMO_WORKERS; i++)
        if (!thread_spawn(demo_workers[i].name, demo_worker_main, &demo_workers[i],
                          THREAD_F_APP, 0))
            kprintf("demo: cannot spawn %s\n", demo_workers[i].name);
    for (;;) {
        thread_sleep_ms(DEMO_REPORT_MS, "report");
        mm_stats(&m, cls, 0);
        kprintf("demo: uptime %lu ms, %u threads, heap %lu/%lu bytes used, %lu pages free\n",
                time_ns() / 1000000, thread_count(), m.heap_bytes_used,
                m.heap_bytes_total, m.pages_free);
    }
}
