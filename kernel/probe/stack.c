/* stack(): the kernel backtrace at a probe, by the frame-pointer chain
 * (the kernel is built with -fno-omit-frame-pointer).  The firing path
 * says where the probed code's frames start -- a {saved rbp, pc} frame
 * record, which site_entry.S and traps.S both build (probe_st.stack_fp)
 * -- so the engine's own frames are never walked.
 * The walk never faults: every record must lie inside the current
 * thread's stack, 8-aligned, each one above the last, and it stops after
 * max frames, at a zero return address or at a bad record.
 * Return addresses fbt's return trampoline rewrote are put back by
 * fbt_unwind_ret (weak here: without fbt the address is the truth).
 * Called by the engine's stack callback (engine.c) with interrupts off. */
#include "kernel.h"
#include "thread.h"
#include "stack.h"

/* The true return address behind ret, which may be fbt's return
 * trampoline; *k counts trampolines met so far in this walk.  fbt
 * defines the strong one. */
__attribute__((weak)) u64 fbt_unwind_ret(struct thread *t, u64 ret, u32 *k)
{
    (void)t;
    (void)k;
    return ret;
}

/* Walk from frame record fp: pcs[0] is its pc, then the return address
 * of each caller.  Returns the frames written (at most max). */
u32 stack_walk(u64 fp, u64 *pcs, u32 max)
{
    struct thread *t = thread_current();
    u64 lo, hi;
    u32 n = 0, k = 0;
    if (!fp || !thread_stack_bounds(t, &lo, &hi))
        return 0;
    while (n < max) {
        if ((fp & 7) || fp < lo || fp > hi - 16)
            break;
        u64 next = ((const u64 *)fp)[0], pc = ((const u64 *)fp)[1];
        if (!pc)
            break;
        pcs[n++] = fbt_unwind_ret(t, pc, &k);
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}
