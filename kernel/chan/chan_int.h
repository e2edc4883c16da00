/* Internal: what the channel's files share.  server.c owns the thread,
 * the decoder and the transmit path (replies and stream frames); stream.c
 * pushes unsolicited frames (LOG_DATA, TRACE_DATA); trace.c serves the
 * trace requests.  Every chan_serve_<name> is called by the dispatch that
 * wire.h's request table generates in server.c, with the request's type,
 * id, payload and its length (already checked against the table). */
#ifndef UNIK_CHAN_INT_H
#define UNIK_CHAN_INT_H
#include "types.h"
#include "wire.h"

extern struct wire_chanstat_rep chan_stats;

/* server.c: a reply's payload area (waits for a transmit buffer). */
u8 *chan_payload(u32 *cap);
/* server.c: a stream frame's payload area, NULL when the ring is full. */
u8 *chan_stream_payload(u32 *cap);
/* server.c: frame and queue the payload built; false if it was dropped. */
bool chan_reply(u16 type, u32 id, u32 len);
/* server.c: answer a request with one fixed-size reply (len 0: empty). */
void chan_answer(u16 type, u32 id, const void *rep, u32 len);
/* server.c: a stream's drain period from the host's rate (0: dflt_us). */
u64 chan_period_ns(u32 rate_us, u32 dflt_us, u32 min_us);
/* server.c: answer a request with an ERROR reply. */
void chan_error(u16 req_type, u32 id, u32 code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* trace.c: the trace requests (chan_serve_trace_*, chan_serve_agg_*) */
void chan_serve_trace_open(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_chunk(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_load(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_enable(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_go(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_stop(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_close(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_status(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_agg_read(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_agg_clear(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_trace_deadman(u16 type, u32 id, const u8 *p, u32 len);
/* Drain the sessions that are due into TRACE_DATA frames. */
void chan_trace_run(u64 now);
/* ns until a session drain is due (~0: no session is active). */
u64 chan_trace_wait_ns(u64 now);
/* The host left: close every session. */
void chan_trace_host_left(void);

/* capture.c: the capture requests (chan_serve_capture_*) and CAPTURE_DATA */
void chan_serve_capture_open(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_prog(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_start(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_status(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_stop(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_close(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_capture_inject(u16 type, u32 id, const u8 *p, u32 len);
void chan_capture_run(u64 now);
u64 chan_capture_wait_ns(u64 now);
void chan_capture_host_left(void);

/* netping.c: the network requests (chan_serve_net_*) and NET_PING_EVENT */
void chan_serve_net_ping_start(u16 type, u32 id, const u8 *p, u32 len);
void chan_serve_net_ping_stop(u16 type, u32 id, const u8 *p, u32 len);
void chan_net_run(u64 now);
u64 chan_net_wait_ns(u64 now);
void chan_net_host_left(void);

/* stream.c */
void chan_serve_log_subscribe(u16 type, u32 id, const u8 *p, u32 len);
/* Push the stream frames that are due; called by the probe-chan loop. */
void chan_stream_run(void);
/* How long the probe-chan thread may block before chan_stream_run is due
 * again (CHAN_BLOCK_TIMEOUT_MS when no stream is on). */
u32 chan_stream_wait_ms(void);
/* The host left: stop every stream (and close every trace session). */
void chan_stream_host_left(void);
#endif
