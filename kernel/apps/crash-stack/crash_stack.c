/* crash-stack: after about two seconds (time for `unik boot` to
 * see the channel up even on a loaded machine), recurse without end.  The thread's
 * stack has an unmapped guard page below it, so the recursion faults at
 * once on that page (the #PF runs on its own IST stack) and the panic
 * report says "stack overflow in thread 2 (app)". */
#include "kernel.h"
#include "kprintf.h"
#include "thread.h"

const char app_name[] = "crash-stack";

/* A depth the recursion never reaches, in a volatile so the compiler
 * cannot prove the recursion endless (and cannot turn it into a loop). */
static volatile unsigned crash_stack_limit = ~0u;

/* One frame of about 100 bytes per call, its buffer kept live. */
__attribute__((noinline)) unsigned crash_stack_recurse(unsigned depth)
{
    volatile char frame[64];
    frame[0] = (char)depth;
    if (depth == crash_stack_limit)
        return 0;
    return crash_stack_recurse(depth + 1) + frame[0];
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("crash-stack: recursing without end in 2 s\n");
    thread_sleep_ms(2000, "countdown");
    kprintf("crash-stack: %u\n", crash_stack_recurse(0));
}
