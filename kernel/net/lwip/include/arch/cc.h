/* lwIP's compiler and platform port (arch/cc.h): freestanding gcc on
 * x86-64, little endian; diagnostics to the kernel log; a failed lwIP
 * assertion is a kernel panic; random numbers from isn.c. */
#ifndef UNIK_LWIP_CC_H
#define UNIK_LWIP_CC_H
#include <stdint.h>
#include <stddef.h>

#define BYTE_ORDER LITTLE_ENDIAN
#define LWIP_NO_INTTYPES_H 1            /* no libc: the formats are below */
#define LWIP_NO_CTYPE_H 1               /* lwIP's own isdigit & co. */
#define X8_F "02x"
#define U16_F "u"
#define S16_F "d"
#define X16_F "x"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "lu"

void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
uint32_t net_rand(void);

#define LWIP_PLATFORM_DIAG(x) do { kprintf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) panic("lwip: assertion \"%s\" failed at %s:%d", x, __FILE__, __LINE__)
#define LWIP_RAND() net_rand()
#endif
