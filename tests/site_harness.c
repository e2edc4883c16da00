/* Host harness for kernel/probe/site_entry.S and the PROBE_FIRE block
 * (tests/test_probe_sites.py): hot_six (built from the test's C with the
 * kernel's flags) has one site with six arguments.  argv: the site's nop
 * address, its target and its descriptor, read by the test from the
 * executable's .unik_sites.  The harness calls hot_six with the site off,
 * patches it to the jmp (as site.c does), calls again, restores the nop
 * and calls a third time; every call must return the same value (the
 * block and site_entry preserve every register the function keeps live)
 * and exactly the enabled call must reach site_fire with the descriptor
 * and the six arguments in order.  Prints "ok" or what went wrong. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef uint64_t u64;
u64 hot_six(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f);

static u64 got[7];
static int fires;

/* What site_entry calls (site.c's in the kernel). */
void site_fire(const u64 *frame)
{
    memcpy(got, frame, sizeof got);
    fires++;
}

static void patch(u64 addr, const unsigned char *bytes)
{
    long pg = sysconf(_SC_PAGESIZE);
    void *start = (void *)(uintptr_t)(addr & ~(u64)(pg - 1));
    if (mprotect(start, 2 * pg, PROT_READ | PROT_WRITE | PROT_EXEC)) {
        perror("mprotect");
        exit(2);
    }
    memcpy((void *)(uintptr_t)addr, bytes, 5);
}

int main(int argc, char **argv)
{
    static const unsigned char nop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    if (argc != 4)
        return 2;
    u64 addr = strtoull(argv[1], NULL, 0), target = strtoull(argv[2], NULL, 0);
    u64 desc = strtoull(argv[3], NULL, 0);
    if (memcmp((void *)(uintptr_t)addr, nop5, 5)) {
        printf("site is not the nop\n");
        return 1;
    }
    u64 want = hot_six(11, 22, 33, 44, 55, 66);
    unsigned char jmp[5] = {0xe9};
    int32_t rel = (int32_t)(target - (addr + 5));
    memcpy(jmp + 1, &rel, 4);
    patch(addr, jmp);
    u64 on = hot_six(11, 22, 33, 44, 55, 66);
    patch(addr, nop5);
    u64 off = hot_six(11, 22, 33, 44, 55, 66);
    u64 expect[7] = {desc, 11, 22, 33, 44, 55, 66};
    if (on != want || off != want)
        printf("result changed: %lu %lu %lu\n", (unsigned long)want, (unsigned long)on,
               (unsigned long)off);
    else if (fires != 1)
        printf("%d firings\n", fires);
    else if (memcmp(got, expect, sizeof expect))
        printf("arguments %lx %lu %lu %lu %lu %lu %lu\n", (unsigned long)got[0],
               (unsigned long)got[1], (unsigned long)got[2], (unsigned long)got[3],
               (unsigned long)got[4], (unsigned long)got[5], (unsigned long)got[6]);
    else
        printf("ok\n");
    return 0;
}
