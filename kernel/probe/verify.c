/* The probe VM's verifier: checks a program container once, when
 * probe_load is called, against every rule of probes/isa.py, so that the
 * interpreter (vm.c) never meets an unknown opcode, a register or table
 * index out of range, a backward jump or a jump out of its clause.  Every
 * clause therefore terminates within its length.  A refusal names the pc
 * (program-wide, or -1 for the container) and a short reason, which the
 * host maps back to the script.  Pure: also built for the host. */
#include "lib.h"
#include "vm.h"

/* What an opcode's fields mean (verify_ops). */
#define V_RD 0x01               /* rd is a register */
#define V_RA 0x02               /* ra is a register */
#define V_RB 0x04               /* rb is a register */
#define V_IMM 0x08              /* imm is used */
#define V_OK 0x80               /* a known opcode */

/* What its imm indexes, checked by verify_imm. */
enum verify_kind {
    VK_NONE, VK_JUMP, VK_LD, VK_LDB, VK_ARG, VK_STR, VK_EXT, VK_VAR,
    VK_TPUSH, VK_AGG, VK_RECB, VK_CALL,
};

struct verify_op {
    u8 flags;
    u8 kind;
    u8 scope;                   /* VK_VAR: the scope the opcode needs */
};

#define OP(o, f, k) [ISA_OP_##o] = { (f) | V_OK, (k), 0 }
#define VAR(o, f, s) [ISA_OP_##o] = { (f) | V_IMM | V_OK, VK_VAR, (s) }
#define BIN(o) OP(o, V_RD | V_RA | V_RB, VK_NONE)

static const struct verify_op verify_ops[256] = {
    OP(NOP, 0, VK_NONE), OP(RET, 0, VK_NONE),
    OP(LDI, V_RD | V_IMM, VK_NONE), OP(LDIH, V_RD | V_IMM, VK_NONE),
    OP(MOV, V_RD | V_RA, VK_NONE),
    BIN(ADD), BIN(SUB), BIN(MUL), BIN(UDIV), BIN(SDIV), BIN(UMOD), BIN(SMOD),
    BIN(AND), BIN(OR), BIN(XOR), BIN(SHL), BIN(LSHR), BIN(ASHR),
    OP(NEG, V_RD | V_RA, VK_NONE), OP(NOT, V_RD | V_RA, VK_NONE),
    OP(LNOT, V_RD | V_RA, VK_NONE),
    BIN(EQ), BIN(NE), BIN(ULT), BIN(SLT), BIN(ULE), BIN(SLE),
    OP(EXT, V_RD | V_RA | V_IMM, VK_EXT),
    OP(JMP, V_IMM, VK_JUMP), OP(JZ, V_RA | V_IMM, VK_JUMP), OP(JNZ, V_RA | V_IMM, VK_JUMP),
    OP(LD, V_RD | V_RA | V_IMM, VK_LD),
    OP(LDB, V_RD | V_IMM, VK_LDB), OP(ARG, V_RD | V_IMM, VK_ARG),
    OP(STR, V_RD | V_IMM, VK_STR),
    VAR(LDG, V_RD, ISA_SC_GLOBAL), VAR(STG, V_RA, ISA_SC_GLOBAL),
    VAR(LDT, V_RD, ISA_SC_THREAD), VAR(STT, V_RA, ISA_SC_THREAD),
    VAR(LDL, V_RD, ISA_SC_CLAUSE), VAR(STL, V_RA, ISA_SC_CLAUSE),
    VAR(LDA, V_RD, ISA_SC_ASSOC), VAR(STA, V_RA, ISA_SC_ASSOC),
    OP(TCLR, 0, VK_NONE), OP(TPUSH, V_RA | V_IMM, VK_TPUSH),
    OP(AGG, V_RA | V_IMM, VK_AGG),
    OP(RECB, V_IMM, VK_RECB), OP(RECV, V_RA, VK_NONE), OP(RECS, V_RA, VK_NONE),
    OP(RECE, 0, VK_NONE), OP(EXIT, V_RA, VK_NONE), OP(RECK, V_RA, VK_NONE),
    OP(CALL, V_RD | V_RA | V_IMM, VK_CALL),
};

