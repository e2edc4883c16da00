/* Ping from inside the guest (net.h: net_ping_*; unik ping through
 * chan/netping.c).  One ping at a time.  A "ping" thread sends ICMP echo
 * requests through a raw PCB (lwIP's raw API, core lock held), remembers
 * each request's send time in a slot, and expires requests whose reply
 * did not come within the timeout.  lwIP calls ping_recv (tcpip thread)
 * with every ICMP packet; it takes the echo replies that carry our
 * identifier and a pending sequence number, and times them.  Both queue
 * events (reply, timeout, send error, done) in a ring the probe-chan
 * thread drains; the ring and the counters are shared with interrupts
 * off (one CPU).  RTTs are the kernel's own clock (time_ns). */
#include "lwip/opt.h"
#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/pbuf.h"
#include "lwip/raw.h"
#include "lwip/tcpip.h"
#include "lwip/prot/icmp.h"
#include "lwip/prot/ip4.h"
#include "kernel.h"
#include "lib.h"
#include "net.h"
#include "sync.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

struct ping_slot {
    u32 seq;                            /* 0: free */
    u64 sent_ns;
};

static struct {
    bool running;                       /* the ping thread is alive */
    volatile bool stop;                 /* net_ping_stop asked it to end */
    struct raw_pcb *pcb;
    ip4_addr_t dst;
    u16 ident;
    u32 count, interval_ms, size, timeout_ms;
    struct ping_slot slots[PING_SLOTS];
    struct net_ping_totals tot;
    u64 start_ns;
    struct net_ping_ev ring[PING_EVENTS];
    u32 head, len;
} ping;
static struct sem ping_wake;            /* net_ping_stop wakes the thread's waits */
static struct sem ping_done;            /* the thread signals its end */
static u16 ping_idents;

/* Queue one event (any thread; interrupts off around the ring); a full
 * ring is a counted drop. */
static void ping_event(u32 kind, u32 seq, u32 ttl, u32 bytes, u32 from, u64 rtt)
{
    u64 f = irq_save();
    if (ping.len == PING_EVENTS) {
        ping.tot.dropped++;
    } else {
        ping.ring[(ping.head + ping.len++) % PING_EVENTS] =
            (struct net_ping_ev){ .kind = kind, .seq = seq, .ttl = ttl, .bytes = bytes,
                                  .from = from, .rtt_ns = rtt };
    }
    irq_restore(f);
}

/* Count one reply's round trip in the totals (interrupts off). */
static void ping_count_rtt(u64 rtt)
{
    struct net_ping_totals *t = &ping.tot;
    if (t->received == 0 || rtt < t->rtt_min_ns)
        t->rtt_min_ns = rtt;
    if (rtt > t->rtt_max_ns)
        t->rtt_max_ns = rtt;
    t->received++;
    t->rtt_sum_ns += rtt;
    t->rtt_sum2_us += (rtt / 1000) * (rtt / 1000);
}

/* lwIP's raw receive callback (tcpip thread, core lock held), p at the IP
 * header: an echo reply of ours to a pending request is timed, queued and
 * eaten (1); anything else goes on to lwIP (0). */
static u8_t ping_recv(void *arg, struct raw_pcb *pcb, struct pbuf *p, const ip_addr_t *addr)
{
    (void)arg;
    (void)pcb;
    u64 now = time_ns();
    const struct ip_hdr *iph = p->payload;
    u16 hlen = IPH_HL_BYTES(iph);
    struct icmp_echo_hdr e;
    if (p->len < sizeof(*iph) || p->tot_len < hlen + sizeof(e) ||
        pbuf_copy_partial(p, &e, sizeof(e), hlen) != sizeof(e))
        return 0;
    if (e.type != ICMP_ER || lwip_ntohs(e.id) != ping.ident)
        return 0;
    u32 seq = lwip_ntohs(e.seqno);
    struct ping_slot *s = &ping.slots[seq % PING_SLOTS];
    u64 f = irq_save();
    bool mine = seq != 0 && s->seq == seq;
    u64 rtt = now - s->sent_ns;
    if (mine) {
        s->seq = 0;
        ping_count_rtt(rtt);
    }
    irq_restore(f);
    if (!mine)
        return 0;                       /* late or duplicate: lwIP drops it */
    ping_event(NET_PING_REPLY, seq, IPH_TTL(iph), p->tot_len - hlen,
               ip4_addr_get_u32(ip_2_ip4(addr)), rtt);
    sem_signal(&ping_wake);             /* the thread may be waiting for this last reply */
    pbuf_free(p);
    return 1;
}

/* Build and send echo request seq (ping thread).  False when lwIP could
 * not allocate or send it. */
static bool ping_send(u32 seq)
{
    u16 len = (u16)(sizeof(struct icmp_echo_hdr) + ping.size);
    struct pbuf *p = pbuf_alloc(PBUF_IP, len, PBUF_RAM);
    if (!p)
        return false;
    struct icmp_echo_hdr *e = p->payload;
    ICMPH_TYPE_SET(e, ICMP_ECHO);
    ICMPH_CODE_SET(e, 0);
    e->id = lwip_htons(ping.ident);
    e->seqno = lwip_htons((u16)seq);
    e->chksum = 0;
    u8 *data = (u8 *)(e + 1);
    for (u32 i = 0; i < ping.size; i++)
        data[i] = (u8)(0x10 + i);       /* as Linux ping: a counting pattern */
    e->chksum = inet_chksum(e, len);
    struct ping_slot *s = &ping.slots[seq % PING_SLOTS];
    u64 f = irq_save();
    if (s->seq)                         /* a request PING_SLOTS back still waits: it lost */
        ping_event(NET_PING_TIMEOUT, s->seq, 0, 0, 0, 0);
    s->seq = seq;
    s->sent_ns = time_ns();
    ping.tot.transmitted++;
    irq_restore(f);
    ip_addr_t to;
    ip_addr_copy_from_ip4(to, ping.dst);
    LOCK_TCPIP_CORE();
    err_t err = raw_sendto(ping.pcb, p, &to);
    UNLOCK_TCPIP_CORE();
    pbuf_free(p);
    if (err != ERR_OK) {
        f = irq_save();
        s->seq = 0;
        ping.tot.errors++;
        irq_restore(f);
    }
    return err == ERR_OK;
}

