/* The probe VM's insides, shared by verify.c and vm.c (the verifier and the
 * interpreter), vmstr.c (string helpers), agg.c and dyn.c (aggregations and
 * dynamic variables) -- all pure, also built for the host by tests/cpure.py
 * -- and by the engine (engine.c, session.c), which owns the memory. */
#ifndef UNIK_PROBE_VM_H
#define UNIK_PROBE_VM_H
#include "types.h"
#include "isa.h"
#include "probe.h"
#include "tunables.h"

/* ------------------------------------------------------------ verify.c */
/* What the verifier worked out about one clause for the interpreter. */
struct vm_clause {
    u32 start;                      /* first instruction (program-wide pc) */
    u16 zero;                       /* registers (bit i: ri) some path may read
                                     * before writing: zeroed at each run */
    bool locals;                    /* reads clause-locals: zeroed at each run */
    u8 count1;                      /* the clause is exactly `AGG a; RET` with a a
                                     * keyless count(): a + 1 (the engine bumps
                                     * the count without the VM), else 0 */
    u8 key1;                        /* the clause is exactly `LDB r, b; TPUSH r, k;
                                     * AGG a, r; RET` with a a count() of one key
                                     * and b a builtin of the engine's (see
                                     * vm_builtin_kind) pushed as its kind k: a + 1
                                     * (the engine looks the key up in the
                                     * aggregation's cache itself), else 0 */
    bool key1_str;                  /* key1: b is a string builtin */
    u16 key1_builtin;               /* key1: b */
};

/* Copy n bytes from s to d, a few at a time (vm.c's TPUSH, the engine's
 * probe_count_key): whole words, the last one
 * overlapping the one before (never a byte outside either range). */
