/* The HTTP/1.1 request parser (pure: no I/O, no allocation; tests build it
 * for the host).  The server calls http_parse on the bytes a connection
 * has received so far: it answers "complete, spanning N bytes" (the server
 * answers and drops those N bytes, so pipelined requests follow one
 * another), "need more" (a partial read; nothing is kept between calls, the
 * next call starts again from the same bytes) or "bad request" with the
 * status and reason to answer, after which the connection closes (its
 * framing can no longer be trusted).
 *
 * Strict where laxness makes request smuggling or hangs possible: one
 * Content-Length (digits only, duplicates must agree), no
 * Transfer-Encoding, no obsolete line folding, no whitespace before a
 * header's colon, no control bytes; limits on the request line, the head,
 * the header count and the body, checked as soon as the bytes are there. */
#include "http.h"
#include "lib.h"

struct parse_line {
    const u8 *p;
    u32 len;                          /* without the line end */
};

/* The next line at buf[*pos..len): false when it has not ended yet; -1 in
 * *bad for a lone CR inside it. */
static bool parse_next_line(const u8 *buf, u32 len, u32 *pos, struct parse_line *l, bool *bad)
{
    for (u32 i = *pos; i < len; i++) {
        if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n') {
            *bad = true;
            return false;
        }
        if (buf[i] != '\n')
            continue;
        l->p = buf + *pos;
        l->len = i - *pos;
        if (l->len && l->p[l->len - 1] == '\r')
            l->len--;
        *pos = i + 1;
        return true;
    }
    return false;
}

/* Set the error answer; always -1. */
static int parse_fail(struct http_req *req, u16 status, const char *reason)
{
    req->status = status;
    req->reason = reason;
    req->close = true;
    return -1;
}

/* ASCII case-insensitive equality of p[0..n) and the lower-case word w. */
static bool parse_ieq(const u8 *p, u32 n, const char *w)
{
    u32 i = 0;
    for (; i < n && w[i]; i++) {
        u8 c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (u8)(c - 'A' + 'a');
        if (c != (u8)w[i])
            return false;
    }
    return i == n && !w[i];
}

/* Does the comma-separated list v[0..n) hold the token w (Connection)? */
static bool parse_has_token(const u8 *v, u32 n, const char *w)
{
    u32 i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        u32 s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i > s && parse_ieq(v + s, i - s, w))
            return true;
    }
    return false;
}

/* A header name character (RFC 9110 tchar). */
static bool parse_tchar(u8 c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    for (const char *s = "!#$%&'*+-.^_`|~"; *s; s++)
        if (c == (u8)*s)
            return true;
    return false;
}

/* METHOD SP /target SP HTTP/1.x into req; -1 (req set) when bad. */
static int parse_request_line(const struct parse_line *l, struct http_req *req)
{
    static const char *const names[] = { "GET", "PUT", "DELETE", "HEAD", "POST" };
    u32 i = 0;
    while (i < l->len && l->p[i] >= 'A' && l->p[i] <= 'Z' && i < 16)
        i++;
    if (i == 0 || i >= l->len || l->p[i] != ' ')
        return parse_fail(req, 400, "bad method (want an upper-case token, then one space)");
    req->method = HTTP_OTHER;
    for (u32 m = 0; m < ARRAY_SIZE(names); m++)
        if (strlen(names[m]) == i && !memcmp(l->p, names[m], i))
            req->method = (enum http_method)m;
    u32 t = ++i;
    while (i < l->len && l->p[i] > 0x20 && l->p[i] < 0x7f)
        i++;
    if (i == t || l->p[t] != '/' || i >= l->len || l->p[i] != ' ')
        return parse_fail(req, 400, "bad request target (want /path, then one space)");
    req->path = (const char *)l->p + t;
    req->path_len = i - t;
    for (u32 q = 0; q < req->path_len; q++)
        if (req->path[q] == '?' || req->path[q] == '#')
            req->path_len = q;
    const u8 *v = l->p + i + 1;
    u32 vlen = l->len - i - 1;
    if (vlen == 8 && !memcmp(v, "HTTP/1.1", 8))
        return 0;
    if (vlen == 8 && !memcmp(v, "HTTP/1.0", 8)) {
        req->http10 = true;
        return 0;
    }
    if (vlen == 8 && !memcmp(v, "HTTP/", 5))
        return parse_fail(req, 505, "HTTP version not supported (1.0 and 1.1 are)");
    return parse_fail(req, 400, "bad HTTP version");
}

/* The Content-Length value v[0..n) into *cl; -1 (req set) when bad. */
static int parse_length(const u8 *v, u32 n, i64 *cl, struct http_req *req)
{
    u64 x = 0;
    if (n == 0)
        return parse_fail(req, 400, "bad Content-Length (empty)");
    for (u32 i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return parse_fail(req, 400, "bad Content-Length (want decimal digits)");
        if (x > HTTP_BODY_MAX)
            return parse_fail(req, 413, "body too large");
        x = x * 10 + (u64)(v[i] - '0');
    }
    if (*cl >= 0 && (u64)*cl != x)
        return parse_fail(req, 400, "bad Content-Length (two different values)");
    if (x > HTTP_BODY_MAX)
        return parse_fail(req, 413, "body too large");
    *cl = (i64)x;
    return 0;
}

