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

/* Append a tuple value: an integer (8 bytes) or a string (u16 length +
 * bytes, padded to 8). */
static u32 vm_tpush(struct vm_ctx *c, u64 v, bool str)
{
    u32 len = 8, fault = 0;
    const char *s = NULL;
    if (str && !(s = vm_arg_str(c, v, &len, &fault)))
        return fault;
    u32 need = str ? (u32)ALIGN_UP(2 + len, 8) : 8;
    if (c->tuple_n >= ISA_MAX_TUPLE || need > PROBE_TUPLE_BYTES - c->tuple_len)
        return ISA_F_TUPLE;
    u8 *p = c->tuple + c->tuple_len;
    if (str) {
        u16 l16 = (u16)len;
        memcpy(p, &l16, 2);
        memcpy(p + 2, s, len);
        memset(p + 2 + len, 0, need - 2 - len);
    } else {
        memcpy(p, &v, 8);
    }
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
        memcpy(slot, &v, 8);
    } else {
        memcpy(rd, slot, 8);
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
            memcpy(rd, val, 8);
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
    memcpy(val, &v, 8);
    return 0;
}

/* AGG: fold v into aggregation agg under the tuple (then emptied). */
static u32 vm_agg(struct vm_ctx *c, u32 agg, u64 v)
{
    const struct isa_prog_agg *a = &c->prog->aggs[agg];
    if (c->tuple_n != a->nkeys)
        return ISA_F_TUPLE;
    agg_update(c->agg, a, (u16)agg, c->tuple, c->tuple_len, v);   /* a drop is counted */
    c->tuple_len = c->tuple_n = 0;
    return 0;
}

/* Start a record with descriptor desc at the staging area's end. */
static u32 vm_recb(struct vm_ctx *c, u32 desc)
{
    if (c->rec_open != VM_NO_REC || VM_HDR > c->stage_size - c->stage_len)
        return ISA_F_RECORD;
    struct isa_rec_hdr h = { 0, (u16)desc, c->probe, c->timestamp };
    memcpy(c->stage + c->stage_len, &h, sizeof h);
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
    u8 *p = c->stage + c->rec_end;
    if (str) {
        u16 l16 = (u16)len;
        memcpy(p, &l16, 2);
        memcpy(p + 2, s, len);
        memset(p + 2 + len, 0, need - 2 - len);
    } else {
        memcpy(p, &v, 8);
    }
    c->rec_end += need;
    return 0;
}

