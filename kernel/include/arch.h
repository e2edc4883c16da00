/* x86-64 machine layer: descriptor tables, traps and IRQs, the PIC/PIT
 * timer, the PVH boot information and the panic report.  Used by kmain
 * and by drivers that want an interrupt line. */
#ifndef UNIK_ARCH_H
#define UNIK_ARCH_H
#include "types.h"

/* Registers saved by arch/traps.S, in push order reversed (lowest first). */
struct trap_frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8;
    u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, err;                    /* pushed by the stub */
    u64 rip, cs, rflags, rsp, ss;       /* pushed by the CPU */
};

#define IRQ_BASE 0x20                   /* PIC vectors start here */
#define IRQ_COUNT 16
#define IRQ_TIMER 0
#define VEC_APIC_BASE 0x30              /* vectors for IOAPIC-routed lines start here */
#define VEC_APIC_COUNT 8                /* traps.S has stubs for this many of them */
#define VEC_SPURIOUS 0xff               /* local APIC spurious interrupts */

/* arch/gdt.c, arch/idt.c, arch/trap.c */
void gdt_init(void);
void idt_init(void);
void trap_dispatch(struct trap_frame *f);
typedef void (*irq_handler)(struct trap_frame *f);
void trap_irq_register(int irq, irq_handler fn);   /* also unmasks the line */
/* A free vector in VEC_APIC_BASE.. for a line the IOAPIC delivers, with fn
 * as its handler (run before the LAPIC EOI); 0 when none is left. */
u8 trap_vec_alloc(irq_handler fn);

/* arch/ioapic.c: the I/O APICs microvm provides, by global system interrupt
 * (GSI) number: "ioapic" (0xfec00000, GSI 0-23) and, when present,
 * "ioapic2" (0xfec10000, GSI 24-47). */
struct irq_route {
    u32 gsi;
    u32 ioapic;                         /* 1 = the first I/O APIC, 2 = the second */
    u32 pin;                            /* redirection entry on that I/O APIC */
    u8 vector;
    bool level;                         /* level-triggered (else edge) */
};
void ioapic_init(void);                 /* find the I/O APICs, mask every entry */
bool ioapic_has(u32 gsi);               /* is there an I/O APIC pin for gsi? */
/* Route gsi (active high, level or edge) to a new vector handled by fn,
 * unmasked; false when there is no pin or vector for it. */
bool ioapic_route(u32 gsi, bool level, irq_handler fn, struct irq_route *out);
void ioapic_mask(u32 gsi);              /* stop delivering gsi (its vector stays taken) */

/* arch/pic.c: 8259 pair remapped to IRQ_BASE. */
void pic_init(void);
bool pic_ack(int irq);                  /* EOI; false for a spurious IRQ 7/15 */
void pic_unmask(int irq);
void pic_mask(int irq);
void lapic_eoi(void);                   /* end of an IOAPIC-delivered interrupt */

/* arch/pit.c: 8254 channel 0 as the periodic tick. */
#define PIT_HZ 1193182                  /* PIT input clock */
void pit_init(u32 hz);
void pit_program(u32 divisor);          /* raw reload, 1..65536 */
u32 pit_read(void);                     /* current channel 0 count */

/* arch/time.c: TSC calibration, time_ns (kernel.h) and the tick. */
void time_init(void);
u64 time_cycles_to_ns(u64 cycles);

/* arch/pvh.c: what the PVH start_info told us, copied at boot. */
struct pvh_region {
    u64 addr;
    u64 size;
    u32 type;                           /* 1 = RAM (E820) */
};
#define PVH_RAM 1
void pvh_init(u32 start_info);
u32 pvh_memmap(const struct pvh_region **out);
const char *pvh_cmdline(void);
u64 pvh_rsdp(void);                     /* ACPI RSDP from start_info, 0 if none */

/* arch/acpi.c: the ACPI RSDP's address, 0 when the machine has no ACPI. */
u64 acpi_rsdp(void);

/* arch/panic.c */
void panic_trap(struct trap_frame *f) __attribute__((noreturn));
void panic_set_exit(bool on);           /* selftest: exit QEMU instead of halting */
void panic_halt(void) __attribute__((noreturn));

/* arch/ksyms.c: function name for an address (from the .ksyms table). */
const char *ksyms_lookup(u64 addr, u64 *offset);
/* The {addr, name} entry of a {count; {addr, name}[count]} table sorted by
 * address that holds addr (the last <= addr); NULL if none. */
const u64 *ksyms_entry(const u64 *table, u64 addr);

/* arch/apictimer.c: the local APIC timer as a second, separate periodic
 * interrupt (the profile provider's; the PIT stays the scheduler tick). */
void apictimer_start(u64 period_ns, irq_handler fn);    /* (re)program it periodic */
void apictimer_stop(void);                              /* mask it */
u64 apictimer_hz(void);                                 /* counts per second, 0 before calibration */

/* isa-debug-exit (iobase 0xf4): QEMU exits with status (code << 1) | 1. */
#define DEBUG_EXIT_PORT 0xf4

static inline u64 read_cr0(void) { u64 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u64 read_cr2(void) { u64 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u64 read_cr3(void) { u64 v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline u64 read_cr4(void) { u64 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void cpu_hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
static inline void cpu_sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void cpu_cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void cpu_sti(void) { __asm__ volatile("sti" ::: "memory"); }

#endif
