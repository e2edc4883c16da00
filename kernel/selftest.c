/* The in-guest self-test (see selftest.h): quick checks of the heap, the
 * page allocator, the log ring, printf, CRC-32, address checks, threads,
 * sleeping, blocking and waking, preemption and wakeup preemption.
 * Spawned by kmain as thread "selftest". */
#include "arch.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "log.h"
#include "mm.h"
#include "selftest.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

#define SELFTEST_MAX_CLASSES (HEAP_NCLASSES + 1)

static u32 selftest_pass, selftest_fail;

/* Record one check; failures are printed with their line.  Called through
 * CHECK (selftest.h), also by the other selftest_*.c files. */
void selftest_check(bool ok, const char *what, int line)
{
    if (ok) {
        selftest_pass++;
        return;
    }
    selftest_fail++;
    kprintf("selftest: FAIL %s (line %d)\n", what, line);
}

static void selftest_memstat(struct mm_stats *h, struct mm_class_stats *c)
{
    mm_stats(h, c, SELFTEST_MAX_CLASSES);
}

/* Heap: allocations of every class and a large one, then frees; the
 * statistics must balance. */
static void selftest_heap(void)
{
    static const u32 sizes[] = {1, 16, 17, 100, 512, 2048, 4096, 5000, 40000};
    struct mm_stats h0, h1, h2;
    struct mm_class_stats c0[SELFTEST_MAX_CLASSES], c1[SELFTEST_MAX_CLASSES];
    void *p[ARRAY_SIZE(sizes)];

    selftest_memstat(&h0, c0);
    CHECK(h0.nclasses == HEAP_NCLASSES + 1);
    for (u32 i = 0; i < ARRAY_SIZE(sizes); i++) {
        p[i] = kmalloc(sizes[i]);
        CHECK(p[i] != NULL);
        if (p[i])
            memset(p[i], (int)i, sizes[i]);
    }
    selftest_memstat(&h1, c1);
    CHECK(h1.heap_allocs == h0.heap_allocs + ARRAY_SIZE(sizes));
    CHECK(h1.heap_bytes_used > h0.heap_bytes_used);
    CHECK(c1[HEAP_NCLASSES].in_use == c0[HEAP_NCLASSES].in_use + 2);
    for (u32 i = 0; i < ARRAY_SIZE(sizes); i++) {
        const u8 *b = p[i];
        CHECK(b && b[0] == (u8)i && b[sizes[i] - 1] == (u8)i);
        kfree(p[i]);
    }
    selftest_memstat(&h2, c1);
    CHECK(h2.heap_frees == h0.heap_frees + ARRAY_SIZE(sizes));
    CHECK(h2.heap_bytes_used == h0.heap_bytes_used);
    for (u32 c = 0; c < SELFTEST_MAX_CLASSES; c++)
        CHECK(c1[c].in_use == c0[c].in_use);
    u8 *z = kzalloc(64);
    CHECK(z && z[0] == 0 && z[63] == 0);
    kfree(z);
    kfree(NULL);
}

/* Pages: single and contiguous allocations come back zeroed and the free
 * count returns to where it was. */
static void selftest_pages(void)
{
    struct mm_stats h0, h1;
    struct mm_class_stats c[SELFTEST_MAX_CLASSES];

    selftest_memstat(&h0, c);
    CHECK(h0.page_size == PAGE_SIZE && h0.pages_total > 0 && h0.pages_kernel > 0);
    CHECK(h0.mem_total >= 16ull << 20);
    u8 *a = page_alloc(), *b = page_alloc_n(4);
    CHECK(a && b && ((u64)a % PAGE_SIZE) == 0 && ((u64)b % PAGE_SIZE) == 0);
    CHECK(a && a[0] == 0 && a[PAGE_SIZE - 1] == 0);
    CHECK(b && b[4 * PAGE_SIZE - 1] == 0);
    selftest_memstat(&h1, c);
    CHECK(h1.pages_free == h0.pages_free - 5);
    page_free(a);
    page_free_n(b, 4);
    selftest_memstat(&h1, c);
    CHECK(h1.pages_free == h0.pages_free);
    CHECK(page_alloc_n(h0.pages_total + 1) == NULL);
    selftest_memstat(&h1, c);
    CHECK(h1.page_failures == h0.page_failures + 1);
}