/* RECE: close the open record; it is now staged. */
static u32 vm_rece(struct vm_ctx *c)
{
    if (c->rec_open == VM_NO_REC)
        return ISA_F_RECORD;
    u16 size = (u16)(c->rec_end - c->rec_open);
    memcpy(c->stage + c->rec_open, &size, 2);
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

/* The instructions that call out: variables, tuples, aggregations,
 * records, helpers.  Kept out of vm_run's loop so the loop stays small. */
static __attribute__((noinline)) u32 vm_slow(struct vm_ctx *c, const struct isa_insn *in,
                                             u64 *addr)
{
    u64 *r = c->regs;
    u32 f = 0;
    switch (in->op) {
    case ISA_OP_LDB: r[in->rd] = vm_builtin(c, (u32)in->imm, &f); return f;
    case ISA_OP_LDG: case ISA_OP_LDL: return vm_var(c, (u32)in->imm, false, 0, &r[in->rd]);
    case ISA_OP_STG: case ISA_OP_STL: return vm_var(c, (u32)in->imm, true, r[in->ra], NULL);
    case ISA_OP_LDT: case ISA_OP_LDA: return vm_dyn(c, (u32)in->imm, false, 0, &r[in->rd]);
    case ISA_OP_STT: case ISA_OP_STA: return vm_dyn(c, (u32)in->imm, true, r[in->ra], NULL);
    case ISA_OP_TPUSH: return vm_tpush(c, r[in->ra], in->imm == 1);
    case ISA_OP_AGG: return vm_agg(c, (u32)in->imm, r[in->ra]);
    case ISA_OP_RECB: return vm_recb(c, (u32)in->imm);
    case ISA_OP_RECV: return vm_recv(c, r[in->ra], false);
    case ISA_OP_RECS: return vm_recv(c, r[in->ra], true);
    case ISA_OP_RECE: return vm_rece(c);
    case ISA_OP_EXIT: return vm_exit(c, r[in->ra]);
    case ISA_OP_CALL: r[in->rd] = vm_helper(c, (u32)in->imm, &r[in->ra], &f, addr); return f;
    }
    return ISA_F_ILLOP;
}

/* Reset the per-run state: registers, locals, scratch, tuple, records. */
static void vm_reset(struct vm_ctx *c)
{
    const struct vm_prog *p = c->prog;
    memset(c->regs, 0, sizeof c->regs);
    for (u32 i = 0; i < p->nlocal_vars; i++)
        memset(c->locals + p->local_off[i], 0, 8);
    memset(c->nul, 0, sizeof c->nul);
    c->scratch_used = c->stage_len = c->tuple_len = c->tuple_n = 0;
    c->rec_open = VM_NO_REC;
    c->fault = ISA_F_NONE;
    c->fault_pc = 0;
    c->fault_addr = 0;
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

/* Run clause `clause`; see vm.h. */
u32 vm_run(struct vm_ctx *c, u32 clause)
{
    const struct isa_insn *code = c->prog->code;
    u64 *r = c->regs, addr = 0;
    u32 pc = c->prog->clauses[clause].start, f;
    vm_reset(c);
    for (;; pc++) {
        const struct isa_insn *in = &code[pc];
        u64 a = r[in->ra], b = r[in->rb];
        switch (in->op) {
        case ISA_OP_NOP: break;
        case ISA_OP_RET:
            if (c->rec_open != VM_NO_REC)
                return vm_fault(c, ISA_F_RECORD, pc, 0);
            return ISA_F_NONE;
        case ISA_OP_LDI: r[in->rd] = (u64)(i64)in->imm; break;
        case ISA_OP_LDIH: r[in->rd] = (u32)r[in->rd] | (u64)(u32)in->imm << 32; break;
        case ISA_OP_MOV: r[in->rd] = a; break;
        case ISA_OP_ADD: r[in->rd] = a + b; break;
        case ISA_OP_SUB: r[in->rd] = a - b; break;
        case ISA_OP_MUL: r[in->rd] = a * b; break;
        case ISA_OP_UDIV:
        case ISA_OP_UMOD:
            if (!b)
                return vm_fault(c, ISA_F_DIVZERO, pc, 0);
            r[in->rd] = in->op == ISA_OP_UDIV ? a / b : a % b;
            break;
        case ISA_OP_SDIV:
        case ISA_OP_SMOD:
            if (!b)
                return vm_fault(c, ISA_F_DIVZERO, pc, 0);
            if ((i64)a == INT64_MIN && (i64)b == -1)
                r[in->rd] = in->op == ISA_OP_SDIV ? a : 0;
            else
                r[in->rd] = in->op == ISA_OP_SDIV ? (u64)((i64)a / (i64)b) :
                                                     (u64)((i64)a % (i64)b);
            break;
        case ISA_OP_AND: r[in->rd] = a & b; break;
        case ISA_OP_OR: r[in->rd] = a | b; break;
        case ISA_OP_XOR: r[in->rd] = a ^ b; break;
        case ISA_OP_SHL: r[in->rd] = a << (b & 63); break;
        case ISA_OP_LSHR: r[in->rd] = a >> (b & 63); break;
        case ISA_OP_ASHR: r[in->rd] = (u64)((i64)a >> (b & 63)); break;
        case ISA_OP_NEG: r[in->rd] = 0 - a; break;
        case ISA_OP_NOT: r[in->rd] = ~a; break;
        case ISA_OP_LNOT: r[in->rd] = a == 0; break;
        case ISA_OP_EQ: r[in->rd] = a == b; break;
        case ISA_OP_NE: r[in->rd] = a != b; break;
        case ISA_OP_ULT: r[in->rd] = a < b; break;
        case ISA_OP_SLT: r[in->rd] = (i64)a < (i64)b; break;
        case ISA_OP_ULE: r[in->rd] = a <= b; break;
        case ISA_OP_SLE: r[in->rd] = (i64)a <= (i64)b; break;
        case ISA_OP_EXT: r[in->rd] = vm_ext(a, in->imm); break;
        case ISA_OP_JMP: pc += (u32)in->imm; break;
        case ISA_OP_JZ: if (!a) pc += (u32)in->imm; break;
        case ISA_OP_JNZ: if (a) pc += (u32)in->imm; break;
        case ISA_OP_LD: {
            u64 v = 0;
            addr = a + (u64)(i64)in->imm;
            if (!c->load(c->env, addr, in->rb, &v))
                return vm_fault(c, ISA_F_BADADDR, pc, addr);
            r[in->rd] = v;
            break;
        }
        case ISA_OP_ARG: r[in->rd] = (u32)in->imm < c->nargs ? c->args[in->imm] : 0; break;
        case ISA_OP_STR: r[in->rd] = (u64)(uintptr_t)(c->prog->strtab + in->imm); break;
        case ISA_OP_TCLR: c->tuple_len = c->tuple_n = 0; break;
        default:
            addr = 0;
            if ((f = vm_slow(c, in, &addr)))
                return vm_fault(c, f, pc, addr);
        }
    }
}
