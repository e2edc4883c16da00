/* Context switch and thread start.  Only callee-saved registers need
 * saving: sched_switch is an ordinary call from C (thread.c). */

	.cfi_sections .debug_frame
	.text

/* void sched_switch(u64 *save, u64 next)
 * Push rbp rbx r12-r15 on the current stack, store rsp in *save, switch to
 * stack `next` and pop the same registers from it. */
	.globl sched_switch
sched_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

/* First code of every new thread (its initial stack returns here from
 * sched_switch): r12 = function, r13 = argument.  Interrupts on, run it,
 * then exit the thread. */
	.globl sched_thread_start
sched_thread_start:
	.cfi_startproc
	.cfi_undefined rip
	xorl %ebp, %ebp
	sti
	movq %r13, %rdi
	call *%r12
	call thread_exit
	ud2
	.cfi_endproc

	.section .note.GNU-stack, "", @progbits
