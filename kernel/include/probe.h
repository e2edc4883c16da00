/* The probe engine: what the rest of the kernel sees of DTrace-style
 * tracing.  Three parts, each its own files under kernel/probe/:
 *
 *  - sites (site.c): the static probe table (sections .unik_probes and
 *    .unik_sites, declared with PROBE_DEFINE / fired with PROBE_FIRE from
 *    probe_site.h) and patching each site's 5-byte nop to a jump and back;
 *  - the engine (engine.c, session.c, ...): sessions, enablings, firing
 *    clauses in the VM (vm.c, verified once by verify.c), aggregations and
 *    dynamic variables (agg.c, dyn.c), the per-session record buffers;
 *  - the channel (chan/): the wire requests that drive the engine, and the
 *    stream that drains record buffers to the host.
 *
 * Layouts shared with the host (program container, records, probe table)
 * are generated from probes/isa.py into build/gen/isa.h. */
#ifndef UNIK_PROBE_H
#define UNIK_PROBE_H
#include "types.h"

/* ------------------------------------------------------------ sites */
/* Number of static probes (struct probe_desc entries). */
u32 site_count(void);
/* Static probe i (0-based; its probe id is ISA_FIRST_STATIC_PROBE + i). */
const struct isa_probe_desc *site_desc(u32 i);
/* Patch every site of static probe i to jump to its firing block (on) or
 * back to the 5-byte nop (off).  Interrupts are held off while patching.
 * Called by the engine when the first enabling of a probe appears and the
 * last one goes. */
void site_set(u32 i, bool on);
/* Number of sites of static probe i currently patched on (tests, stats). */
u32 site_enabled(u32 i);
/* Every site back to the 5-byte nop, whatever enabled it; returns how many
 * were on.  For the engine's teardown when no session is left. */
u32 site_restore_all(void);
/* Boot: check that every site holds the 5-byte nop (kmain, after mm_init);
 * a site that does not is logged and never patched. */
void site_init(void);
/* Sites refused by the boot check or by a patch that found unexpected
 * bytes (stats, tests). */
u32 site_refused(void);

/* ------------------------------------------------------------ firing */
/* A static probe fired: called (through site_entry.S and site_fire, with
 * every caller-saved register of the probed code saved) with the probe's
 * index in the table (its descriptor's position in .unik_probes, as
 * site_desc numbers them) and its arguments; unused ones are 0.  Runs
 * every enabled clause of that probe; never blocks, never allocates, never
 * faults. */
void probe_fire(u32 index, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5);
/* The same with the six arguments in memory (args[0..5]), read in place.
 * (site_fire runs the same path, inline, on the site's pushed words.) */
void probe_fire_args(u32 index, const u64 *args);
/* The timer tick (interrupt context): fires due tick-N enablings. */
void probe_tick(u64 now_ns);
/* The same with the interrupted frame, where tick-N's stack() starts. */
struct trap_frame;
void probe_tick_frame(u64 now_ns, const struct trap_frame *f);
/* The profile provider's sampling interrupt (probe/profile.c): fires due
 * profile-N enablings (period_ns: the timer's period), arg0 = f->rip. */
void probe_profile(u64 now_ns, u64 period_ns, const struct trap_frame *f);

/* ------------------------------------------------------------ sessions */
struct probe_opts {
    u32 bufsize;            /* bytes of record buffer */
    u32 aggsize;            /* bytes of aggregation memory */
    u32 dynvarsize;         /* bytes of dynamic (self->, assoc) variable memory */
    u32 prog_len;           /* bytes of program container to come */
    u64 wall_ns;            /* host's wall clock at open, for walltimestamp */
};

/* Session statistics (STATUS request; names match the wire layout). */
struct probe_stats {
    u64 fired;              /* clause executions */
    u64 records;            /* records committed */
    u64 drops_buf;          /* records dropped: buffer full */
    u64 drops_agg;          /* aggregation keys dropped: aggsize full */
    u64 drops_dyn;          /* dynamic variables dropped: dynvarsize full */
    u64 errors;             /* clause faults (ERROR fired) */
    u64 reentrant;          /* firings skipped: already inside the engine */
    u64 drained;            /* records handed to the channel */
};

/* Error codes of the session calls (also carried to the host). */
enum probe_err {
    PROBE_OK = 0,
    PROBE_E_NOSESSION,      /* no such session, or not in the right state */
    PROBE_E_NOSPACE,        /* too many sessions, or no memory */
    PROBE_E_VERIFY,         /* the program failed verification (see verr) */
    PROBE_E_NOPROBE,        /* no such probe id */
    PROBE_E_RANGE,          /* an offset, clause or argument out of range */
};

