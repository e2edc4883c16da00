/* oom: a half-broken instance.  "app" takes every page and every heap
 * object it can get and keeps them, then keeps asking (and failing) every
 * OOM_RETRY_MS, and floods the log ring past its size.  The probe channel
 * allocates nothing after boot, so `unik ps`, `unik mem` and `unik log`
 * must still answer and show the failures (tests/runtime/oom.test). */
#include "kernel.h"
#include "kprintf.h"
#include "mm.h"
#include "thread.h"

#define OOM_RETRY_MS 200         /* how often the app retries after exhaustion */
#define OOM_LOG_LINES 2000       /* lines written to overflow the 64 KiB ring */

const char app_name[] = "oom";

/* Take pages until the allocator says no; returns how many were taken.
 * The pages are leaked on purpose. */
static u64 oom_take_pages(void)
{
    u64 n = 0;
    while (page_alloc())
        n++;
    return n;
}

/* Take heap objects of `size` bytes until the heap says no. */
static u64 oom_take_heap(size_t size)
{
    u64 n = 0;
    while (kmalloc(size))
        n++;
    return n;
}

void app_main(void *arg)
{
    (void)arg;
    u64 small = oom_take_heap(64);
    u64 pages = oom_take_pages();
    kprintf("oom: memory exhausted: %llu heap objects, %llu pages taken\n",
            (unsigned long long)small, (unsigned long long)pages);
    for (int i = 0; i < OOM_LOG_LINES; i++)
        kprintf("oom: flooding the log ring, line %d of %d\n", i + 1, OOM_LOG_LINES);
    for (u64 round = 1;; round++) {
        void *p = kmalloc(128);
        if (p) {
            kfree(p);
        }
        thread_sleep_ms(OOM_RETRY_MS, "retry");
        if (round % 25 == 0)
            kprintf("oom: still starved after %llu retries\n", (unsigned long long)round);
    }
}
