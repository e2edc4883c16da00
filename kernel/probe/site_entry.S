/* site_entry: how a static probe site's out-of-line block (probe_site.h)
 * reaches site_fire.  The block loads rdi = descriptor, rsi, rdx, rcx, r8,
 * r9, rax = arguments 0..5 and calls here with nothing declared clobbered
 * (but flags and memory), so the probed function keeps no register or
 * spill for its disabled sites.  This saves every caller-saved register,
 * aligns the stack for the C call, passes argument 5 on the stack as the
 * SysV ABI wants, calls site_fire and restores everything.  The frame
 * (push rbp) keeps frame-pointer backtraces through it intact. */
    .text
    .globl site_entry
    .type site_entry, @function
site_entry:
    push %rbp
    mov %rsp, %rbp
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    and $-16, %rsp
    sub $8, %rsp
    push %rax                   /* a5: site_fire's seventh argument */
    call site_fire
    lea -72(%rbp), %rsp         /* back to the nine saved registers */
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    pop %rbp
    ret
    .size site_entry, . - site_entry

    .section .note.GNU-stack, "", @progbits
