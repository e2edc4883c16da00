/* The flight recorder: a fixed ring of the kernel's recent events
 * (scheduler, memory, probe channel, panic; the network adds its own),
 * always on, cheap enough to leave on (docs/flight.md has the kinds and the cost).
 * The host reads the ring from memory, live (MEMREAD) or from a core,
 * found by the symbol `flight` and decoded with the DWARF of these types
 * (introspect/helpers/flight.py), so nothing else is on the wire.
 *
 * Kinds are declared here once; the host names them from the DWARF of
 * enum flight_kind and tests/test_flight.py checks every kind has a
 * decoder.  Add kinds at the end of a group or in a reserved slot. */
#ifndef UNIK_FLIGHT_H
#define UNIK_FLIGHT_H
#include "types.h"
#include "tunables.h"

/* What happened; a, b, c as named after each kind. */
enum flight_kind {
    FLIGHT_NONE = 0,
    /* scheduler */
    FLIGHT_SCHED_SWITCH = 1,    /* a prev tid, b next tid, c prev's state */
    FLIGHT_SCHED_WAKEUP = 2,    /* a tid */
    FLIGHT_SCHED_SLEEP = 3,     /* a timeout ms (0 none), b c wchan's first 16 bytes */
    FLIGHT_THREAD_CREATE = 4,   /* a new tid, b c its name's first 16 bytes */
    FLIGHT_THREAD_EXIT = 5,     /* a tid */
    /* memory */
    FLIGHT_PAGE_FAIL = 16,      /* a pages asked */
    FLIGHT_HEAP_FAIL = 17,      /* a bytes asked */
    FLIGHT_HEAP_LARGE = 18,     /* a bytes, b address: kmalloc above the size classes */
    /* probe channel */
    FLIGHT_CHAN_REQUEST = 32,   /* a type, b id, c payload length */
    FLIGHT_CHAN_REJECT = 33,    /* a reason (wire RejectReason), b type */
    FLIGHT_CHAN_CONNECT = 34,   /* a 1: a host client connected, 0: it left */
    /* network (kernel/net/lwip/: netif.c, pcbwatch.c) */
    FLIGHT_NET_RX = 48,         /* a bytes, b ethertype */
    FLIGHT_NET_TX = 49,         /* a bytes, b ethertype */
    FLIGHT_TCP_STATE = 50,      /* a pcb, b old state, c new state */
    /* panic */
    FLIGHT_PANIC = 64,          /* a vector (~0 for panic()), b c reason's first 16 bytes */
};

/* One event: 40 bytes. */
struct flight_event {
    u64 tsc;                    /* rdtsc at the event (time_boot_tsc/time_mult give ns) */
    u16 kind;                   /* enum flight_kind */
    u16 flags;                  /* 0 */
    u32 tid;                    /* the thread running (0: idle or before threads) */
    u64 a, b, c;
};

/* The ring: event i (counting from boot) is in ev[i % FLIGHT_EVENTS]; the
 * newest is head - 1; head > FLIGHT_EVENTS means the oldest were overwritten. */
struct flight_ring {
    u64 head;                   /* events recorded since boot */
    u32 size;                   /* FLIGHT_EVENTS */
    u32 on;                     /* 0: off (before flight_init, or unik.flight=0) */
    struct flight_event ev[FLIGHT_EVENTS];
};

extern struct flight_ring flight;

/* Record one event; safe in interrupt handlers and with interrupts off. */
void flight_record(enum flight_kind kind, u64 a, u64 b, u64 c);
/* Record an event whose b and c carry the first 16 bytes of string s. */
void flight_record_str(enum flight_kind kind, u64 a, const char *s);
/* Read the boot option unik.flight (0 turns recording off).  kmain. */
void flight_init(void);
#endif
