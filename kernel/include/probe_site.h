/* Static probes: declaring them (PROBE_DEFINE) and firing them (PROBE_FIRE),
 * as OSv's TRACEPOINT and Unikraft's UK_TRACEPOINT, with the Linux
 * static-key technique (asm goto) so that a disabled probe costs one 5-byte
 * nop in the hot path and nothing else.
 *
 * Declare once, at the top of the file that fires it:
 *
 *     PROBE_DEFINE(sched, switch, struct thread *, prev, struct thread *, next);
 *
 * provider, name, then up to six (C type, argument name) pairs.  The types
 * are real C types: the firing site's arguments are checked against them
 * by the compiler, and their spelling is what `unik trace -lv` shows.  The
 * type `string` (a typedef for const char *) marks a NUL-terminated string
 * argument (D's string type).  A `_` in the name becomes `-` in the probe's
 * name: PROBE_DEFINE(sched, thread_create, ...) is sched:::thread-create.
 * Names are at most PROBE_NAME_MAX - 1 characters.
 *
 * Fire it where it happens:
 *
 *     PROBE_FIRE(sched, switch, prev, next);
 *     PROBE_FIRE_IF(why >= 0, chan, reject, why, type);
 *
 * Disabled, a site is the 5-byte nop 0f 1f 44 00 00 and nothing else: the
 * arguments are evaluated only in the site's out-of-line block, which
 * pushes them and calls site_entry (probe/site_entry.S) with no clobbers
 * and no register of its own, so the compiler keeps no extra register,
 * move or spill in the hot path for it.
 * PROBE_FIRE_IF evaluates its condition in the out-of-line block too.
 * site_set (probe.h) patches the nop into `jmp` to that block and back.
 *
 * The probe table.  Each PROBE_FIRE emits (the probe is identified by
 * provider:module:function:name, as in DTrace):
 *  - one struct isa_probe_desc in section .unik_probes: provider, module
 *    (PROBE_MODULE: the kernel subsystem, the source's directory under
 *    kernel/, given by the Makefile), function (__func__ of the firing
 *    function), name, and the argument types and names;
 *  - one struct isa_probe_site in section .unik_sites per nop the compiler
 *    emitted for it (more than one when the function is inlined or cloned):
 *    the nop's address, its out-of-line block's address and the descriptor.
 * A probe fired from two functions is two probes (sched:sched:thread_block:
 * sleep and sched:sched:thread_sleep_ms:sleep, say), matched together by
 * sched:::sleep.  A function may fire a given probe from one place only
 * (the compiler says "duplicate label 'probe_once_...'" otherwise).
 * The static probe i is the i-th descriptor of .unik_probes; its probe id
 * is ISA_FIRST_STATIC_PROBE + i.  The host reads the same table from the
 * ELF (introspect/probetable.py).
 *
 * Do not fire probes in kernel/probe/ or in what the engine calls while it
 * runs a clause (the re-entrancy guard would drop them anyway). */
#ifndef UNIK_PROBE_SITE_H
#define UNIK_PROBE_SITE_H
#include "types.h"
#include "isa.h"

#ifndef PROBE_MODULE
#error "PROBE_MODULE is not defined: kernel/Makefile passes it for every source"
#endif

/* D's string type for probe arguments: a NUL-terminated kernel string. */
typedef const char *string;

#define PROBE_NAME_MAX 32               /* bytes of a probe name, NUL included */

/* The tables, between linker-script symbols (kernel.ld). */
extern const struct isa_probe_desc __unik_probes_start[], __unik_probes_end[];
extern const struct isa_probe_site __unik_sites_start[], __unik_sites_end[];

/* Called by a site's out-of-line block, through site_entry (site_entry.S),
 * which saves every caller-saved register first: frame[0] is the probe's
 * descriptor (as a u64), frame[1..6] its arguments a0..a5 -- the words the
 * block pushed, read in place.  Counts the firing (site_fires) and runs the
 * engine (probe_fire_static, inline), or the handler the self-test
 * installed. */