static const u8 verify_nargs[ISA_H_COUNT_] = ISA_HELPER_NARGS;

/* Fill *e: msg with its one '%' replaced by num (hex when hex). */
static bool verify_fail(struct probe_verr *e, i64 pc, const char *msg, u64 num, bool hex)
{
    char digits[24];
    u32 nd = 0, o = 0;
    u64 base = hex ? 16 : 10;
    do {
        digits[nd++] = "0123456789abcdef"[num % base];
        num /= base;
    } while (num);
    e->pc = pc;
    for (; *msg && o < sizeof e->msg - 1; msg++) {
        if (*msg != '%') {
            e->msg[o++] = *msg;
            continue;
        }
        if (hex && o + 2 < sizeof e->msg - 1) {
            e->msg[o++] = '0';
            e->msg[o++] = 'x';
        }
        while (nd && o < sizeof e->msg - 1)
            e->msg[o++] = digits[--nd];
    }
    e->msg[o] = 0;
    return false;
}
#define FAIL(pc, msg) verify_fail(e, (pc), (msg), 0, false)
#define FAILN(pc, msg, n) verify_fail(e, (pc), (msg), (u64)(n), false)
#define FAILX(pc, msg, n) verify_fail(e, (pc), (msg), (u64)(n), true)

/* The header's counts against the caps and the container's length. */
static bool verify_header(const struct isa_prog_hdr *h, u32 len, struct probe_verr *e)
{
    if (h->magic != ISA_PROG_MAGIC)
        return FAILX(-1, "bad magic %", h->magic);
    if (h->version != ISA_PROG_VERSION)
        return FAILN(-1, "unsupported version %", h->version);
    if (h->flags || h->pad)
        return FAIL(-1, "nonzero reserved header field");
    if (h->ninsns == 0)
        return FAIL(-1, "empty program");
    if (h->ninsns > ISA_MAX_INSNS)
        return FAILN(-1, "program over % instructions", ISA_MAX_INSNS);
    if (h->nclauses == 0)
        return FAIL(-1, "no clauses");
    if (h->nclauses > ISA_MAX_CLAUSES)
        return FAILN(-1, "program over % clauses", ISA_MAX_CLAUSES);
    if (h->nvars > ISA_MAX_VARS)
        return FAILN(-1, "program over % variables", ISA_MAX_VARS);
    if (h->naggs > ISA_MAX_AGGS)
        return FAILN(-1, "program over % aggregations", ISA_MAX_AGGS);
    if (h->nrecdescs > ISA_MAX_RECDESCS)
        return FAILN(-1, "program over % record descriptors", ISA_MAX_RECDESCS);
    if (h->strtab_len > ISA_MAX_STRTAB)
        return FAILN(-1, "string table over % bytes", ISA_MAX_STRTAB);
    if (h->strsize < 16 || h->strsize > ISA_MAX_STRSIZE)
        return FAILN(-1, "strsize % out of range 16..1024", h->strsize);
    u64 want = sizeof *h + (u64)h->nclauses * sizeof(struct isa_prog_clause) +
               (u64)h->nvars * sizeof(struct isa_prog_var) +
               (u64)h->naggs * sizeof(struct isa_prog_agg) +
               (u64)h->ninsns * ISA_INSN_SIZE + h->strtab_len;
    if (want != len)
        return FAILN(-1, "container length mismatch: sections need % bytes", want);
    if (h->strtab_len && ((const char *)h)[len - 1] != 0)
        return FAIL(-1, "string table not NUL-terminated");
    return true;
}

/* Clause ranges: inside the code, not overlapping, each ending in RET,
 * together covering every instruction. */
