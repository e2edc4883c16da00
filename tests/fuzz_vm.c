/* Fuzzer for the probe VM: random and mutated programs through
 * verify-then-run, built with -fsanitize=address,undefined by
 * tests/test_probe_vm_c.py (which runs a short campaign) or by hand:
 *
 *   fuzz_vm N [SEED [SEEDFILE]]
 *
 * SEEDFILE holds programs (u32 length + bytes each; the test writes the
 * hostile corpus there).  Each program is a seed mutated, or generated
 * from scratch mostly well-formed (known opcodes, registers in range,
 * forward jumps, clauses ending in RET) so that many verify and run.  A
 * verified program runs every clause a few times with random arguments;
 * after each run the staged records must be well-formed (or absent after a
 * fault).  Prints "programs=N verified=V ran=R faults=F records=C". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../introspect/corevm_shim.h"

#define RAM_ADDR 0x200000ull
#define MAXSEEDS 4096
#define BUF (ISA_MAX_PROG_BYTES + 4096)

static u64 rng_state;
static u64 rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static u32 rn(u32 n) { return n ? (u32)(rnd() % n) : 0; }

static u8 *seeds[MAXSEEDS];
static u32 seedlen[MAXSEEDS], nseeds;
static u8 ram[4096];

static const u8 ops[] = {
    ISA_OP_NOP, ISA_OP_LDI, ISA_OP_LDIH, ISA_OP_MOV, ISA_OP_ADD, ISA_OP_SUB, ISA_OP_MUL,
    ISA_OP_UDIV, ISA_OP_SDIV, ISA_OP_UMOD, ISA_OP_SMOD, ISA_OP_AND, ISA_OP_OR, ISA_OP_XOR,
    ISA_OP_SHL, ISA_OP_LSHR, ISA_OP_ASHR, ISA_OP_NEG, ISA_OP_NOT, ISA_OP_LNOT, ISA_OP_EQ,
    ISA_OP_NE, ISA_OP_ULT, ISA_OP_SLT, ISA_OP_ULE, ISA_OP_SLE, ISA_OP_EXT, ISA_OP_JMP,
    ISA_OP_JZ, ISA_OP_JNZ, ISA_OP_LD, ISA_OP_LDB, ISA_OP_ARG, ISA_OP_STR, ISA_OP_LDG,
    ISA_OP_STG, ISA_OP_LDT, ISA_OP_STT, ISA_OP_LDL, ISA_OP_STL, ISA_OP_TCLR, ISA_OP_TPUSH,
    ISA_OP_LDA, ISA_OP_STA, ISA_OP_AGG, ISA_OP_RECB, ISA_OP_RECV, ISA_OP_RECS, ISA_OP_RECE,
    ISA_OP_EXIT, ISA_OP_CALL, ISA_OP_RET,
};

/* Fields each opcode uses (as tests/isa_asm.py's FORMS): d a b, others zero. */
static u8 uses(u8 op)
{
    switch (op) {
    case ISA_OP_NOP: case ISA_OP_RET: case ISA_OP_JMP: case ISA_OP_TCLR:
    case ISA_OP_RECB: case ISA_OP_RECE: return 0;
    case ISA_OP_LDI: case ISA_OP_LDIH: case ISA_OP_LDB: case ISA_OP_ARG: case ISA_OP_STR:
    case ISA_OP_LDG: case ISA_OP_LDT: case ISA_OP_LDL: case ISA_OP_LDA: return 1;
    case ISA_OP_MOV: case ISA_OP_NEG: case ISA_OP_NOT: case ISA_OP_LNOT: case ISA_OP_EXT:
    case ISA_OP_CALL: case ISA_OP_LD: return 3;
    case ISA_OP_JZ: case ISA_OP_JNZ: case ISA_OP_STG: case ISA_OP_STT: case ISA_OP_STL:
    case ISA_OP_STA: case ISA_OP_TPUSH: case ISA_OP_AGG: case ISA_OP_RECV: case ISA_OP_RECS:
    case ISA_OP_EXIT: return 2;
    default: return 7;
    }
}

static u8 gen_scope[16];              /* scopes of the generated program's variables */

/* A variable of the scope op needs (mostly), or -1 when there is none. */
static i32 gen_var(u8 op, u32 nvars)
{
    static const u8 scope[] = { ISA_SC_GLOBAL, ISA_SC_GLOBAL, ISA_SC_THREAD, ISA_SC_THREAD,
                                ISA_SC_CLAUSE, ISA_SC_CLAUSE, 0, 0, 0, 0,
                                ISA_SC_ASSOC, ISA_SC_ASSOC };
    u32 want = scope[op - ISA_OP_LDG], start = rn(nvars ? nvars : 1);
    if (rn(50) == 0)
        return (i32)rn(nvars + 1);      /* now and then: any index */
    for (u32 i = 0; i < nvars; i++)
        if (gen_scope[(start + i) % nvars] == want)
            return (i32)((start + i) % nvars);
    return -1;
}

