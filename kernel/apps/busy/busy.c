/* The busy application: a load generator for debugging under pressure.
 * "app" starts BUSY_SPINNERS CPU-bound threads ("spin-1".."spin-4") that
 * never sleep -- they hash a buffer and churn the heap in a loop -- and
 * then logs their progress every BUSY_REPORT_MS.  tests/runtime/load.test
 * and `unik bench` boot it to check that the probe channel still answers
 * promptly while every application thread wants the CPU. */
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "thread.h"

#define BUSY_SPINNERS 4
#define BUSY_BUF 4096           /* bytes hashed per round */
#define BUSY_SLOTS 8            /* heap blocks each spinner keeps */
#define BUSY_REPORT_MS 3000

const char app_name[] = "busy";

struct busy_spinner {
    char name[8];
    u64 rounds;
    u32 crc;
};

static struct busy_spinner busy_spinners[BUSY_SPINNERS];

/* Free one of the spinner's heap blocks and allocate another of a
 * pseudo-random size (16 .. 2048 bytes), so the heap stays busy too. */
static void busy_churn(void **slots, u32 *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    u32 i = (*seed >> 16) % BUSY_SLOTS;
    kfree(slots[i]);
    u32 size = 16u << ((*seed >> 8) % 8);
    slots[i] = kmalloc(size);
    if (slots[i])
        memset(slots[i], (int)i, size);
}

/* A spinner thread: hash, churn, count -- forever, never sleeping or
 * yielding, so only preemption takes the CPU away from it. */
static void busy_spin_main(void *arg)
{
    struct busy_spinner *s = arg;
    void *slots[BUSY_SLOTS] = {0};
    u32 seed = (u32)(u64)s;
    u8 *buf = kmalloc(BUSY_BUF);
    if (!buf)
        panic("%s: out of memory", s->name);
    for (u32 i = 0; i < BUSY_BUF; i++)
        buf[i] = (u8)(i * 13);
    for (;;) {
        s->crc = crc32_update(s->crc, buf, BUSY_BUF);
        busy_churn(slots, &seed);
        s->rounds++;
    }
}

/* One log line: uptime and each spinner's rounds so far. */
static void busy_report(void)
{
    char line[128];
    u32 n = 0;
    line[0] = 0;
    for (int i = 0; i < BUSY_SPINNERS && n < sizeof line; i++)
        n += (u32)ksnprintf(line + n, sizeof line - n, " %s=%lu", busy_spinners[i].name,
                            busy_spinners[i].rounds);
    kprintf("busy: uptime %lu ms, %u threads, rounds%s\n", time_ns() / 1000000,
            thread_count(), line);
}

/* The app thread: start the spinners, then report every BUSY_REPORT_MS. */
void app_main(void *arg)
{
    (void)arg;
    kprintf("busy: starting %d spinning threads\n", BUSY_SPINNERS);
    for (int i = 0; i < BUSY_SPINNERS; i++) {
        struct busy_spinner *s = &busy_spinners[i];
        ksnprintf(s->name, sizeof s->name, "spin-%d", i + 1);
        if (!thread_spawn(s->name, busy_spin_main, s, THREAD_F_APP, 0))
            kprintf("busy: cannot spawn %s\n", s->name);
    }
    for (;;) {
        thread_sleep_ms(BUSY_REPORT_MS, "report");
        busy_report();
    }
}
