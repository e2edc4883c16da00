/* What the kernel watches of lwIP's protocol control blocks, without
 * patching lwIP: each TCP PCB's state transitions (the flight recorder's
 * FLIGHT_TCP_STATE) and the thread that owns each PCB (netstat's owner
 * column, like netstat -p).
 *
 * TCP PCBs carry one lwIP "ext arg" (LWIP_TCP_PCB_NUM_EXT_ARGS 1, slot
 * NET_PCB_EXT): its data word is pcb << 32 | owner tid << 8 | last state
 * seen (PCBs live in lwIP's pools in the kernel's .bss, below 4 GiB; lwIP
 * gives the destroy callback only the word, hence the address in it), its
 * callbacks our destroy (the PCB is freed: a transition to CLOSED) and
 * passive_open (a listener spawned a connection: the connection inherits
 * the listener's owner, and SYN_RCVD is recorded at once).
 *
 * Where transitions are seen: every release of lwIP's core lock
 * (UNLOCK_TCPIP_CORE, redefined in lwipopts.h to net_core_unlock).  lwIP
 * changes PCB state only with the core held: in the tcpip thread (a frame,
 * a timer) or in an application thread's API call (listen, connect,
 * close).  So each unit of lwIP work ends with a look at the lists: the
 * active list whole when TCP segments came or went since the last look,
 * the bound, listen and TIME_WAIT lists up to their first settled PCB.
 * Consequence: two transitions inside one unit (e.g. SYN_SENT ->
 * ESTABLISHED -> CLOSE_WAIT when one segment carries the SYN-ACK and a
 * FIN) show as one, from the first to the last state; the event's thread
 * is the one that did the work (tcpip for frames and timers, the
 * application for its calls).  net_pcbwatch counts what it costs.
 *
 * Owner: a PCB first seen at the end of a thread's lwIP call belongs to
 * that thread (the socket layer creates PCBs in the caller's API call),
 * a passive open to its listener's owner; net_pcb_set_owner moves one.
 * Raw and UDP PCBs have no ext args: net_pcb_note_owner keeps them in the
 * side table net_pcb_owners (ping's raw PCB).  The host reads both
 * (introspect/helpers/sockets.py), live or from a core.
 *
 * Bytes: lwIP keeps no per-connection byte totals, but its sequence
 * numbers count bytes.  A second ext arg slot (NET_PCB_SEQ) keeps, for a
 * passive open, the sequence number of the first data byte each way
 * (irs + 1 << 32 | iss + 1, read in passive_open, where lwIP has just set
 * rcv_nxt = irs + 1 and lastack = iss); the host gives ss -i's
 * bytes_received (rcv_nxt - irs - 1) and bytes_acked (lastack - iss - 1),
 * less a FIN, modulo 4 GiB.  Active opens (no application makes one) are
 * left at 0: unknown. */
#include "lwip/opt.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "flight.h"
#include "lib.h"
#include "net.h"
#include "thread.h"
#include "x86.h"
#include "tunables.h"

#define NET_PCB_EXT 0                   /* our ext arg slots (lwipopts.h: 2): owner and state, */
#define NET_PCB_SEQ 1                   /* and the first data byte's sequence number each way */

/* Side table of raw/UDP PCB owners (pcb 0: free slot). */
struct net_pcb_owner net_pcb_owners[NET_PCB_OWNERS];
/* What the watch does and costs (introspect/pcbwatchbench.py reads it;
 * under -icount shift=0 the TSC counts guest instructions). */
struct net_pcbwatch_stats net_pcbwatch;

static const struct tcp_ext_arg_callbacks pcbwatch_cb;

/* The data word of pcb's slot: pcb << 32 | tid << 8 | state. */
static inline u64 pcbwatch_word(const struct tcp_pcb *pcb)
{
    return (u64)(uintptr_t)pcb->ext_args[NET_PCB_EXT].data;
}

static inline void pcbwatch_set_word(struct tcp_pcb *pcb, u64 w)
{
    pcb->ext_args[NET_PCB_EXT].data = (void *)(uintptr_t)w;
}

/* The current thread's id (0 before threads run). */
static u32 pcbwatch_tid(void)
{
    struct thread *t = thread_current();
    return t ? thread_id(t) : 0;
}

/* Record pcb's move from the state in w to now, and remember now. */
static void pcbwatch_transition(struct tcp_pcb *pcb, u64 w, u32 now)
{
    flight_record(FLIGHT_TCP_STATE, (u64)(uintptr_t)pcb, w & 0xff, now);
    pcbwatch_set_word(pcb, (w & ~0xffull) | now);
    net_pcbwatch.transitions++;
}

/* Adopt pcb: our callbacks, its address in the word, and an owner (the
 * thread finishing this lwIP call) unless it has one.  A listener's word
 * was copied by tcp_listen from the PCB it replaces: owner and state
 * (CLOSED) stay, the address is corrected. */
static void pcbwatch_adopt(struct tcp_pcb *pcb, u32 tid)
{
    u64 w = pcbwatch_word(pcb) & 0xffffffffull;
    if (!(w >> 8))
        w |= (u64)(tid & 0xffffff) << 8;
    pcb->ext_args[NET_PCB_EXT].callbacks = &pcbwatch_cb;
    pcbwatch_set_word(pcb, (u64)(uintptr_t)pcb << 32 | w);
}

/* A PCB whose state differs from the one last seen (or that was never
 * seen): adopt it if new, record the transition. */
