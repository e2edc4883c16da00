/* The flight recorder (flight.h): the ring of recent kernel events the
 * host reads from memory live or from a core.  flight_record is called
 * from the scheduler, the allocators, the probe channel and panic, often
 * with interrupts off; it takes no lock (interrupts are held off for the
 * few stores instead: one CPU). */
#include "flight.h"
#include "kernel.h"
#include "lib.h"
#include "x86.h"
#include "sched/sched_int.h"

struct flight_ring flight;             /* in .bss: flight_init turns it on */

_Static_assert((FLIGHT_EVENTS & (FLIGHT_EVENTS - 1)) == 0, "FLIGHT_EVENTS: a power of 2");
_Static_assert(sizeof(struct flight_event) == 40, "flight_event layout");

/* Append one event to the ring (see flight.h).  Callers: everywhere an
 * event happens; must stay a few stores. */
void flight_record(enum flight_kind kind, u64 a, u64 b, u64 c)
{
    if (!flight.on)
        return;
    u64 f = irq_save();
    struct flight_event *e = &flight.ev[flight.head++ & (FLIGHT_EVENTS - 1)];
    e->tsc = rdtsc();
    e->kind = kind;
    e->flags = 0;
    e->tid = sched_cur ? sched_cur->tid : 0;
    e->a = a;
    e->b = b;
    e->c = c;
    irq_restore(f);
}

/* An event whose b and c hold the first 16 bytes of s (NUL padded): a
 * wait channel, a thread name, a panic reason. */
void flight_record_str(enum flight_kind kind, u64 a, const char *s)
{
    u64 w[2] = {0, 0};
    if (!flight.on)
        return;
    for (u32 i = 0; i < 16 && s && s[i]; i++)
        ((char *)w)[i] = s[i];
    flight_record(kind, a, w[0], w[1]);
}

/* Start recording, unless unik.flight=0 is on the command line (the
 * benchmark's "off" run).  Called by kmain before the first thread. */
void flight_init(void)
{
    char v[4];
    flight.size = FLIGHT_EVENTS;
    flight.on = !(kernel_cmdline_get("unik.flight", v, sizeof v) && !strcmp(v, "0"));
}
