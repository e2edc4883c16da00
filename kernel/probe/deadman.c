/* The deadman: a trace session must not take the kernel over.  DTrace's
 * deadman is the model: a session is aborted when
 *
 *  - CPU: its clauses ran for more than cpu_pct % of a window (time
 *    charged by probe_clause, a TSC read on each side of every clause),
 *    checked when each window ends; or
 *  - DRAIN: its host stopped asking after it -- no request named the
 *    session (TRACE_STATUS is the consumer's heartbeat) for timeout_ms.
 *
 * The check runs on the timer tick (probe_tick, interrupt context), so a
 * session that starves every thread is still caught.  Aborting clears the
 * session's `live` flag, which the firing path tests first, so its clauses
 * stop at once; the channel thread then unlinks its enablings and restores
 * its sites (probe_abort_finish, session.c) and tells the host why
 * (TRACE_ABORT; TRACE_STATUS carries the same).  END does not fire. */
#include "engine.h"
#include "arch.h"
#include "kernel.h"
#include "tunables.h"

/* A new session's limits: the CPU budget on, the drain deadman off until
 * the host promises heartbeats (TRACE_DEADMAN).  Called by probe_open. */
void probe_deadman_init(struct probe_session *s)
{
    s->dm.timeout_ms = 0;
    s->dm.cpu_pct = DEADMAN_CPU_PCT;
    s->dm.window_ns = (u64)DEADMAN_WINDOW_MS * 1000000;
}

/* Session s starts running at now: a fresh window, a fresh heartbeat.
 * Called by probe_go before the session goes live. */
void probe_deadman_start(struct probe_session *s, u64 now_ns)
{
    s->dm.alive_ns = now_ns;
    s->dm.win_start_ns = now_ns;
    s->dm.win_cycles = s->cycles;
}

static bool deadman_ms_ok(u32 ms)
{
    return ms >= DEADMAN_MIN_MS && ms <= DEADMAN_MAX_MS;
}

/* TRACE_DEADMAN: session sid's limits (see probe.h). */
int probe_deadman_set(u32 sid, const struct probe_deadman_opts *o)
{
    if (sid >= PROBE_SESSIONS_MAX)
        return PROBE_E_NOSESSION;
    struct probe_session *s = &probe_st.sess[sid];
    if (s->state == PS_FREE || s->state == PS_STOPPED)
        return PROBE_E_NOSESSION;
    if ((o->timeout_ms && !deadman_ms_ok(o->timeout_ms)) ||
        (o->window_ms && !deadman_ms_ok(o->window_ms)))
        return PROBE_E_RANGE;
    u64 f = irq_save();
    s->dm.timeout_ms = o->timeout_ms;
    s->dm.cpu_pct = o->cpu_pct >= 100 ? 0 : o->cpu_pct;
    s->dm.window_ns = (u64)(o->window_ms ? o->window_ms : DEADMAN_WINDOW_MS) * 1000000;
    probe_deadman_start(s, time_ns());
    irq_restore(f);
    return PROBE_OK;
}

/* The host named session sid in a request.  Called by the channel for
 * every trace request (a u64 store: the tick reads it whole). */
void probe_alive(u32 sid)
{
    if (sid < PROBE_SESSIONS_MAX && probe_st.sess[sid].state != PS_FREE)
        probe_st.sess[sid].dm.alive_ns = time_ns();
}

/* Abort session sid: no clause of it runs from now on; the channel
 * finishes (probe_abort_finish).  Interrupts are off (the tick). */
static void deadman_abort(struct probe_session *s, u32 sid, const struct probe_abort *why)
{
    s->live = false;
    s->dm.aborted = true;
    s->dm.why = *why;
    probe_st.dm_pending |= 1u << sid;
}

/* Session s's CPU window: when it has run its length, abort s if its
 * clauses took more than the budget, else start the next one. */
static void deadman_cpu(struct probe_session *s, u32 sid, u64 now)
{
    struct probe_dm *d = &s->dm;
    u64 elapsed = now - d->win_start_ns;
    if (!d->cpu_pct || now < d->win_start_ns || elapsed < d->window_ns)
        return;
    u64 used = time_cycles_to_ns(s->cycles - d->win_cycles);
    if (used * 100 > elapsed * d->cpu_pct) {        /* windows <= an hour: no overflow */
        struct probe_abort why = { PROBE_DM_CPU, d->cpu_pct, used, elapsed };
        deadman_abort(s, sid, &why);
        return;
    }
    d->win_start_ns = now;
    d->win_cycles = s->cycles;
}

/* Session s's heartbeat: abort s when its host has been silent too long. */
static void deadman_drain(struct probe_session *s, u32 sid, u64 now)
{
    struct probe_dm *d = &s->dm;
    u64 timeout = (u64)d->timeout_ms * 1000000;
    if (!d->timeout_ms || now < d->alive_ns || now - d->alive_ns <= timeout)
        return;
    struct probe_abort why = { PROBE_DM_DRAIN, 0, now - d->alive_ns, timeout };
    deadman_abort(s, sid, &why);
}

/* The timer tick: check every live session (see probe.h). */
void probe_deadman_tick(u64 now_ns)
{
    for (u32 sid = 0; sid < PROBE_SESSIONS_MAX; sid++) {
        struct probe_session *s = &probe_st.sess[sid];
        if (s->state != PS_RUNNING || !s->live)
            continue;
        deadman_cpu(s, sid, now_ns);
        if (s->live)
            deadman_drain(s, sid, now_ns);
    }
}

/* Was session sid aborted, and why (see probe.h). */
int probe_aborted(u32 sid, struct probe_abort *a)
{
    if (sid >= PROBE_SESSIONS_MAX || probe_st.sess[sid].state == PS_FREE)
        return -1;
    const struct probe_session *s = &probe_st.sess[sid];
    u64 f = irq_save();
    bool ab = s->dm.aborted;
    if (ab && a)
        *a = s->dm.why;
    irq_restore(f);
    return ab;
}

u32 probe_abort_pending(void)
{
    return probe_st.dm_pending;
}
