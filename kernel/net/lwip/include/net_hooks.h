/* lwIP hooks (LWIP_HOOK_FILENAME), included by lwIP's sources after their
 * own headers.
 *
 * LWIP_HOOK_TCP_ISN: lwIP's default initial sequence number is
 * `iss += tcp_ticks`, which an attacker predicts from one connection of his
 * own; net_tcp_isn (isn.c) computes RFC 6528's ISN = M + F(4-tuple, key). */
#ifndef UNIK_NET_HOOKS_H
#define UNIK_NET_HOOKS_H
u32_t net_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                  const ip_addr_t *remote_ip, u16_t remote_port);
#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) net_tcp_isn(lip, lport, rip, rport)
#endif
