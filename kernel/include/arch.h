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
#define VEC_SPURIOUS 0xff               /* local APIC spurious interrupts */

/* arch/gdt.c, arch/idt.c, arch/trap.c */
void gdt_init(void);
void idt_init(void);
void trap_dispatch(struct trap_frame *f);
typedef void (*irq_handler)(struct trap_frame *f);
void trap_irq_register(int irq, irq_handler fn);   /* also unmasks the line */

/* arch/pic.c: 8259 pair remapped to IRQ_BASE. */
void pic_init(void);
bool pic_ack(int irq);                  /* EOI; false for a spurious IRQ 7/15 */
void pic_unmask(int irq);
void pic_mask(int irq);

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

/* arch/panic.c */
void panic_trap(struct trap_frame *f) __attribute__((noreturn));
void panic_set_exit(bool on);           /* selftest: exit QEMU instead of halting */
void panic_halt(void) __attribute__((noreturn));

/* arch/ksyms.c: function name for an address (from the .ksyms table). */
const char *ksyms_lookup(u64 addr, u64 *offset);

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
