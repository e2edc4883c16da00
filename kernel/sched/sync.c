/* Blocking synchronisation (sync.h): wait queues, counting semaphores,
 * mutexes with owners and bounded mailboxes, on the scheduler's
 * thread_park / sched_wake_thread.  Single CPU: interrupts off is the
 * lock, so a waiter checks its condition and queues itself with them off
 * and no wakeup can fall in between.
 *
 * A waker dequeues the thread and clears its wait_q before making it
 * runnable, so "woken" and "timed out" are told apart exactly, and
 * semaphores and mutexes hand their unit / ownership straight to the
 * thread they wake (FIFO, nothing can barge in).  Users: lwIP's OS port,
 * the applications, crash-deadlock and the watchdog (owner graph). */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "sched_int.h"
#include "sync.h"
#include "x86.h"

#define X86_RFLAGS_IF 0x200             /* interrupt enable flag */

/* Initialise an empty queue named name (cut to SYNC_NAME_MAX - 1). */
void waitq_init(struct waitq *q, const char *name)
{
    q->head = q->tail = NULL;
    str_copy(q->name, name ? name : "?", sizeof q->name);
}

/* Append t to q (interrupts off).  Called by waitq_wait. */
static void waitq_push(struct waitq *q, struct thread *t)
{
    t->wait_next = NULL;
    t->wait_q = q;
    if (q->tail)
        q->tail->wait_next = t;
    else
        q->head = t;
    q->tail = t;
}

/* Unlink t from q, wherever it is (interrupts off); a timed-out waiter
 * leaves this way.  Called by waitq_wait. */
static void waitq_unlink(struct waitq *q, struct thread *t)
{
    struct thread *prev = NULL;
    for (struct thread *w = q->head; w; prev = w, w = w->wait_next) {
        if (w != t)
            continue;
        if (prev)
            prev->wait_next = t->wait_next;
        else
            q->head = t->wait_next;
        if (q->tail == t)
            q->tail = prev;
        break;
    }
    t->wait_next = NULL;
    t->wait_q = NULL;
}

/* Take the first waiter off q and make it runnable; NULL if none
 * (interrupts off).  Called by the wake functions and the hand-offs. */
static struct thread *waitq_pop(struct waitq *q)
{
    struct thread *t = q->head;
    if (!t)
        return NULL;
    q->head = t->wait_next;
    if (!q->head)
        q->tail = NULL;
    t->wait_next = NULL;
    t->wait_q = NULL;
    sched_wake_thread(t);
    return t;
}

/* Block the current thread on q (see sync.h).  Interrupts off on entry and
 * on return; true when a waker dequeued it, false on timeout. */
bool waitq_wait(struct waitq *q, const char *wchan, u32 timeout_ms)
{
    struct thread *t = sched_cur;
    if (!t)
        panic("waitq_wait %s: no scheduler yet", q->name);
    if (irq_save() & X86_RFLAGS_IF)
        panic("waitq_wait %s: called with interrupts on (a wakeup could be lost)", q->name);
    waitq_push(q, t);
    t->wait_since_ns = time_ns();
    thread_park(wchan, timeout_ms);
    if (t->wait_q == NULL)
        return true;
    waitq_unlink(q, t);
    return false;
}

/* Wake the first waiter; true if there was one.  Any context. */
bool waitq_wake_one(struct waitq *q)
{
    u64 f = irq_save();
    bool woke = waitq_pop(q) != NULL;
    irq_restore(f);
    return woke;
}

/* Wake every waiter; how many.  Any context. */
u32 waitq_wake_all(struct waitq *q)
{
    u32 n = 0;
    u64 f = irq_save();
    while (waitq_pop(q))
        n++;
    irq_restore(f);
    return n;
}

/* "kind:name" into buf (the wait channel ps shows). */
static void sync_wchan(char *buf, const char *kind, const char *name)
{
    ksnprintf(buf, THREAD_NAME_LEN, "%s:%s", kind, name);
}

/* --- semaphores --- */

void sem_init(struct sem *s, const char *name, u32 count)
{
    s->count = count;
    waitq_init(&s->q, name);
}

/* Take one unit, waiting at most timeout_ms (0 = forever); a unit
 * signalled while waiting is handed straight to the first waiter. */
bool sem_wait(struct sem *s, u32 timeout_ms)
{
    char wchan[THREAD_NAME_LEN];
    u64 f = irq_save();
    bool ok = true;
    if (s->count)
        s->count--;
    else {
        sync_wchan(wchan, "sem", s->q.name);
        ok = waitq_wait(&s->q, wchan, timeout_ms);
    }
    irq_restore(f);
    return ok;
}

/* Take one unit if there is one, without waiting. */
bool sem_trywait(struct sem *s)
{
    u64 f = irq_save();
    bool ok = s->count > 0;
    if (ok)
        s->count--;
    irq_restore(f);
    return ok;
}

/* Give one unit: to the first waiter if any, else to the count.  Safe in
 * interrupt context. */
void sem_signal(struct sem *s)
{
    u64 f = irq_save();
    if (!waitq_pop(&s->q))
        s->count++;
    irq_restore(f);
}

/* --- mutexes --- */

void mutex_init(struct mutex *m, const char *name)
{
    m->owner = NULL;
    m->locked_at_ns = 0;
    waitq_init(&m->q, name);
}

