/* fbt: function-boundary probes.  Every instrumented kernel function
 * (kernel/Makefile's FBT_CFLAGS) starts with a 5-byte nop whose address
 * gcc lists in __mcount_loc; fbt_init sorts that table, and function i of
 * it has probe ids ISA_FIRST_FBT_PROBE + 2*i (entry) and + 2*i + 1
 * (return).  Enabling either patches the nop to `call fbt_entry_tramp`
 * (fbt_tramp.S), which calls fbt_entry with the arguments and the return
 * address; a return probe swaps the caller's return address for
 * fbt_return_tramp and keeps the original on the thread's shadow stack,
 * so the function returns through fbt_return.
 *
 * Enable state is compact: a flag byte per function (entry/return wanted,
 * site refused) and a short list of linked enablings, each covering a run
 * of functions (its arg), so `fbt:::entry` is one enabling.  Patching is
 * site.c's technique: five byte stores with interrupts off, only over the
 * bytes expected (the text is the truth).
 *
 * This file runs on the firing path: it is compiled without -pg and calls
 * nothing that has an fbt site.  Callers: kmain (fbt_init), session.c
 * (fbt_probe_ok, fbt_link), engine.c (fbt_name), fbt_tramp.S (fbt_entry,
 * fbt_return), stack walkers (fbt_unwind_ret). */
#include "arch.h"
#include "fbt.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "probe.h"
#include "x86.h"
#include "engine.h"
#include "thread.h"
#include "tunables.h"

#define FBT_LEN 5
#define FBT_CALL 0xe8
#define FBT_ON_ENTRY 1              /* flag: an entry enabling covers it */
#define FBT_ON_RETURN 2             /* flag: a return enabling covers it */
#define FBT_BAD 0x80                /* flag: refused, never patched */
#define FBT_NONE 0xffffffffu
#define FBT_GRAIN_SHIFT 4           /* lookup granule: gcc aligns functions to 16 */
#define FBT_GRAIN_SHARED 0xffffffffu /* granule holding two sites: binary search */

/* One outstanding return probe: the caller's return address fbt_entry
 * replaced, where it was (checked on return) and the function. */
struct fbt_frame {
    u64 ret;
    u64 slot;
    u32 fn;
    u32 pad;
};

/* A thread's shadow stack (by thread slot; the last one is for code that
 * runs before the scheduler).  tid tells a reused slot from its owner. */
struct fbt_shadow {
    u32 tid;
    u32 depth;
    struct fbt_frame f[FBT_SHADOW_DEPTH];
};

static const u8 fbt_nop5[FBT_LEN] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

extern u64 __mcount_loc_start[], __mcount_loc_end[];
extern const u64 __fbtmods_start[], __fbtmods_end[];
extern const u8 __text_start[], __text_end[];
void fbt_entry_tramp(void);
void fbt_return_tramp(void);

static struct {
    u32 n;                          /* functions (sites) */
    u32 nen;                        /* linked enablings in en[] */
    u32 patched;                    /* sites holding the call now */
    u32 nbad;                       /* sites refused */
    u64 drops;                      /* return probes lost: shadow stack full */
    u64 *addr;                      /* sorted site addresses (__mcount_loc) */
    u8 *flags;                      /* per function: FBT_ON_* | FBT_BAD */
    u32 *grain;                     /* per 16 text bytes: 1 + the site there, 0
                                     * none, or FBT_GRAIN_SHARED */
    u32 ngrains;
    struct probe_enabling *en[FBT_ENABLINGS_MAX];
    struct fbt_shadow shadow[THREAD_MAX + 1];
} fbt;

u32 fbt_count(void) { return fbt.n; }
u32 fbt_enabled(void) { return fbt.patched; }
u64 fbt_drops(void) { return fbt.drops; }
u32 fbt_refused(void) { return fbt.nbad; }

/* Sort the site addresses in place (insertion sort: the linker leaves
 * them nearly sorted already). */
