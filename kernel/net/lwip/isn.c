/* Unpredictable TCP initial sequence numbers (lwIP's LWIP_HOOK_TCP_ISN)
 * and lwIP's LWIP_RAND.
 *
 * RFC 6528: ISN = M + F(local ip, local port, remote ip, remote port,
 * secret), M a clock ticking every 4 us, F a keyed pseudo-random function:
 * here SipHash-2-4 with a 128-bit key drawn at first use from RDRAND when
 * the CPU has it, mixed with the TSC and the boot TSC (under TCG without
 * icount the TSC follows host time and is not predictable; under icount
 * without RDRAND the key is reproducible, which a record/replay run
 * wants anyway).  Another connection's ISN tells an attacker nothing of
 * this one's: F differs per 4-tuple and the key is secret.
 * net_rand (LWIP_RAND: the first ephemeral port) is SipHash of a counter. */
#include "lwip/opt.h"
#include "lwip/ip_addr.h"
#include "kernel.h"
#include "x86.h"
#include "net_hooks.h"

static u64 isn_key[2];
static bool isn_keyed;
static u64 isn_counter;

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3) do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

/* SipHash-2-4 of n 64-bit words (little-endian message of 8n bytes) under
 * key k.  Pure; used for the ISN and net_rand. */
u64 isn_siphash(const u64 k[2], const u64 *m, u32 n)
{
    u64 v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
    u64 v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
    for (u32 i = 0; i < n; i++) {
        v3 ^= m[i];
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m[i];
    }
    u64 b = (u64)(n * 8) << 56;
    v3 ^= b;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* RDRAND into *v (10 tries, as Intel advises); false without RDRAND. */
static bool isn_rdrand(u64 *v)
{
    u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 30)))
        return false;
    for (int i = 0; i < 10; i++) {
        u8 ok;
        __asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok));
        if (ok)
            return true;
    }
    return false;
}

/* Draw the secret key once (first ISN or random number). */
static void isn_seed(void)
{
    u64 r[2] = { 0, 0 };
    isn_rdrand(&r[0]);
    isn_rdrand(&r[1]);
    u64 m[4] = { rdtsc(), kernel_tsc_entry(), time_ns(), rdtsc() };
    u64 k0[2] = { r[0] ^ m[0], r[1] ^ m[3] };
    isn_key[0] = isn_siphash(k0, m, 4);
    m[0] ^= 0x5a5a5a5a5a5a5a5aull;
    isn_key[1] = isn_siphash(k0, m, 4) ^ rdtsc();
    isn_keyed = true;
}

/* LWIP_HOOK_TCP_ISN, from tcp_connect and tcp_listen_input (tcpip thread,
 * core locked): the 4-us clock plus the keyed hash of the 4-tuple. */
u32_t net_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
                  const ip_addr_t *remote_ip, u16_t remote_port)
{
    if (!isn_keyed)
        isn_seed();
    u64 m[2] = {
        ((u64)ip4_addr_get_u32(ip_2_ip4(local_ip)) << 32) | ip4_addr_get_u32(ip_2_ip4(remote_ip)),
        ((u64)local_port << 16) | remote_port,
    };
    u32 f = (u32)isn_siphash(isn_key, m, 2);
    return (u32_t)(time_ns() / 4000) + f;
}

/* LWIP_RAND: a keyed hash of a counter. */
u32_t net_rand(void)
{
    if (!isn_keyed)
        isn_seed();
    u64 m = ++isn_counter;
    return (u32_t)isn_siphash(isn_key, &m, 1);
}
