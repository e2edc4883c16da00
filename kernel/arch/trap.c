/* C side of every interrupt: CPU exceptions go to the panic report, PIC
 * IRQs to the handler registered for their line.  Called by traps.S with
 * interrupts off. */
#include "arch.h"
#include "kprintf.h"
#include "x86.h"

#define VEC_EXC_LAST 31

static irq_handler trap_irq_handlers[IRQ_COUNT];
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

/* Entry from trap_common. */
void trap_dispatch(struct trap_frame *f)
{
    if (f->vector <= VEC_EXC_LAST)
        panic_trap(f);
    if (f->vector >= IRQ_BASE && f->vector < IRQ_BASE + IRQ_COUNT)
        trap_irq(f, (int)(f->vector - IRQ_BASE));
    else
        trap_spurious++;                /* APIC spurious: no EOI */
}