/* A plausible instruction at pc of a clause ending at end (exclusive). */
static struct isa_insn gen_insn(u32 pc, u32 end, u32 nvars, u32 naggs, u32 strtab_len)
{
    struct isa_insn in = { ops[rn(sizeof ops)], (u8)rn(16), (u8)rn(16), (u8)rn(16), 0 };
    u32 room = end - pc - 1;            /* instructions after this one, RET included */
    switch (in.op) {
    case ISA_OP_JMP: case ISA_OP_JZ: case ISA_OP_JNZ:
        in.imm = room > 1 ? (i32)rn(room - 1) : 0;
        break;
    case ISA_OP_LD: in.rb = (u8)(1u << rn(4)); in.imm = (i32)rn(64) - 8; break;
    case ISA_OP_LDB: in.imm = (i32)rn(ISA_B_COUNT_); break;
    case ISA_OP_ARG: in.imm = (i32)rn(VM_NARGS); break;
    case ISA_OP_STR: {
        static const u8 starts[] = {0, 2, 8, 19, 20};
        in.imm = strtab_len ? starts[rn(sizeof starts)] : 0;
        break;
    }
    case ISA_OP_EXT: in.imm = (i32)((8u << rn(3)) | (rn(2) << 8)); break;
    case ISA_OP_TPUSH: in.imm = (i32)rn(2); break;
    case ISA_OP_AGG: in.imm = (i32)rn(naggs ? naggs : 1); break;
    case ISA_OP_RECB: in.imm = (i32)rn(4); break;
    case ISA_OP_CALL: in.imm = (i32)rn(ISA_H_COUNT_); in.ra = (u8)rn(13); break;
    case ISA_OP_LDI: case ISA_OP_LDIH: in.imm = (i32)rnd(); break;
    default:
        if (in.op >= ISA_OP_LDG && in.op <= ISA_OP_STA)
            in.imm = gen_var(in.op, nvars);
    }
    if ((in.op == ISA_OP_AGG && !naggs) || in.imm < 0)
        in = (struct isa_insn){ ISA_OP_NOP, 0, 0, 0, 0 };
    u8 u = uses(in.op);
    if (!(u & 1)) in.rd = 0;
    if (!(u & 2)) in.ra = 0;
    if (!(u & 4) && in.op != ISA_OP_LD) in.rb = 0;
    return in;
}

/* A program generated from scratch into b; returns its length. */
static u32 gen_prog(u8 *b)
{
    struct isa_prog_hdr h = { ISA_PROG_MAGIC, ISA_PROG_VERSION, 0, 0, 1 + rn(4), rn(6),
                              rn(3), 4, 0, 16 + rn(200), 0 };
    const char strs[] = "a\0hello\0probe-chan\0\0xyz";
    u32 per[4], total = 0;
    for (u32 i = 0; i < h.nclauses; i++)
        total += per[i] = 1 + rn(24);
    h.ninsns = total;
    h.strtab_len = rn(2) ? sizeof strs : 0;
    u8 *q = b + sizeof h;
    for (u32 i = 0, start = 0; i < h.nclauses; start += per[i], i++) {
        struct isa_prog_clause c = { start, per[i], 0, 0 };
        memcpy(q, &c, sizeof c);
        q += sizeof c;
    }
    for (u32 i = 0; i < h.nvars; i++) {
        struct isa_prog_var v = { (u8)rn(4), (u8)rn(2), 0, 0 };
        v.nkeys = v.scope == ISA_SC_ASSOC ? (u16)(1 + rn(2)) : 0;
        gen_scope[i] = v.scope;
        memcpy(q, &v, sizeof v);
        q += sizeof v;
    }
    for (u32 i = 0; i < h.naggs; i++) {
        struct isa_prog_agg a = { (u8)rn(8), (u8)rn(3), 0, 0, 0, 0, 0 };
        if (a.func == ISA_AGG_LQUANTIZE) {
            a.lq_lo = (i64)rn(100) - 50;
            a.lq_step = 1 + rn(10);
            a.lq_hi = a.lq_lo + a.lq_step * (1 + rn(20));
            a.nwords = (u32)((a.lq_hi - a.lq_lo) / a.lq_step + 2);
        } else {
            static const u8 w[] = {1, 1, 1, 1, 2, 4, ISA_QUANTIZE_BUCKETS};
            a.nwords = w[a.func];
        }
        memcpy(q, &a, sizeof a);
        q += sizeof a;
    }
    for (u32 i = 0, start = 0; i < h.nclauses; start += per[i], i++)
        for (u32 pc = start; pc < start + per[i]; pc++) {
            struct isa_insn in = pc + 1 == start + per[i] ? (struct isa_insn){ ISA_OP_RET, 0, 0, 0, 0 }
                                 : gen_insn(pc, start + per[i], h.nvars, h.naggs, h.strtab_len);
            memcpy(q, &in, sizeof in);
            q += sizeof in;
        }
    memcpy(q, strs, h.strtab_len);
    q += h.strtab_len;
    memcpy(b, &h, sizeof h);
    return (u32)(q - b);
}

