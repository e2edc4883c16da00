/* virtio-mmio interrupts on microvm.  Each slot has its own line, wired to
 * a fixed GSI by QEMU (measured on QEMU 7.2, see docs/architecture.md):
 *   ioapic2 (the default; needs ACPI)   24 slots, slot i -> GSI 24 + i
 *   ACPI, ioapic2=off                    8 slots, slot i -> GSI 16 + i
 *   acpi=off (no ioapic2 either)         8 slots, slot i -> GSI 5 + i
 * The line is level-triggered: it stays up while InterruptStatus is not
 * 0, so the handler writes InterruptACK before the EOI (trap.c).  Used by
 * drivers/vcons.c, which checks that the interrupt really comes, and
 * drivers/vnet.c; one entry per device, each with its own line. */
#include "arch.h"
#include "virtio_mmio.h"
#include "x86.h"

#define VMMIO_GSI_IOAPIC2 24            /* slot 0's GSI with ioapic2 */
#define VMMIO_GSI_ACPI 16               /* slot 0's GSI with ACPI, without ioapic2 */
#define VMMIO_GSI_LEGACY 5              /* slot 0's GSI without ACPI */
#define VMMIO_SLOTS_IOAPIC1 8           /* slots microvm has without ioapic2 */
#define VMMIO_IRQ_MAX 4                 /* devices with an interrupt at once */

struct vmmio_irq {
    struct vmmio_dev *dev;
    vmmio_irq_fn fn;
    void *arg;
    struct irq_route route;
    u64 count;                          /* interrupts that had status bits */
    u64 spurious;                       /* interrupts with InterruptStatus 0 */
};

static struct vmmio_irq vmmio_irqs[VMMIO_IRQ_MAX];

/* The GSI microvm wires slot `slot` to, or -1 (no such slot on this
 * machine's layout).  Called by vmmio_irq_enable. */
static int vmmio_gsi(u32 slot)
{
    if (ioapic_has(VMMIO_GSI_IOAPIC2))
        return slot < VMMIO_SLOTS ? (int)(VMMIO_GSI_IOAPIC2 + slot) : -1;
    if (slot >= VMMIO_SLOTS_IOAPIC1)
        return -1;
    u32 gsi = (acpi_rsdp() ? VMMIO_GSI_ACPI : VMMIO_GSI_LEGACY) + slot;
    return ioapic_has(gsi) ? (int)gsi : -1;
}

/* The interrupt handler for every routed slot (interrupts off): read and
 * acknowledge InterruptStatus (drops the line), then tell the driver. */
static void vmmio_irq_handler(struct trap_frame *f)
{
    for (u32 i = 0; i < VMMIO_IRQ_MAX; i++) {
        struct vmmio_irq *q = &vmmio_irqs[i];
        if (!q->dev || q->route.vector != f->vector)
            continue;
        u32 st = vmmio_read(q->dev, VMMIO_INTERRUPT_STATUS);
        if (!st) {
            q->spurious++;
            continue;
        }
        vmmio_write(q->dev, VMMIO_INTERRUPT_ACK, st);
        q->count++;
        q->fn(q->arg, st);
    }
}

/* Route d's interrupt to fn(arg, status), called in interrupt context with
 * the InterruptStatus bits (1 = used buffer, 2 = configuration change)
 * already acknowledged.  Fills *out; false (nothing routed) when the slot
 * has no known line or no vector is left: the driver polls. */
bool vmmio_irq_enable(struct vmmio_dev *d, vmmio_irq_fn fn, void *arg, struct irq_route *out)
{
    int gsi = vmmio_gsi(d->slot);
    struct vmmio_irq *q = NULL;
    for (u32 i = 0; i < VMMIO_IRQ_MAX && !q; i++)
        if (!vmmio_irqs[i].dev)
            q = &vmmio_irqs[i];
    if (gsi < 0 || !q)
        return false;
    q->fn = fn;
    q->arg = arg;
    q->count = q->spurious = 0;
    u64 f = irq_save();
    bool ok = ioapic_route((u32)gsi, true, vmmio_irq_handler, &q->route);
    if (ok)
        q->dev = d;
    irq_restore(f);
    if (ok && out)
        *out = q->route;
    return ok;
}

/* The entry of device d, or NULL. */
static struct vmmio_irq *vmmio_irq_of(struct vmmio_dev *d)
{
    for (u32 i = 0; i < VMMIO_IRQ_MAX; i++)
        if (vmmio_irqs[i].dev == d)
            return &vmmio_irqs[i];
    return NULL;
}

/* Interrupts handled for d (with status bits set) so far. */
u64 vmmio_irq_count(struct vmmio_dev *d)
{
    struct vmmio_irq *q = vmmio_irq_of(d);
    return q ? q->count : 0;
}

/* Stop d's interrupt (mask its line): the driver goes back to polling. */
void vmmio_irq_disable(struct vmmio_dev *d)
{
    struct vmmio_irq *q = vmmio_irq_of(d);
    if (!q)
        return;
    u64 f = irq_save();
    ioapic_mask(q->route.gsi);
    q->dev = NULL;
    irq_restore(f);
}
