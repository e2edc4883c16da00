/* Freestanding string and memory functions (gcc may also emit calls to
 * memcpy/memset/memmove/memcmp itself).  They work a word (8 bytes) at a
 * time: the probe engine's hot path copies records, tuple keys and
 * strings with them, and a bytewise loop cost it hundreds of instructions
 * per firing.  x86-64 allows unaligned loads and stores, so words are
 * accessed through word_t (alignment 1, may alias anything).  strlen and
 * strnlen read whole aligned words, which may run past the string's end
 * but never past its page.  The loops must not be turned back into calls
 * of the functions they implement (no-tree-loop-distribute-patterns).
 * Pure: also builds for the host (tests/test_string_c.py). */
#include "lib.h"

typedef u64 __attribute__((may_alias, aligned(1))) word_t;
typedef u32 __attribute__((may_alias, aligned(1))) half_t;
typedef u16 __attribute__((may_alias, aligned(1))) quarter_t;
typedef u64 __attribute__((may_alias)) aword_t;    /* aligned */

#define LIB_FN __attribute__((optimize("no-tree-loop-distribute-patterns")))
/* Reads of whole aligned words (strlen) may pass the end of the object. */
#define LIB_WORDREAD __attribute__((no_sanitize_address))

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Does word w contain a zero byte? */
static inline u64 lib_zero_bytes(u64 w)
{
    return (w - ONES) & ~w & HIGHS;
}

/* Copy the last n < 8 bytes: 4, 2, then 1 at a time. */
static inline void lib_copy_tail(u8 *d, const u8 *s, size_t n)
{
    if (n & 4) {
        *(half_t *)d = *(const half_t *)s;
        d += 4, s += 4;
    }
    if (n & 2) {
        *(quarter_t *)d = *(const quarter_t *)s;
        d += 2, s += 2;
    }
    if (n & 1)
        *d = *s;
}

LIB_FN void *memcpy(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    for (; n >= 8; n -= 8, dp += 8, sp += 8)
        *(word_t *)dp = *(const word_t *)sp;
    lib_copy_tail(dp, sp, n);
    return d;
}

/* Overlapping copies: forward when d is below s (word by word reads
 * stay ahead of the writes), else backward from the end. */
LIB_FN void *memmove(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    if (dp <= sp || dp >= sp + n)
        return memcpy(d, s, n);
    for (; n >= 8; n -= 8)
        *(word_t *)(dp + n - 8) = *(const word_t *)(sp + n - 8);
    while (n--)
        dp[n] = sp[n];
    return d;
}

LIB_FN void *memset(void *d, int c, size_t n)
{
    u8 *dp = d;
    u64 w = (u8)c * ONES;
    for (; n >= 8; n -= 8, dp += 8)
        *(word_t *)dp = w;
    if (n & 4) {
        *(half_t *)dp = (u32)w;
        dp += 4;
    }
    if (n & 2) {
        *(quarter_t *)dp = (u16)w;
        dp += 2;
    }
    if (n & 1)
        *dp = (u8)c;
    return d;
}

/* Compare words; the first differing one decides by its first differing
 * byte (the lowest address: compare the byte-swapped words). */
LIB_FN int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *ap = a, *bp = b;
    for (; n >= 8; n -= 8, ap += 8, bp += 8) {
        u64 x = *(const word_t *)ap, y = *(const word_t *)bp;
        if (x != y)
            return __builtin_bswap64(x) < __builtin_bswap64(y) ? -1 : 1;
    }
    for (size_t i = 0; i < n; i++)
        if (ap[i] != bp[i])
            return ap[i] < bp[i] ? -1 : 1;
    return 0;
}

/* Length of s, at most max: whole aligned words from the one holding
 * s[0] (its bytes before s forced nonzero) until one holds a zero byte;
 * the lowest flagged byte is the first zero (lib_zero_bytes flags no
 * byte below it), found by counting trailing zero bits. */
static LIB_FN LIB_WORDREAD size_t lib_strnlen(const char *s, size_t max)
{
    if (!max)
        return 0;
    uintptr_t off = (uintptr_t)s & 7;
    const aword_t *p = (const aword_t *)(const void *)(s - off);
    u64 z = lib_zero_bytes(*p | ((1ull << (8 * off)) - 1));
    size_t n = (size_t)0 - off;     /* p's offset from s (wraps for off > 0) */
    while (!z) {
        n += 8;
        if (n >= max)
            return max;
        z = lib_zero_bytes(*++p);
    }
    n += (size_t)(__builtin_ctzll(z) >> 3);
    return n < max ? n : max;
}

size_t strnlen(const char *s, size_t max)
{
    return lib_strnlen(s, max);
}

size_t strlen(const char *s)
{
    return lib_strnlen(s, ~(size_t)0);
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
    if (!n)
        return;
    size_t i = lib_strnlen(s, n - 1);
    memcpy(d, s, i);
    memset(d + i, 0, n - i);
}
