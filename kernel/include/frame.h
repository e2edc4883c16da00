/* Probe-channel frames: streaming decoder and encoder (kernel/chan/frame.c).
 *
 * Pure: uses only lib.h (memcpy, memmove, crc32_update), so the same file is
 * built for the host by tests/test_frame_c.py and checked byte for byte
 * against introspect/codec.py (Decoder with max_payload = WIRE_MAX_REQUEST,
 * then classify()).  The decoder counts into a struct wire_chanstat_rep the
 * caller owns: bytes_in, skipped_bytes, frames_in and every rej_* counter
 * (rej_unknown_type / rej_bad_payload through frame_classify + frame_reject,
 * which the caller does per delivered frame, as codec.KernelModel does). */
#ifndef UNIK_FRAME_H
#define UNIK_FRAME_H
#include "types.h"
#include "wire.h"

#define FRAME_BUF_SIZE (WIRE_HEADER_SIZE + WIRE_MAX_REQUEST)

struct frame_dec {
    u32 len;                          /* bytes held in buf */
    u32 discard;                      /* bytes of an oversized payload still to drop */
    struct wire_chanstat_rep *stats;  /* counters (owned by the caller) */
    u8 buf[FRAME_BUF_SIZE];           /* a partial frame, starting at a candidate 'U' */
};

/* One well-formed frame (header and payload CRCs good, length <= MAX_REQUEST).
 * `payload` points into the decoder and is valid only during the call. */
typedef void (*frame_cb)(void *ctx, u16 type, u32 id, const u8 *payload, u32 len);

void frame_init(struct frame_dec *d, struct wire_chanstat_rep *stats);
/* Add n received bytes; cb is called (in stream order) for each frame they
 * complete.  The callback may not feed the same decoder. */
void frame_feed(struct frame_dec *d, const void *bytes, size_t n, frame_cb cb, void *ctx);
/* The host left: bytes held count as rej_truncated; counts a disconnect. */
void frame_disconnect(struct frame_dec *d);

/* Reject reason (enum wire_rej) the server gives a delivered frame, or -1
 * when it will be served: codec.classify(). */
int frame_classify(u16 type, u32 len);
/* Count a rejection in the stats (rej_* field of `why`). */
void frame_reject(struct frame_dec *d, int why);

/* Write header + payload to out (cap bytes).  payload may already sit at
 * out + WIRE_HEADER_SIZE (it is moved with memmove).  Returns the frame's
 * size, or 0 if it does not fit or len > WIRE_MAX_PAYLOAD. */
u32 frame_encode(void *out, u32 cap, u16 type, u32 id, const void *payload, u32 len);

#endif
