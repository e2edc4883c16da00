/* C side of every interrupt: CPU exceptions go to the panic report, PIC
 * IRQs and IOAPIC-routed vectors to the handler registered for them.
 * Called by traps.S with interrupts off. */
#include "arch.h"
#include "kprintf.h"
#include "sched.h"
#include "x86.h"

#define VEC_EXC_LAST 31

static irq_handler trap_irq_handlers[IRQ_COUNT];
static irq_handler trap_vec_handlers[VEC_APIC_COUNT];
static u64 trap_spurious;

/* Install fn for PIC line irq and unmask it.  Drivers call this. */
void trap_irq_register(int irq, irq_handler fn)
{
    if (irq < 0 || irq >= IRQ_COUNT)
        return;
    u64 f = irq_save();
    trap_irq_handlers[irq] = fn;
    pic_unmask(irq);
    irq_restore(f);
}

/* Take the first free vector of VEC_APIC_BASE.. for fn; 0 if none is
 * left.  Called by ioapic_route before it unmasks the line. */
u8 trap_vec_alloc(irq_handler fn)
{
    u8 vec = 0;
    u64 f = irq_save();
    for (u32 i = 0; i < VEC_APIC_COUNT && !vec; i++) {
        if (!trap_vec_handlers[i]) {
            trap_vec_handlers[i] = fn;
            vec = (u8)(VEC_APIC_BASE + i);
        }
    }
    irq_restore(f);
    return vec;
}

/* A PIC line fired: acknowledge it first (the handler may switch threads
 * and not come back for a while), then run its handler. */
static void trap_irq(struct trap_frame *f, int irq)
{
    if (!pic_ack(irq)) {
        trap_spurious++;
        return;
    }
    if (trap_irq_handlers[irq])
        trap_irq_handlers[irq](f);
}

/* An IOAPIC-routed vector fired: the handler silences the device first (a
 * level-triggered line is delivered again after the EOI while it is still
 * asserted), then the LAPIC EOI, then a thread the handler woke may
 * preempt the one interrupted (sched_irq_exit). */
static void trap_vec(struct trap_frame *f, u32 i)
{
    if (trap_vec_handlers[i])
        trap_vec_handlers[i](f);
    else
        trap_spurious++;
    lapic_eoi();
    sched_irq_exit();
}

/* Entry from trap_common. */
void trap_dispatch(struct trap_frame *f)
{
    if (f->vector <= VEC_EXC_LAST)
        panic_trap(f);
    if (f->vector >= IRQ_BASE && f->vector < IRQ_BASE + IRQ_COUNT)
        trap_irq(f, (int)(f->vector - IRQ_BASE));
    else if (f->vector >= VEC_APIC_BASE && f->vector < VEC_APIC_BASE + VEC_APIC_COUNT)
        trap_vec(f, (u32)(f->vector - VEC_APIC_BASE));
    else
        trap_spurious++;                /* APIC spurious: no EOI */
}
