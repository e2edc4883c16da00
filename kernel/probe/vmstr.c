/* The probe VM's strings and helpers (CALL).  A string value is the
 * address of a NUL-terminated buffer the VM owns: the program's string
 * table, the per-firing scratch area, a string variable's slot or a
 * dynamic variable; anything else is refused (BADSTR), so a script cannot
 * read memory through a string.  Lengths are bounded by strsize - 1.  New
 * strings are allocated in scratch; when it runs out the clause faults
 * (SCRATCH).  Called by vm.c.  Pure: also built for the host. */
#include "lib.h"
#include "vm.h"

/* Is addr in [lo, lo + n)?  Then *room = bytes from addr to the end. */
static bool vmstr_in(u64 addr, const void *lo, u64 n, u64 *room)
{
    u64 l = (u64)(uintptr_t)lo;
    if (!lo || addr < l || addr - l >= n)
        return false;
    *room = n - (addr - l);
    return true;
}

/* The VM-owned string at addr; see vm.h. */
const char *vm_str(const struct vm_ctx *c, u64 addr, u32 *len)
{
    const struct vm_prog *p = c->prog;
    const struct dyn_table *d = c->dyn;
    u64 room;
    u32 dyn_first = d ? d->nbuckets * (u32)sizeof(u32) : 0;
    if (addr && addr == c->last_str) {      /* the newest string */
        *len = c->last_len;
        return (const char *)(uintptr_t)addr;
    }
    if (!vmstr_in(addr, p->strtab, p->strtab_len, &room) &&
        !vmstr_in(addr, c->scratch, c->scratch_used, &room) &&
        !vmstr_in(addr, c->globals, p->globals_bytes, &room) &&
        !vmstr_in(addr, c->locals, p->locals_bytes, &room) &&
        !vmstr_in(addr, c->nul, sizeof c->nul, &room) &&
        !(d && vmstr_in(addr, d->base + dyn_first, d->used - dyn_first, &room))) {
        for (u32 i = 0; i < c->nborrowed; i++)
            if (addr == c->borrowed[i].addr) {
                *len = c->borrowed[i].len;
                return (const char *)(uintptr_t)addr;
            }
        return NULL;
    }
    const char *s = (const char *)(uintptr_t)addr;
    *len = (u32)strnlen(s, MIN(room, (u64)p->strsize - 1));
    return s;
}

/* n + 1 bytes of scratch, or NULL. */
static char *vmstr_alloc(struct vm_ctx *c, u32 n)
{
    if (n + 1 > c->scratch_size - c->scratch_used)
        return NULL;
    char *s = c->scratch + c->scratch_used;
    c->scratch_used += n + 1;
    s[n] = 0;
    return s;
}

/* A new scratch copy of s[0..len), truncated to strsize - 1; see vm.h.
 * Remembered as the newest string, so that vm_str (TPUSH, RECS...) of it
 * right after needs no ownership check or length scan. */
char *vm_str_new(struct vm_ctx *c, const char *s, u32 len)
{
    len = MIN(len, c->prog->strsize - 1);
    char *d = vmstr_alloc(c, len);
    if (d) {
        memcpy(d, s, len);
        c->last_str = (u64)(uintptr_t)d;
        c->last_len = len;
    }
    return d;
}

/* The result of a string-making helper: its address, or SCRATCH. */
static u64 vmstr_result(const char *s, u32 *fault)
{
    if (!s)
        *fault = ISA_F_SCRATCH;
    return (u64)(uintptr_t)s;
}

/* A trusted kernel string (thread name, probe names) as a VM string; see
 * vm.h.  Its length is bounded by strsize - 1, as a copy's would be. */
u64 vm_str_kernel(struct vm_ctx *c, const char *s, u32 *fault)
{
    if (!s)
        s = c->nul;
    u32 len = (u32)strnlen(s, c->prog->strsize - 1);
    if (c->nborrowed == VM_BORROW_MAX)
        return vmstr_result(vm_str_new(c, s, len), fault);
    u64 a = (u64)(uintptr_t)s;
    c->borrowed[c->nborrowed].addr = a;
    c->borrowed[c->nborrowed++].len = len;
    c->last_str = a;
    c->last_len = len;
    return a;
}

/* stringof / copy of kernel memory: the NUL-terminated string at addr,
 * read through the safe-load path a byte (or an aligned word) at a time. */
