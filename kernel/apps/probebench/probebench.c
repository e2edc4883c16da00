/* The probebench application: what a static probe costs, measured in the
 * guest.  Boot it with `-icount shift=0` (the TSC then advances by exactly
 * one per guest instruction) and read its results with MEMREAD of the
 * symbol `probebench` (introspect/probebench.py does both).
 *
 * Measuring (one "round" every PB_ROUND_MS): with interrupts off, time a
 * loop calling an empty function and the same loop calling a function
 * that is that empty function plus the site of bench:::fire, each for
 * PB_N1 and PB_N2 iterations.  The host takes slopes between the two
 * lengths, which cancels the fixed cost of reading the TSC: disabled, the
 * site loop's slope is the empty loop's plus exactly one instruction (the
 * 5-byte nop); enabled (by a host trace session), the difference is what
 * one firing costs, clause included.  `enabled` says whether the site was
 * patched on for the whole round.
 *
 * Switching: the same two loop lengths of thread_yield() calls while a
 * partner thread ("pb-pong") yields straight back, with interrupts off in
 * both: every iteration is two context switches, hence two firings of
 * sched:::switch, whose `thread` alternates between the two threads (the
 * aggregation's key changes at every firing, as it does in production).
 * Each length is timed PB_PONG_TRIES times and the least kept (a service
 * thread caught runnable at the start would add its own run once).  The
 * host compares the slope with sched:::switch enabled and disabled.
 *
 * Flooding: while the host enables bench:::flood, the app thread fires it
 * in a tight loop with interrupts on (the channel drains the records as it
 * would in production), counting firings and instructions; the host
 * measures records per second of its own wall time.
 *
 * fbt: pb_empty and pb_site have no fbt site (FBT_EXCLUDED), so the
 * static numbers above are unchanged; pb_fbt is pb_fbt_base (an empty
 * function with the frame -pg forces) plus its fbt entry nop, both timed
 * the same way (fbt1, fbt2; fbtbase1, fbtbase2), with `fbt_enabled` saying
 * whether that site held the call to fbt_entry_tramp for the whole round. */
#include "fbt.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "probe.h"
#include "probe_site.h"
#include "thread.h"
#include "x86.h"

PROBE_DEFINE(bench, fire, uint64_t, i, uint64_t, j, uint64_t, k);
PROBE_DEFINE(bench, flood, uint64_t, i, uint64_t, j, uint64_t, k);

const char app_name[] = "probebench";

#define PB_N1 256               /* iterations of the short timed loop */
#define PB_N2 512               /* ... and of the long one */
#define PB_ROUND_MS 20          /* between rounds */
#define PB_FLOOD_CHECK 1024     /* flood firings between looks at the site */
#define PB_PONG_TRIES 3         /* timings of each ping-pong length (least kept) */

/* The results, read by the host (MEMREAD of this symbol; the layout comes
 * from the ELF's DWARF).  Every field is written before `seq` moves. */
struct probebench_result {
    u64 seq;                    /* rounds completed */
    u64 n1, n2;                 /* iterations of the two timed loops */
    u64 empty1, empty2;         /* instructions: loops calling pb_empty */
    u64 site1, site2;           /* instructions: loops calling pb_site */
    u64 enabled;                /* bench:::fire was on for the whole round */
    u64 flood_seq;              /* floods completed */
    u64 flood_fires;            /* bench:::flood firings in the last flood */
    u64 flood_instr;            /* instructions the last flood took, all threads */
    u64 fire_index;             /* static probe indexes of bench:::fire, */
    u64 flood_index;            /* and bench:::flood (site_desc numbering) */
    u64 pong1, pong2;           /* instructions: n1 and n2 ping-pong iterations */
    u64 switch_enabled;         /* sched:::switch was on for the whole round */
    u64 switch_index;           /* static probe index of sched:::switch */
    u64 fbt1, fbt2;             /* instructions: loops calling pb_fbt */
    u64 fbtbase1, fbtbase2;     /* ... and pb_fbt_base (pb_fbt without the nop) */
    u64 fbt_enabled;            /* pb_fbt's fbt site was on for the whole round */
};

struct probebench_result probebench;

/* What the loop calls when there is no probe: nothing. */
static FBT_EXCLUDED __attribute__((noinline)) void pb_empty(u64 i)
{
    __asm__ volatile("" : : "r"(i));
}

/* pb_empty plus the site of bench:::fire (disabled: one 5-byte nop). */
static FBT_EXCLUDED __attribute__((noinline)) void pb_site(u64 i)
{
    __asm__ volatile("" : : "r"(i));
    PROBE_FIRE(bench, fire, i, i + 1, i + 2);
}

/* pb_fbt without its fbt site: the frame -pg gives every instrumented
 * function (push %rbp; mov %rsp,%rbp; pop %rbp), which an empty leaf
 * otherwise goes without, and nothing else. */
static FBT_EXCLUDED __attribute__((noinline)) void pb_fbt_base(u64 i)
{
    __asm__ volatile("" : : "r"(i), "r"(__builtin_frame_address(0)));
}

/* pb_fbt_base plus its fbt entry site (disabled: one 5-byte nop). */
static __attribute__((noinline)) void pb_fbt(u64 i)
{
    __asm__ volatile("" : : "r"(i), "r"(__builtin_frame_address(0)));
}

