/* spawner: short-lived threads, for the flight recorder's tests (and a
 * ps that shows threads coming and going).  Every SPAWNER_EVERY_MS the
 * app thread starts "child-N" (N counting from 1), which naps
 * SPAWNER_NAP_MS on the wait channel "child-nap" and exits; the ring must
 * then hold each child's thread-create, sleep and thread-exit in that
 * order (tests/test_flight.py). */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "thread.h"

#define SPAWNER_EVERY_MS 100    /* between two children */
#define SPAWNER_NAP_MS 5        /* how long a child sleeps before it exits */

const char app_name[] = "spawner";

/* Children started so far (read by the tests through the DWARF). */
volatile u64 spawner_children;

/* A child: nap, then exit. */
static void spawner_child(void *arg)
{
    (void)arg;
    thread_sleep_ms(SPAWNER_NAP_MS, "child-nap");
    thread_exit();
}

/* The app thread: start a child every SPAWNER_EVERY_MS. */
void app_main(void *arg)
{
    char name[24];
    (void)arg;
    kprintf("spawner: a child every %d ms\n", SPAWNER_EVERY_MS);
    for (;;) {
        ksnprintf(name, sizeof name, "child-%lu", spawner_children + 1);
        if (thread_spawn(name, spawner_child, NULL, THREAD_F_APP, 0))
            spawner_children++;
        else
            kprintf("spawner: cannot spawn %s\n", name);
        thread_sleep_ms(SPAWNER_EVERY_MS, "spawn-wait");
    }
}