static inline void vm_copy(u8 *d, const u8 *s, u32 n)
{
    u64 w;
    u32 h;
    if (n >= 8) {
        for (u32 i = 0; i + 8 < n; i += 8) {
            __builtin_memcpy(&w, s + i, 8);
            __builtin_memcpy(d + i, &w, 8);
        }
        __builtin_memcpy(&w, s + n - 8, 8);
        __builtin_memcpy(d + n - 8, &w, 8);
    } else if (n >= 4) {
        __builtin_memcpy(&h, s, 4);
        __builtin_memcpy(d, &h, 4);
        __builtin_memcpy(&h, s + n - 4, 4);
        __builtin_memcpy(d + n - 4, &h, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* What LDB of builtin id reads, as vm_builtin does it: 0 a value the VM
 * has itself (probeid, epid, nargs, cpu), 1 an integer from the engine's
 * builtin callback, 2 a kernel string from it (borrowed by the VM). */
static inline u32 vm_builtin_kind(u32 id)
{
    switch (id) {
    case ISA_B_PROBEID: case ISA_B_EPID: case ISA_B_NARGS: case ISA_B_CPU:
        return 0;
    case ISA_B_THREAD: case ISA_B_PROBEPROV: case ISA_B_PROBEMOD:
    case ISA_B_PROBEFUNC: case ISA_B_PROBENAME:
        return 2;
    default:
        return 1;
    }
}

/* A verified program: views into its container (which must outlive it),
 * the layout of its variables in the globals and locals areas, and what
 * each clause needs reset when it runs. */
struct vm_prog {
    const struct isa_prog_clause *clauses;
    const struct isa_prog_var *vars;
    const struct isa_prog_agg *aggs;
    const struct isa_insn *code;
    const char *strtab;
    u32 ninsns, nclauses, nvars, naggs, nrecdescs, strtab_len, strsize;
    u32 var_off[ISA_MAX_VARS];      /* GLOBAL: offset in globals; CLAUSE: in locals */
    u32 globals_bytes;              /* bytes of global variable storage */
    u32 locals_bytes;               /* bytes of clause-local variable storage */
    u32 nlocal_vars;                /* CLAUSE-scope variables (local_off entries) */
    u32 local_off[ISA_MAX_VARS];    /* their offsets, zeroed at every firing */
    u32 nregs;                      /* registers r0..nregs-1 are all the code names */
    struct vm_clause cl[ISA_MAX_CLAUSES];
};

/* Check the container buf[0..len) against every rule of probes/isa.py;
 * on success fill *p (pointing into buf) and return true, else fill *e. */
bool verify_prog(const u8 *buf, u32 len, struct vm_prog *p, struct probe_verr *e);

/* ------------------------------------------------------------ agg.c */
/* One aggregation entry in the arena, followed by its key (padded to 8)
 * and nwords u64 values; everything from `agg` on is probe_agg_read's
 * entry format. */
struct agg_ent {
    u32 next;                       /* offset of the next entry in the bucket, 0 = none */
    u32 hash;
    u16 agg;
    u16 keylen;
    u32 nwords;
};

/* An entry an aggregation updated lately, as the VM's fast path (AGG of
 * the same key again) wants it: no hash, no bucket walk, no look at the
 * program's description.  Each aggregation has AGG_CACHE_SLOTS of them,
 * direct-mapped by agg_slot, so keys that take turns (sched:::switch's
 * threads) each keep theirs. */
#define AGG_CACHE_SLOTS 4
struct agg_last {
    const u8 *key;                  /* the entry's key bytes */
    u64 *w;                         /* its value words; NULL: no entry yet */
    u16 keylen;
    u8 nkeys;                       /* the aggregation's key count */
    bool count;                     /* it is count(): one increment */
    u32 pad[3];                     /* 32 bytes: indexing is shifts */
};

/* One aggregation hash table in a fixed arena.  Entries are never freed
 * (clearing zeroes values and keeps keys); a full arena drops new keys. */
struct agg_table {
    u8 *base;                       /* the arena: buckets, then entries */
    u32 size;
    u32 nbuckets;                   /* power of two */
    u32 first;                      /* offset of the first entry */
    u32 used;                       /* bump offset: next entry goes here */
    u32 nkeys;                      /* entries */
    u64 drops;                      /* new keys dropped: arena full */
    /* per aggregation: the entries updated last, by agg_slot of their key */
    struct agg_last last[ISA_MAX_AGGS][AGG_CACHE_SLOTS];
};

void agg_init(struct agg_table *t, void *mem, u32 size);
/* Aggregate v into aggregation `agg` (described by a) under key; false
 * when the key is new and the arena is full (dropped and counted). */
bool agg_update(struct agg_table *t, const struct isa_prog_agg *a, u16 agg,
                const u8 *key, u32 keylen, u64 v);
/* Fold v into the value words w of aggregation a (agg_update's last step). */
void agg_apply(const struct isa_prog_agg *a, u64 *w, u64 v);

/* Are the keylen bytes at a and b the same?  keylen is a multiple of 8,
 * as the VM's tuples (and so every entry's key) are. */
static inline bool agg_key_same(const u8 *a, const u8 *b, u32 keylen)
{
    for (u32 i = 0; i < keylen; i += 8) {
        u64 x, y;
        __builtin_memcpy(&x, a + i, 8);
        __builtin_memcpy(&y, b + i, 8);
        if (x != y)
            return false;
    }
    return true;
}

/* The cache slot of key[0..keylen) (whole words): a cheap mix of its
 * first and last words (a string key's length and head, and its tail). */
static inline u32 agg_slot(const u8 *key, u32 keylen)
{
    u64 a, b;
    if (!keylen)
        return 0;
    __builtin_memcpy(&a, key, 8);
    __builtin_memcpy(&b, key + keylen - 8, 8);
    return (u32)(((a + (b >> 3)) * 0x9e3779b97f4a7c15ull) >> 62);
}
_Static_assert(AGG_CACHE_SLOTS == 4, "agg_slot returns 2 bits");

/* The value words of aggregation agg's cached entry if its key is
 * key[0..keylen), else NULL: a repeated key skips the hash table. */
static inline u64 *agg_cached(const struct agg_table *t, u32 agg, const u8 *key, u32 keylen)
{
    const struct agg_last *l = &t->last[agg][agg_slot(key, keylen)];
    if (!l->w || l->keylen != keylen || !agg_key_same(l->key, key, keylen))
        return NULL;
    return l->w;
}

/* The value words of (agg, key), or NULL (tests, and the in-guest check). */
const u64 *agg_lookup(const struct agg_table *t, u16 agg, const u8 *key, u32 keylen);
/* Snapshot entries from *cursor on into out (probe_agg_read's format);
 * *cursor advances and is 0 after the last entry.  Returns bytes written. */
u32 agg_read(const struct agg_table *t, u32 *cursor, u8 *out, u32 cap);
/* Zero the values of aggregation agg (every one if agg < 0); keys stay.
 * aggs describes them (for min/max's starting values). */
void agg_clear(struct agg_table *t, const struct isa_prog_agg *aggs, i32 agg);

/* ------------------------------------------------------------ dyn.c */
#define DYN_NCLASSES 10             /* entry size classes 32 .. 16384 bytes */

/* Dynamic variables (self-> keyed by thread id, associative arrays keyed
 * by tuple) in a fixed arena; storing zero frees an entry. */
struct dyn_table {
    u8 *base;
    u32 size;
    u32 nbuckets;                   /* power of two */
    u32 used;                       /* bump offset */
    u32 free[DYN_NCLASSES];         /* free lists by size class (offsets) */
    u32 live;                       /* entries in use */
    u64 drops;                      /* stores dropped: arena full */
};

void dyn_init(struct dyn_table *d, void *mem, u32 size);
/* The value of (var, key), or NULL when absent. */
u8 *dyn_find(struct dyn_table *d, u32 var, const u8 *key, u32 keylen);
/* The value of (var, key), created zeroed with vsize bytes when absent;
 * NULL when the arena is full (dropped and counted). */
u8 *dyn_store(struct dyn_table *d, u32 var, const u8 *key, u32 keylen, u32 vsize);
/* Free (var, key) if present. */
void dyn_delete(struct dyn_table *d, u32 var, const u8 *key, u32 keylen);

/* ------------------------------------------------------------ vm.c */
#define VM_NARGS 10                 /* ARG 0..9 */
#define VM_BORROW_MAX 4             /* kernel strings borrowed in one run (then copied) */

/* Everything one clause runs with.  The engine keeps one (static: it is
 * single-CPU and not reentrant), points it at a session and fills the
 * per-firing part before each vm_run. */
struct vm_ctx {
    /* the session */
    const struct vm_prog *prog;
    u8 *globals;                    /* prog->globals_bytes */
    u8 *locals;                     /* prog->locals_bytes */
    struct agg_table *agg;
    struct dyn_table *dyn;
    /* the environment: safe loads and builtin variables */
    void *env;
    bool (*load)(void *env, u64 addr, u32 size, u64 *out);
    /* Builtin id's value; for string builtins the address of a trusted
     * NUL-terminated kernel string, which the VM copies into scratch. */
    u64 (*builtin)(void *env, u32 id);
    /* The kernel stack at the firing: at most max program counters into
     * pcs (innermost first), returns how many (stack(); NULL: none). */
    u32 (*stack)(void *env, u64 *pcs, u32 max);
    /* work areas */
    char *scratch;                  /* strings made while the clause runs */
    u32 scratch_size;
    u8 *stage;                      /* records made while the clause runs */
    u32 stage_size;
    /* the firing */
    const u64 *args;                /* args[0..nargs): the caller's, not copied */
    u32 nargs;                      /* at most VM_NARGS */
    u32 probe;                      /* probe id */
    u32 epid;
    u64 timestamp;                  /* record headers' timestamp; 0: read the
                                     * TIMESTAMP builtin when the first record
                                     * (or fault) needs it */
    /* results of vm_run */
    u32 stage_len;                  /* bytes of complete records staged */
    u32 fault;                      /* enum isa_f */
    u32 fault_pc;                   /* program-wide pc of the fault */
    u64 fault_addr;
    bool exited;                    /* EXIT ran (its record is staged) */
    u64 exit_code;
    /* state of the run */
    u32 scratch_used;
    u64 last_str;                   /* the newest string made or borrowed ... */
    u32 last_len;                   /* ... and its length: vm_str needs no scan */
    u32 nborrowed;                  /* entries of borrowed[] valid in this run */
    /* Trusted kernel strings (string builtins: thread, probe names) handed
     * out in place for this run instead of copied into scratch; they do
     * not change while a clause runs (interrupts are off). */
    struct { u64 addr; u32 len; } borrowed[VM_BORROW_MAX];
    u32 rec_open;                   /* offset of the open record, or VM_NO_REC */
    u32 rec_end;                    /* end of the open record's bytes */
    u32 tuple_len, tuple_n;
    u64 regs[ISA_NREGS];
    char nul[8];                    /* "": what an absent string variable reads as */
    u8 tuple[PROBE_TUPLE_BYTES];
};
#define VM_NO_REC 0xffffffffu

/* Run clause `clause` of c->prog: returns ISA_F_NONE (records staged in
 * c->stage[0..c->stage_len)) or the fault (c->fault_pc, c->fault_addr;
 * nothing staged). */
u32 vm_run(struct vm_ctx *c, u32 clause);
/* The firing's timestamp: c->timestamp, read from the TIMESTAMP builtin
 * the first time it is needed (the engine and records). */
u64 vm_timestamp(struct vm_ctx *c);

/* ------------------------------------------------------------ vmstr.c */
/* The VM-owned string at addr (string table, scratch, variables, the
 * dynamic arena): its bytes, *len set (at most strsize - 1); NULL when addr
 * is not in a VM-owned area. */
const char *vm_str(const struct vm_ctx *c, u64 addr, u32 *len);
/* A new scratch string copied from s (len bytes, truncated to strsize -
 * 1), NUL-terminated; NULL when scratch is exhausted. */
char *vm_str_new(struct vm_ctx *c, const char *s, u32 len);
/* Helper h (enum isa_h) of args a[0..]: its result, or a fault in *fault
 * (and *addr for BADADDR). */
u64 vm_helper(struct vm_ctx *c, u32 h, const u64 *a, u32 *fault, u64 *addr);
/* The trusted kernel string s (a string builtin's value) as a VM string:
 * borrowed in place for this run (c->borrowed, which vm_str accepts),
 * or copied into scratch once VM_BORROW_MAX are. */
u64 vm_str_kernel(struct vm_ctx *c, const char *s, u32 *fault);
#endif
