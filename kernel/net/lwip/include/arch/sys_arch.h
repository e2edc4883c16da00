/* lwIP's OS types (arch/sys_arch.h) on the kernel's sync.h objects,
 * embedded by value (lwIP keeps them inside its own structures), each with
 * a flag for lwIP's valid/invalid protocol.  Functions: net/lwip/sys_arch.c. */
#ifndef UNIK_LWIP_SYS_ARCH_H
#define UNIK_LWIP_SYS_ARCH_H
#include "sync.h"

typedef struct { struct sem s; int valid; } sys_sem_t;
typedef struct { struct mutex m; int valid; } sys_mutex_t;
typedef struct { struct mbox b; int valid; } sys_mbox_t;
typedef struct thread *sys_thread_t;
typedef uint64_t sys_prot_t;            /* RFLAGS before interrupts went off */

#define sys_sem_valid(s) ((s) != NULL && (s)->valid)
#define sys_sem_set_invalid(s) do { if ((s) != NULL) (s)->valid = 0; } while (0)
#define sys_mutex_valid(m) ((m) != NULL && (m)->valid)
#define sys_mutex_set_invalid(m) do { if ((m) != NULL) (m)->valid = 0; } while (0)
#define sys_mbox_valid(b) ((b) != NULL && (b)->valid)
#define sys_mbox_set_invalid(b) do { if ((b) != NULL) (b)->valid = 0; } while (0)
#endif
