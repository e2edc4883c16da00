/* The HTTP application's key-value store: at most KV_KEYS_MAX keys of at
 * most KV_KEY_MAX bytes, values of at most KV_VALUE_MAX bytes on the kernel
 * heap (so `unik mem` shows what the store holds, and a leak shows).  Only
 * the server thread uses it: no lock.  A linear table: 256 entries
 * compared by length first cost less than the request's own parsing. */
#include "http.h"
#include "lib.h"
#include "mm.h"

struct kv_entry {
    u8 klen;                          /* 0 = free slot */
    char key[KV_KEY_MAX];
    u8 *val;                          /* kmalloc'd, NULL for an empty value */
    u32 vlen;
};

static struct kv_entry kv_table[KV_KEYS_MAX];
static u32 kv_keys;
static u64 kv_bytes;

/* A key: 1..KV_KEY_MAX bytes of [A-Za-z0-9._~-] (no decoding needed). */
bool kv_key_ok(const char *key, u32 len)
{
    if (len == 0 || len > KV_KEY_MAX)
        return false;
    for (u32 i = 0; i < len; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '~' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* The entry holding key, or NULL. */
static struct kv_entry *kv_find(const char *key, u32 klen)
{
    for (u32 i = 0; i < KV_KEYS_MAX; i++)
        if (kv_table[i].klen == klen && !memcmp(kv_table[i].key, key, klen))
            return &kv_table[i];
    return NULL;
}

bool kv_get(const char *key, u32 klen, const u8 **val, u32 *vlen)
{
    struct kv_entry *e = kv_find(key, klen);
    if (!e)
        return false;
    *val = e->val;
    *vlen = e->vlen;
    return true;
}

/* Store a copy of val under key (replacing an old value). */
enum kv_put kv_put(const char *key, u32 klen, const u8 *val, u32 vlen)
{
    struct kv_entry *e = kv_find(key, klen);
    u8 *copy = NULL;
    if (!e) {
        for (u32 i = 0; i < KV_KEYS_MAX && !e; i++)
            if (!kv_table[i].klen)
                e = &kv_table[i];
        if (!e)
            return KV_FULL;
    }
    if (vlen && !(copy = kmalloc(vlen)))
        return KV_NOMEM;
    if (vlen)
        memcpy(copy, val, vlen);
    enum kv_put r = e->klen ? KV_REPLACED : KV_CREATED;
    if (r == KV_REPLACED) {
        kfree(e->val);
        kv_bytes -= e->vlen;
    } else {
        memcpy(e->key, key, klen);
        e->klen = (u8)klen;
        kv_keys++;
    }
    e->val = copy;
    e->vlen = vlen;
    kv_bytes += vlen;
    return r;
}

bool kv_delete(const char *key, u32 klen)
{
    struct kv_entry *e = kv_find(key, klen);
    if (!e)
        return false;
    kfree(e->val);
    kv_bytes -= e->vlen;
    kv_keys--;
    memset(e, 0, sizeof *e);
    return true;
}

/* Keys stored and value bytes held (GET /stats). */
void kv_usage(u32 *keys, u64 *bytes)
{
    *keys = kv_keys;
    *bytes = kv_bytes;
}
