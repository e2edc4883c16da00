/* The host build of the kernel's probe VM (introspect/corevm_shim.c): the
 * engine's part played on the host.  Used through ctypes by
 * introspect/corevm.py (`unik trace --core`) and tests/vmhost.py (the
 * kernel C tests), and from C by tests/fuzz_vm.c. */
#ifndef COREVM_SHIM_H
#define COREVM_SHIM_H
#include "../kernel/probe/vm.h"

struct corevm;
/* The host's read of addr (size bytes into *out); 0 refuses (BADADDR). */
typedef int (*corevm_load_fn)(u64 addr, u32 size, u64 *out);

/* A VM with arenas of the sizes asked; scratch and stage 0 take the
 * kernel's PROBE_SCRATCH_BYTES and PROBE_STAGE_BYTES.  NULL: no memory. */
struct corevm *corevm_new(u32 aggsize, u32 dynsize, u32 scratch, u32 stage);
void corevm_free(struct corevm *s);
/* Copy and verify a program container; fresh variables, aggregations,
 * dynamics.  1 when it verified, else 0 with *e filled. */
int corevm_load(struct corevm *s, const u8 *buf, u32 len, struct probe_verr *e);
/* Run clause for probe with epid and args, as engine.c's probe_clause
 * does; returns the fault (0 = none: records are in corevm_stage). */
u32 corevm_run(struct corevm *s, u32 clause, u32 probe, u32 epid, const u64 *args, u32 nargs);

/* The environment: where loads go, builtins, what stack() walks. */
void corevm_set_load(struct corevm *s, corevm_load_fn load);
void corevm_set_ram(struct corevm *s, u64 addr, const u8 *ram, u32 size);
void corevm_set_builtin(struct corevm *s, u32 id, u64 v);
void corevm_set_str(struct corevm *s, u32 id, const char *v);
void corevm_set_stack(struct corevm *s, const u64 *pcs, u32 n);

/* Results and state. */
const u8 *corevm_stage(struct corevm *s, u32 *len);
u32 corevm_fault(struct corevm *s, u32 *pc, u64 *addr);
u64 corevm_exit(struct corevm *s);
u64 corevm_timestamp(struct corevm *s);
u32 corevm_agg_read(struct corevm *s, u32 *cursor, u8 *out, u32 cap);
void corevm_agg_clear(struct corevm *s, i32 agg);
u64 corevm_agg_drops(struct corevm *s);
u64 corevm_dyn_drops(struct corevm *s);
u32 corevm_dyn_live(struct corevm *s);
u32 corevm_agg_keys(struct corevm *s);
u64 corevm_arena(struct corevm *s, u32 which);
u64 corevm_loads(struct corevm *s);
u32 corevm_count1(struct corevm *s, u32 clause);
u32 corevm_key1(struct corevm *s, u32 clause);
#endif
