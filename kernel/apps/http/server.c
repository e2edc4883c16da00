/* The HTTP application (app "http"): an event loop on lwIP's sockets.
 *
 * One thread ("http") polls the listening socket and every connection
 * (lwip_poll) and serves whatever is ready with non-blocking reads and
 * writes.  Why an event loop and not a thread per connection: the kernel
 * runs on one CPU, so threads would buy no parallelism; a connection then
 * costs its two buffers (16 KiB, taken from the heap while it is open)
 * instead of a 16 KiB stack plus buffers, which matters under --mem 8M
 * with 64 benchmark connections; THREAD_MAX (64) would cap connections;
 * and idle and slow-request timeouts are one scan of the table.
 *
 * Each connection keeps what it received and not yet answered (in) and
 * what it must still send (out).  After every read, complete requests are
 * answered in order while the send buffer has room for a largest response
 * (pipelining; a partial request waits for more bytes); a parse error is
 * answered and the connection closes once the answer is sent.  A
 * connection idle longer than http.idle_ms is closed; one whose request
 * has not completed within http.req_ms of its first byte gets 408. */
#include "lwip/sockets.h"
#include "http.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "net.h"
#include "thread.h"

const char app_name[] = "http";

struct conn {
    int fd;                           /* -1 = free slot */
    u8 *in;                           /* HTTP_IN_BUF bytes, then out */
    char *out;                        /* HTTP_OUT_BUF bytes */
    u32 in_len, out_len, out_off;
    bool closing;                     /* no more requests: finish once out is sent */
    bool eof;                         /* the peer sent FIN */
    bool draining;                    /* our FIN is sent; input is read and dropped */
    bool continued;                   /* 100 Continue sent for the pending request */
    u64 active_ns;                    /* last byte received or sent */
    u64 req_start_ns;                 /* first byte of the pending request (0 = none) */
};

static struct conn srv_conns[HTTP_CONN_MAX];
static struct pollfd srv_fds[HTTP_CONN_MAX + 1];
static u32 srv_idle_ms = HTTP_IDLE_MS, srv_req_ms = HTTP_REQ_MS;
static u64 srv_polls, srv_poll_timeouts;   /* event-loop turns, and those that found nothing */

/* Close connection c and free its buffers. */
static void srv_close(struct conn *c)
{
    lwip_close(c->fd);
    kfree(c->in);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    http_conns.open--;
    http_conns.closed++;
}

/* A closing connection whose answers are all sent: close it when the
 * peer has finished too; otherwise send FIN and drain its input until it
 * closes or HTTP_LINGER_MS pass (a close with unread input would make
 * lwIP send RST, which can destroy the error answer at the peer). */
static void srv_finish(struct conn *c, u64 now)
{
    if (c->eof) {
        srv_close(c);
        return;
    }
    lwip_shutdown(c->fd, SHUT_WR);
    c->draining = true;
    c->active_ns = now;
}

/* Send what c has queued; false when the connection was closed. */
static bool srv_flush(struct conn *c, u64 now)
{
    while (c->out_off < c->out_len) {
        ssize_t n = lwip_send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EWOULDBLOCK)
                return true;
            srv_close(c);
            return false;
        }
        c->out_off += (u32)n;
        c->active_ns = now;
    }
    c->out_off = c->out_len = 0;
    if (c->closing && !c->draining) {
        srv_finish(c, now);
        return c->fd >= 0;
    }
    return true;
}

/* Answer the complete requests c holds, in order, while a largest response
 * fits in its send buffer. */
