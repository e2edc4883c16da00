/* Physical pages, kernel heap and address checks. */
#ifndef UNIK_MM_H
#define UNIK_MM_H
#include "types.h"
#include "wire.h"
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
/* Fill the MEMSTAT reply: head plus up to max classes; returns classes written. */
u32 mm_stats(struct wire_memstat_rep *head, struct wire_heap_class *cls, u32 max);
u64 mm_total_bytes(void);
#endif