static bool verify_clauses(const struct vm_prog *p, struct probe_verr *e)
{
    u64 covered = 0;
    for (u32 i = 0; i < p->nclauses; i++) {
        const struct isa_prog_clause *c = &p->clauses[i];
        if (c->flags)
            return FAILN(-1, "clause % has nonzero flags", i);
        if (c->len == 0 || c->start >= p->ninsns || c->len > p->ninsns - c->start)
            return FAILN(-1, "clause % range outside the code", i);
        if (p->code[c->start + c->len - 1].op != ISA_OP_RET)
            return FAILN(c->start + c->len - 1, "clause % does not end in RET", i);
        for (u32 j = 0; j < i; j++) {
            const struct isa_prog_clause *d = &p->clauses[j];
            if (c->start < d->start + d->len && d->start < c->start + c->len)
                return FAILN(c->start, "clause % overlaps another", i);
        }
        covered += c->len;
    }
    if (covered != p->ninsns)
        return FAIL(-1, "instructions outside every clause");
    return true;
}

/* Variables: known scope and kind; ASSOC has 1..MAX_TUPLE keys.  Lays
 * out globals and clause-locals (strings take strsize bytes). */
static bool verify_vars(struct vm_prog *p, struct probe_verr *e)
{
    p->globals_bytes = p->locals_bytes = p->nlocal_vars = 0;
    for (u32 i = 0; i < p->nvars; i++) {
        const struct isa_prog_var *v = &p->vars[i];
        if (v->scope > ISA_SC_ASSOC || v->kind > ISA_VK_STRING || v->pad)
            return FAILN(-1, "variable % malformed", i);
        if ((v->scope == ISA_SC_ASSOC) != (v->nkeys != 0) || v->nkeys > ISA_MAX_TUPLE)
            return FAILN(-1, "variable % has a bad key count", i);
        u32 sz = v->kind == ISA_VK_STRING ? (u32)ALIGN_UP(p->strsize, 8) : 8;
        p->var_off[i] = 0;
        if (v->scope == ISA_SC_GLOBAL) {
            p->var_off[i] = p->globals_bytes;
            p->globals_bytes += sz;
        } else if (v->scope == ISA_SC_CLAUSE) {
            p->var_off[i] = p->locals_bytes;
            p->local_off[p->nlocal_vars++] = p->locals_bytes;
            p->locals_bytes += sz;
        }
    }
    return true;
}

/* Aggregations: known function, key count, nwords as isa.agg_words,
 * lquantize bounds and step sane. */
static bool verify_aggs(const struct vm_prog *p, struct probe_verr *e)
{
    for (u32 i = 0; i < p->naggs; i++) {
        const struct isa_prog_agg *a = &p->aggs[i];
        u64 words;
        if (a->func > ISA_AGG_LQUANTIZE || a->pad || a->nkeys > ISA_MAX_TUPLE)
            return FAILN(-1, "aggregation % malformed", i);
        if (a->func == ISA_AGG_LQUANTIZE) {
            if (a->lq_step <= 0)
                return FAILN(-1, "aggregation % lquantize step must be > 0", i);
            if (a->lq_hi <= a->lq_lo)
                return FAILN(-1, "aggregation % lquantize high <= low", i);
            u64 levels = ((u64)a->lq_hi - (u64)a->lq_lo) / (u64)a->lq_step;
            if (levels == 0 || levels > ISA_MAX_LQ_LEVELS)
                return FAILN(-1, "aggregation % lquantize levels not 1..1024", i);
            words = levels + 2;
        } else {
            if (a->lq_lo || a->lq_hi || a->lq_step)
                return FAILN(-1, "aggregation % has lquantize fields", i);
            static const u8 w[] = {1, 1, 1, 1, 2, 4, ISA_QUANTIZE_BUCKETS};
            words = w[a->func];
        }
        if (a->nwords != words)
            return FAILN(-1, "aggregation % nwords mismatch", i);
    }
    return true;
}

/* A jump at pc of clause c: forward, and inside the clause. */
static bool verify_jump(const struct isa_prog_clause *c, u32 pc, i32 imm, struct probe_verr *e)
{
    if (imm < 0)
        return FAIL(pc, "backward jump");
    if ((u64)pc + 1 + (u64)imm >= (u64)c->start + c->len)
        return FAIL(pc, "jump out of clause");
    return true;
}