/* Why the verifier refused a program: pc (or -1) and a reason. */
struct probe_verr {
    i64 pc;
    char msg[64];
};

int probe_open(const struct probe_opts *o, u32 *sid);
/* Copy len bytes of the program container at offset off (chunked upload). */
int probe_load_chunk(u32 sid, u32 off, const u8 *data, u32 len);
/* Verify the uploaded program; on PROBE_E_VERIFY, *e says why. */
int probe_load(u32 sid, struct probe_verr *e);
/* Run clause `clause` when probe `probe_id` fires; arg: TICK's period in ns. */
int probe_enable(u32 sid, u32 clause, u32 probe_id, u64 arg);
/* Start: patch the sites, fire BEGIN. */
int probe_go(u32 sid);
/* Stop: fire END, unpatch every site the session enabled.  Records and
 * aggregations stay readable until probe_close. */
int probe_stop(u32 sid);
/* Free the session (stopping it first if needed). */
void probe_close(u32 sid);
/* The host left: close every session. */
void probe_close_all(void);
/* Has session sid asked to stop (exit())?  1 yes, 0 no, -1 no session. */
int probe_exiting(u32 sid);
int probe_stats(u32 sid, struct probe_stats *st);
/* Move whole records (at most cap bytes) out of session sid's buffer into
 * out; returns bytes moved. */
u32 probe_drain(u32 sid, u8 *out, u32 cap);
/* Bitmask of sessions with records waiting (bit sid). */
u32 probe_pending(void);
/* Aggregation snapshot: entries from *cursor on, as many as fit in cap
 * bytes (each: u16 agg, u16 keylen, u32 nwords, key bytes padded to 8,
 * nwords u64); *cursor advances, and is 0 at the end. Returns bytes. */
u32 probe_agg_read(u32 sid, u32 *cursor, u8 *out, u32 cap);
/* Clear (values to zero, keys kept) aggregation agg, or all if agg < 0. */
int probe_agg_clear(u32 sid, i32 agg);

/* ------------------------------------------------------------ deadman
 * (deadman.c) A running session is aborted -- its clauses stop at once,
 * its sites are restored by the channel soon after -- when probe time
 * exceeds cpu_pct % of a window, or when no host request named it for
 * timeout_ms (the host's heartbeat).  DTrace's deadman is the model. */
struct probe_deadman_opts {
    u32 timeout_ms;         /* drain deadman; 0: off (the default) */
    u32 cpu_pct;            /* CPU budget; 0 or >= 100: off (default DEADMAN_CPU_PCT) */
    u32 window_ms;          /* CPU window; 0: DEADMAN_WINDOW_MS */
};
/* Why a session was aborted (reason: ISA-independent PROBE_DM_*). */
enum { PROBE_DM_NONE = 0, PROBE_DM_CPU = 1, PROBE_DM_DRAIN = 2 };
struct probe_abort {
    u32 reason;             /* PROBE_DM_* */
    u32 budget;             /* CPU: the budget in %; DRAIN: 0 */
    u64 used_ns;            /* CPU: probe time in the window; DRAIN: host silence */
    u64 window_ns;          /* CPU: the window; DRAIN: the timeout */
};
/* Set session sid's limits (before or after go); PROBE_E_RANGE if a
 * timeout or window is outside DEADMAN_MIN_MS..DEADMAN_MAX_MS. */
int probe_deadman_set(u32 sid, const struct probe_deadman_opts *o);
/* The host named session sid in a request: it is alive. */
void probe_alive(u32 sid);
/* The timer tick (interrupt context, via probe_tick): abort sessions
 * over their CPU budget or whose host went silent. */
void probe_deadman_tick(u64 now_ns);
/* Was session sid aborted?  1 (and *a says why), 0 no, -1 no session. */
int probe_aborted(u32 sid, struct probe_abort *a);
/* Finish an abort in thread context: unlink the session's enablings and
 * restore its sites (no END); it is then stopped.  True if this call did
 * it.  Called by the channel (chan_trace_run) when probe_aborted says so. */
bool probe_abort_finish(u32 sid);
/* Sessions aborted but not yet finished, as a bitmask (bit sid). */
u32 probe_abort_pending(void);
#endif
