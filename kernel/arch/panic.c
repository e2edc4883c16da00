/* The panic report: every CPU exception (from trap_dispatch) and every
 * panic() call prints the cause, the current thread, all registers and a
 * frame-pointer backtrace with function names, on COM1 and into the log
 * ring, keeps it in the crash record (arch/crash.c) and tells the host,
 * then halts with interrupts off so the host can take a core.  A #PF or
 * #DF in the guard page below a thread's stack is a stack overflow. */
#include <stdarg.h>
#include "arch.h"
#include "crash.h"
#include "flight.h"
#include "fbt.h"
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "mm.h"
#include "probe_site.h"
#include "thread.h"
#include "tunables.h"
#include "x86.h"

#define VEC_DF 8
#define VEC_PF 14
#define PANIC_PROLOGUE_SCAN 32            /* bytes searched for push %rbp */

static const char *const panic_exc[32][2] = {
    {"#DE", "divide error"}, {"#DB", "debug"}, {"NMI", "non-maskable interrupt"},
    {"#BP", "breakpoint"}, {"#OF", "overflow"}, {"#BR", "bound range exceeded"},
    {"#UD", "invalid opcode"}, {"#NM", "device not available"},
    {"#DF", "double fault"}, {"#09", "coprocessor segment overrun"},
    {"#TS", "invalid TSS"}, {"#NP", "segment not present"},
    {"#SS", "stack-segment fault"}, {"#GP", "general protection fault"},
    {"#PF", "page fault"}, {"#15", "reserved"},
    {"#MF", "x87 floating-point error"}, {"#AC", "alignment check"},
    {"#MC", "machine check"}, {"#XM", "SIMD floating-point exception"},
    {"#VE", "virtualization exception"}, {"#CP", "control protection"},
    {"#22", "reserved"}, {"#23", "reserved"}, {"#24", "reserved"},
    {"#25", "reserved"}, {"#26", "reserved"}, {"#27", "reserved"},
    {"#HV", "hypervisor injection"}, {"#VC", "VMM communication"},
    {"#SX", "security exception"}, {"#31", "reserved"},
};

/* panic:::enter -- the kernel panicked: reason is the exception's name
 * (panic_trap) or panic()'s message.  Fires after the report is printed,
 * just before the halt, so a fault in a probe cannot lose the report. */
PROBE_DEFINE(panic, enter, string, reason);

static volatile int panic_depth;
static bool panic_exit;

/* Selftest mode: a panic exits QEMU (status 5) instead of halting. */
void panic_set_exit(bool on)
{
    panic_exit = on;
}

/* Stop for good: interrupts off, hlt forever (NMIs just loop). */
void panic_halt(void)
{
    if (panic_exit)
        outb(DEBUG_EXIT_PORT, 2);
    for (;;) {
        cpu_cli();
        cpu_hlt();
    }
}

/* One backtrace line: "  #i 0x... name+0xoff".  Return addresses are
 * looked up one byte back so a call at a function's end names it. */
static void panic_frame(int i, u64 pc, bool is_ret)
{
    u64 off = 0;
    const char *name = ksyms_lookup(is_ret ? pc - 1 : pc, &off);
    crash_frame((u32)i, pc);
    if (name)
        kprintf("  #%d 0x%016lx %s+0x%lx\n", i, pc, name, is_ret ? off + 1 : off);
    else
        kprintf("  #%d 0x%016lx ?\n", i, pc);
}

/* panic_leaf_slot for a function that starts with its fbt site (the
 * nop, or the call when enabled): gcc -pg emits push %rbp first and may
 * schedule instructions between it and mov %rsp,%rbp.  fn is the code
 * after the site, off the faulting offset into it. */
static u64 panic_split_slot(const struct trap_frame *f, const u8 *fn, u64 off)
{
    static const u8 mov[3] = {0x48, 0x89, 0xe5};
    if (fn[0] != 0x55 || off == 0)      /* frameless, or before push %rbp */
        return f->rsp;
    for (u64 q = 1; q < PANIC_PROLOGUE_SCAN && q < off; q++)
        if (!memcmp(fn + q, mov, sizeof mov))
            return 0;                   /* framed: the rbp chain is right */
    return f->rsp + 8;                  /* pushed %rbp, not yet framed */
}

/* Where the return address of a trapping function sits when its frame is
 * not (or never) set up: gcc emits no push %rbp/mov %rsp,%rbp in a leaf
 * that uses no stack, and may schedule a few instructions before the
 * prologue; a fault at a ret also finds it at [rsp].  0 when the rbp chain
 * is right. */
