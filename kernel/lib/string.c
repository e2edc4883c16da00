/* Freestanding string and memory functions (gcc may also emit calls to
 * memcpy/memset/memmove/memcmp itself).  Pure: also builds for the host. */
#include "lib.h"

void *memcpy(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    if (dp < sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

void *memset(void *d, int c, size_t n)
{
    u8 *dp = d;
    while (n--)
        *dp++ = (u8)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *ap = a, *bp = b;
    for (size_t i = 0; i < n; i++)
        if (ap[i] != bp[i])
            return ap[i] < bp[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (u8)*a - (u8)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (u8)*a - (u8)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

/* Bounded copy: at most n-1 bytes, always terminated, rest zero-filled
 * (wire structs' char[N] fields must not leak stale bytes). */
void str_copy(char *d, const char *s, size_t n)
{
    size_t i = 0;
    if (!n)
        return;
    for (; i < n - 1 && s[i]; i++)
        d[i] = s[i];
    for (; i < n; i++)
        d[i] = 0;
}
