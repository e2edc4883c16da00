/* PVH boot information: kmain hands pvh_init the start_info address that
 * boot.S received in EBX; we copy the command line and the memory map out
 * of firmware memory so mm and kernel_cmdline can use them later. */
#include "tunables.h"
#include "arch.h"
#include "lib.h"

#define PVH_MAGIC 0x336ec578
#define PVH_ADDR_LIMIT 0x100000000ull   /* identity map ends at 4 GiB */

struct hvm_start_info {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
    u64 memmap_paddr;                   /* version >= 1 */
    u32 memmap_entries;
    u32 reserved;
};

struct hvm_memmap_entry {
    u64 addr;
    u64 size;
    u32 type;
    u32 reserved;
};

static char pvh_cmd[PVH_CMDLINE_MAX];
static struct pvh_region pvh_map[PVH_MEMMAP_MAX];
static u32 pvh_nmap;
static u64 pvh_rsdp_paddr;

/* True if [p, p+n) is an address we can read during boot. */
static bool pvh_addr_ok(u64 p, u64 n)
{
    return p >= 4096 && p < PVH_ADDR_LIMIT && n <= PVH_ADDR_LIMIT - p;
}

/* Copy the NUL-terminated command line at physical address p. */
static void pvh_copy_cmdline(u64 p)
{
    if (!p || !pvh_addr_ok(p, 1))
        return;
    const char *s = (const char *)p;
    size_t i = 0;
    while (i < PVH_CMDLINE_MAX - 1 && pvh_addr_ok(p + i, 1) && s[i])
        i++;
    memcpy(pvh_cmd, s, i);
    pvh_cmd[i] = 0;
}

/* Copy the E820-style memory map (start_info version >= 1). */
static void pvh_copy_memmap(const struct hvm_start_info *si)
{
    if (si->version < 1 || !si->memmap_paddr || !si->memmap_entries)
        return;
    u32 n = MIN(si->memmap_entries, (u32)PVH_MEMMAP_MAX);
    if (!pvh_addr_ok(si->memmap_paddr, (u64)n * sizeof(struct hvm_memmap_entry)))
        return;
    const struct hvm_memmap_entry *e = (const void *)si->memmap_paddr;
    for (u32 i = 0; i < n; i++) {
        pvh_map[i].addr = e[i].addr;
        pvh_map[i].size = e[i].size;
        pvh_map[i].type = e[i].type;
    }
    pvh_nmap = n;
}

/* Parse the start_info at physical address start_info (0 = none). */
void pvh_init(u32 start_info)
{
    if (!pvh_addr_ok(start_info, sizeof(struct hvm_start_info)))
        return;
    const struct hvm_start_info *si = (const void *)(u64)start_info;
    if (si->magic != PVH_MAGIC)
        return;
    pvh_copy_cmdline(si->cmdline_paddr);
    pvh_copy_memmap(si);
    pvh_rsdp_paddr = si->rsdp_paddr;
}

/* The firmware's memory map (0 entries if it gave none); mm_init reads it. */
u32 pvh_memmap(const struct pvh_region **out)
{
    *out = pvh_map;
    return pvh_nmap;
}

const char *pvh_cmdline(void)
{
    return pvh_cmd;
}

/* The ACPI RSDP address the loader gave (0 = none given); acpi.c. */
u64 pvh_rsdp(void)
{
    return pvh_rsdp_paddr;
}
