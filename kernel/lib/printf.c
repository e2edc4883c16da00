/* Formatted output.  kvsnprintf is the formatter (a printf subset: %d %i
 * %u %x %X %p %s %c %% with l/ll/z/h, width, precision for %s, '-' and
 * '0'); kprintf sends the text to COM1 and the log ring, starting every
 * line with a dmesg-style "[    1.234567] " uptime stamp.  Anyone may call
 * kprintf, from threads or interrupt handlers. */
#include <stdarg.h>
#include "kernel.h"
#include "kprintf.h"
#include "lib.h"
#include "log.h"
#include "uart.h"
#include "x86.h"

#define KPRINTF_BUF 512

struct printf_out {
    char *buf;
    size_t n;       /* capacity */
    size_t len;     /* characters produced (may exceed n) */
};

static bool printf_line_start = true;

static void printf_put(struct printf_out *o, char c)
{
    if (o->len + 1 < o->n)
        o->buf[o->len] = c;
    o->len++;
}

/* Pad to width around the digits/string s of length len. */
static void printf_field(struct printf_out *o, const char *s, size_t len,
                         int width, bool left, char pad)
{
    int fill = width > (int)len ? width - (int)len : 0;
    if (!left && pad == '0' && len && (*s == '-')) {
        printf_put(o, *s++);
        len--;
    }
    if (!left)
        while (fill-- > 0)
            printf_put(o, pad);
    while (len--)
        printf_put(o, *s++);
    if (left)
        while (fill-- > 0)
            printf_put(o, ' ');
}

/* Format an unsigned number into tmp (from the end); returns its start. */
static char *printf_utoa(char *end, u64 v, unsigned base, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    *--end = 0;
    do {
        *--end = digits[v % base];
        v /= base;
    } while (v);
    return end;
}

/* Fetch an integer argument of the given length modifier (0 int, 1 long,
 * 2 long long/size_t, -1 short, -2 char). */
static u64 printf_arg(va_list *ap, int lmod, bool sign)
{
    if (lmod >= 1)
        return va_arg(*ap, u64);
    if (sign) {
        i64 v = va_arg(*ap, int);
        return (u64)(lmod == -1 ? (i64)(short)v : lmod == -2 ? (i64)(signed char)v : v);
    }
    u32 v = va_arg(*ap, unsigned);
    return lmod == -1 ? (u16)v : lmod == -2 ? (u8)v : v;
}

/* One numeric conversion (c is d i u x X p). */
static void printf_num(struct printf_out *o, char c, va_list *ap, int lmod,
                       int width, bool left, char pad)
{
    char tmp[24];
    bool sign = (c == 'd' || c == 'i');
    u64 v = c == 'p' ? (u64)va_arg(*ap, void *) : printf_arg(ap, lmod, sign);
    bool neg = sign && (i64)v < 0;
    char *s = printf_utoa(tmp + sizeof tmp, neg ? -(u64)v : v,
                          (c == 'd' || c == 'i' || c == 'u') ? 10 : 16, c == 'X');
    if (c == 'p') {
        while (s > tmp + sizeof tmp - 17)
            *--s = '0';
        printf_put(o, '0');
        printf_put(o, 'x');
    }
    if (neg)
        *--s = '-';
    printf_field(o, s, strlen(s), width, left, pad);
}

/* One parsed conversion: flags, width, precision, length modifier. */
struct printf_spec {
    bool left;
    char pad;
    int width, prec, lmod;
};

/* Parse the spec after '%'; returns a pointer to the conversion char. */
static const char *printf_parse(const char *fmt, struct printf_spec *sp, va_list *ap)
{
    *sp = (struct printf_spec){ false, ' ', 0, -1, 0 };
    for (; *fmt == '-' || *fmt == '0'; fmt++)
        *fmt == '-' ? (sp->left = true) : (sp->pad = '0');
    if (*fmt == '*') {
        sp->width = va_arg(*ap, int);
        fmt++;
    }
    for (; *fmt >= '0' && *fmt <= '9'; fmt++)
        sp->width = sp->width * 10 + (*fmt - '0');
    if (*fmt == '.') {
        sp->prec = 0;
        if (*++fmt == '*') {
            sp->prec = va_arg(*ap, int);
            fmt++;
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++)
            sp->prec = sp->prec * 10 + (*fmt - '0');
    }
    for (; *fmt == 'l' || *fmt == 'z' || *fmt == 'h'; fmt++)
        sp->lmod = *fmt == 'h' ? sp->lmod - 1 : sp->lmod + 1;
    return fmt;
}

/* Emit conversion c with spec sp. */
static void printf_conv(struct printf_out *o, char c, const struct printf_spec *sp,
                        va_list *ap)
{
    switch (c) {
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'p':
        printf_num(o, c, ap, sp->lmod, sp->width, sp->left, sp->pad);
        break;
    case 's': {
        const char *s = va_arg(*ap, const char *);
        if (!s)
            s = "(null)";
        size_t len = strlen(s);
        if (sp->prec >= 0 && (size_t)sp->prec < len)
            len = (size_t)sp->prec;
        printf_field(o, s, len, sp->width, sp->left, ' ');
        break;
    }
    case 'c': {
        char ch = (char)va_arg(*ap, int);
        printf_field(o, &ch, 1, sp->width, sp->left, ' ');
        break;
    }
    case '%':
        printf_put(o, '%');
        break;
    default:                            /* unknown: print it as written */
        printf_put(o, '%');
        printf_put(o, c);
    }
}

/* The formatter: C snprintf semantics (returns the full length). */
int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
    struct printf_out o = { buf, n, 0 };
    struct printf_spec sp;
    va_list aq;
    va_copy(aq, ap);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            printf_put(&o, *fmt);
            continue;
        }
        fmt = printf_parse(fmt + 1, &sp, &aq);
        if (!*fmt)
            break;
        printf_conv(&o, *fmt, &sp, &aq);
    }
    va_end(aq);
    if (n)
        buf[o.len < n ? o.len : n - 1] = 0;
    return (int)o.len;
}

int ksnprintf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = kvsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return r;
}

/* Send text to both sinks. */
static void printf_emit(const char *s, size_t n)
{
    uart_write(s, n);
    log_write(s, n);
}

/* Write s, inserting the uptime stamp at the start of every line. */
static void printf_lines(const char *s, size_t n)
{
    char stamp[24];
    u64 ns = time_ns();
    int slen = ksnprintf(stamp, sizeof stamp, "[%5lu.%06lu] ",
                         ns / 1000000000, (ns / 1000) % 1000000);
    while (n) {
        if (printf_line_start)
            printf_emit(stamp, (size_t)slen);
        size_t k = 0;
        while (k < n && s[k] != '\n')
            k++;
        printf_line_start = k < n;
        if (k < n)
            k++;
        printf_emit(s, k);
        s += k;
        n -= k;
    }
}

/* printf to the console and the log; atomic with respect to interrupts
 * (lines are never interleaved).  Output beyond KPRINTF_BUF is cut. */
void kprintf(const char *fmt, ...)
{
    char buf[KPRINTF_BUF];
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    u64 f = irq_save();
    printf_lines(buf, (size_t)n);
    irq_restore(f);
}
