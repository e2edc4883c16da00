/* The packet capture tap (unik tcpdump): up to CAPTURE_MAX captures, each
 * a verified classic BPF program (cbpf.h), a snaplen and a bounded ring of
 * captured packets.  The network interface calls capture_tap for every
 * frame it receives or sends; kernel/chan/capture.c opens captures for
 * the host and drains their rings into CAPTURE_DATA frames.  See
 * docs/capture.md. */
#ifndef UNIK_CAPTURE_H
#define UNIK_CAPTURE_H
#include "types.h"
#include "../net/cbpf.h"

enum { CAPTURE_OK, CAPTURE_E_NOCAPTURE, CAPTURE_E_NOSPACE, CAPTURE_E_RANGE,
       CAPTURE_E_VERIFY };

#define CAPTURE_DIR_IN 0
#define CAPTURE_DIR_OUT 1

/* One packet in a ring (and, as is, in a CAPTURE_DATA frame: the layout
 * of wire.h's capture_pkt); caplen bytes follow, padded to 8. */
struct capture_rec {
    u64 ts_ns;                         /* time_ns() when tapped */
    u32 wirelen;                       /* length on the wire */
    u16 caplen;                        /* bytes kept */
    u8 dir;                            /* CAPTURE_DIR_IN / OUT */
    u8 pad;
};

/* A capture's counters: matched = drained + dropped + waiting. */
struct capture_stats {
    u64 received;                      /* frames the filter ran on */
    u64 matched;                       /* frames the filter accepted */
    u64 dropped;                       /* accepted but the ring was full */
    u64 drained;                       /* records taken out by capture_drain */
    u64 waiting;                       /* records in the ring now */
    u64 tap_ns;                        /* time spent filtering and copying */
};

/* Called by the network interface for every frame, in any context
 * (interrupts included): never blocks, never allocates. dir: 0 in, 1 out. */
void capture_tap(int dir, const void *frame, u32 len);
/* The same for a frame of which only caplen of wirelen bytes are at hand
 * (CAPTURE_INJECT). */
void capture_tap_wire(int dir, const u8 *frame, u32 caplen, u32 wirelen);

/* The capture's life (called by kernel/chan/capture.c, thread context). */
int capture_open(u32 snaplen, u32 bufsize, u32 ninsns, u32 *id);
int capture_prog(u32 id, u32 offset, const u8 *insns, u32 n);
int capture_start(u32 id, struct cbpf_verr *e);
int capture_stop(u32 id);
int capture_close(u32 id);
void capture_close_all(void);
int capture_stats(u32 id, struct capture_stats *out);
/* Bitmask of captures with records waiting. */
u32 capture_pending(void);
/* Move whole records (capture_rec + bytes padded to 8) into buf, at most
 * cap bytes; *npkt gets their count.  Returns the bytes written. */
u32 capture_drain(u32 id, u8 *buf, u32 cap, u32 *npkt);
#endif
