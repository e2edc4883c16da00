/* The self-test of the virtio-net driver (drivers/vnet.c), without a
 * TCP/IP stack: the MAC and link come from the device; bad frames are
 * refused and counted; an ARP request for the gateway 10.0.2.2 goes out
 * and the reply comes back through the receive interrupt (QEMU's user
 * network answers it; on the dgram backend the host test does).  The
 * receiver runs in interrupt context and signals a semaphore, so this
 * also checks sem_signal from an interrupt.  Skipped (one line) without
 * a network device.  Called by selftest_main. */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "netdev.h"
#include "selftest.h"
#include "sync.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

#define STN_ETH_ARP 0x0806
#define STN_ARP_REQUEST 1
#define STN_ARP_REPLY 2
#define STN_ARP_LEN 42                  /* Ethernet 14 + ARP 28 */

static const u8 stn_my_ip[4] = {10, 0, 2, 15};
static const u8 stn_gw_ip[4] = {10, 0, 2, 2};

static struct sem stn_got;              /* signalled per ARP reply for us */
static u8 stn_reply[STN_ARP_LEN];       /* the last one */
static volatile u32 stn_frames;         /* frames the receiver saw */

/* A 16-bit big-endian field. */
static u16 stn_be16(const u8 *p)
{
    return (u16)(p[0] << 8 | p[1]);
}

/* The receiver (interrupt context): keep an ARP reply from the gateway,
 * wake the test. */
static void stn_rx(void *arg, const u8 *f, u32 len)
{
    (void)arg;
    stn_frames++;
    if (len < STN_ARP_LEN || stn_be16(f + 12) != STN_ETH_ARP ||
        stn_be16(f + 20) != STN_ARP_REPLY || memcmp(f + 28, stn_gw_ip, 4))
        return;
    memcpy(stn_reply, f, STN_ARP_LEN);
    sem_signal(&stn_got);
}

/* Build "who-has 10.0.2.2 tell 10.0.2.15" from mac into f. */
static void stn_arp_request(u8 *f, const u8 mac[6])
{
    static const u8 arp_head[8] = {0, 1, 8, 0, 6, 4, 0, STN_ARP_REQUEST};
    memset(f, 0xff, 6);                 /* broadcast */
    memcpy(f + 6, mac, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    memcpy(f + 14, arp_head, 8);
    memcpy(f + 22, mac, 6);
    memcpy(f + 28, stn_my_ip, 4);
    memset(f + 32, 0, 6);
    memcpy(f + 38, stn_gw_ip, 4);
}

/* Send the request (up to three times, 500 ms apart) and wait for the
 * reply; true when one came. */
static bool stn_resolve(const u8 mac[6])
{
    u8 req[60];                         /* padded to Ethernet's minimum */
    memset(req, 0, sizeof req);
    stn_arp_request(req, mac);
    for (u32 try = 0; try < 3; try++) {
        CHECK(netdev_send(req, sizeof req));
        if (sem_wait(&stn_got, 500))
            return true;
    }
    return false;
}

/* The transmit ring empties once the device has sent what was queued:
 * netdev_tx_room comes back to NET_TX_BUFS (within a second), and asking
 * counts nothing.  Called by selftest_net after the ARP exchange. */
static bool stn_tx_drained(void)
{
    struct netdev_stats a, b;
    netdev_get_stats(&a);
    u32 room = 0;
    for (u32 ms = 0; ms < 1000 && (room = netdev_tx_room(0)) != NET_TX_BUFS; ms++)
        thread_sleep_ms(1, "st-txroom");
    netdev_get_stats(&b);
    return room == NET_TX_BUFS && b.tx_drop_ring == a.tx_drop_ring &&
           b.tx_packets == a.tx_packets;
}

/* Every driver check; called by selftest_main. */
void selftest_net(void)
{
    if (!netdev_present()) {
        kprintf("selftest: net: no network device, driver checks not run\n");
        return;
    }
    u8 mac[6], big[NETDEV_FRAME_MAX + 1];
    struct netdev_stats s0, s1;
    netdev_mac(mac);
    CHECK(mac[0] == 0x52 && mac[1] == 0x54 && mac[2] == 0x00);  /* QEMU's prefix */
    CHECK(netdev_link_up());
    netdev_get_stats(&s0);
    memset(big, 0, sizeof big);
    CHECK(!netdev_send(big, 0) && !netdev_send(big, sizeof big));
    netdev_get_stats(&s1);
    CHECK(s1.tx_drop_bad == s0.tx_drop_bad + 2 && s1.tx_packets == s0.tx_packets);

    sem_init(&stn_got, "st-arp", 0);
    netdev_set_rx(stn_rx, NULL);
    bool ok = stn_resolve(mac);
    netdev_set_rx(NULL, NULL);
    CHECK(ok);
    if (ok) {
        const u8 *g = stn_reply + 22;
        kprintf("selftest: net: arp reply: 10.0.2.2 is at %02x:%02x:%02x:%02x:%02x:%02x\n",
                g[0], g[1], g[2], g[3], g[4], g[5]);
        CHECK(!memcmp(stn_reply, mac, 6) && !memcmp(stn_reply + 32, mac, 6) &&
              !memcmp(stn_reply + 38, stn_my_ip, 4));
    }
    netdev_get_stats(&s1);
    CHECK(s1.tx_packets > s0.tx_packets && s1.tx_bytes >= s0.tx_bytes + 60);
    CHECK(s1.rx_packets > s0.rx_packets && s1.rx_packets - s0.rx_packets >= stn_frames);
    CHECK(s1.irqs > s0.irqs);
    CHECK(stn_tx_drained());
    kprintf("selftest: net: rx %lu tx %lu irqs %lu\n", (unsigned long)s1.rx_packets,
            (unsigned long)s1.tx_packets, (unsigned long)s1.irqs);
}
