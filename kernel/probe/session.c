/* Probe sessions: the probe.h calls the channel makes for each `unik
 * trace` consumer.  A session owns its program, enablings, variables,
 * aggregations and record ring, all allocated from pages at open and load
 * and freed at close, so the probe path never allocates.  Lifecycle:
 * open -> load_chunk... -> load (verify) -> enable... -> go (link the
 * enablings, patch the sites, fire BEGIN) -> stop (fire END, unlink,
 * restore the sites) -> close.  Called from the channel thread (and the
 * self-test); what the probe path reads is changed with interrupts off. */
#include "engine.h"
#include "fbt.h"
#include "kernel.h"
#include "lib.h"
#include "mm.h"
#include "x86.h"

/* Session sid if it exists and is in state lo..hi, else NULL. */
static struct probe_session *session_get(u32 sid, enum probe_sstate lo, enum probe_sstate hi)
{
    if (sid >= PROBE_SESSIONS_MAX)
        return NULL;
    struct probe_session *s = &probe_st.sess[sid];
    return s->state >= lo && s->state <= hi && s->state != PS_FREE ? s : NULL;
}

/* Pages for bytes bytes into *m; false when out of memory. */
static bool session_alloc(struct probe_mem *m, u64 bytes)
{
    m->pages = (u32)((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    m->base = m->pages ? page_alloc_n(m->pages) : NULL;
    if (m->pages && !m->base)
        m->pages = 0;
    return m->base || bytes == 0;
}

static void session_free_mem(struct probe_mem *m)
{
    if (m->base)
        page_free_n(m->base, m->pages);
    m->base = NULL;
    m->pages = 0;
}

/* Return every allocation of s and mark it free. */
static void session_release(struct probe_session *s)
{
    u64 f = irq_save();
    s->state = PS_FREE;                 /* off the deny-list and the probe path */
    irq_restore(f);
    session_free_mem(&s->prog_mem);
    session_free_mem(&s->ring_mem);
    session_free_mem(&s->agg_mem);
    session_free_mem(&s->dyn_mem);
    session_free_mem(&s->var_mem);
}

static bool session_size_ok(u32 v)
{
    return v >= PROBE_ARENA_MIN && v <= PROBE_ARENA_MAX;
}

/* A new session with o's sizes: its ring and arenas allocated. */
int probe_open(const struct probe_opts *o, u32 *sid)
{
    probe_state_init();
    if (!session_size_ok(o->bufsize) || !session_size_ok(o->aggsize) ||
        !session_size_ok(o->dynvarsize) || o->prog_len == 0 ||
        o->prog_len > ISA_MAX_PROG_BYTES)
        return PROBE_E_RANGE;
    u32 i = 0;
    while (i < PROBE_SESSIONS_MAX && probe_st.sess[i].state != PS_FREE)
        i++;
    if (i == PROBE_SESSIONS_MAX)
        return PROBE_E_NOSPACE;
    struct probe_session *s = &probe_st.sess[i];
    memset(s, 0, sizeof *s);
    s->opts = *o;
    s->state = PS_OPEN;
    if (!session_alloc(&s->prog_mem, o->prog_len) || !session_alloc(&s->ring_mem, o->bufsize) ||
        !session_alloc(&s->agg_mem, o->aggsize) || !session_alloc(&s->dyn_mem, o->dynvarsize)) {
        session_release(s);
        return PROBE_E_NOSPACE;
    }
    s->ring_size = o->bufsize & ~7u;
    s->open_ns = time_ns();
    probe_deadman_init(s);
    *sid = i;
    return PROBE_OK;
}

/* Copy a piece of the program container (chunked upload). */
int probe_load_chunk(u32 sid, u32 off, const u8 *data, u32 len)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_OPEN);
    if (!s)
        return PROBE_E_NOSESSION;
    if (off > s->opts.prog_len || len > s->opts.prog_len - off)
        return PROBE_E_RANGE;
    memcpy(s->prog_mem.base + off, data, len);
    s->prog_have = MAX(s->prog_have, off + len);
    return PROBE_OK;
}

