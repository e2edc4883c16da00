/* The probe engine's state, shared by engine.c (firing clauses, the safe
 * load, ticks, record commit) and session.c (the probe.h session calls).
 * All of it lives in one static struct so that the safe-load deny-list
 * can refuse it with one range.  Single CPU: everything the probe path
 * touches is changed with interrupts off. */
#ifndef UNIK_PROBE_ENGINE_H
#define UNIK_PROBE_ENGINE_H
#include "stack.h"
#include "vm.h"
#include "x86.h"

enum probe_sstate {
    PS_FREE = 0,                /* slot unused */
    PS_OPEN,                    /* opened, program being uploaded */
    PS_LOADED,                  /* verified; enablings may be added */
    PS_RUNNING,                 /* enablings linked, sites patched */
    PS_STOPPED,                 /* stopped; results readable until close */
};

#define PROBE_NMEM 5            /* allocations of a session (deny-listed) */

/* One memory allocation of a session: pages from page_alloc_n. */
struct probe_mem {
    u8 *base;
    u32 pages;
};

/* A session's deadman (deadman.c): its limits, the CPU window being
 * measured, and why it was aborted. */
struct probe_dm {
    u32 timeout_ms;             /* drain: abort after this long without a host request; 0 off */
    u32 cpu_pct;                /* CPU budget in % of the window; 0 or >= 100 off */
    u64 window_ns;              /* CPU window */
    u64 alive_ns;               /* time_ns of the last host request naming the session */
    u64 win_start_ns;           /* the CPU window began (time_ns) */
    u64 win_cycles;             /* the session's cycles when it began */
    bool aborted;               /* the deadman cleared live; probe_abort_finish pending or done */
    struct probe_abort why;
};

/* One entry of a session's cache of probe-constant aggregation keys
 * (probe_count_key): probe id, aggregation + 1 and builtin say whose count
 * w[0] is.  Aggregation entries are never freed while the session lives, so w
 * stays valid; the session's loading clears the cache. */
struct probe_keyhit {
    u32 probe;
    u8 key1;
    u16 builtin;
    u64 *w;                     /* NULL: empty */
};

struct probe_session {
    enum probe_sstate state;
    bool exiting;               /* exit() ran: no more clauses but END */
    bool live;                  /* RUNNING and not exiting: static probes and
                                 * ticks run its clauses (the one test the
                                 * firing path makes) */
    struct probe_opts opts;
    u64 open_ns;                /* time_ns at open (walltimestamp base) */
    struct probe_mem prog_mem, ring_mem, agg_mem, dyn_mem, var_mem;
    u32 prog_have;              /* bytes of program uploaded (high-water mark) */
    u32 ring_size;              /* bytes of record ring (multiple of 8) */
    u64 ring_head, ring_tail;   /* bytes ever written / drained */
    u32 nenablings;
    struct vm_prog prog;
    struct agg_table agg;
    struct dyn_table dyn;
    struct probe_stats st;
    u64 cycles;                 /* TSC cycles spent in its clauses (probe_clause; deadman) */
    struct probe_dm dm;
    /* `@[probefunc] = count()` and its kin: a key that is a function of
     * the probe alone, its entry found by probe id (probe_count_key) */
    struct probe_keyhit keyhit[PROBE_KEYCACHE];
};

/* One (probe, clause) pair of a session.  While the session runs it is
 * linked on its probe's list (probe_state.first), with its session and
 * epid at hand so that a firing follows pointers and computes nothing. */
struct probe_enabling {
    bool used;
    bool linked;
    u8 sid;
    u8 count1;                  /* its clause's vm_clause.count1 (probe_count1) */
    u8 key1;                    /* its clause's vm_clause.key1 (probe_count_key) */
    u16 index;                  /* within its session: the low half of the epid */
    u16 clause;
    u32 epid;                   /* clause << 16 | index */
    struct probe_enabling *next;    /* next on the probe's list, NULL = end */
    struct probe_session *sess;     /* &probe_st.sess[sid] */
    u32 probe;
    u64 arg;                    /* TICK: period in ns */
    u64 due;                    /* TICK: next firing time */
};