static u64 vmstr_stringof(struct vm_ctx *c, u64 addr, u32 *fault, u64 *bad)
{
    u32 len, max = c->prog->strsize - 1, n = 0;
    const char *own = vm_str(c, addr, &len);
    if (own)
        return vmstr_result(vm_str_new(c, own, len), fault);
    char *d = vmstr_alloc(c, max);
    if (!d)
        return vmstr_result(NULL, fault);
    while (n < max) {
        u64 a = addr + n, w;
        u32 sz = (a & 7) == 0 && max - n >= 8 ? 8 : 1;
        if (!c->load(c->env, a, sz, &w)) {
            *fault = ISA_F_BADADDR;
            *bad = a;
            return 0;
        }
        u32 i = 0;
        for (; i < sz && (u8)(w >> (8 * i)); i++)
            d[n + i] = (char)(w >> (8 * i));
        n += i;
        if (i < sz)
            break;
    }
    d[n] = 0;
    c->scratch_used -= max - n;         /* give back what was not used */
    return (u64)(uintptr_t)d;
}

/* Offset of needle (nl bytes) in hay (hl bytes), or -1. */
static i64 vmstr_find(const char *hay, u32 hl, const char *needle, u32 nl)
{
    for (u32 i = 0; nl <= hl && i <= hl - nl; i++)
        if (!memcmp(hay + i, needle, nl))
            return i;
    return -1;
}

/* substr(s, from, count): from < 0 counts from the end, count < 0 runs
 * to the end; clamped to the string. */
static u64 vmstr_substr(struct vm_ctx *c, const char *s, u32 len, i64 from, i64 count,
                        u32 *fault)
{
    if (from < 0)
        from = (i64)len + from < 0 ? 0 : (i64)len + from;
    if (from > (i64)len)
        from = len;
    i64 n = (i64)len - from;
    if (count >= 0 && count < n)
        n = count;
    return vmstr_result(vm_str_new(c, s + from, (u32)n), fault);
}

/* strcmp: -1, 0 or 1 comparing bytewise. */
static u64 vmstr_cmp(const char *a, u32 la, const char *b, u32 lb)
{
    int r = memcmp(a, b, MIN(la, lb));
    if (!r)
        r = la < lb ? -1 : la > lb;
    return (u64)(i64)(r < 0 ? -1 : r > 0);
}

/* Helper h of the arguments a[]; see vm.h and isa.HELPERS. */
u64 vm_helper(struct vm_ctx *c, u32 h, const u64 *a, u32 *fault, u64 *addr)
{
    u32 la = 0, lb = 0;
    const char *s = NULL, *t = NULL;
    if (h == ISA_H_STRINGOF)
        return vmstr_stringof(c, a[0], fault, addr);
    if (!(s = vm_str(c, a[0], &la)))
        goto badstr;
    bool two = h == ISA_H_STRJOIN || h == ISA_H_STRSTR || h == ISA_H_STRCMP ||
               h == ISA_H_INDEX;
    if (two && !(t = vm_str(c, a[1], &lb)))
        goto badstr;
    switch (h) {
    case ISA_H_STRLEN: return la;
    case ISA_H_STRJOIN: {
        u32 n = MIN(la + lb, c->prog->strsize - 1);
        char *d = vmstr_alloc(c, n);
        if (d) {
            memcpy(d, s, la);
            memcpy(d + la, t, n - la);
        }
        return vmstr_result(d, fault);
    }
    case ISA_H_SUBSTR: return vmstr_substr(c, s, la, (i64)a[1], (i64)a[2], fault);
    case ISA_H_STRSTR: {
        i64 at = vmstr_find(s, la, t, lb);
        return at < 0 ? 0 : vmstr_result(vm_str_new(c, s + at, la - (u32)at), fault);
    }
    case ISA_H_STRCMP: return vmstr_cmp(s, la, t, lb);
    case ISA_H_STRCHR: {
        char ch = (char)a[1];
        const char *p = NULL;
        for (u32 i = 0; ch && !p && i < la; i++)
            if (s[i] == ch)
                p = s + i;
        return p ? vmstr_result(vm_str_new(c, p, la - (u32)(p - s)), fault) : 0;
    }
    case ISA_H_INDEX: return (u64)vmstr_find(s, la, t, lb);
    }
    *fault = ISA_F_ILLOP;
    return 0;
badstr:
    *fault = ISA_F_BADSTR;
    return 0;
}
