/* Internal interface between the mm files (mm.c, page.c, heap.c). */
#ifndef UNIK_MM_INT_H
#define UNIK_MM_INT_H
#include "arch.h"
#include "mm.h"

struct mm_page_stats {
    u64 total;      /* pages managed */
    u64 free;       /* pages free now */
    u64 kernel;     /* pages of the kernel image */
    u64 failures;   /* failed allocations */
};

/* page.c: manage the RAM regions above reserve_end. */
void page_init(const struct pvh_region *ram, u32 n, u64 reserve_end);
void page_stats(struct mm_page_stats *s);
u64 page_limit(void);           /* page frame numbers are < this */

/* heap.c */
void heap_init(void);
void heap_stats(struct mm_stats *head);
u32 heap_classes(struct mm_class_stats *cls, u32 max);
/* heapsite.c: kmalloc's caller for each small object */
void heapsite_init(void);
void heapsite_page(u64 pfn, u32 size);
void heapsite_set(const void *p, u32 size, u64 caller);
u64 heapsite_get(const void *p, u32 size);
#endif
