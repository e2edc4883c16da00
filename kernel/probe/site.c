/* Static probe sites: the probe table PROBE_FIRE builds (probe_site.h) in
 * sections .unik_probes (one isa_probe_desc per probe) and .unik_sites (one
 * isa_probe_site per 5-byte nop), the boot check of every site, and
 * patching a probe's sites between the nop and `jmp rel32` to their
 * out-of-line blocks.
 *
 * Whether a site is on is read from its bytes (the text is the truth):
 * NOP5 is off, e9 + (target - (addr + 5)) is on, anything else is a site
 * this file refuses to touch ("bad": logged once, never patched).  Text is
 * writable (identity map) and there is one CPU, so a patch is five byte
 * stores with interrupts off: no thread can be in the middle of the
 * instruction, and an interrupt cannot see half of it.  (An NMI could;
 * the kernel uses none.)  QEMU's TCG notices the write and retranslates.
 *
 * Callers: kmain (site_init), the probe engine (site_set, site_restore_all,
 * site_count, site_desc), site_entry.S (site_fire), the self-test. */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "probe.h"
#include "probe_site.h"
#include "x86.h"
#include "engine.h"
#include "stack.h"

#define SITE_LEN 5
#define SITE_JMP 0xe9

static const u8 site_nop5[SITE_LEN] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

extern const u8 __text_start[], __text_end[];

static u8 *site_bad;                    /* per site: failed a check, never patched */
static u32 site_nbad;
static site_handler_fn site_handler;   /* NULL: the engine (probe_fire_args) */
u64 site_fires;                         /* firings that went through site_fire */

static u32 site_nsites(void)
{
    return (u32)(__unik_sites_end - __unik_sites_start);
}

u32 site_count(void)
{
    return (u32)(__unik_probes_end - __unik_probes_start);
}

/* Static probe i's descriptor, or NULL when there is no such probe. */
const struct isa_probe_desc *site_desc(u32 i)
{
    return i < site_count() ? &__unik_probes_start[i] : NULL;
}

/* Index of the probe site s fires, or site_count() when its descriptor
 * pointer is not one of the table's. */
static u32 site_probe(const struct isa_probe_site *s)
{
    u64 base = (u64)__unik_probes_start, d = s->desc;
    if (d < base || d >= (u64)__unik_probes_end ||
        (d - base) % sizeof(struct isa_probe_desc))
        return site_count();
    return (u32)((d - base) / sizeof(struct isa_probe_desc));
}

/* The 5 bytes of site s enabled: jmp rel32 to its out-of-line block. */
static void site_jmp(const struct isa_probe_site *s, u8 out[SITE_LEN])
{
    i32 rel = (i32)(s->target - (s->addr + SITE_LEN));
    out[0] = SITE_JMP;
    memcpy(out + 1, &rel, sizeof rel);
}

static bool site_holds(const struct isa_probe_site *s, const u8 *bytes)
{
    return memcmp((const void *)s->addr, bytes, SITE_LEN) == 0;
}

/* Store the 5 bytes (interrupts off: the caller's irq_save). */
static void site_write(const struct isa_probe_site *s, const u8 *bytes)
{
    volatile u8 *p = (volatile u8 *)s->addr;
    for (u32 k = 0; k < SITE_LEN; k++)
        p[k] = bytes[k];
    barrier();
}

/* Take site n out of service and say why.  Called by site_check and
 * site_patch. */
static void site_refuse(u32 n, const char *why)
{
    const struct isa_probe_site *s = &__unik_sites_start[n];
    const u8 *b = (const u8 *)s->addr;
    if (site_bad[n])
        return;
    site_bad[n] = 1;
    site_nbad++;
    kprintf("site: site %u at 0x%lx %s (bytes %02x %02x %02x %02x %02x): never patched\n",
            n, (unsigned long)s->addr, why, b[0], b[1], b[2], b[3], b[4]);
}

/* Boot check of site n: a nop inside .text, a target inside .text within
 * jmp rel32 reach, a descriptor of the table.  False if refused. */
static bool site_check(u32 n)
{
    const struct isa_probe_site *s = &__unik_sites_start[n];
    u64 lo = (u64)__text_start, hi = (u64)__text_end;
    if (s->addr < lo || s->addr + SITE_LEN > hi) {
        site_bad[n] = 1;
        site_nbad++;
        kprintf("site: site %u at 0x%lx is outside .text: never patched\n",
                n, (unsigned long)s->addr);
        return false;
    }
    if (s->target < lo || s->target >= hi)
        site_refuse(n, "jumps outside .text");
    else if (site_probe(s) == site_count())
        site_refuse(n, "has no descriptor");
    else if (!site_holds(s, site_nop5))
        site_refuse(n, "is not the 5-byte nop");
    return !site_bad[n];
}

/* Check every site (called once by kmain after mm_init, before any thread
 * runs): the table's sections must be whole records and every site the
 * nop; a site that is not is logged and never patched. */
void site_init(void)
{
    u64 dbytes = (u64)__unik_probes_end - (u64)__unik_probes_start;
    u64 sbytes = (u64)__unik_sites_end - (u64)__unik_sites_start;
    if (dbytes % sizeof(struct isa_probe_desc) || sbytes % sizeof(struct isa_probe_site))
        panic("site: probe table sections are not whole records (%lu, %lu bytes)",
              (unsigned long)dbytes, (unsigned long)sbytes);
    if (site_count() > PROBE_IDS_MAX - ISA_FIRST_STATIC_PROBE)
        panic("site: %u static probes, the engine has ids for %u (PROBE_IDS_MAX)",
              site_count(), PROBE_IDS_MAX - ISA_FIRST_STATIC_PROBE);
    u32 n = site_nsites();
    site_bad = kzalloc(n ? n : 1);
    if (!site_bad)
        panic("site: no memory for %u site flags", n);
    for (u32 i = 0; i < n; i++)
        site_check(i);
    kprintf("site: %u static probes, %u sites%s\n", site_count(), n,
            site_nbad ? " (some refused, see above)" : "");
}

