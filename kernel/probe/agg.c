/* Aggregations: one hash table per session in a fixed arena of aggsize
 * bytes (allocated by the engine at probe_open).  The arena holds the
 * bucket heads (u32 offsets), then the entries, allocated by bumping and
 * never freed, so a snapshot walks them in creation order.  An entry is
 *   u32 next | u32 hash | u16 agg | u16 keylen | u32 nwords |
 *   key (padded to 8) | nwords u64 values
 * and everything after `hash` is exactly probe_agg_read's entry format.
 * The key is the tuple encoding (ints 8 bytes LE, strings u16 length +
 * bytes, padded to 8).  Called by the VM (AGG) with interrupts off and by
 * the engine (snapshot, clear).  Pure: also built for the host. */
#include "lib.h"
#include "vm.h"

#define AGG_MIN_BUCKETS 16
#define AGG_MAX_BUCKETS 65536
#define AGG_BYTES_PER_BUCKET 256        /* one bucket per this much arena */

/* Lay out an empty table in mem[0..size). */
void agg_init(struct agg_table *t, void *mem, u32 size)
{
    u32 n = AGG_MIN_BUCKETS;
    while (n < AGG_MAX_BUCKETS && (u64)n * 2 * AGG_BYTES_PER_BUCKET <= size)
        n *= 2;
    t->base = mem;
    t->size = size;
    t->nbuckets = n;
    t->first = t->used = n * sizeof(u32);
    t->nkeys = 0;
    t->drops = 0;
    memset(t->last, 0, sizeof t->last);
    memset(mem, 0, t->first);
}

