/* The probe VM's interpreter: runs one clause of a verified program
 * (verify.c guarantees known opcodes, registers and indices in range and
 * forward jumps inside the clause, so the loop checks none of that and
 * ends within the clause's length).  Every load of kernel memory goes
 * through c->load; strings live in VM-owned areas (vmstr.c); records are
 * staged in c->stage and only committed by the engine when the clause
 * returns.  Any fault aborts the clause with its kind, pc and address.
 * Called by the engine with interrupts off.  Pure: also built for the
 * host. */
#include "lib.h"
#include "vm.h"

#define VM_HDR ((u32)sizeof(struct isa_rec_hdr))

/* Abort: remember why and where. */
static u32 vm_fault(struct vm_ctx *c, u32 fault, u32 pc, u64 addr)
{
    c->fault = fault;
    c->fault_pc = pc;
    c->fault_addr = addr;
    c->stage_len = 0;
    c->exited = false;
    return fault;
}

/* A string operand as a VM-owned string, else BADSTR. */
static const char *vm_arg_str(struct vm_ctx *c, u64 addr, u32 *len, u32 *fault)
{
    const char *s = vm_str(c, addr, len);
    if (!s)
        *fault = ISA_F_BADSTR;
    return s;
}

/* rd = builtin id. */
static u64 vm_builtin(struct vm_ctx *c, u32 id, u32 *fault)
{
    switch (id) {
    case ISA_B_PROBEID: return c->probe;
    case ISA_B_EPID: return c->epid;
    case ISA_B_NARGS: return c->nargs;
    case ISA_B_CPU: return 0;
    case ISA_B_THREAD: case ISA_B_PROBEPROV: case ISA_B_PROBEMOD:
    case ISA_B_PROBEFUNC: case ISA_B_PROBENAME:
        return vm_str_kernel(c, (const char *)(uintptr_t)c->builtin(c->env, id), fault);
    default:
        return c->builtin(c->env, id);
    }
}

/* Write one value at p in the tuple and record encoding: an integer as 8
 * bytes, a string (s, len) as a u16 length and the bytes, padded to need
 * (8-byte multiple).  Called by vm_tpush and vm_recv once they checked
 * the room. */
static void vm_put_value(u8 *p, u64 v, const char *s, u32 len, u32 need)
{
    if (s) {
        u16 l16 = (u16)len;
        __builtin_memcpy(p, &l16, 2);
        memcpy(p + 2, s, len);
        memset(p + 2 + len, 0, need - 2 - len);
    } else {
        __builtin_memcpy(p, &v, 8);
    }
}

/* Append a tuple value: an integer (8 bytes) or a string (u16 length +
 * bytes, padded to 8). */
static __attribute__((noinline)) u32 vm_tpush(struct vm_ctx *c, u64 v, bool str)
{
    u32 len = 8, fault = 0;
    const char *s = NULL;
    if (str && !(s = vm_arg_str(c, v, &len, &fault)))
        return fault;
    u32 need = str ? (u32)ALIGN_UP(2 + len, 8) : 8;
    if (c->tuple_n >= ISA_MAX_TUPLE || need > PROBE_TUPLE_BYTES - c->tuple_len)
        return ISA_F_TUPLE;
    vm_put_value(c->tuple + c->tuple_len, v, s, len, need);
    c->tuple_len += need;
    c->tuple_n++;
    return 0;
}

/* Write the kernel stack at the firing (at most n frames, n clamped to
 * 1..MAX_STACK_FRAMES) at p in the STACK encoding: u64 frame count (its
 * low 16 bits are the u16 count, the rest zero), then the pcs.  Returns
 * the bytes written, 0 when more than room.  For TPUSH imm 2 and RECK. */
