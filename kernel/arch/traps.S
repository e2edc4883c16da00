/* Trap entry stubs: one per vector 0-55 (exceptions, PIC IRQs, then the
 * IOAPIC-routed vectors VEC_APIC_BASE..), and 255 (APIC spurious).  Each
 * pushes an error code (0 when the CPU does not) and its vector, then
 * trap_common saves every general register into a struct trap_frame
 * (arch.h) and calls trap_dispatch. */

	.cfi_sections .debug_frame
	.text

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERR(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || \
                    (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || \
                    (v) == 29 || (v) == 30)

#define VECTORS 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23, \
	24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47, \
	48,49,50,51,52,53,54,55

	.macro STUB v
	.balign 16
trap_stub_\v:
	.if HAS_ERR(\v) == 0
	pushq $0
	.endif
	pushq $\v
	jmp trap_common
	.endm

	.irp v, VECTORS
	STUB \v
	.endr
	STUB 255                           /* local APIC spurious vector */
	.globl trap_stub_spurious
	.set trap_stub_spurious, trap_stub_255

/* Save/restore one register, keeping the CFI (for gdb) in step. */
	.macro SAVE reg
	pushq %\reg
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset \reg, 0
	.endm
	.macro RESTORE reg
	popq %\reg
	.cfi_adjust_cfa_offset -8
	.cfi_restore \reg
	.endm

/* Entry: [rsp] = vector, error code, then the CPU's rip cs rflags rsp ss.
 * The CFI describes that frame so debuggers unwind into the interrupted
 * code. */
trap_common:
	.cfi_startproc simple
	.cfi_signal_frame
	.cfi_def_cfa rsp, 56
	.cfi_offset rip, -40
	.cfi_offset rsp, -16
	SAVE rax
	SAVE rbx
	SAVE rcx
	SAVE rdx
	SAVE rsi
	SAVE rdi
	SAVE rbp
	SAVE r8
	SAVE r9
	SAVE r10
	SAVE r11
	SAVE r12
	SAVE r13
	SAVE r14
	SAVE r15
	cld
	movq %rsp, %rdi
	/* Frame link so backtraces through an interrupt reach the thread. */
	movq 120 + 16 + 0(%rsp), %rax      /* interrupted rip */
	pushq %rax
	.cfi_adjust_cfa_offset 8
	pushq %rbp
	.cfi_adjust_cfa_offset 8
	movq %rsp, %rbp
	call trap_dispatch
	addq $16, %rsp
	.cfi_adjust_cfa_offset -16
	RESTORE r15
	RESTORE r14
	RESTORE r13
	RESTORE r12
	RESTORE r11
	RESTORE r10
	RESTORE r9
	RESTORE r8
	RESTORE rbp
	RESTORE rdi
	RESTORE rsi
	RESTORE rdx
	RESTORE rcx
	RESTORE rbx
	RESTORE rax
	addq $16, %rsp                     /* vector, error code */
	.cfi_adjust_cfa_offset -16
	iretq
	.cfi_endproc

/* trap_stubs[v] = address of the stub for vector v (read by idt.c). */
	.section .rodata
	.balign 8
	.globl trap_stubs
trap_stubs:
	.irp v, VECTORS
	.quad trap_stub_\v
	.endr

	.section .note.GNU-stack, "", @progbits