void site_fire(const u64 *frame);
extern u64 site_fires;
/* A replacement for the engine: the self-test installs a recorder with
 * site_set_handler (NULL puts the engine back) and gets the old one back
 * (NULL when it was the engine). */
typedef void (*site_handler_fn)(u32 index, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5);
site_handler_fn site_set_handler(site_handler_fn fn);

/* ------------------------------------------------------------ internals */
#define PROBE__CAT_(a, b) a##b
#define PROBE__CAT(a, b) PROBE__CAT_(a, b)
#define PROBE__ID(what, prov, name) __probe_##what##_##prov##_##name

/* Count the (type, name) pairs: 0..6, or x for an odd count (an error). */
#define PROBE__NPAIRS(...) PROBE__NTH(_, ##__VA_ARGS__, 6, x, 5, x, 4, x, 3, x, 2, x, 1, x, 0)
#define PROBE__NTH(_0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, n, ...) n

/* Character i of string literal s, with '_' turned into '-'. */
#define PROBE__DASH(s, i) ((i) < sizeof(s) ? ((s)[i] == '_' ? '-' : (s)[i]) : 0)
#define PROBE__DASH8(s, i) PROBE__DASH(s, i), PROBE__DASH(s, i + 1), \
    PROBE__DASH(s, i + 2), PROBE__DASH(s, i + 3), PROBE__DASH(s, i + 4), \
    PROBE__DASH(s, i + 5), PROBE__DASH(s, i + 6), PROBE__DASH(s, i + 7)

#define PROBE__STR(what, prov, name, text) \
    static const char PROBE__ID(what, prov, name)[] __attribute__((unused)) = text

/* The strings every descriptor of the probe points at; missing argument
 * slots are "" (the descriptor then holds 0). */