static __attribute__((noinline)) u32 vm_stack_put(struct vm_ctx *c, u64 n, u8 *p, u32 room)
{
    u64 pcs[ISA_MAX_STACK_FRAMES];
    u32 max = n < 1 ? 1 : n > ISA_MAX_STACK_FRAMES ? ISA_MAX_STACK_FRAMES : (u32)n;
    u64 got = c->stack ? c->stack(c->env, pcs, max) : 0;
    u32 need = 8 + 8 * (u32)got;
    if (need > room)
        return 0;
    __builtin_memcpy(p, &got, 8);
    memcpy(p + 8, pcs, 8 * (u32)got);
    return need;
}

/* TPUSH imm 2: append the stack (at most n frames) to the tuple key. */
static u32 vm_tpush_stack(struct vm_ctx *c, u64 n)
{
    if (c->tuple_n >= ISA_MAX_TUPLE)
        return ISA_F_TUPLE;
    u32 w = vm_stack_put(c, n, c->tuple + c->tuple_len, PROBE_TUPLE_BYTES - c->tuple_len);
    if (!w)
        return ISA_F_TUPLE;
    c->tuple_len += w;
    c->tuple_n++;
    return 0;
}

/* TPUSH of the newest string (s, len: c->last_str): vm_tpush without the
 * ownership check or a length scan, inline in vm_run.  The padding is
 * zeroed first (a whole word), then the length and the bytes. */
static inline u32 vm_tpush_last(struct vm_ctx *c, const u8 *s, u32 len)
{
    u32 need = (u32)ALIGN_UP(2 + len, 8);
    if (c->tuple_n >= ISA_MAX_TUPLE || need > PROBE_TUPLE_BYTES - c->tuple_len)
        return ISA_F_TUPLE;
    u8 *p = c->tuple + c->tuple_len;
    u64 zero = 0;
    u16 l16 = (u16)len;
    __builtin_memcpy(p + need - 8, &zero, 8);
    __builtin_memcpy(p, &l16, 2);
    vm_copy(p + 2, s, len);
    c->tuple_len += need;
    c->tuple_n++;
    return 0;
}

/* Copy the string at v into a string variable's slot (strsize bytes). */
static u32 vm_str_set(struct vm_ctx *c, u8 *slot, u64 v)
{
    u32 len, fault = 0;
    const char *s = vm_arg_str(c, v, &len, &fault);
    if (!s)
        return fault;
    memmove(slot, s, len);
    slot[len] = 0;
    return 0;
}

/* A string variable's value: a scratch copy, so that a later store to
 * the variable (or freeing it) does not change what was loaded. */
static u32 vm_str_load(struct vm_ctx *c, const u8 *slot, u64 *rd)
{
    u32 len;
    const char *s = vm_str(c, (u64)(uintptr_t)slot, &len);
    char *d = s ? vm_str_new(c, s, len) : NULL;
    if (!d)
        return ISA_F_SCRATCH;
    *rd = (u64)(uintptr_t)d;
    return 0;
}

/* Global and clause-local variables: LDG/LDL (store false) into *rd, or
 * STG/STL (store true) of v. */
static u32 vm_var(struct vm_ctx *c, u32 var, bool store, u64 v, u64 *rd)
{
    const struct vm_prog *p = c->prog;
    u8 *area = p->vars[var].scope == ISA_SC_GLOBAL ? c->globals : c->locals;
    u8 *slot = area + p->var_off[var];
    if (p->vars[var].kind == ISA_VK_STRING) {
        if (store)
            return vm_str_set(c, slot, v);
        return vm_str_load(c, slot, rd);
    } else if (store) {
        __builtin_memcpy(slot, &v, 8);
    } else {
        __builtin_memcpy(rd, slot, 8);
    }
    return 0;
}

/* Dynamic variables: LDT/STT keyed by the thread id, LDA/STA by the
 * tuple (which they empty).  Storing 0 or "" frees. */
