/* The scheduler: round-robin over the thread table, preemptive on the
 * timer tick (SCHED_SLICE_TICKS per turn), "idle" (slot 0, the boot
 * context) only when nothing else can run.  Called by kmain (sched_init,
 * sched_idle), the timer interrupt (sched_tick) and thread.c (resched).
 *
 * Wakeup preemption: when a sleeping service thread (THREAD_F_SERVICE,
 * e.g. probe-chan) is woken by the tick, or by an interrupt handler's
 * thread_wake (taken as the handler ends: sched_irq_exit), it runs at
 * once, preempting an application thread (or idle), instead of waiting for
 * its turn in the rotation.
 * The preempted turn is only interrupted: when the service thread sleeps
 * again, the rotation resumes with the same thread and the rest of its
 * slice.  So that service threads cannot starve applications, the time a
 * service thread runs this way is counted (boost_cycles) and limited to
 * SCHED_BOOST_TICKS between two passes of the rotation over its slot;
 * past that it waits for its turn like any thread.  A service thread that
 * never sleeps is never woken, so it is rotated like any other. */
#include "arch.h"
#include "kernel.h"
#include "flight.h"
#include "lib.h"
#include "probe_site.h"
#include "sched_int.h"
#include "x86.h"

/* sched:::switch -- the CPU goes from prev to next (interrupts off, just
 * before the stack switch; prev's state says why: runnable, sleeping, dead). */
PROBE_DEFINE(sched, switch, struct thread *, prev, struct thread *, next);
/* sched:::wakeup -- a sleeping or blocked thread becomes runnable (timer
 * tick or thread_wake; interrupts off). */
PROBE_DEFINE(sched, wakeup, struct thread *, thread);

#define SCHED_IDLE_FILL_GAP 512         /* keep clear of idle's live frames */

struct thread sched_threads[THREAD_MAX];
struct thread *sched_cur;
static u32 sched_slice;                 /* ticks sched_cur may still run */
static u64 sched_next_wake = ~0ull;
static struct thread *sched_turn;       /* whose turn it is in the rotation */
static u32 sched_turn_left;             /* ticks left of an interrupted turn; 0 = over */
static bool sched_boosting;             /* sched_cur runs on a wakeup preemption */
static u64 sched_boost_tsc;             /* TSC when that run began */
static u64 sched_tick_cycles;           /* TSC cycles per tick */
static u64 sched_boost_budget;          /* SCHED_BOOST_TICKS in TSC cycles */
static bool sched_preempt_due;          /* thread_wake woke a service thread due a boost */

extern u8 boot_stack_bottom[], boot_stack_top[];

/* Make the running boot context thread "idle" in slot 0.  Its unused
 * boot stack is filled with the pattern so its high-water mark means
 * something.  Called by kmain after time_init (the TSC is calibrated). */
void sched_init(void)
{
    struct thread *t = &sched_threads[0];
    u64 rsp = (u64)__builtin_frame_address(0) - SCHED_IDLE_FILL_GAP;

    for (u64 *p = (u64 *)boot_stack_bottom; (u64)p < rsp; p++)
        *p = THREAD_STACK_FILL;
    memset(t, 0, sizeof *t);
    t->used = true;
    t->state = THREAD_RUNNING;
    t->prio = THREAD_PRIO_IDLE;
    t->flags = THREAD_F_SERVICE;
    str_copy(t->name, "idle", sizeof t->name);
    t->stack = boot_stack_bottom;
    t->stack_size = (u32)(boot_stack_top - boot_stack_bottom);
    t->start_ns = time_ns();
    t->run_tsc = rdtsc();
    t->switches = 1;
    sched_cur = t;
    sched_turn = t;
    sched_slice = SCHED_SLICE_TICKS;
    sched_tick_cycles = time_tsc_hz() / TIMER_HZ;
    sched_boost_budget = sched_tick_cycles * SCHED_BOOST_TICKS;
}

