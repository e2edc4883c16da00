/* Fuzzer for the kernel's classic BPF (kernel/net/cbpf.c): random and
 * mutated programs through verify-then-run, built with
 * -fsanitize=address,undefined by tests/test_cbpf.py (a short campaign;
 * `make test` runs it) or by hand:
 *
 *   fuzz_cbpf N [SEED [SEEDFILE]]
 *
 * SEEDFILE holds programs libpcap compiled (u32 instruction count, then
 * 8-byte instructions each).  Each program is a seed mutated or one
 * generated from scratch (mostly known opcodes, jumps mostly in range);
 * a program cbpf_verify accepts runs on random packets of 0..128 bytes,
 * and its verdict must equal libpcap's own bpf_filter (linked from
 * libpcap.so.0.8) on the same bytes.  The packet buffer is allocated at
 * its exact length so ASan catches any read outside it.  Prints
 * "programs=N verified=V runs=R accepted=A mismatches=M". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../kernel/net/cbpf.h"

/* libpcap's interpreter (struct bpf_insn has cbpf_insn's layout). */
unsigned int bpf_filter(const struct cbpf_insn *pc, const unsigned char *p,
                        unsigned int wirelen, unsigned int buflen);

static unsigned long long rs;
static unsigned long long rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static unsigned rn(unsigned n) { return n ? (unsigned)(rnd() % n) : 0; }

#define MAXSEEDS 1024
#define MAXN 64
static struct cbpf_insn *seeds[MAXSEEDS];
static unsigned seedlen[MAXSEEDS], nseeds;

static const u16 codes[] = {
    0x00, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50, 0x60, 0x80, 0x01, 0x61, 0x81, 0xb1,
    0x02, 0x03, 0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54,
    0x5c, 0x64, 0x6c, 0x74, 0x7c, 0x84, 0x94, 0x9c, 0xa4, 0xac, 0x05, 0x15, 0x1d,
    0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d, 0x06, 0x16, 0x07, 0x87,
};

/* A random constant: small, packet-sized or anything. */
static u32 rk(void)
{
    switch (rn(4)) {
    case 0: return rn(16);
    case 1: return rn(140);
    case 2: return rn(40);
    default: return (u32)rnd();
    }
}

/* A program from scratch, mostly well-formed. */
static unsigned gen(struct cbpf_insn *p)
{
    unsigned n = 1 + rn(MAXN);
    for (unsigned i = 0; i < n; i++) {
        p[i].code = rn(50) ? codes[rn(sizeof(codes) / sizeof(codes[0]))] : (u16)rnd();
        p[i].k = rk();
        unsigned left = n - i - 1;
        p[i].jt = (u8)(rn(20) ? rn(left + 1) : rnd());
        p[i].jf = (u8)(rn(20) ? rn(left + 1) : rnd());
        if (p[i].code == 0x05)
            p[i].k = rn(20) ? rn(left + 1) : (u32)rnd();
    }
    if (rn(10))
        p[n - 1].code = rn(2) ? 0x06 : 0x16;
    return n;
}

/* A seed with a few fields changed. */
static unsigned mutate(struct cbpf_insn *p)
{
    unsigned s = rn(nseeds), n = seedlen[s];
    memcpy(p, seeds[s], n * sizeof(*p));
    for (unsigned m = 1 + rn(3); m; m--) {
        struct cbpf_insn *in = &p[rn(n)];
        switch (rn(4)) {
        case 0: in->k = rk(); break;
        case 1: in->code = codes[rn(sizeof(codes) / sizeof(codes[0]))]; break;
        case 2: in->jt = (u8)rn(8); break;
        default: in->jf = (u8)rn(8); break;
        }
    }
    return n;
}

static void load_seeds(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    u32 n;
    while (nseeds < MAXSEEDS && fread(&n, 4, 1, f) == 1) {
        if (n == 0 || n > CBPF_MAXINSNS) { fprintf(stderr, "bad seed\n"); exit(2); }
        seeds[nseeds] = malloc(n * sizeof(struct cbpf_insn));
        if (fread(seeds[nseeds], sizeof(struct cbpf_insn), n, f) != n) { fprintf(stderr, "short seed\n"); exit(2); }
        seedlen[nseeds++] = n;
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    unsigned long total = argc > 1 ? strtoul(argv[1], 0, 0) : 100000;
    rs = argc > 2 ? strtoull(argv[2], 0, 0) * 2654435761ull + 1 : 1;
    if (argc > 3)
        load_seeds(argv[3]);
    static struct cbpf_insn prog[CBPF_MAXINSNS];
    static u16 masks[CBPF_MAXINSNS];
    unsigned long verified = 0, runs = 0, accepted = 0, mismatches = 0;
    for (unsigned long i = 0; i < total; i++) {
        unsigned n = nseeds && rn(2) ? mutate(prog) : gen(prog);
        struct cbpf_verr e;
        if (!cbpf_verify(prog, n, masks, &e))
            continue;
        verified++;
        for (int r = 0; r < 4; r++) {
            unsigned len = rn(129);
            u8 *pkt = malloc(len ? len : 1);
            for (unsigned b = 0; b < len; b++)
                pkt[b] = rn(4) ? (u8)rnd() : (u8)(b == 12 ? 8 : b == 23 ? 6 : rn(2) ? 0 : 0x45);
            unsigned wire = len + (rn(4) ? 0 : rn(1500));
            u32 mine = cbpf_run(prog, pkt, wire, len);
            u32 theirs = bpf_filter(prog, pkt, wire, len);
            runs++;
            accepted += mine != 0;
            if (mine != theirs) {
                mismatches++;
                if (mismatches < 5) {
                    fprintf(stderr, "mismatch: mine %u libpcap %u len %u wire %u prog:\n", mine, theirs, len, wire);
                    for (unsigned j = 0; j < n; j++)
                        fprintf(stderr, "  %u: { 0x%x, %u, %u, 0x%x }\n", j, prog[j].code, prog[j].jt, prog[j].jf, prog[j].k);
                }
            }
            free(pkt);
        }
    }
    printf("programs=%lu verified=%lu runs=%lu accepted=%lu mismatches=%lu\n",
           total, verified, runs, accepted, mismatches);
    return mismatches ? 1 : 0;
}