static u32 vm_dyn(struct vm_ctx *c, u32 var, bool store, u64 v, u64 *rd)
{
    const struct isa_prog_var *pv = &c->prog->vars[var];
    bool str = pv->kind == ISA_VK_STRING;
    u64 tid;
    const u8 *key = c->tuple;
    u32 keylen = c->tuple_len, fault = 0;
    if (pv->scope == ISA_SC_THREAD) {
        tid = c->builtin(c->env, ISA_B_TID);
        key = (const u8 *)&tid;
        keylen = 8;
    } else if (c->tuple_n != pv->nkeys) {
        return ISA_F_TUPLE;
    } else {
        c->tuple_len = c->tuple_n = 0;  /* the key stays in c->tuple meanwhile */
    }
    if (!store) {
        u8 *val = dyn_find(c->dyn, var, key, keylen);
        if (str)
            return vm_str_load(c, val ? val : (u8 *)c->nul, rd);
        if (val)
            __builtin_memcpy(rd, val, 8);
        else
            *rd = 0;
        return 0;
    }
    u32 len = 0;
    if (str && !vm_arg_str(c, v, &len, &fault))
        return fault;
    if (str ? len == 0 : v == 0) {
        dyn_delete(c->dyn, var, key, keylen);
        return 0;
    }
    u8 *val = dyn_store(c->dyn, var, key, keylen, str ? c->prog->strsize : 8);
    if (!val)
        return 0;                       /* dropped and counted */
    if (str)
        return vm_str_set(c, val, v);
    __builtin_memcpy(val, &v, 8);
    return 0;
}

/* AGG past the fast path (vm_run's l_agg): fold v into aggregation agg
 * under the tuple (then emptied); a key count other than the
 * aggregation's is a fault.  The same key as the last update
 * (agg_cached) skips the hash table, which counts a drop itself. */
static __attribute__((noinline)) u32 vm_agg(struct vm_ctx *c, u32 agg, u64 v)
{
    const struct isa_prog_agg *a = &c->prog->aggs[agg];
    if (c->tuple_n != a->nkeys)
        return ISA_F_TUPLE;
    u64 *w = a->func == ISA_AGG_COUNT ? NULL :     /* l_agg looked already */
             agg_cached(c->agg, agg, c->tuple, c->tuple_len);
    if (w)
        agg_apply(a, w, v);
    else
        agg_update(c->agg, a, (u16)agg, c->tuple, c->tuple_len, v);
    c->tuple_len = c->tuple_n = 0;
    return 0;
}

/* The firing's timestamp, read once; see vm.h. */
u64 vm_timestamp(struct vm_ctx *c)
{
    if (!c->timestamp)
        c->timestamp = c->builtin(c->env, ISA_B_TIMESTAMP);
    return c->timestamp;
}

/* Start a record with descriptor desc at the staging area's end. */
static u32 vm_recb(struct vm_ctx *c, u32 desc)
{
    if (c->rec_open != VM_NO_REC || VM_HDR > c->stage_size - c->stage_len)
        return ISA_F_RECORD;
    struct isa_rec_hdr h = { 0, (u16)desc, c->probe, vm_timestamp(c) };
    __builtin_memcpy(c->stage + c->stage_len, &h, sizeof h);
    c->rec_open = c->stage_len;
    c->rec_end = c->stage_len + VM_HDR;
    return 0;
}

/* Room for n more bytes in the open record (REC_MAX, the staging area). */
static bool vm_rec_room(struct vm_ctx *c, u32 n)
{
    return c->rec_open != VM_NO_REC && c->rec_end - c->rec_open + n <= ISA_REC_MAX &&
           n <= c->stage_size - c->rec_end;
}

/* RECV (str false: 8 bytes of v) or RECS (the string at v). */
static u32 vm_recv(struct vm_ctx *c, u64 v, bool str)
{
    u32 len = 0, fault = 0;
    const char *s = NULL;
    if (str && !(s = vm_arg_str(c, v, &len, &fault)))
        return fault;
    u32 need = str ? (u32)ALIGN_UP(2 + len, 8) : 8;
    if (!vm_rec_room(c, need))
        return ISA_F_RECORD;
    vm_put_value(c->stage + c->rec_end, v, s, len, need);
    c->rec_end += need;
    return 0;
}

