/* Probe-channel frame decoder and encoder.
 *
 * The decoder is the algorithm of introspect/codec.py's Decoder (with
 * max_payload = WIRE_MAX_REQUEST), step for step, so that the host can
 * predict every counter it keeps:
 *   1. while discarding an oversized payload, drop bytes until it is consumed;
 *   2. skip bytes up to the first 'U' followed by 'K' (or last): skipped_bytes;
 *   3. wait for a whole header; header_crc wrong -> BAD_HEADER, drop one byte;
 *   4. length > WIRE_MAX_REQUEST -> OVERSIZED, drop the header, discard length;
 *   5. wait for the payload; payload_crc wrong -> BAD_CHECKSUM, drop the frame;
 *   6. otherwise deliver the frame (frames_in).
 * The Python decoder buffers everything; this one holds at most one header
 * plus WIRE_MAX_REQUEST bytes.  That gives the same result because a full
 * buffer always lets a step make progress (see frame_run()), and the state after
 * all input is consumed is the same.
 *
 * Pure: only lib.h functions, so it also builds for the host. */
#include "frame.h"
#include "lib.h"

#define HDR WIRE_HEADER_SIZE

/* The held bytes are buf[0, len); dropping from the front moves the rest
 * down.  BAD_HEADER drops one byte at a time, but it needs "UK" followed by
 * a wrong CRC, so it is rare outside deliberate fuzzing; the memmove of at
 * most FRAME_BUF_SIZE bytes is cheap anyway. */
static void frame_drop(struct frame_dec *d, u32 n)
{
    if (n >= d->len) {
        d->len = 0;
        return;
    }
    memmove(d->buf, d->buf + n, d->len - n);
    d->len -= n;
}

/* codec._find_magic: index of the first 'U' followed by 'K' or last; len if none. */
static u32 frame_find_magic(const u8 *b, u32 len)
{
    for (u32 i = 0; i < len; i++)
        if (b[i] == 'U' && (i + 1 == len || b[i + 1] == 'K'))
            return i;
    return len;
}

void frame_reject(struct frame_dec *d, int why)
{
    struct wire_chanstat_rep *s = d->stats;
    switch (why) {
    case WIRE_REJ_BAD_HEADER: s->rej_bad_header++; break;
    case WIRE_REJ_OVERSIZED: s->rej_oversized++; break;
    case WIRE_REJ_BAD_CHECKSUM: s->rej_bad_checksum++; break;
    case WIRE_REJ_UNKNOWN_TYPE: s->rej_unknown_type++; break;
    case WIRE_REJ_BAD_PAYLOAD: s->rej_bad_payload++; break;
    case WIRE_REJ_TRUNCATED: s->rej_truncated++; break;
    default: break;
    }
}

/* Decoding steps over the held bytes until one needs more input. */
static void frame_run(struct frame_dec *d, frame_cb cb, void *ctx)
{
    for (;;) {
        if (d->discard) {
            u32 k = MIN(d->discard, d->len);
            frame_drop(d, k);
            d->discard -= k;
            if (d->discard)
                return;
        }
        u32 i = frame_find_magic(d->buf, d->len);
        d->stats->skipped_bytes += i;
        frame_drop(d, i);
        if (d->len < HDR)
            return;
        struct wire_header h;
        memcpy(&h, d->buf, HDR);
        if (crc32_update(0, d->buf, 16) != h.header_crc) {
            frame_reject(d, WIRE_REJ_BAD_HEADER);
            frame_drop(d, 1);
            continue;
        }
        if (h.length > WIRE_MAX_REQUEST) {
            frame_reject(d, WIRE_REJ_OVERSIZED);
            frame_drop(d, HDR);
            d->discard = h.length;
            continue;
        }
        u32 end = HDR + h.length;
        if (d->len < end)
            return;
        if (crc32_update(0, d->buf + HDR, h.length) != h.payload_crc) {
            frame_reject(d, WIRE_REJ_BAD_CHECKSUM);
            frame_drop(d, end);
            continue;
        }
        d->stats->frames_in++;
        if (cb)
            cb(ctx, h.type, h.id, d->buf + HDR, h.length);
        frame_drop(d, end);
    }
}

void frame_init(struct frame_dec *d, struct wire_chanstat_rep *stats)
{
    d->len = 0;
    d->discard = 0;
    d->stats = stats;
}

void frame_feed(struct frame_dec *d, const void *bytes, size_t n, frame_cb cb, void *ctx)
{
    const u8 *p = bytes;
    d->stats->bytes_in += n;
    while (n) {
        /* Step 1 straight from the input: an oversized payload is dropped
         * without copying it (the buffer is always empty while discarding). */
        if (d->discard && d->len == 0) {
            size_t k = MIN((size_t)d->discard, n);
            d->discard -= (u32)k;
            p += k;
            n -= k;
            continue;
        }
        size_t k = MIN(n, (size_t)(FRAME_BUF_SIZE - d->len));
        memcpy(d->buf + d->len, p, k);
        d->len += (u32)k;
        p += k;
        n -= k;
        frame_run(d, cb, ctx);
    }
}

void frame_disconnect(struct frame_dec *d)
{
    if (d->len)
        frame_reject(d, WIRE_REJ_TRUNCATED);
    d->len = 0;
    d->discard = 0;
    d->stats->disconnects++;
}

/* Is len a payload size request type with this table row accepts: head +
 * k * item bytes, lo <= k <= hi (item 0: exactly head)?  Called by
 * frame_classify. */
static bool frame_size_ok(u32 len, u32 head, u32 item, u32 lo, u32 hi)
{
    if (item == 0)
        return len == head;
    if (len < head || (len - head) % item)
        return false;
    u32 k = (len - head) / item;
    return k >= lo && k <= hi;
}

/* codec.classify(): the reject reason for a delivered frame, or -1 when it
 * will be served.  Generated from the request table (wire.h). */
int frame_classify(u16 type, u32 len)
{
    switch (type) {
#define FRAME_CLASSIFY(N, n, head, item, lo, hi, feat) \
    case WIRE_MSG_##N: \
        return frame_size_ok(len, head, item, lo, hi) ? -1 : WIRE_REJ_BAD_PAYLOAD;
    WIRE_REQUESTS(FRAME_CLASSIFY)
#undef FRAME_CLASSIFY
    default:
        return WIRE_REJ_UNKNOWN_TYPE;
    }
}

u32 frame_encode(void *out, u32 cap, u16 type, u32 id, const void *payload, u32 len)
{
    u8 *o = out;
    if (len > WIRE_MAX_PAYLOAD || cap < HDR || len > cap - HDR)
        return 0;
    if (len && payload != o + HDR)
        memmove(o + HDR, payload, len);
    struct wire_header h;
    h.magic = WIRE_MAGIC;
    h.type = type;
    h.length = len;
    h.id = id;
    h.payload_crc = crc32_update(0, o + HDR, len);
    h.header_crc = 0;
    memcpy(o, &h, HDR);
    h.header_crc = crc32_update(0, o, 16);
    memcpy(o, &h, HDR);
    return HDR + len;
}
