/* lwIP's network interface on the virtio-net driver (netdev.h), and
 * bringing the stack up (net.h: net_start).
 *
 * Receive: the driver's interrupt calls net_rx with each frame; it is
 * copied into a pbuf from lwIP's pool and queued to the tcpip thread
 * (tcpip_input: interrupt-safe, never blocks; a full pool or mailbox is a
 * counted drop).  Transmit: lwIP's linkoutput (net_linkoutput, tcpip
 * thread or a socket caller holding the core lock) flattens the pbuf chain
 * and hands it to netdev_send.  The capture tap sits at both points. */
#include "lwip/opt.h"
#include "lwip/init.h"
#include "lwip/etharp.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/snmp.h"
#include "lwip/stats.h"
#include "lwip/tcpip.h"
#include "netif/ethernet.h"
#include "flight.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "net.h"
#include "netdev.h"
#include "sync.h"
#include "thread.h"
#include "tunables.h"

static struct netif net_if;

/* The flight recorder's NET_RX / NET_TX (one event per frame): its length
 * and ethertype.  net_rx and net_linkoutput, beside the capture tap. */
static inline void net_flight(enum flight_kind kind, const u8 *frame, u32 len)
{
    flight_record(kind, len, len >= 14 ? (u32)frame[12] << 8 | frame[13] : 0, 0);
}

static struct net_if_stats net_stats;
static bool net_is_up;
/* TCP's receive window when nothing waits for the application: netstat's
 * Recv-Q is net_tcp_wnd - pcb->rcv_wnd (introspect/helpers/sockets.py). */
const u32 net_tcp_wnd = TCP_WND;

/* Ethernet's shortest frame without the FCS.  Shorter ones are padded
 * with zeros to it (a NIC on a wire never delivers them): lwIP 2.1.3's
 * etharp_input reads an ARP packet's 28 bytes whatever the frame's
 * length, and in a reused pool pbuf the bytes past a short frame are the
 * previous frame's: a 22-byte ARP "request" was answered with addresses
 * taken from the one before (tests/test_net_adversarial.py). */
#define NET_ETH_MIN 60

/* The netdev receive callback (interrupt context): tap, copy into a pool
 * pbuf (padded to NET_ETH_MIN), queue for the tcpip thread. */
static void net_rx(void *arg, const u8 *frame, u32 len)
{
    struct netif *nif = arg;
    /* ---- CAPTURE TAP (in): every frame the driver receives, before lwIP ---- */
    if (capture_tap)
        capture_tap(CAPTURE_DIR_IN, frame, len);
    net_flight(FLIGHT_NET_RX, frame, len);
    u16_t plen = len < NET_ETH_MIN ? NET_ETH_MIN : (u16_t)len;
    struct pbuf *p = pbuf_alloc(PBUF_RAW, plen, PBUF_POOL);
    if (!p) {
        net_stats.rx_drop_nopbuf++;
        return;
    }
    pbuf_take(p, frame, (u16_t)len);
    if (plen > len)                   /* one pool pbuf holds a whole frame: contiguous */
        memset((u8 *)p->payload + len, 0, plen - len);
    if (nif->input(p, nif) != ERR_OK) {
        pbuf_free(p);
        net_stats.rx_drop_nombox++;
        return;
    }
    net_stats.rx_frames++;
    LINK_STATS_INC(link.recv);
}

/* lwIP's linkoutput: one frame out (core lock held; a thread, never the
 * interrupt).  A full transmit ring is usually QEMU not having run its
 * device yet (it empties the ring asynchronously): wait for room a few
 * times rather than drop, since a dropped SYN-ACK or FIN costs the peer a
 * retransmission timeout.  The waits block in netdev_tx_room until the
 * device's transmit completion frees a buffer, so only a frame really
 * refused is counted (once here in tx_drop_dev, once in the driver's
 * tx_drop_ring). */
static err_t net_linkoutput(struct netif *nif, struct pbuf *p)
{
    static u8 frame[NETDEV_FRAME_MAX];    /* serialised by the core lock */
    (void)nif;
    if (p->tot_len > sizeof frame) {
        net_stats.tx_drop_big++;
        LINK_STATS_INC(link.lenerr);
        return ERR_BUF;
    }
    u16_t len = pbuf_copy_partial(p, frame, p->tot_len, 0);
    /* ---- CAPTURE TAP (out): every frame lwIP sends, before the driver ---- */
    if (capture_tap)
        capture_tap(CAPTURE_DIR_OUT, frame, len);
    net_flight(FLIGHT_NET_TX, frame, len);
    for (u32 tries = 0; tries < NET_TX_RETRIES && netdev_tx_room(0) == 0; tries++) {
        net_stats.tx_ring_waits++;        /* QEMU has not taken the ring yet: let it run */
        netdev_tx_room(NET_TX_RETRY_MS);  /* until its completion interrupt frees a buffer */
    }
    if (!netdev_send(frame, len)) {
        net_stats.tx_drop_dev++;
        LINK_STATS_INC(link.drop);
        return ERR_IF;
    }
    net_stats.tx_frames++;
    LINK_STATS_INC(link.xmit);
    return ERR_OK;
}