/* The operand an opcode's imm names, by kind. */
static bool verify_imm(const struct vm_prog *p, const struct isa_prog_clause *c, u32 pc,
                       struct probe_verr *e)
{
    const struct isa_insn *in = &p->code[pc];
    const struct verify_op *op = &verify_ops[in->op];
    i32 imm = in->imm;
    switch (op->kind) {
    case VK_JUMP:
        return verify_jump(c, pc, imm, e);
    case VK_LD:
        if (in->rb != 1 && in->rb != 2 && in->rb != 4 && in->rb != 8)
            return FAILN(pc, "load size % (not 1, 2, 4, 8)", in->rb);
        return true;
    case VK_LDB:
        return imm >= 0 && imm < ISA_B_COUNT_ ? true : FAILN(pc, "unknown builtin %", (u32)imm);
    case VK_ARG:
        return imm >= 0 && imm < VM_NARGS ? true : FAILN(pc, "argument % out of range", (u32)imm);
    case VK_STR:
        if (imm < 0 || (u32)imm >= p->strtab_len)
            return FAILN(pc, "string offset % outside the table", (u32)imm);
        return imm == 0 || p->strtab[imm - 1] == 0 ? true :
               FAILN(pc, "string offset % not at a string start", (u32)imm);
    case VK_EXT: {
        u32 w = (u32)imm & 0xff;
        if ((w != 8 && w != 16 && w != 32) || ((u32)imm & ~0x1ffu))
            return FAILX(pc, "bad extension %", (u32)imm);
        return true;
    }
    case VK_VAR:
        if (imm < 0 || (u32)imm >= p->nvars)
            return FAILN(pc, "unknown variable %", (u32)imm);
        return p->vars[imm].scope == op->scope ? true :
               FAILN(pc, "variable % has the wrong scope", (u32)imm);
    case VK_TPUSH:
        return imm >= 0 && imm <= 2 ? true : FAIL(pc, "tuple push of unknown type");
    case VK_AGG:
        return imm >= 0 && (u32)imm < p->naggs ? true :
               FAILN(pc, "unknown aggregation %", (u32)imm);
    case VK_RECB:
        return imm >= 0 && (u32)imm < p->nrecdescs ? true :
               FAILN(pc, "unknown record descriptor %", (u32)imm);
    case VK_CALL:
        if (imm < 0 || imm >= ISA_H_COUNT_)
            return FAILN(pc, "call to unknown helper %", (u32)imm);
        return in->ra + verify_nargs[imm] - 1 < ISA_NREGS ? true :
               FAILN(pc, "helper arguments past r%", ISA_NREGS - 1);
    }
    return true;
}

/* One instruction of clause c: known opcode, registers in range, unused
 * fields zero, its imm's target valid. */
static bool verify_insn(const struct vm_prog *p, const struct isa_prog_clause *c, u32 pc,
                        struct probe_verr *e)
{
    const struct isa_insn *in = &p->code[pc];
    const struct verify_op *op = &verify_ops[in->op];
    if (!(op->flags & V_OK))
        return FAILX(pc, "unknown opcode %", in->op);
    const u8 regs[3] = {in->rd, in->ra, in->rb};
    for (u32 i = 0; i < 3; i++) {
        bool used = op->flags & (V_RD << i);
        if (i == 2 && op->kind == VK_LD)
            continue;                   /* LD's rb is its size */
        if (used && regs[i] >= ISA_NREGS)
            return FAILN(pc, "bad register r%", regs[i]);
        if (!used && regs[i])
            return FAIL(pc, "nonzero unused operand");
    }
    if (!(op->flags & V_IMM) && in->imm)
        return FAIL(pc, "nonzero unused operand");
    return verify_imm(p, c, pc, e);
}

