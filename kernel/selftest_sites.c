/* The self-test of static probe sites (kernel/probe/site.c): every probe
 * patched on is a jmp to its out-of-line block and patched off is the
 * 5-byte nop again, byte for byte; site_restore_all undoes everything;
 * and enabled probes really fire, with the right index and arguments
 * (mem:::alloc, mem:::free, log:::line, sched:::sleep), while disabled
 * ones do not.  Firings are caught by a recorder installed with
 * site_set_handler, so this works with or without the probe engine.
 * Called by selftest_main. */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "log.h"
#include "mm.h"
#include "probe.h"
#include "probe_site.h"
#include "selftest.h"
#include "thread.h"
#include "x86.h"

static const u8 sst_nop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};

static u32 sst_want;                    /* the probe index the recorder keeps */
static u64 sst_arg0;                    /* ... and its arg0, if not 0 */
static volatile u32 sst_fires;          /* its firings */
static volatile u32 sst_others;         /* firings of other probes */
static u64 sst_args[6];                 /* the last firing's arguments */
static char sst_str[128];               /* a copy of its string argument */
static int sst_str_arg = -1;            /* which argument is a string (-1: none) */

/* The firing handler while testing: keep sst_want's firings (arguments,
 * and the string argument copied while it is valid), count the rest. */
static void sst_record(u32 index, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
    if (index != sst_want || (sst_arg0 && a0 != sst_arg0)) {
        sst_others++;
        return;
    }
    u64 a[6] = {a0, a1, a2, a3, a4, a5};
    memcpy(sst_args, a, sizeof a);
    if (sst_str_arg >= 0)
        str_copy(sst_str, (const char *)a[sst_str_arg], sizeof sst_str);
    sst_fires++;
}

/* Index of the static probe provider:...:function:name, or site_count(). */
static u32 sst_find(const char *prov, const char *func, const char *name)
{
    for (u32 i = 0; i < site_count(); i++) {
        const struct isa_probe_desc *d = site_desc(i);
        if (!strcmp((const char *)d->provider, prov) && !strcmp((const char *)d->name, name) &&
            !strcmp((const char *)d->function, func))
            return i;
    }
    return site_count();
}

/* Start recording probe i's firings (string argument str_arg, or -1). */
static void sst_expect(u32 i, int str_arg)
{
    sst_want = i;
    sst_arg0 = 0;
    sst_fires = 0;
    sst_str_arg = str_arg;
    sst_str[0] = 0;
    memset(sst_args, 0, sizeof sst_args);
}

/* Do the sites of probe i hold its jmp (on) or the nop (off), byte for
 * byte?  Returns how many sites it has. */
static u32 sst_check_bytes(u32 i, bool on)
{
    const struct isa_probe_site *s = __unik_sites_start;
    u32 n = 0;
    for (; s < __unik_sites_end; s++) {
        if (s->desc != (u64)site_desc(i))
            continue;
        const u8 *b = (const u8 *)s->addr;
        i32 rel;
        memcpy(&rel, b + 1, sizeof rel);
        if (on)
            CHECK(b[0] == 0xe9 && s->addr + 5 + (u64)(i64)rel == s->target);
        else
            CHECK(memcmp(b, sst_nop5, 5) == 0);
        n++;
    }
    return n;
}

/* Every probe on then off, one at a time; then all on and
 * site_restore_all.  Interrupts off throughout, so nothing but a failing
 * CHECK's kprintf can reach a site while one is on. */
static void sst_patch_all(void)
{
    u32 total = 0;
    u64 f = irq_save();
    CHECK(site_count() >= 14 && site_refused() == 0);
    for (u32 i = 0; i < site_count(); i++) {
        CHECK(site_enabled(i) == 0);
        site_set(i, true);
        u32 n = sst_check_bytes(i, true);
        CHECK(n > 0 && site_enabled(i) == n);
        site_set(i, true);                      /* twice: no change */
        CHECK(site_enabled(i) == n);
        site_set(i, false);
        sst_check_bytes(i, false);
        CHECK(site_enabled(i) == 0);
        total += n;
    }
    for (u32 i = 0; i < site_count(); i++)
        site_set(i, true);
    CHECK(site_restore_all() == total);
    for (u32 i = 0; i < site_count(); i++) {
        sst_check_bytes(i, false);
        CHECK(site_enabled(i) == 0);
    }
    CHECK(site_restore_all() == 0);
    site_set(site_count(), true);               /* no such probe: ignored */
    irq_restore(f);
}

/* mem:::alloc and mem:::free fire once each with their arguments when
 * enabled, and not at all when disabled. */
static void sst_fire_mem(void)
{
    u32 ia = sst_find("mem", "kmalloc", "alloc"), ifr = sst_find("mem", "kfree", "free");
    CHECK(ia < site_count() && ifr < site_count());
    u64 fires0 = site_fires;
    u64 f = irq_save();
    sst_expect(ia, -1);
    site_set(ia, true);
    void *p = kmalloc(100);
    site_set(ia, false);
    CHECK(sst_fires == 1 && site_fires == fires0 + 1);
    CHECK(sst_args[0] == (u64)p && sst_args[1] == 100 && sst_args[2] == 128);
    CHECK(sst_args[3] == 0 && sst_args[4] == 0 && sst_args[5] == 0);
    sst_expect(ifr, -1);
    site_set(ifr, true);
    kfree(p);
    site_set(ifr, false);
    CHECK(sst_fires == 1 && sst_args[0] == (u64)p && sst_args[1] == 128);
    sst_expect(ia, -1);
    kfree(kmalloc(100));                        /* both off: nothing fires */
    CHECK(sst_fires == 0 && site_fires == fires0 + 2);
    irq_restore(f);
}

/* log:::line passes the completed line (string), its length and offset;
 * sched:::sleep the thread, the wchan string and the timeout. */
static void sst_fire_strings(void)
{
    u32 il = sst_find("log", "log_write", "line");
    u32 is = sst_find("sched", "thread_sleep_ms", "sleep");
    CHECK(il < site_count() && is < site_count());
    u64 f = irq_save();
    sst_expect(il, 0);
    site_set(il, true);
    kprintf("selftest: probe line %d\n", 42);
    site_set(il, false);
    u64 head = log_head();
    irq_restore(f);
    u32 len = (u32)strlen(sst_str);
    CHECK(sst_fires == 1 && sst_args[1] == len && len > 23);
    CHECK(len > 23 && !strcmp(sst_str + len - 23, "selftest: probe line 42"));
    CHECK(sst_args[2] + len + 1 == head);

    sst_expect(is, 1);
    sst_arg0 = (u64)thread_current();
    site_set(is, true);
    thread_sleep_ms(2, "sst-sleep");
    site_set(is, false);
    CHECK(sst_fires == 1 && sst_args[0] == (u64)thread_current());
    CHECK(!strcmp(sst_str, "sst-sleep") && sst_args[2] == 2);
}

void selftest_sites(void)
{
    site_handler_fn old = site_set_handler(sst_record);
    sst_patch_all();
    sst_fire_mem();
    sst_fire_strings();
    site_set_handler(old);
    CHECK(site_restore_all() == 0);
}
