/* lwIP hooks (LWIP_HOOK_FILENAME), included by lwIP's sources after their
 * own headers.
 *
 * LWIP_HOOK_TCP_ISN: lwIP's default initial sequence number is
 * `iss += tcp_ticks`, which an attacker predicts from one connection of his
 * own; net_tcp_isn (isn.c) computes RFC 6528's ISN = M + F(4-tuple, key). */
#ifndef UNIK_NET_HOOKS_H
#define UNIK_NET_HOOKS_H
#include "lwip/err.h"
#include "lwip/ip_addr.h"
u32_t net_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                  const ip_addr_t *remote_ip, u16_t remote_port);
#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) net_tcp_isn(lip, lport, rip, rport)

/* LWIP_HOOK_TCP_INPACKET_PCB: a new SYN for a 4-tuple lwIP holds in
 * TIME_WAIT is answered with an ACK for two minutes (2 MSL); behind QEMU's
 * port forwarding every client is 10.0.2.2:<its host port>, and the host
 * reuses ports sooner than that, so such connections hang.  timewait.c
 * recycles the TIME_WAIT PCB for a SYN above its sequence space, as BSD
 * and Linux do (RFC 6191 without timestamps). */
struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
err_t net_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
                       u8_t *opt2, struct pbuf *p);
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
    net_tcp_inpacket(pcb, hdr, optlen, opt1len, opt2, p)
#endif
