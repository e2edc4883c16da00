/* The deadlock watchdog: a service thread that wakes every
 * WATCHDOG_PERIOD_MS and looks for threads blocked on a mutex
 * (sync.c records which, and since when) for longer than the limit,
 * WATCHDOG_MUTEX_MS or unik.watchdog_ms=N on the command line (0 turns
 * the watchdog off).  Such a thread is deadlocked when following "waits
 * for mutex M, owned by thread T" edges leads back to it: the watchdog
 * then prints one line per edge and panics naming every thread of the
 * cycle and the mutex each waits on.  A thread merely waiting long for a
 * mutex whose owner makes progress is left alone.
 * Started by sync.c the first time a thread blocks on a mutex
 * (watchdog_arm), so kernels whose threads never do run no extra thread. */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "sched_int.h"
#include "sync.h"
#include "x86.h"

#define WATCHDOG_MSG_MAX 160            /* panic() keeps this much of a message */

static u64 watchdog_limit_ns;           /* blocked this long on a mutex: check for a cycle */
static bool watchdog_armed;             /* watchdog_arm ran */

/* The thread t waits for through a mutex (its owner), or NULL when t is
 * not blocked on one.  Interrupts off.  Called by watchdog_cycle. */
static struct thread *watchdog_next(struct thread *t)
{
    if (t->state != THREAD_SLEEPING || !t->wait_mutex || !t->wait_q)
        return NULL;
    return t->wait_mutex->owner;
}

/* Length of the owner cycle that starts and ends at t (0 if following
 * the edges from t does not come back to t within THREAD_MAX steps). */
static u32 watchdog_cycle(struct thread *t)
{
    struct thread *w = t;
    for (u32 n = 1; n <= THREAD_MAX; n++) {
        w = watchdog_next(w);
        if (!w)
            return 0;
        if (w == t)
            return n;
    }
    return 0;
}

/* Report the cycle through t (n edges) and panic.  One log line per edge
 * (the full story), then a panic message naming the threads and mutexes
 * (cut to what panic keeps for long cycles).  Interrupts off. */
static void watchdog_deadlock(struct thread *t, u32 n, u64 now)
{
    char msg[WATCHDOG_MSG_MAX];
    u32 len = (u32)ksnprintf(msg, sizeof msg, "watchdog: deadlock:");
    struct thread *w = t;
    for (u32 i = 0; i < n; i++) {
        struct mutex *m = w->wait_mutex;
        struct thread *o = m->owner;
        u64 waited = now - w->wait_since_ns;
        kprintf("watchdog: thread %u \"%s\" has waited %lu ms for mutex:%s, "
                "held by thread %u \"%s\" for %lu ms\n",
                w->tid, w->name, waited / 1000000, m->q.name, o->tid, o->name,
                (now - m->locked_at_ns) / 1000000);
        if (len < sizeof msg)
            len += (u32)ksnprintf(msg + len, sizeof msg - len,
                                  "%s thread %u \"%s\" waits on mutex:%s held by thread %u",
                                  i ? ";" : "", w->tid, w->name, m->q.name, o->tid);
        w = o;
    }
    panic("%s", msg);
}

/* One scan (interrupts off): any thread blocked on a mutex past the
 * limit and in an owner cycle is a deadlock.  Called by watchdog_main. */
static void watchdog_scan(void)
{
    u64 now = time_ns();
    for (u32 i = 0; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used || !watchdog_next(t) || now - t->wait_since_ns < watchdog_limit_ns)
            continue;
        u32 n = watchdog_cycle(t);
        if (n)
            watchdog_deadlock(t, n, now);
    }
}

/* The watchdog thread: scan, sleep, forever. */
static void watchdog_main(void *arg)
{
    (void)arg;
    for (;;) {
        thread_sleep_ms(WATCHDOG_PERIOD_MS, "watchdog");
        u64 f = irq_save();
        watchdog_scan();
        irq_restore(f);
    }
}

/* The limit from unik.watchdog_ms= (else WATCHDOG_MUTEX_MS); start the
 * watchdog thread unless it is 0.  Called by mutex_lock_timeout when a
 * thread is about to block (interrupts off); only the first call works. */
void watchdog_arm(void)
{
    char val[16];
    if (watchdog_armed)
        return;
    watchdog_armed = true;
    u64 ms = WATCHDOG_MUTEX_MS;
    if (kernel_cmdline_get("unik.watchdog_ms", val, sizeof val)) {
        ms = 0;
        for (const char *p = val; *p >= '0' && *p <= '9'; p++)
            ms = ms * 10 + (u64)(*p - '0');
    }
    if (!ms) {
        kprintf("watchdog: off (unik.watchdog_ms=0)\n");
        return;
    }
    watchdog_limit_ns = ms * 1000000;
    if (!thread_spawn("watchdog", watchdog_main, NULL, THREAD_F_SERVICE, 0))
        kprintf("watchdog: cannot spawn its thread: deadlocks go undetected\n");
}
