/* The C library functions lwIP needs beyond the kernel's (kernel/lib):
 * atoi and errno.  The string functions are the kernel's own. */
#include "lwip/opt.h"
#include "lwip/errno.h"
#include <stdlib.h>

/* lwIP's sockets set errno on failure (LWIP_PROVIDE_ERRNO).  One global:
 * a thread reads it right after its own failed call, and the kernel only
 * switches threads at ticks and blocking points, so read it at once or
 * use the return values (the HTTP app does). */
int errno;

/* Decimal string to int, as C's atoi: leading blanks, an optional sign,
 * digits; stops at the first non-digit.  Overflow wraps (as undefined in
 * C, harmless here).  lwIP uses it for netif_find("en0"). */
int atoi(const char *s)
{
    unsigned v = 0;
    int neg = 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned)(*s++ - '0');
    return neg ? -(int)v : (int)v;
}
