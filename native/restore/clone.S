/* mana_clone_thread(flags, stack, ptid, ctid, tls, rt): raw clone whose child sets its signal
 * mask from rt->sigmask (offset 0) and resumes rt->ctx (offset 8). The child touches no
 * stack and no TLS: it runs on the restored thread's FS and jumps straight into its context. */
	.text
	.globl mana_clone_thread
	.type mana_clone_thread,@function
mana_clone_thread:
	movq %rcx, %r10
	movl $56, %eax            /* SYS_clone: flags, newsp, parent_tid, child_tid, tls */
	syscall
	testq %rax, %rax
	jnz 1f
	movl $14, %eax            /* SYS_rt_sigprocmask(SIG_SETMASK, &rt->sigmask, NULL, 8) */
	movl $2, %edi
	movq %r9, %rsi
	xorl %edx, %edx
	movl $8, %r10d
	syscall
	leaq 8(%r9), %rdi
	jmp mana_ctx_resume
1:	ret
	.size mana_clone_thread, .-mana_clone_thread
	.section .note.GNU-stack,"",@progbits
