/* mana_ctx_save / mana_ctx_resume (x86_64 SysV). Layout = struct mana_ctx in mana_image.h:
 * rbx 0, rbp 8, r12 16, r13 24, r14 32, r15 40, rsp 48, rip 56, mxcsr 64, fpucw 68.
 * Pure register code with no TLS and no stack use beyond the return address, because the
 * restore program calls mana_ctx_resume after it has switched FS to the restored thread. */
	.text
	.globl mana_ctx_save
	.type mana_ctx_save,@function
mana_ctx_save:
	movq %rbx, 0(%rdi)
	movq %rbp, 8(%rdi)
	movq %r12, 16(%rdi)
	movq %r13, 24(%rdi)
	movq %r14, 32(%rdi)
	movq %r15, 40(%rdi)
	leaq 8(%rsp), %rax        /* the caller's rsp after our return */
	movq %rax, 48(%rdi)
	movq (%rsp), %rax         /* our return address */
	movq %rax, 56(%rdi)
	stmxcsr 64(%rdi)
	fnstcw 68(%rdi)
	xorl %eax, %eax
	ret
	.size mana_ctx_save, .-mana_ctx_save

	.globl mana_ctx_resume
	.type mana_ctx_resume,@function
mana_ctx_resume:
	movq 0(%rdi), %rbx
	movq 8(%rdi), %rbp
	movq 16(%rdi), %r12
	movq 24(%rdi), %r13
	movq 32(%rdi), %r14
	movq 40(%rdi), %r15
	ldmxcsr 64(%rdi)
	fldcw 68(%rdi)
	movq 56(%rdi), %rdx
	movq 48(%rdi), %rsp
	movl $1, %eax
	jmpq *%rdx
	.size mana_ctx_resume, .-mana_ctx_resume

	.section .note.GNU-stack,"",@progbits
