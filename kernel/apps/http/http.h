/* The HTTP application: shared definitions between its parser (parse.c,
 * pure), the key-value store (kv.c), the routes and statistics (route.c)
 * and the event-loop server (server.c). */
#ifndef UNIK_HTTP_H
#define UNIK_HTTP_H
#include "types.h"

#define HTTP_PORT 80                  /* listening TCP port (unik boot --port maps a host port to it) */
#define HTTP_HEAD_MAX 4096            /* bytes of request line + headers; more = 431 */
#define HTTP_LINE_MAX 1024            /* bytes of the request line; more = 414 */
#define HTTP_HEADERS_MAX 32           /* header fields per request; more = 431 */
#define HTTP_BODY_MAX 4096            /* bytes of a request body (= the largest value); more = 413 */
#define HTTP_IN_BUF (HTTP_HEAD_MAX + HTTP_BODY_MAX)   /* per-connection receive buffer */
#define HTTP_RESP_MAX (HTTP_BODY_MAX + 512)           /* the largest response: a value + head */
#define HTTP_OUT_BUF (2 * HTTP_RESP_MAX)              /* per-connection send buffer */
#define HTTP_CONN_MAX 96              /* connections served at once; more = 503 and close */
#define HTTP_IDLE_MS 30000            /* an idle keep-alive connection is closed after this (cmdline http.idle_ms=) */
#define HTTP_REQ_MS 10000             /* a started request must be complete within this, else 408 (http.req_ms=) */
#define HTTP_LINGER_MS 2000          /* after answering and sending FIN, drop the peer's input this long at most */
#define HTTP_POLL_MS 250              /* the event loop wakes at least this often to expire connections */
#define KV_KEY_MAX 64                 /* bytes of a key ([A-Za-z0-9._~-]) */
#define KV_VALUE_MAX HTTP_BODY_MAX    /* bytes of a value */
#define KV_KEYS_MAX 256               /* keys in the store; more = 507 */

enum http_method { HTTP_GET, HTTP_PUT, HTTP_DELETE, HTTP_HEAD, HTTP_POST, HTTP_OTHER };

/* One parsed request; pointers point into the connection's buffer. */
struct http_req {
    enum http_method method;
    const char *path;                 /* the target up to '?' (not NUL-terminated) */
    u32 path_len;
    const u8 *body;
    u32 body_len;
    bool http10;                      /* HTTP/1.0 (closes unless keep-alive) */
    bool close;                       /* the connection closes after the response */
    u16 status;                       /* a parse error: the 4xx/5xx to answer */
    const char *reason;               /* ... and why, for the response body */
    bool expect_continue;             /* "need more" with the head complete and Expect: 100-continue */
};

/* parse.c: parse the request at the start of buf[0..len).  Returns the
 * bytes it spans (head + body) when complete, 0 when more bytes are
 * needed, -1 for a bad request (req->status and req->reason say why; the
 * connection must close after answering). */
int http_parse(const u8 *buf, u32 len, struct http_req *req);
const char *http_status_text(u16 status);

/* kv.c: the in-memory store (one thread: the server's). */
enum kv_put { KV_CREATED, KV_REPLACED, KV_FULL, KV_NOMEM };
bool kv_key_ok(const char *key, u32 len);
bool kv_get(const char *key, u32 klen, const u8 **val, u32 *vlen);
enum kv_put kv_put(const char *key, u32 klen, const u8 *val, u32 vlen);
bool kv_delete(const char *key, u32 klen);
void kv_usage(u32 *keys, u64 *bytes);

/* route.c: answer one parsed request (or a parse error) into out[0..max):
 * the response's length.  Counts the request in the statistics. */
u32 route_respond(const struct http_req *req, char *out, u32 max);
/* route.c: an error the server itself answers (408, 503); counted. */
u32 route_error(u16 status, const char *reason, char *out, u32 max);
/* route.c: the server's connection counters, shown by GET /stats. */
struct http_conn_stats {
    u64 accepted, rejected, closed, timed_out, open;
};
extern struct http_conn_stats http_conns;
#endif
