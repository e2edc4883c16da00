/* Guard pages: a 4 KiB page left unmapped below each thread stack, so a
 * stack overflow faults at its first access instead of corrupting what
 * lies below.  boot.S identity-maps RAM with 2 MiB pages; guard_set splits
 * the one holding a guard into 4 KiB pages (a page table from the page
 * allocator, kept for good) and clears the guard's present bit.  A bitmap
 * of guarded frames lets mm_readable refuse them cheaply, so MEMREAD, the
 * probe VM's loads and panic backtraces never touch one.  Called by
 * thread.c (spawn, reap) and mm.c; the panic path asks thread.c which
 * thread a faulting address belongs to. */
#include "arch.h"
#include "kernel.h"
#include "lib.h"
#include "mm_int.h"
#include "x86.h"

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define PTE_LOWFLAGS 0x1full                /* P W U PWT PCD carried to 4 KiB entries */

static u64 *guard_bits;                     /* one bit per frame: a guard page */
static u64 guard_frames;                    /* frames guard_bits covers */

/* The page directory entry mapping addr, or NULL when a level above is
 * missing or maps 1 GiB at once. */
static u64 *guard_pde(u64 addr)
{
    u64 *pml4 = (u64 *)(read_cr3() & PTE_ADDR);
    u64 e = pml4[(addr >> 39) & 511];
    if (!(e & PTE_P))
        return NULL;
    e = ((u64 *)(e & PTE_ADDR))[(addr >> 30) & 511];
    if (!(e & PTE_P) || (e & PTE_PS))
        return NULL;
    return &((u64 *)(e & PTE_ADDR))[(addr >> 21) & 511];
}

/* Replace a 2 MiB mapping by a page table of 512 4 KiB entries mapping
 * the same memory; false when no page is left for the table. */
static bool guard_split(u64 *pde)
{
    u64 *pt = page_alloc();
    if (!pt)
        return false;
    u64 base = *pde & PTE_ADDR & ~0x1fffffull, flags = *pde & PTE_LOWFLAGS;
    for (u64 i = 0; i < 512; i++)
        pt[i] = (base + i * PAGE_SIZE) | flags;
    *pde = (u64)pt | PTE_P | PTE_W;
    __asm__ volatile("mov %0, %%cr3" :: "r"(read_cr3()) : "memory");  /* drop the 2 MiB TLB entry */
    return true;
}

/* The bitmap, sized for every frame, on first use; false if no memory. */
static bool guard_bitmap(void)
{
    if (guard_bits)
        return true;
    u64 n = page_limit();
    guard_bits = page_alloc_n((n / 64 * 8 + 8 + PAGE_SIZE - 1) / PAGE_SIZE);
    guard_frames = guard_bits ? n : 0;
    return guard_bits != NULL;
}

/* Unmap (on) or map again (off) the page at addr (page aligned).  A page
 * must be mapped again before it goes back to the page allocator.  False
 * when it cannot be guarded (no page for a table or the bitmap). */
bool guard_set(u64 addr, bool on)
{
    u64 pfn = addr / PAGE_SIZE, f = irq_save();
    bool ok = false;
    u64 *pde = guard_pde(addr);
    if (pde && (*pde & PTE_P) && guard_bitmap() && pfn < guard_frames &&
        (!(*pde & PTE_PS) || guard_split(pde))) {
        u64 *pte = &((u64 *)(*pde & PTE_ADDR))[(addr >> 12) & 511];
        *pte = on ? *pte & ~PTE_P : *pte | PTE_P;
        __asm__ volatile("invlpg (%0)" :: "r"(addr) : "memory");
        if (on)
            guard_bits[pfn / 64] |= 1ull << (pfn % 64);
        else
            guard_bits[pfn / 64] &= ~(1ull << (pfn % 64));
        ok = true;
    }
    irq_restore(f);
    return ok;
}

/* True when [addr, addr+len) touches a guard page (len > 0, range
 * already known to be RAM).  Called by mm_readable. */
bool guard_hit(u64 addr, u64 len)
{
    if (!guard_bits)
        return false;
    for (u64 p = addr / PAGE_SIZE; p <= (addr + len - 1) / PAGE_SIZE; p++)
        if (p < guard_frames && (guard_bits[p / 64] & (1ull << (p % 64))))
            return true;
    return false;
}
