/* Time: the TSC, calibrated against the PIT at boot, gives time_ns; PIT
 * channel 0 interrupts at TIMER_HZ are the scheduler tick.  time_init is
 * called by kmain; the tick handler runs with interrupts off. */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "probe.h"
#include "sched.h"
#include "tunables.h"
#include "x86.h"

#define TIME_CAL_SPINS 50000000         /* give up if the PIT never moves */
#define TIME_FALLBACK_HZ 1000000000ull

static u64 time_hz;                     /* TSC ticks per second */
static u64 time_mult;                   /* ns = (cycles * mult) >> 32 */
static u64 time_boot_tsc;               /* TSC at time_init */
static volatile u64 time_tick_count;

/* One PIT reading with the TSC at that moment: the tightest of a few
 * rdtsc-bracketed reads, so a host hiccup inside one read is not counted. */
static u32 time_pit_sample(u64 *tsc)
{
    u64 best = ~0ull;
    u32 count = 0;
    for (int i = 0; i < TIME_CAL_TRIES; i++) {
        u64 a = rdtsc();
        u32 v = pit_read();
        u64 b = rdtsc();
        if (b - a < best) {
            best = b - a;
            count = v;
            *tsc = a + (b - a) / 2;
        }
    }
    return count;
}

/* PIT input clocks from count prev to count cur (counting down, at most
 * one reload of `reload` in between). */
static u64 time_pit_delta(u32 prev, u32 cur, u32 reload)
{
    return cur <= prev ? prev - cur : (u64)prev + reload - cur;
}

/* TSC cycles per second, measured against 1/TIME_CAL_DIV s of PIT input
 * clocks.  The PIT runs with its longest period (55 ms) meanwhile, so a
 * host stall between two polls cannot hide a reload; 0 if the PIT does not
 * count. */
static u64 time_calibrate(void)
{
    const u32 reload = 65536;
    u64 target = PIT_HZ / TIME_CAL_DIV, elapsed = 0, t0 = 0, t1 = 0;

    pit_program(reload);
    u32 prev = time_pit_sample(&t0), cur;
    for (u32 spins = 0; elapsed < target; spins++) {
        if (spins > TIME_CAL_SPINS)
            return 0;
        cur = pit_read();
        elapsed += time_pit_delta(prev, cur, reload);
        prev = cur;
    }
    cur = time_pit_sample(&t1);
    elapsed += time_pit_delta(prev, cur, reload);
    return (t1 - t0) * PIT_HZ / elapsed;
}

/* The timer interrupt: count, fire due tick-N probes, let the scheduler look. */
static void time_irq(struct trap_frame *f)
{
    time_tick_count++;
    probe_tick_frame(time_ns(), f);
    sched_tick(time_tick_count);
}

/* Start the tick, calibrate the TSC, unmask IRQ 0.  Interrupts stay off
 * until the first thread switch or sched_idle enables them. */
void time_init(void)
{
    time_boot_tsc = rdtsc();
    u64 hz = time_calibrate();
    pit_init(TIMER_HZ);
    if (hz == 0) {
        kprintf("time: PIT does not count, assuming a 1 GHz TSC\n");
        hz = TIME_FALLBACK_HZ;
    }
    time_mult = (1000000000ull << 32) / hz;
    time_hz = hz;
    trap_irq_register(IRQ_TIMER, time_irq);
}

/* Convert TSC cycles to nanoseconds (0 before calibration). */
u64 time_cycles_to_ns(u64 cycles)
{
    return (u64)(((unsigned __int128)cycles * time_mult) >> 32);
}

u64 time_ns(void)
{
    if (!time_hz)
        return 0;
    return time_cycles_to_ns(rdtsc() - time_boot_tsc);
}

u64 time_tsc_hz(void)
{
    return time_hz;
}

u64 time_ticks(void)
{
    return time_tick_count;
}
