/* Dynamic variables: thread-locals (self->x, keyed by the thread id) and
 * associative arrays (keyed by a tuple), one hash table per session in a
 * fixed arena of dynvarsize bytes.  The arena holds the bucket heads (u32
 * offsets), then entries
 *   u32 next | u32 hash | u32 var | u16 keylen | u8 class | u8 0 |
 *   key (padded to 8) | value
 * each in a power-of-two size class; storing zero frees an entry onto its
 * class's free list, and a store that finds no room is dropped and
 * counted.  Called by the VM with interrupts off.  Pure: also built for
 * the host. */
#include "lib.h"
#include "vm.h"

struct dyn_ent {
    u32 next;                   /* bucket chain, or free list; 0 = none */
    u32 hash;
    u32 var;
    u16 keylen;
    u8 cls;                     /* size class: 32 << cls bytes */
    u8 pad;
};

#define DYN_MIN_BUCKETS 16
#define DYN_MAX_BUCKETS 65536
#define DYN_BYTES_PER_BUCKET 256
#define DYN_CLASS_MIN 32

/* Lay out an empty table in mem[0..size). */
void dyn_init(struct dyn_table *d, void *mem, u32 size)
{
    u32 n = DYN_MIN_BUCKETS;
    while (n < DYN_MAX_BUCKETS && (u64)n * 2 * DYN_BYTES_PER_BUCKET <= size)
        n *= 2;
    d->base = mem;
    d->size = size;
    d->nbuckets = n;
    d->used = n * sizeof(u32);
    d->live = 0;
    d->drops = 0;
    memset(d->free, 0, sizeof d->free);
    memset(mem, 0, d->used);
}

/* Hash of (var, key), keys being whole u64 words. */
static u32 dyn_hash(u32 var, const u8 *key, u32 keylen)
{
    u64 h = 0x84222325cbf29ce4ull ^ ((u64)var << 32) ^ keylen;
    for (u32 i = 0; i + 8 <= keylen; i += 8) {
        u64 w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    h *= 0x9e3779b97f4a7c15ull;
    return (u32)(h >> 32);
}

static struct dyn_ent *dyn_ent(const struct dyn_table *d, u32 off)
{
    return (struct dyn_ent *)(d->base + off);
}

static u8 *dyn_value(struct dyn_ent *en)
{
    return (u8 *)(en + 1) + ALIGN_UP(en->keylen, 8);
}

/* The bucket link pointing at (var, key)'s entry, or at the chain's
 * terminating 0 when absent. */
static u32 *dyn_link(struct dyn_table *d, u32 var, const u8 *key, u32 keylen, u32 h)
{
    u32 *link = (u32 *)d->base + (h & (d->nbuckets - 1));
    while (*link) {
        struct dyn_ent *en = dyn_ent(d, *link);
        if (en->hash == h && en->var == var && en->keylen == keylen &&
            !memcmp(en + 1, key, keylen))
            return link;
        link = &en->next;
    }
    return link;
}

u8 *dyn_find(struct dyn_table *d, u32 var, const u8 *key, u32 keylen)
{
    u32 *link = dyn_link(d, var, key, keylen, dyn_hash(var, key, keylen));
    return *link ? dyn_value(dyn_ent(d, *link)) : NULL;
}

/* Offset of a free block of class cls, or 0 when there is no room. */
static u32 dyn_alloc(struct dyn_table *d, u32 cls)
{
    u32 off = d->free[cls];
    if (off) {
        d->free[cls] = dyn_ent(d, off)->next;
        return off;
    }
    u32 bytes = DYN_CLASS_MIN << cls;
    if (bytes > d->size - d->used)
        return 0;
    off = d->used;
    d->used += bytes;
    return off;
}

/* Find or create (var, key) with a vsize-byte value; see vm.h. */
u8 *dyn_store(struct dyn_table *d, u32 var, const u8 *key, u32 keylen, u32 vsize)
{
    u32 h = dyn_hash(var, key, keylen);
    u32 *link = dyn_link(d, var, key, keylen, h);
    if (*link)
        return dyn_value(dyn_ent(d, *link));
    u64 need = sizeof(struct dyn_ent) + ALIGN_UP(keylen, 8) + ALIGN_UP(vsize, 8);
    u32 cls = 0;
    while (cls < DYN_NCLASSES && ((u64)DYN_CLASS_MIN << cls) < need)
        cls++;
    u32 off = cls < DYN_NCLASSES ? dyn_alloc(d, cls) : 0;
    if (!off) {
        d->drops++;
        return NULL;
    }
    struct dyn_ent *en = dyn_ent(d, off);
    en->hash = h;
    en->var = var;
    en->keylen = (u16)keylen;
    en->cls = (u8)cls;
    en->pad = 0;
    memcpy(en + 1, key, keylen);
    memset((u8 *)(en + 1) + keylen, 0, ALIGN_UP(keylen, 8) - keylen + ALIGN_UP(vsize, 8));
    en->next = 0;
    *link = off;                        /* the chain's end: publish it whole */
    d->live++;
    return dyn_value(en);
}

void dyn_delete(struct dyn_table *d, u32 var, const u8 *key, u32 keylen)
{
    u32 *link = dyn_link(d, var, key, keylen, dyn_hash(var, key, keylen));
    u32 off = *link;
    if (!off)
        return;
    struct dyn_ent *en = dyn_ent(d, off);
    *link = en->next;
    en->next = d->free[en->cls];
    d->free[en->cls] = off;
    d->live--;
}