/* Raise p->nregs to cover the registers a verified instruction names
 * (a CALL's argument registers too; LD's rb is its size), so that the
 * interpreter zeroes only those at each firing. */
static void verify_nregs(struct vm_prog *p, const struct isa_insn *in)
{
    u32 hi = MAX(in->rd, in->ra);
    if (verify_ops[in->op].kind != VK_LD)
        hi = MAX(hi, in->rb);
    if (verify_ops[in->op].kind == VK_CALL && verify_nargs[in->imm])
        hi = MAX(hi, (u32)in->ra + verify_nargs[in->imm] - 1);
    p->nregs = MAX(p->nregs, hi + 1);
}

_Static_assert(ISA_NREGS <= 16, "struct vm_clause.zero is a u16 mask");
#define VERIFY_PENDING 16           /* forward jumps followed at once by verify_zero */

/* Registers instruction in reads (bit i: ri).  LDIH keeps rd's low half;
 * a CALL reads its declared arguments (at least ra). */
static u32 verify_reads(const struct isa_insn *in)
{
    const struct verify_op *op = &verify_ops[in->op];
    u32 m = 0;
    if (op->flags & V_RA) {
        u32 n = op->kind == VK_CALL ? MAX(verify_nargs[in->imm], 1u) : 1;
        m |= ((1u << n) - 1) << in->ra;
    }
    if ((op->flags & V_RB) && op->kind != VK_LD)
        m |= 1u << in->rb;
    if (in->op == ISA_OP_LDIH)
        m |= 1u << in->rd;
    return m;
}

/* The registers clause c may read before writing them on some path
 * through it (struct vm_clause.zero): a forward pass, jumps being forward
 * only, where what is written on every path into an instruction is the
 * intersection over its predecessors (the fall-through and the jumps to
 * it, kept in a small table).  Over VERIFY_PENDING jumps in flight, every
 * register the program names.  Instructions no path reaches read
 * nothing.  Called by verify_prog on a verified clause. */
static u32 verify_zero(const struct vm_prog *p, const struct isa_prog_clause *c)
{
    struct { u32 pc, def; } pend[VERIFY_PENDING];
    const u32 all = (1u << ISA_NREGS) - 1;
    u32 npend = 0, def = 0, need = 0;
    bool falls = true;                  /* the previous instruction falls through */
    for (u32 pc = c->start; pc < c->start + c->len; pc++) {
        const struct isa_insn *in = &p->code[pc];
        u32 into = falls ? def : all;
        for (u32 k = 0; k < npend; ) {
            if (pend[k].pc == pc) {
                into &= pend[k].def;
                pend[k] = pend[--npend];
            } else {
                k++;
            }
        }
        def = into;
        need |= verify_reads(in) & ~def;
        if (verify_ops[in->op].flags & V_RD)
            def |= 1u << in->rd;
        falls = in->op != ISA_OP_JMP && in->op != ISA_OP_RET;
        if (verify_ops[in->op].kind == VK_JUMP) {
            if (npend == VERIFY_PENDING)
                return (1u << p->nregs) - 1;
            pend[npend].pc = pc + 1 + (u32)in->imm;
            pend[npend++].def = def;
        }
    }
    return need;
}

/* Does clause c read a clause-local variable? */
static bool verify_reads_locals(const struct vm_prog *p, const struct isa_prog_clause *c)
{
    for (u32 pc = c->start; pc < c->start + c->len; pc++)
        if (p->code[pc].op == ISA_OP_LDL)
            return true;
    return false;
}

/* Is clause c exactly `AGG a; RET` with a a keyless count() (which can
 * neither fault nor record)?  a + 1 if so, else 0 (struct vm_clause.count1). */
static u8 verify_count1(const struct vm_prog *p, const struct isa_prog_clause *c)
{
    _Static_assert(ISA_MAX_AGGS < 255, "struct vm_clause.count1 is a u8");
    const struct isa_insn *in = &p->code[c->start];
    if (c->len != 2 || in[0].op != ISA_OP_AGG || in[1].op != ISA_OP_RET)
        return 0;
    const struct isa_prog_agg *a = &p->aggs[in[0].imm];
    return a->func == ISA_AGG_COUNT && a->nkeys == 0 ? (u8)(in[0].imm + 1) : 0;
}

