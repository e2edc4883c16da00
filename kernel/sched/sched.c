/* The scheduler: round-robin over the thread table, preemptive on the
 * timer tick (SCHED_SLICE_TICKS per turn), "idle" (slot 0, the boot
 * context) only when nothing else can run.  Called by kmain (sched_init,
 * sched_idle), the timer interrupt (sched_tick) and thread.c (resched). */
#include "arch.h"
#include "kernel.h"
#include "lib.h"
#include "sched_int.h"
#include "x86.h"

#define SCHED_IDLE_FILL_GAP 512         /* keep clear of idle's live frames */

struct thread sched_threads[THREAD_MAX];
struct thread *sched_cur;
static u32 sched_slice;
static u64 sched_next_wake = ~0ull;

extern u8 boot_stack_bottom[], boot_stack_top[];

/* Make the running boot context thread "idle" in slot 0.  Its unused
 * boot stack is filled with the pattern so its high-water mark means
 * something. */
void sched_init(void)
{
    struct thread *t = &sched_threads[0];
    u64 rsp = (u64)__builtin_frame_address(0) - SCHED_IDLE_FILL_GAP;

    for (u64 *p = (u64 *)boot_stack_bottom; (u64)p < rsp; p++)
        *p = THREAD_STACK_FILL;
    memset(t, 0, sizeof *t);
    t->used = true;
    t->state = WIRE_TS_RUNNING;
    t->prio = THREAD_PRIO_IDLE;
    t->flags = THREAD_F_SERVICE;
    str_copy(t->name, "idle", sizeof t->name);
    t->stack = boot_stack_bottom;
    t->stack_size = (u32)(boot_stack_top - boot_stack_bottom);
    t->start_ns = time_ns();
    t->run_tsc = rdtsc();
    t->switches = 1;
    sched_cur = t;
    sched_slice = SCHED_SLICE_TICKS;
}

/* Bytes of t's stack ever used: scan up from the bottom for the first word
 * that lost the fill pattern. */
u32 sched_stack_used(struct thread *t)
{
    if (!t->stack)
        return t->stack_hwm;
    const u64 *p = (const u64 *)t->stack, *end = (const u64 *)(t->stack + t->stack_size);
    while (p < end && *p == THREAD_STACK_FILL)
        p++;
    return (u32)((const u8 *)end - (const u8 *)p);
}

/* Next runnable non-idle thread after the current one (round robin), the
 * current one if it is still runnable, else idle. */
static struct thread *sched_pick(void)
{
    u32 cur = (u32)(sched_cur - sched_threads);
    for (u32 i = 1; i <= THREAD_MAX; i++) {
        struct thread *t = &sched_threads[(cur + i) % THREAD_MAX];
        if (t->used && t->state == WIRE_TS_RUNNABLE && t->prio != THREAD_PRIO_IDLE)
            return t;
    }
    return &sched_threads[0];
}

/* Switch to the thread sched_pick chooses, charging CPU time to the one
 * leaving.  Interrupts must be off; returns when the caller runs again. */
void sched_resched(void)
{
    struct thread *prev = sched_cur;
    if (prev->state == WIRE_TS_RUNNING)
        prev->state = WIRE_TS_RUNNABLE;
    struct thread *next = sched_pick();
    next->state = WIRE_TS_RUNNING;
    sched_slice = SCHED_SLICE_TICKS;
    if (next == prev)
        return;
    if (prev->stack && *(u64 *)prev->stack != THREAD_STACK_FILL && prev->state != WIRE_TS_DEAD)
        panic("thread %u \"%s\": stack overflow (%u bytes)", prev->tid, prev->name,
              prev->stack_size);
    u64 now = rdtsc();
    prev->cpu_cycles += now - prev->run_tsc;
    next->run_tsc = now;
    next->switches++;
    sched_cur = next;
    sched_switch(&prev->rsp, next->rsp);
}

void sched_note_wake(u64 tick)
{
    if (tick < sched_next_wake)
        sched_next_wake = tick;
}

/* Make every sleeper due by `ticks` runnable; recompute the next wake. */
static void sched_wake(u64 ticks)
{
    u64 next = ~0ull;
    for (u32 i = 0; i < THREAD_MAX; i++) {
        struct thread *t = &sched_threads[i];
        if (!t->used || t->state != WIRE_TS_SLEEPING)
            continue;
        if (t->wake_tick <= ticks)
            t->state = WIRE_TS_RUNNABLE;
        else if (t->wake_tick < next)
            next = t->wake_tick;
    }
    sched_next_wake = next;
}

/* Timer interrupt (interrupts off): wake sleepers; leave idle as soon as
 * anything is runnable; preempt a thread whose slice is used up. */
void sched_tick(u64 ticks)
{
    if (!sched_cur)
        return;
    if (ticks >= sched_next_wake)
        sched_wake(ticks);
    if (sched_cur->prio == THREAD_PRIO_IDLE || --sched_slice == 0)
        sched_resched();
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
