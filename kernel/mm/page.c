/* The physical page allocator: one bit per 4 KiB page (set = in use) for
 * all of RAM below the top of the memory map.  The bitmap sits right after
 * the kernel image; pages above it in RAM regions are free at boot.
 * Anyone may allocate (threads, interrupt handlers); irq_save serialises. */
#include "kernel.h"
#include "lib.h"
#include "mm_int.h"
#include "flight.h"
#include "probe_site.h"
#include "x86.h"

/* mem:::page-alloc -- page_alloc_n gave npages contiguous pages at addr
 * (page_alloc and the heap's refills and large blocks come through it). */
PROBE_DEFINE(mem, page_alloc, void *, addr, size_t, npages);
/* mem:::page-free -- page_free_n is giving back npages pages at addr. */
PROBE_DEFINE(mem, page_free, void *, addr, size_t, npages);
/* mem:::fail -- an allocation of size bytes failed; what names the
 * allocator: "heap" (kmalloc) or "page" (page_alloc_n). */
PROBE_DEFINE(mem, fail, size_t, size, string, what);

extern char __kernel_start[], __kernel_end[];

static u64 *page_bitmap;
static u64 page_npages;         /* frames covered by the bitmap */
static u64 page_hint;           /* next-fit search start */
static u64 page_first;          /* lowest frame the allocator manages */
static struct mm_page_stats page_st;

static bool page_used(u64 pfn)
{
    return page_bitmap[pfn / 64] & (1ull << (pfn % 64));
}

static void page_mark(u64 pfn, bool used)
{
    if (used)
        page_bitmap[pfn / 64] |= 1ull << (pfn % 64);
    else
        page_bitmap[pfn / 64] &= ~(1ull << (pfn % 64));
}

/* Called by mm_init with the RAM regions; reserve_end = end of the image. */
void page_init(const struct pvh_region *ram, u32 n, u64 reserve_end)
{
    u64 top = 0;
    for (u32 i = 0; i < n; i++)
        top = MAX(top, ram[i].addr + ram[i].size);
    page_npages = top / PAGE_SIZE;
    u64 words = (page_npages + 63) / 64;
    page_bitmap = (u64 *)ALIGN_UP(reserve_end, PAGE_SIZE);
    u64 first = ALIGN_UP((u64)page_bitmap + words * 8, PAGE_SIZE) / PAGE_SIZE;
    memset(page_bitmap, 0xff, words * 8);
    for (u32 i = 0; i < n; i++) {
        u64 lo = MAX(ALIGN_UP(ram[i].addr, PAGE_SIZE) / PAGE_SIZE, first);
        u64 hi = (ram[i].addr + ram[i].size) / PAGE_SIZE;
        for (u64 p = lo; p < hi; p++) {
            if (page_used(p)) {
                page_mark(p, false);
                page_st.total++;
            }
        }
    }
    page_st.free = page_st.total;
    page_st.kernel = ALIGN_UP((u64)(__kernel_end - __kernel_start), PAGE_SIZE) / PAGE_SIZE;
    page_hint = page_first = first;
}

/* First frame of a run of n free frames at or after start, or 0. */
static u64 page_find(u64 start, u64 n)
{
    u64 run = 0;
    for (u64 p = start; p < page_npages; p++) {
        if (run == 0 && (p % 64) == 0 && page_bitmap[p / 64] == ~0ull) {
            p += 63;                    /* skip a full word */
            continue;
        }
        run = page_used(p) ? 0 : run + 1;
        if (run == n)
            return p + 1 - n;
    }
    return 0;
}

/* n physically contiguous zeroed pages, or NULL (counted as a failure). */
void *page_alloc_n(size_t n)
{
    if (n == 0)
        return NULL;
    u64 f = irq_save();
    u64 p = page_find(page_hint, n);
    if (!p)
        p = page_find(0, n);
    if (!p) {
        page_st.failures++;
        irq_restore(f);
        PROBE_FIRE(mem, fail, n * PAGE_SIZE, "page");
        flight_record(FLIGHT_PAGE_FAIL, n, 0, 0);
        return NULL;
    }
    for (u64 i = 0; i < n; i++)
        page_mark(p + i, true);
    page_st.free -= n;
    page_hint = p + n;
    irq_restore(f);
    void *a = (void *)(p * PAGE_SIZE);
    memset(a, 0, n * PAGE_SIZE);
    PROBE_FIRE(mem, page_alloc, a, n);
    return a;
}

void *page_alloc(void)
{
    return page_alloc_n(1);
}

/* Give back n pages from page_alloc_n; a bad or double free panics. */
void page_free_n(void *a, size_t n)
{
    u64 p = (u64)a / PAGE_SIZE;
    if (!a)
        return;
    if ((u64)a % PAGE_SIZE || p < page_first || p + n > page_npages || p + n < p)
        panic("page_free: bad address %p (%zu pages)", a, n);
    PROBE_FIRE(mem, page_free, a, n);
    u64 f = irq_save();
    for (u64 i = 0; i < n; i++) {
        if (!page_used(p + i))
            panic("page_free: page %p already free", (void *)((p + i) * PAGE_SIZE));
        page_mark(p + i, false);
    }
    page_st.free += n;
    irq_restore(f);
}

void page_free(void *a)
{
    page_free_n(a, 1);
}

void page_stats(struct mm_page_stats *s)
{
    u64 f = irq_save();
    *s = page_st;
    irq_restore(f);
}

u64 page_limit(void)
{
    return page_npages;
}