/* Log ring: a small private ring wraps and reports lost bytes; the
 * kernel ring holds what kprintf just wrote. */
static void selftest_log(void)
{
    char mem[16], out[32];
    struct log_ring r;
    struct log_span s;

    log_ring_init(&r, mem, sizeof mem);
    log_ring_write(&r, "0123456789", 10);
    CHECK(log_ring_read(&r, 0, out, sizeof out, &s) == 10 && !memcmp(out, "0123456789", 10));
    log_ring_write(&r, "abcdefghij", 10);          /* head 20, oldest 4 */
    CHECK(log_ring_read(&r, 0, out, sizeof out, &s) == 16);
    CHECK(s.offset == 4 && s.lost == 4 && s.oldest == 4 && s.head == 20 && s.next == 20);
    CHECK(!memcmp(out, "456789abcdefghij", 16));
    CHECK(log_ring_read(&r, 18, out, 1, &s) == 1 && out[0] == 'i' && s.next == 19);
    CHECK(log_ring_read(&r, 99, out, 8, &s) == 0 && s.offset == 20);
    log_ring_write(&r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26);  /* longer than the ring */
    CHECK(log_ring_read(&r, 0, out, sizeof out, &s) == 16 && !memcmp(out, "KLMNOPQRSTUVWXYZ", 16));

    u64 before = log_head();
    kprintf("selftest: log marker\n");
    char line[64];
    u32 n = log_read(before, line, sizeof line - 1, &s);
    line[n] = 0;
    CHECK(s.offset == before && n > 20 && line[0] == '[');
    CHECK(n > 20 && !strncmp(line + 15, "selftest: log marker", 20));
}

/* printf subset, CRC-32 and mm_readable. */
static void selftest_lib(void)
{
    char b[64];
    extern char __kernel_start[];
    ksnprintf(b, sizeof b, "%d|%5u|%-4x|%08lX|%s|%c|%%", -42, 7u, 0xabu, 0xdeadbeeful, "hi", 'z');
    CHECK(!strcmp(b, "-42|    7|ab  |DEADBEEF|hi|z|%"));
    ksnprintf(b, sizeof b, "%p %zu %lld %.3s", (void *)0x1000, (size_t)5, -1ll, "abcdef");
    CHECK(!strcmp(b, "0x0000000000001000 5 -1 abc"));
    CHECK(ksnprintf(b, 4, "%s", "truncated") == 9 && !strcmp(b, "tru"));
    CHECK(crc32_update(0, "123456789", 9) == 0xcbf43926u);
    CHECK(crc32_update(crc32_update(0, "1234", 4), "56789", 5) == 0xcbf43926u);
    CHECK(!mm_readable(0, 8) && !mm_readable(8, 8) && !mm_readable(0xfeb00000, 4));
    CHECK(mm_readable((u64)__kernel_start, 4096));
    CHECK(!mm_readable(mm_total_bytes() + (64ull << 20), 1));
    CHECK(!mm_readable(~0ull - 4, 8));
    u8 id[32];
    CHECK(kernel_build_id(id, sizeof id) == 20);
}

static volatile u32 selftest_flag;
static volatile u64 selftest_spins;
static volatile bool selftest_stop;

/* Child thread: set a flag, sleep, set it again, exit. */
static void selftest_sleeper(void *arg)
{
    selftest_flag = 1;
    thread_sleep_ms((u32)(u64)arg, "selftest-nap");
    selftest_flag = 2;
}

/* Child thread: spin without ever yielding (only preemption lets the
 * parent run again). */
