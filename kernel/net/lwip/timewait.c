/* TIME_WAIT recycling (lwIP's LWIP_HOOK_TCP_INPACKET_PCB, see
 * net_hooks.h): lwIP answers a SYN that reaches a TIME_WAIT PCB with an
 * ACK (or a RST) for 2 MSL.  When the SYN's sequence number lies above
 * everything the old connection received, the old incarnation cannot be
 * confused with the new one (RFC 1122 4.2.2.13, RFC 6191): the PCB is
 * freed and a copy of the SYN's IP packet queued to lwIP again, where it
 * finds the listener (the peer's SYN retransmission would take seconds).
 * Called by tcp_input (tcpip thread, core locked) for every segment that
 * matched a PCB. */
#include <string.h>
#include "lwip/opt.h"
#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"
#include "lwip/prot/ip4.h"
#include "lwip/ip.h"
#include "lwip/ip4.h"
#include "lwip/pbuf.h"
#include "lwip/tcpip.h"
#include "net_hooks.h"

u64_t net_tw_recycled;                  /* TIME_WAIT PCBs freed for a new SYN (netstat -s) */

/* Queue a copy of the IP packet being input (a SYN) for lwIP's input
 * again, put together from its parts as tcp_input left them: the IP
 * header, the TCP header with the first part of its options (hdr), the
 * rest of the options (opt2, when they straddle two pbufs) and the data
 * (p).  Not one memcpy from the IP header: a SYN that came in IP
 * fragments is a pbuf chain, and the bytes after the first fragment in
 * its pool buffer are stale (the copy then failed its checksum and the
 * SYN was lost: tests/test_net_adversarial.py).  A failure here only
 * loses the SYN, which the peer retransmits. */
static void timewait_requeue(struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len, u8_t *opt2,
                             struct pbuf *p)
{
    const struct ip_hdr *iph = ip4_current_header();
    u16_t iphl = IPH_HL_BYTES(iph), tcphl = TCP_HLEN + optlen;
    u16_t len = lwip_ntohs(IPH_LEN(iph));
    if (len != iphl + tcphl + p->tot_len || len > 1500)
        return;
    struct pbuf *q = pbuf_alloc(PBUF_RAW, len, PBUF_RAM);
    if (!q)
        return;
    u8_t *d = q->payload;
    MEMCPY(d, iph, iphl);
    MEMCPY(d + iphl, hdr, TCP_HLEN + opt1len);
    if (optlen > opt1len)
        MEMCPY(d + iphl + TCP_HLEN + opt1len, opt2, optlen - opt1len);
    pbuf_copy_partial(p, d + iphl + tcphl, p->tot_len, 0);
    /* tcp_input turned these header fields to host order in place. */
    struct tcp_hdr *t = (struct tcp_hdr *)(d + iphl);
    t->src = lwip_htons(t->src);
    t->dest = lwip_htons(t->dest);
    t->seqno = lwip_htonl(t->seqno);
    t->ackno = lwip_htonl(t->ackno);
    t->wnd = lwip_htons(t->wnd);
    if (tcpip_inpkt(q, ip_current_input_netif(), ip4_input) != ERR_OK)
        pbuf_free(q);
}

/* The hook (see the top of the file). */
err_t net_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                       u8_t *opt2, struct pbuf *p)
{
    if (pcb->state != TIME_WAIT)
        return ERR_OK;
    if ((TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) != TCP_SYN)
        return ERR_OK;
    if (!TCP_SEQ_GT(hdr->seqno, pcb->rcv_nxt))  /* tcp_input made it host order */
        return ERR_OK;
    tcp_pcb_remove(&tcp_tw_pcbs, pcb);
    tcp_free(pcb);
    net_tw_recycled++;
    timewait_requeue(hdr, optlen, opt1len, opt2, p);
    return ERR_ABRT;                    /* tcp_input drops this copy and touches the PCB no more */
}