static u64 panic_leaf_slot(const struct trap_frame *f)
{
    static const u8 prologue[4] = {0x55, 0x48, 0x89, 0xe5};
    u64 off, p;
    const char *name = ksyms_lookup(f->rip, &off);
    const u8 *fn = (const u8 *)(f->rip - off);
    u64 scan = MIN(off, (u64)PANIC_PROLOGUE_SCAN);

    if (!name || !mm_readable((u64)fn, off + 1))
        return 0;
    if (fn[off] == 0xc3)                /* at ret: frame already gone */
        return f->rsp;
    if (off >= 5 && (fn[0] == 0xe8 || !memcmp(fn, "\x0f\x1f\x44\x00\x00", 5)))
        return panic_split_slot(f, fn + 5, off - 5);
    for (p = 0; p < scan; p++)
        if (!memcmp(fn + p, prologue, sizeof prologue))
            break;
    if (p == scan || off <= p)          /* frameless, or before push %rbp */
        return f->rsp;
    return off < p + sizeof prologue ? f->rsp + 8 : 0;
}

/* Walk the rbp chain; every frame is checked with mm_readable first so a
 * corrupt chain ends the walk instead of faulting inside the panic.  For a
 * trap, frame 0 is the faulting instruction (maybe in a frameless leaf);
 * for panic() it is the caller's return address.  A return into an fbt
 * return trampoline is shown as the original (fbt_unwind_ret). */
static void panic_backtrace(const struct trap_frame *f, bool trap)
{
    u64 rbp = f->rbp, slot = trap ? panic_leaf_slot(f) : 0;
    struct thread *t = thread_current();
    u32 k = 0;                          /* fbt return trampolines seen */
    int i = 1;

    kprintf("backtrace:\n");
    panic_frame(0, f->rip, !trap);
    if (slot && mm_readable(slot, 8))
        panic_frame(i++, fbt_unwind_ret(t, *(u64 *)slot, &k), true);
    for (; i < PANIC_BT_MAX && rbp; i++) {
        if ((rbp & 7) || !mm_readable(rbp, 16)) {
            kprintf("  (frame pointer 0x%lx not readable)\n", rbp);
            return;
        }
        u64 next = ((u64 *)rbp)[0], ret = ((u64 *)rbp)[1];
        if (!ret)
            return;
        panic_frame(i, fbt_unwind_ret(t, ret, &k), true);
        if (next <= rbp)
            return;
        rbp = next;
    }
}

/* Registers, three per line. */
static void panic_regs(const struct trap_frame *f)
{
    kprintf("  rax=0x%016lx rbx=0x%016lx rcx=0x%016lx\n", f->rax, f->rbx, f->rcx);
    kprintf("  rdx=0x%016lx rsi=0x%016lx rdi=0x%016lx\n", f->rdx, f->rsi, f->rdi);
    kprintf("  rbp=0x%016lx rsp=0x%016lx  r8=0x%016lx\n", f->rbp, f->rsp, f->r8);
    kprintf("   r9=0x%016lx r10=0x%016lx r11=0x%016lx\n", f->r9, f->r10, f->r11);
    kprintf("  r12=0x%016lx r13=0x%016lx r14=0x%016lx\n", f->r12, f->r13, f->r14);
    kprintf("  r15=0x%016lx rip=0x%016lx rfl=0x%016lx\n", f->r15, f->rip, f->rflags);
    kprintf("   cs=0x%04lx ss=0x%04lx cr0=0x%08lx cr3=0x%08lx cr4=0x%08lx\n",
            f->cs, f->ss, read_cr0(), read_cr3(), read_cr4());
}

/* Everything after the headline: thread, registers, rip, backtrace. */
static void panic_report(const struct trap_frame *f, bool trap)
{
    struct thread *t = thread_current();
    u64 off = 0;
    const char *fn = ksyms_lookup(trap ? f->rip : f->rip - 1, &off);

    if (t)
        kprintf("thread %u \"%s\"\n", thread_id(t), thread_name(t));
    else
        kprintf("thread - \"boot\"\n");
    kprintf("registers:\n");
    panic_regs(f);
    kprintf("rip 0x%016lx %s+0x%lx\n", f->rip, fn ? fn : "?", trap ? off : off + 1);
    panic_backtrace(f, trap);
    kprintf("kernel halted (uptime %lu ms)\n", time_ns() / 1000000);
}

/* First thing in any panic: block interrupts, catch recursion. */
static bool panic_enter(void)
{
    cpu_cli();
    if (++panic_depth > 1) {
        if (panic_depth == 2)
            kprintf("PANIC: recursive panic, halting\n");
        return false;
    }
    return true;
}

/* A #PF or #DF whose address is in a thread's stack guard page: say it
 * is a stack overflow (headline already printed), in the record too. */
