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

static u64 profile_period;              /* ns the timer runs at, 0 = stopped */

/* The sampling interrupt: hand the interrupted frame to the engine. */
static void profile_irq(struct trap_frame *f)
{
    probe_profile(time_ns(), profile_period, f);
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
    profile_period = want;
    if (want)
        apictimer_start(want, profile_irq);
    else
        apictimer_stop();
}
