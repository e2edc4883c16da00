/* Formatted output: to COM1 and the log ring, one timestamp per line. */
#ifndef UNIK_KPRINTF_H
#define UNIK_KPRINTF_H
#include <stdarg.h>
#include "types.h"
/* printf subset: %d %i %u %x %X %p %s %c %% with l/ll/z, width, '-', '0'. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ksnprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
#endif