/* Bytes of t's stack ever used: scan up from the bottom for the first word
 * that lost the fill pattern.  Called by thread.c (listing, exit) and the
 * panic report. */
u32 sched_stack_used(struct thread *t)
{
    if (!t->stack)
        return t->stack_hwm;
    const u64 *p = (const u64 *)t->stack, *end = (const u64 *)(t->stack + t->stack_size);
    while (p < end && *p == THREAD_STACK_FILL)
        p++;
    return (u32)((const u8 *)end - (const u8 *)p);
}

/* A runnable service thread with a wakeup preemption due, or NULL.  It
 * runs for what is left of its boost budget (at least a tick, at most a
 * slice).  Called by sched_pick. */
static struct thread *sched_pick_boost(void)
{
    for (u32 i = 1; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used || !t->boost || t->state != THREAD_RUNNABLE)
            continue;
        t->boost = false;
        u64 left = sched_boost_budget - MIN(t->boost_cycles, sched_boost_budget);
        u64 ticks = left / (sched_tick_cycles ? sched_tick_cycles : 1) + 1;
        sched_slice = (u32)MIN(ticks, (u64)SCHED_SLICE_TICKS);
        sched_boosting = true;
        sched_boost_tsc = rdtsc();
        return t;
    }
    return NULL;
}

/* The rotation's next thread: the interrupted turn's holder with the rest
 * of its slice, else the next runnable non-idle thread after it (maybe
 * itself again), else idle.  Passing a thread's slot renews its boost
 * budget.  Called by sched_pick. */
static struct thread *sched_pick_turn(void)
{
    sched_slice = SCHED_SLICE_TICKS;
    if (sched_turn_left && sched_turn->state == THREAD_RUNNABLE) {
        sched_slice = sched_turn_left;
        sched_turn_left = 0;
        return sched_turn;
    }
    sched_turn_left = 0;
    u32 from = (u32)(sched_turn - sched_threads);
    for (u32 i = 1; i <= THREAD_MAX; i++) {
        struct thread *t = &sched_threads[(from + i) % THREAD_MAX];
        if (!t->used || t->prio == THREAD_PRIO_IDLE)
            continue;
        t->boost_cycles = 0;
        if (t->state == THREAD_RUNNABLE) {
            sched_turn = t;
            return t;
        }
    }
    return &sched_threads[0];
}

/* The thread to run next, with sched_slice set: a woken service thread
 * first, else the rotation.  Called by sched_run. */
static struct thread *sched_pick(void)
{
    struct thread *t = sched_pick_boost();
    return t ? t : sched_pick_turn();
}

/* Bookkeeping for prev leaving the CPU: charge a wakeup-preemption run to
 * its budget, or remember how much of its rotation turn is left when
 * keep_turn (it was preempted by a woken service thread).  Called by
 * sched_run. */
static void sched_leave(struct thread *prev, bool keep_turn)
{
    if (sched_boosting) {
        prev->boost_cycles += rdtsc() - sched_boost_tsc;
        sched_boosting = false;
    } else if (prev == sched_turn) {
        sched_turn_left = keep_turn ? sched_slice : 0;
    }
}

/* Switch to the thread sched_pick chooses, charging CPU time to the one
 * leaving; keep_turn as for sched_leave.  Interrupts must be off; returns
 * when the caller runs again.  Called by sched_resched and sched_tick. */
static void sched_run(bool keep_turn)
{
    struct thread *prev = sched_cur;
    if (prev->state == THREAD_RUNNING)
        prev->state = THREAD_RUNNABLE;
    sched_leave(prev, keep_turn);
    struct thread *next = sched_pick();
    next->state = THREAD_RUNNING;
    if (next == prev)
        return;
    if (prev->stack && *(u64 *)prev->stack != THREAD_STACK_FILL && prev->state != THREAD_DEAD)
        panic("thread %u \"%s\": stack overflow (%u bytes)", prev->tid, prev->name,
              prev->stack_size);
    flight_record(FLIGHT_SCHED_SWITCH, prev->tid, next->tid, prev->state);
    u64 now = rdtsc();
    prev->cpu_cycles += now - prev->run_tsc;
    next->run_tsc = now;
    next->switches++;
    sched_cur = next;
    PROBE_FIRE(sched, switch, prev, next);
    sched_switch(&prev->rsp, next->rsp);
}