static void panic_overflow(const struct trap_frame *f)
{
    u64 lo, cr2 = read_cr2();
    struct thread *t;
    char why[64];

    if (f->vector != VEC_PF && f->vector != VEC_DF)
        return;
    t = thread_guarded(cr2, &lo);
    if (!t)
        return;
    ksnprintf(why, sizeof why, "stack overflow in thread %u (%s)", thread_id(t), thread_name(t));
    kprintf("%s: guard page at 0x%lx, stack 0x%lx-0x%lx\n", why, cr2 & ~(u64)0xfff, lo,
            lo + thread_stack_size(t));
    crash_refine(CRASH_STACK_OVERFLOW, why, cr2 & ~(u64)0xfff, lo);
}

/* A CPU exception: called by trap_dispatch for vectors 0-31. */
void panic_trap(struct trap_frame *f)
{
    if (!panic_enter())
        panic_halt();
    const char *const *e = panic_exc[f->vector & 31];
    crash_begin(CRASH_TRAP, f, true, e[1]);
    kprintf("PANIC: %s %s (vector %lu) err=0x%lx cr2=0x%016lx\n",
            e[0], e[1], f->vector, f->err, read_cr2());
    if (f->vector == VEC_PF)
        kprintf("page fault: %s of a %s page at 0x%lx\n",
                (f->err & 16) ? "instruction fetch" : (f->err & 2) ? "write" : "read",
                (f->err & 1) ? "protected" : "not-present", read_cr2());
    panic_overflow(f);
    flight_record_str(FLIGHT_PANIC, f->vector, e[1]);
    panic_report(f, true);
    PROBE_FIRE(panic, enter, e[1]);
    crash_end();
    panic_halt();
}

/* The caller's registers as panic() sees them: callee-saved ones, flags,
 * segments, and rip/rbp/rsp of the function that called panic (a macro:
 * the builtins must run in that function's own frame). */
#define PANIC_CAPTURE(f)                                                      \
    do {                                                                      \
        __asm__ volatile("mov %%rbx, %0; mov %%r12, %1; mov %%r13, %2; "      \
                         "mov %%r14, %3; mov %%r15, %4"                       \
                         : "=m"((f).rbx), "=m"((f).r12), "=m"((f).r13),       \
                           "=m"((f).r14), "=m"((f).r15));                     \
        __asm__ volatile("pushfq; popq %0; mov %%cs, %1; mov %%ss, %2"        \
                         : "=r"((f).rflags), "=r"((f).cs), "=r"((f).ss));     \
        (f).rip = (u64)__builtin_return_address(0);                           \
        (f).rbp = *(u64 *)__builtin_frame_address(0);                         \
        (f).rsp = (u64)__builtin_frame_address(0) + 16;                       \
    } while (0)

/* What panic_kind and panic_assert hand to panic(): their caller's
 * registers, the record's kind and KASSERT's position (kind 0: none, a
 * plain panic() call).  Only the first panic uses them. */
static struct trap_frame panic_given;
static u32 panic_given_kind;
static const char *panic_given_file;
static u32 panic_given_line;

/* panic(fmt, ...): the same report, for the caller of panic (or of
 * panic_kind / panic_assert, which come through here so that panic:::enter
 * has one site for every panic call). */
void panic(const char *fmt, ...)
{
    struct trap_frame f = {0};
    u32 kind = CRASH_PANIC;
    char msg[160];
    va_list ap;

    PANIC_CAPTURE(f);
    if (!panic_enter())
        panic_halt();
    if (panic_given_kind) {
        f = panic_given;
        kind = panic_given_kind;
    }
    va_start(ap, fmt);
    kvsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    crash_begin(kind, &f, false, msg);
    if (panic_given_file)
        crash_where(panic_given_file, panic_given_line);
    kprintf("PANIC: %s\n", msg);
    flight_record_str(FLIGHT_PANIC, ~0ull, msg);
    panic_report(&f, false);
    PROBE_FIRE(panic, enter, msg);
    crash_end();
    panic_halt();
}

/* panic_kind(kind, fmt, ...): panic() with the record's kind said (the
 * heap's checks, a watchdog). */
void panic_kind(u32 kind, const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    PANIC_CAPTURE(panic_given);
    panic_given_kind = kind;
    va_start(ap, fmt);
    kvsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    panic("%s", msg);
}

/* A failed KASSERT(expr) in func at file:line (kernel.h); file is cut to
 * what follows its last "kernel/". */
void panic_assert(const char *expr, const char *file, u32 line, const char *func)
{
    const char *rel = file;

    PANIC_CAPTURE(panic_given);
    panic_given_kind = CRASH_ASSERT;
    for (const char *k = file; *k; k++)
        if (!strncmp(k, "kernel/", 7))
            rel = k + 7;
    panic_given_file = rel;
    panic_given_line = line;
    panic("assertion failed: %s in %s at %s:%u", expr, func, rel, line);
}
