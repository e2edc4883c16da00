/* The crash record (arch/crash.c): what a panic leaves for the host, in
 * the global crash_record (layout: introspect/protocol.py CRASH_RECORD,
 * generated into wire.h) and in a CRASH frame.  Used by arch/panic.c; the
 * kinds are WIRE_CRASH_* (TRAP, PANIC, ASSERT, STACK_OVERFLOW, HEAP,
 * WATCHDOG). */
#ifndef UNIK_CRASH_H
#define UNIK_CRASH_H
#include "arch.h"
#include "wire.h"

extern struct wire_crash_record crash_record;
void crash_begin(u32 kind, const struct trap_frame *f, bool trap, const char *reason);
void crash_refine(u32 kind, const char *reason, u64 addr, u64 stack_lo);
void crash_where(const char *file, u32 line);
void crash_about(u64 addr);
void crash_frame(u32 i, u64 pc);
void crash_end(void);
/* chan/server.c: send the record as a CRASH frame if the channel is idle
 * and a host is connected (interrupts off, panicking). */
void chan_send_crash(const void *rec, u32 len);
#endif
