/* The 8254 PIT: channel 0 in rate-generator mode drives IRQ 0 at the tick
 * rate; time.c also polls its counter to calibrate the TSC. */
#include "arch.h"
#include "x86.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43

static u32 pit_divisor;

/* Program channel 0 in mode 2 (rate generator) with a reload of divisor
 * input clocks (1..65536).  time.c uses the longest period to calibrate. */
void pit_program(u32 divisor)
{
    pit_divisor = divisor;
    outb(PIT_CMD, 0x34);
    outb(PIT_CH0, divisor & 0xff);
    outb(PIT_CH0, (divisor >> 8) & 0xff);   /* 65536 is written as 0 */
}

/* The periodic tick: hz interrupts per second. */
void pit_init(u32 hz)
{
    pit_program((PIT_HZ + hz / 2) / hz);
}

/* Latch and read channel 0's count: the reload value down to 1 (a raw 0
 * means 65536). */
u32 pit_read(void)
{
    outb(PIT_CMD, 0x00);
    u8 lo = inb(PIT_CH0);
    u8 hi = inb(PIT_CH0);
    u32 v = (u32)(lo | (hi << 8));
    return v ? v : 65536;
}
