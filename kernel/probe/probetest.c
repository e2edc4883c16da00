/* In-guest self-test of the probe engine, without the channel: called by
 * kernel/selftest.c.  Opens a session, uploads a program in chunks, enables
 * BEGIN, END, ERROR, tick-1ms and a static probe (panic:::enter, which
 * never fires by itself; the test calls probe_fire for it), runs, and
 * checks the records, the aggregations, safe-load refusals (page 0, MMIO,
 * the session's own memory), the re-entrancy guard, exit(), verifier
 * refusals, four concurrent sessions, and that closing returns every page.
 * Also measures probe_fire's stack use. */
#include "engine.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "selftest.h"
#include "thread.h"
#include "x86.h"

#define PT_STACK_PAINT 0x5eed5eed5eed5eedull
#define PT_STACK_SPAN 8192              /* bytes painted below the measuring frame */

#define I(o, d, a, b, i) { ISA_OP_##o, d, a, b, i }

static const struct isa_insn pt_begin[] = {         /* record 42 and probename */
    I(LDI, 1, 0, 0, 42), I(RECB, 0, 0, 0, 0), I(RECV, 0, 1, 0, 0),
    I(LDB, 2, 0, 0, ISA_B_PROBENAME), I(RECS, 0, 2, 0, 0), I(RECE, 0, 0, 0, 0), I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_static[] = {        /* @sum[arg0] = sum(arg1); @count[thread] */
    I(ARG, 1, 0, 0, 0), I(TPUSH, 0, 1, 0, 0), I(ARG, 2, 0, 0, 1), I(AGG, 0, 2, 0, 0),
    I(LDB, 3, 0, 0, ISA_B_THREAD), I(TPUSH, 0, 3, 0, 1), I(AGG, 0, 3, 0, 1), I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_load[] = {          /* trace(*(u64 *)arg2) */
    I(ARG, 1, 0, 0, 2), I(LD, 2, 1, 8, 0), I(RECB, 0, 0, 0, 2), I(RECV, 0, 2, 0, 0),
    I(RECE, 0, 0, 0, 0), I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_exit[] = {          /* arg0 == 99: exit(3) */
    I(ARG, 1, 0, 0, 0), I(LDI, 2, 0, 0, 99), I(EQ, 3, 1, 2, 0), I(JZ, 0, 3, 0, 2),
    I(LDI, 4, 0, 0, 3), I(EXIT, 0, 4, 0, 0), I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_tick[] = {          /* ticks++ (global 0) */
    I(LDG, 1, 0, 0, 0), I(LDI, 2, 0, 0, 1), I(ADD, 1, 1, 2, 0), I(STG, 0, 1, 0, 0),
    I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_end[] = {           /* record ticks */
    I(LDG, 1, 0, 0, 0), I(RECB, 0, 0, 0, 1), I(RECV, 0, 1, 0, 0), I(RECE, 0, 0, 0, 0),
    I(RET, 0, 0, 0, 0),
};
static const struct isa_insn pt_error[] = {         /* record arg4 (fault), arg5 (addr) */
    I(ARG, 1, 0, 0, 4), I(ARG, 2, 0, 0, 5), I(RECB, 0, 0, 0, 3), I(RECV, 0, 1, 0, 0),
    I(RECV, 0, 2, 0, 0), I(RECE, 0, 0, 0, 0), I(RET, 0, 0, 0, 0),
};
enum { PT_BEGIN, PT_STATIC, PT_LOAD, PT_EXIT, PT_TICK, PT_END, PT_ERROR, PT_NCLAUSES };
static const struct { const struct isa_insn *code; u32 n; } pt_clauses[PT_NCLAUSES] = {
    {pt_begin, ARRAY_SIZE(pt_begin)}, {pt_static, ARRAY_SIZE(pt_static)},
    {pt_load, ARRAY_SIZE(pt_load)}, {pt_exit, ARRAY_SIZE(pt_exit)},
    {pt_tick, ARRAY_SIZE(pt_tick)}, {pt_end, ARRAY_SIZE(pt_end)},
    {pt_error, ARRAY_SIZE(pt_error)},
};

/* The test program's container into buf (nclauses of pt_clauses); its length. */
static u32 probetest_build(u8 *buf, u32 nclauses)
{
    struct isa_prog_hdr h = { ISA_PROG_MAGIC, ISA_PROG_VERSION, 0, 0, nclauses, 1, 2, 4, 0,
                              64, 0 };
    struct isa_prog_var v = { ISA_SC_GLOBAL, ISA_VK_INT, 0, 0 };
    struct isa_prog_agg a[2] = { { ISA_AGG_SUM, 1, 0, 1, 0, 0, 0 },
                                 { ISA_AGG_COUNT, 1, 0, 1, 0, 0, 0 } };
    u8 *q = buf + sizeof h;
    for (u32 i = 0; i < nclauses; i++) {
        struct isa_prog_clause c = { h.ninsns, pt_clauses[i].n, 0, 0 };
        h.ninsns += pt_clauses[i].n;
        memcpy(q, &c, sizeof c);
        q += sizeof c;
    }
    memcpy(q, &v, sizeof v);
    q += sizeof v;
    memcpy(q, a, sizeof a);
    q += sizeof a;
    for (u32 i = 0; i < nclauses; i++) {
        memcpy(q, pt_clauses[i].code, pt_clauses[i].n * sizeof(struct isa_insn));
        q += pt_clauses[i].n * sizeof(struct isa_insn);
    }
    memcpy(buf, &h, sizeof h);
    return (u32)(q - buf);
}

/* Index of static probe provider:::name, or -1. */
static i32 probetest_find(const char *prov, const char *name)
{
    for (u32 i = 0; i < site_count(); i++) {
        const struct isa_probe_desc *d = site_desc(i);
        if (!strcmp((const char *)d->provider, prov) && !strcmp((const char *)d->name, name))
            return (i32)i;
    }
    return -1;
}

/* Drain session sid; the records' descriptors into descs (at most max),
 * the first u64 of each payload into vals; returns the count. */
static u32 probetest_drain(u32 sid, u16 *descs, u64 *vals, u32 max)
{
    static u8 buf[4096];
    u32 n = probe_drain(sid, buf, sizeof buf), k = 0;
    for (u32 off = 0; off < n && k < max; k++) {
        struct isa_rec_hdr h;
        memcpy(&h, buf + off, sizeof h);
        descs[k] = h.desc;
        vals[k] = 0;
        if (h.size >= sizeof h + 8)
            memcpy(&vals[k], buf + off + sizeof h, 8);
        off += h.size;
    }
    return k;
}

/* The value of aggregation agg under an 8-byte integer key, or ~0. */
static u64 probetest_agg(u32 sid, u16 agg, u64 key)
{
    static u8 buf[2048];
    u32 cursor = 0;
    u64 found = ~0ull;
    do {
        u32 n = probe_agg_read(sid, &cursor, buf, sizeof buf);
        for (u32 off = 0; off < n; ) {
            u16 a, klen;
            u32 nw;
            u64 k = 0, v;
            memcpy(&a, buf + off, 2);
            memcpy(&klen, buf + off + 2, 2);
            memcpy(&nw, buf + off + 4, 4);
            memcpy(&k, buf + off + 8, MIN(klen, 8));
            memcpy(&v, buf + off + 8 + ALIGN_UP(klen, 8), 8);
            if (a == agg && klen == 8 && k == key)
                found = v;
            off += 8 + (u32)ALIGN_UP(klen, 8) + nw * 8;
        }
    } while (cursor);
    return found;
}

/* Bytes of stack probe_fire(idx, ...) uses: paint below this frame, fire,
 * find the deepest word changed.  Interrupts stay off meanwhile. */
static __attribute__((noinline)) u32 probetest_stack(u32 idx, u64 a2)
{
    u64 f = irq_save();
    volatile u64 *top = (volatile u64 *)__builtin_frame_address(0) - 64;
    volatile u64 *low = top - PT_STACK_SPAN / 8;
    for (volatile u64 *p = low; p < top; p++)
        *p = PT_STACK_PAINT;
    probe_fire(idx, 5, 1, a2, 0, 0, 0);
    volatile u64 *p = low;
    while (p < top && *p == PT_STACK_PAINT)
        p++;
    irq_restore(f);
    return (u32)((u64)__builtin_frame_address(0) - (u64)p);
}

/* Open a session with small buffers; the session id. */
static u32 probetest_open(u32 prog_len)
{
    struct probe_opts o = { 16384, 16384, 16384, prog_len, 1000000000ull };
    u32 sid = ~0u;
    CHECK(probe_open(&o, &sid) == PROBE_OK);
    return sid;
}

/* Three more sessions alongside sid, each with its own BEGIN record. */
static void probetest_concurrent(u8 *prog, u32 len)
{
    u32 sids[3];
    u16 d[4];
    u64 v[4];
    for (u32 i = 0; i < 3; i++) {
        struct probe_verr e;
        sids[i] = probetest_open(len);
        CHECK(probe_load_chunk(sids[i], 0, prog, len) == PROBE_OK);
        CHECK(probe_load(sids[i], &e) == PROBE_OK);
        CHECK(probe_enable(sids[i], PT_BEGIN, ISA_SP_BEGIN, 0) == PROBE_OK);
        CHECK(probe_go(sids[i]) == PROBE_OK);
    }
    CHECK((probe_pending() & (1u << sids[0] | 1u << sids[1] | 1u << sids[2])) ==
          (1u << sids[0] | 1u << sids[1] | 1u << sids[2]));
    for (u32 i = 0; i < 3; i++) {
        CHECK(probetest_drain(sids[i], d, v, 4) == 1 && d[0] == 0 && v[0] == 42);
        probe_close(sids[i]);
    }
}

/* The verifier refuses a broken program and says why. */
static void probetest_refuse(u8 *prog, u32 len)
{
    struct probe_verr e;
    u32 sid = probetest_open(len);
    prog[sizeof(struct isa_prog_hdr) + PT_NCLAUSES * sizeof(struct isa_prog_clause) +
         sizeof(struct isa_prog_var) + 2 * sizeof(struct isa_prog_agg)] = 0xee;
    CHECK(probe_load(sid, &e) == PROBE_E_VERIFY && e.pc == -1);      /* nothing uploaded */
    CHECK(probe_load_chunk(sid, 0, prog, len) == PROBE_OK);
    CHECK(probe_load_chunk(sid, len, prog, 1) == PROBE_E_RANGE);
    CHECK(probe_load(sid, &e) == PROBE_E_VERIFY && e.pc == 0 &&
          !strcmp(e.msg, "unknown opcode 0xee"));
    CHECK(probe_enable(sid, 0, ISA_SP_BEGIN, 0) == PROBE_E_NOSESSION);
    probe_close(sid);
}

static u64 probetest_word = 0x1234abcd;  /* what the load clause reads */

/* Fire the static probe with address a2 for the load clause; expect a
 * BADADDR fault: REC_ERROR, then the ERROR clause's record. */
static void probetest_badaddr(u32 sid, u32 idx, u64 a2)
{
    u16 d[4];
    u64 v[4];
    probe_fire(idx, 9, 1, a2, 0, 0, 0);
    CHECK(probetest_drain(sid, d, v, 4) == 2);
    CHECK(d[0] == ISA_REC_ERROR && v[0] == PT_LOAD);
    CHECK(d[1] == 3 && v[1] == ISA_F_BADADDR);
}

/* The engine's state stays out of reach, reentry is counted, the stack
 * figure is printed. */
static void probetest_guards(u32 sid, u32 idx)
{
    struct probe_stats st;
    u16 d[8];
    u64 v[8];
    probetest_badaddr(sid, idx, 0);
    probetest_badaddr(sid, idx, 0xfeb00000);
    probetest_badaddr(sid, idx, (u64)probe_st.sess[sid].agg_mem.base + 64);
    probetest_badaddr(sid, idx, (u64)&probe_st.busy);
    u32 ok = probetest_stack(idx, (u64)&probetest_word);
    u32 bad = probetest_stack(idx, 0);
    kprintf("probe: probe_fire stack use %u bytes (clause ok), %u bytes (fault + ERROR)\n",
            ok, bad);
    CHECK(ok > 0 && bad >= ok && bad < 4096);
    CHECK(probetest_drain(sid, d, v, 8) == 3);
    probe_st.busy = true;
    probe_fire(idx, 9, 1, 0, 0, 0, 0);
    probe_st.busy = false;
    CHECK(probe_stats(sid, &st) == PROBE_OK && st.reentrant == 3);  /* 3 clauses skipped */
}

/* Records and aggregations of the static probe's clauses. */
static void probetest_fire(u32 sid, u32 idx)
{
    u16 d[8];
    u64 v[8];
    for (u32 i = 0; i < 3; i++)
        probe_fire(idx, 7, 10, (u64)&probetest_word, 0, 0, 0);
    probe_fire(idx, 8, 5, (u64)&probetest_word, 0, 0, 0);
    CHECK(probetest_drain(sid, d, v, 8) == 4);
    CHECK(d[0] == 2 && v[0] == 0x1234abcd && d[3] == 2 && v[3] == 0x1234abcd);
    CHECK(probetest_agg(sid, 0, 7) == 30 && probetest_agg(sid, 0, 8) == 5);
    CHECK(probe_agg_clear(sid, 0) == PROBE_OK && probetest_agg(sid, 0, 7) == 0);
    CHECK(probe_agg_clear(sid, 2) == PROBE_E_RANGE);
}

/* exit(): REC_EXIT, probe_exiting, no more clauses; END still runs at stop. */
static void probetest_exit(u32 sid, u32 idx)
{
    struct probe_stats st0, st1;
    u16 d[8];
    u64 v[8];
    probe_fire(idx, 99, 0, (u64)&probetest_word, 0, 0, 0);
    CHECK(probetest_drain(sid, d, v, 8) == 2 && d[0] == 2 && d[1] == ISA_REC_EXIT && v[1] == 3);
    CHECK(probe_exiting(sid) == 1);
    probe_stats(sid, &st0);
    probe_fire(idx, 1, 0, (u64)&probetest_word, 0, 0, 0);
    probe_stats(sid, &st1);
    CHECK(st1.fired == st0.fired);
    CHECK(probe_stop(sid) == PROBE_OK && site_enabled(idx) == 0);
    CHECK(probetest_drain(sid, d, v, 8) == 1 && d[0] == 1 && v[0] >= 10);
    kprintf("probe: tick-1ms fired %lu times in 30 ms\n", v[0]);
    CHECK(probe_stats(sid, &st1) == PROBE_OK && st1.drops_buf == 0 &&
          st1.records == st1.drained && st1.errors == 5 && st1.drops_agg == 0);
}

/* Load the test program into a new session in two chunks and enable it. */
static u32 probetest_setup(u8 *prog, u32 len, u32 idx)
{
    struct probe_verr e;
    u32 sid = probetest_open(len);
    CHECK(probe_load_chunk(sid, 100, prog + 100, len - 100) == PROBE_OK);
    CHECK(probe_load_chunk(sid, 0, prog, 100) == PROBE_OK);
    CHECK(probe_load(sid, &e) == PROBE_OK);
    static const u32 en[][2] = {
        {PT_BEGIN, ISA_SP_BEGIN}, {PT_STATIC, 0}, {PT_LOAD, 0}, {PT_EXIT, 0},
        {PT_END, ISA_SP_END}, {PT_ERROR, ISA_SP_ERROR},
    };
    for (u32 i = 0; i < ARRAY_SIZE(en); i++)
        CHECK(probe_enable(sid, en[i][0], en[i][1] ? en[i][1] : ISA_FIRST_STATIC_PROBE + idx,
                           0) == PROBE_OK);
    CHECK(probe_enable(sid, PT_TICK, ISA_SP_TICK, 1000000) == PROBE_OK);
    CHECK(probe_enable(sid, 0, 9, 0) == PROBE_E_NOPROBE);
    CHECK(probe_enable(sid, 99, ISA_SP_BEGIN, 0) == PROBE_E_RANGE);
    CHECK(probe_enable(sid, 0, ISA_FIRST_STATIC_PROBE + site_count(), 0) == PROBE_E_NOPROBE);
    return sid;
}

/* The whole engine test (see the top of the file). */
void probetest_run(void)
{
    static u8 prog[2048];
    struct mm_stats m0, m1;
    struct mm_class_stats cls[HEAP_NCLASSES + 1];
    u16 d[4];
    u64 v[4];
    i32 idx = probetest_find("panic", "enter");
    CHECK(idx >= 0);
    if (idx < 0)
        return;
    mm_stats(&m0, cls, HEAP_NCLASSES + 1);
    u32 len = probetest_build(prog, PT_NCLAUSES);
    u32 sid = probetest_setup(prog, len, (u32)idx);
    CHECK(site_enabled((u32)idx) == 0);
    CHECK(probe_go(sid) == PROBE_OK && site_enabled((u32)idx) > 0);
    CHECK(probe_go(sid) == PROBE_E_NOSESSION);
    CHECK(probetest_drain(sid, d, v, 4) == 1 && d[0] == 0 && v[0] == 42);
    probetest_fire(sid, (u32)idx);
    probetest_guards(sid, (u32)idx);
    thread_sleep_ms(30, "probetest");
    probetest_exit(sid, (u32)idx);
    probetest_concurrent(prog, len);
    probe_close(sid);
    CHECK(probe_exiting(sid) == -1);
    probetest_refuse(prog, len);
    mm_stats(&m1, cls, HEAP_NCLASSES + 1);
    CHECK(m1.pages_free == m0.pages_free && m1.heap_bytes_used == m0.heap_bytes_used);
}