/* RECK: append the stack (at most n frames) to the open record. */
static u32 vm_reck(struct vm_ctx *c, u64 n)
{
    if (c->rec_open == VM_NO_REC)
        return ISA_F_RECORD;
    u32 room = MIN(ISA_REC_MAX - (c->rec_end - c->rec_open), c->stage_size - c->rec_end);
    u32 w = vm_stack_put(c, n, c->stage + c->rec_end, room);
    if (!w)
        return ISA_F_RECORD;
    c->rec_end += w;
    return 0;
}

/* RECE: close the open record; it is now staged. */
static u32 vm_rece(struct vm_ctx *c)
{
    if (c->rec_open == VM_NO_REC)
        return ISA_F_RECORD;
    u16 size = (u16)(c->rec_end - c->rec_open);
    __builtin_memcpy(c->stage + c->rec_open, &size, 2);
    c->stage_len = c->rec_end;
    c->rec_open = VM_NO_REC;
    return 0;
}

/* EXIT: stage a REC_EXIT record with the code. */
static u32 vm_exit(struct vm_ctx *c, u64 code)
{
    u32 f = vm_recb(c, ISA_REC_EXIT);
    if (!f)
        f = vm_recv(c, code, false);
    if (!f)
        f = vm_rece(c);
    if (!f) {
        c->exited = true;
        c->exit_code = code;
    }
    return f;
}

/* The instructions that call out and are rarer on the hot path: variables,
 * string records, exit, helpers (vm_run handles the rest itself). */
static __attribute__((noinline)) u32 vm_slow(struct vm_ctx *c, const struct isa_insn *in,
                                             u64 *addr)
{
    u64 *r = c->regs;
    u32 f = 0;
    switch (in->op) {
    case ISA_OP_LDG: case ISA_OP_LDL: return vm_var(c, (u32)in->imm, false, 0, &r[in->rd]);
    case ISA_OP_STG: case ISA_OP_STL: return vm_var(c, (u32)in->imm, true, r[in->ra], NULL);
    case ISA_OP_LDT: case ISA_OP_LDA: return vm_dyn(c, (u32)in->imm, false, 0, &r[in->rd]);
    case ISA_OP_STT: case ISA_OP_STA: return vm_dyn(c, (u32)in->imm, true, r[in->ra], NULL);
    case ISA_OP_RECS: return vm_recv(c, r[in->ra], true);
    case ISA_OP_RECK: return vm_reck(c, r[in->ra]);
    case ISA_OP_EXIT: return vm_exit(c, r[in->ra]);
    case ISA_OP_CALL: r[in->rd] = vm_helper(c, (u32)in->imm, &r[in->ra], &f, addr); return f;
    }
    return ISA_F_ILLOP;
}

/* Reset the per-run state of clause cl: the registers it may read before
 * writing them and its clause-locals if it reads any (the verifier worked
 * both out: struct vm_clause), scratch, tuple, records.  The fault's pc
 * and address are set with the fault (vm_fault) and mean nothing
 * otherwise; c->nul is never written (vm_str hands it out read-only). */
static inline void vm_reset(struct vm_ctx *c, const struct vm_clause *cl)
{
    for (u32 m = cl->zero; m; m &= m - 1)
        c->regs[__builtin_ctz(m)] = 0;
    if (__builtin_expect(cl->locals, 0)) {
        const struct vm_prog *p = c->prog;
        u64 zero = 0;
        for (u32 i = 0; i < p->nlocal_vars; i++)
            __builtin_memcpy(c->locals + p->local_off[i], &zero, 8);
    }
    c->scratch_used = c->stage_len = c->tuple_len = c->tuple_n = 0;
    c->last_str = 0;
    c->nborrowed = 0;
    c->rec_open = VM_NO_REC;
    c->fault = ISA_F_NONE;
    c->exited = false;
}

/* Sign- or zero-extend v as EXT's imm says. */
static u64 vm_ext(u64 v, i32 imm)
{
    bool sgn = imm & 0x100;
    switch (imm & 0xff) {
    case 8: return sgn ? (u64)(i64)(int8_t)v : (u8)v;
    case 16: return sgn ? (u64)(i64)(int16_t)v : (u16)v;
    default: return sgn ? (u64)(i64)(int32_t)v : (u32)v;
    }
}

