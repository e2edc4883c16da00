/* The crash record (arch/crash.c): what a panic leaves for the host, in
 * the global crash_record (layout: introspect/protocol.py CRASH_RECORD,
 * generated into wire.h) and in a CRASH frame.  Used by arch/panic.c and
 * by whoever panics with a kind (panic_kind in kernel.h).  The wire stays
 * in chan/: kernel code uses the CRASH_* names below, wire.h's values. */
#ifndef UNIK_CRASH_H
#define UNIK_CRASH_H
#include "arch.h"
#include "wire.h"

/* Why the kernel panicked (crash_record.kind; protocol.py CrashKind). */
#define CRASH_TRAP WIRE_CRASH_TRAP                      /* a CPU exception */
#define CRASH_PANIC WIRE_CRASH_PANIC                    /* a panic() call */
#define CRASH_ASSERT WIRE_CRASH_ASSERT                  /* a failed KASSERT */
#define CRASH_STACK_OVERFLOW WIRE_CRASH_STACK_OVERFLOW  /* a guard page hit */
#define CRASH_HEAP WIRE_CRASH_HEAP                      /* the heap's checks */
#define CRASH_WATCHDOG WIRE_CRASH_WATCHDOG              /* a watchdog saw a stall */
/* The record's magic, states and backtrace capacity. */
#define CRASH_MAGIC WIRE_CRASH_MAGIC
#define CRASH_WRITING WIRE_CS_WRITING
#define CRASH_COMPLETE WIRE_CS_COMPLETE
#define CRASH_FRAMES WIRE_CRASH_FRAMES

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
