/* The probe engine's firing path: a static probe fires (probe_fire, from
 * a site's out-of-line block), a tick comes (probe_tick, from the timer
 * interrupt), or a session starts or stops (BEGIN/END, from session.c);
 * each enabled clause runs in the VM with interrupts off, and what it
 * recorded is committed to its session's ring (or dropped and counted)
 * when it returns.  A fault commits a REC_ERROR record and fires the
 * session's ERROR clauses.  Never allocates, never blocks, takes no lock;
 * a firing while the engine already runs is skipped and counted.  The
 * engine has no probe sites and calls nothing that has one.  VM state is
 * static (probe_st.ctx), so probe_fire's stack use stays small. */
#include "engine.h"
#include "arch.h"
#include "fbt.h"
#include "kernel.h"
#include "stack.h"
#include "lib.h"
#include "mm.h"
#include "thread.h"
#include "x86.h"

struct probe_state probe_st;

/* Names of the synthetic probes, by id (provider, name). */
static const char *const probe_synth[][2] = {
    [ISA_SP_BEGIN] = {"dtrace", "BEGIN"}, [ISA_SP_END] = {"dtrace", "END"},
    [ISA_SP_ERROR] = {"dtrace", "ERROR"}, [ISA_SP_TICK] = {"profile", "tick"},
    [ISA_SP_PROFILE] = {"profile", "profile"},
};

/* Empty lists, the VM's fixed work areas.  Idempotent; called by the
 * first session call. */
void probe_state_init(void)
{
    if (probe_st.ready)
        return;
    probe_st.ctx.scratch = probe_st.scratch;
    probe_st.ctx.scratch_size = sizeof probe_st.scratch;
    probe_st.ctx.stage = probe_st.stage;
    probe_st.ctx.stage_size = sizeof probe_st.stage;
    probe_st.ready = true;
}

/* Is [addr, addr+len) engine state: the static state or a session's
 * memory?  (A script must not read or corrupt probe state.) */
bool probe_denied(u64 addr, u64 len)
{
    u64 lo = (u64)&probe_st, hi = lo + sizeof probe_st;
    if (addr < hi && addr + len > lo)
        return true;
    for (u32 i = 0; i < PROBE_SESSIONS_MAX; i++) {
        const struct probe_session *s = &probe_st.sess[i];
        const struct probe_mem *m[] = {&s->prog_mem, &s->ring_mem, &s->agg_mem,
                                       &s->dyn_mem, &s->var_mem};
        if (s->state == PS_FREE)
            continue;
        for (u32 k = 0; k < ARRAY_SIZE(m); k++) {
            u64 b = (u64)m[k]->base, e = b + (u64)m[k]->pages * PAGE_SIZE;
            if (m[k]->base && addr < e && addr + len > b)
                return true;
        }
    }
    return false;
}

/* The safe load (vm_ctx.load): mapped RAM only, never engine state. */
static bool probe_load_cb(void *env, u64 addr, u32 size, u64 *out)
{
    (void)env;
    if (!mm_readable(addr, size) || probe_denied(addr, size))
        return false;
    switch (size) {
    case 1: *out = *(volatile const u8 *)addr; break;
    case 2: *out = *(volatile const u16 *)addr; break;
    case 4: *out = *(volatile const u32 *)addr; break;
    default: *out = *(volatile const u64 *)addr; break;
    }
    return true;
}

/* Probe description strings of the firing probe (kernel addresses). */
static u64 probe_name_of(u32 probe, u32 id)
{
    if (probe >= ISA_FIRST_FBT_PROBE)
        return fbt_name(probe, id);
    if (probe >= ISA_FIRST_STATIC_PROBE) {
        const struct isa_probe_desc *d = site_desc(probe - ISA_FIRST_STATIC_PROBE);
        if (!d)
            return 0;
        return id == ISA_B_PROBEPROV ? d->provider : id == ISA_B_PROBEMOD ? d->module :
               id == ISA_B_PROBEFUNC ? d->function : d->name;
    }
    if (probe > ISA_SP_PROFILE)
        return 0;
    const char *s = id == ISA_B_PROBEPROV ? probe_synth[probe][0] :
                    id == ISA_B_PROBENAME ? probe_synth[probe][1] : "";
    return (u64)s;
}

