/* The memory map and address checks.  mm_init (called by kmain after
 * pvh_init) collects the RAM regions from the PVH memory map -- or, when
 * the firmware gave none, from "mem=" on the command line, else 32 MiB --
 * then starts the page allocator and the heap.  mm_readable guards every
 * read of an address that came from outside (MEMREAD, panic backtraces). */
#include "fbt.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm_int.h"

#define MM_MAX_REGIONS 32
#define MM_LIMIT 0x100000000ull         /* boot.S identity-maps 4 GiB */
#define MM_DEFAULT_BYTES (32ull << 20)
#define MM_LOWMEM_END 0x9f000ull        /* top of conventional memory */
#define MM_HIMEM 0x100000ull

extern char __kernel_start[], __kernel_end[];

static struct pvh_region mm_ram[MM_MAX_REGIONS];
static u32 mm_nram;
static u64 mm_total;
static const char *mm_source = "none";

/* Add RAM [addr, addr+size), clipped to what boot.S maps. */
static void mm_add(u64 addr, u64 size)
{
    if (addr >= MM_LIMIT || size == 0 || mm_nram == MM_MAX_REGIONS)
        return;
    mm_total += size;
    if (size > MM_LIMIT - addr)
        size = MM_LIMIT - addr;
    mm_ram[mm_nram].addr = addr;
    mm_ram[mm_nram].size = size;
    mm_ram[mm_nram].type = PVH_RAM;
    mm_nram++;
}

/* Parse a size like 64M, 512K, 1G or plain bytes; 0 if malformed. */
static u64 mm_parse_size(const char *s)
{
    u64 v = 0;
    if (*s < '0' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (u64)(*s - '0');
    switch (*s) {
    case 'G': case 'g': return v << 30;
    case 'M': case 'm': return v << 20;
    case 'K': case 'k': return v << 10;
    case 0: return v;
    default: return 0;
    }
}

/* RAM regions from the firmware, else mem=, else the default. */
static void mm_collect(void)
{
    const struct pvh_region *r;
    u32 n = pvh_memmap(&r);
    char arg[24];

    for (u32 i = 0; i < n; i++)
        if (r[i].type == PVH_RAM)
            mm_add(r[i].addr, r[i].size);
    if (mm_nram) {
        mm_source = "pvh";
        return;
    }
    u64 bytes = MM_DEFAULT_BYTES;
    mm_source = "default";
    if (kernel_cmdline_get("mem", arg, sizeof arg) && mm_parse_size(arg) > MM_HIMEM) {
        bytes = mm_parse_size(arg);
        mm_source = "mem=";
    }
    mm_add(0, MM_LOWMEM_END);
    mm_add(MM_HIMEM, bytes - MM_HIMEM);
}

/* Called once by kmain: memory map, page allocator, heap. */
void mm_init(void)
{
    mm_collect();
    page_init(mm_ram, mm_nram, (u64)__kernel_end);
    heap_init();
    struct mm_page_stats ps;
    page_stats(&ps);
    kprintf("mm: %lu KiB RAM (%s map, %u regions), %lu pages free, kernel %lu pages\n",
            mm_total >> 10, mm_source, mm_nram, ps.free, ps.kernel);
}

/* Bytes of RAM the firmware reported. */
u64 mm_total_bytes(void)
{
    return mm_total;
}

/* The RAM region holding addr, or NULL. */
FBT_EXCLUDED static const struct pvh_region *mm_region(u64 addr)
{
    for (u32 i = 0; i < mm_nram; i++)
        if (addr >= mm_ram[i].addr && addr - mm_ram[i].addr < mm_ram[i].size)
            return &mm_ram[i];
    return NULL;
}

/* True when every byte of [addr, addr+len) is mapped RAM other than page
 * 0.  Before mm_init only the kernel image itself counts. */
FBT_EXCLUDED bool mm_readable(u64 addr, u64 len)
{
    if (addr < PAGE_SIZE || addr >= MM_LIMIT || len > MM_LIMIT - addr)
        return false;
    if (!mm_nram)
        return addr >= (u64)__kernel_start && addr + len <= (u64)__kernel_end;
    u64 end = addr + len;
    do {
        const struct pvh_region *r = mm_region(addr);
        if (!r)
            return false;
        addr = r->addr + r->size;       /* continue in an adjacent region */
    } while (addr < end);
    return !guard_hit(end - len, len);
}

/* Fill the MEMSTAT reply head and up to max heap classes. */
u32 mm_stats(struct mm_stats *head, struct mm_class_stats *cls, u32 max)
{
    struct mm_page_stats ps;
    page_stats(&ps);
    memset(head, 0, sizeof *head);
    head->page_size = PAGE_SIZE;
    head->mem_total = mm_total;
    head->pages_total = ps.total;
    head->pages_free = ps.free;
    head->pages_kernel = ps.kernel;
    head->page_failures = ps.failures;
    heap_stats(head);
    head->nclasses = heap_classes(cls, max);
    return head->nclasses;
}
