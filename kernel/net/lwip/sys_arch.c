/* lwIP's OS port (sys_arch): lwIP's semaphores, mutexes, mailboxes,
 * threads, critical sections and clock on the kernel's sync.h objects,
 * thread_spawn and time_ns.  lwIP calls these from the tcpip thread and
 * from application threads; sys_mbox_trypost_fromisr from the network
 * receive interrupt (netif.c).  Timeouts are in ms, 0 = forever, as in
 * sync.h; a timed-out wait returns SYS_ARCH_TIMEOUT.
 *
 * lwIP gives its objects no names: a mailbox is named after its kind,
 * known from its size (lwipopts.h gives each kind its own), and mutexes
 * in creation order (mem_init's first, then the tcpip core lock), so `ps`
 * shows "mbox:tcpip", "mbox:tcp-recv", "mutex:lwip-core"... */
#include "lwip/opt.h"
#include "lwip/sys.h"
#include "lwip/stats.h"
#include "kernel.h"
#include "kprintf.h"
#include "mm.h"
#include "thread.h"
#include "x86.h"

/* Nothing to set up: every object is initialised in place.  lwip_init. */
void sys_init(void)
{
}

/* Milliseconds since boot (lwIP's timers).  Wraps after 49 days, which
 * lwIP's timer arithmetic allows. */
u32_t sys_now(void)
{
    return (u32_t)(time_ns() / 1000000);
}

/* SYS_ARCH_PROTECT: interrupts off (single CPU), nestable through the
 * saved flags. */
sys_prot_t sys_arch_protect(void)
{
    return irq_save();
}

void sys_arch_unprotect(sys_prot_t pval)
{
    irq_restore(pval);
}

/* A kernel thread for lwIP (the tcpip thread): a service thread, so a
 * frame's wakeup preempts the application. */
sys_thread_t sys_thread_new(const char *name, lwip_thread_fn fn, void *arg,
                            int stacksize, int prio)
{
    (void)prio;
    struct thread *t = thread_spawn(name, fn, arg, THREAD_F_SERVICE,
                                    stacksize > 0 ? (u32)stacksize : 0);
    if (!t)
        panic("lwip: cannot spawn thread %s", name);
    return t;
}

/* What a wait that succeeded returns: the ms since t0 (time_ns), kept
 * below SYS_ARCH_TIMEOUT, which means it timed out.  Called by
 * sys_arch_sem_wait and sys_arch_mbox_fetch. */
static u32_t sys_waited_ms(u64 t0)
{
    u64 ms = (time_ns() - t0) / 1000000;
    return ms >= SYS_ARCH_TIMEOUT ? SYS_ARCH_TIMEOUT - 1 : (u32_t)ms;
}

/* --- semaphores --- */

err_t sys_sem_new(sys_sem_t *sem, u8_t count)
{
    sem_init(&sem->s, "lwip", count);
    sem->valid = 1;
    SYS_STATS_INC_USED(sem);
    return ERR_OK;
}

void sys_sem_free(sys_sem_t *sem)
{
    sem->valid = 0;
    SYS_STATS_DEC(sem.used);
}

void sys_sem_signal(sys_sem_t *sem)
{
    sem_signal(&sem->s);
}

/* Wait for the semaphore; ms waited (0 when it was free) or
 * SYS_ARCH_TIMEOUT. */
u32_t sys_arch_sem_wait(sys_sem_t *sem, u32_t timeout)
{
    u64 t0 = time_ns();
    if (!sem_wait(&sem->s, timeout))
        return SYS_ARCH_TIMEOUT;
    return sys_waited_ms(t0);
}

/* --- mutexes --- */

err_t sys_mutex_new(sys_mutex_t *mutex)
{
    static const char *const names[] = { "lwip-mem", "lwip-core" };
    static u32 created;
    mutex_init(&mutex->m, created < ARRAY_SIZE(names) ? names[created] : "lwip");
    created++;
    mutex->valid = 1;
    SYS_STATS_INC_USED(mutex);
    return ERR_OK;
}

void sys_mutex_free(sys_mutex_t *mutex)
{
    mutex->valid = 0;
    SYS_STATS_DEC(mutex.used);
}

void sys_mutex_lock(sys_mutex_t *mutex)
{
    mutex_lock(&mutex->m);
}

void sys_mutex_unlock(sys_mutex_t *mutex)
{
    mutex_unlock(&mutex->m);
}

/* --- mailboxes --- */

/* The kind of mailbox lwIP makes with this size (see lwipopts.h). */
static const char *sys_mbox_name(int size)
{
    switch (size) {
    case TCPIP_MBOX_SIZE: return "tcpip";
    case DEFAULT_TCP_RECVMBOX_SIZE: return "tcp-recv";
    case DEFAULT_ACCEPTMBOX_SIZE: return "accept";
    case DEFAULT_UDP_RECVMBOX_SIZE: return "udp-recv";
    case DEFAULT_RAW_RECVMBOX_SIZE: return "raw-recv";
    default: return "lwip";
    }
}

/* A mailbox of size slots (kmalloc'd; freed by sys_mbox_free). */
err_t sys_mbox_new(sys_mbox_t *mbox, int size)
{
    if (size <= 0)
        size = 16;
    void **slots = kmalloc((size_t)size * sizeof(void *));
    if (!slots) {
        SYS_STATS_INC(mbox.err);
        return ERR_MEM;
    }
    mbox_init(&mbox->b, sys_mbox_name(size), slots, (u32)size);
    mbox->valid = 1;
    SYS_STATS_INC_USED(mbox);
    return ERR_OK;
}

/* lwIP drains a mailbox before freeing it; messages still in it would
 * leak, so say so. */
void sys_mbox_free(sys_mbox_t *mbox)
{
    if (mbox->b.count)
        kprintf("lwip: mbox:%s freed with %u messages\n", mbox->b.name, mbox->b.count);
    kfree(mbox->b.slots);
    mbox->b.slots = NULL;
    mbox->valid = 0;
    SYS_STATS_DEC(mbox.used);
}

void sys_mbox_post(sys_mbox_t *mbox, void *msg)
{
    mbox_post(&mbox->b, msg);
}

err_t sys_mbox_trypost(sys_mbox_t *mbox, void *msg)
{
    if (mbox_trypost(&mbox->b, msg))
        return ERR_OK;
    SYS_STATS_INC(mbox.err);
    return ERR_MEM;
}

/* From the receive interrupt (netif.c through tcpip_inpkt): mbox_trypost
 * is interrupt-safe. */
err_t sys_mbox_trypost_fromisr(sys_mbox_t *mbox, void *msg)
{
    return sys_mbox_trypost(mbox, msg);
}

/* Fetch a message (msg may be NULL); ms waited or SYS_ARCH_TIMEOUT. */
u32_t sys_arch_mbox_fetch(sys_mbox_t *mbox, void **msg, u32_t timeout)
{
    void *m;
    u64 t0 = time_ns();
    if (!mbox_fetch(&mbox->b, &m, timeout))
        return SYS_ARCH_TIMEOUT;
    if (msg)
        *msg = m;
    return sys_waited_ms(t0);
}

u32_t sys_arch_mbox_tryfetch(sys_mbox_t *mbox, void **msg)
{
    void *m;
    if (!mbox_tryfetch(&mbox->b, &m))
        return SYS_MBOX_EMPTY;
    if (msg)
        *msg = m;
    return 0;
}
