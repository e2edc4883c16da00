/* The TCP/IP stack (lwIP 2.1.3, kernel/net/lwip/): started by an
 * application that uses the network (its app.mk says APP_NET := lwip),
 * which then uses lwIP's socket API (lwip/sockets.h: lwip_socket,
 * lwip_bind, lwip_accept, lwip_recv, lwip_send, lwip_poll, lwip_close...).
 *
 * Configuration from the kernel command line (QEMU user networking's
 * defaults when absent): net.ip=10.0.2.15/24 net.gw=10.0.2.2.
 *
 * Users: kernel/apps/http; netstat (reads net_netif and lwIP's own
 * tables); the capture tap (netif.c calls capture_tap when linked). */
#ifndef UNIK_NET_H
#define UNIK_NET_H
#include "types.h"

/* Glue counters of the netif (netif.c), beside lwIP's link stats and the
 * driver's netdev_stats. */
struct net_if_stats {
    u64 rx_frames;                     /* frames handed to lwIP */
    u64 rx_drop_nopbuf;                /* no pbuf for a received frame */
    u64 rx_drop_nombox;                /* tcpip thread's mailbox full */
    u64 tx_frames;                     /* frames given to the driver */
    u64 tx_drop_big;                   /* frame longer than NETDEV_FRAME_MAX */
    u64 tx_drop_dev;                   /* the driver refused it NET_TX_RETRIES times */
    u64 tx_ring_waits;                 /* waits for room in the driver's ring (then retried) */
};

/* Start lwIP (tcpip thread), add the interface on the virtio-net device
 * with the command line's address, bring it up.  False (logged) when
 * there is no network device or the address is bad.  Call once, from an
 * application thread. */
bool net_start(void);
bool net_up(void);
/* lwIP's struct netif (NULL before net_start); netstat -i reads it. */
struct netif *net_netif(void);
void net_if_get_stats(struct net_if_stats *out);

/* The capture tap (tcpdump's kernel side, another file): called with each
 * frame entering lwIP (dir CAPTURE_DIR_IN, in the receive interrupt) and
 * leaving it (CAPTURE_DIR_OUT, in lwIP's output path), before anything
 * else sees it.  Weak: without a capture module linked, nothing is
 * called.  Must not block or keep the pointer. */
#define CAPTURE_DIR_IN 0
#define CAPTURE_DIR_OUT 1
void capture_tap(int dir, const void *frame, u32 len) __attribute__((weak));
/* --- ping (net/lwip/ping.c; unik ping through chan/netping.c) ---
 * One ping at a time: a "ping" thread sends `count` ICMP echo requests
 * (0: until net_ping_stop) with lwIP's raw API, and the reply callback
 * (tcpip thread) times each reply.  Events queue in a small ring that the
 * probe-chan thread drains with net_ping_next.  Weak: a kernel without
 * lwIP has none of these (the channel then says so). */
#define NET_PING_REPLY 0               /* event kinds: chan/netping.c checks them */
#define NET_PING_TIMEOUT 1             /* against the wire's NetPingEvent */
#define NET_PING_SEND_ERROR 2
#define NET_PING_DONE 3
struct net_ping_ev {
    u32 kind;                          /* NET_PING_* */
    u32 seq, ttl, bytes, from;         /* from: network byte order */
    u64 rtt_ns;
};
struct net_ping_totals {
    u32 transmitted, received, errors, dropped;
    u64 rtt_min_ns, rtt_max_ns, rtt_sum_ns, rtt_sum2_us, elapsed_ns;
};
/* Start pinging dst (network byte order); 0, or -1 busy, -2 no interface,
 * -3 out of memory.  *ident and *src: the ICMP id and our address. */
int net_ping_start(u32 dst, u32 count, u32 interval_ms, u32 size, u32 timeout_ms,
                   u32 *ident, u32 *src) __attribute__((weak));
/* Pop the oldest event; false when none. */
bool net_ping_next(struct net_ping_ev *ev) __attribute__((weak));
/* Is a ping running, or are events waiting? */
bool net_ping_busy(void) __attribute__((weak));
/* Stop the ping (waits for its thread to finish) and give its totals. */
void net_ping_stop(struct net_ping_totals *t) __attribute__((weak));
/* --- the PCB watch (net/lwip/pcbwatch.c): TCP state transitions into the
 * flight recorder, each PCB's owning thread for netstat's owner column ---
 * A TCP PCB is owned by the thread whose lwIP call created it (an accepted
 * connection by its listener's owner); net_pcb_set_owner moves it (core
 * held).  Raw and UDP PCBs are kept in a side table, net_pcb_owners:
 * net_pcb_note_owner(pcb, tid) (tid 0 forgets; false when full). */
struct tcp_pcb;
struct net_pcb_owner {
    u64 pcb;                           /* 0: a free slot */
    u32 tid;
    u32 unused;
};
extern struct net_pcb_owner net_pcb_owners[];
/* The watch's own counters (a benchmark reads them from memory). */
struct net_pcbwatch_stats {
    u64 releases;                      /* core-lock releases, each one walk of the lists */
    u64 pcbs;                          /* PCBs compared over all walks */
    u64 tsc;                           /* TSC ticks in the walks (instructions under -icount shift=0) */
    u64 transitions;                   /* TCP_STATE events recorded */
};
extern struct net_pcbwatch_stats net_pcbwatch;
void net_pcb_set_owner(struct tcp_pcb *pcb, u32 tid);
bool net_pcb_note_owner(const void *pcb, u32 tid);
#endif
