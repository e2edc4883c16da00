/* Who allocated each small heap object: a u32 per object (kernel text
 * lies below 4 GiB) holding kmalloc's caller, in a per-page array found
 * through a pointer per page frame.  The arrays are carved from arena
 * pages and kept for good, as the heap keeps its small-object pages.  A
 * double free names the allocation's site (heap.c); a core shows where
 * live objects came from.  Called by heap.c only (interrupts off where it
 * says so). */
#include "kernel.h"
#include "lib.h"
#include "mm_int.h"

u32 **heapsite_table;                   /* per frame: callers of its objects, or NULL */
static u8 *heapsite_arena;              /* the page arrays are carved from */
static u32 heapsite_used;               /* bytes of it handed out */

/* The per-frame pointers (called by heap_init). */
void heapsite_init(void)
{
    u64 n = page_limit();
    heapsite_table = page_alloc_n((n * sizeof(u32 *) + PAGE_SIZE - 1) / PAGE_SIZE);
}

/* A fresh heap page at frame pfn holds objects of size bytes: give it
 * its array (interrupts off; none when out of pages: no sites there). */
void heapsite_page(u64 pfn, u32 size)
{
    u32 bytes = (PAGE_SIZE / size) * (u32)sizeof(u32);
    if (!heapsite_table)
        return;
    if (!heapsite_arena || heapsite_used + bytes > PAGE_SIZE) {
        heapsite_arena = page_alloc();
        heapsite_used = 0;
        if (!heapsite_arena)
            return;
    }
    heapsite_table[pfn] = (u32 *)(heapsite_arena + heapsite_used);
    heapsite_used += bytes;
}

/* The slot of object p (of size bytes), or NULL when its page has none. */
static u32 *heapsite_slot(const void *p, u32 size)
{
    u64 a = (u64)p;
    u32 *sites = heapsite_table ? heapsite_table[a / PAGE_SIZE] : NULL;
    return sites ? &sites[(a % PAGE_SIZE) / size] : NULL;
}

/* kmalloc handed out p (size bytes) to caller. */
void heapsite_set(const void *p, u32 size, u64 caller)
{
    u32 *s = heapsite_slot(p, size);
    if (s)
        *s = (u32)caller;
}

/* Who allocated p last (0: unknown). */
u64 heapsite_get(const void *p, u32 size)
{
    u32 *s = heapsite_slot(p, size);
    return s ? *s : 0;
}