/* Run clause `clause`; see vm.h.  Direct-threaded: each handler ends by
 * jumping through vm_ops to the next instruction's handler (computed
 * goto), with no bounds check (the verifier admits known opcodes only;
 * any other byte goes to the slow path, which refuses it as ILLOP) and no
 * operand decoded that the instruction does not use.  Runs at every
 * firing: this is the hot path. */
#define NEXT do { in++; goto *vm_ops[in->op]; } while (0)
#define PC ((u32)(in - code))
#define RD r[in->rd]
#define RA r[in->ra]
#define RB r[in->rb]
#define TRY(call) do { if ((f = (call))) return vm_fault(c, f, PC, 0); } while (0)
u32 vm_run(struct vm_ctx *c, u32 clause)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
    static const void *const vm_ops[256] = {
        [0 ... 255] = &&l_slow,
        [ISA_OP_NOP] = &&l_nop, [ISA_OP_RET] = &&l_ret, [ISA_OP_LDI] = &&l_ldi,
        [ISA_OP_LDIH] = &&l_ldih, [ISA_OP_MOV] = &&l_mov, [ISA_OP_ADD] = &&l_add,
        [ISA_OP_SUB] = &&l_sub, [ISA_OP_MUL] = &&l_mul, [ISA_OP_UDIV] = &&l_udiv,
        [ISA_OP_SDIV] = &&l_sdiv, [ISA_OP_UMOD] = &&l_umod, [ISA_OP_SMOD] = &&l_smod,
        [ISA_OP_AND] = &&l_and, [ISA_OP_OR] = &&l_or, [ISA_OP_XOR] = &&l_xor,
        [ISA_OP_SHL] = &&l_shl, [ISA_OP_LSHR] = &&l_lshr, [ISA_OP_ASHR] = &&l_ashr,
        [ISA_OP_NEG] = &&l_neg, [ISA_OP_NOT] = &&l_not, [ISA_OP_LNOT] = &&l_lnot,
        [ISA_OP_EQ] = &&l_eq, [ISA_OP_NE] = &&l_ne, [ISA_OP_ULT] = &&l_ult,
        [ISA_OP_SLT] = &&l_slt, [ISA_OP_ULE] = &&l_ule, [ISA_OP_SLE] = &&l_sle,
        [ISA_OP_EXT] = &&l_ext, [ISA_OP_JMP] = &&l_jmp, [ISA_OP_JZ] = &&l_jz,
        [ISA_OP_JNZ] = &&l_jnz, [ISA_OP_LD] = &&l_ld, [ISA_OP_ARG] = &&l_arg,
        [ISA_OP_STR] = &&l_str, [ISA_OP_TCLR] = &&l_tclr, [ISA_OP_TPUSH] = &&l_tpush,
        [ISA_OP_AGG] = &&l_agg, [ISA_OP_RECB] = &&l_recb, [ISA_OP_RECV] = &&l_recv,
        [ISA_OP_RECE] = &&l_rece, [ISA_OP_LDB] = &&l_ldb,
    };
#pragma GCC diagnostic pop
    const struct vm_clause *cl = &c->prog->cl[clause];
    const struct isa_insn *code = c->prog->code, *in = code + cl->start;
    u64 *r = c->regs, addr, v;
    u32 f;
    vm_reset(c, cl);
    goto *vm_ops[in->op];
l_nop: NEXT;
l_ret:
    if (c->rec_open != VM_NO_REC)
        return vm_fault(c, ISA_F_RECORD, PC, 0);
    return ISA_F_NONE;
