/* Freestanding string functions and CRC-32 (pure: also built for the host). */
#ifndef UNIK_LIB_H
#define UNIK_LIB_H
#include "types.h"
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
/* Length of s, at most max (reads whole aligned words: never past s's page). */
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
/* Copy at most n-1 bytes and always NUL-terminate (n > 0); pads with NULs. */
void str_copy(char *d, const char *s, size_t n);
/* CRC-32 (IEEE 802.3, as zlib.crc32): crc32_update(0, p, n) for a fresh sum. */
u32 crc32_update(u32 crc, const void *p, size_t n);
#endif
