/* PVH entry: QEMU (via qboot) jumps to _start32 in 32-bit protected mode,
 * paging off, EBX = physical address of the hvm_start_info.  We zero .bss,
 * identity-map 0-4 GiB (page 0 left unmapped so NULL dereferences fault),
 * enter long mode and call kmain(start_info) on the boot stack. */

#define PVH_MAGIC        0x336ec578
#define CR0_PE           0x00000001
#define CR0_WP           0x00010000
#define CR0_PG           0x80000000
#define CR4_PAE          0x00000020
#define MSR_EFER         0xc0000080
#define EFER_LME         0x00000100
#define EFER_NXE         0x00000800
#define PTE_P            0x001
#define PTE_W            0x002
#define PTE_PWT          0x008
#define PTE_PCD          0x010
#define PTE_PS           0x080
#define BOOT_STACK_SIZE  16384

	.cfi_sections .debug_frame

/* ---- the PVH note: QEMU reads the 32-bit entry point from it ---- */
	.section .note.Xen, "a"
	.balign 4
	.long 4                 /* namesz */
	.long 8                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.quad _start32

/* ---- kept in .data: .bss is zeroed after it is written ---- */
	.section .data
	.balign 8
	.globl boot_tsc_entry
boot_tsc_entry:
	.quad 0

/* ---- 32-bit entry ---- */
	.section .text.boot, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	/* The TSC at the first instruction, for boot cost in instructions
	 * (HELLO tsc_entry; -icount shift=0 makes TSC = instructions). */
	rdtsc
	movl %eax, boot_tsc_entry
	movl %edx, boot_tsc_entry + 4
	/* Not PVH (no magic at [EBX]): carry on with no start_info. */
	cmpl $PVH_MAGIC, (%ebx)
	je 1f
	xorl %ebx, %ebx
1:
	/* Zero .bss (page tables and stacks live there). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb

	movl $boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> PD0..PD3. */
	movl $boot_pdpt, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pml4
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $12, %eax
	addl $boot_pd, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pdpt(,%ecx,8)
	incl %ecx
	cmpl $4, %ecx
	jb 2b

	/* PD entries: 2048 x 2 MiB pages covering 4 GiB; the last GiB (MMIO)
	 * uncached. */
	xorl %ecx, %ecx
3:	movl %ecx, %eax
	shll $21, %eax
	orl $(PTE_P | PTE_W | PTE_PS), %eax
	cmpl $1536, %ecx
	jb 4f
	orl $(PTE_PWT | PTE_PCD), %eax
4:	movl %eax, boot_pd(,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jb 3b

	/* First 2 MiB in 4 KiB pages, page 0 not present. */
	movl $boot_pt0, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pd
	movl $1, %ecx
5:	movl %ecx, %eax
	shll $12, %eax
	orl $(PTE_P | PTE_W), %eax
	movl %eax, boot_pt0(,%ecx,8)
	incl %ecx
	cmpl $512, %ecx
	jb 5b

	/* PAE, page tables, EFER.LME, then paging -> long mode (compat). */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE | CR0_WP), %eax
	movl %eax, %cr0

	lgdt boot_gdt_ptr
	ljmp $0x08, $start64

/* ---- 64-bit ---- */
	.code64
start64:
	.cfi_startproc
	.cfi_undefined rip
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorw %ax, %ax
	movw %ax, %fs
	movw %ax, %gs
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp
	movl %ebx, %edi            /* start_info (zero-extended), 0 if none */
	call kmain
6:	cli
	hlt
	jmp 6b
	.cfi_endproc

/* ---- boot GDT: null, 64-bit code 0x08, data 0x10 (gdt.c replaces it) ---- */
	.section .rodata
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00209a0000000000
	.quad 0x0000920000000000
boot_gdt_end:
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

/* ---- page tables and the boot stack (zeroed above) ---- */
	.section .bss
	.balign 4096
	.globl boot_pml4
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4096 * 4
boot_pt0:	.skip 4096
	.globl boot_stack_bottom, boot_stack_top
boot_stack_bottom:
	.skip BOOT_STACK_SIZE
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
