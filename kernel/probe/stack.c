/* stack(): the kernel backtrace at a probe, by the frame-pointer chain
 * (the kernel is built with -fno-omit-frame-pointer).  The firing path
 * says where the probed code's frames start -- a {saved rbp, pc} frame
 * record, which site_entry.S and traps.S both build (probe_st.stack_fp,
 * its low bits saying which built it) -- so the engine's own frames are
 * never walked.
 *
 * Frame 0 is the record's pc.  gcc leaves a function that makes no call
 * of its own frameless (a site's call is hidden in asm, so a probed leaf
 * has no frame), and an interrupt may land before a prologue or on a
 * ret: then the saved rbp is already the caller's, and the return
 * address into the caller is found as the panic report finds it
 * (stack_leaf_slot) -- else that caller would be missing.
 *
 * The walk never faults: every word read lies inside the current
 * thread's stack, records 8-aligned and each above the last, and it
 * stops after max frames, at a zero return address or a bad record.
 * Return addresses fbt's return trampoline rewrote are put back by
 * fbt_unwind_ret (weak here: without fbt the address is the truth).
 * Called by the engine's stack callback (engine.c), interrupts off. */
#include "arch.h"
#include "kernel.h"
#include "thread.h"
#include "stack.h"

#define STACK_PROLOGUE_SCAN 32          /* bytes of a function searched for its prologue */

extern const u8 __text_end[];

/* The true return address behind ret, which may be fbt's return
 * trampoline; *k counts trampolines met so far in this walk.  fbt
 * defines the strong one. */
__attribute__((weak)) u64 fbt_unwind_ret(struct thread *t, u64 ret, u32 *k)
{
    (void)t;
    (void)k;
    return ret;
}

/* Where frame 0's return address is when its function has no frame of
 * its own at pc, given sp (the stack pointer there); 0 when the rbp
 * chain is right.  The prologue is `push %rbp` ... `mov %rsp,%rbp` in
 * the function's first bytes (gcc may schedule other instructions in
 * between).  exact: pc is the interrupted instruction itself; else it is
 * in a site's out-of-line block, whose offset says nothing of the
 * prologue, so only "has none" counts. */
static u64 stack_leaf_slot(u64 pc, u64 sp, bool exact)
{
    u64 off, m, p;
    if (!ksyms_lookup(pc, &off))        /* pc is in .text, after the first symbol */
        return 0;
    const u8 *fn = (const u8 *)(pc - off);
    if ((u64)fn + STACK_PROLOGUE_SCAN > (u64)__text_end)
        return 0;
    if (exact && fn[off] == 0xc3)       /* at ret: the frame is gone */
        return sp;
    for (m = 1; m + 3 <= STACK_PROLOGUE_SCAN; m++)          /* mov %rsp,%rbp */
        if (fn[m] == 0x48 && fn[m + 1] == 0x89 && fn[m + 2] == 0xe5)
            break;
    for (p = m; p > 0 && fn[p - 1] != 0x55; p--)            /* push %rbp */
        ;
    if (m + 3 > STACK_PROLOGUE_SCAN || p == 0)
        return sp;                      /* frameless */
    if (!exact)
        return 0;
    if (off < p)                        /* before push %rbp */
        return sp;
    return off <= m ? sp + 8 : 0;       /* pushed, not yet the frame */
}

/* Is [a, a+8) a word of the stack [lo, hi)? */
static bool stack_in(u64 a, u64 lo, u64 hi)
{
    return !(a & 7) && a >= lo && a <= hi - 8;
}

/* Walk from origin o (see stack.h): pcs[0] is its record's pc, then the
 * return address of each caller.  Returns the frames written (<= max). */
u32 stack_walk(u64 o, u64 *pcs, u32 max)
{
    struct thread *t = thread_current();
    u64 lo, hi, fp = o & ~(u64)STACK_ORIGIN_MASK;
    u32 n = 0, k = 0;
    if (!fp || !max || !thread_stack_bounds(t, &lo, &hi) ||
        !stack_in(fp, lo, hi) || !stack_in(fp + 8, lo, hi))
        return 0;
    u64 next = ((const u64 *)fp)[0], pc = ((const u64 *)fp)[1], slot = 0;
    pcs[n++] = pc;
    if (o & STACK_ORIGIN_TRAP) {
        const struct trap_frame *f = (const struct trap_frame *)(fp + 16);
        if (stack_in((u64)&f->rsp, lo, hi))
            slot = stack_leaf_slot(pc, f->rsp, true);
    } else if (o & STACK_ORIGIN_SITE) {
        slot = stack_leaf_slot(pc, fp + STACK_SITE_SP, false);
    }
    if (slot && n < max && stack_in(slot, lo, hi) && *(const u64 *)slot)
        pcs[n++] = fbt_unwind_ret(t, *(const u64 *)slot, &k);
    for (fp = next; n < max; fp = next) {
        if (fp <= (o & ~(u64)STACK_ORIGIN_MASK) || !stack_in(fp, lo, hi) ||
            !stack_in(fp + 8, lo, hi))
            break;
        next = ((const u64 *)fp)[0];
        pc = ((const u64 *)fp)[1];
        if (!pc)
            break;
        pcs[n++] = fbt_unwind_ret(t, pc, &k);
        o = fp;
    }
    return n;
}
