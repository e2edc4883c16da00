/* The kernel's probe VM (kernel/probe/verify.c, vm.c, vmstr.c, agg.c,
 * dyn.c) built for the host, for `unik trace --core`: BEGIN and END
 * clauses run over a core with the same interpreter the kernel runs.
 * Built and driven through ctypes by introspect/corevm.py.
 *
 * This file plays the engine's part (kernel/probe/engine.c): it owns the
 * program copy, the variables, the aggregation and dynamic-variable
 * arenas, scratch and staging; builtins come from a table the host fills
 * (the core's time, its current thread); every load goes to the host's
 * callback, which reads the core (a failed read is the kernel's BADADDR). */
#include <stdlib.h>
#include <string.h>
#include "../kernel/probe/vm.h"

typedef int (*corevm_load_fn)(u64 addr, u32 size, u64 *out);

struct corevm {
    struct vm_prog prog;
    struct vm_ctx ctx;
    struct agg_table agg;
    struct dyn_table dyn;
    u8 *progbuf, *aggmem, *dynmem, *vars;
    u32 aggsize, dynsize;
    char scratch[PROBE_SCRATCH_BYTES];
    u8 stage[PROBE_STAGE_BYTES];
    u64 builtins[ISA_B_COUNT_];
    char strs[ISA_B_COUNT_][64];        /* string builtins */
    u64 args[VM_NARGS];
    corevm_load_fn load;
};

/* vm_ctx.load: the host reads the core. */
static bool corevm_load_cb(void *env, u64 addr, u32 size, u64 *out)
{
    struct corevm *s = env;
    *out = 0;
    return s->load && s->load(addr, size, out);
}

/* vm_ctx.builtin: the table corevm_set_builtin/_str filled. */
static u64 corevm_builtin_cb(void *env, u32 id)
{
    struct corevm *s = env;
    switch (id) {
    case ISA_B_THREAD: case ISA_B_PROBEPROV: case ISA_B_PROBEMOD:
    case ISA_B_PROBEFUNC: case ISA_B_PROBENAME:
        return (u64)(uintptr_t)s->strs[id];
    }
    return id < ISA_B_COUNT_ ? s->builtins[id] : 0;
}

/* A VM with arenas of the sizes asked (the script's aggsize, dynvarsize). */
struct corevm *corevm_new(u32 aggsize, u32 dynsize, corevm_load_fn load)
{
    struct corevm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->aggsize = (u32)ALIGN_UP(aggsize, 4096);
    s->dynsize = (u32)ALIGN_UP(dynsize, 4096);
    s->aggmem = aligned_alloc(4096, s->aggsize);
    s->dynmem = aligned_alloc(4096, s->dynsize);
    if (!s->aggmem || !s->dynmem) {
        free(s->aggmem);
        free(s->dynmem);
        free(s);
        return NULL;
    }
    s->load = load;
    s->ctx.scratch = s->scratch;
    s->ctx.scratch_size = sizeof s->scratch;
    s->ctx.stage = s->stage;
    s->ctx.stage_size = sizeof s->stage;
    s->ctx.env = s;
    s->ctx.load = corevm_load_cb;
    s->ctx.builtin = corevm_builtin_cb;
    s->ctx.agg = &s->agg;
    s->ctx.dyn = &s->dyn;
    return s;
}

void corevm_free(struct corevm *s)
{
    if (!s)
        return;
    free(s->progbuf);
    free(s->aggmem);
    free(s->dynmem);
    free(s->vars);
    free(s);
}

/* Copy and verify a program container (the kernel's verifier); 1 when it
 * verified, else 0 with *e filled. */
int corevm_load(struct corevm *s, const u8 *buf, u32 len, struct probe_verr *e)
{
    free(s->progbuf);
    free(s->vars);
    s->vars = NULL;
    s->progbuf = malloc(len ? len : 1);
    if (!s->progbuf)
        return 0;
    memcpy(s->progbuf, buf, len);
    if (!verify_prog(s->progbuf, len, &s->prog, e))
        return 0;
    s->vars = calloc(1, s->prog.globals_bytes + s->prog.locals_bytes + 16);
    if (!s->vars)
        return 0;
    s->ctx.prog = &s->prog;
    s->ctx.globals = s->prog.globals_bytes ? s->vars : NULL;
    s->ctx.locals = s->prog.locals_bytes ? s->vars + s->prog.globals_bytes : NULL;
    agg_init(&s->agg, s->aggmem, s->aggsize);
    dyn_init(&s->dyn, s->dynmem, s->dynsize);
    return 1;
}

/* Run clause for probe with epid and args, as engine.c's probe_clause
 * does; returns the fault (0 = none: records are in corevm_stage). */
u32 corevm_run(struct corevm *s, u32 clause, u32 probe, u32 epid, const u64 *args, u32 nargs)
{
    memset(s->args, 0, sizeof s->args);
    nargs = nargs > VM_NARGS ? VM_NARGS : nargs;
    if (nargs)
        memcpy(s->args, args, nargs * 8);
    s->ctx.args = s->args;
    s->ctx.nargs = nargs;
    s->ctx.probe = probe;
    s->ctx.epid = epid;
    s->ctx.timestamp = 0;
    return vm_run(&s->ctx, clause);
}

void corevm_set_builtin(struct corevm *s, u32 id, u64 v)
{
    if (id < ISA_B_COUNT_)
        s->builtins[id] = v;
}

void corevm_set_str(struct corevm *s, u32 id, const char *v)
{
    if (id < ISA_B_COUNT_) {
        strncpy(s->strs[id], v, sizeof s->strs[id] - 1);
        s->strs[id][sizeof s->strs[id] - 1] = 0;
    }
}

const u8 *corevm_stage(struct corevm *s, u32 *len) { *len = s->ctx.stage_len; return s->stage; }
u32 corevm_fault(struct corevm *s, u32 *pc, u64 *addr)
{
    *pc = s->ctx.fault_pc;
    *addr = s->ctx.fault_addr;
    return s->ctx.fault;
}
int corevm_exited(struct corevm *s) { return s->ctx.exited; }
u64 corevm_timestamp(struct corevm *s) { return vm_timestamp(&s->ctx); }
u32 corevm_agg_read(struct corevm *s, u32 *cursor, u8 *out, u32 cap)
{
    return agg_read(&s->agg, cursor, out, cap);
}
void corevm_agg_clear(struct corevm *s, i32 agg) { agg_clear(&s->agg, s->prog.aggs, agg); }
u64 corevm_agg_drops(struct corevm *s) { return s->agg.drops; }
u64 corevm_dyn_drops(struct corevm *s) { return s->dyn.drops; }