/* Make the current thread m's owner (interrupts off). */
static void mutex_take(struct mutex *m)
{
    m->owner = sched_cur;
    m->locked_at_ns = time_ns();
}

/* Lock m, waiting at most timeout_ms (0 = forever); false on timeout.
 * Locking a mutex the caller already owns panics (not recursive). */
bool mutex_lock_timeout(struct mutex *m, u32 timeout_ms)
{
    char wchan[THREAD_NAME_LEN];
    u64 f = irq_save();
    struct thread *self = sched_cur;
    bool ok = true;
    if (m->owner == self && self)
        panic("mutex %s: thread %u \"%s\" locks it again (not recursive)",
              m->q.name, self->tid, self->name);
    if (!m->owner)
        mutex_take(m);
    else {
        sync_wchan(wchan, "mutex", m->q.name);
        watchdog_arm();
        self->wait_mutex = m;
        ok = waitq_wait(&m->q, wchan, timeout_ms);
        self->wait_mutex = NULL;
    }
    irq_restore(f);
    return ok;
}

void mutex_lock(struct mutex *m)
{
    mutex_lock_timeout(m, 0);
}

/* Lock m if it is free, without waiting. */
bool mutex_trylock(struct mutex *m)
{
    u64 f = irq_save();
    bool ok = m->owner == NULL;
    if (ok)
        mutex_take(m);
    irq_restore(f);
    return ok;
}

/* Unlock m, handing it to the first waiter if any.  The caller must own
 * it: anything else panics naming the caller and the owner. */
void mutex_unlock(struct mutex *m)
{
    u64 f = irq_save();
    struct thread *self = sched_cur, *o = m->owner;
    if (o != self)
        panic("mutex %s: unlocked by thread %u \"%s\" but owned by %s%u \"%s\"",
              m->q.name, self ? self->tid : 0, self ? self->name : "?",
              o ? "thread " : "nobody", o ? o->tid : 0, o ? o->name : "");
    struct thread *next = waitq_pop(&m->q);
    m->owner = next;
    m->locked_at_ns = next ? time_ns() : 0;
    irq_restore(f);
}

/* --- mailboxes --- */

void mbox_init(struct mbox *b, const char *name, void **slots, u32 cap)
{
    if (!slots || !cap)
        panic("mbox %s: no slots", name ? name : "?");
    b->slots = slots;
    b->cap = cap;
    b->head = b->count = 0;
    b->posted = b->dropped = 0;
    str_copy(b->name, name ? name : "?", sizeof b->name);
    waitq_init(&b->readers, b->name);
    waitq_init(&b->writers, b->name);
}

/* Append msg (interrupts off, room checked) and wake a reader. */
static void mbox_put(struct mbox *b, void *msg)
{
    b->slots[(b->head + b->count) % b->cap] = msg;
    b->count++;
    b->posted++;
    waitq_pop(&b->readers);
}

/* Remove the oldest message (interrupts off, count checked) and wake a
 * writer waiting for room. */
static void *mbox_get(struct mbox *b)
{
    void *msg = b->slots[b->head];
    b->head = (b->head + 1) % b->cap;
    b->count--;
    waitq_pop(&b->writers);
    return msg;
}

/* Post msg, waiting for room as long as it takes. */
void mbox_post(struct mbox *b, void *msg)
{
    char wchan[THREAD_NAME_LEN];
    sync_wchan(wchan, "mbox-full", b->name);
    u64 f = irq_save();
    while (b->count == b->cap)
        waitq_wait(&b->writers, wchan, 0);
    mbox_put(b, msg);
    irq_restore(f);
}

/* Post msg if there is room; false (counted in dropped) when full.  Safe
 * in interrupt context. */
bool mbox_trypost(struct mbox *b, void *msg)
{
    u64 f = irq_save();
    bool ok = b->count < b->cap;
    if (ok)
        mbox_put(b, msg);
    else
        b->dropped++;
    irq_restore(f);
    return ok;
}

/* Milliseconds left until deadline_ns (at least 1), for a retried wait. */
static u32 sync_ms_left(u64 deadline_ns)
{
    u64 now = time_ns();
    if (now >= deadline_ns)
        return 0;
    return (u32)((deadline_ns - now + 999999) / 1000000);
}

/* Fetch the oldest message into *msg, waiting at most timeout_ms (0 =
 * forever) in all; false on timeout.  A woken reader whose message another
 * took waits again for the time that is left. */
bool mbox_fetch(struct mbox *b, void **msg, u32 timeout_ms)
{
    char wchan[THREAD_NAME_LEN];
    sync_wchan(wchan, "mbox", b->name);
    u64 deadline = time_ns() + (u64)timeout_ms * 1000000;
    u64 f = irq_save();
    while (b->count == 0) {
        u32 left = timeout_ms ? sync_ms_left(deadline) : 0;
        if (timeout_ms && !left)
            break;
        waitq_wait(&b->readers, wchan, left);
    }
    bool ok = b->count > 0;
    if (ok)
        *msg = mbox_get(b);
    irq_restore(f);
    return ok;
}

/* Fetch the oldest message if there is one, without waiting. */
bool mbox_tryfetch(struct mbox *b, void **msg)
{
    u64 f = irq_save();
    bool ok = b->count > 0;
    if (ok)
        *msg = mbox_get(b);
    irq_restore(f);
    return ok;
}
