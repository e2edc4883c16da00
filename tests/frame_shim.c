/* Host-side harness for kernel/chan/frame.c (built by tests/cpure.py).
 *
 * Does with each delivered frame what kernel/chan/server.c does before it
 * serves one: frame_classify(), and frame_reject() when it is refused.  Every
 * delivered frame is recorded (served or not) so the test can compare them
 * with introspect.codec:
 *   record = u8 why (0xff = served, else enum wire_rej) | u16 type | u32 id |
 *            u32 len | payload */
#include <stdlib.h>
#include <string.h>
#include "frame.h"
#include "lib.h"

struct shim {
    struct wire_chanstat_rep stats;
    struct frame_dec dec;
    u8 *out;
    size_t cap, len;
    int overflow;
};

static void put(struct shim *s, const void *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + n)
            cap *= 2;
        u8 *o = realloc(s->out, cap);
        if (!o) {
            s->overflow = 1;
            return;
        }
        s->out = o;
        s->cap = cap;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

static void on_frame(void *ctx, u16 type, u32 id, const u8 *payload, u32 len)
{
    struct shim *s = ctx;
    int why = frame_classify(type, len);
    if (why >= 0)
        frame_reject(&s->dec, why);
    u8 w = why >= 0 ? (u8)why : 0xff;
    put(s, &w, 1);
    put(s, &type, 2);
    put(s, &id, 4);
    put(s, &len, 4);
    put(s, payload, len);
}

struct shim *shim_new(void)
{
    struct shim *s = calloc(1, sizeof(*s));
    if (s)
        frame_init(&s->dec, &s->stats);
    return s;
}

void shim_free(struct shim *s)
{
    free(s->out);
    free(s);
}

void shim_feed(struct shim *s, const u8 *p, size_t n)
{
    frame_feed(&s->dec, p, n, on_frame, s);
}

void shim_disconnect(struct shim *s) { frame_disconnect(&s->dec); }

/* Frames recorded since the last call: pointer and length (then cleared). */
const u8 *shim_take(struct shim *s, size_t *len, int *overflow)
{
    *len = s->len;
    *overflow = s->overflow;
    s->len = 0;
    return s->out;
}

void shim_stats(struct shim *s, struct wire_chanstat_rep *out) { *out = s->stats; }

u32 shim_held(struct shim *s) { return s->dec.len; }
u32 shim_discard(struct shim *s) { return s->dec.discard; }
