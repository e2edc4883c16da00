/* kmain, the C entry point (called by arch/boot.S), and the facts about
 * the running kernel that kernel.h exports: build-id, application name,
 * version and command line. */
#include "arch.h"
#include "flight.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "log.h"
#include "mm.h"
#include "netdev.h"
#include "probe.h"
#include "fbt.h"
#include "sched.h"
#include "selftest.h"
#include "thread.h"
#include "tunables.h"
#include "uart.h"

#define KERNEL_VERSION "unik 0.1.0"
#define KERNEL_NOTE_GNU 3               /* NT_GNU_BUILD_ID */

extern const u8 __build_id_note[], __build_id_note_end[];

/* Until kernel/chan/ provides the probe channel, starting it does nothing. */
__attribute__((weak)) void chan_start(void)
{
    kprintf("chan: no probe channel linked in\n");
}

/* Copy the GNU build-id (from the .note.gnu.build-id the linker wrote). */
u32 kernel_build_id(u8 *out, u32 max)
{
    const u32 *n = (const u32 *)__build_id_note;
    if (__build_id_note_end - __build_id_note < 16 || n[2] != KERNEL_NOTE_GNU)
        return 0;
    u32 namesz = (n[0] + 3) & ~3u, descsz = n[1];
    const u8 *desc = __build_id_note + 12 + namesz;
    if (desc + descsz > __build_id_note_end)
        return 0;
    u32 len = MIN(descsz, max);
    memcpy(out, desc, len);
    return len;
}

/* The TSC the boot stub read at _start32 (HELLO's tsc_entry). */
u64 kernel_tsc_entry(void)
{
    extern u64 boot_tsc_entry;
    return boot_tsc_entry;
}

const char *kernel_app_name(void)
{
    return app_name;
}

const char *kernel_version(void)
{
    return KERNEL_VERSION;
}

const char *kernel_cmdline(void)
{
    return pvh_cmdline();
}

/* Find "key=value" (or a bare "key", value "") among the blank-separated
 * words of the command line; copy the value into buf (cut to n-1 bytes). */
bool kernel_cmdline_get(const char *key, char *buf, size_t n)
{
    const char *s = pvh_cmdline();
    size_t klen = strlen(key);
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *w = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if ((size_t)(s - w) < klen || strncmp(w, key, klen))
            continue;
        const char *v = w + klen;
        if (v != s && *v != '=')
            continue;
        if (n == 0)
            return true;
        size_t vlen = v == s ? 0 : (size_t)(s - v - 1);
        size_t c = MIN(vlen, n - 1);
        memcpy(buf, v == s ? v : v + 1, c);
        buf[c] = 0;
        return true;
    }
    return false;
}

/* The boot banner: version, app, build-id, command line, clock. */
static void kernel_banner(void)
{
    u8 id[32];
    char hex[65];
    u32 n = kernel_build_id(id, sizeof id);
    for (u32 i = 0; i < n; i++)
        ksnprintf(hex + 2 * i, 3, "%02x", id[i]);
    hex[2 * n] = 0;
    u64 hz = time_tsc_hz();
    kprintf("%s (app %s) build-id %s\n", KERNEL_VERSION, app_name, n ? hex : "none");
    kprintf("cmdline: \"%s\"\n", kernel_cmdline());
    kprintf("time: tsc %lu.%03lu MHz, tick %d Hz, slice %d ticks\n",
            hz / 1000000, (hz / 1000) % 1000, TIMER_HZ, SCHED_SLICE_TICKS);
}

/* C entry from boot.S: bring up every subsystem in dependency order, start
 * the probe channel and the application, then become the idle thread. */
void kmain(u32 start_info)
{
    char flag[8];

    uart_init();
    pvh_init(start_info);
    kprintf("unik: booting (start_info 0x%x)\n", start_info);
    gdt_init();
    idt_init();
    pic_init();
    ioapic_init();
    mm_init();
    site_init();
    fbt_init();
    time_init();
    sched_init();
    flight_init();
    kernel_banner();
    kprintf("unik: kernel ready\n");
    chan_start();
    netdev_init();
    if (kernel_cmdline_get("unik.selftest", flag, sizeof flag) && !strcmp(flag, "1")) {
        if (!thread_spawn("selftest", selftest_main, NULL, THREAD_F_SERVICE, 0))
            panic("cannot spawn the selftest thread");
    } else if (!thread_spawn("app", app_main, NULL, THREAD_F_APP, 0)) {
        panic("cannot spawn the app thread");
    }
    sched_idle();
}
