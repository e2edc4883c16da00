/* Facts about the running kernel, and time. */
#ifndef UNIK_KERNEL_H
#define UNIK_KERNEL_H
#include "types.h"
u64 time_ns(void);                   /* nanoseconds since boot (TSC based) */
u64 time_tsc_hz(void);               /* calibrated TSC frequency */
u64 time_ticks(void);                /* timer interrupts since boot */
u64 kernel_tsc_entry(void);          /* TSC at the kernel's first instruction */
u32 kernel_build_id(u8 *out, u32 max); /* copy the GNU build-id; returns its length */
const char *kernel_app_name(void);   /* the application linked in */
const char *kernel_version(void);
const char *kernel_cmdline(void);    /* PVH command line ("" if none) */
/* Value of "key=value" in the command line, copied into buf; false if absent. */
bool kernel_cmdline_get(const char *key, char *buf, size_t n);
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* crash: panic() with the crash record's kind (CRASH_*, crash.h);
 * KASSERT(expr) panics naming expr, function, file and line. */
void panic_kind(u32 kind, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void panic_assert(const char *expr, const char *file, u32 line, const char *func)
    __attribute__((noreturn));
#define KASSERT(expr) \
    do { if (!(expr)) panic_assert(#expr, __FILE__, __LINE__, __func__); } while (0)
/* Application entry point: each kernel/apps/NAME/ defines it and app_name. */
void app_main(void *arg);
extern const char app_name[];
/* Probe channel: spawns the "probe-chan" thread (kernel/chan/server.c). */
void chan_start(void);
#endif