/* What the head tells about the message. */
struct parse_head {
    i64 content_length;               /* -1 when absent */
    u32 hosts, fields;
    bool keep_alive;
    bool expect_continue;             /* Expect: 100-continue */
};

/* One header field line into h (and req->close); -1 (req set) when bad. */
static int parse_field(const struct parse_line *l, struct parse_head *h, struct http_req *req)
{
    if (++h->fields > HTTP_HEADERS_MAX)
        return parse_fail(req, 431, "too many header fields");
    if (l->p[0] == ' ' || l->p[0] == '\t')
        return parse_fail(req, 400, "obsolete header line folding");
    u32 c = 0;
    while (c < l->len && parse_tchar(l->p[c]))
        c++;
    if (c == 0 || c >= l->len || l->p[c] != ':')
        return parse_fail(req, 400, "bad header field (want Name: value)");
    u32 s = c + 1, e = l->len;
    for (u32 i = s; i < e; i++)
        if ((l->p[i] < 0x20 && l->p[i] != '\t') || l->p[i] == 0x7f)
            return parse_fail(req, 400, "control character in a header value");
    while (s < e && (l->p[s] == ' ' || l->p[s] == '\t'))
        s++;
    while (e > s && (l->p[e - 1] == ' ' || l->p[e - 1] == '\t'))
        e--;
    const u8 *v = l->p + s;
    if (parse_ieq(l->p, c, "content-length"))
        return parse_length(v, e - s, &h->content_length, req);
    if (parse_ieq(l->p, c, "transfer-encoding"))
        return parse_fail(req, 411, "Transfer-Encoding is not supported (send Content-Length)");
    if (parse_ieq(l->p, c, "host"))
        h->hosts++;
    if (parse_ieq(l->p, c, "expect") && parse_ieq(v, e - s, "100-continue"))
        h->expect_continue = true;
    if (parse_ieq(l->p, c, "connection")) {
        if (parse_has_token(v, e - s, "close"))
            req->close = true;
        if (parse_has_token(v, e - s, "keep-alive"))
            h->keep_alive = true;
    }
    return 0;
}

/* The head's lines after the request line, up to the empty line at
 * buf[..*pos); 0 when the head has not ended yet, 1 when it has, -1 when
 * bad. */
static int parse_fields(const u8 *buf, u32 len, u32 *pos, struct parse_head *h,
                        struct http_req *req)
{
    struct parse_line l;
    bool bad = false;
    while (parse_next_line(buf, len, pos, &l, &bad)) {
        if (*pos > HTTP_HEAD_MAX)
            return parse_fail(req, 431, "request head too large");
        if (l.len == 0)
            return 1;
        if (parse_field(&l, h, req) < 0)
            return -1;
    }
    if (bad)
        return parse_fail(req, 400, "bare CR in the request head");
    if (len >= HTTP_HEAD_MAX)
        return parse_fail(req, 431, "request head too large");
    return 0;
}

/* parse.c's entry point (see the top of the file and http.h). */
int http_parse(const u8 *buf, u32 len, struct http_req *req)
{
    struct parse_line l;
    struct parse_head h = { .content_length = -1 };
    bool bad = false;
    u32 pos = 0;
    memset(req, 0, sizeof *req);
    while (pos < len && pos < 4 && (buf[pos] == '\r' || buf[pos] == '\n'))
        pos++;                        /* stray line ends between requests */
    if (!parse_next_line(buf, len, &pos, &l, &bad)) {
        if (bad)
            return parse_fail(req, 400, "bare CR in the request line");
        return len > HTTP_LINE_MAX ? parse_fail(req, 414, "request line too long") : 0;
    }
    if (l.len > HTTP_LINE_MAX)
        return parse_fail(req, 414, "request line too long");
    if (parse_request_line(&l, req) < 0)
        return -1;
    int r = parse_fields(buf, len, &pos, &h, req);
    if (r <= 0)
        return r;
    if (!req->http10 && h.hosts != 1)
        return parse_fail(req, 400, "HTTP/1.1 needs exactly one Host header");
    if (req->http10 && !h.keep_alive)
        req->close = true;            /* HTTP/1.0 closes unless asked not to */
    if (req->method == HTTP_PUT && h.content_length < 0)
        return parse_fail(req, 411, "PUT needs Content-Length");
    u32 body = h.content_length > 0 ? (u32)h.content_length : 0;
    if (len - pos < body) {
        req->expect_continue = h.expect_continue;
        return 0;
    }
    req->body = buf + pos;
    req->body_len = body;
    return (int)(pos + body);
}

/* The reason phrase of the statuses this server answers. */
const char *http_status_text(u16 status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}
