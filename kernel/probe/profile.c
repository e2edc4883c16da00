/* The profile provider: profile:::profile-N samples on the local APIC
 * timer (arch/apictimer.c), an interrupt source of its own, so that any
 * rate up to PROFILE_MIN_NS's leaves the scheduler's PIT tick alone.
 * The timer runs only while a profile-N enabling is linked, at the rate
 * of the fastest one; slower ones fire when due (probe_profile, engine.c).
 * profile_update is called by session.c (thread context) after it links
 * or unlinks enablings. */
#include "arch.h"
#include "engine.h"
#include "kernel.h"
#include "x86.h"

static u64 profile_period;              /* ns the timer runs at, 0 = stopped */

/* What sampling costs, read by `unik bench` (introspect/profilebench.py,
 * MEMREAD of this symbol): under -icount shift=0 TSC cycles are guest
 * instructions. */
struct profile_stats {
    u64 samples;                /* sampling interrupts handled */
    u64 cycles;                 /* TSC cycles inside profile_irq (the engine
                                 * included; not the trap entry and exit) */
    u64 start_tsc;              /* TSC when the timer last started */
    u64 stop_tsc;               /* ... and last stopped (0 while it runs) */
};
struct profile_stats profile_stats;

/* The sampling interrupt: hand the interrupted frame to the engine. */
static void profile_irq(struct trap_frame *f)
{
    u64 t0 = rdtsc();
    probe_profile(time_ns(), profile_period, f);
    profile_stats.samples++;
    profile_stats.cycles += rdtsc() - t0;
}

/* The shortest period of the linked profile-N enablings, 0 if none. */
static u64 profile_fastest(void)
{
    u64 best = 0;
    u64 f = irq_save();
    for (struct probe_enabling *e = probe_st.first[ISA_SP_PROFILE]; e; e = e->next)
        if (!best || e->arg < best)
            best = e->arg;
    irq_restore(f);
    return best;
}

/* Program the timer for the linked enablings, or stop it. */
void profile_update(void)
{
    u64 want = profile_fastest();
    if (want == profile_period)
        return;
    if (want && !profile_period) {
        profile_stats.start_tsc = rdtsc();
        profile_stats.stop_tsc = 0;
    }
    profile_period = want;
    if (want) {
        apictimer_start(want, profile_irq);
    } else {
        apictimer_stop();
        profile_stats.stop_tsc = rdtsc();
    }
}