static void srv_serve(struct conn *c, u64 now)
{
    struct http_req req = { 0 };
    while (!c->closing && HTTP_OUT_BUF - c->out_len >= HTTP_RESP_MAX) {
        int n = c->in_len ? http_parse(c->in, c->in_len, &req) : 0;
        if (n == 0 && req.expect_continue && !c->continued) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            memcpy(c->out + c->out_len, cont, sizeof cont - 1);
            c->out_len += sizeof cont - 1;
            c->continued = true;      /* the client may now send the body */
        }
        if (n == 0) {
            if (c->eof) {             /* nothing more will come: finish */
                c->closing = true;
                c->in_len = 0;
            }
            break;
        }
        c->out_len += route_respond(&req, c->out + c->out_len, HTTP_OUT_BUF - c->out_len);
        if (n < 0 || req.close) {
            c->closing = true;
            c->in_len = 0;
            break;
        }
        c->continued = false;
        memmove(c->in, c->in + n, c->in_len - (u32)n);
        c->in_len -= (u32)n;
        c->req_start_ns = c->in_len ? now : 0;
    }
}

/* Answer and send until c has no complete request left or the network
 * takes no more (then POLLOUT resumes it); false when c was closed. */
static bool srv_pump(struct conn *c, u64 now)
{
    for (;;) {
        srv_serve(c, now);
        if (!c->out_len && !(c->closing && !c->draining))
            return true;
        if (!srv_flush(c, now))
            return false;
        if (c->out_len || c->draining)
            return true;
    }
}

/* Read and drop what a draining connection receives; close it at EOF. */
static bool srv_drain(struct conn *c)
{
    static u8 junk[512];
    ssize_t n = lwip_recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
    if (n > 0 || (n < 0 && errno == EWOULDBLOCK))
        return true;
    srv_close(c);
    return false;
}

/* Read what arrived on c and serve it; false when c was closed. */
static bool srv_read(struct conn *c, u64 now)
{
    if (c->draining)
        return srv_drain(c);
    if (c->closing || c->eof || c->in_len == HTTP_IN_BUF)
        return true;                  /* wait until the answers drain */
    ssize_t n = lwip_recv(c->fd, c->in + c->in_len, HTTP_IN_BUF - c->in_len, MSG_DONTWAIT);
    if (n < 0 && errno == EWOULDBLOCK)
        return true;
    if (n < 0) {                      /* reset or failed */
        srv_close(c);
        return false;
    }
    if (n == 0) {                     /* FIN: answer what is complete, then close */
        c->eof = true;
        return srv_pump(c, now);
    }
    if (!c->in_len)
        c->req_start_ns = now;
    c->in_len += (u32)n;
    c->active_ns = now;
    return srv_pump(c, now);
}

/* Accept every pending connection; over HTTP_CONN_MAX, answer 503 and
 * close. */
static void srv_accept(int lfd, u64 now)
{
    for (;;) {
        int fd = lwip_accept(lfd, NULL, NULL);
        if (fd < 0)
            return;
        struct conn *c = NULL;
        for (u32 i = 0; i < HTTP_CONN_MAX && !c; i++)
            if (srv_conns[i].fd < 0)
                c = &srv_conns[i];
        u8 *buf = c ? kmalloc(HTTP_IN_BUF + HTTP_OUT_BUF) : NULL;
        if (!buf) {
            char r[256];
            u32 len = route_error(503, "too many connections", r, sizeof r);
            lwip_send(fd, r, len, MSG_DONTWAIT);
            lwip_close(fd);
            http_conns.rejected++;
            continue;
        }
        lwip_fcntl(fd, F_SETFL, O_NONBLOCK);
        *c = (struct conn){ .fd = fd, .in = buf, .out = (char *)buf + HTTP_IN_BUF,
                            .active_ns = now };
        http_conns.accepted++;
        http_conns.open++;
    }
}

