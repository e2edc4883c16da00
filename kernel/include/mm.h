/* Physical pages, kernel heap and address checks. */
#ifndef UNIK_MM_H
#define UNIK_MM_H
#include "types.h"
#define PAGE_SIZE 4096
void mm_init(void);                  /* from kmain, after the memory map is known */
void *page_alloc(void);              /* one zeroed 4 KiB page, or NULL */
void *page_alloc_n(size_t n);        /* n physically contiguous zeroed pages, or NULL */
void page_free(void *p);
void page_free_n(void *p, size_t n);
void *kmalloc(size_t n);             /* NULL on failure (counted) */
void *kzalloc(size_t n);
void kfree(void *p);
/* True when [addr, addr+len) is RAM the kernel maps and may read without
 * faulting (not page 0, not MMIO, not beyond the end of RAM). */
bool mm_readable(u64 addr, u64 len);
/* mm/guard.c: unmap (on) or map again the page at addr, a stack's guard;
 * false if it cannot be done.  guard_hit: does the range touch one? */
bool guard_set(u64 addr, bool on);
bool guard_hit(u64 addr, u64 len);
/* Memory totals (free, MEMSTAT). */
struct mm_stats {
    u32 page_size;              /* bytes per page */
    u32 nclasses;               /* heap classes mm_stats() wrote */
    u64 mem_total;              /* bytes of RAM the firmware reported */
    u64 pages_total;            /* pages managed by the allocator */
    u64 pages_free;             /* pages free now */
    u64 pages_kernel;           /* pages holding the kernel image */
    u64 page_failures;          /* page allocations that failed */
    u64 heap_bytes_total;       /* bytes the heap took from the page allocator */
    u64 heap_bytes_used;        /* bytes handed out by the heap */
    u64 heap_allocs;            /* heap allocations made */
    u64 heap_frees;             /* heap frees made */
    u64 heap_failures;          /* heap allocations that failed */
};

/* One heap size class. */
struct mm_class_stats {
    u32 size;                   /* object size in bytes (0 = large, page-backed) */
    u64 in_use;                 /* objects handed out now */
    u64 allocs;                 /* allocations ever */
    u64 frees;                  /* frees ever */
    u64 failures;               /* allocations that failed */
};

/* Fill the totals and up to max heap classes; returns classes written. */
u32 mm_stats(struct mm_stats *head, struct mm_class_stats *cls, u32 max);
u64 mm_total_bytes(void);
#endif