static void pcbwatch_changed(struct tcp_pcb *pcb)
{
    u64 w = pcbwatch_word(pcb);
    if ((w >> 32) != (u64)(uintptr_t)pcb) {
        pcbwatch_adopt(pcb, pcbwatch_tid());
        w = pcbwatch_word(pcb);
    }
    if ((w & 0xff) != pcb->state)
        pcbwatch_transition(pcb, w, pcb->state);
}

/* The active list, whole: a state changes in place there.  An unseen PCB
 * (word 0, i.e. CLOSED) is never CLOSED in this list, so the state test
 * alone finds it.  How many PCBs were compared. */
static u32 pcbwatch_active(void)
{
    u32 n = 0;
    for (struct tcp_pcb *pcb = tcp_active_pcbs; pcb; pcb = pcb->next, n++)
        if ((u8)pcbwatch_word(pcb) != pcb->state)
            pcbwatch_changed(pcb);
    return n;
}

/* The bound, listen or TIME_WAIT list: a PCB there never changes state in
 * place (it changes lists, or is freed) and lwIP adds PCBs at the head
 * (TCP_REG), so the walk ends at the first PCB already seen in its state:
 * everything behind it was settled by an earlier walk.  (A bound PCB is
 * CLOSED like an unseen word, hence the address test too.) */
static u32 pcbwatch_settled(struct tcp_pcb *pcb)
{
    u32 n = 0;
    for (; pcb; pcb = pcb->next) {
        n++;
        u64 w = pcbwatch_word(pcb);
        if ((w >> 32) == (u64)(uintptr_t)pcb && (w & 0xff) == pcb->state)
            break;
        pcbwatch_changed(pcb);
    }
    return n;
}

/* UNLOCK_TCPIP_CORE (lwipopts.h): every thread's release of the core
 * lock, tcpip thread or API caller; the core is still held here.  The
 * active list is walked only when TCP segments came in or went out since
 * the last walk (lwIP's own tcp.recv and tcp.xmit counters): every state
 * change in place comes with a segment (tcp_input's; close's FIN,
 * connect's SYN) except a FIN that waits behind a full window, seen when
 * the segment that opens the window comes. */
void net_core_unlock(void)
{
    static u32 seen_segs;
    u64 t0 = rdtsc();
    u32 n = 0, segs = lwip_stats.tcp.recv + lwip_stats.tcp.xmit;
    if (segs != seen_segs) {
        seen_segs = segs;
        n = pcbwatch_active();
    }
    n += pcbwatch_settled(tcp_bound_pcbs);
    n += pcbwatch_settled(tcp_listen_pcbs.pcbs);
    n += pcbwatch_settled(tcp_tw_pcbs);
    net_pcbwatch.releases++;
    net_pcbwatch.pcbs += n;
    net_pcbwatch.tsc += rdtsc() - t0;
    sys_mutex_unlock(&lock_tcpip_core);
}

/* ext arg destroy (tcp_free / tcp_free_listen, core held): the PCB goes
 * back to its pool; one last seen in another state moves to CLOSED. */
static void pcbwatch_destroy(u8_t id, void *data)
{
    (void)id;
    u64 w = (u64)(uintptr_t)data;
    if ((w & 0xff) != CLOSED && (w >> 32)) {
        flight_record(FLIGHT_TCP_STATE, w >> 32, w & 0xff, CLOSED);
        net_pcbwatch.transitions++;
    }
}

/* ext arg passive_open (tcp_listen_input, tcpip thread): a SYN made cpcb
 * from lpcb; cpcb is owned by lpcb's owner and is in SYN_RCVD from now. */
static err_t pcbwatch_passive_open(u8_t id, struct tcp_pcb_listen *lpcb, struct tcp_pcb *cpcb)
{
    u64 owner = (u64)(uintptr_t)lpcb->ext_args[id].data & 0xffffff00ull;
    cpcb->ext_args[id].callbacks = &pcbwatch_cb;
    u64 w = (u64)(uintptr_t)cpcb << 32 | owner | CLOSED;
    pcbwatch_set_word(cpcb, w);
    cpcb->ext_args[NET_PCB_SEQ].data =
        (void *)(uintptr_t)((u64)cpcb->rcv_nxt << 32 | (u32)(cpcb->lastack + 1));
    pcbwatch_transition(cpcb, w, cpcb->state);
    return ERR_OK;
}

/* net.h: thread tid owns TCP pcb from now on (a connection handed to a
 * worker); core held by the caller. */
void net_pcb_set_owner(struct tcp_pcb *pcb, u32 tid)
{
    pcbwatch_adopt(pcb, tid);
    u64 w = pcbwatch_word(pcb);
    pcbwatch_set_word(pcb, (w & ~0xffffff00ull) | (u64)(tid & 0xffffff) << 8);
}

/* net.h: a raw or UDP pcb's owner in the side table (tid 0 forgets it);
 * false when the table is full. */
bool net_pcb_note_owner(const void *pcb, u32 tid)
{
    struct net_pcb_owner *free = NULL;
    for (u32 i = 0; i < NET_PCB_OWNERS; i++) {
        struct net_pcb_owner *o = &net_pcb_owners[i];
        if (o->pcb == (u64)(uintptr_t)pcb) {
            o->tid = tid;
            if (!tid)
                o->pcb = 0;
            return true;
        }
        if (!o->pcb && !free)
            free = o;
    }
    if (!tid)
        return true;
    if (!free)
        return false;
    free->tid = tid;
    free->pcb = (u64)(uintptr_t)pcb;
    return true;
}

static const struct tcp_ext_arg_callbacks pcbwatch_cb = {
    .destroy = pcbwatch_destroy,
    .passive_open = pcbwatch_passive_open,
};