/* The current thread gives up the CPU and ends its turn (yield, sleep,
 * exit in thread.c; the idle loop).  Interrupts must be off. */
void sched_resched(void)
{
    sched_run(false);
}

/* Note a new sleeper's wake tick.  Called by thread_sleep_ms. */
void sched_note_wake(u64 tick)
{
    if (tick < sched_next_wake)
        sched_next_wake = tick;
}

/* Make sleeping thread t runnable; a service thread with boost budget
 * left gets a wakeup preemption due (true).  Called by sched_wake and
 * sched_wake_thread. */
static bool sched_ready(struct thread *t)
{
    t->state = THREAD_RUNNABLE;
    PROBE_FIRE(sched, wakeup, t);
    flight_record(FLIGHT_SCHED_WAKEUP, t->tid, 0, 0);
    if (t->prio == THREAD_PRIO_SERVICE && t->boost_cycles < sched_boost_budget)
        return t->boost = true;
    return false;
}

/* Make every sleeper due by `ticks` runnable (sched_ready).  Recompute the
 * next wake; true if a wakeup preemption is due.  Called by sched_tick. */
static bool sched_wake(u64 ticks)
{
    u64 next = ~0ull;
    bool boost = false;
    for (u32 i = 0; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used || t->state != THREAD_SLEEPING)
            continue;
        if (t->wake_tick > ticks) {
            next = MIN(next, t->wake_tick);
            continue;
        }
        boost |= sched_ready(t);
    }
    sched_next_wake = next;
    return boost;
}

/* A blocked thread was woken (thread_wake, interrupts off): runnable now;
 * its wakeup preemption, if due, is taken by sched_irq_exit (or the next
 * tick). */
void sched_wake_thread(struct thread *t)
{
    if (t->state == THREAD_SLEEPING && sched_ready(t))
        sched_preempt_due = true;
}

/* Leave idle, or preempt an application thread (keeping the rest of its
 * turn), for a woken service thread.  Called by sched_tick and
 * sched_irq_exit with interrupts off. */
static void sched_preempt(void)
{
    if (sched_cur->prio == THREAD_PRIO_IDLE)
        sched_run(false);
    else if (sched_cur->prio < THREAD_PRIO_SERVICE)
        sched_run(true);
}

/* After an interrupt handler and its EOI (arch/trap.c, interrupts off):
 * take a wakeup preemption thread_wake made due, at once instead of at the
 * next tick. */
void sched_irq_exit(void)
{
    if (!sched_cur || !sched_preempt_due)
        return;
    sched_preempt_due = false;
    sched_preempt();
}

/* Timer interrupt (interrupts off): wake sleepers; leave idle as soon as
 * anything is runnable; preempt a thread whose slice is used up; let a
 * woken service thread preempt an application thread (keeping the rest of
 * the application thread's turn for later). */
void sched_tick(u64 ticks)
{
    if (!sched_cur)
        return;
    bool boost = ticks >= sched_next_wake && sched_wake(ticks);
    boost |= sched_preempt_due;
    sched_preempt_due = false;
    if (sched_cur->prio == THREAD_PRIO_IDLE || --sched_slice == 0)
        sched_run(false);
    else if (boost)
        sched_preempt();
}

/* kmain's tail: the idle thread.  Halts until the next interrupt; the tick
 * switches away whenever another thread is runnable. */
void sched_idle(void)
{
    for (;;) {
        cpu_cli();
        sched_resched();
        cpu_sti_hlt();
    }
}