/* Close idle connections; answer 408 to requests that are too slow. */
static void srv_expire(u64 now)
{
    for (u32 i = 0; i < HTTP_CONN_MAX; i++) {
        struct conn *c = &srv_conns[i];
        if (c->fd < 0)
            continue;
        if (c->draining) {
            if (now - c->active_ns > (u64)HTTP_LINGER_MS * 1000000)
                srv_close(c);
        } else if (c->req_start_ns && !c->closing && now - c->req_start_ns > (u64)srv_req_ms * 1000000) {
            http_conns.timed_out++;
            c->in_len = 0;
            c->out_len += route_error(408, "request not complete in time",
                                      c->out + c->out_len, HTTP_OUT_BUF - c->out_len);
            c->closing = true;
            srv_flush(c, now);
        } else if (now - c->active_ns > (u64)srv_idle_ms * 1000000) {
            http_conns.timed_out++;
            srv_close(c);
        }
    }
}

/* Poll the listener and every connection once and serve what is ready. */
static void srv_poll_once(int lfd)
{
    nfds_t n = 0;
    struct conn *who[HTTP_CONN_MAX + 1];
    srv_fds[n] = (struct pollfd){ .fd = lfd, .events = POLLIN };
    who[n++] = NULL;
    for (u32 i = 0; i < HTTP_CONN_MAX; i++) {
        struct conn *c = &srv_conns[i];
        if (c->fd < 0)
            continue;
        short ev = c->out_len ? POLLOUT : 0;
        if (c->draining || (!c->closing && !c->eof && c->in_len < HTTP_IN_BUF && !c->out_len))
            ev |= POLLIN;
        srv_fds[n] = (struct pollfd){ .fd = c->fd, .events = ev };
        who[n++] = c;
    }
    int ready = lwip_poll(srv_fds, n, HTTP_POLL_MS);
    srv_polls++;
    srv_poll_timeouts += ready == 0;
    u64 now = time_ns();
    for (nfds_t i = 1; ready > 0 && i < n; i++) {
        struct conn *c = who[i];
        short re = srv_fds[i].revents;
        if (re & POLLOUT && !srv_flush(c, now))
            continue;
        if (re & (POLLIN | POLLERR | POLLHUP | POLLNVAL) && !srv_read(c, now))
            continue;
        srv_pump(c, now);             /* requests that waited for room */
    }
    if (ready > 0 && srv_fds[0].revents & POLLIN)
        srv_accept(lfd, now);
    srv_expire(now);
}

/* A listening TCP socket on port (non-blocking); panics on failure, since
 * the application is nothing without it. */
static int srv_listen(u16 port)
{
    struct sockaddr_in a = { .sin_len = sizeof a, .sin_family = AF_INET,
                             .sin_port = lwip_htons(port) };
    int one = 1, fd = lwip_socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        panic("http: socket failed (errno %d)", errno);
    lwip_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lwip_bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || lwip_listen(fd, 32) < 0)
        panic("http: cannot listen on port %u (errno %d)", port, errno);
    lwip_fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* A positive number from the command line's key=, else def. */
static u32 srv_cmdline_ms(const char *key, u32 def)
{
    char v[16];
    u32 x = 0;
    if (!kernel_cmdline_get(key, v, sizeof v))
        return def;
    for (const char *p = v; *p >= '0' && *p <= '9' && x < 100000000; p++)
        x = x * 10 + (u32)(*p - '0');
    return x ? x : def;
}

/* The app thread: bring the network up, listen, run the event loop. */
void app_main(void *arg)
{
    (void)arg;
    for (u32 i = 0; i < HTTP_CONN_MAX; i++)
        srv_conns[i].fd = -1;
    srv_idle_ms = srv_cmdline_ms("http.idle_ms", HTTP_IDLE_MS);
    srv_req_ms = srv_cmdline_ms("http.req_ms", HTTP_REQ_MS);
    if (!net_start()) {
        kprintf("http: no network: nothing to serve\n");
        return;
    }
    int lfd = srv_listen(HTTP_PORT);
    kprintf("http: listening on port %u (idle timeout %u ms, request timeout %u ms)\n",
            HTTP_PORT, srv_idle_ms, srv_req_ms);
    for (;;)
        srv_poll_once(lfd);
}
