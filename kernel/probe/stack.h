/* stack(): walking the kernel stack at a probe (stack.c), for the engine. */
#ifndef UNIK_PROBE_STACK_H
#define UNIK_PROBE_STACK_H
#include "types.h"

/* The pcs of the frames from frame record fp ({saved rbp, pc}, on the
 * current thread's stack) outwards: at most max into pcs, returns how
 * many.  Never faults; 0 for fp 0. */
u32 stack_walk(u64 fp, u64 *pcs, u32 max);
#endif