/* Is clause c exactly `LDB r, b; TPUSH r, k; AGG a, r; RET` with a a
 * count() of one key and b an engine builtin pushed as its own kind (a
 * string with k = 1, an integer with k = 0)?  Fills cl's key1 fields
 * (key1 = a + 1) if so.  No other instruction runs, so the engine may do
 * what the VM would: read b, build the one-value tuple, bump a hit in the
 * aggregation's cache (and leave everything else to the VM). */
static void verify_key1(const struct vm_prog *p, const struct isa_prog_clause *c,
                        struct vm_clause *cl)
{
    _Static_assert(ISA_MAX_AGGS < 255, "struct vm_clause.key1 is a u8");
    const struct isa_insn *in = &p->code[c->start];
    cl->key1 = 0;
    if (c->len != 4 || in[0].op != ISA_OP_LDB || in[1].op != ISA_OP_TPUSH ||
        in[2].op != ISA_OP_AGG || in[3].op != ISA_OP_RET || in[1].ra != in[0].rd)
        return;
    u32 kind = vm_builtin_kind((u32)in[0].imm);
    const struct isa_prog_agg *a = &p->aggs[in[2].imm];
    if (kind == 0 || in[1].imm != (kind == 2) || a->func != ISA_AGG_COUNT || a->nkeys != 1)
        return;
    cl->key1 = (u8)(in[2].imm + 1);
    cl->key1_str = kind == 2;
    cl->key1_builtin = (u16)in[0].imm;
}

/* Check buf[0..len); fill *p on success (see vm.h). */
bool verify_prog(const u8 *buf, u32 len, struct vm_prog *p, struct probe_verr *e)
{
    const struct isa_prog_hdr *h = (const void *)buf;
    e->pc = -1;
    e->msg[0] = 0;
    if (len > ISA_MAX_PROG_BYTES)
        return FAILN(-1, "program over % bytes", ISA_MAX_PROG_BYTES);
    if (len < sizeof *h)
        return FAIL(-1, "truncated header");
    if (!verify_header(h, len, e))
        return false;
    const u8 *q = buf + sizeof *h;
    p->clauses = (const void *)q;
    q += h->nclauses * sizeof(struct isa_prog_clause);
    p->vars = (const void *)q;
    q += h->nvars * sizeof(struct isa_prog_var);
    p->aggs = (const void *)q;
    q += h->naggs * sizeof(struct isa_prog_agg);
    p->code = (const void *)q;
    p->strtab = (const char *)q + h->ninsns * ISA_INSN_SIZE;
    p->ninsns = h->ninsns;
    p->nclauses = h->nclauses;
    p->nvars = h->nvars;
    p->naggs = h->naggs;
    p->nrecdescs = h->nrecdescs;
    p->strtab_len = h->strtab_len;
    p->strsize = h->strsize;
    p->nregs = 0;
    if (!verify_vars(p, e) || !verify_aggs(p, e) || !verify_clauses(p, e))
        return false;
    for (u32 i = 0; i < p->nclauses; i++) {
        const struct isa_prog_clause *c = &p->clauses[i];
        for (u32 pc = c->start; pc < c->start + c->len; pc++) {
            if (!verify_insn(p, c, pc, e))
                return false;
            verify_nregs(p, &p->code[pc]);
        }
    }
    for (u32 i = 0; i < p->nclauses; i++) {
        p->cl[i].start = p->clauses[i].start;
        p->cl[i].zero = (u16)verify_zero(p, &p->clauses[i]);
        p->cl[i].locals = verify_reads_locals(p, &p->clauses[i]);
        p->cl[i].count1 = verify_count1(p, &p->clauses[i]);
        verify_key1(p, &p->clauses[i], &p->cl[i]);
    }
    return true;
}
