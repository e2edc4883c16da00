/* The fbttest application: kernel functions whose calls, arguments and
 * results a test knows, for fbt's runtime tests (tests/runtime/fbt*.test).
 *
 * Every FBT_ROUND_MS the app thread runs one round with interrupts off
 * (so a round is never split by an enabling coming or going): fbt_round()
 * calls fbt_answer(20, 1) once (returns 41), fbt_fact(10) (10 calls deep,
 * returns 3628800) and fbt_deep(FBT_DEEP) (recursion past the shadow
 * stack's depth).  A second thread calls fbt_nap(FBT_NAP_MS), which sleeps
 * (a context switch between its entry and return) and returns its
 * argument + 1.  A thread "fbt-exit" is spawned every round, enters
 * fbt_nap and exits from inside it (return probes outstanding at exit)
 * every 8th round.
 * fbttest_rounds counts rounds. */
#include "kernel.h"
#include "kprintf.h"
#include "thread.h"
#include "x86.h"

const char app_name[] = "fbttest";

#define FBT_ROUND_MS 20         /* between rounds */
#define FBT_NAP_MS 5            /* fbt_nap's sleep */
#define FBT_DEEP 100            /* fbt_deep's recursion depth (> FBT_SHADOW_DEPTH) */

u64 fbttest_rounds;

/* A function with a known result: 2 * a + b. */
__attribute__((noinline)) int fbt_answer(int a, long b)
{
    __asm__ volatile("");
    return 2 * a + (int)b;
}

/* n! by recursion: n calls deep. */
__attribute__((noinline)) u64 fbt_fact(u32 n)
{
    if (n <= 1)
        return 1;
    u64 r = fbt_fact(n - 1);
    __asm__ volatile("" : "+r"(r));     /* keep the recursion a recursion */
    return n * r;
}

/* Recursion n deep, returning n (deeper than any shadow stack). */
__attribute__((noinline)) u32 fbt_deep(u32 n)
{
    if (n == 0)
        return 0;
    u32 r = fbt_deep(n - 1);
    __asm__ volatile("" : "+r"(r));     /* keep the recursion a recursion */
    return r + 1;
}

/* Sleep ms and return ms + 1: another thread runs in between. */
__attribute__((noinline)) u32 fbt_nap(u32 ms)
{
    thread_sleep_ms(ms, "fbt-nap");
    return ms + 1;
}

/* One round: the calls the tests count. */
__attribute__((noinline)) void fbt_round(void)
{
    u64 sum = (u64)fbt_answer(20, 1) + fbt_fact(10) + fbt_deep(FBT_DEEP);
    __asm__ volatile("" : : "r"(sum));
    fbttest_rounds++;
}

/* Exit from inside fbt_nap's callee chain: a thread that dies with a
 * return probe outstanding (fbt_exit_inner never returns). */
__attribute__((noinline, noreturn)) static void fbt_exit_inner(void)
{
    thread_exit();
}

static void fbt_exit_thread(void *arg)
{
    (void)arg;
    fbt_nap(1);
    fbt_exit_inner();
}

static void fbt_napper(void *arg)
{
    (void)arg;
    for (;;)
        fbt_nap(FBT_NAP_MS);
}

void app_main(void *arg)
{
    (void)arg;
    kprintf("fbttest: rounds every %d ms\n", FBT_ROUND_MS);
    if (!thread_spawn("fbt-nap", fbt_napper, NULL, THREAD_F_APP, 0))
        panic("fbttest: cannot spawn fbt-nap");
    for (;;) {
        u64 f = irq_save();
        fbt_round();
        irq_restore(f);
        if (fbttest_rounds % 8 == 0)
            thread_spawn("fbt-exit", fbt_exit_thread, NULL, THREAD_F_APP, 0);
        thread_sleep_ms(FBT_ROUND_MS, "round");
    }
}
