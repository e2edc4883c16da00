/* stack(): walking the kernel stack at a probe (stack.c), for the engine. */
#ifndef UNIK_PROBE_STACK_H
#define UNIK_PROBE_STACK_H
#include "types.h"

/* A walk's origin: the address of a {saved rbp, pc} frame record on the
 * current thread's stack (its pc is frame 0), with in its low bits who
 * built it, which says where frame 0's stack pointer was: */
#define STACK_ORIGIN_TRAP 1ull          /* traps.S, just below a struct trap_frame */
#define STACK_ORIGIN_SITE 2ull          /* site_entry.S, below the block's 7 words */
#define STACK_ORIGIN_MASK 3ull
#define STACK_SITE_SP (16 + 7 * 8)      /* the probed code's rsp, from site_entry's record */

/* The pcs of the frames from origin o outwards: at most max into pcs,
 * innermost first; returns how many.  Never faults; 0 for o == 0. */
u32 stack_walk(u64 o, u64 *pcs, u32 max);
#endif
