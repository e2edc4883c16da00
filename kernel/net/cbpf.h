/* Classic BPF (the filter language of libpcap, tcpdump and Linux socket
 * filters): the verifier and the interpreter the capture tap runs.  The
 * host compiles a tcpdump expression with libpcap's pcap_compile; the
 * kernel checks the program once (cbpf_verify) and runs it on every frame
 * (cbpf_run).  Pure code: no allocation, no I/O; it also builds for the
 * host (tests/test_cbpf.py, tests/fuzz_cbpf.c).  See docs/cbpf.md. */
#ifndef UNIK_CBPF_H
#define UNIK_CBPF_H
#include "types.h"

#define CBPF_MAXINSNS 4096             /* longest program accepted (Linux: BPF_MAXINSNS) */
#define CBPF_MEMWORDS 16               /* scratch memory slots M[0..15] */

/* One instruction, exactly struct bpf_insn / struct sock_filter. */
struct cbpf_insn {
    u16 code;
    u8 jt;
    u8 jf;
    u32 k;
};

/* Instruction classes, sizes, modes, operations (the classic encodings). */
#define CBPF_CLASS(c) ((c) & 0x07)
#define CBPF_LD 0x00
#define CBPF_LDX 0x01
#define CBPF_ST 0x02
#define CBPF_STX 0x03
#define CBPF_ALU 0x04
#define CBPF_JMP 0x05
#define CBPF_RET 0x06
#define CBPF_MISC 0x07
#define CBPF_SIZE(c) ((c) & 0x18)
#define CBPF_W 0x00
#define CBPF_H 0x08
#define CBPF_B 0x10
#define CBPF_MODE(c) ((c) & 0xe0)
#define CBPF_IMM 0x00
#define CBPF_ABS 0x20
#define CBPF_IND 0x40
#define CBPF_MEM 0x60
#define CBPF_LEN 0x80
#define CBPF_MSH 0xa0
#define CBPF_OP(c) ((c) & 0xf0)
#define CBPF_ADD 0x00
#define CBPF_SUB 0x10
#define CBPF_MUL 0x20
#define CBPF_DIV 0x30
#define CBPF_OR 0x40
#define CBPF_AND 0x50
#define CBPF_LSH 0x60
#define CBPF_RSH 0x70
#define CBPF_NEG 0x80
#define CBPF_MOD 0x90
#define CBPF_XOR 0xa0
#define CBPF_JA 0x00
#define CBPF_JEQ 0x10
#define CBPF_JGT 0x20
#define CBPF_JGE 0x30
#define CBPF_JSET 0x40
#define CBPF_SRC(c) ((c) & 0x08)
#define CBPF_K 0x00
#define CBPF_X 0x08
#define CBPF_RVAL(c) ((c) & 0x18)
#define CBPF_A 0x10
#define CBPF_MISCOP(c) ((c) & 0xf8)
#define CBPF_TAX 0x00
#define CBPF_TXA 0x80

/* Why a program was refused: the instruction and a reason. */
struct cbpf_verr {
    i32 pc;                            /* instruction at fault, -1: the program */
    const char *msg;
};

/* Check a program: every opcode known, jumps inside the program, scratch
 * slots in range, no division by a constant zero, shifts by a constant
 * below 32, a return as the last instruction, 1..CBPF_MAXINSNS long, no
 * scratch slot read before it is written on every path.  `masks` is the
 * caller's scratch of n entries.  True if it may be run; else *e says why. */
bool cbpf_verify(const struct cbpf_insn *prog, u32 n, u16 *masks, struct cbpf_verr *e);

/* Run a verified program on a packet: `pkt` holds `caplen` readable
 * bytes of a frame that was `wirelen` long.  A load outside the bytes
 * rejects the packet (returns 0), as libpcap and Linux do; a division by
 * X = 0 too.  Returns the program's verdict: 0 drop, else the number of
 * bytes to keep. */
u32 cbpf_run(const struct cbpf_insn *prog, const u8 *pkt, u32 wirelen, u32 caplen);
#endif