static void selftest_spinner(void *arg)
{
    (void)arg;
    while (!selftest_stop)
        selftest_spins++;
}

/* The thread_info of thread `name`; false if it is not listed.  The
 * thread checks here and in selftest_sync.c call it. */
bool selftest_find(const char *name, struct thread_info *out)
{
    static struct thread_info list[THREAD_MAX];
    u32 total, n = thread_list(list, THREAD_MAX, &total);
    for (u32 i = 0; i < n; i++)
        if (!strcmp(list[i].name, name)) {
            *out = list[i];
            return true;
        }
    return false;
}

/* Threads: spawn, sleep with a wchan, exit (listed dead), preemption. */
static void selftest_threads(void)
{
    struct thread_info ti;
    u32 alive = thread_count();
    u64 t0 = time_ns();

    CHECK(thread_spawn("st-sleeper", selftest_sleeper, (void *)50, 0, 0) != NULL);
    thread_sleep_ms(10, "selftest");
    CHECK(selftest_flag == 1);
    CHECK(selftest_find("st-sleeper", &ti) && ti.state == THREAD_SLEEPING &&
          !strcmp(ti.wchan, "selftest-nap") && ti.stack_size == THREAD_STACK_DEFAULT);
    thread_sleep_ms(100, "selftest");
    CHECK(selftest_flag == 2);
    CHECK(time_ns() - t0 >= 110ull * 1000000);
    CHECK(selftest_find("st-sleeper", &ti) && ti.state == THREAD_DEAD && ti.stack_hwm > 0);
    CHECK(thread_count() == alive);

    CHECK(thread_spawn("st-spinner", selftest_spinner, NULL, 0, 0) != NULL);
    thread_sleep_ms(5, "selftest");
    u64 s0 = selftest_spins, ticks0 = time_ticks();
    while (time_ticks() < ticks0 + 3 * SCHED_SLICE_TICKS)
        cpu_relax();                    /* busy: only preemption runs the spinner */
    CHECK(selftest_spins > s0);
    selftest_stop = true;
    thread_sleep_ms(20, "selftest");
    CHECK(selftest_find("st-spinner", &ti) && ti.state == THREAD_DEAD && ti.cpu_ns > 0);
    CHECK(selftest_find("selftest", &ti) && ti.state == THREAD_RUNNING && ti.switches > 1);
    CHECK(time_tsc_hz() > 0 && time_ticks() > 0);
}

static volatile u64 selftest_app_spins;
static volatile bool selftest_sched_stop;

/* Child thread (an application thread): spin until told to stop. */
static void selftest_app_spinner(void *arg)
{
    (void)arg;
    while (!selftest_sched_stop)
        selftest_app_spins++;
}

/* Child thread (a service thread): wake every millisecond and then spin
 * for most of a slice -- it would take most of the CPU if wakeup
 * preemption were not limited. */
static void selftest_greedy(void *arg)
{
    (void)arg;
    while (!selftest_sched_stop) {
        thread_sleep_ms(1, "greedy");
        u64 until = time_ticks() + SCHED_SLICE_TICKS - 2;
        while (time_ticks() < until && !selftest_sched_stop)
            cpu_relax();
    }
}

/* CPU time of thread `name` in ns (0 if not listed). */
static u64 selftest_cpu_ns(const char *name)
{
    struct thread_info ti;
    return selftest_find(name, &ti) ? ti.cpu_ns : 0;
}

/* Wakeup preemption: priorities as THREADS reports them; with an
 * application thread spinning, this (service) thread's 1 ms sleeps end on
 * time instead of after the spinner's slice; a greedy service thread
 * cannot starve the spinner. */
