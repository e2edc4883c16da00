/* The local APIC timer: the profile provider's sampling interrupt, a
 * source separate from the PIT so that profile-997 (or 20 kHz) leaves the
 * scheduler's tick alone.  Calibrated against the TSC (time_ns) the first
 * time it is started, then run in periodic mode on a vector of its own
 * (trap_vec_alloc: the handler runs before the LAPIC EOI, as for IOAPIC
 * lines).  Programmed only while a profile enabling exists.  Called by
 * the probe engine (probe/profile.c) from thread context. */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "tunables.h"
#include "x86.h"

#define LAPIC_BASE 0xfee00000ull
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380          /* initial count */
#define LAPIC_TIMER_CUR 0x390           /* current count */
#define LAPIC_TIMER_DIV 0x3e0           /* divide configuration */
#define LVT_MASKED 0x10000
#define LVT_PERIODIC 0x20000
#define DIV_BY_16 0x3

static u64 apictimer_rate;              /* counts per second at DIV_BY_16 */
static u8 apictimer_vec;                /* its vector, 0 until the first start */
static irq_handler apictimer_fn;

static void apictimer_write(u32 reg, u32 v)
{
    mmio_write32(LAPIC_BASE + reg, v);
}

/* Counts per second: a masked one-shot count from ~0 over
 * APICTIMER_CAL_NS of TSC time.  Busy-waits that long (once). */
static u64 apictimer_calibrate(void)
{
    apictimer_write(LAPIC_LVT_TIMER, LVT_MASKED);
    apictimer_write(LAPIC_TIMER_DIV, DIV_BY_16);
    u64 t0 = time_ns();
    apictimer_write(LAPIC_TIMER_INIT, 0xffffffffu);
    u64 t1;
    while ((t1 = time_ns()) - t0 < APICTIMER_CAL_NS)
        cpu_relax();
    u32 left = mmio_read32(LAPIC_BASE + LAPIC_TIMER_CUR);
    apictimer_write(LAPIC_TIMER_INIT, 0);
    u64 counts = 0xffffffffull - left;
    u64 hz = counts * 1000000000ull / (t1 - t0);
    kprintf("apictimer: %lu counts/s (divide 16)\n", (unsigned long)hz);
    return hz;
}

/* The timer's interrupt: pass it on (trap.c sends the EOI after). */
static void apictimer_irq(struct trap_frame *f)
{
    if (apictimer_fn)
        apictimer_fn(f);
}

/* Interrupt every period_ns with fn as the handler, replacing any
 * earlier period.  A period shorter than one count is one count. */
void apictimer_start(u64 period_ns, irq_handler fn)
{
    if (!apictimer_rate && !(apictimer_rate = apictimer_calibrate()))
        return;
    if (!apictimer_vec && !(apictimer_vec = trap_vec_alloc(apictimer_irq))) {
        kprintf("apictimer: no free vector\n");
        return;
    }
    u64 count = period_ns * apictimer_rate / 1000000000ull;
    count = count < 1 ? 1 : count > 0xffffffffull ? 0xffffffffull : count;
    u64 f = irq_save();
    apictimer_fn = fn;
    apictimer_write(LAPIC_TIMER_DIV, DIV_BY_16);
    apictimer_write(LAPIC_LVT_TIMER, LVT_PERIODIC | apictimer_vec);
    apictimer_write(LAPIC_TIMER_INIT, (u32)count);
    irq_restore(f);
}

/* Stop the timer: masked, count 0. */
void apictimer_stop(void)
{
    u64 f = irq_save();
    apictimer_write(LAPIC_LVT_TIMER, LVT_MASKED);
    apictimer_write(LAPIC_TIMER_INIT, 0);
    apictimer_fn = NULL;
    irq_restore(f);
}

/* Counts per second at the divide the timer runs with (tests, stats). */
u64 apictimer_hz(void)
{
    return apictimer_rate;
}
