/* Kernel threads and the preemptive scheduler. */
#ifndef UNIK_THREAD_H
#define UNIK_THREAD_H
#include "types.h"
#define THREAD_F_SERVICE 0x1       /* a kernel service (probe channel, idle) */
#define THREAD_F_APP 0x2           /* an application thread */
struct thread;

/* What a thread is doing (chan/ translates it to the wire's ThreadState). */
enum thread_state {
    THREAD_RUNNING,             /* on the CPU */
    THREAD_RUNNABLE,            /* waiting for the CPU */
    THREAD_SLEEPING,            /* sleeping or blocked (see wchan) */
    THREAD_DEAD,                /* exited; its slot is kept until reused */
};

/* One thread as thread_list() reports it (ps). */
struct thread_info {
    u32 tid;
    enum thread_state state;
    u8 priority;                /* 0 idle, 1 application, 2 service */
    u16 flags;                  /* THREAD_F_* */
    char name[24];
    char wchan[24];             /* what a sleeping thread waits on, else "" */
    u64 cpu_ns;                 /* CPU time consumed */
    u64 switches;               /* times switched in */
    u32 stack_size;             /* bytes of stack */
    u32 stack_hwm;              /* deepest stack use seen, bytes */
    u64 start_ns;               /* uptime at creation */
};

typedef void (*thread_fn)(void *arg);
/* Create a runnable thread; NULL on failure.  stack 0 = default size. */
struct thread *thread_spawn(const char *name, thread_fn fn, void *arg, u32 flags, u32 stack);
void thread_yield(void);
/* Sleep at least ms milliseconds; wchan names what the thread waits on. */
void thread_sleep_ms(u32 ms, const char *wchan);
/* Block until thread_wake(self) or, if timeout_ms > 0, that long has
 * passed; true when woken.  A thread_wake that came since the last
 * thread_block returned ends the next one at once, so a caller that checks
 * for work and then blocks loses no wakeup (checking with interrupts off
 * closes the window as well). */
bool thread_block(const char *wchan, u32 timeout_ms);
/* Wake t from thread_block (or make its next one return at once).  Safe
 * in an interrupt handler; a woken service thread preempts an application
 * thread when the handler ends (sched_irq_exit). */
void thread_wake(struct thread *t);
void thread_exit(void) __attribute__((noreturn));
struct thread *thread_current(void);
const char *thread_name(struct thread *t);
u32 thread_id(struct thread *t);
/* t's slot in the thread table (0 .. THREAD_MAX-1): fbt's shadow stacks. */
u32 thread_index(struct thread *t);
/* CPU time t has run in ns, the current slice included (interrupts off). */
u64 thread_cpu_ns(struct thread *t);
/* Fill up to max records; *total gets the number of threads. */
u32 thread_list(struct thread_info *out, u32 max, u32 *total);
u32 thread_count(void);
/* crash: the thread whose stack guard page holds addr (its stack's lowest
 * byte in *lo), else NULL; a thread's stack size in bytes. */
struct thread *thread_guarded(u64 addr, u64 *lo);
u32 thread_stack_size(struct thread *t);

/* stack() (probe/stack.c): [*lo, *hi) is t's stack; false if it has none. */
bool thread_stack_bounds(struct thread *t, u64 *lo, u64 *hi);
#endif