static void selftest_sched(void)
{
    struct thread_info ti;
    CHECK(selftest_find("idle", &ti) && ti.priority == 0);
    CHECK(selftest_find("selftest", &ti) && ti.priority == 2);
    CHECK(thread_spawn("st-app-spin", selftest_app_spinner, NULL, THREAD_F_APP, 0) != NULL);
    CHECK(selftest_find("st-app-spin", &ti) && ti.priority == 1);
    thread_sleep_ms(5, "selftest");
    u32 late = 0;
    for (u32 i = 0; i < 16; i++) {
        u64 t0 = time_ticks();
        thread_sleep_ms(1, "selftest");         /* wakes 2 ticks on */
        if (time_ticks() - t0 > 3)
            late++;
    }
    CHECK(late <= 2);
    CHECK(thread_spawn("st-greedy", selftest_greedy, NULL, THREAD_F_SERVICE, 0) != NULL);
    u64 a0 = selftest_cpu_ns("st-app-spin"), g0 = selftest_cpu_ns("st-greedy");
    thread_sleep_ms(300, "selftest");
    u64 a = selftest_cpu_ns("st-app-spin") - a0, g = selftest_cpu_ns("st-greedy") - g0;
    kprintf("selftest: 300 ms with a greedy service thread: app %lu ms, greedy %lu ms\n",
            a / 1000000, g / 1000000);
    CHECK(a > 0 && g > 0 && a * 3 >= g);          /* the app keeps >= 1/4 */
    selftest_sched_stop = true;
    thread_sleep_ms(20, "selftest");
    CHECK(selftest_find("st-greedy", &ti) && ti.state == THREAD_DEAD);
}

static struct thread *selftest_blocker;
static volatile u32 selftest_block_res;      /* 1 woken, 2 timed out, + 10 * round */

/* Child thread: block (no timeout) twice, recording each result. */
static void selftest_block_child(void *arg)
{
    (void)arg;
    for (u32 round = 1; round <= 2; round++)
        selftest_block_res = (thread_block("st-block", 0) ? 1 : 2) + 10 * round;
}

/* thread_block / thread_wake: a timeout returns false; a wake before the
 * block is kept (no lost wakeup); a blocked thread sleeps with its wchan
 * until woken, and a woken service thread runs at once. */
static void selftest_block(void)
{
    struct thread_info ti;
    u64 t0 = time_ns();
    CHECK(!thread_block("selftest", 5));
    CHECK(time_ns() - t0 >= 5ull * 1000000);
    thread_wake(thread_current());
    t0 = time_ns();
    CHECK(thread_block("selftest", 1000) && time_ns() - t0 < 5ull * 1000000);
    selftest_blocker = thread_spawn("st-blocker", selftest_block_child, NULL,
                                    THREAD_F_SERVICE, 0);
    CHECK(selftest_blocker != NULL);
    thread_sleep_ms(5, "selftest");
    CHECK(selftest_find("st-blocker", &ti) && ti.state == THREAD_SLEEPING &&
          !strcmp(ti.wchan, "st-block") && selftest_block_res == 0);
    thread_wake(selftest_blocker);
    thread_yield();
    CHECK(selftest_block_res == 11);
    thread_wake(selftest_blocker);
    thread_sleep_ms(5, "selftest");
    CHECK(selftest_block_res == 21);
    CHECK(selftest_find("st-blocker", &ti) && ti.state == THREAD_DEAD);
}

/* Run every check, report, and leave QEMU through isa-debug-exit. */
void selftest_main(void *arg)
{
    (void)arg;
    panic_set_exit(true);
    kprintf("selftest: start\n");
    selftest_lib();
    selftest_heap();
    selftest_pages();
    selftest_log();
    selftest_sites();
    selftest_threads();
    selftest_block();
    selftest_sched();
    selftest_sync();
    selftest_net();
    probetest_run();
    kprintf("selftest: %u passed, %u failed\n", selftest_pass, selftest_fail);
    outb(DEBUG_EXIT_PORT, selftest_fail ? 1 : 0);
    kprintf("selftest: no isa-debug-exit device; halting\n");
    panic_halt();
}
