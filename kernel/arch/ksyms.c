/* Function names for addresses, from the .ksyms table the Makefile
 * generates after the first link: {u64 count; {u64 addr; u64 name}[count]}
 * sorted by address.  Used by the panic backtrace. */
#include "arch.h"

extern const u64 __ksyms_start[];
extern const char __text_end[];

/* Name of the function containing addr and the offset into it; NULL when
 * addr is outside .text or the table is empty (first link). */
const char *ksyms_lookup(u64 addr, u64 *offset)
{
    u64 n = __ksyms_start[0];
    const u64 *e = __ksyms_start + 1;

    if (n == 0 || addr < e[0] || addr >= (u64)__text_end)
        return NULL;
    u64 lo = 0, hi = n - 1;             /* find the last entry <= addr */
    while (lo < hi) {
        u64 mid = (lo + hi + 1) / 2;
        if (e[2 * mid] <= addr)
            lo = mid;
        else
            hi = mid - 1;
    }
    *offset = addr - e[2 * lo];
    return (const char *)e[2 * lo + 1];
}
