/* crash-deadlock: two threads take two mutexes in opposite orders and
 * deadlock: "dl-ab" holds lock-a and waits for lock-b, "dl-ba" holds
 * lock-b and waits for lock-a.  Nothing else goes wrong; the kernel's
 * watchdog (sched/watchdog.c) must notice the cycle in the owner graph
 * after WATCHDOG_MUTEX_MS (unik.watchdog_ms= on the command line) and
 * panic, naming both threads and the mutexes they wait on.  Until then
 * `unik ps` shows them sleeping on "mutex:lock-b" and "mutex:lock-a". */
#include "kernel.h"
#include "kprintf.h"
#include "sync.h"
#include "thread.h"

const char app_name[] = "crash-deadlock";

#define CRASH_DEADLOCK_HOLD_MS 50       /* both hold their first lock by then */

static struct mutex crash_deadlock_a, crash_deadlock_b;

/* One side of the deadlock: take first, wait a little, take second. */
static void crash_deadlock_take(struct mutex *first, struct mutex *second)
{
    mutex_lock(first);
    thread_sleep_ms(CRASH_DEADLOCK_HOLD_MS, "dl-hold");
    mutex_lock(second);
    kprintf("crash-deadlock: %s got both locks?!\n", thread_name(thread_current()));
    mutex_unlock(second);
    mutex_unlock(first);
}

static void crash_deadlock_ab(void *arg)
{
    (void)arg;
    crash_deadlock_take(&crash_deadlock_a, &crash_deadlock_b);
}

static void crash_deadlock_ba(void *arg)
{
    (void)arg;
    crash_deadlock_take(&crash_deadlock_b, &crash_deadlock_a);
}

/* Start both threads; the app thread then waits like an idle server. */
void app_main(void *arg)
{
    (void)arg;
    mutex_init(&crash_deadlock_a, "lock-a");
    mutex_init(&crash_deadlock_b, "lock-b");
    kprintf("crash-deadlock: two threads take lock-a and lock-b in opposite orders\n");
    if (!thread_spawn("dl-ab", crash_deadlock_ab, NULL, THREAD_F_APP, 0) ||
        !thread_spawn("dl-ba", crash_deadlock_ba, NULL, THREAD_F_APP, 0))
        panic("crash-deadlock: cannot spawn its threads");
    for (;;)
        thread_sleep_ms(1000, "idle-wait");
}