/* Time out the pending requests older than the timeout; the time until
 * the next one would (ns), ~0 when none is pending.  Ping thread. */
static u64 ping_expire(u64 now)
{
    u64 next = ~0ull, tmo = (u64)ping.timeout_ms * 1000000;
    for (u32 i = 0; i < PING_SLOTS; i++) {
        struct ping_slot *s = &ping.slots[i];
        u64 f = irq_save();
        u32 seq = s->seq;
        bool late = seq && now - s->sent_ns >= tmo;
        if (late)
            s->seq = 0;
        else if (seq)
            next = MIN(next, s->sent_ns + tmo - now);
        irq_restore(f);
        if (late)
            ping_event(NET_PING_TIMEOUT, seq, 0, 0, 0, 0);
    }
    return next;
}

/* The ping thread: send on the interval, expire what times out, end when
 * the last request is settled or net_ping_stop asks. */
static void ping_main(void *arg)
{
    (void)arg;
    u32 seq = 0;
    u64 next_send = time_ns();
    while (!ping.stop) {
        u64 now = time_ns();
        u64 wait = ping_expire(now);
        bool more = ping.count == 0 || seq < ping.count;
        if (more && now >= next_send) {
            if (!ping_send(++seq))
                ping_event(NET_PING_SEND_ERROR, seq, 0, 0, 0, 0);
            next_send += (u64)ping.interval_ms * 1000000;
            continue;
        }
        if (!more && wait == ~0ull)
            break;
        if (more)
            wait = MIN(wait, next_send - now);
        sem_wait(&ping_wake, (u32)MAX(wait / 1000000, 1));
    }
    LOCK_TCPIP_CORE();
    raw_remove(ping.pcb);
    UNLOCK_TCPIP_CORE();
    net_pcb_note_owner(ping.pcb, 0);
    u64 f = irq_save();
    ping.pcb = NULL;
    ping.tot.elapsed_ns = time_ns() - ping.start_ns;
    ping.running = false;
    irq_restore(f);
    ping_event(NET_PING_DONE, seq, 0, 0, 0, 0);
    sem_signal(&ping_done);
    thread_exit();
}

/* net.h: start a ping (probe-chan thread, NET_PING_START). */
int net_ping_start(u32 dst, u32 count, u32 interval_ms, u32 size, u32 timeout_ms,
                   u32 *ident, u32 *src)
{
    struct netif *nif = net_netif();
    if (ping.running)
        return -1;
    if (!nif)
        return -2;
    static bool inited;
    if (!inited) {
        sem_init(&ping_wake, "ping", 0);
        sem_init(&ping_done, "ping-done", 0);
        inited = true;
    }
    while (sem_trywait(&ping_wake) || sem_trywait(&ping_done))
        ;
    LOCK_TCPIP_CORE();
    struct raw_pcb *pcb = raw_new(IP_PROTO_ICMP);
    if (pcb)
        raw_recv(pcb, ping_recv, NULL);
    UNLOCK_TCPIP_CORE();
    if (!pcb)
        return -3;
    u64 f = irq_save();
    memset(ping.slots, 0, sizeof(ping.slots));
    memset(&ping.tot, 0, sizeof(ping.tot));
    ping.head = ping.len = 0;
    ping.pcb = pcb;
    ip4_addr_set_u32(&ping.dst, dst);
    ping.ident = (u16)(0x7500 + ++ping_idents);
    ping.count = count;
    ping.interval_ms = interval_ms;
    ping.size = size;
    ping.timeout_ms = timeout_ms;
    ping.stop = false;
    ping.running = true;
    ping.start_ns = time_ns();
    irq_restore(f);
    *ident = ping.ident;
    *src = ip4_addr_get_u32(netif_ip4_addr(nif));
    struct thread *t = thread_spawn("ping", ping_main, NULL, THREAD_F_SERVICE, 0);
    if (t)
        net_pcb_note_owner(pcb, thread_id(t));    /* netstat: the raw socket is ping's */
    if (!t) {
        LOCK_TCPIP_CORE();
        raw_remove(pcb);
        UNLOCK_TCPIP_CORE();
        ping.pcb = NULL;
        ping.running = false;
        return -3;
    }
    return 0;
}

/* net.h: the oldest queued event (probe-chan thread). */
bool net_ping_next(struct net_ping_ev *ev)
{
    u64 f = irq_save();
    bool some = ping.len > 0;
    if (some) {
        *ev = ping.ring[ping.head];
        ping.head = (ping.head + 1) % PING_EVENTS;
        ping.len--;
    }
    irq_restore(f);
    return some;
}

bool net_ping_busy(void)
{
    return ping.running || ping.len > 0;
}

/* net.h: stop the ping and give its totals (probe-chan thread,
 * NET_PING_STOP, or the host leaving).  Waits for the thread to remove
 * its PCB, at most PING_STOP_WAIT_MS. */
void net_ping_stop(struct net_ping_totals *t)
{
    if (ping.running) {
        ping.stop = true;
        sem_signal(&ping_wake);
        sem_wait(&ping_done, PING_STOP_WAIT_MS);
    }
    u64 f = irq_save();
    *t = ping.tot;
    irq_restore(f);
}
