/* The HTTP application's routes and request statistics: GET / (health),
 * GET/PUT/DELETE /kv/<key> (kv.c), GET /stats (this file's counters as
 * JSON).  Called by the server (server.c) with each parsed request; writes
 * the whole response (head and body) into the connection's send buffer. */
#include "http.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"

enum route { ROUTE_ROOT, ROUTE_KV, ROUTE_STATS, ROUTE_OTHER, ROUTE_N };
static const char *const route_names[ROUTE_N] = { "/", "/kv", "/stats", "other" };
static const u16 route_statuses[] = { 200, 201, 204, 400, 404, 405, 408, 411, 413,
                                      414, 431, 503, 505, 507 };
#define ROUTE_NSTATUS ARRAY_SIZE(route_statuses)

/* Requests answered, by route and by status (GET /stats). */
static u64 route_counts[ROUTE_N][ROUTE_NSTATUS];
static u64 route_requests;
struct http_conn_stats http_conns;

/* Count one answered request. */
static void route_count(enum route r, u16 status)
{
    route_requests++;
    for (u32 i = 0; i < ROUTE_NSTATUS; i++)
        if (route_statuses[i] == status)
            route_counts[r][i]++;
}

/* Write a response: status line, Content-Length, Connection, the extra
 * header lines (each ending in \r\n) and the body; its length. */
static u32 route_write(char *out, u32 max, u16 status, bool close, const char *ctype,
                       const void *body, u32 blen, const char *extra)
{
    int n = ksnprintf(out, max, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %u\r\n"
                      "Connection: %s\r\n%s\r\n", status, http_status_text(status), ctype,
                      blen, close ? "close" : "keep-alive", extra ? extra : "");
    if (n < 0 || (u32)n + blen > max)
        panic("http: a %u response of %u bytes does not fit %u", status, blen, max);
    memcpy(out + n, body, blen);
    return (u32)n + blen;
}

/* A short text response ("reason\n" or "error: reason\n"), counted. */
static u32 route_text(enum route r, u16 status, bool close, const char *text,
                      const char *extra, char *out, u32 max)
{
    char body[160];
    int n = ksnprintf(body, sizeof body, status >= 400 ? "error: %s\n" : "%s\n", text);
    route_count(r, status);
    return route_write(out, max, status, close, "text/plain", body,
                       (u32)MIN((u32)n, sizeof body - 1), extra);
}

/* An error the server itself produces (408 on a slow request, 503 when
 * full): counted under "other", the connection closes. */
u32 route_error(u16 status, const char *reason, char *out, u32 max)
{
    return route_text(ROUTE_OTHER, status, true, reason, NULL, out, max);
}

/* GET /stats: the counters as one JSON object. */
static u32 route_stats(bool close, char *out, u32 max)
{
    static char js[2048];
    u32 keys, n = 0;
    u64 bytes;
    kv_usage(&keys, &bytes);
    route_count(ROUTE_STATS, 200);            /* this request counts itself */
    n += (u32)ksnprintf(js + n, sizeof js - n, "{\"requests\": %lu, \"routes\": {", route_requests);
    for (u32 r = 0; r < ROUTE_N; r++) {
        n += (u32)ksnprintf(js + n, sizeof js - n, "%s\"%s\": {", r ? ", " : "", route_names[r]);
        for (u32 i = 0, first = 1; i < ROUTE_NSTATUS; i++) {
            if (!route_counts[r][i])
                continue;
            n += (u32)ksnprintf(js + n, sizeof js - n, "%s\"%u\": %lu", first ? "" : ", ",
                                route_statuses[i], route_counts[r][i]);
            first = 0;
        }
        n += (u32)ksnprintf(js + n, sizeof js - n, "}");
    }
    n += (u32)ksnprintf(js + n, sizeof js - n,
                        "}, \"connections\": {\"accepted\": %lu, \"open\": %lu, \"closed\": %lu, "
                        "\"rejected\": %lu, \"timed_out\": %lu}, \"kv\": {\"keys\": %u, "
                        "\"bytes\": %lu}, \"uptime_ms\": %lu}\n",
                        http_conns.accepted, http_conns.open, http_conns.closed,
                        http_conns.rejected, http_conns.timed_out, keys, bytes,
                        time_ns() / 1000000);
    n = MIN(n, (u32)sizeof js - 1);
    return route_write(out, max, 200, close, "application/json", js, n, NULL);
}

/* /kv/<key>: GET, PUT, DELETE. */
static u32 route_kv(const struct http_req *q, const char *key, u32 klen, char *out, u32 max)
{
    static const char allow[] = "Allow: GET, PUT, DELETE\r\n";
    const u8 *val;
    u32 vlen;
    if (!kv_key_ok(key, klen))
        return route_text(ROUTE_KV, 400, q->close, "bad key (1..64 bytes of A-Z a-z 0-9 . _ ~ -)",
                          NULL, out, max);
    switch (q->method) {
    case HTTP_GET:
        if (!kv_get(key, klen, &val, &vlen))
            return route_text(ROUTE_KV, 404, q->close, "no such key", NULL, out, max);
        route_count(ROUTE_KV, 200);
        return route_write(out, max, 200, q->close, "application/octet-stream", val, vlen, NULL);
    case HTTP_PUT:
        switch (kv_put(key, klen, q->body, q->body_len)) {
        case KV_CREATED: return route_text(ROUTE_KV, 201, q->close, "created", NULL, out, max);
        case KV_REPLACED: return route_text(ROUTE_KV, 200, q->close, "replaced", NULL, out, max);
        case KV_FULL: return route_text(ROUTE_KV, 507, q->close, "store full (256 keys)", NULL, out, max);
        default: return route_text(ROUTE_KV, 507, q->close, "out of memory", NULL, out, max);
        }
    case HTTP_DELETE:
        if (!kv_delete(key, klen))
            return route_text(ROUTE_KV, 404, q->close, "no such key", NULL, out, max);
        route_count(ROUTE_KV, 204);
        return route_write(out, max, 204, q->close, "text/plain", "", 0, NULL);
    default:
        return route_text(ROUTE_KV, 405, q->close, "method not allowed on /kv/<key>", allow,
                          out, max);
    }
}

/* Does the path equal s? */
static bool route_is(const struct http_req *q, const char *s)
{
    return q->path_len == strlen(s) && !memcmp(q->path, s, q->path_len);
}

/* http.h: answer one request (or its parse error). */
u32 route_respond(const struct http_req *q, char *out, u32 max)
{
    static const char allow_get[] = "Allow: GET\r\n";
    if (q->status)
        return route_text(ROUTE_OTHER, q->status, true, q->reason, NULL, out, max);
    if (route_is(q, "/")) {
        if (q->method != HTTP_GET)
            return route_text(ROUTE_ROOT, 405, q->close, "method not allowed on /", allow_get,
                              out, max);
        return route_text(ROUTE_ROOT, 200, q->close, "ok", NULL, out, max);
    }
    if (route_is(q, "/stats")) {
        if (q->method != HTTP_GET)
            return route_text(ROUTE_STATS, 405, q->close, "method not allowed on /stats",
                              allow_get, out, max);
        return route_stats(q->close, out, max);
    }
    if (q->path_len >= 4 && !memcmp(q->path, "/kv/", 4))
        return route_kv(q, q->path + 4, q->path_len - 4, out, max);
    return route_text(ROUTE_OTHER, 404, q->close, "no such route (try /, /kv/<key>, /stats)",
                      NULL, out, max);
}
