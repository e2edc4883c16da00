/* The <stdlib.h> lwIP sees: atoi only (net/lwip/libc.c). */
#ifndef UNIK_LIBC_STDLIB_H
#define UNIK_LIBC_STDLIB_H
#include <stddef.h>
int atoi(const char *s);
#endif
