/* Internal: the thread table shared by sched.c (switching, the tick) and
 * thread.c (the thread API).  Everything here is touched with interrupts
 * off. */
#ifndef UNIK_SCHED_INT_H
#define UNIK_SCHED_INT_H
#include "sched.h"
#include "thread.h"
#include "tunables.h"

#define THREAD_NAME_LEN 24
/* Priorities, as THREADS reports them: idle runs only when nothing else
 * can; service threads (THREAD_F_SERVICE) get wakeup preemption (sched.c). */
#define THREAD_PRIO_IDLE 0
#define THREAD_PRIO_APP 1
#define THREAD_PRIO_SERVICE 2
#define THREAD_STACK_FILL 0x57ac57ac57ac57acull   /* unused stack words */

struct thread {
    bool used;                  /* slot holds a thread (maybe dead) */
    enum thread_state state;    /* THREAD_RUNNING... */
    u8 prio;                    /* THREAD_PRIO_* */
    u16 flags;                  /* THREAD_F_* */
    u32 tid;
    char name[THREAD_NAME_LEN];
    char wchan[THREAD_NAME_LEN];
    u64 rsp;                    /* saved by sched_switch */
    u8 *stack;                  /* lowest byte */
    u32 stack_size;
    bool stack_owned;           /* allocated by thread_spawn (not the boot stack) */
    u32 stack_hwm;              /* recorded at exit, once the stack is gone */
    u64 cpu_cycles;             /* TSC cycles run, up to the last switch-out */
    u64 run_tsc;                /* TSC when last switched in */
    u64 switches;
    u64 start_ns;
    u64 wake_tick;              /* while SLEEPING; ~0 = no timeout (blocked) */
    bool blocked;               /* SLEEPING in thread_block: thread_wake ends it */
    bool wake_pending;          /* thread_wake came (while blocked, or before) */
    bool boost;                 /* woken with a wakeup preemption due (service only) */
    u64 boost_cycles;           /* TSC cycles run on wakeup preemptions since the
                                   rotation last reached this thread */
    /* --- sync.c: the wait queue a thread is blocked on --- */
    struct thread *wait_next;   /* next waiter on wait_q */
    struct waitq *wait_q;       /* queue it waits on; a waker clears it (woken) */
    struct mutex *wait_mutex;   /* mutex it waits for (watchdog's owner graph) */
    u64 wait_since_ns;          /* uptime when it began to wait on wait_q */
};

extern struct thread sched_threads[THREAD_MAX];
extern struct thread *sched_cur;

/* The current thread gives up the CPU and ends its turn in the rotation;
 * switch to the next thread (interrupts off). */
void sched_resched(void);
/* Note a new sleeper's wake tick. */
void sched_note_wake(u64 tick);
/* Make blocked thread t runnable now, with a wakeup preemption due if it
 * is a service thread (taken at the next sched_irq_exit or tick). */
void sched_wake_thread(struct thread *t);
/* sync.c: sleep (interrupts off) until sched_wake_thread or, if timeout_ms
 * > 0, the timeout; thread_wake does not end it (thread.c). */
void thread_park(const char *wchan, u32 timeout_ms);
/* watchdog.c: start the deadlock watchdog (once; sync.c, first mutex wait). */
void watchdog_arm(void);
#endif
