/* Function names for addresses, from the .ksyms table the Makefile
 * generates after the first link: {u64 count; {u64 addr; u64 name}[count]}
 * sorted by address.  Used by the panic backtrace. */
#include "arch.h"

extern const u64 __ksyms_start[];
extern const char __text_end[];

/* The entry of table ({u64 count; {u64 addr; u64 name}[count]} sorted by
 * address) with the greatest addr <= addr: its {addr, name} pair; NULL when
 * the table is empty or addr precedes its first entry.  Used here and by
 * fbt.c's module table (.fbtmods), which has the same layout. */
const u64 *ksyms_entry(const u64 *table, u64 addr)
{
    u64 n = table[0];
    const u64 *e = table + 1;

    if (n == 0 || addr < e[0])
        return NULL;
    u64 lo = 0, hi = n - 1;             /* find the last entry <= addr */
    while (lo < hi) {
        u64 mid = (lo + hi + 1) / 2;
        if (e[2 * mid] <= addr)
            lo = mid;
        else
            hi = mid - 1;
    }
    return e + 2 * lo;
}

/* Name of the function containing addr and the offset into it; NULL when
 * addr is outside .text or the table is empty (first link). */
const char *ksyms_lookup(u64 addr, u64 *offset)
{
    const u64 *e = addr < (u64)__text_end ? ksyms_entry(__ksyms_start, addr) : NULL;

    if (!e)
        return NULL;
    *offset = addr - e[0];
    return (const char *)e[1];
}
