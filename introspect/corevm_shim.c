/* The kernel's probe VM (kernel/probe/verify.c, vm.c, vmstr.c, agg.c,
 * dyn.c) built for the host: for `unik trace --core` (introspect/corevm.py:
 * BEGIN and END clauses run over a core with the same interpreter the
 * kernel runs) and for the kernel C tests (tests/vmhost.py through ctypes,
 * tests/fuzz_vm.c from C).  The API is in corevm_shim.h.
 *
 * This file plays the engine's part (kernel/probe/engine.c): it owns the
 * program copy, the variables, the aggregation and dynamic-variable
 * arenas, scratch and staging; builtins come from a table the host fills
 * (the core's time, its current thread).  A load inside the RAM region
 * corevm_set_ram gave is served from it; any other goes to the host's
 * callback (which reads the core); with neither it is refused, as the
 * kernel's deny-list refuses page 0, MMIO and the engine's own arenas
 * (a refused load is the kernel's BADADDR). */
#include <stdlib.h>
#include <string.h>
#include "corevm_shim.h"

struct corevm {
    struct vm_prog prog;
    struct vm_ctx ctx;
    struct agg_table agg;
    struct dyn_table dyn;
    u8 *progbuf, *aggmem, *dynmem, *vars;
    u32 aggsize, dynsize;
    char *scratch;
    u8 *stage;
    u64 builtins[ISA_B_COUNT_];
    char strs[ISA_B_COUNT_][64];        /* string builtins */
    u64 args[VM_NARGS];                 /* the firing's arguments (ctx.args) */
    corevm_load_fn load;                /* the host's reads */
    const u8 *ram;                      /* a region served without the host */
    u64 ram_addr;
    u32 ram_size;
    u64 loads;                          /* loads the VM asked for */
    u64 stack[ISA_MAX_STACK_FRAMES];    /* what stack() walks (corevm_set_stack) */
    u32 nstack;
};

/* vm_ctx.load: the RAM region, else the host's callback. */
static bool corevm_load_cb(void *env, u64 addr, u32 size, u64 *out)
{
    struct corevm *s = env;
    s->loads++;
    *out = 0;
    if (s->ram && addr >= s->ram_addr && addr - s->ram_addr <= s->ram_size &&
        size <= s->ram_size - (addr - s->ram_addr)) {
        memcpy(out, s->ram + (addr - s->ram_addr), size);
        return true;
    }
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

/* vm_ctx.stack: the frames corevm_set_stack gave, at most max. */
static u32 corevm_stack_cb(void *env, u64 *pcs, u32 max)
{
    struct corevm *s = env;
    u32 n = s->nstack < max ? s->nstack : max;
    memcpy(pcs, s->stack, n * 8);
    return n;
}

/* A VM with arenas of the sizes asked (the script's aggsize, dynvarsize),
 * scratch and staging exactly as large as asked (so the sanitizers see an
 * overrun); no load callback, no RAM yet. */
struct corevm *corevm_new(u32 aggsize, u32 dynsize, u32 scratch, u32 stage)
{
    struct corevm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    scratch = scratch ? scratch : PROBE_SCRATCH_BYTES;
    stage = stage ? stage : PROBE_STAGE_BYTES;
    s->aggsize = (u32)ALIGN_UP(aggsize, 4096);
    s->dynsize = (u32)ALIGN_UP(dynsize, 4096);
    s->aggmem = aligned_alloc(4096, s->aggsize);
    s->dynmem = aligned_alloc(4096, s->dynsize);
    s->scratch = malloc(scratch);
    s->stage = malloc(stage);
    if (!s->aggmem || !s->dynmem || !s->scratch || !s->stage) {
        corevm_free(s);
        return NULL;
    }
    s->ctx.scratch = s->scratch;
    s->ctx.scratch_size = scratch;
    s->ctx.stage = s->stage;
    s->ctx.stage_size = stage;
    s->ctx.env = s;
    s->ctx.load = corevm_load_cb;
    s->ctx.builtin = corevm_builtin_cb;
    s->ctx.stack = corevm_stack_cb;
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
    free(s->scratch);
    free(s->stage);
    free(s);
}

/* Copy and verify a program container (the kernel's verifier); fresh
 * variables, aggregations, dynamics.  1 when it verified, else 0 with *e
 * filled. */
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
 * does; returns the fault (0 = none: records are in corevm_stage).  The
 * timestamp is the TIMESTAMP builtin's, read when first needed. */
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

void corevm_set_load(struct corevm *s, corevm_load_fn load) { s->load = load; }
void corevm_set_ram(struct corevm *s, u64 addr, const u8 *ram, u32 size)
{
    s->ram_addr = addr;
    s->ram = ram;
    s->ram_size = size;
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
void corevm_set_stack(struct corevm *s, const u64 *pcs, u32 n)
{
    s->nstack = n > ISA_MAX_STACK_FRAMES ? ISA_MAX_STACK_FRAMES : n;
    memcpy(s->stack, pcs, s->nstack * 8);
}

const u8 *corevm_stage(struct corevm *s, u32 *len) { *len = s->ctx.stage_len; return s->stage; }
u32 corevm_fault(struct corevm *s, u32 *pc, u64 *addr)
{
    *pc = s->ctx.fault_pc;
    *addr = s->ctx.fault_addr;
    return s->ctx.fault;
}
/* exit()'s code with bit 63 set when the last run called exit(), else 0. */
u64 corevm_exit(struct corevm *s) { return s->ctx.exited ? s->ctx.exit_code | (1ull << 63) : 0; }
u64 corevm_timestamp(struct corevm *s) { return vm_timestamp(&s->ctx); }
u32 corevm_agg_read(struct corevm *s, u32 *cursor, u8 *out, u32 cap)
{
    return agg_read(&s->agg, cursor, out, cap);
}
void corevm_agg_clear(struct corevm *s, i32 agg) { agg_clear(&s->agg, s->prog.aggs, agg); }
u64 corevm_agg_drops(struct corevm *s) { return s->agg.drops; }
u64 corevm_dyn_drops(struct corevm *s) { return s->dyn.drops; }
u32 corevm_dyn_live(struct corevm *s) { return s->dyn.live; }
u32 corevm_agg_keys(struct corevm *s) { return s->agg.nkeys; }
/* Where an arena lives (0 agg, 1 dyn, 2 scratch, else the program copy):
 * the tests check that a load from it is refused. */
u64 corevm_arena(struct corevm *s, u32 which)
{
    return (u64)(uintptr_t)(which == 0 ? (void *)s->aggmem : which == 1 ? (void *)s->dynmem :
                            which == 2 ? (void *)s->scratch : (void *)s->progbuf);
}
u64 corevm_loads(struct corevm *s) { return s->loads; }
u32 corevm_count1(struct corevm *s, u32 clause) { return s->prog.cl[clause].count1; }
/* vm_clause.key1 of clause, with its builtin and kind: key1 | builtin << 8 | str << 24 */
u32 corevm_key1(struct corevm *s, u32 clause)
{
    const struct vm_clause *c = &s->prog.cl[clause];
    return c->key1 ? c->key1 | (u32)c->key1_builtin << 8 | (u32)c->key1_str << 24 : 0;
}
