/* Classic BPF verifier and interpreter (cbpf.h).  Pure: the capture tap
 * (net/capture.c) calls cbpf_verify once when a capture opens and
 * cbpf_run on every frame, in interrupt context; the host tests build the
 * same file and compare cbpf_run with libpcap's own bpf_filter. */
#include "types.h"
#include "../net/cbpf.h"

/* The classic opcodes this interpreter knows (as Linux and libpcap do,
 * minus the Linux-only ancillary loads). */
static bool cbpf_known(u16 c)
{
    switch (CBPF_CLASS(c)) {
    case CBPF_LD:
        if (c == (CBPF_LD | CBPF_W | CBPF_IMM) || c == (CBPF_LD | CBPF_W | CBPF_MEM) ||
            c == (CBPF_LD | CBPF_W | CBPF_LEN))
            return true;
        return (CBPF_MODE(c) == CBPF_ABS || CBPF_MODE(c) == CBPF_IND) &&
               CBPF_SIZE(c) != 0x18 && (c & ~0xf8) == 0;
    case CBPF_LDX:
        return c == (CBPF_LDX | CBPF_W | CBPF_IMM) || c == (CBPF_LDX | CBPF_W | CBPF_MEM) ||
               c == (CBPF_LDX | CBPF_W | CBPF_LEN) || c == (CBPF_LDX | CBPF_B | CBPF_MSH);
    case CBPF_ST:
    case CBPF_STX:
        return (c & ~0x07) == 0;
    case CBPF_ALU:
        if (CBPF_OP(c) == CBPF_NEG)
            return c == (CBPF_ALU | CBPF_NEG);
        return CBPF_OP(c) <= CBPF_XOR && (c & ~0xff) == 0 && (c & 0x07) == CBPF_ALU;
    case CBPF_JMP:
        if (CBPF_OP(c) == CBPF_JA)
            return c == (CBPF_JMP | CBPF_JA);
        return CBPF_OP(c) <= CBPF_JSET && (c & ~0xff) == 0;
    case CBPF_RET:
        return c == (CBPF_RET | CBPF_K) || c == (CBPF_RET | CBPF_A);
    default:
        return c == (CBPF_MISC | CBPF_TAX) || c == (CBPF_MISC | CBPF_TXA);
    }
}

/* Does instruction `pc`'s own operand make sense (scratch slot, constant
 * divisor, constant shift, jump targets)?  NULL if so, else the reason.
 * Called by cbpf_verify. */
static const char *cbpf_check_one(const struct cbpf_insn *in, u32 pc, u32 n)
{
    u16 c = in->code;
    u32 cls = CBPF_CLASS(c);
    if ((cls == CBPF_ST || cls == CBPF_STX ||
         ((cls == CBPF_LD || cls == CBPF_LDX) && CBPF_MODE(c) == CBPF_MEM)) &&
        in->k >= CBPF_MEMWORDS)
        return "scratch memory slot out of range";
    if (cls == CBPF_ALU && CBPF_SRC(c) == CBPF_K) {
        if ((CBPF_OP(c) == CBPF_DIV || CBPF_OP(c) == CBPF_MOD) && in->k == 0)
            return "division by constant zero";
        if ((CBPF_OP(c) == CBPF_LSH || CBPF_OP(c) == CBPF_RSH) && in->k >= 32)
            return "shift by 32 or more";
    }
    if (cls != CBPF_JMP)
        return NULL;
    u64 left = (u64)n - pc - 1;        /* instructions after this one */
    if (CBPF_OP(c) == CBPF_JA)
        return (u64)in->k < left ? NULL : "jump out of the program";
    if (in->jt >= left || in->jf >= left)
        return "jump out of the program";
    return NULL;
}

/* Does every load of a scratch slot follow a store to it on every path
 * (Linux refuses the others: libpcap would read garbage)?  One forward
 * pass: masks[pc] is the set of slots stored on all paths seen so far
 * that reach pc.  Called by cbpf_verify on an otherwise valid program. */
static bool cbpf_check_mem(const struct cbpf_insn *prog, u32 n, u16 *masks,
                           struct cbpf_verr *e)
{
    for (u32 pc = 0; pc < n; pc++)
        masks[pc] = 0xffff;
    u16 valid = 0;
    for (u32 pc = 0; pc < n; pc++) {
        const struct cbpf_insn *in = &prog[pc];
        u32 cls = CBPF_CLASS(in->code);
        valid &= masks[pc];
        if (cls == CBPF_ST || cls == CBPF_STX) {
            valid |= (u16)(1u << in->k);
        } else if ((cls == CBPF_LD || cls == CBPF_LDX) && CBPF_MODE(in->code) == CBPF_MEM) {
            if (!(valid & (1u << in->k))) {
                e->pc = (i32)pc;
                e->msg = "scratch memory slot read before it is written";
                return false;
            }
        } else if (cls == CBPF_JMP) {
            if (CBPF_OP(in->code) == CBPF_JA) {
                masks[pc + 1 + in->k] &= valid;
            } else {
                masks[pc + 1 + in->jt] &= valid;
                masks[pc + 1 + in->jf] &= valid;
            }
            valid = 0xffff;            /* what follows is reached by jumps only */
        } else if (cls == CBPF_RET) {
            valid = 0xffff;
        }
    }
    return true;
}

