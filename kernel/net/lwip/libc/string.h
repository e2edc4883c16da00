/* The <string.h> lwIP and the port see: the kernel's own functions
 * (kernel/lib/string.c). */
#ifndef UNIK_LIBC_STRING_H
#define UNIK_LIBC_STRING_H
#include <stddef.h>
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
#endif
