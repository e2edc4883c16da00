/* The kernel heap.  Requests up to 4096 bytes come from HEAP_NCLASSES
 * power-of-two size classes (16..4096), each a free list over whole pages
 * carved into equal objects; larger requests take contiguous pages with a
 * 16-byte header.  A byte per page frame records what the page holds, so
 * kfree needs no per-object header.  A free object's second word marks
 * it free and names who freed it, so a double free is caught (and checked
 * against the free list before the panic); heapsite.c remembers who
 * allocated each small object, so the panic names that too.  Safe from
 * threads and interrupts. */
#include "crash.h"
#include "kernel.h"
#include "lib.h"
#include "mm_int.h"
#include "flight.h"
#include "probe_site.h"
#include "tunables.h"
#include "x86.h"

/* mem:::alloc -- kmalloc returned addr for a request of size bytes, from
 * the size class of class bytes (0: a large, page-backed block). */
PROBE_DEFINE(mem, alloc, void *, addr, size_t, size, uint32_t, class);
/* mem:::free -- kfree is giving back addr, a block of size bytes (its
 * class's size, or the requested size of a large block). */
PROBE_DEFINE(mem, free, void *, addr, size_t, size);
/* mem:::fail -- an allocation of size bytes failed; what names the
 * allocator: "heap" (kmalloc) or "page" (page_alloc_n). */
PROBE_DEFINE(mem, fail, size_t, size, string, what);

#define HEAP_MIN_SHIFT 4                /* smallest class: 16 bytes */
#define HEAP_LARGE (HEAP_NCLASSES + 1)  /* page tag: first page of a large block */
#define HEAP_LARGE_HDR 16

_Static_assert((16 << (HEAP_NCLASSES - 1)) == PAGE_SIZE, "classes 16..4096");

#define HEAP_FREED 0xf7eeull            /* high half of a free object's mark */

/* A free small object: the free list's link, then its mark: HEAP_FREED
 * << 32 | the kfree caller's address (kernel text is below 4 GiB). */
struct heap_free { struct heap_free *next; u64 mark; };
struct heap_large { u64 npages; u64 size; };

struct heap_class {
    struct heap_free *free;
    u64 in_use, allocs, frees, failures;
};

static struct heap_class heap_cls[HEAP_NCLASSES + 1];   /* last = large */
static u8 *heap_tag;            /* per frame: 0, class + 1, or HEAP_LARGE */
static u64 heap_total, heap_used;

/* The page-tag array, one byte per frame (called by mm_init). */
void heap_init(void)
{
    u64 n = page_limit();
    heap_tag = page_alloc_n((n + PAGE_SIZE - 1) / PAGE_SIZE);
    if (!heap_tag)
        panic("heap: no memory for %lu page tags", n);
    heapsite_init();
}

static u32 heap_size(int c)
{
    return 1u << (c + HEAP_MIN_SHIFT);
}

/* Carve a fresh page into objects of class c; false when out of pages. */
static bool heap_refill(int c)
{
    u8 *page = page_alloc();
    if (!page)
        return false;
    heap_tag[(u64)page / PAGE_SIZE] = (u8)(c + 1);
    heapsite_page((u64)page / PAGE_SIZE, heap_size(c));
    heap_total += PAGE_SIZE;
    for (u32 off = 0; off < PAGE_SIZE; off += heap_size(c)) {
        struct heap_free *o = (struct heap_free *)(page + off);
        o->next = heap_cls[c].free;
        heap_cls[c].free = o;
    }
    return true;
}

/* A small object of class c for caller (interrupts off). */
static void *heap_small(int c, u64 caller)
{
    struct heap_class *k = &heap_cls[c];
    if (!k->free && !heap_refill(c)) {
        k->failures++;
        return NULL;
    }
    struct heap_free *o = k->free;
    k->free = o->next;
    o->mark = 0;
    heapsite_set(o, heap_size(c), caller);
    k->in_use++;
    k->allocs++;
    heap_used += heap_size(c);
    return o;
}

/* A page-backed block for n bytes (interrupts off). */
static void *heap_big(size_t n)
{
    struct heap_class *k = &heap_cls[HEAP_NCLASSES];
    u64 np = (n + HEAP_LARGE_HDR + PAGE_SIZE - 1) / PAGE_SIZE;
    struct heap_large *h = n < (1ull << 40) ? page_alloc_n(np) : NULL;
    if (!h) {
        k->failures++;
        return NULL;
    }
    h->npages = np;
    h->size = n;
    heap_tag[(u64)h / PAGE_SIZE] = HEAP_LARGE;
    heap_total += np * PAGE_SIZE;
    heap_used += n;
    k->in_use++;
    k->allocs++;
    return (u8 *)h + HEAP_LARGE_HDR;
}

/* The size class of an n-byte request, HEAP_NCLASSES for a large one. */
static int heap_class_of(size_t n)
{
    int c = 0;
    while (c < HEAP_NCLASSES && heap_size(c) < n)
        c++;
    return c;
}

/* Bytes of the block p, whose page tag is tag (for mem:::free). */
static u64 heap_block_size(void *p, u8 tag)
{
    if (tag != HEAP_LARGE)
        return heap_size(tag - 1);
    return ((struct heap_large *)((u8 *)p - HEAP_LARGE_HDR))->size;
}

/* n bytes (not zeroed), or NULL; every failure is counted.  The caller
 * is noted as the object's allocation site (heapsite.c). */
