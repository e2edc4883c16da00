/* The self-test of kernel/sched/sync.c: semaphores hand a signalled unit
 * to the first waiter and time out; mutexes exclude, hand ownership over
 * in FIFO order, time out and show "mutex:NAME" in the thread list;
 * mailboxes keep FIFO order, block writers when full ("mbox-full:NAME"),
 * count trypost drops and time out; wait queues wake one or all.
 * Called by selftest_main (thread "selftest", a service thread). */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "selftest.h"
#include "sync.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

static struct sem sst_sem;
static struct mutex sst_mutex;
static struct mbox sst_mbox;
static void *sst_slots[2];
static struct waitq sst_q;
static volatile u32 sst_done;           /* children finished */
static volatile u32 sst_order[4];       /* who got the mutex, in order */
static volatile u32 sst_norder;
static volatile u64 sst_counter;        /* incremented under sst_mutex */

/* True when thread `name` sleeps with wait channel wchan. */
static bool sync_waits_on(const char *name, const char *wchan)
{
    struct thread_info ti;
    return selftest_find(name, &ti) && ti.state == THREAD_SLEEPING && !strcmp(ti.wchan, wchan);
}

/* Child: wait for the semaphore, then count itself done. */
static void sync_sem_child(void *arg)
{
    (void)arg;
    if (sem_wait(&sst_sem, 0))
        sst_done++;
}

/* Semaphores: counts, trywait, timeout, hand-off to a waiter. */
static void selftest_sem(void)
{
    sem_init(&sst_sem, "st-sem", 2);
    CHECK(sem_trywait(&sst_sem) && sem_wait(&sst_sem, 10) && !sem_trywait(&sst_sem));
    u64 t0 = time_ns();
    CHECK(!sem_wait(&sst_sem, 5) && time_ns() - t0 >= 5ull * 1000000);
    sst_done = 0;
    CHECK(thread_spawn("st-sem", sync_sem_child, NULL, 0, 0) != NULL);
    thread_sleep_ms(5, "selftest");
    CHECK(sync_waits_on("st-sem", "sem:st-sem") && sst_done == 0);
    sem_signal(&sst_sem);
    CHECK(sst_sem.count == 0);          /* handed over, not counted */
    thread_sleep_ms(5, "selftest");
    CHECK(sst_done == 1);
    sem_signal(&sst_sem);
    CHECK(sst_sem.count == 1 && sem_trywait(&sst_sem));
}

/* Child: take the mutex (recording the order), hold it briefly. */
static void sync_mutex_child(void *arg)
{
    mutex_lock(&sst_mutex);
    sst_order[sst_norder++] = (u32)(u64)arg;
    thread_sleep_ms(10, "st-hold");
    mutex_unlock(&sst_mutex);
    sst_done++;
}

/* Child: increment the shared counter under the mutex, yielding inside. */
static void sync_count_child(void *arg)
{
    (void)arg;
    for (u32 i = 0; i < 200; i++) {
        mutex_lock(&sst_mutex);
        u64 v = sst_counter;
        thread_yield();
        sst_counter = v + 1;
        mutex_unlock(&sst_mutex);
    }
    sst_done++;
}

/* Mutexes: owner, FIFO hand-off, wait channel, timeout, exclusion. */
static void selftest_mutex(void)
{
    mutex_init(&sst_mutex, "st-mutex");
    mutex_lock(&sst_mutex);
    CHECK(sst_mutex.owner == thread_current() && sst_mutex.locked_at_ns > 0);
    CHECK(!mutex_trylock(&sst_mutex));
    sst_done = sst_norder = 0;
    CHECK(thread_spawn("st-mx1", sync_mutex_child, (void *)1, 0, 0) != NULL);
    thread_sleep_ms(3, "selftest");
    CHECK(thread_spawn("st-mx2", sync_mutex_child, (void *)2, 0, 0) != NULL);
    thread_sleep_ms(3, "selftest");
    CHECK(sync_waits_on("st-mx1", "mutex:st-mutex") && sync_waits_on("st-mx2", "mutex:st-mutex"));
    mutex_unlock(&sst_mutex);
    CHECK(sst_mutex.owner != NULL && sst_mutex.owner != thread_current());
    u64 t0 = time_ns();
    CHECK(!mutex_lock_timeout(&sst_mutex, 1));   /* held by st-mx1 for 10 ms */
    CHECK(time_ns() - t0 >= 1000000);
    thread_sleep_ms(50, "selftest");
    CHECK(sst_done == 2 && sst_norder == 2 && sst_order[0] == 1 && sst_order[1] == 2);
    CHECK(sst_mutex.owner == NULL && mutex_trylock(&sst_mutex));
    mutex_unlock(&sst_mutex);

    sst_done = 0;
    sst_counter = 0;
    for (u32 i = 0; i < 3; i++)
        CHECK(thread_spawn("st-count", sync_count_child, NULL, 0, 0) != NULL);
    for (u32 i = 0; i < 500 && sst_done < 3; i++)
        thread_sleep_ms(10, "selftest");
    CHECK(sst_done == 3 && sst_counter == 600);
}