/* Builtin variables but thread (probe_builtin_cb); s is the running session. */
static __attribute__((noinline)) u64 probe_builtin(struct probe_session *s, u32 id)
{
    struct thread *t = thread_current();
    switch (id) {
    case ISA_B_TIMESTAMP: return time_ns();
    case ISA_B_VTIMESTAMP: return thread_cpu_ns(t);
    case ISA_B_WALLTIMESTAMP: return s->opts.wall_ns + (time_ns() - s->open_ns);
    case ISA_B_TID: return thread_id(t);
    case ISA_B_CURTHREAD: return (u64)t;
    case ISA_B_PROBEPROV: case ISA_B_PROBEMOD: case ISA_B_PROBEFUNC: case ISA_B_PROBENAME:
        return probe_name_of(probe_st.ctx.probe, id);
    }
    return 0;
}

/* Builtin variables (vm_ctx.builtin); env is the running session.  The
 * thread name, the common aggregation key, is a leaf with no frame. */
static u64 probe_builtin_cb(void *env, u32 id)
{
    if (id == ISA_B_THREAD)
        return (u64)thread_name(thread_current());
    return probe_builtin(env, id);
}

/* Is builtin b a function of the firing probe alone (its name parts)? */
static inline bool probe_key_const(u32 b)
{
    return b == ISA_B_PROBEPROV || b == ISA_B_PROBEMOD || b == ISA_B_PROBEFUNC ||
           b == ISA_B_PROBENAME;
}

/* Session s's key cache entry for (probe, key1, builtin).  fbt's ids
 * are 2i / 2i+1 per function: entry and return of one function, and
 * neighbouring functions, take different entries. */
static inline struct probe_keyhit *probe_keyhit_of(struct probe_session *s, u32 probe, u32 key1)
{
    return &s->keyhit[(probe ^ (probe >> 7) ^ (key1 << 3)) & (PROBE_KEYCACHE - 1)];
}

/* Build the one-value tuple of builtin value v as TPUSH would (a string:
 * u16 length, the bytes, zeros to a word) in t; its length, or 0 when it
 * does not fit (the VM then runs the clause and says so). */
static inline __attribute__((always_inline)) u32
probe_key_tuple(u8 *t, u64 v, bool str, u32 strsize)
{
    if (!str) {
        __builtin_memcpy(t, &v, 8);
        return 8;
    }
    const char *p = v ? (const char *)(uintptr_t)v : "";
    u32 n = (u32)strnlen(p, strsize - 1);
    u64 zero = 0;
    u32 len = (u32)ALIGN_UP(2 + n, 8);
    if (len > PROBE_TUPLE_BYTES)
        return 0;
    u16 l16 = (u16)n;
    __builtin_memcpy(t + len - 8, &zero, 8);
    __builtin_memcpy(t, &l16, 2);
    vm_copy(t + 2, (const u8 *)p, n);
    return len;
}

/* The aggregation cache's entry for the one-value tuple t[0..len) of
 * enabling e's key1 clause if it holds that key and is a one-key count(),
 * else NULL. */
static inline __attribute__((always_inline)) u64 *
probe_count_entry(const struct probe_enabling *e, struct probe_session *s,
                  const u8 *t, u32 len)
{
    const struct agg_last *l = &s->agg.last[e->key1 - 1][agg_slot(t, len)];
    if (!l->w || !l->count || l->nkeys != 1 || l->keylen != len ||
        !agg_key_same(l->key, t, len))
        return NULL;
    return l->w;
}

/* Enabling e's clause is `LDB r, b; TPUSH r, k; AGG a, r; RET` with a a
 * one-key count() (vm_clause.key1).  A key that depends on the probe only
 * (probefunc, ...) is first looked up by probe id in the session's key
 * cache; otherwise read b, build the tuple, and if the aggregation's cache
 * holds that key, bump it as the VM's AGG would.  Nothing here can fault
 * or record; a miss (a new key, a key out of the cache, a string too
 * long) returns false and the VM runs the clause from the start.  Called
 * by probe_clause_run, interrupts off. */