/* Verify the uploaded program; lay out its variables and tables. */
int probe_load(u32 sid, struct probe_verr *e)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_OPEN);
    if (!s)
        return PROBE_E_NOSESSION;
    if (s->prog_have != s->opts.prog_len) {
        e->pc = -1;
        str_copy(e->msg, "program not fully uploaded", sizeof e->msg);
        return PROBE_E_VERIFY;
    }
    if (!verify_prog(s->prog_mem.base, s->opts.prog_len, &s->prog, e))
        return PROBE_E_VERIFY;
    if (!session_alloc(&s->var_mem, (u64)s->prog.globals_bytes + s->prog.locals_bytes))
        return PROBE_E_NOSPACE;
    agg_init(&s->agg, s->agg_mem.base, s->agg_mem.pages * PAGE_SIZE);
    memset(s->keyhit, 0, sizeof s->keyhit);
    dyn_init(&s->dyn, s->dyn_mem.base, s->dyn_mem.pages * PAGE_SIZE);
    s->state = PS_LOADED;
    return PROBE_OK;
}

/* Is probe id something the engine can enable? */
static bool session_probe_ok(u32 id, u64 arg)
{
    if (id >= ISA_FIRST_FBT_PROBE)
        return fbt_probe_ok(id, arg);
    if (id >= ISA_SP_BEGIN && id <= ISA_SP_PROFILE)
        return true;
    return id >= ISA_FIRST_STATIC_PROBE && id < PROBE_IDS_MAX &&
           id - ISA_FIRST_STATIC_PROBE < site_count();
}

/* Add an enabling: clause runs when probe_id fires (arg: TICK's period). */
int probe_enable(u32 sid, u32 clause, u32 probe_id, u64 arg)
{
    struct probe_session *s = session_get(sid, PS_LOADED, PS_LOADED);
    if (!s)
        return PROBE_E_NOSESSION;
    if (!session_probe_ok(probe_id, arg))
        return PROBE_E_NOPROBE;
    if (clause >= s->prog.nclauses || (probe_id == ISA_SP_TICK && arg < 1000) ||
        (probe_id == ISA_SP_PROFILE && arg < PROFILE_MIN_NS) ||
        s->nenablings >= 0xffff)
        return PROBE_E_RANGE;
    for (u32 i = 0; i < PROBE_ENABLINGS_MAX; i++) {
        struct probe_enabling *e = &probe_st.en[i];
        if (e->used)
            continue;
        memset(e, 0, sizeof *e);
        e->used = true;
        e->sid = (u8)sid;
        e->index = (u16)s->nenablings++;
        e->clause = (u16)clause;
        e->count1 = s->prog.cl[clause].count1;
        e->key1 = s->prog.cl[clause].key1;
        e->epid = (u32)clause << 16 | e->index;
        e->sess = s;
        e->probe = probe_id;
        e->arg = arg;
        e->next = NULL;
        return PROBE_OK;
    }
    return PROBE_E_NOSPACE;
}

/* Link (on) or unlink every enabling of session sid, patching a static
 * probe's sites when its first enabling comes and its last one goes.
 * Enablings go to the end of their list, so clauses run in order. */
static void session_link(u32 sid, bool on)
{
    for (u32 i = 0; i < PROBE_ENABLINGS_MAX; i++) {
        struct probe_enabling *e = &probe_st.en[i];
        if (!e->used || e->sid != sid || e->linked == on)
            continue;
        if (e->probe >= ISA_FIRST_FBT_PROBE) {    /* fbt keeps its own lists */
            fbt_link(e, on);
            e->linked = on;
            continue;
        }
        u64 f = irq_save();
        struct probe_enabling **link = &probe_st.first[e->probe];
        while (*link && *link != e)
            link = &(*link)->next;
        if (on) {
            e->due = time_ns() + e->arg;
            e->next = NULL;
            *link = e;
        } else {
            *link = e->next;
        }
        e->linked = on;
        u16 refs = on ? ++probe_st.refs[e->probe] : --probe_st.refs[e->probe];
        irq_restore(f);
        if (e->probe >= ISA_FIRST_STATIC_PROBE && refs == (on ? 1 : 0))
            site_set(e->probe - ISA_FIRST_STATIC_PROBE, on);
    }
    profile_update();
}

/* Fire the synthetic probe (BEGIN or END) for session sid alone. */
static void session_fire(u32 sid, u32 probe)
{
    u64 flags;
    if (!probe_enter(&flags))
        return;
    probe_run(probe, (i32)sid, NULL, 0);
    probe_leave(flags);
}

/* Start: link the enablings, patch the sites, fire BEGIN. */
int probe_go(u32 sid)
{
    struct probe_session *s = session_get(sid, PS_LOADED, PS_LOADED);
    if (!s)
        return PROBE_E_NOSESSION;
    probe_st.ctx.env = NULL;            /* the engine re-binds its VM context */
    probe_deadman_start(s, time_ns());
    s->state = PS_RUNNING;
    s->live = !s->exiting;
    session_link(sid, true);
    session_fire(sid, ISA_SP_BEGIN);
    return PROBE_OK;
}

