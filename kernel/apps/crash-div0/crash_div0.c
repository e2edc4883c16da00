/* crash-div0: after about a second, divide by zero.  The divisor is read
 * through a volatile, so the compiler emits a real idiv and the CPU raises
 * #DE; the panic backtrace must name crash_div0_divide. */
#include "kernel.h"
#include "kprintf.h"
#include "thread.h"

const char app_name[] = "crash-div0";

static volatile int crash_div0_zero;

__attribute__((noinline)) int crash_div0_divide(int x)
{
    return x / crash_div0_zero;
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("crash-div0: dividing by zero in 1 s\n");
    thread_sleep_ms(1000, "countdown");
    int r = crash_div0_divide(42);
    kprintf("crash-div0: still alive?! (%d)\n", r);
}