struct probe_state {
    struct probe_session sess[PROBE_SESSIONS_MAX];
    struct probe_enabling en[PROBE_ENABLINGS_MAX];
    /* first enabling linked on each probe id, NULL = none (so an engine
     * that never ran has every list empty) */
    struct probe_enabling *first[PROBE_IDS_MAX];
    u16 refs[PROBE_IDS_MAX];    /* linked enablings per probe id (sites on while > 0) */
    bool busy;                  /* inside the engine: re-entrant firings are skipped */
    u64 stack_fp;               /* the firing's stack() origin: a {saved rbp, pc}
                                 * frame record whose pc is frame 0, with
                                 * stack.h's STACK_ORIGIN_* bits; 0: no stack
                                 * (BEGIN, END) */
    bool ready;                 /* probe_state_init ran */
    u32 dm_pending;             /* sessions the deadman aborted, not yet finished (bit sid) */
    struct vm_ctx ctx;          /* ctx.probe: the firing probe's id (probe names) */
    char scratch[PROBE_SCRATCH_BYTES];
    u8 stage[PROBE_STAGE_BYTES];
};

extern struct probe_state probe_st;

/* engine.c */
void probe_state_init(void);
/* The cold parts of running a clause (probe_clause): point the VM at
 * session s; commit the records a clause staged; a clause faulted. */
void probe_bind(struct vm_ctx *c, struct probe_session *s);
void probe_commit_stage(struct probe_session *s, const struct vm_ctx *c);
void probe_error(struct probe_session *s, u32 sid, u32 probe, u32 clause, u32 epid);
/* Count a firing skipped by the re-entrancy guard (interrupts as they are). */
void probe_reentrant(u32 probe);
/* Run every linked enabling of probe id (only session sid's when sid >= 0)
 * with args; the caller holds interrupts off and has set busy. */
void probe_run(u32 probe, i32 sid, const u64 *args, u32 nargs);
/* Enter / leave the engine from thread context (session.c firing BEGIN
 * and END): interrupts off, busy set; false (nothing entered) if busy. */
bool probe_enter(u64 *flags);
void probe_leave(u64 flags);
/* Enabling e's clause is `@[builtin] = count()` (vm_clause.key1): bump
 * the key's count if the aggregation's cache has it; false: run the VM. */
bool probe_count_key(const struct probe_enabling *e, struct probe_session *s);
/* After the VM ran it: remember a probe-constant key's entry by probe id. */
void probe_count_learn(const struct probe_enabling *e, struct probe_session *s);
/* Is [addr, addr+len) engine state (the deny-list's own part)? */
bool probe_denied(u64 addr, u64 len);
/* profile.c: (re)program the sampling timer for the linked profile-N
 * enablings (the fastest one's rate), or stop it when none is left.
 * Called by session.c after linking or unlinking (thread context). */
void profile_update(void);

/* The stack() origin of a firing from a trap frame: traps.S pushes the
 * interrupted rip and rbp just below the frame, as a frame record
 * (stack.h's origin encoding). */
#define PROBE_TRAP_FP(f) ((u64)(f) - 16 + STACK_ORIGIN_TRAP)

/* deadman.c: a new session's limits (probe_open); a session starts
 * running now (probe_go: the window and the heartbeat start). */
void probe_deadman_init(struct probe_session *s);
void probe_deadman_start(struct probe_session *s, u64 now_ns);

/* ------------------------------------------------------------ hot path
 * Inline here so that the firing of a static probe is one function from
 * the site (site_fire, site.c) to the interpreter (vm_run). */

/* Point the VM context at a firing of probe with args[0..nargs). */
static inline void probe_firing(u32 probe, const u64 *args, u32 nargs)
{
    probe_st.ctx.args = args;
    probe_st.ctx.nargs = nargs;
    probe_st.ctx.probe = probe;
}

