/* ACPI, only as far as "is there any": the RSDP, from the PVH start_info
 * or found where firmware puts it (16-byte aligned in 0xe0000-0xfffff).
 * microvm wires its virtio-mmio slots differently with and without ACPI
 * (virtio_irq.c asks).  The tables themselves are not parsed. */
#include "arch.h"
#include "lib.h"

#define ACPI_SCAN_START 0xe0000ull
#define ACPI_SCAN_END 0x100000ull
#define ACPI_RSDP_LEN 20                /* the ACPI 1.0 part the checksum covers */

/* Is there a valid RSDP ("RSD PTR ", checksum 0) at physical address p? */
static bool acpi_rsdp_at(u64 p)
{
    const u8 *b = (const u8 *)p;
    if (memcmp(b, "RSD PTR ", 8) != 0)
        return false;
    u8 sum = 0;
    for (u32 i = 0; i < ACPI_RSDP_LEN; i++)
        sum += b[i];
    return sum == 0;
}

/* The RSDP's physical address, 0 without ACPI.  The PVH loader's
 * rsdp_paddr first, else the BIOS-area scan.  Called at boot by drivers
 * (interrupts on or off). */
u64 acpi_rsdp(void)
{
    u64 p = pvh_rsdp();
    if (p && p < ACPI_SCAN_END && acpi_rsdp_at(p))
        return p;
    for (p = ACPI_SCAN_START; p < ACPI_SCAN_END; p += 16)
        if (acpi_rsdp_at(p))
            return p;
    return 0;
}
