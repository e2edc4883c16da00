/* The long-mode GDT (kernel code/data) and the TSS whose IST1 stack takes
 * double faults and whose IST2 stack takes page faults, so a thread that
 * runs into its stack's guard page still yields a panic report.
 * gdt_init is called once by kmain, replacing boot.S's GDT. */
#include "tunables.h"
#include "arch.h"
#include "lib.h"

#define GDT_KCODE 0x08
#define GDT_KDATA 0x10
#define GDT_TSS 0x18

struct tss {
    u32 reserved0;
    u64 rsp[3];
    u64 reserved1;
    u64 ist[7];
    u64 reserved2;
    u16 reserved3;
    u16 iomap_base;
} __attribute__((packed));

static struct tss gdt_tss;
static u64 gdt_table[5];
static u8 gdt_ist1_stack[IST_STACK_SIZE] __attribute__((aligned(16)));
static u8 gdt_ist2_stack[IST_STACK_SIZE] __attribute__((aligned(16)));  /* #PF: a stack overflow */

/* Build the TSS descriptor (16 bytes, two GDT slots). */
static void gdt_set_tss(u64 base, u32 limit)
{
    gdt_table[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
                   (0x89ull << 40) | ((u64)((limit >> 16) & 0xf) << 48) |
                   (((base >> 24) & 0xff) << 56);
    gdt_table[4] = base >> 32;
}

/* Load the table, reload every segment register and the task register. */
void gdt_init(void)
{
    struct { u16 limit; u64 base; } __attribute__((packed)) ptr;

    gdt_table[0] = 0;
    gdt_table[1] = 0x00209a0000000000ull;   /* 64-bit code, DPL 0 */
    gdt_table[2] = 0x0000920000000000ull;   /* data */
    memset(&gdt_tss, 0, sizeof gdt_tss);
    gdt_tss.ist[0] = (u64)(gdt_ist1_stack + IST_STACK_SIZE);
    gdt_tss.ist[1] = (u64)(gdt_ist2_stack + IST_STACK_SIZE);
    gdt_tss.iomap_base = sizeof gdt_tss;
    gdt_set_tss((u64)&gdt_tss, sizeof gdt_tss - 1);

    ptr.limit = sizeof gdt_table - 1;
    ptr.base = (u64)gdt_table;
    __asm__ volatile(
        "lgdt %0\n\t"
        "pushq %1\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movw %w2, %%ax\n\t"
        "movw %%ax, %%ds\n\t"
        "movw %%ax, %%es\n\t"
        "movw %%ax, %%ss\n\t"
        "ltr %w3\n\t"
        :: "m"(ptr), "i"(GDT_KCODE), "i"(GDT_KDATA), "r"((u16)GDT_TSS)
        : "rax", "memory");
}
