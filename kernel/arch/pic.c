/* The 8259A pair, remapped so IRQ 0-15 arrive on vectors 0x20-0x2f.  All
 * lines start masked; trap_irq_register unmasks the ones with handlers. */
#include "arch.h"
#include "x86.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define PIC_READ_ISR 0x0b
#define IRQ_CASCADE 2

/* The local APIC must pass the PIC's output through (virtual wire mode):
 * QEMU delivers 8259 interrupts via LINT0, masked after reset. */
#define LAPIC_BASE 0xfee00000ull
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_SVR_ENABLE 0x100
#define LVT_MASKED 0x10000
#define LVT_EXTINT 0x700
#define LVT_NMI 0x400

static u16 pic_masks = 0xffff;

/* Write the mask of both chips from pic_masks. */
static void pic_apply(void)
{
    outb(PIC1_DATA, pic_masks & 0xff);
    outb(PIC2_DATA, pic_masks >> 8);
}

/* LINT0 = ExtINT (the 8259), LINT1 = NMI, APIC timer and errors masked,
 * spurious interrupts on VEC_SPURIOUS. */
static void pic_virtual_wire(void)
{
    mmio_write32(LAPIC_BASE + LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
    mmio_write32(LAPIC_BASE + LAPIC_TPR, 0);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, LVT_MASKED);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_ERROR, LVT_MASKED);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT0, LVT_EXTINT);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT1, LVT_NMI);
}

/* ICW1-4: edge triggered, cascaded, 8086 mode, vectors IRQ_BASE/+8. */
void pic_init(void)
{
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE);
    outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 1 << IRQ_CASCADE);
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    pic_masks = 0xffff & ~(1u << IRQ_CASCADE);
    pic_apply();
    pic_virtual_wire();
}

void pic_unmask(int irq)
{
    pic_masks &= ~(1u << irq);
    pic_apply();
}

void pic_mask(int irq)
{
    pic_masks |= 1u << irq;
    pic_apply();
}

/* In-service register of the chip that owns irq. */
static u8 pic_isr(int irq)
{
    u16 cmd = irq < 8 ? PIC1_CMD : PIC2_CMD;
    outb(cmd, PIC_READ_ISR);
    return inb(cmd);
}

/* End of interrupt for irq.  A spurious IRQ 7/15 (ISR bit clear) gets no
 * EOI on its own chip; returns false for it. */
bool pic_ack(int irq)
{
    if ((irq & 7) == 7 && !(pic_isr(irq) & 0x80)) {
        if (irq == 15)
            outb(PIC1_CMD, PIC_EOI);
        return false;
    }
    if (irq >= 8)
        outb(PIC2_CMD, PIC_EOI);
    outb(PIC1_CMD, PIC_EOI);
    return true;
}

/* End of interrupt at the local APIC, for vectors the I/O APIC delivered
 * (the 8259's ExtINT needs none).  For a level-triggered vector it also
 * tells the I/O APIC the line may be delivered again.  Called by trap.c
 * after the vector's handler. */
void lapic_eoi(void)
{
    mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}