/* Stop: fire END, unlink, restore the sites; results stay readable.
 * A session the deadman aborted stops without END (and stopping it again
 * is not an error: the host may not have heard yet). */
int probe_stop(u32 sid)
{
    struct probe_session *s = session_get(sid, PS_RUNNING, PS_STOPPED);
    if (!s || (s->state == PS_STOPPED && !s->dm.aborted))
        return PROBE_E_NOSESSION;
    if (s->state == PS_STOPPED)
        return PROBE_OK;
    u64 f = irq_save();
    bool aborted = s->dm.aborted;
    s->live = false;
    irq_restore(f);
    if (!aborted)
        session_fire(sid, ISA_SP_END);
    session_link(sid, false);
    f = irq_save();
    probe_st.dm_pending &= ~(1u << sid);
    irq_restore(f);
    s->state = PS_STOPPED;
    return PROBE_OK;
}

/* Finish a deadman abort (see probe.h): stop without END. */
bool probe_abort_finish(u32 sid)
{
    if (sid >= PROBE_SESSIONS_MAX || !(probe_st.dm_pending & (1u << sid)))
        return false;
    return probe_stop(sid) == PROBE_OK;
}

/* Free the session and its enablings (stopping it first). */
void probe_close(u32 sid)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_STOPPED);
    if (!s)
        return;
    if (s->state == PS_RUNNING)
        probe_stop(sid);
    for (u32 i = 0; i < PROBE_ENABLINGS_MAX; i++)
        if (probe_st.en[i].used && probe_st.en[i].sid == sid)
            probe_st.en[i].used = false;
    u64 f = irq_save();
    probe_st.dm_pending &= ~(1u << sid);
    irq_restore(f);
    session_release(s);
}

void probe_close_all(void)
{
    for (u32 i = 0; i < PROBE_SESSIONS_MAX; i++)
        probe_close(i);
}

int probe_exiting(u32 sid)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_STOPPED);
    return s ? s->exiting : -1;
}

int probe_stats(u32 sid, struct probe_stats *st)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_STOPPED);
    if (!s)
        return PROBE_E_NOSESSION;
    u64 f = irq_save();
    *st = s->st;
    st->drops_agg = s->agg.drops;
    st->drops_dyn = s->dyn.drops;
    irq_restore(f);
    return PROBE_OK;
}

/* Move whole records (at most cap bytes) out of the ring. */
u32 probe_drain(u32 sid, u8 *out, u32 cap)
{
    struct probe_session *s = session_get(sid, PS_OPEN, PS_STOPPED);
    u32 n = 0;
    if (!s || !s->ring_mem.base)
        return 0;
    u64 f = irq_save();
    while (s->ring_head != s->ring_tail) {
        u32 at = (u32)(s->ring_tail % s->ring_size);
        u16 size;
        u8 *ring = s->ring_mem.base;
        size = at + 2 <= s->ring_size ? (u16)(ring[at] | ring[at + 1] << 8) : 0;
        if (!size || size > cap - n)
            break;
        u32 first = MIN(size, s->ring_size - at);
        memcpy(out + n, ring + at, first);
        memcpy(out + n + first, ring, size - first);
        n += size;
        s->ring_tail += size;
        s->st.drained++;
    }
    irq_restore(f);
    return n;
}

/* Sessions with records waiting, as a bitmask. */
u32 probe_pending(void)
{
    u32 m = 0;
    for (u32 i = 0; i < PROBE_SESSIONS_MAX; i++) {
        const struct probe_session *s = &probe_st.sess[i];
        if (s->state != PS_FREE && s->ring_head != s->ring_tail)
            m |= 1u << i;
    }
    return m;
}

/* Aggregation snapshot (format in probe.h). */
u32 probe_agg_read(u32 sid, u32 *cursor, u8 *out, u32 cap)
{
    struct probe_session *s = session_get(sid, PS_LOADED, PS_STOPPED);
    if (!s) {
        *cursor = 0;
        return 0;
    }
    u64 f = irq_save();
    u32 n = agg_read(&s->agg, cursor, out, cap);
    irq_restore(f);
    return n;
}

int probe_agg_clear(u32 sid, i32 agg)
{
    struct probe_session *s = session_get(sid, PS_LOADED, PS_STOPPED);
    if (!s)
        return PROBE_E_NOSESSION;
    if (agg >= (i32)s->prog.naggs)
        return PROBE_E_RANGE;
    u64 f = irq_save();
    agg_clear(&s->agg, s->prog.aggs, agg < 0 ? -1 : agg);
    irq_restore(f);
    return PROBE_OK;
}