/* netif_add's init callback: the device's MAC, MTU and flags. */
static err_t net_if_setup(struct netif *nif)
{
    nif->name[0] = 'e';
    nif->name[1] = 'n';
    nif->hwaddr_len = ETH_HWADDR_LEN;
    netdev_mac(nif->hwaddr);
    nif->mtu = NETDEV_MTU;
    nif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    nif->output = etharp_output;
    nif->linkoutput = net_linkoutput;
    return ERR_OK;
}

/* Parse "A.B.C.D[/N]" into addr and mask (mask untouched without /N). */
static bool net_parse_cidr(const char *s, ip4_addr_t *addr, ip4_addr_t *mask)
{
    char buf[32];
    str_copy(buf, s, sizeof buf);
    char *slash = buf;
    while (*slash && *slash != '/')
        slash++;
    if (*slash) {
        *slash++ = 0;
        u32 n = 0, digits = 0;
        for (; *slash >= '0' && *slash <= '9' && digits < 3; slash++, digits++)
            n = n * 10 + (u32)(*slash - '0');
        if (*slash || !digits || n > 32)
            return false;
        ip4_addr_set_u32(mask, lwip_htonl(n ? 0xffffffffu << (32 - n) : 0));
    }
    return ip4addr_aton(buf, addr) != 0;
}

/* The address, mask and gateway from the command line (net.ip=, net.gw=),
 * QEMU user networking's by default; false (logged) when malformed. */
static bool net_config(ip4_addr_t *ip, ip4_addr_t *mask, ip4_addr_t *gw)
{
    char v[32];
    IP4_ADDR(ip, 10, 0, 2, 15);
    IP4_ADDR(mask, 255, 255, 255, 0);
    IP4_ADDR(gw, 10, 0, 2, 2);
    if (kernel_cmdline_get("net.ip", v, sizeof v) && !net_parse_cidr(v, ip, mask)) {
        kprintf("net: bad net.ip=%s (want A.B.C.D or A.B.C.D/N)\n", v);
        return false;
    }
    if (kernel_cmdline_get("net.gw", v, sizeof v) && !ip4addr_aton(v, gw)) {
        kprintf("net: bad net.gw=%s (want A.B.C.D)\n", v);
        return false;
    }
    return true;
}

/* Bits set in a netmask (its /N). */
static u32 net_prefix_len(const ip4_addr_t *mask)
{
    u32 n = 0;
    for (u32 m = ip4_addr_get_u32(mask); m; m &= m - 1)
        n++;
    return n;
}

/* tcpip_init's callback (tcpip thread): lwIP is running. */
static void net_tcpip_ready(void *arg)
{
    sem_signal(arg);
}

/* net.h: bring lwIP and the interface up. */
bool net_start(void)
{
    static struct sem ready;
    ip4_addr_t ip, mask, gw;
    if (net_is_up)
        return true;
    if (!netdev_present()) {
        kprintf("net: no network device (boot with user or dgram networking)\n");
        return false;
    }
    if (!net_config(&ip, &mask, &gw))
        return false;
    sem_init(&ready, "tcpip-init", 0);
    tcpip_init(net_tcpip_ready, &ready);
    sem_wait(&ready, 0);
    LOCK_TCPIP_CORE();
    netif_add(&net_if, &ip, &mask, &gw, &net_if, net_if_setup, tcpip_input);
    netif_set_default(&net_if);
    netif_set_up(&net_if);
    netif_set_link_up(&net_if);
    UNLOCK_TCPIP_CORE();
    netdev_set_rx(net_rx, &net_if);
    net_is_up = true;
    char a[16], g[16];
    kprintf("net: en0 %s/%u gw %s mtu %u mac %02x:%02x:%02x:%02x:%02x:%02x, lwIP %s\n",
            ip4addr_ntoa_r(&ip, a, sizeof a), net_prefix_len(&mask),
            ip4addr_ntoa_r(&gw, g, sizeof g), NETDEV_MTU, net_if.hwaddr[0], net_if.hwaddr[1],
            net_if.hwaddr[2], net_if.hwaddr[3], net_if.hwaddr[4], net_if.hwaddr[5],
            LWIP_VERSION_STRING);
    return true;
}

bool net_up(void)
{
    return net_is_up;
}

struct netif *net_netif(void)
{
    return net_is_up ? &net_if : NULL;
}

void net_if_get_stats(struct net_if_stats *out)
{
    *out = net_stats;
}