bool probe_count_key(const struct probe_enabling *e, struct probe_session *s)
{
    const struct vm_clause *cl = &s->prog.cl[e->clause];
    u32 probe = probe_st.ctx.probe;
    if (probe_key_const(cl->key1_builtin)) {
        const struct probe_keyhit *h = probe_keyhit_of(s, probe, e->key1);
        if (h->w && h->probe == probe && h->key1 == e->key1 && h->builtin == cl->key1_builtin) {
            h->w[0]++;
            return true;
        }
    }
    u8 *t = probe_st.ctx.tuple;
    u32 len = probe_key_tuple(t, probe_builtin_cb(s, cl->key1_builtin), cl->key1_str,
                              s->prog.strsize);
    u64 *w = len ? probe_count_entry(e, s, t, len) : NULL;
    if (!w)
        return false;
    w[0]++;
    return true;
}

/* After the VM ran enabling e's key1 clause (probe_count_key missed):
 * when its key is the probe's alone, the entry the VM's AGG just updated
 * is the aggregation cache's, so remember it by probe id, and the next
 * firing of this probe skips the VM and the key.  Called by
 * probe_clause_run, interrupts off. */
void probe_count_learn(const struct probe_enabling *e, struct probe_session *s)
{
    const struct vm_clause *cl = &s->prog.cl[e->clause];
    if (!probe_key_const(cl->key1_builtin))
        return;
    u32 probe = probe_st.ctx.probe;
    u8 *t = probe_st.ctx.tuple;
    u32 len = probe_key_tuple(t, probe_builtin_cb(s, cl->key1_builtin), cl->key1_str,
                              s->prog.strsize);
    u64 *w = len ? probe_count_entry(e, s, t, len) : NULL;
    if (w)
        *probe_keyhit_of(s, probe, e->key1) = (struct probe_keyhit){
            .probe = probe, .key1 = e->key1, .builtin = cl->key1_builtin, .w = w };
}

/* stack() (vm_ctx.stack): the walk from the firing's origin. */
static u32 probe_stack_cb(void *env, u64 *pcs, u32 max)
{
    (void)env;
    return stack_walk(probe_st.stack_fp, pcs, max);
}

/* Append one record to session s's ring, or drop and count it. */
static void probe_commit(struct probe_session *s, const u8 *rec, u32 size)
{
    if (size > s->ring_size - (u32)(s->ring_head - s->ring_tail)) {
        s->st.drops_buf++;
        return;
    }
    u32 at = (u32)(s->ring_head % s->ring_size), first = MIN(size, s->ring_size - at);
    u8 *ring = s->ring_mem.base;
    memcpy(ring + at, rec, first);
    memcpy(ring, rec + first, size - first);
    barrier();
    s->ring_head += size;
    s->st.records++;
}

/* Commit the staged records of a clause that returned (probe_clause). */
void probe_commit_stage(struct probe_session *s, const struct vm_ctx *c)
{
    for (u32 off = 0; off < c->stage_len; ) {
        u16 size;
        __builtin_memcpy(&size, c->stage + off, 2);
        probe_commit(s, c->stage + off, size);
        off += size;
    }
}

/* A clause faulted: commit REC_ERROR (clause, pc, fault, address) and
 * fire the session's ERROR clauses (not for a fault inside ERROR); the
 * firing's arguments and probe id are put back for the clauses after.
 * Out of line: the hot path only calls it. */
void probe_error(struct probe_session *s, u32 sid, u32 probe, u32 clause, u32 epid)
{
    struct vm_ctx *c = &probe_st.ctx;
    const u64 *fargs = c->args;
    u32 fnargs = c->nargs;
    struct {
        struct isa_rec_hdr h;
        u64 v[4];
    } r = { { sizeof r, ISA_REC_ERROR, probe, vm_timestamp(c) },
            { clause, c->fault_pc, c->fault, c->fault_addr } };
    u64 args[6] = {0, epid, clause, c->fault_pc, c->fault, c->fault_addr};
    s->st.errors++;
    probe_commit(s, (const u8 *)&r, sizeof r);
    if (probe != ISA_SP_ERROR)
        probe_run(ISA_SP_ERROR, (i32)sid, args, 6);
    c->args = fargs;
    c->nargs = fnargs;
    c->probe = probe;
}

/* Point the VM at session s (its program, variables, aggregations, dynamic
 * variables and callbacks).  The context stays bound to s across firings;
 * probe_go unbinds it (ctx.env = NULL) before a session starts, since
 * only then may its memory have changed. */
void probe_bind(struct vm_ctx *c, struct probe_session *s)
{
    c->prog = &s->prog;
    c->globals = s->var_mem.base;
    c->locals = s->var_mem.base ? s->var_mem.base + s->prog.globals_bytes : NULL;
    c->agg = &s->agg;
    c->dyn = &s->dyn;
    c->env = s;
    c->load = probe_load_cb;
    c->builtin = probe_builtin_cb;
    c->stack = probe_stack_cb;
}

