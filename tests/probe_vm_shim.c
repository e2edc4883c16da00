/* Host-side harness for the probe VM (kernel/probe/verify.c, vm.c,
 * vmstr.c, agg.c, dyn.c), built by tests/cpure.py and driven through
 * ctypes by tests/test_probe_vm_c.py and standalone by tests/fuzz_vm.c.
 *
 * Plays the engine's part: owns the program copy, the variable areas, the
 * aggregation and dynamic-variable arenas, scratch and staging; provides
 * builtins from a settable table and a safe-load path over one fake RAM
 * region (every other address -- page 0, MMIO, the harness's own arenas
 * -- is refused, as the kernel's deny-list does). */
#include <stdlib.h>
#include <string.h>
#include "../kernel/probe/vm.h"

struct vshim {
    struct vm_prog prog;
    struct vm_ctx ctx;
    struct agg_table agg;
    struct dyn_table dyn;
    u8 *progbuf, *aggmem, *dynmem, *vars;
    u32 aggsize, dynsize;
    char *scratch;
    u8 *stage;
    u64 builtins[ISA_B_COUNT_];
    u64 args[VM_NARGS];                 /* the firing's arguments (ctx.args) */
    char strs[ISA_B_COUNT_][64];        /* string builtins */
    const u8 *ram;                      /* fake kernel memory */
    u64 ram_addr;
    u32 ram_size;
    u64 loads;                          /* load callbacks made */
    u64 stack[ISA_MAX_STACK_FRAMES];    /* what stack() walks (vshim_set_stack) */
    u32 nstack;
};

/* stack(): the frames vshim_set_stack gave, at most max. */
static u32 vshim_stack_cb(void *env, u64 *pcs, u32 max)
{
    struct vshim *s = env;
    u32 n = s->nstack < max ? s->nstack : max;
    memcpy(pcs, s->stack, n * 8);
    return n;
}

static bool vshim_load_cb(void *env, u64 addr, u32 size, u64 *out)
{
    struct vshim *s = env;
    s->loads++;
    if (!s->ram || addr < s->ram_addr || addr - s->ram_addr > s->ram_size ||
        size > s->ram_size - (addr - s->ram_addr))
        return false;
    *out = 0;
    memcpy(out, s->ram + (addr - s->ram_addr), size);
    return true;
}

static u64 vshim_builtin_cb(void *env, u32 id)
{
    struct vshim *s = env;
    switch (id) {
    case ISA_B_THREAD: case ISA_B_PROBEPROV: case ISA_B_PROBEMOD:
    case ISA_B_PROBEFUNC: case ISA_B_PROBENAME:
        return (u64)(uintptr_t)s->strs[id];
    }
    return id < ISA_B_COUNT_ ? s->builtins[id] : 0;
}

struct vshim *vshim_new(u32 aggsize, u32 dynsize, u32 scratch, u32 stage)
{
    struct vshim *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->aggmem = aligned_alloc(4096, ALIGN_UP(aggsize, 4096));
    s->dynmem = aligned_alloc(4096, ALIGN_UP(dynsize, 4096));
    s->scratch = malloc(scratch ? scratch : 1);
    s->stage = malloc(stage ? stage : 1);
    s->aggsize = aggsize;
    s->dynsize = dynsize;
    s->ctx.scratch = s->scratch;
    s->ctx.scratch_size = scratch;
    s->ctx.stage = s->stage;
    s->ctx.stage_size = stage;
    s->ctx.env = s;
    s->ctx.load = vshim_load_cb;
    s->ctx.builtin = vshim_builtin_cb;
    s->ctx.stack = vshim_stack_cb;
    s->ctx.agg = &s->agg;
    s->ctx.dyn = &s->dyn;
    strcpy(s->strs[ISA_B_THREAD], "main");
    strcpy(s->strs[ISA_B_PROBEPROV], "sched");
    strcpy(s->strs[ISA_B_PROBEMOD], "sched");
    strcpy(s->strs[ISA_B_PROBEFUNC], "sched_switch");
    strcpy(s->strs[ISA_B_PROBENAME], "switch");
    return s;
}

void vshim_free(struct vshim *s)
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

/* Copy and verify a program; fresh variables, aggregations, dynamics.
 * Returns 1 when it verified, else 0 with *e filled. */
