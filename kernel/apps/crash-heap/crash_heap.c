/* crash-heap: after about two seconds (time for `unik boot` to
 * see the channel up even on a loaded machine), free a heap block twice.  kfree finds
 * the block already on its class's free list and panics naming it: its
 * address, its size class and who freed it first (crash_heap_release). */
#include "kernel.h"
#include "kprintf.h"
#include "mm.h"
#include "thread.h"
#include "x86.h"

const char app_name[] = "crash-heap";

/* Where the block lives between the two frees (volatile: both frees stay). */
static void *volatile crash_heap_block;

/* The first, legitimate free (the barrier keeps the call a call, so the
 * backtrace and "freed before by" name this function). */
__attribute__((noinline)) void crash_heap_release(void *p)
{
    kfree(p);
    barrier();
}

/* The bug: the same block freed again. */
__attribute__((noinline)) void crash_heap_free_twice(void *p)
{
    kfree(p);
    barrier();
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("crash-heap: freeing a block twice in 2 s\n");
    thread_sleep_ms(2000, "countdown");
    crash_heap_block = kmalloc(48);
    kprintf("crash-heap: block %p (48 bytes)\n", crash_heap_block);
    crash_heap_release(crash_heap_block);
    crash_heap_free_twice(crash_heap_block);
    kprintf("crash-heap: still alive?!\n");
}