#define PROBE__HEAD(prov, name, n)                                          \
    _Static_assert(sizeof(#name) <= PROBE_NAME_MAX, "probe name too long"); \
    static const char PROBE__ID(nm, prov, name)[PROBE_NAME_MAX]             \
        __attribute__((unused)) = {                                         \
        PROBE__DASH8(#name, 0), PROBE__DASH8(#name, 8),                     \
        PROBE__DASH8(#name, 16), PROBE__DASH8(#name, 24) };                 \
    enum { PROBE__ID(nargs, prov, name) = n }
#define PROBE__ARG(prov, name, i, T, A) \
    PROBE__STR(t##i, prov, name, #T); PROBE__STR(a##i, prov, name, #A)
#define PROBE__NOARG(prov, name, i) \
    PROBE__STR(t##i, prov, name, ""); PROBE__STR(a##i, prov, name, "")

/* The typed call: converts the arguments (so the compiler checks them
 * against the declared types), pushes a5..a0 and the descriptor and calls
 * site_entry, which preserves every register and pops nothing (the block
 * drops the 56 bytes).  Operands are "register or 32-bit immediate"
 * (never memory, whose address could be %rsp-relative) in registers of
 * the compiler's choice, so no value has to be moved for the block's sake
 * in the hot path. */
#define PROBE__FN(prov, name, ...)                                          \
    static inline __attribute__((always_inline, unused)) void               \
    PROBE__ID(fire, prov, name)(const void *probe_desc__, ##__VA_ARGS__)
#define PROBE__BODY(a0, a1, a2, a3, a4, a5)                                 \
    {                                                                       \
        __asm__ volatile("pushq %6\n\tpushq %5\n\tpushq %4\n\t"             \
                         "pushq %3\n\tpushq %2\n\tpushq %1\n\t"             \
                         "pushq $%c0\n\tcall site_entry\n\t"                \
                         "lea 56(%%rsp), %%rsp"                             \
                         : : "i"(probe_desc__), "re"((u64)(a0)),            \
                           "re"((u64)(a1)), "re"((u64)(a2)), "re"((u64)(a3)), \
                           "re"((u64)(a4)), "re"((u64)(a5))                 \
                         : "memory", "cc");                                 \
    }
#define PROBE__U(x) ((u64)(uintptr_t)(x))

#define PROBE__DEF0(p, n)                                                    \
    PROBE__HEAD(p, n, 0); PROBE__NOARG(p, n, 0); PROBE__NOARG(p, n, 1);      \
    PROBE__NOARG(p, n, 2); PROBE__NOARG(p, n, 3); PROBE__NOARG(p, n, 4);     \
    PROBE__NOARG(p, n, 5);                                                   \
    PROBE__FN(p, n) PROBE__BODY(0, 0, 0, 0, 0, 0)
#define PROBE__DEF1(p, n, T0, a0)                                            \
    PROBE__HEAD(p, n, 1); PROBE__ARG(p, n, 0, T0, a0); PROBE__NOARG(p, n, 1); \
    PROBE__NOARG(p, n, 2); PROBE__NOARG(p, n, 3); PROBE__NOARG(p, n, 4);     \
    PROBE__NOARG(p, n, 5);                                                   \
    PROBE__FN(p, n, T0 a0) PROBE__BODY(PROBE__U(a0), 0, 0, 0, 0, 0)
#define PROBE__DEF2(p, n, T0, a0, T1, a1)                                    \
    PROBE__HEAD(p, n, 2); PROBE__ARG(p, n, 0, T0, a0); PROBE__ARG(p, n, 1, T1, a1); \
    PROBE__NOARG(p, n, 2); PROBE__NOARG(p, n, 3); PROBE__NOARG(p, n, 4);     \
    PROBE__NOARG(p, n, 5);                                                   \
    PROBE__FN(p, n, T0 a0, T1 a1) PROBE__BODY(PROBE__U(a0), PROBE__U(a1), 0, 0, 0, 0)
#define PROBE__DEF3(p, n, T0, a0, T1, a1, T2, a2)                            \
    PROBE__HEAD(p, n, 3); PROBE__ARG(p, n, 0, T0, a0); PROBE__ARG(p, n, 1, T1, a1); \
    PROBE__ARG(p, n, 2, T2, a2); PROBE__NOARG(p, n, 3); PROBE__NOARG(p, n, 4); \
    PROBE__NOARG(p, n, 5);                                                   \
    PROBE__FN(p, n, T0 a0, T1 a1, T2 a2)                                     \
    PROBE__BODY(PROBE__U(a0), PROBE__U(a1), PROBE__U(a2), 0, 0, 0)
#define PROBE__DEF4(p, n, T0, a0, T1, a1, T2, a2, T3, a3)                    \
    PROBE__HEAD(p, n, 4); PROBE__ARG(p, n, 0, T0, a0); PROBE__ARG(p, n, 1, T1, a1); \
    PROBE__ARG(p, n, 2, T2, a2); PROBE__ARG(p, n, 3, T3, a3);                \
    PROBE__NOARG(p, n, 4); PROBE__NOARG(p, n, 5);                            \
    PROBE__FN(p, n, T0 a0, T1 a1, T2 a2, T3 a3)                              \
    PROBE__BODY(PROBE__U(a0), PROBE__U(a1), PROBE__U(a2), PROBE__U(a3), 0, 0)
#define PROBE__DEF5(p, n, T0, a0, T1, a1, T2, a2, T3, a3, T4, a4)            \
    PROBE__HEAD(p, n, 5); PROBE__ARG(p, n, 0, T0, a0); PROBE__ARG(p, n, 1, T1, a1); \
    PROBE__ARG(p, n, 2, T2, a2); PROBE__ARG(p, n, 3, T3, a3);                \
    PROBE__ARG(p, n, 4, T4, a4); PROBE__NOARG(p, n, 5);                      \
    PROBE__FN(p, n, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4)                       \
    PROBE__BODY(PROBE__U(a0), PROBE__U(a1), PROBE__U(a2), PROBE__U(a3),      \
                PROBE__U(a4), 0)
#define PROBE__DEF6(p, n, T0, a0, T1, a1, T2, a2, T3, a3, T4, a4, T5, a5)    \
    PROBE__HEAD(p, n, 6); PROBE__ARG(p, n, 0, T0, a0); PROBE__ARG(p, n, 1, T1, a1); \
    PROBE__ARG(p, n, 2, T2, a2); PROBE__ARG(p, n, 3, T3, a3);                \
    PROBE__ARG(p, n, 4, T4, a4); PROBE__ARG(p, n, 5, T5, a5);                \
    PROBE__FN(p, n, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)                \
    PROBE__BODY(PROBE__U(a0), PROBE__U(a1), PROBE__U(a2), PROBE__U(a3),      \
                PROBE__U(a4), PROBE__U(a5))

/* Address of string `what` of the probe, or 0 for an empty slot. */
#define PROBE__PTR(what, p, n) \
    (sizeof(PROBE__ID(what, p, n)) > 1 ? PROBE__U(PROBE__ID(what, p, n)) : 0)

/* This firing place's descriptor (static, in .unik_probes). */
#define PROBE__DESC(p, n, var)                                               \
    static const struct isa_probe_desc var                                   \
        __attribute__((section(".unik_probes"), used, aligned(8))) = {       \
        .provider = PROBE__U(#p), .module = PROBE__U(PROBE_MODULE),          \
        .function = PROBE__U(__func__), .name = PROBE__U(PROBE__ID(nm, p, n)), \
        .nargs = PROBE__ID(nargs, p, n), .pad = 0,                           \
        .argtype0 = PROBE__PTR(t0, p, n), .argtype1 = PROBE__PTR(t1, p, n),  \
        .argtype2 = PROBE__PTR(t2, p, n), .argtype3 = PROBE__PTR(t3, p, n),  \
        .argtype4 = PROBE__PTR(t4, p, n), .argtype5 = PROBE__PTR(t5, p, n),  \
        .argname0 = PROBE__PTR(a0, p, n), .argname1 = PROBE__PTR(a1, p, n),  \
        .argname2 = PROBE__PTR(a2, p, n), .argname3 = PROBE__PTR(a3, p, n),  \
        .argname4 = PROBE__PTR(a4, p, n), .argname5 = PROBE__PTR(a5, p, n) }

/* The site: the nop, its .unik_sites record, and the out-of-line block
 * (reached only through the patched jmp) that runs `call` if `cond`. */
#define PROBE__SITE(p, n, cond, ...)                                         \
    do {                                                                     \
        __label__ probe_on;                                                  \
        PROBE__DESC(p, n, probe_desc_);                                      \
    PROBE__ID(once, p, n): __attribute__((unused));                          \
        __asm__ goto("1: .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\t"             \
                     ".pushsection .unik_sites, \"a\"\n\t"                   \
                     ".balign 8\n\t"                                         \
                     ".quad 1b, %l[probe_on], %c0\n\t"                       \
                     ".popsection"                                           \
                     : : "i"(&probe_desc_) : : probe_on);                    \
        if (0) {                                                             \
        probe_on: __attribute__((cold));                                     \
            if (cond)                                                        \
                PROBE__ID(fire, p, n)(&probe_desc_, ##__VA_ARGS__);          \
        }                                                                    \
    } while (0)

/* ------------------------------------------------------------ the API */
#define PROBE_DEFINE(prov, name, ...) \
    PROBE__CAT(PROBE__DEF, PROBE__NPAIRS(__VA_ARGS__))(prov, name, ##__VA_ARGS__)
#define PROBE_FIRE(prov, name, ...) PROBE__SITE(prov, name, 1, ##__VA_ARGS__)
#define PROBE_FIRE_IF(cond, prov, name, ...) PROBE__SITE(prov, name, cond, ##__VA_ARGS__)
#endif
