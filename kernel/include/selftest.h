/* In-guest self-test, run instead of the app when the command line has
 * unik.selftest=1: checks the core subsystems, prints
 * "selftest: N passed, M failed" and exits QEMU through isa-debug-exit
 * (status 1 = all passed, 3 = some failed, 5 = panic). */
#ifndef UNIK_SELFTEST_H
#define UNIK_SELFTEST_H
#include "types.h"
void selftest_main(void *arg);
/* Record one check: counted, and printed with its line when it fails. */
void selftest_check(bool ok, const char *what, int line);
#define CHECK(cond) selftest_check((cond), #cond, __LINE__)
/* The thread_info of thread `name` into *out; false if it is not listed. */
struct thread_info;
bool selftest_find(const char *name, struct thread_info *out);
/* Static probe sites: patching round trips and firings (selftest_sites.c). */
void selftest_sites(void);
/* The probe engine's part (kernel/probe/probetest.c). */
void probetest_run(void);
/* Wait queues, semaphores, mutexes, mailboxes (selftest_sync.c). */
void selftest_sync(void);
/* The virtio-net driver, when a device is present (selftest_net.c). */
void selftest_net(void);
#endif
