/* site_entry: how a static probe site's out-of-line block (probe_site.h)
 * reaches site_fire.  The block pushes a5, a4, ..., a0 and the descriptor
 * (so on entry: 8(%rsp) = descriptor, 16(%rsp) = a0 ... 56(%rsp) = a5),
 * calls here with nothing declared clobbered but flags and memory, and
 * drops the 56 bytes itself: the probed function keeps no register, move
 * or spill for its disabled sites.  This saves every caller-saved
 * register, aligns the stack for the C call and calls site_fire(frame)
 * with frame = the address of those seven pushed words (the engine reads
 * the arguments in place: no copy), then restores everything.  The frame
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
    lea 16(%rbp), %rdi          /* frame: descriptor, a0 .. a5 */
    and $-16, %rsp
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