l_ldi: RD = (u64)(i64)in->imm; NEXT;
l_ldih: RD = (u32)RD | (u64)(u32)in->imm << 32; NEXT;
l_mov: RD = RA; NEXT;
l_add: RD = RA + RB; NEXT;
l_sub: RD = RA - RB; NEXT;
l_mul: RD = RA * RB; NEXT;
l_udiv: if (!RB) goto divzero; RD = RA / RB; NEXT;
l_umod: if (!RB) goto divzero; RD = RA % RB; NEXT;
l_sdiv:
    if (!RB)
        goto divzero;
    RD = (i64)RA == INT64_MIN && (i64)RB == -1 ? RA : (u64)((i64)RA / (i64)RB);
    NEXT;
l_smod:
    if (!RB)
        goto divzero;
    RD = (i64)RA == INT64_MIN && (i64)RB == -1 ? 0 : (u64)((i64)RA % (i64)RB);
    NEXT;
l_and: RD = RA & RB; NEXT;
l_or: RD = RA | RB; NEXT;
l_xor: RD = RA ^ RB; NEXT;
l_shl: RD = RA << (RB & 63); NEXT;
l_lshr: RD = RA >> (RB & 63); NEXT;
l_ashr: RD = (u64)((i64)RA >> (RB & 63)); NEXT;
l_neg: RD = 0 - RA; NEXT;
l_not: RD = ~RA; NEXT;
l_lnot: RD = RA == 0; NEXT;
l_eq: RD = RA == RB; NEXT;
l_ne: RD = RA != RB; NEXT;
l_ult: RD = RA < RB; NEXT;
l_slt: RD = (i64)RA < (i64)RB; NEXT;
l_ule: RD = RA <= RB; NEXT;
l_sle: RD = (i64)RA <= (i64)RB; NEXT;
l_ext: RD = vm_ext(RA, in->imm); NEXT;
l_jmp: in += in->imm; NEXT;
l_jz: if (!RA) in += in->imm; NEXT;
l_jnz: if (RA) in += in->imm; NEXT;
l_ld:
    v = 0;
    addr = RA + (u64)(i64)in->imm;
    if (!c->load(c->env, addr, in->rb, &v))
        return vm_fault(c, ISA_F_BADADDR, PC, addr);
    RD = v;
    NEXT;
l_ldb:
    f = 0;
    v = vm_builtin(c, (u32)in->imm, &f);
    if (f)
        return vm_fault(c, f, PC, 0);
    RD = v;
    NEXT;
l_arg: RD = (u32)in->imm < c->nargs ? c->args[in->imm] : 0; NEXT;
l_str: RD = (u64)(uintptr_t)(c->prog->strtab + in->imm); NEXT;
l_tclr: c->tuple_len = c->tuple_n = 0; NEXT;
l_tpush:
    if (in->imm == 1 && RA && RA == c->last_str)
        TRY(vm_tpush_last(c, (const u8 *)(uintptr_t)RA, c->last_len));
    else if (in->imm == 2)
        TRY(vm_tpush_stack(c, RA));
    else
        TRY(vm_tpush(c, RA, in->imm == 1));
    NEXT;
l_agg: {
    /* count() of the same key as the aggregation's last update: one
     * increment (vm_agg does everything else) */
    const struct agg_last *l = &c->agg->last[in->imm][agg_slot(c->tuple, c->tuple_len)];
    if (__builtin_expect(l->w && l->count && c->tuple_n == l->nkeys &&
                         c->tuple_len == l->keylen &&
                         agg_key_same(l->key, c->tuple, l->keylen), 1)) {
        l->w[0]++;
        c->tuple_len = c->tuple_n = 0;
        NEXT;
    }
    TRY(vm_agg(c, (u32)in->imm, RA));
    NEXT;
}
l_recb: TRY(vm_recb(c, (u32)in->imm)); NEXT;
l_recv: TRY(vm_recv(c, RA, false)); NEXT;
l_rece: TRY(vm_rece(c)); NEXT;
l_slow:
    addr = 0;
    if ((f = vm_slow(c, in, &addr)))
        return vm_fault(c, f, PC, addr);
    NEXT;
divzero:
    return vm_fault(c, ISA_F_DIVZERO, PC, 0);
}