/* Hash of (agg, key); keys are whole u64 words (the tuple encoding). */
static u32 agg_hash(u16 agg, const u8 *key, u32 keylen)
{
    u64 h = 0xcbf29ce484222325ull ^ agg;
    for (u32 i = 0; i + 8 <= keylen; i += 8) {
        u64 w;
        __builtin_memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    h ^= keylen;
    h *= 0x9e3779b97f4a7c15ull;
    return (u32)(h >> 32);
}

static struct agg_ent *agg_ent(const struct agg_table *t, u32 off)
{
    return (struct agg_ent *)(t->base + off);
}

static u64 *agg_values(struct agg_ent *en)
{
    return (u64 *)((u8 *)(en + 1) + ALIGN_UP(en->keylen, 8));
}

/* Is entry en's key the keylen bytes at key?  (Its length is already
 * known equal; whole words first, as the tuple encoding has them.) */
static inline bool agg_key_eq(const struct agg_ent *en, const u8 *key, u32 keylen)
{
    const u8 *k = (const u8 *)(en + 1);
    u32 i = 0;
    for (; i + 8 <= keylen; i += 8) {
        u64 x, y;
        __builtin_memcpy(&x, k + i, 8);
        __builtin_memcpy(&y, key + i, 8);
        if (x != y)
            return false;
    }
    return i == keylen || !memcmp(k + i, key + i, keylen - i);
}

/* The entry of (agg, key) with its hash, or NULL. */
static inline struct agg_ent *agg_find(const struct agg_table *t, u16 agg, const u8 *key,
                                       u32 keylen, u32 h)
{
    const u32 *buckets = (const u32 *)t->base;
    for (u32 off = buckets[h & (t->nbuckets - 1)]; off; ) {
        struct agg_ent *en = agg_ent(t, off);
        if (en->hash == h && en->agg == agg && en->keylen == keylen &&
            agg_key_eq(en, key, keylen))
            return en;
        off = en->next;
    }
    return NULL;
}

/* The starting values of aggregation a (min and max start at the far end). */
static void agg_reset(const struct isa_prog_agg *a, u64 *w, u32 nwords)
{
    memset(w, 0, nwords * sizeof(u64));
    if (a->func == ISA_AGG_MIN)
        w[0] = (u64)INT64_MAX;
    else if (a->func == ISA_AGG_MAX)
        w[0] = (u64)INT64_MIN;
}

/* A new zeroed entry for (agg, key), or NULL when the arena is full. */
static struct agg_ent *agg_new(struct agg_table *t, const struct isa_prog_agg *a, u16 agg,
                               const u8 *key, u32 keylen, u32 h)
{
    u64 need = sizeof(struct agg_ent) + ALIGN_UP(keylen, 8) + (u64)a->nwords * 8;
    if (need > t->size - t->used)
        return NULL;
    u32 off = t->used;
    struct agg_ent *en = agg_ent(t, off);
    u32 *bucket = (u32 *)t->base + (h & (t->nbuckets - 1));
    en->hash = h;
    en->agg = agg;
    en->keylen = (u16)keylen;
    en->nwords = a->nwords;
    memcpy(en + 1, key, keylen);
    memset((u8 *)(en + 1) + keylen, 0, ALIGN_UP(keylen, 8) - keylen);
    agg_reset(a, agg_values(en), a->nwords);
    en->next = *bucket;
    t->used += (u32)need;
    t->nkeys++;
    *bucket = off;                      /* published last: lookups see it whole */
    return en;
}

/* quantize's bucket of v: 63 holds 0, 63+k holds [2^(k-1), 2^k), 63-k
 * the same magnitudes negated (the most negative values share bucket 0). */
static u32 agg_qbucket(u64 v)
{
    if (v == 0)
        return 63;
    bool neg = (i64)v < 0;
    u64 mag = neg ? -v : v;
    u32 k = 64 - (u32)__builtin_clzll(mag);
    if (k > 63)
        k = 63;
    return neg ? 63 - k : 63 + k;
}

/* lquantize's word for v: 0 underflow, 1+i level i, levels+1 overflow. */
static u32 agg_lqbucket(const struct isa_prog_agg *a, i64 v)
{
    u32 levels = a->nwords - 2;
    if (v < a->lq_lo)
        return 0;
    u64 i = ((u64)v - (u64)a->lq_lo) / (u64)a->lq_step;
    return i >= levels ? levels + 1 : (u32)i + 1;
}

/* Fold v into the value words w of aggregation a; see vm.h. */
void agg_apply(const struct isa_prog_agg *a, u64 *w, u64 v)
{
    switch (a->func) {
    case ISA_AGG_COUNT: w[0]++; break;
    case ISA_AGG_SUM: w[0] += v; break;
    case ISA_AGG_MIN: if ((i64)v < (i64)w[0]) w[0] = v; break;
    case ISA_AGG_MAX: if ((i64)v > (i64)w[0]) w[0] = v; break;
    case ISA_AGG_AVG: w[0]++; w[1] += v; break;
    case ISA_AGG_STDDEV: {
        u64 mag = (i64)v < 0 ? -v : v;
        unsigned __int128 sq = (unsigned __int128)mag * mag;
        unsigned __int128 acc = ((unsigned __int128)w[3] << 64 | w[2]) + sq;
        w[0]++;
        w[1] += v;
        w[2] = (u64)acc;
        w[3] = (u64)(acc >> 64);
        break;
    }
    case ISA_AGG_QUANTIZE: w[agg_qbucket(v)]++; break;
    case ISA_AGG_LQUANTIZE: w[agg_lqbucket(a, (i64)v)]++; break;
    }
}

/* Aggregate v into (agg, key); see vm.h. */
bool agg_update(struct agg_table *t, const struct isa_prog_agg *a, u16 agg,
                const u8 *key, u32 keylen, u64 v)
{
    u32 h = agg_hash(agg, key, keylen);
    struct agg_ent *en = agg_find(t, agg, key, keylen, h);
    if (!en && !(en = agg_new(t, a, agg, key, keylen, h))) {
        t->drops++;
        return false;
    }
    struct agg_last *l = &t->last[agg][agg_slot(key, keylen)];
    l->key = (const u8 *)(en + 1);
    l->w = agg_values(en);
    l->keylen = en->keylen;
    l->nkeys = a->nkeys;
    l->count = a->func == ISA_AGG_COUNT;
    agg_apply(a, agg_values(en), v);
    return true;
}

/* The values of (agg, key), or NULL. */
const u64 *agg_lookup(const struct agg_table *t, u16 agg, const u8 *key, u32 keylen)
{
    struct agg_ent *en = agg_find(t, agg, key, keylen, agg_hash(agg, key, keylen));
    return en ? agg_values(en) : NULL;
}

/* Bytes of entry en, header included. */
static u32 agg_ent_size(const struct agg_ent *en)
{
    return sizeof *en + (u32)ALIGN_UP(en->keylen, 8) + en->nwords * 8;
}

/* Snapshot entries from *cursor (0 = the first) into out; see vm.h. */
u32 agg_read(const struct agg_table *t, u32 *cursor, u8 *out, u32 cap)
{
    u32 off = *cursor ? *cursor : t->first, n = 0;
    const u32 skip = offsetof(struct agg_ent, agg);
    while (off < t->used) {
        const struct agg_ent *en = agg_ent(t, off);
        u32 sz = agg_ent_size(en);
        if (sz - skip > cap - n)
            break;
        memcpy(out + n, (const u8 *)en + skip, sz - skip);
        n += sz - skip;
        off += sz;
    }
    *cursor = off < t->used ? off : 0;
    return n;
}

/* Reset aggregation agg's values (every aggregation when agg < 0). */
void agg_clear(struct agg_table *t, const struct isa_prog_agg *aggs, i32 agg)
{
    for (u32 off = t->first; off < t->used; ) {
        struct agg_ent *en = agg_ent(t, off);
        if (agg < 0 || en->agg == (u32)agg)
            agg_reset(&aggs[en->agg], agg_values(en), en->nwords);
        off += agg_ent_size(en);
    }
}
