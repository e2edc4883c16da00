/* Kernel threads: creation, sleeping, blocking and waking, exit and the listing the probe
 * channel's THREADS request reports.  Dead threads stay listed until their
 * slot is needed (THREAD_MAX bounds the table); their stacks are freed by
 * the next thread_spawn. */
#include "arch.h"
#include "fbt.h"
#include "kernel.h"
#include "flight.h"
#include "lib.h"
#include "mm.h"
#include "probe_site.h"
#include "sched_int.h"
#include "x86.h"

/* sched:::thread-create -- thread_spawn made a runnable thread (it has not
 * run yet). */
PROBE_DEFINE(sched, thread_create, struct thread *, thread);
/* sched:::thread-exit -- the current thread ends (interrupts off, just
 * before it leaves the CPU for good). */
PROBE_DEFINE(sched, thread_exit, struct thread *, thread);
/* sched:::sleep -- the current thread goes to sleep (thread_sleep_ms),
 * blocks until woken (thread_block) or waits on a semaphore, mutex or
 * mailbox (thread_park, wchan "mutex:NAME"...); timeout_ms is how long at
 * most, 0 for no timeout (not thread_sleep_ms).  Interrupts off. */
PROBE_DEFINE(sched, sleep, struct thread *, thread, string, wchan, uint32_t, timeout_ms);

static u32 thread_next_tid = 1;         /* idle is tid 0 */

void sched_thread_start(void);          /* switch.S */

/* Give back a stack of size bytes at stk and the guard page below it
 * (mapped again first: the page allocator zeroes what it hands out). */
static void thread_free_stack(u8 *stk, u32 size)
{
    guard_set((u64)stk - PAGE_SIZE, false);
    page_free_n(stk - PAGE_SIZE, size / PAGE_SIZE + 1);
}

/* Free the stacks of dead threads (never the running one's). */
static void thread_reap(void)
{
    for (u32 i = 1; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        u64 f = irq_save();
        u8 *stk = NULL;
        u32 size = 0;
        if (t->used && t->state == THREAD_DEAD && t->stack_owned && t != sched_cur) {
            stk = t->stack;
            size = t->stack_size;
            t->stack = NULL;
            t->stack_owned = false;
        }
        irq_restore(f);
        if (stk)
            thread_free_stack(stk, size);
    }
}

/* A free slot, else the oldest dead thread's (interrupts off). */
static struct thread *thread_slot(void)
{
    struct thread *oldest = NULL;
    for (u32 i = 1; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used)
            return t;
        if (t->state == THREAD_DEAD && !t->stack && (!oldest || t->tid < oldest->tid))
            oldest = t;
    }
    return oldest;
}

/* The first frame sched_switch pops: callee-saved registers, with r12 =
 * fn and r13 = arg, returning into sched_thread_start. */
static u64 thread_initial_stack(u8 *top, thread_fn fn, void *arg)
{
    u64 *sp = (u64 *)top;
    *--sp = (u64)sched_thread_start;    /* return address */
    *--sp = 0;                          /* rbp */
    *--sp = 0;                          /* rbx */
    *--sp = (u64)fn;                    /* r12 */
    *--sp = (u64)arg;                   /* r13 */
    *--sp = 0;                          /* r14 */
    *--sp = 0;                          /* r15 */
    return (u64)sp;
}

/* Create a runnable thread; NULL when out of memory or slots. */
struct thread *thread_spawn(const char *name, thread_fn fn, void *arg, u32 flags, u32 stack)
{
    u32 size = (u32)ALIGN_UP(stack ? stack : THREAD_STACK_DEFAULT, PAGE_SIZE);
    thread_reap();
    u8 *stk = page_alloc_n(size / PAGE_SIZE + 1);     /* the guard page, then the stack */
    if (!stk)
        return NULL;
    guard_set((u64)stk, true);          /* without a page table: the canary still checks */
    stk += PAGE_SIZE;
    for (u64 *p = (u64 *)stk; p < (u64 *)(stk + size); p++)
        *p = THREAD_STACK_FILL;

