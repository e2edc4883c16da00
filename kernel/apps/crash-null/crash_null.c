/* crash-null: after about a second, write through a NULL pointer.  Page 0
 * is unmapped, so this must end in a #PF panic report whose backtrace
 * names crash_null_deref. */
#include "kernel.h"
#include "kprintf.h"
#include "thread.h"

const char app_name[] = "crash-null";

/* The pointer lives in a volatile so the compiler cannot see it is NULL
 * (it would otherwise emit ud2 instead of the store). */
static int *volatile crash_null_ptr;

__attribute__((noinline)) void crash_null_deref(int v)
{
    *crash_null_ptr = v;
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("crash-null: writing through NULL in 1 s\n");
    thread_sleep_ms(1000, "countdown");
    crash_null_deref(42);
    kprintf("crash-null: still alive?!\n");
}
