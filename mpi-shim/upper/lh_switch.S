/* Entering the lower half's ld.so on a fresh stack, and coming back from it.
 *
 * lh_enter(entry, sp) saves the callee-saved registers on the current (upper) stack, switches
 * to the prepared stack `sp` (argc, argv, envp, auxv as the kernel lays them out) and jumps to
 * ld.so's entry point. The lower ld.so loads lh_proxy and its MPI library, runs their
 * constructors and calls the proxy's main, which calls lh_return(api) on the lower stack with
 * the lower half's thread pointer in FS. lh_return records that thread pointer and the table,
 * puts the upper thread pointer back, returns to the upper stack and makes lh_enter return.
 */
        .text
        .globl  lh_enter
        .type   lh_enter, @function
lh_enter:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, lh_saved_sp(%rip)
        movq    %rsi, %rsp
        xorl    %edx, %edx              /* no exit function for the kernel to register */
        xorl    %ebp, %ebp
        jmpq    *%rdi
        .size   lh_enter, .-lh_enter

        .globl  lh_return
        .type   lh_return, @function
lh_return:
        movq    %rdi, lh_result(%rip)
        /* the lower thread pointer */
        cmpl    $0, fs_fast(%rip)
        je      1f
        rdfsbase %rax
        movq    %rax, shim_lower_fs(%rip)
        movq    lh_saved_upper_fs(%rip), %rax
        wrfsbase %rax
        jmp     2f
1:      movl    $158, %eax              /* arch_prctl(ARCH_GET_FS, &shim_lower_fs) */
        movl    $0x1003, %edi
        leaq    shim_lower_fs(%rip), %rsi
        syscall
        movl    $158, %eax              /* arch_prctl(ARCH_SET_FS, upper) */
        movl    $0x1002, %edi
        movq    lh_saved_upper_fs(%rip), %rsi
        syscall
2:      movq    lh_saved_sp(%rip), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   lh_return, .-lh_return

        .section .note.GNU-stack,"",@progbits