    u64 f = irq_save();
    struct thread *t = thread_slot();
    if (!t) {
        irq_restore(f);
        thread_free_stack(stk, size);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->used = true;
    t->tid = thread_next_tid++;
    t->prio = (flags & THREAD_F_SERVICE) ? THREAD_PRIO_SERVICE : THREAD_PRIO_APP;
    t->flags = (u16)flags;
    str_copy(t->name, name, sizeof t->name);
    t->stack = stk;
    t->stack_size = size;
    t->stack_owned = true;
    t->start_ns = time_ns();
    t->rsp = thread_initial_stack(stk + size, fn, arg);
    t->state = THREAD_RUNNABLE;
    PROBE_FIRE(sched, thread_create, t);
    flight_record_str(FLIGHT_THREAD_CREATE, t->tid, t->name);
    irq_restore(f);
    return t;
}

/* Give up the CPU to the next runnable thread (if any). */
void thread_yield(void)
{
    u64 f = irq_save();
    sched_resched();
    irq_restore(f);
}

/* Ticks that last at least ms milliseconds: rounded up, plus one so a
 * partial current tick never counts.  For thread_sleep_ms and
 * thread_block. */
static u64 thread_ms_ticks(u32 ms)
{
    return ((u64)ms * TIMER_HZ + 999) / 1000 + 1;
}

/* Sleep at least ms milliseconds.  Before the scheduler runs, spins. */
void thread_sleep_ms(u32 ms, const char *wchan)
{
    if (!sched_cur) {
        u64 until = time_ns() + (u64)ms * 1000000;
        while (time_ns() < until)
            cpu_relax();
        return;
    }
    u64 f = irq_save();
    struct thread *t = sched_cur;
    t->wake_tick = time_ticks() + thread_ms_ticks(ms);
    t->state = THREAD_SLEEPING;
    str_copy(t->wchan, wchan ? wchan : "sleep", sizeof t->wchan);
    sched_note_wake(t->wake_tick);
    PROBE_FIRE(sched, sleep, t, t->wchan, ms);
    flight_record_str(FLIGHT_SCHED_SLEEP, ms, t->wchan);
    sched_resched();
    t->wchan[0] = 0;
    irq_restore(f);
}

/* Block until thread_wake (true) or timeout_ms, if not 0 (false); a wake
 * that came before returns at once.  Callers: the probe channel waiting
 * for its device's interrupt (chan/server.c, drivers/vcons.c). */
bool thread_block(const char *wchan, u32 timeout_ms)
{
    if (!sched_cur) {
        thread_sleep_ms(timeout_ms, wchan);
        return false;
    }
    u64 f = irq_save();
    struct thread *t = sched_cur;
    if (!t->wake_pending) {
        t->blocked = true;
        t->wake_tick = timeout_ms ? time_ticks() + thread_ms_ticks(timeout_ms) : ~0ull;
        t->state = THREAD_SLEEPING;
        str_copy(t->wchan, wchan ? wchan : "block", sizeof t->wchan);
        if (timeout_ms)
            sched_note_wake(t->wake_tick);
        PROBE_FIRE(sched, sleep, t, t->wchan, timeout_ms);
        flight_record_str(FLIGHT_SCHED_SLEEP, timeout_ms, t->wchan);
        sched_resched();
        t->blocked = false;
        t->wchan[0] = 0;
    }
    bool woken = t->wake_pending;
    t->wake_pending = false;
    irq_restore(f);
    return woken;
}

/* Sleep until a wait queue's waker makes this thread runnable
 * (sched_wake_thread) or timeout_ms passes (0 = no timeout); thread_wake
 * only leaves a pending wake for the next thread_block.  Interrupts off;
 * the caller (sync.c's waitq_wait) tells a wake from a timeout. */
void thread_park(const char *wchan, u32 timeout_ms)
{
    struct thread *t = sched_cur;
    if (!t || t->prio == THREAD_PRIO_IDLE)
        panic("thread_park on %s: idle or boot context cannot block", wchan);
    t->wake_tick = timeout_ms ? time_ticks() + thread_ms_ticks(timeout_ms) : ~0ull;
    t->state = THREAD_SLEEPING;
    str_copy(t->wchan, wchan, sizeof t->wchan);
    if (timeout_ms)
        sched_note_wake(t->wake_tick);
    PROBE_FIRE(sched, sleep, t, t->wchan, timeout_ms);
    sched_resched();
    t->wchan[0] = 0;
}

/* Wake t if it is in thread_block, else make its next thread_block return
 * at once.  Interrupt handlers call it (vcons.c's, via chan/server.c). */
void thread_wake(struct thread *t)
{
    if (!t)
        return;
    u64 f = irq_save();
    if (t->used && t->state != THREAD_DEAD) {
        t->wake_pending = true;
        if (t->blocked)
            sched_wake_thread(t);
    }
    irq_restore(f);
}

/* End the calling thread; it stays listed as dead. */
void thread_exit(void)
{
    cpu_cli();
    struct thread *t = sched_cur;
    PROBE_FIRE(sched, thread_exit, t);
    flight_record(FLIGHT_THREAD_EXIT, t->tid, 0, 0);
    t->stack_hwm = sched_stack_used(t);
    t->state = THREAD_DEAD;
    t->wchan[0] = 0;
    sched_resched();
    panic("thread %u: resumed after exit", t->tid);
}

FBT_EXCLUDED struct thread *thread_current(void)
{
    return sched_cur;
}

FBT_EXCLUDED const char *thread_name(struct thread *t)
{
    return t ? t->name : "?";
}

FBT_EXCLUDED u32 thread_index(struct thread *t)
{
    return (u32)(t - sched_threads);
}

FBT_EXCLUDED u32 thread_id(struct thread *t)
{
    return t ? t->tid : 0;
}

/* The bounds of t's stack, for the probe engine's stack() walk (which
 * must never leave them); false if t has no stack. */
bool thread_stack_bounds(struct thread *t, u64 *lo, u64 *hi)
{
    if (!t || !t->stack)
        return false;
    *lo = (u64)t->stack;
    *hi = *lo + t->stack_size;
    return true;
}

/* CPU time thread t has run, in ns, up to now if it is running (the probe
 * VM's vtimestamp; interrupts off). */
FBT_EXCLUDED u64 thread_cpu_ns(struct thread *t)
{
    if (!t)
        return 0;
    u64 cycles = t->cpu_cycles;
    if (t == sched_cur)
        cycles += rdtsc() - t->run_tsc;
    return time_cycles_to_ns(cycles);
}

/* One thread_info record for t (interrupts off). */
static void thread_fill(struct thread_info *w, struct thread *t)
{
    u64 cycles = t->cpu_cycles;
    if (t == sched_cur)
        cycles += rdtsc() - t->run_tsc;
    memset(w, 0, sizeof *w);
    w->tid = t->tid;
    w->state = t->state;
    w->priority = t->prio;
    w->flags = t->flags;
    str_copy(w->name, t->name, sizeof w->name);
    if (t->state == THREAD_SLEEPING)
        str_copy(w->wchan, t->wchan, sizeof w->wchan);
    w->cpu_ns = time_cycles_to_ns(cycles);
    w->switches = t->switches;
    w->stack_size = t->stack_size;
    w->stack_hwm = sched_stack_used(t);
    w->start_ns = t->start_ns;
}

/* Fill up to max records (table order); *total = threads listed. */
u32 thread_list(struct thread_info *out, u32 max, u32 *total)
{
    u32 n = 0, all = 0;
    u64 f = irq_save();
    for (u32 i = 0; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used)
            continue;
        if (n < max)
            thread_fill(&out[n++], t);
        all++;
    }
    irq_restore(f);
    if (total)
        *total = all;
    return n;
}

/* Threads alive (not dead). */
u32 thread_count(void)
{
    u32 n = 0;
    u64 f = irq_save();
    for (u32 i = 0; i < THREAD_MAX; i++)
        if (sched_threads[i].used && sched_threads[i].state != THREAD_DEAD)
            n++;
    irq_restore(f);
    return n;
}

/* The thread whose stack guard page (the page below its stack) holds
 * addr, with its stack's lowest byte in *lo; NULL if none.  Called by the
 * panic path (interrupts off) for a #PF or #DF. */
struct thread *thread_guarded(u64 addr, u64 *lo)
{
    for (u32 i = 0; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        u64 s = (u64)t->stack;
        if (t->used && t->stack_owned && s && addr >= s - PAGE_SIZE && addr < s) {
            *lo = s;
            return t;
        }
    }
    return NULL;
}

u32 thread_stack_size(struct thread *t)
{
    return t ? t->stack_size : 0;
}