int vshim_load(struct vshim *s, const u8 *buf, u32 len, struct probe_verr *e)
{
    free(s->progbuf);
    free(s->vars);
    s->vars = NULL;
    s->progbuf = malloc(len ? len : 1);
    memcpy(s->progbuf, buf, len);
    if (!verify_prog(s->progbuf, len, &s->prog, e))
        return 0;
    s->vars = calloc(1, s->prog.globals_bytes + s->prog.locals_bytes + 16);
    s->ctx.prog = &s->prog;
    s->ctx.globals = s->prog.globals_bytes ? s->vars : NULL;
    s->ctx.locals = s->prog.locals_bytes ? s->vars + s->prog.globals_bytes : NULL;
    agg_init(&s->agg, s->aggmem, s->aggsize);
    dyn_init(&s->dyn, s->dynmem, s->dynsize);
    return 1;
}

/* Run clause with args; returns the fault (0 = none). */
u32 vshim_run(struct vshim *s, u32 clause, const u64 *args, u32 nargs, u32 probe)
{
    memset(s->args, 0, sizeof s->args);
    nargs = nargs > VM_NARGS ? VM_NARGS : nargs;
    if (nargs)
        memcpy(s->args, args, nargs * 8);
    s->ctx.args = s->args;
    s->ctx.nargs = nargs;
    s->ctx.probe = probe;
    s->ctx.epid = clause << 16;
    s->ctx.timestamp = s->builtins[ISA_B_TIMESTAMP];
    return vm_run(&s->ctx, clause);
}

void vshim_set_builtin(struct vshim *s, u32 id, u64 v) { if (id < ISA_B_COUNT_) s->builtins[id] = v; }
void vshim_set_str(struct vshim *s, u32 id, const char *v)
{
    if (id < ISA_B_COUNT_)
        strncpy(s->strs[id], v, sizeof s->strs[id] - 1);
}
void vshim_set_stack(struct vshim *s, const u64 *pcs, u32 n)
{
    s->nstack = n > ISA_MAX_STACK_FRAMES ? ISA_MAX_STACK_FRAMES : n;
    memcpy(s->stack, pcs, s->nstack * 8);
}
void vshim_set_ram(struct vshim *s, u64 addr, const u8 *ram, u32 size)
{
    s->ram_addr = addr;
    s->ram = ram;
    s->ram_size = size;
}
const u8 *vshim_stage(struct vshim *s, u32 *len) { *len = s->ctx.stage_len; return s->stage; }
u32 vshim_fault(struct vshim *s, u32 *pc, u64 *addr) { *pc = s->ctx.fault_pc; *addr = s->ctx.fault_addr; return s->ctx.fault; }
u64 vshim_exit(struct vshim *s) { return s->ctx.exited ? s->ctx.exit_code | (1ull << 63) : 0; }
u32 vshim_agg_read(struct vshim *s, u32 *cursor, u8 *out, u32 cap) { return agg_read(&s->agg, cursor, out, cap); }
void vshim_agg_clear(struct vshim *s, i32 agg) { agg_clear(&s->agg, s->prog.aggs, agg); }
u64 vshim_agg_drops(struct vshim *s) { return s->agg.drops; }
u64 vshim_dyn_drops(struct vshim *s) { return s->dyn.drops; }
u32 vshim_dyn_live(struct vshim *s) { return s->dyn.live; }
u32 vshim_agg_keys(struct vshim *s) { return s->agg.nkeys; }
u64 vshim_arena(struct vshim *s, u32 which)
{
    return (u64)(uintptr_t)(which == 0 ? (void *)s->aggmem : which == 1 ? (void *)s->dynmem :
                            which == 2 ? (void *)s->scratch : (void *)s->progbuf);
}
u64 vshim_loads(struct vshim *s) { return s->loads; }
u32 vshim_count1(struct vshim *s, u32 clause) { return s->prog.cl[clause].count1; }
/* vm_clause.key1 of clause, with its builtin and kind: key1 | builtin << 8 | str << 24 */
u32 vshim_key1(struct vshim *s, u32 clause)
{
    const struct vm_clause *c = &s->prog.cl[clause];
    return c->key1 ? c->key1 | (u32)c->key1_builtin << 8 | (u32)c->key1_str << 24 : 0;
}