void *kmalloc(size_t n)
{
    u64 caller = (u64)__builtin_return_address(0);
    int c = heap_class_of(n);
    u64 f = irq_save();
    void *p = c < HEAP_NCLASSES ? heap_small(c, caller) : heap_big(n);
    irq_restore(f);
    PROBE_FIRE_IF(p, mem, alloc, p, n,
                  heap_class_of(n) < HEAP_NCLASSES ? heap_size(heap_class_of(n)) : 0);
    PROBE_FIRE_IF(!p, mem, fail, n, "heap");
    if (!p || c >= HEAP_NCLASSES)
        flight_record(p ? FLIGHT_HEAP_LARGE : FLIGHT_HEAP_FAIL, n, (u64)p, 0);
    return p;
}

/* kmalloc, zeroed; the allocation site is kzalloc's caller. */
void *kzalloc(size_t n)
{
    void *p = kmalloc(n);
    if (p && heap_class_of(n) < HEAP_NCLASSES)
        heapsite_set(p, heap_size(heap_class_of(n)), (u64)__builtin_return_address(0));
    if (p)
        memset(p, 0, n);
    return p;
}

/* Return a large block's pages (interrupts off). */
static void heap_free_big(void *p)
{
    struct heap_large *h = (struct heap_large *)((u8 *)p - HEAP_LARGE_HDR);
    if ((u64)h % PAGE_SIZE) {
        crash_about((u64)p);
        panic_kind(CRASH_HEAP, "kfree: %p is not a heap block", p);
    }
    struct heap_class *k = &heap_cls[HEAP_NCLASSES];
    heap_tag[(u64)h / PAGE_SIZE] = 0;
    heap_total -= h->npages * PAGE_SIZE;
    heap_used -= h->size;
    k->in_use--;
    k->frees++;
    page_free_n(h, h->npages);
}

/* Is o on class k's free list?  Only asked of an object marked free. */
static bool heap_is_free(const struct heap_class *k, const struct heap_free *o)
{
    for (const struct heap_free *x = k->free; x; x = x->next)
        if (x == o)
            return true;
    return false;
}

/* kfree of an object that is free already: panic naming it, its class
 * and who freed it first (a heap-kind crash record about p). */
static void heap_double_free(void *p, int c, u64 mark)
{
    u64 off = 0, aoff = 0;
    const char *by = ksyms_lookup(mark & 0xffffffffull, &off);
    const char *site = ksyms_lookup(heapsite_get(p, heap_size(c)), &aoff);
    crash_about((u64)p);
    panic_kind(CRASH_HEAP, "kfree: double free of %p (%u-byte class, allocated by "
               "%s+0x%lx), freed before by %s+0x%lx", p, heap_size(c), site ? site : "?",
               aoff, by ? by : "?", off);
}

/* Free what kmalloc returned; NULL is fine, a foreign pointer or a
 * double free panics. */
void kfree(void *p)
{
    if (!p)
        return;
    u64 pfn = (u64)p / PAGE_SIZE;
    u8 tag = pfn < page_limit() ? heap_tag[pfn] : 0;
    if (tag == 0 || (tag <= HEAP_NCLASSES && (u64)p % heap_size(tag - 1))) {
        crash_about((u64)p);
        panic_kind(CRASH_HEAP, "kfree: %p is not a heap pointer", p);
    }
    struct heap_free *o = p;
    if (tag != HEAP_LARGE && (o->mark >> 32) == HEAP_FREED) {
        u64 f = irq_save();
        bool twice = heap_is_free(&heap_cls[tag - 1], o);
        irq_restore(f);
        if (twice)
            heap_double_free(p, tag - 1, o->mark);
    }
    PROBE_FIRE(mem, free, p, heap_block_size(p, tag));
    u64 f = irq_save();
    if (tag == HEAP_LARGE) {
        heap_free_big(p);
    } else {
        struct heap_class *k = &heap_cls[tag - 1];
        o->mark = HEAP_FREED << 32 | ((u64)__builtin_return_address(0) & 0xffffffffull);
        o->next = k->free;
        k->free = o;
        k->in_use--;
        k->frees++;
        heap_used -= heap_size(tag - 1);
    }
    irq_restore(f);
}

/* Heap totals for the MEMSTAT head (mm_stats). */
void heap_stats(struct mm_stats *head)
{
    u64 f = irq_save();
    head->heap_bytes_total = heap_total;
    head->heap_bytes_used = heap_used;
    head->heap_allocs = head->heap_frees = head->heap_failures = 0;
    for (int c = 0; c <= HEAP_NCLASSES; c++) {
        head->heap_allocs += heap_cls[c].allocs;
        head->heap_frees += heap_cls[c].frees;
        head->heap_failures += heap_cls[c].failures;
    }
    irq_restore(f);
}

/* One record per class, then the large class (size 0). */
u32 heap_classes(struct mm_class_stats *cls, u32 max)
{
    u32 n = 0;
    u64 f = irq_save();
    for (int c = 0; c <= HEAP_NCLASSES && n < max; c++, n++) {
        memset(&cls[n], 0, sizeof cls[n]);
        cls[n].size = c < HEAP_NCLASSES ? heap_size(c) : 0;
        cls[n].in_use = heap_cls[c].in_use;
        cls[n].allocs = heap_cls[c].allocs;
        cls[n].frees = heap_cls[c].frees;
        cls[n].failures = heap_cls[c].failures;
    }
    irq_restore(f);
    return n;
}