/* Run the linked enablings of probe (session sid's only when sid >= 0):
 * BEGIN, END and ERROR.  The caller holds interrupts off and has set busy. */
void probe_run(u32 probe, i32 sid, const u64 *args, u32 nargs)
{
    if (probe >= PROBE_IDS_MAX)
        return;
    for (struct probe_enabling *e = probe_st.first[probe]; e; e = e->next) {
        struct probe_session *s = e->sess;
        if ((sid >= 0 && e->sid != sid) || s->state != PS_RUNNING ||
            (s->exiting && probe != ISA_SP_END))
            continue;
        probe_firing(probe, args, nargs);
        probe_clause(e, s);
    }
}

/* Count a skipped re-entrant firing against every session it would run
 * (probe_fire_static, interrupts off). */
void probe_reentrant(u32 probe)
{
    for (struct probe_enabling *e = probe_st.first[probe]; e; e = e->next)
        e->sess->st.reentrant++;
}

bool probe_enter(u64 *flags)
{
    *flags = irq_save();
    if (probe_st.busy) {
        irq_restore(*flags);
        return false;
    }
    probe_st.busy = true;
    probe_st.stack_fp = 0;
    return true;
}

void probe_leave(u64 flags)
{
    probe_st.busy = false;
    irq_restore(flags);
}

/* A static probe fired with its six arguments in memory (see probe.h);
 * stack() starts at its caller. */
void probe_fire_args(u32 index, const u64 *args)
{
    if (index < PROBE_IDS_MAX - ISA_FIRST_STATIC_PROBE)
        probe_fire_static(ISA_FIRST_STATIC_PROBE + index, args, 6);
}

/* A static probe fired (see probe.h); stack() starts at its caller. */
void probe_fire(u32 index, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
    const u64 args[6] = {a0, a1, a2, a3, a4, a5};
    if (index < PROBE_IDS_MAX - ISA_FIRST_STATIC_PROBE)
        probe_fire_static(ISA_FIRST_STATIC_PROBE + index, args, 6);
}

/* Fire the enablings of timer probe (TICK or PROFILE) due at now_ns,
 * with stack() at the interrupted frame.  period: the interrupt's own
 * period (profile: the timer runs at the fastest enabling's), whose
 * enablings fire at every interrupt, so their rate is the timer's and
 * not skewed by the TSC's calibration; 0 for the tick.  Interrupt
 * context. */
static void probe_timer(u32 probe, u64 now_ns, u64 period, const u64 *args, u32 nargs,
                        u64 fp)
{
    u64 flags;
    if (!probe_st.first[probe] || !probe_enter(&flags))
        return;
    probe_st.stack_fp = fp;
    for (struct probe_enabling *e = probe_st.first[probe]; e; e = e->next) {
        struct probe_session *s = e->sess;
        if ((e->arg > period && now_ns < e->due) || !s->live)
            continue;
        e->due += e->arg;
        if (e->due <= now_ns)           /* fell behind (long irq-off): skip ahead */
            e->due = now_ns + e->arg;
        probe_firing(probe, args, nargs);
        probe_clause(e, s);
    }
    probe_leave(flags);
}

/* The timer tick (interrupt context): the deadman's checks, then fire
 * tick-N enablings now due. */
void probe_tick(u64 now_ns)
{
    probe_deadman_tick(now_ns);
    probe_timer(ISA_SP_TICK, now_ns, 0, NULL, 0, 0);
}

/* The timer tick with the interrupted frame (stack() at the interrupt). */
void probe_tick_frame(u64 now_ns, const struct trap_frame *f)
{
    probe_deadman_tick(now_ns);
    probe_timer(ISA_SP_TICK, now_ns, 0, NULL, 0, PROBE_TRAP_FP(f));
}

/* The sampling timer (profile.c's interrupt, every period_ns): fire
 * the profile-N enablings now due, arg0 the interrupted pc. */
void probe_profile(u64 now_ns, u64 period_ns, const struct trap_frame *f)
{
    const u64 args[2] = {f->rip, 0};
    probe_timer(ISA_SP_PROFILE, now_ns, period_ns, args, 2, PROBE_TRAP_FP(f));
}