/* Child: post three messages into the two-slot mailbox. */
static void sync_mbox_child(void *arg)
{
    (void)arg;
    for (u64 i = 1; i <= 3; i++)
        mbox_post(&sst_mbox, (void *)i);
    sst_done++;
}

/* Mailboxes: FIFO, a full box blocks the writer, drops, timeouts. */
static void selftest_mbox(void)
{
    void *m = NULL;
    mbox_init(&sst_mbox, "st-mbox", sst_slots, 2);
    u64 t0 = time_ns();
    CHECK(!mbox_fetch(&sst_mbox, &m, 5) && time_ns() - t0 >= 5ull * 1000000);
    CHECK(!mbox_tryfetch(&sst_mbox, &m));
    sst_done = 0;
    CHECK(thread_spawn("st-mbox", sync_mbox_child, NULL, 0, 0) != NULL);
    thread_sleep_ms(5, "selftest");
    CHECK(sync_waits_on("st-mbox", "mbox-full:st-mbox") && sst_mbox.count == 2);
    CHECK(!mbox_trypost(&sst_mbox, (void *)9) && sst_mbox.dropped == 1);
    bool ok = true;
    for (u64 i = 1; i <= 3; i++)
        ok &= mbox_fetch(&sst_mbox, &m, 100) && m == (void *)i;
    CHECK(ok);
    thread_sleep_ms(2, "selftest");
    CHECK(sst_done == 1 && sst_mbox.count == 0 && sst_mbox.posted == 3);
    CHECK(mbox_trypost(&sst_mbox, (void *)7) && mbox_tryfetch(&sst_mbox, &m) && m == (void *)7);
}

/* Child: wait on the bare queue with interrupts off, count the wake. */
static void sync_waitq_child(void *arg)
{
    (void)arg;
    u64 f = irq_save();
    if (waitq_wait(&sst_q, "waitq:st", 0))
        sst_done++;
    irq_restore(f);
}

/* Wait queues: wake one, then all; an empty queue wakes nobody. */
static void selftest_waitq(void)
{
    waitq_init(&sst_q, "st");
    CHECK(!waitq_wake_one(&sst_q) && waitq_wake_all(&sst_q) == 0);
    sst_done = 0;
    for (u32 i = 0; i < 3; i++)
        CHECK(thread_spawn("st-waitq", sync_waitq_child, NULL, 0, 0) != NULL);
    thread_sleep_ms(5, "selftest");
    CHECK(waitq_wake_one(&sst_q));
    thread_sleep_ms(3, "selftest");
    CHECK(sst_done == 1);
    CHECK(waitq_wake_all(&sst_q) == 2);
    thread_sleep_ms(3, "selftest");
    CHECK(sst_done == 3);
    u64 f = irq_save();
    u64 t0 = time_ns();
    CHECK(!waitq_wait(&sst_q, "waitq:st", 3) && sst_q.head == NULL);
    irq_restore(f);
    CHECK(time_ns() - t0 >= 3ull * 1000000);
}

/* Every sync check; called by selftest_main. */
void selftest_sync(void)
{
    selftest_sem();
    selftest_mutex();
    selftest_mbox();
    selftest_waitq();
}