/* Patch every site of probe i to `want` if it holds `from`; a site
 * holding neither is refused.  Interrupts off (the caller's). */
static void site_patch(u32 i, bool on)
{
    u8 jmp[SITE_LEN];
    for (u32 n = 0; n < site_nsites(); n++) {
        const struct isa_probe_site *s = &__unik_sites_start[n];
        if (site_bad[n] || site_probe(s) != i)
            continue;
        site_jmp(s, jmp);
        const u8 *want = on ? jmp : site_nop5, *from = on ? site_nop5 : jmp;
        if (site_holds(s, want))
            continue;
        if (site_holds(s, from))
            site_write(s, want);
        else
            site_refuse(n, "changed under us");
    }
}

/* Turn static probe i's sites on (jmp) or off (nop).  Called by the
 * engine on the first enabling of a probe and after the last one. */
void site_set(u32 i, bool on)
{
    if (i >= site_count() || !site_bad)
        return;
    u64 f = irq_save();
    site_patch(i, on);
    irq_restore(f);
}

/* Sites of static probe i that are patched on now. */
u32 site_enabled(u32 i)
{
    u32 on = 0;
    u8 jmp[SITE_LEN];
    u64 f = irq_save();
    for (u32 n = 0; site_bad && n < site_nsites(); n++) {
        const struct isa_probe_site *s = &__unik_sites_start[n];
        if (site_bad[n] || site_probe(s) != i)
            continue;
        site_jmp(s, jmp);
        on += site_holds(s, jmp);
    }
    irq_restore(f);
    return on;
}

/* Every site back to the nop, whatever enabled it; returns how many were
 * on.  Called by the engine when the last session goes (teardown). */
u32 site_restore_all(void)
{
    u32 restored = 0;
    u8 jmp[SITE_LEN];
    u64 f = irq_save();
    for (u32 n = 0; site_bad && n < site_nsites(); n++) {
        const struct isa_probe_site *s = &__unik_sites_start[n];
        site_jmp(s, jmp);
        if (!site_bad[n] && site_holds(s, jmp)) {
            site_write(s, site_nop5);
            restored++;
        }
    }
    irq_restore(f);
    return restored;
}

/* Sites refused by the boot check or a patch (tests, stats). */
u32 site_refused(void)
{
    return site_nbad;
}

/* The modular inverse of odd d mod 2^32 (Newton's iteration: each step
 * doubles the bits that are right, d itself being right to 3). */
#define SITE_INV1(d, x) ((x) * (2u - (d) * (x)))
#define SITE_INV(d) SITE_INV1(d, SITE_INV1(d, SITE_INV1(d, SITE_INV1(d, (u32)(d)))))
#define SITE_DESC_SHIFT __builtin_ctz(sizeof(struct isa_probe_desc))
#define SITE_DESC_ODD ((u32)(sizeof(struct isa_probe_desc) >> SITE_DESC_SHIFT))

/* Index of the descriptor at address d (one of the table's: the site
 * pushed it): an exact division by the descriptor's size, done as a shift
 * and a multiplication by the inverse of its odd part. */
static inline u32 site_index(u64 d)
{
    _Static_assert(SITE_INV(SITE_DESC_ODD) * SITE_DESC_ODD == 1, "inverse");
    return (u32)((d - (u64)__unik_probes_start) >> SITE_DESC_SHIFT) * SITE_INV(SITE_DESC_ODD);
}

/* The self-test's handler instead of the engine (site_fire). */
static __attribute__((noinline)) void site_call_handler(u32 index, const u64 *frame)
{
    site_handler(index, frame[1], frame[2], frame[3], frame[4], frame[5], frame[6]);
}

/* An enabled site fired (site_entry.S calls this with every caller-saved
 * register saved and frame pointing at the descriptor and arguments the
 * block pushed): count it and run the engine on the arguments in place
 * (probe_fire_static, inline: this is the hot path), unless a test
 * installed its own handler.  The descriptor is one of the table's (the
 * site pushed it), so its index is below site_count(), which site_init
 * checked fits the engine's probe ids.  stack() starts at site_entry's
 * frame record, just below the pushed words: its pc is in the site's
 * block (the host names it by the site) and its saved rbp is the probed
 * function's. */
void site_fire(const u64 *frame)
{
    u32 index = site_index(frame[0]);
    site_fires++;
    if (__builtin_expect(site_handler != NULL, 0))
        site_call_handler(index, frame);
    else
        probe_fire_static_at(ISA_FIRST_STATIC_PROBE + index, frame + 1, 6,
                             (u64)(frame - 2) + STACK_ORIGIN_SITE);
}

/* Replace the firing handler (the self-test's recorder); returns the old
 * one (NULL: the engine).  NULL puts the engine back. */
site_handler_fn site_set_handler(site_handler_fn fn)
{
    u64 f = irq_save();
    site_handler_fn old = site_handler;
    site_handler = fn;
    irq_restore(f);
    return old;
}