/* Is pb_fbt's fbt site patched on (a call, not the nop)? */
static bool pb_fbt_on(void)
{
    return *(volatile const u8 *)pb_fbt == 0xe8;
}

/* The flood's site. */
static __attribute__((noinline)) void pb_flood(u64 i)
{
    PROBE_FIRE(bench, flood, i, i + 1, i + 2);
}

/* Instructions (TSC ticks under icount) of n calls of fn, interrupts off. */
static __attribute__((noinline)) u64 pb_time(void (*fn)(u64), u64 n)
{
    u64 f = irq_save();
    u64 t0 = rdtsc();
    for (u64 i = 0; i < n; i++)
        fn(i);
    u64 t = rdtsc() - t0;
    irq_restore(f);
    return t;
}

/* Static probe index of PROV:::NAME (the first one), or ~0. */
static u64 pb_probe(const char *prov, const char *name)
{
    for (u32 i = 0; i < site_count(); i++) {
        const struct isa_probe_desc *d = site_desc(i);
        if (!strcmp((const char *)d->provider, prov) &&
            !strcmp((const char *)d->name, name))
            return i;
    }
    return ~0ull;
}

static struct thread *pb_pong_thread;
static volatile bool pb_pong_on;

/* The ping-pong partner: woken by pb_pong, it yields straight back with
 * interrupts off until pb_pong_on drops, then blocks again. */
static void pb_pong_main(void *arg)
{
    (void)arg;
    for (;;) {
        thread_block("pong", 0);
        u64 f = irq_save();
        while (pb_pong_on)
            thread_yield();
        irq_restore(f);
    }
}

/* Instructions of n yields to the partner and back (interrupts off: the
 * caller's). */
static __attribute__((noinline)) u64 pb_pong_time(u64 n)
{
    u64 t0 = rdtsc();
    for (u64 i = 0; i < n; i++)
        thread_yield();
    return rdtsc() - t0;
}

/* The least of PB_PONG_TRIES timings of n ping-pong iterations. */
static u64 pb_pong_best(u64 n)
{
    u64 best = ~0ull;
    for (u32 k = 0; k < PB_PONG_TRIES; k++)
        best = MIN(best, pb_pong_time(n));
    return best;
}

/* Time both ping-pong lengths into r, the partner running. */
static void pb_pong(struct probebench_result *r)
{
    u32 sw = (u32)r->switch_index;
    bool on = site_enabled(sw) > 0;
    pb_pong_on = true;
    thread_wake(pb_pong_thread);
    u64 f = irq_save();
    thread_yield();                     /* the partner enters its loop */
    thread_yield();
    r->pong1 = pb_pong_best(PB_N1);
    r->pong2 = pb_pong_best(PB_N2);
    pb_pong_on = false;
    thread_yield();                     /* the partner leaves it and blocks */
    irq_restore(f);
    r->switch_enabled = on && site_enabled(sw) > 0;
}

/* One round of timed loops into probebench (seq last). */
static void pb_round(void)
{
    struct probebench_result *r = &probebench;
    u32 fire = (u32)r->fire_index;
    bool on = site_enabled(fire) > 0;
    r->n1 = PB_N1;
    r->n2 = PB_N2;
    r->empty1 = pb_time(pb_empty, PB_N1);
    r->site1 = pb_time(pb_site, PB_N1);
    r->empty2 = pb_time(pb_empty, PB_N2);
    r->site2 = pb_time(pb_site, PB_N2);
    r->enabled = on && site_enabled(fire) > 0;
    bool fon = pb_fbt_on();
    r->fbtbase1 = pb_time(pb_fbt_base, PB_N1);
    r->fbt1 = pb_time(pb_fbt, PB_N1);
    r->fbtbase2 = pb_time(pb_fbt_base, PB_N2);
    r->fbt2 = pb_time(pb_fbt, PB_N2);
    r->fbt_enabled = fon && pb_fbt_on();
    if (pb_pong_thread)
        pb_pong(r);
    barrier();
    r->seq++;
}

/* Fire bench:::flood back to back while it is enabled. */
static void pb_flood_run(void)
{
    struct probebench_result *r = &probebench;
    u32 flood = (u32)r->flood_index;
    u64 n = 0, t0 = rdtsc();
    while (site_enabled(flood)) {
        for (u32 k = 0; k < PB_FLOOD_CHECK; k++)
            pb_flood(n++);
    }
    r->flood_instr = rdtsc() - t0;
    r->flood_fires = n;
    barrier();
    r->flood_seq++;
}

/* The app thread: find the probes, then measure forever. */
void app_main(void *arg)
{
    (void)arg;
    probebench.fire_index = pb_probe("bench", "fire");
    probebench.flood_index = pb_probe("bench", "flood");
    probebench.switch_index = pb_probe("sched", "switch");
    pb_pong_thread = thread_spawn("pb-pong", pb_pong_main, NULL, THREAD_F_APP, 0);
    kprintf("probebench: bench:::fire is static probe %lu, bench:::flood %lu; "
            "rounds of %u and %u calls every %u ms\n", probebench.fire_index,
            probebench.flood_index, PB_N1, PB_N2, PB_ROUND_MS);
    for (;;) {
        pb_round();
        if (site_enabled((u32)probebench.flood_index))
            pb_flood_run();
        thread_sleep_ms(PB_ROUND_MS, "round");
    }
}
