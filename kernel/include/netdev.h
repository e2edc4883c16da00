/* The network device the TCP/IP stack sits on (kernel/drivers/vnet.c, a
 * virtio-net driver on the virtio-mmio transport, one device).
 *
 * Receive: the driver's interrupt handler hands each received Ethernet
 * frame to the function registered with netdev_set_rx (interrupt context:
 * the receiver must copy or queue the frame and return; it must not
 * block).  Transmit: netdev_send copies the frame into a transmit buffer
 * and queues it; it never blocks: a full ring is a counted drop.
 *
 * The capture tap (tcpdump) and the flight recorder hook in above this
 * interface (net/), not in the driver.
 *
 * Users: net/netif.c (lwIP's netif glue), the self-test. */
#ifndef UNIK_NETDEV_H
#define UNIK_NETDEV_H
#include "types.h"

#define NETDEV_MTU 1500
#define NETDEV_FRAME_MAX 1514          /* Ethernet header + MTU, no FCS */

struct netdev_stats {
    u64 rx_packets, rx_bytes, tx_packets, tx_bytes;
    u64 rx_drop_nobuf;                 /* receiver refused or no receiver */
    u64 rx_drop_bad;                   /* frame shorter than a header or longer than FRAME_MAX */
    u64 tx_drop_ring;                  /* transmit ring full */
    u64 tx_drop_bad;                   /* frame too long or empty */
    u64 irqs;
};

typedef void (*netdev_rx_fn)(void *arg, const u8 *frame, u32 len);

/* Find and start the virtio-net device: false when there is none (the
 * kernel then runs without a network). Called once by kmain. */
bool netdev_init(void);
bool netdev_present(void);
void netdev_mac(u8 mac[6]);
bool netdev_link_up(void);
void netdev_set_rx(netdev_rx_fn fn, void *arg);
/* Queue one frame (copied); false if dropped (counted). Any context. */
bool netdev_send(const void *frame, u32 len);
/* Free transmit buffers (used ones taken back first): a sender that would
 * rather wait than drop asks this before netdev_send, so waiting for room
 * is not counted as a drop.  With none free and wait_ms > 0, block until
 * the device's transmit completion frees one or wait_ms passes (threads
 * only); wait_ms == 0 never blocks (any context). */
u32 netdev_tx_room(u32 wait_ms);
void netdev_get_stats(struct netdev_stats *out);
#endif
