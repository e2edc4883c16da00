/* lwIP 2.1.3's configuration for unik (every option lwIP reads that we do
 * not leave at its default).  lwIP runs with an OS (NO_SYS 0): a tcpip
 * thread, the socket and netconn APIs blocking on the kernel's semaphores
 * and mailboxes (sys_arch.c), the core lock instead of message passing for
 * API calls.  Memory is static (bss), sized for `unik boot --mem 8M` with
 * the HTTP benchmark's 64 keep-alive connections: see docs/architecture.md
 * "Network" for the arithmetic. */
#ifndef UNIK_LWIPOPTS_H
#define UNIK_LWIPOPTS_H

/* --- OS integration --- */
#define NO_SYS 0
#define SYS_LIGHTWEIGHT_PROT 1          /* sys_arch_protect = interrupts off */
#define LWIP_TCPIP_CORE_LOCKING 1       /* API calls take the core mutex */
#define LWIP_TCPIP_CORE_LOCKING_INPUT 0 /* frames go through the tcpip mbox (the rx interrupt cannot block) */
#define TCPIP_THREAD_NAME "tcpip"
#define TCPIP_THREAD_STACKSIZE 16384
#define TCPIP_THREAD_PRIO 2             /* a kernel service thread (sys_thread_new) */
/* Mailbox sizes differ so sys_arch.c can name each kind for ps. */
#define TCPIP_MBOX_SIZE 128             /* "mbox:tcpip": frames and callbacks for the tcpip thread */
#define DEFAULT_TCP_RECVMBOX_SIZE 24    /* "mbox:tcp-recv": received segments per TCP socket */
#define DEFAULT_ACCEPTMBOX_SIZE 32      /* "mbox:accept": connections waiting in accept() */
#define DEFAULT_UDP_RECVMBOX_SIZE 16    /* "mbox:udp-recv" */
#define DEFAULT_RAW_RECVMBOX_SIZE 8     /* "mbox:raw-recv" */
#define DEFAULT_THREAD_STACKSIZE 16384

/* --- memory: all static, for --mem 8M --- */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEM_SIZE (192 * 1024)           /* heap: transmit data (PBUF_RAM), lwIP's own allocations */
#define PBUF_POOL_SIZE 192              /* receive pbufs, one frame each (~1.6 KiB): requests wait in sockets as pbufs */
#define MEMP_NUM_PBUF 64                /* pbufs referring to ROM/app data */
#define MEMP_NUM_RAW_PCB 4
#define MEMP_NUM_UDP_PCB 8
#define MEMP_NUM_TCP_PCB 96             /* active + TIME_WAIT connections (TIME_WAIT ones are recycled first) */
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_TCP_SEG 192            /* queued TCP segments, all connections (>= TCP_SND_QUEUELEN) */
#define MEMP_NUM_REASSDATA 8
#define MEMP_NUM_FRAG_PBUF 16
#define IP_REASS_MAX_PBUFS 16
#define MEMP_NUM_ARP_QUEUE 16
#define MEMP_NUM_NETBUF 16
#define MEMP_NUM_NETCONN 104            /* sockets: the HTTP app's listener + 96 connections + spare */
#define MEMP_NUM_SELECT_CB 4
#define MEMP_NUM_TCPIP_MSG_API 16
#define MEMP_NUM_TCPIP_MSG_INPKT 128    /* frames queued from the rx interrupt to the tcpip thread */

/* --- protocols --- */
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define ARP_TABLE_SIZE 16
#define ARP_QUEUEING 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define LWIP_ICMP 1
#define LWIP_RAW 1                      /* raw PCBs: ping from the guest */
#define LWIP_UDP 1
#define LWIP_TCP 1
#define LWIP_DHCP 0                     /* static address (cmdline net.ip=, net.gw=) */
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define IP_REASSEMBLY 1
#define IP_FRAG 1
#define TCP_MSS 1460
#define TCP_WND (8 * TCP_MSS)
#define TCP_SND_BUF (8 * TCP_MSS)
#define TCP_SND_QUEUELEN (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_LISTEN_BACKLOG 1
#define TCP_DEFAULT_LISTEN_BACKLOG 32
#define TCP_QUEUE_OOSEQ 1
#define LWIP_TCP_KEEPALIVE 1
#define LWIP_RANDOMIZE_INITIAL_LOCAL_PORTS 1

/* --- APIs --- */
#define LWIP_NETCONN 1
#define LWIP_SOCKET 1
#define LWIP_COMPAT_SOCKETS 0           /* no socket()/read()/close() macros: lwip_* names only */
#define LWIP_POSIX_SOCKETS_IO_NAMES 0
#define LWIP_SOCKET_POLL 1              /* lwip_poll: the HTTP app's event loop */
#define LWIP_SO_RCVTIMEO 1              /* receive and send timeouts on sockets */
#define LWIP_SO_SNDTIMEO 1
#define SO_REUSE 1
#define LWIP_NETIF_API 0
#define LWIP_PROVIDE_ERRNO 1            /* lwIP's errno values and one global errno (libc.c) */

/* --- statistics: on and 32-bit (netstat -s, -i) --- */
#define LWIP_STATS 1
#define LWIP_STATS_LARGE 1
#define LWIP_STATS_DISPLAY 0
#define MIB2_STATS 0

/* --- hooks (net_hooks.h): unpredictable TCP initial sequence numbers --- */
#define LWIP_HOOK_FILENAME "net_hooks.h"

/* --- PCB watch (net/lwip/pcbwatch.c): TCP state transitions for the flight
 * recorder and each PCB's owning thread for netstat, without patching lwIP:
 * one ext arg slot per TCP PCB, and every release of the core lock looks at
 * the PCB lists before it lets go. --- */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 2      /* 0: owner and state; 1: byte counts' bases */
void net_core_unlock(void);
#define LOCK_TCPIP_CORE() sys_mutex_lock(&lock_tcpip_core)
#define UNLOCK_TCPIP_CORE() net_core_unlock()

/* --- checks --- */
#define LWIP_DEBUG 0
#endif
