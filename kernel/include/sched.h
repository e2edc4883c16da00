/* Scheduler internals used by kmain and the timer tick (arch/time.c);
 * threads themselves use thread.h. */
#ifndef UNIK_SCHED_H
#define UNIK_SCHED_H
#include "types.h"
struct thread;
/* Turn the boot context into the "idle" thread (stack = the boot stack). */
void sched_init(void);
/* Timer tick, interrupts off: wake sleepers, preempt when the slice ends or
 * when a woken service thread is due a wakeup preemption. */
void sched_tick(u64 ticks);
/* End of an interrupt handler that may have woken a thread (thread_wake),
 * after its EOI, interrupts off: switch to a woken service thread due a
 * wakeup preemption, as the tick would.  Called by arch/trap.c. */
void sched_irq_exit(void);
/* kmain's last call: the idle loop, never returns. */
void sched_idle(void) __attribute__((noreturn));
/* Deepest stack use of thread t in bytes (scans the fill pattern). */
u32 sched_stack_used(struct thread *t);
/* arch-independent context switch (sched/switch.S): save callee-saved
 * registers on the current stack, store rsp in *save, load rsp = next. */
void sched_switch(u64 *save, u64 next);
#endif
