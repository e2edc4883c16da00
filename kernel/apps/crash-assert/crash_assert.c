/* crash-assert: after about two seconds (time for `unik boot` to
 * see the channel up even on a loaded machine), a kernel assertion fails.  The
 * panic report and the crash record name the expression, the function
 * and the source file:line of the KASSERT. */
#include "kernel.h"
#include "kprintf.h"
#include "thread.h"

const char app_name[] = "crash-assert";

/* What the assertion checks: a count the app believes positive, kept in
 * a volatile so the compiler cannot fold the check away. */
static volatile int crash_assert_items;

__attribute__((noinline)) void crash_assert_check(int items)
{
    KASSERT(items > 0);
    kprintf("crash-assert: %d items\n", items);
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("crash-assert: checking an assertion that fails in 2 s\n");
    thread_sleep_ms(2000, "countdown");
    crash_assert_check(crash_assert_items);
    kprintf("crash-assert: still alive?!\n");
}
