/* The I/O APICs: route a global system interrupt (GSI) to a vector on the
 * boot CPU's local APIC.  microvm has "ioapic" at 0xfec00000 (GSI 0-23)
 * and, unless turned off (-M microvm,ioapic2=off), "ioapic2" at 0xfec10000
 * (GSI 24-47), where its virtio-mmio slots interrupt.  The timer does not
 * use them: it comes from the 8259 through LINT0 (pic.c).  ioapic_init is
 * called by kmain; drivers call ioapic_route (virtio_irq.c). */
#include "arch.h"
#include "kprintf.h"
#include "x86.h"

#define IOAPIC_REGSEL 0x00              /* register select (index) */
#define IOAPIC_WIN 0x10                 /* data window */
#define IOAPIC_REG_VER 0x01             /* version, bits 16-23 = entries - 1 */
#define IOAPIC_REG_REDIR 0x10           /* redirection entry n: 0x10 + 2n (low), +1 (high) */
#define IOAPIC_MASKED 0x10000
#define IOAPIC_LEVEL 0x8000             /* trigger mode: level */
#define IOAPIC_MAX 2

struct ioapic {
    u64 base;
    u32 gsi_base;                       /* GSI of pin 0 */
    u32 pins;                           /* redirection entries (0 = absent) */
};

static struct ioapic ioapics[IOAPIC_MAX] = {
    { 0xfec00000ull, 0, 0 },
    { 0xfec10000ull, 24, 0 },
};

/* Read I/O APIC register reg. */
static u32 ioapic_read(struct ioapic *a, u32 reg)
{
    mmio_write32(a->base + IOAPIC_REGSEL, reg);
    return mmio_read32(a->base + IOAPIC_WIN);
}

/* Write I/O APIC register reg. */
static void ioapic_write(struct ioapic *a, u32 reg, u32 v)
{
    mmio_write32(a->base + IOAPIC_REGSEL, reg);
    mmio_write32(a->base + IOAPIC_WIN, v);
}

/* Redirection entries of the I/O APIC at a->base, 0 if nothing answers
 * there like one (unassigned addresses read as 0 or all ones). */
static u32 ioapic_probe(struct ioapic *a)
{
    u32 ver = ioapic_read(a, IOAPIC_REG_VER);
    if (ver == 0 || ver == 0xffffffffu || (ver & 0xff) < 0x10)
        return 0;
    return ((ver >> 16) & 0xff) + 1;
}

/* Find the I/O APICs and mask all their entries (edge, vector 0).  Called
 * once by kmain with interrupts off, after pic_init. */
void ioapic_init(void)
{
    for (u32 i = 0; i < IOAPIC_MAX; i++) {
        struct ioapic *a = &ioapics[i];
        a->pins = ioapic_probe(a);
        for (u32 p = 0; p < a->pins; p++) {
            ioapic_write(a, IOAPIC_REG_REDIR + 2 * p, IOAPIC_MASKED);
            ioapic_write(a, IOAPIC_REG_REDIR + 2 * p + 1, 0);
        }
        if (a->pins)
            kprintf("ioapic%u: 0x%lx, GSI %u-%u\n", i + 1, (unsigned long)a->base,
                    a->gsi_base, a->gsi_base + a->pins - 1);
    }
}

/* The I/O APIC that has a pin for gsi, or NULL. */
static struct ioapic *ioapic_for(u32 gsi)
{
    for (u32 i = 0; i < IOAPIC_MAX; i++) {
        struct ioapic *a = &ioapics[i];
        if (a->pins && gsi >= a->gsi_base && gsi < a->gsi_base + a->pins)
            return a;
    }
    return NULL;
}

/* Is there an I/O APIC pin for gsi?  Drivers ask before routing. */
bool ioapic_has(u32 gsi)
{
    return ioapic_for(gsi) != NULL;
}

/* Route gsi to a fresh vector handled by fn: fixed delivery to the boot
 * CPU (APIC id 0, physical), active high, level or edge as the device
 * signals, unmasked.  Fills *out; false when there is no pin or vector. */
bool ioapic_route(u32 gsi, bool level, irq_handler fn, struct irq_route *out)
{
    struct ioapic *a = ioapic_for(gsi);
    if (!a)
        return false;
    u8 vec = trap_vec_alloc(fn);
    if (!vec)
        return false;
    u32 pin = gsi - a->gsi_base;
    u64 f = irq_save();
    ioapic_write(a, IOAPIC_REG_REDIR + 2 * pin + 1, 0);   /* destination APIC id 0 */
    ioapic_write(a, IOAPIC_REG_REDIR + 2 * pin, vec | (level ? IOAPIC_LEVEL : 0));
    irq_restore(f);
    out->gsi = gsi;
    out->ioapic = (u32)(a - ioapics) + 1;
    out->pin = pin;
    out->vector = vec;
    out->level = level;
    return true;
}

/* Mask gsi's redirection entry.  Called by drivers giving up on an
 * interrupt (virtio_irq.c when none arrives). */
void ioapic_mask(u32 gsi)
{
    struct ioapic *a = ioapic_for(gsi);
    if (!a)
        return;
    u32 pin = gsi - a->gsi_base;
    u64 f = irq_save();
    u32 lo = ioapic_read(a, IOAPIC_REG_REDIR + 2 * pin);
    ioapic_write(a, IOAPIC_REG_REDIR + 2 * pin, lo | IOAPIC_MASKED);
    irq_restore(f);
}
