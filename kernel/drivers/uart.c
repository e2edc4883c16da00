/* 16550 UART on COM1, polled output only.  kprintf (lib/printf.c) and the
 * panic report write through uart_write; nothing reads the UART. */
#include "uart.h"
#include "x86.h"

#define UART_THR 0      /* transmit holding register */
#define UART_IER 1      /* interrupt enable */
#define UART_FCR 2      /* FIFO control */
#define UART_LCR 3      /* line control */
#define UART_MCR 4      /* modem control */
#define UART_LSR 5      /* line status */
#define UART_DLL 0      /* divisor latch, with LCR.DLAB */
#define UART_DLM 1
#define LSR_THRE 0x20   /* transmitter holding register empty */

static bool uart_ready;

/* Program 115200 8N1, FIFOs on, no interrupts.  Called first by kmain. */
void uart_init(void)
{
    outb(UART_COM1 + UART_IER, 0x00);
    outb(UART_COM1 + UART_LCR, 0x80);       /* DLAB */
    outb(UART_COM1 + UART_DLL, 0x01);       /* 115200 baud */
    outb(UART_COM1 + UART_DLM, 0x00);
    outb(UART_COM1 + UART_LCR, 0x03);       /* 8N1 */
    outb(UART_COM1 + UART_FCR, 0xc7);       /* FIFO on, cleared */
    outb(UART_COM1 + UART_MCR, 0x03);       /* DTR, RTS */
    uart_ready = true;
}

/* Write one byte, waiting (bounded) for the transmitter. */
void uart_putc(char c)
{
    if (!uart_ready)
        return;
    for (int i = 0; i < 100000; i++) {
        if (inb(UART_COM1 + UART_LSR) & LSR_THRE)
            break;
        cpu_relax();
    }
    outb(UART_COM1 + UART_THR, (u8)c);
}

/* Write n bytes; callers serialise with irq_save. */
void uart_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        uart_putc(s[i]);
}
