/* Blocking synchronisation for kernel threads (kernel/sched/sync.c), built
 * on the scheduler's block/wake: wait queues, counting semaphores, mutexes
 * and bounded mailboxes.  Every object has a name; a thread blocked on one
 * shows it in `ps` as its wait channel ("sem:lwip-tcpip", "mutex:kv",
 * "mbox:tcpip"), so an operator sees what each thread waits for.
 *
 * Objects are caller-allocated (static or heap) and initialised in place;
 * none allocates.  Timeouts are in ms, 0 = wait forever.  All may be used
 * by any thread; sem_signal, mbox_trypost and waitq_wake_* are also safe
 * in interrupt context.  Single CPU: interrupts off is the lock.
 *
 * Users: lwIP's OS port (net/sys_arch.c), the HTTP application, the crash
 * demos (crash-deadlock), the watchdog. */
#ifndef UNIK_SYNC_H
#define UNIK_SYNC_H
#include "types.h"
struct thread;

#define SYNC_NAME_MAX 16              /* bytes of an object's name, NUL included */

/* A FIFO of blocked threads. */
struct waitq {
    struct thread *head, *tail;       /* linked through the thread's wait link */
    char name[SYNC_NAME_MAX];         /* wait channel shown by ps (prefix added by the user) */
};
void waitq_init(struct waitq *q, const char *name);
/* Block the current thread on q until woken or timeout (0 = none); true
 * when woken.  Interrupts must be OFF on entry (the caller checked its
 * condition with them off, so no wakeup is lost); they are off again on
 * return. wchan is what ps shows (e.g. "mutex:kv"). */
bool waitq_wait(struct waitq *q, const char *wchan, u32 timeout_ms);
/* Wake the first waiter (true if there was one) / all waiters. */
bool waitq_wake_one(struct waitq *q);
u32 waitq_wake_all(struct waitq *q);

struct sem {
    u32 count;
    struct waitq q;
};
void sem_init(struct sem *s, const char *name, u32 count);
/* Take one unit; false on timeout (timeout_ms 0 = forever). */
bool sem_wait(struct sem *s, u32 timeout_ms);
bool sem_trywait(struct sem *s);
void sem_signal(struct sem *s);

/* A sleeping mutex with an owner (not recursive; unlocking a mutex the
 * caller does not own panics, naming both).  The owner is what a deadlock
 * report and `unik py` helpers read. */
struct mutex {
    struct thread *owner;             /* NULL when free */
    u64 locked_at_ns;                 /* uptime when the owner took it */
    struct waitq q;
};
void mutex_init(struct mutex *m, const char *name);
void mutex_lock(struct mutex *m);
bool mutex_lock_timeout(struct mutex *m, u32 timeout_ms);
bool mutex_trylock(struct mutex *m);
void mutex_unlock(struct mutex *m);

/* A bounded FIFO of pointers. */
struct mbox {
    void **slots;                     /* caller-provided array of cap pointers */
    u32 cap, head, count;
    u64 posted, dropped;              /* trypost failures counted in dropped */
    struct waitq readers, writers;
    char name[SYNC_NAME_MAX];
};
void mbox_init(struct mbox *b, const char *name, void **slots, u32 cap);
/* Blocking post (waits for room) / non-blocking post (false when full;
 * interrupt-safe). */
void mbox_post(struct mbox *b, void *msg);
bool mbox_trypost(struct mbox *b, void *msg);
/* Fetch the oldest message; false on timeout (0 = forever). */
bool mbox_fetch(struct mbox *b, void **msg, u32 timeout_ms);
bool mbox_tryfetch(struct mbox *b, void **msg);
#endif