/* Verify a whole program (cbpf.h).  Called by capture_start. */
bool cbpf_verify(const struct cbpf_insn *prog, u32 n, u16 *masks, struct cbpf_verr *e)
{
    e->pc = -1;
    if (n == 0 || n > CBPF_MAXINSNS) {
        e->msg = "program length out of range";
        return false;
    }
    for (u32 pc = 0; pc < n; pc++) {
        const char *why = cbpf_known(prog[pc].code) ? cbpf_check_one(&prog[pc], pc, n)
                                                    : "unknown opcode";
        if (why) {
            e->pc = (i32)pc;
            e->msg = why;
            return false;
        }
    }
    if (CBPF_CLASS(prog[n - 1].code) != CBPF_RET) {
        e->pc = (i32)(n - 1);
        e->msg = "the last instruction is not a return";
        return false;
    }
    if (!cbpf_check_mem(prog, n, masks, e))
        return false;
    e->msg = "ok";
    return true;
}

/* Load `size` bytes (1, 2, 4; network order) at packet offset `off`:
 * false when they are not all inside the captured bytes.  Called by
 * cbpf_run. */
static bool cbpf_load(const u8 *pkt, u32 caplen, u64 off, u32 size, u32 *out)
{
    if (off + size > caplen)
        return false;
    const u8 *p = pkt + off;
    *out = size == 1 ? p[0] : size == 2 ? (u32)(p[0] << 8 | p[1]) :
           (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3];
    return true;
}

/* One ALU operation; false for a division by zero (the packet is
 * rejected).  Called by cbpf_run. */
static bool cbpf_alu(u16 c, u32 *a, u32 v)
{
    switch (CBPF_OP(c)) {
    case CBPF_ADD: *a += v; break;
    case CBPF_SUB: *a -= v; break;
    case CBPF_MUL: *a *= v; break;
    case CBPF_DIV: if (!v) return false; *a /= v; break;
    case CBPF_MOD: if (!v) return false; *a %= v; break;
    case CBPF_OR: *a |= v; break;
    case CBPF_AND: *a &= v; break;
    case CBPF_XOR: *a ^= v; break;
    case CBPF_LSH: *a = v < 32 ? *a << v : 0; break;
    case CBPF_RSH: *a = v < 32 ? *a >> v : 0; break;
    default: *a = (u32)-*a; break;     /* NEG */
    }
    return true;
}

/* Whether a conditional jump is taken.  Called by cbpf_run. */
static bool cbpf_cond(u16 c, u32 a, u32 v)
{
    switch (CBPF_OP(c)) {
    case CBPF_JEQ: return a == v;
    case CBPF_JGT: return a > v;
    case CBPF_JGE: return a >= v;
    default: return (a & v) != 0;      /* JSET */
    }
}

static const u32 cbpf_sizes[4] = { 4, 2, 1, 0 };

/* Run a verified program (cbpf.h).  Every path ends at a return because
 * jumps only go forward and the last instruction returns.  Called by
 * capture_tap. */
u32 cbpf_run(const struct cbpf_insn *prog, const u8 *pkt, u32 wirelen, u32 caplen)
{
    u32 a = 0, x = 0, v = 0;
    u32 mem[CBPF_MEMWORDS] = { 0 };
    for (u32 pc = 0;; pc++) {
        const struct cbpf_insn *in = &prog[pc];
        u16 c = in->code;
        switch (CBPF_CLASS(c)) {
        case CBPF_LD:
            switch (CBPF_MODE(c)) {
            case CBPF_IMM: a = in->k; break;
            case CBPF_MEM: a = mem[in->k]; break;
            case CBPF_LEN: a = wirelen; break;
            case CBPF_ABS:
                if (!cbpf_load(pkt, caplen, in->k, cbpf_sizes[CBPF_SIZE(c) >> 3], &a))
                    return 0;
                break;
            default:                   /* IND */
                if (!cbpf_load(pkt, caplen, (u64)x + in->k, cbpf_sizes[CBPF_SIZE(c) >> 3], &a))
                    return 0;
                break;
            }
            break;
        case CBPF_LDX:
            switch (CBPF_MODE(c)) {
            case CBPF_IMM: x = in->k; break;
            case CBPF_MEM: x = mem[in->k]; break;
            case CBPF_LEN: x = wirelen; break;
            default:                   /* MSH: 4 * (P[k] & 0xf), the IP header length */
                if (!cbpf_load(pkt, caplen, in->k, 1, &v))
                    return 0;
                x = (v & 0xf) << 2;
                break;
            }
            break;
        case CBPF_ST: mem[in->k] = a; break;
        case CBPF_STX: mem[in->k] = x; break;
        case CBPF_ALU:
            if (!cbpf_alu(c, &a, CBPF_SRC(c) == CBPF_X ? x : in->k))
                return 0;
            break;
        case CBPF_JMP:
            if (CBPF_OP(c) == CBPF_JA)
                pc += in->k;
            else
                pc += cbpf_cond(c, a, CBPF_SRC(c) == CBPF_X ? x : in->k) ? in->jt : in->jf;
            break;
        case CBPF_RET:
            return CBPF_RVAL(c) == CBPF_A ? a : in->k;
        default:
            if (CBPF_MISCOP(c) == CBPF_TAX)
                x = a;
            else
                a = x;
            break;
        }
    }
}
