/* The crash record: what the panic path (arch/panic.c) knows, kept in the
 * global crash_record (struct wire_crash_record, laid out by
 * introspect/protocol.py's CRASH_RECORD) so the host finds it by symbol in
 * a core, and sent to the host as a CRASH frame when the channel can still
 * send (chan_send_crash).  panic.c calls crash_begin as soon as it knows
 * the cause, crash_frame for each backtrace line it prints, and
 * crash_end once the report is printed, just before the halt. */
#include "arch.h"
#include "crash.h"
#include "kernel.h"
#include "lib.h"
#include "log.h"
#include "thread.h"
#include "x86.h"

struct wire_crash_record crash_record;
static u64 crash_log_start;             /* log offset where the report starts */
static u64 crash_pending_addr;          /* crash_about, for the next crash_begin */

/* Copy the trap frame's registers and the control registers. */
static void crash_regs(const struct trap_frame *f)
{
    struct wire_crash_record *r = &crash_record;
    r->rax = f->rax; r->rbx = f->rbx; r->rcx = f->rcx; r->rdx = f->rdx;
    r->rsi = f->rsi; r->rdi = f->rdi; r->rbp = f->rbp; r->rsp = f->rsp;
    r->r8 = f->r8; r->r9 = f->r9; r->r10 = f->r10; r->r11 = f->r11;
    r->r12 = f->r12; r->r13 = f->r13; r->r14 = f->r14; r->r15 = f->r15;
    r->rip = f->rip; r->rflags = f->rflags; r->cs = f->cs; r->ss = f->ss;
    r->cr0 = read_cr0(); r->cr3 = read_cr3(); r->cr4 = read_cr4();
}

/* A panic began (interrupts off, first panic only): the cause, the
 * registers, the thread and the time.  trap: f holds a CPU exception's
 * vector and error code.  Called by panic_trap and panic_kind before they
 * print anything. */
void crash_begin(u32 kind, const struct trap_frame *f, bool trap, const char *reason)
{
    struct wire_crash_record *r = &crash_record;
    struct thread *t = thread_current();

    memset(r, 0, sizeof *r);
    r->magic = CRASH_MAGIC;
    r->state = CRASH_WRITING;
    r->kind = kind;
    r->vector = trap ? (u32)f->vector : 0xffffffffu;
    r->err = trap ? f->err : 0;
    r->cr2 = read_cr2();
    crash_regs(f);
    r->uptime_ns = time_ns();
    r->tsc = rdtsc();
    r->tid = t ? thread_id(t) : 0xffffffffu;
    str_copy(r->thread, t ? thread_name(t) : "boot", sizeof r->thread);
    str_copy(r->reason, reason, sizeof r->reason);
    r->addr = crash_pending_addr;
    crash_log_start = log_head();
}

/* Say what the panic about to be called is about (the record's addr):
 * the heap's checks call it with the block's address before panic_kind. */
void crash_about(u64 addr)
{
    crash_pending_addr = addr;
}

/* Change the kind and reason once the cause is better known (a #PF or
 * #DF in a guard page is a stack overflow); addr and stack_lo say where. */
void crash_refine(u32 kind, const char *reason, u64 addr, u64 stack_lo)
{
    crash_record.kind = kind;
    crash_record.addr = addr;
    crash_record.stack_lo = stack_lo;
    if (reason)
        str_copy(crash_record.reason, reason, sizeof crash_record.reason);
}

/* The source position of a failed assertion. */
void crash_where(const char *file, u32 line)
{
    str_copy(crash_record.file, file, sizeof crash_record.file);
    crash_record.line = line;
}

/* Backtrace line i printed the address pc.  Called by panic.c. */
void crash_frame(u32 i, u64 pc)
{
    if (i >= CRASH_FRAMES)
        return;
    memcpy(crash_record.frames + 8 * i, &pc, 8);
    if (i + 1 > crash_record.nframes)
        crash_record.nframes = i + 1;
}

/* The report is printed: keep its text (the log bytes since crash_begin,
 * the last CRASH_TEXT of them), mark the record complete and tell the
 * host.  Called by panic.c just before the halt. */
void crash_end(void)
{
    struct wire_crash_record *r = &crash_record;
    struct log_span span;
    u64 head = log_head(), from = crash_log_start;

    if (head - from > sizeof r->text - 1)
        from = head - (sizeof r->text - 1);
    r->text_len = log_read(from, r->text, sizeof r->text - 1, &span);
    r->text[r->text_len] = 0;
    r->state = CRASH_COMPLETE;
    __asm__ volatile("" ::: "memory");
    chan_send_crash(r, sizeof *r);
}
