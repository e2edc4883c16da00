/* 16550 UART on COM1: polled output for kprintf and the panic report. */
#ifndef UNIK_UART_H
#define UNIK_UART_H
#include "types.h"
#define UART_COM1 0x3f8
void uart_init(void);
void uart_putc(char c);
void uart_write(const char *s, size_t n);
#endif
