/* The probe engine's state, shared by engine.c (firing clauses, the safe
 * load, ticks, record commit) and session.c (the probe.h session calls).
 * All of it lives in one static struct so that the safe-load deny-list
 * can refuse it with one range.  Single CPU: everything the probe path
 * touches is changed with interrupts off. */
#ifndef UNIK_PROBE_ENGINE_H
#define UNIK_PROBE_ENGINE_H
#include "vm.h"

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

struct probe_session {
    enum probe_sstate state;
    bool exiting;               /* exit() ran: no more clauses but END */
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
};

/* One (probe, clause) pair of a session.  While the session runs it is
 * linked on its probe's list (probe_state.first), with its session and
 * epid at hand so that a firing follows pointers and computes nothing. */
struct probe_enabling {
    bool used;
    bool linked;
    u8 sid;
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
    bool ready;                 /* probe_state_init ran */
    struct vm_ctx ctx;          /* ctx.probe: the firing probe's id (probe names) */
    char scratch[PROBE_SCRATCH_BYTES];
    u8 stage[PROBE_STAGE_BYTES];
};

extern struct probe_state probe_st;

/* engine.c */
void probe_state_init(void);
/* Run every linked enabling of probe id (only session sid's when sid >= 0)
 * with args; the caller holds interrupts off and has set busy. */
void probe_run(u32 probe, i32 sid, const u64 *args, u32 nargs);
/* Enter / leave the engine from thread context (session.c firing BEGIN
 * and END): interrupts off, busy set; false (nothing entered) if busy. */
bool probe_enter(u64 *flags);
void probe_leave(u64 flags);
/* Is [addr, addr+len) engine state (the deny-list's own part)? */
bool probe_denied(u64 addr, u64 len);
#endif
