/* The IDT: vectors 0-31 (CPU exceptions), 32-47 (PIC IRQs) and 48-55
 * (IOAPIC-routed lines, VEC_APIC_BASE) point at the stubs in traps.S, 255
 * to the APIC spurious stub; #DF runs on the IST1 stack, #PF on IST2.  idt_init is
 * called once by kmain after gdt_init. */
#include "arch.h"

#define IDT_VECTORS 256
#define IDT_STUBS 56            /* traps.S provides stubs 0..55 */
_Static_assert(VEC_APIC_BASE + VEC_APIC_COUNT <= IDT_STUBS, "a routed vector has no stub");
#define IDT_INTR_GATE 0x8e      /* present, DPL 0, 64-bit interrupt gate */
#define VEC_DF 8
#define VEC_PF 14               /* on IST2: a stack overflow faults on the guard page */

struct idt_gate {
    u16 off_lo;
    u16 selector;
    u8 ist;
    u8 type;
    u16 off_mid;
    u32 off_hi;
    u32 zero;
} __attribute__((packed));

extern const u64 trap_stubs[IDT_STUBS];
extern const char trap_stub_spurious[];
static struct idt_gate idt_table[IDT_VECTORS];

/* Point vector v at handler h, on interrupt stack table slot ist (0 = none). */
static void idt_set(int v, u64 h, u8 ist)
{
    idt_table[v].off_lo = h & 0xffff;
    idt_table[v].selector = 0x08;
    idt_table[v].ist = ist;
    idt_table[v].type = IDT_INTR_GATE;
    idt_table[v].off_mid = (h >> 16) & 0xffff;
    idt_table[v].off_hi = h >> 32;
    idt_table[v].zero = 0;
}

/* Fill and load the IDT.  Vectors without a stub stay not-present. */
void idt_init(void)
{
    struct { u16 limit; u64 base; } __attribute__((packed)) ptr;

    for (int v = 0; v < IDT_STUBS; v++)
        idt_set(v, trap_stubs[v], v == VEC_DF ? 1 : v == VEC_PF ? 2 : 0);
    idt_set(VEC_SPURIOUS, (u64)trap_stub_spurious, 0);
    ptr.limit = sizeof idt_table - 1;
    ptr.base = (u64)idt_table;
    __asm__ volatile("lidt %0" :: "m"(ptr) : "memory");
}