static void fbt_sort(u64 *a, u32 n)
{
    for (u32 i = 1; i < n; i++) {
        u64 v = a[i];
        u32 j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

/* Boot check of site i: inside .text, at a function's first byte, and
 * the nop.  A site that is not is never patched (and logged, unless it
 * is the body of a weak definition the link replaced: no symbol names
 * it, so the host does not list it either). */
static void fbt_check(u32 i)
{
    u64 a = fbt.addr[i], off = 0;
    const char *why = NULL;
    if (a < (u64)__text_start || a + FBT_LEN > (u64)__text_end)
        why = "is outside .text";
    else if (ksyms_lookup(a, &off) && off != 0) {
        fbt.flags[i] = FBT_BAD;         /* a weak definition the link dropped: */
        return;                         /* no symbol, never listed, never patched */
    } else if (memcmp((const void *)a, fbt_nop5, FBT_LEN))
        why = "is not the 5-byte nop";
    if (!why)
        return;
    fbt.flags[i] = FBT_BAD;
    fbt.nbad++;
    kprintf("fbt: site %u at 0x%lx %s: never patched\n", i, (unsigned long)a, why);
}

/* The direct lookup table: each site's granule of .text names it, so
 * fbt_find is one load and one compare for 16-byte aligned functions.
 * Without memory for it every lookup is a binary search. */
static void fbt_grains(void)
{
    fbt.ngrains = (u32)(((u64)__text_end - (u64)__text_start) >> FBT_GRAIN_SHIFT) + 1;
    fbt.grain = kzalloc((u64)fbt.ngrains * sizeof(u32));
    if (!fbt.grain) {
        fbt.ngrains = 0;
        return;
    }
    for (u32 i = 0; i < fbt.n; i++) {
        u64 a = fbt.addr[i];
        if (a < (u64)__text_start || a >= (u64)__text_end)
            continue;
        u32 *g = &fbt.grain[(a - (u64)__text_start) >> FBT_GRAIN_SHIFT];
        *g = *g ? FBT_GRAIN_SHARED : i + 1;
    }
}

/* Sort and check the sites (kmain, after mm_init, before any thread). */
void fbt_init(void)
{
    fbt.addr = __mcount_loc_start;
    fbt.n = (u32)(__mcount_loc_end - __mcount_loc_start);
    fbt_sort(fbt.addr, fbt.n);
    fbt.flags = kzalloc(fbt.n ? fbt.n : 1);
    if (!fbt.flags)
        panic("fbt: no memory for %u site flags", fbt.n);
    for (u32 i = 0; i < fbt.n; i++)
        fbt_check(i);
    fbt_grains();
    kprintf("fbt: %u functions%s\n", fbt.n, fbt.nbad ? " (some refused, see above)" : "");
}

/* Index of the function whose site is at addr, or FBT_NONE: its granule
 * says, unless it shares one (then a binary search). */
static inline u32 fbt_find(u64 addr)
{
    u64 g = (addr - (u64)__text_start) >> FBT_GRAIN_SHIFT;
    if (__builtin_expect(g < fbt.ngrains, 1)) {
        u32 v = fbt.grain[g];
        if (__builtin_expect(v != FBT_GRAIN_SHARED, 1))
            return v && fbt.addr[v - 1] == addr ? v - 1 : FBT_NONE;
    }
    u32 lo = 0, hi = fbt.n;
    while (lo < hi) {
        u32 mid = (lo + hi) / 2;
        u64 a = fbt.addr[mid];
        if (a == addr)
            return mid;
        if (a < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return FBT_NONE;
}

/* ------------------------------------------------------------ patching */

/* The 5 bytes of site i enabled: call rel32 to fbt_entry_tramp. */
static void fbt_call(u32 i, u8 out[FBT_LEN])
{
    i32 rel = (i32)((u64)fbt_entry_tramp - (fbt.addr[i] + FBT_LEN));
    out[0] = FBT_CALL;
    memcpy(out + 1, &rel, sizeof rel);
}

/* Site i to the call (on) or the nop (off) if it holds the other; a site
 * holding neither is refused.  Interrupts off (the caller's). */
static void fbt_patch(u32 i, bool on)
{
    u8 call[FBT_LEN];
    volatile u8 *p = (volatile u8 *)fbt.addr[i];
    fbt_call(i, call);
    const u8 *want = on ? call : fbt_nop5, *from = on ? fbt_nop5 : call;
    if (!memcmp((const void *)p, want, FBT_LEN))
        return;
    if (memcmp((const void *)p, from, FBT_LEN)) {
        fbt.flags[i] = FBT_BAD;
        fbt.nbad++;
        kprintf("fbt: site %u at 0x%lx changed under us: never patched\n", i,
                (unsigned long)fbt.addr[i]);
        return;
    }
    for (u32 k = 0; k < FBT_LEN; k++)
        p[k] = want[k];
    barrier();
    fbt.patched += on ? 1 : -1;
}

/* Enabling e's first function and run length; its kind (0 entry, 1
 * return) through *kind. */
static inline u32 fbt_run(const struct probe_enabling *e, u32 *first, u32 *kind)
{
    u32 rel = e->probe - ISA_FIRST_FBT_PROBE;
    *first = rel >> 1;
    *kind = rel & 1;
    return e->arg ? (u32)e->arg : 1;
}

/* The flags function i should have: what the linked enablings cover. */
static u8 fbt_wanted(u32 i)
{
    u8 f = 0;
    for (u32 j = 0; j < fbt.nen; j++) {
        u32 first, kind, n = fbt_run(fbt.en[j], &first, &kind);
        if (i - first < n)
            f |= kind ? FBT_ON_RETURN : FBT_ON_ENTRY;
    }
    return f;
}

bool fbt_probe_ok(u32 id, u64 arg)
{
    if (id < ISA_FIRST_FBT_PROBE)
        return false;
    u64 first = (id - ISA_FIRST_FBT_PROBE) >> 1, n = arg ? arg : 1;
    return first < fbt.n && n <= fbt.n - first;
}

/* Put e on the list (on) or take it off, interrupts off. */
static bool fbt_list(struct probe_enabling *e, bool on)
{
    if (on) {
        if (fbt.nen == FBT_ENABLINGS_MAX)
            return false;
        fbt.en[fbt.nen++] = e;
        return true;
    }
    for (u32 j = 0; j < fbt.nen; j++)
        if (fbt.en[j] == e) {
            memmove(&fbt.en[j], &fbt.en[j + 1], (fbt.nen - j - 1) * sizeof fbt.en[0]);
            fbt.nen--;
            return true;
        }
    return false;
}

/* Patch every site of function run [first, first + n) that should be on
 * (on) or is wanted by no enabling any more (off); one site at a time with
 * interrupts off, so a long run never holds them off for long. */
static void fbt_patch_run(u32 first, u32 n, bool on)
{
    for (u32 i = first; i < first + n && i < fbt.n; i++) {
        u64 f = irq_save();
        if (!(fbt.flags[i] & FBT_BAD) && (on || !fbt.flags[i]))
            fbt_patch(i, on);
        irq_restore(f);
    }
}

/* The list and the run's flags, in one step with interrupts off: what
 * fires changes for the whole run at once (a script counting two
 * functions sees both or neither). */
static bool fbt_arm(struct probe_enabling *e, bool on, u32 first, u32 n)
{
    u64 f = irq_save();
    bool ok = fbt_list(e, on);
    for (u32 i = first; ok && i < first + n && i < fbt.n; i++)
        if (!(fbt.flags[i] & FBT_BAD))
            fbt.flags[i] = fbt_wanted(i);
    irq_restore(f);
    return ok;
}

/* Link or unlink enabling e: on, patch its run's sites (a patched site
 * whose flags are 0 fires nothing), then arm them all at once; off,
 * disarm them all at once, then restore the sites no other enabling
 * wants.  Called by session_link with interrupts on. */
void fbt_link(struct probe_enabling *e, bool on)
{
    u32 first, kind, n = fbt_run(e, &first, &kind);
    if (on && fbt.nen == FBT_ENABLINGS_MAX) {
        kprintf("fbt: more than %u fbt enablings: one ignored\n", FBT_ENABLINGS_MAX);
        return;
    }
    if (on)
        fbt_patch_run(first, n, true);
    fbt_arm(e, on, first, n);
    if (!on)
        fbt_patch_run(first, n, false);
}

/* ------------------------------------------------------------ firing */

/* The shadow stack of the running thread (reset if its slot changed
 * hands: a thread that exited with return probes outstanding). */
static inline struct fbt_shadow *fbt_shadow_of(struct thread *t)
{
    struct fbt_shadow *sh = &fbt.shadow[t ? thread_index(t) : THREAD_MAX];
    u32 tid = thread_id(t);
    if (__builtin_expect(sh->tid != tid, 0)) {
        sh->tid = tid;
        sh->depth = 0;
    }
    return sh;
}

/* Run the clauses of every live enabling covering function fn's probe of
 * kind (0 entry, 1 return); interrupts are off.  A firing while the
 * engine runs is skipped and counted.  origin: the trampoline's frame
 * record whose pc is in the probed function (stack() starts there, so the
 * trampolines and this file never show in a stack). */
static inline __attribute__((always_inline)) void
fbt_fire(u32 fn, u32 kind, const u64 *args, u32 nargs, u64 origin)
{
    if (__builtin_expect(probe_st.busy, 0)) {
        for (u32 j = 0; j < fbt.nen; j++)
            fbt.en[j]->sess->st.reentrant++;
        return;
    }
    probe_st.busy = true;
    probe_st.stack_fp = origin;
    probe_firing(ISA_FIRST_FBT_PROBE + 2 * fn + kind, args, nargs);
    for (u32 j = 0; j < fbt.nen; j++) {
        struct probe_enabling *e = fbt.en[j];
        u32 first, k, n = fbt_run(e, &first, &k);
        struct probe_session *s = e->sess;
        if (k == kind && fn - first < n && __builtin_expect(s->live, 1))
            probe_clause(e, s);
    }
    probe_st.busy = false;
}

/* An enabled site was called (fbt_entry_tramp): args = rdi..r9 as the
 * function got them, ret[0] = the address after the site, ret[1] = the
 * function's return address (its caller's).  Fire the entry probe; for a
 * return probe, send the function's return through fbt_return_tramp. */
void fbt_entry(const u64 *args, u64 *ret)
{
    u64 f = irq_save();
    u32 fn = fbt_find(ret[0] - FBT_LEN);
    u8 fl = fn == FBT_NONE ? 0 : fbt.flags[fn];
    if (fl & FBT_ON_ENTRY)
        fbt_fire(fn, 0, args, 6, (u64)ret - 32);   /* fbt_entry_tramp's own frame record */
    if ((fl & FBT_ON_RETURN) && !probe_st.busy) {
        struct fbt_shadow *sh = fbt_shadow_of(thread_current());
        if (sh->depth < FBT_SHADOW_DEPTH) {
            struct fbt_frame *fr = &sh->f[sh->depth++];
            fr->ret = ret[1];
            fr->slot = (u64)&ret[1];
            fr->fn = fn;
            ret[1] = (u64)fbt_return_tramp;
        } else {
            fbt.drops++;
        }
    }
    irq_restore(f);
}

/* A function with a return probe returned into fbt_return_tramp, which
 * calls this with slot = where its return address was (the tramp pushed
 * a word there) and rax.  Put the original back in slot first (so stack
 * walks from the clause see it), then fire the return probe with arg0 =
 * 0 (the return site's offset is not known) and arg1 = rax. */
void fbt_return(u64 *slot, u64 rax)
{
    u64 f = irq_save();
    struct fbt_shadow *sh = fbt_shadow_of(thread_current());
    if (!sh->depth || sh->f[sh->depth - 1].slot != (u64)slot)
        panic("fbt: return through the trampoline at slot 0x%lx does not match the "
              "shadow stack (depth %u)", (unsigned long)slot, sh->depth);
    struct fbt_frame *fr = &sh->f[--sh->depth];
    *slot = fr->ret;
    if (fbt.flags[fr->fn] & FBT_ON_RETURN) {
        const u64 args[2] = {0, rax};
        fbt_fire(fr->fn, 1, args, 2, (u64)slot - 8);   /* fbt_return_tramp's frame record */
    }
    irq_restore(f);
}

/* ------------------------------------------------------------ names, unwinding */

/* The module (kernel subsystem or app) of the function at addr, from the
 * .fbtmods table the build generates ({count; {addr, name}[count]} sorted
 * by address); "" without it (the first link). */
static const char *fbt_module(u64 addr)
{
    if (__fbtmods_end - __fbtmods_start < 1)
        return "";
    const u64 *e = ksyms_entry(__fbtmods_start, addr);
    return e ? (const char *)e[1] : "";
}

/* Provider, module, function or name of fbt probe `probe` (engine.c's
 * probe_name_of); 0 for an id past the table. */
u64 fbt_name(u32 probe, u32 which)
{
    u32 fn = (probe - ISA_FIRST_FBT_PROBE) >> 1;
    u64 off = 0;
    if (fn >= fbt.n)
        return 0;
    switch (which) {
    case ISA_B_PROBEPROV: return (u64)"fbt";
    case ISA_B_PROBEMOD: return (u64)fbt_module(fbt.addr[fn]);
    case ISA_B_PROBEFUNC: {
        const char *s = ksyms_lookup(fbt.addr[fn], &off);
        return (u64)(s ? s : "");
    }
    default: return (u64)((probe - ISA_FIRST_FBT_PROBE) & 1 ? "return" : "entry");
    }
}

/* See fbt.h.  Reads t's shadow stack without locking: a walker runs with
 * interrupts off, or on a thread that is not running. */
u64 fbt_unwind_ret(struct thread *t, u64 ret, u32 *k)
{
    if (ret != (u64)fbt_return_tramp)
        return ret;
    const struct fbt_shadow *sh = &fbt.shadow[t ? thread_index(t) : THREAD_MAX];
    if (sh->tid != thread_id(t) || *k >= sh->depth)
        return ret;
    return sh->f[sh->depth - 1 - (*k)++].ret;
}