/* Mutate b[0..len) in place (a few byte, field or length changes). */
static u32 mutate(u8 *b, u32 len)
{
    u32 n = 1 + rn(4);
    for (u32 i = 0; i < n && len; i++) {
        switch (rn(6)) {
        case 0: b[rn(len)] ^= (u8)(1u << rn(8)); break;
        case 1: b[rn(len)] = (u8)rnd(); break;
        case 2: {                       /* an instruction field in the code */
            u32 off = len > 64 ? 40 + rn(len - 40) : rn(len);
            b[off] = (u8)rn(20);
            break;
        }
        case 3: if (rn(8) == 0) len = rn(len + 1); break;
        case 4: if (len >= 8) { u32 o = rn(len - 7); u32 v = (u32)rnd(); memcpy(b + o, &v, 4); } break;
        default: {                      /* copy an 8-byte instruction elsewhere */
            if (len < 16)
                break;
            u32 a = rn(len - 8), c = rn(len - 8);
            memmove(b + c, b + a, 8);
        }
        }
    }
    return len;
}

static void load_seeds(const char *path)
{
    FILE *f = fopen(path, "rb");
    u32 len;
    if (!f)
        return;
    while (nseeds < MAXSEEDS && fread(&len, 4, 1, f) == 1 && len <= BUF) {
        seeds[nseeds] = malloc(len ? len : 1);
        if (fread(seeds[nseeds], 1, len, f) != len)
            break;
        seedlen[nseeds++] = len;
    }
    fclose(f);
}

/* After a run: records well-formed and inside REC_MAX; none after a fault. */
static u64 check_stage(struct corevm *s, u32 fault)
{
    u32 len, off = 0;
    u64 n = 0;
    const u8 *st = corevm_stage(s, &len);
    if (fault && len) {
        fprintf(stderr, "fault %u left %u staged bytes\n", fault, len);
        abort();
    }
    while (off < len) {
        u16 size;
        memcpy(&size, st + off, 2);
        if (size < sizeof(struct isa_rec_hdr) || size % 8 || size > ISA_REC_MAX || size > len - off) {
            fprintf(stderr, "bad record size %u at %u of %u\n", size, off, len);
            abort();
        }
        off += size;
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    u64 n = argc > 1 ? strtoull(argv[1], NULL, 0) : 10000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 0) * 0x9e3779b97f4a7c15ull + 1 : 1;
    if (argc > 3)
        load_seeds(argv[3]);
    struct corevm *s = corevm_new(16384, 16384, 4096, 8192);
    static u8 buf[BUF];
    u64 verified = 0, ran = 0, faults = 0, records = 0;
    struct probe_verr e;
    for (u32 i = 0; i < sizeof ram; i++)
        ram[i] = (u8)(i * 7 + 1);
    corevm_set_ram(s, RAM_ADDR, ram, sizeof ram);
    clock_t t0 = clock();
    for (u64 i = 0; i < n; i++) {
        u32 len;
        if (nseeds && rn(3) == 0) {
            u32 k = rn(nseeds);
            len = seedlen[k] > BUF ? BUF : seedlen[k];
            memcpy(buf, seeds[k], len);
        } else {
            len = gen_prog(buf);
        }
        if (rn(3) == 0)
            len = mutate(buf, len);
        if (!corevm_load(s, buf, len, &e)) {
            if (memchr(e.msg, 0, sizeof e.msg) == NULL || !e.msg[0])
                abort();                /* every refusal says why */
            continue;
        }
        verified++;
        struct isa_prog_hdr h;
        memcpy(&h, buf, sizeof h);
        for (u32 c = 0; c < h.nclauses; c++)
            for (u32 r = 0; r < 3; r++) {
                u64 args[VM_NARGS];
                for (u32 a = 0; a < VM_NARGS; a++) {
                    u32 pick = rn(5);
                    args[a] = pick == 0 ? RAM_ADDR + rn(sizeof ram + 16) :
                              pick == 1 ? corevm_arena(s, rn(4)) + rn(64) :
                              pick == 2 ? rn(3) : rnd();
                }
                corevm_set_builtin(s, ISA_B_TID, rn(4));
                u32 f = corevm_run(s, c, ISA_FIRST_STATIC_PROBE, c << 16, args, rn(VM_NARGS + 1));
                ran++;
                faults += f != 0;
                records += check_stage(s, f);
            }
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("programs=%llu verified=%llu ran=%llu faults=%llu records=%llu seconds=%.2f\n",
           (unsigned long long)n, (unsigned long long)verified, (unsigned long long)ran,
           (unsigned long long)faults, (unsigned long long)records, secs);
    corevm_free(s);
    for (u32 i = 0; i < nseeds; i++)
        free(seeds[i]);
    return 0;
}
