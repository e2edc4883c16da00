/* fbt trampolines (kernel/probe/fbt.c).
 *
 * fbt_entry_tramp: an enabled fbt site is `call fbt_entry_tramp` at a
 * function's first byte, so on entry 0(%rsp) = the address after the site
 * and 8(%rsp) = the function's return address (its caller's).  Build two
 * frames as if the function and this had each pushed %rbp (so a
 * frame-pointer walk from the clause sees function, caller, ... with no
 * gap), save every caller-saved register, and call
 * fbt_entry(args = rdi..r9 in order, ret = &that return pair).  The
 * probed function then runs on as if the nop had been there.
 *
 * fbt_return_tramp: a function whose return address fbt_entry replaced
 * returns here, with rax:rdx its value; its return address slot is just
 * below %rsp.  Push a word there (fbt_return writes the original return
 * address into it), keep rax and rdx, call fbt_return(slot, rax), return
 * to the original.  Every other caller-saved register is dead at a
 * return. */
    .text
    .globl fbt_entry_tramp
    .type fbt_entry_tramp, @function
fbt_entry_tramp:
    pushq 8(%rsp)               /* the caller's return address, again */
    push %rbp                   /* the probed function's frame */
    mov %rsp, %rbp
    pushq 16(%rbp)              /* the address after the site, again */
    push %rbp                   /* this frame */
    mov %rsp, %rbp              /* 32(%rbp) = after the site, 40(%rbp) = return slot */
    push %r9
    push %r8
    push %rcx
    push %rdx
    push %rsi
    push %rdi                   /* -48(%rbp): args[0..5] */
    push %rax
    push %r10
    push %r11
    lea -48(%rbp), %rdi
    lea 32(%rbp), %rsi
    and $-16, %rsp
    call fbt_entry
    lea -72(%rbp), %rsp
    pop %r11
    pop %r10
    pop %rax
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %r8
    pop %r9
    pop %rbp
    lea 8(%rsp), %rsp           /* the copy of the address after the site */
    pop %rbp
    lea 8(%rsp), %rsp           /* the copy of the return address */
    ret
    .size fbt_entry_tramp, . - fbt_entry_tramp

    .globl fbt_return_tramp
    .type fbt_return_tramp, @function
fbt_return_tramp:
    pushq $0                    /* into the old return slot: the original goes here */
    push %rbp
    mov %rsp, %rbp
    push %rax
    push %rdx
    lea 8(%rbp), %rdi
    mov %rax, %rsi
    and $-16, %rsp
    call fbt_return
    mov -8(%rbp), %rax
    mov -16(%rbp), %rdx
    mov %rbp, %rsp
    pop %rbp
    ret
    .size fbt_return_tramp, . - fbt_return_tramp

    .section .note.GNU-stack, "", @progbits
