/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), identical to
 * zlib.crc32: the frame checksums of the probe channel.  Pure, with a
 * 16-entry (nibble) table, so it builds unchanged for the host (tests)
 * and the kernel and stays small. */
#include "lib.h"

/* crc32_nibble[i] = the CRC register after shifting 4 bits of value i. */
static const u32 crc32_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
    0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
    0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

/* Continue a CRC: crc32_update(0, p, n) starts a fresh one; feeding the
 * result back with more bytes equals one call over the concatenation. */
u32 crc32_update(u32 crc, const void *p, size_t n)
{
    const u8 *b = p;
    crc = ~crc;
    while (n--) {
        crc ^= *b++;
        crc = (crc >> 4) ^ crc32_nibble[crc & 15];
        crc = (crc >> 4) ^ crc32_nibble[crc & 15];
    }
    return ~crc;
}
