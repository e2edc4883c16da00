/* fbt: function-boundary probes on every instrumented kernel function
 * (kernel/probe/fbt.c).  gcc's -pg -mfentry -mnop-mcount starts each
 * function with a 5-byte nop and lists it in __mcount_loc; enabling a
 * function's entry or return probe patches that nop to `call
 * fbt_entry_tramp` (fbt_tramp.S).  Return probes swap the caller's return
 * address for fbt_return_tramp and keep the original on a per-thread
 * shadow stack. */
#ifndef UNIK_FBT_H
#define UNIK_FBT_H
#include "types.h"

/* A function the firing path runs (or that must never fire): compiled
 * without its entry nop.  Whole files are excluded in kernel/Makefile. */
#define FBT_EXCLUDED __attribute__((no_instrument_function))

struct thread;
struct probe_enabling;

/* Boot (kmain, after mm_init): sort the site table, check every site
 * holds the nop. */
void fbt_init(void);
/* Number of fbt functions (probe ids FIRST_FBT_PROBE .. + 2 * count). */
u32 fbt_count(void);
/* Can an enabling of probe id with run length arg be linked? */
bool fbt_probe_ok(u32 id, u64 arg);
/* Link (on) or unlink enabling e (an fbt probe id, arg = run length),
 * patching the functions whose first enabling comes or last one goes.
 * Called by session_link with interrupts on. */
void fbt_link(struct probe_enabling *e, bool on);
/* Provider, module, function or name (ISA_B_PROBE*) of fbt probe id. */
u64 fbt_name(u32 probe, u32 which);
/* The stack walker's view of a return address: if ret is fbt_return_tramp,
 * the original return address from thread t's shadow stack (*k counts the
 * trampolines seen so far in this walk, innermost first, and advances);
 * else ret. */
u64 fbt_unwind_ret(struct thread *t, u64 ret, u32 *k);
/* Statistics: functions patched now, return probes dropped (shadow stack
 * full), sites refused. */
u32 fbt_enabled(void);
u64 fbt_drops(void);
u32 fbt_refused(void);
#endif