/* Enabling e's clause is exactly one keyless count() (the verifier's
 * vm_clause.count1, copied into e->count1) and its entry exists: bump it
 * here, as the VM's AGG would (no fault, no record, no key is possible),
 * and say so; false sends the clause to the VM (the first firing creates
 * the entry, or drops and counts it). */
static inline __attribute__((always_inline)) bool
probe_count1(const struct probe_enabling *e, struct probe_session *s)
{
    u32 a = e->count1;
    if (!a)
        return false;
    u64 *w = s->agg.last[a - 1][0].w;   /* agg_slot of the empty key */
    if (__builtin_expect(!w, 0))
        return false;
    w[0]++;
    return true;
}

/* Run enabling e's clause for its session s (probe_clause does the
 * accounting around it).  The timestamp is read only if a record or a
 * fault needs it (vm_timestamp).  EXIT stages its record, so a clause
 * that ran exit() has staged something. */
static inline __attribute__((always_inline)) void
probe_clause_run(struct probe_enabling *e, struct probe_session *s)
{
    struct vm_ctx *c = &probe_st.ctx;
    if (probe_count1(e, s))
        return;
    if (e->key1 && probe_count_key(e, s))
        return;
    if (__builtin_expect(c->env != s, 0))
        probe_bind(c, s);
    c->epid = e->epid;
    c->timestamp = 0;
    if (__builtin_expect(vm_run(c, e->clause) != ISA_F_NONE, 0)) {
        probe_error(s, e->sid, c->probe, e->clause, e->epid);
        return;
    }
    if (e->key1)
        probe_count_learn(e, s);
    if (__builtin_expect(c->stage_len != 0, 0)) {
        probe_commit_stage(s, c);
        if (c->exited) {
            s->exiting = true;
            s->live = false;
        }
    }
}

/* The TSC's low half: what probe_clause times a clause with (a clause
 * runs with interrupts off for far less than 2^32 cycles, so the
 * difference of two low halves is exact; and several instructions cheaper than
 * assembling whole TSC values on the hot path). */
static inline __attribute__((always_inline)) u32 probe_tsc32(void)
{
    u32 lo;
    __asm__ volatile("rdtsc" : "=a"(lo) : : "edx");
    return lo;
}

/* Run enabling e's clause for its session s; the caller has set the
 * firing's part of the VM context (probe_firing).  The TSC read on each
 * side charges the time to the session, for the deadman's CPU budget. */
static inline __attribute__((always_inline)) void
probe_clause(struct probe_enabling *e, struct probe_session *s)
{
    u32 t0 = probe_tsc32();
    s->st.fired++;
    probe_clause_run(e, s);
    s->cycles += (u32)(probe_tsc32() - t0);
}

/* Static probe `probe` (an id below PROBE_IDS_MAX) fired with its
 * arguments args[0..nargs): run the clauses of every live session that
 * enabled it, with interrupts off, unless the engine is already running
 * (then the firing is skipped and counted).  A probe no session enabled
 * has an empty list (NULL), even before the engine's first use. */
static inline __attribute__((always_inline)) void
probe_fire_static_at(u32 probe, const u64 *args, u32 nargs, u64 fp)
{
    struct probe_enabling *e = probe_st.first[probe];
    if (!e)
        return;
    u64 flags = irq_save();
    if (__builtin_expect(probe_st.busy, 0)) {
        probe_reentrant(probe);
        irq_restore(flags);
        return;
    }
    probe_st.busy = true;
    probe_st.stack_fp = fp;
    probe_firing(probe, args, nargs);
    do {
        struct probe_session *s = e->sess;
        if (__builtin_expect(s->live, 1))
            probe_clause(e, s);
    } while ((e = e->next));
    probe_st.busy = false;
    irq_restore(flags);
}

/* probe_fire_static_at with stack() starting at the caller's frame (the
 * function this is inlined into: its return address is frame 0).  Firing
 * paths with frames of their own to hide (site_fire, fbt) pass the
 * probed code's frame record to probe_fire_static_at instead. */
#define probe_fire_static(probe, args, nargs) \
    probe_fire_static_at((probe), (args), (nargs), (u64)__builtin_frame_address(0))
#endif
