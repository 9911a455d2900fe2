/*
 * mini.S - a tiny test kernel for the emulator's own tests (not the fixture
 * kernel). Linked at 0xffffffff81000000 with user code at 0x400000; keeps to
 * fixtures/kernel/MACHINE.md. Rebuild with `make` (see Makefile).
 *
 * CPU 0: sets up GDT/TSS/IDT, runs a call chain (main -> level1 -> level2 ->
 * level3 -> spin), int3, a recovered #PF, then drops to user mode, which
 * prints with syscalls and exits. CPU 1: sti; hlt loop.
 * Every entry stub builds a pt_regs and calls handle_event(regs, vector).
 */
	.set KCS, 0x10
	.set KDS, 0x18
	.set UDS, 0x2b
	.set UCS, 0x33
	.set TSS_SEL, 0x40
	.set STACK, 16384
	.set IST_STACK, 8192

	.text
	.globl _start
	.type _start, @function
_start:
	mov	%rdi, %r12			/* cpu index */
	lea	task_stacks(%rip), %rsp
	lea	1(%rdi), %rax
	shl	$14, %rax
	add	%rax, %rsp
	xor	%ebp, %ebp
	mov	%r12, %rdi
	call	setup_cpu
	test	%r12, %r12
	jnz	secondary
	call	main
	mov	$0, %eax
	out	%eax, $0xf4
1:	hlt
	jmp	1b
secondary:
	sti
2:	hlt
	jmp	2b
	.size _start, .-_start

/* setup_cpu(cpu): GDT copy + TSS for this CPU, ltr, lidt, MSRs. */
	.globl setup_cpu
	.type setup_cpu, @function
setup_cpu:
	push	%rbp
	mov	%rsp, %rbp
	push	%rbx
	/* rbx = &gdts[cpu] (128 bytes each); copy template */
	mov	%rdi, %rbx
	shl	$7, %rbx
	lea	gdts(%rip), %rax
	add	%rax, %rbx
	lea	gdt_template(%rip), %rsi
	xor	%ecx, %ecx
3:	mov	(%rsi,%rcx,8), %rax
	mov	%rax, (%rbx,%rcx,8)
	inc	%ecx
	cmp	$8, %ecx
	jb	3b
	/* r8 = &tss[cpu] (0x70 each) */
	imul	$0x70, %rdi, %r8
	lea	tsss(%rip), %rax
	add	%rax, %r8
	/* RSP0 = task stack top */
	lea	1(%rdi), %rax
	shl	$14, %rax
	lea	task_stacks(%rip), %rdx
	add	%rdx, %rax
	mov	%rax, 4(%r8)
	/* IST1..3 = df, nmi, db stack tops */
	lea	1(%rdi), %rax
	shl	$13, %rax
	lea	df_stacks(%rip), %rdx
	add	%rax, %rdx
	mov	%rdx, 0x24(%r8)
	lea	nmi_stacks(%rip), %rdx
	add	%rax, %rdx
	mov	%rdx, 0x2c(%r8)
	lea	db_stacks(%rip), %rdx
	add	%rax, %rdx
	mov	%rdx, 0x34(%r8)
	/* TSS descriptor at index 8 */
	movq	$0x67, %rax			/* limit */
	mov	%r8, %rdx
	and	$0xffffff, %rdx
	shl	$16, %rdx
	or	%rdx, %rax
	movabs	$0x0000890000000000, %rdx	/* present, type 9 */
	or	%rdx, %rax
	mov	%r8, %rdx
	shr	$24, %rdx
	and	$0xff, %rdx
	shl	$56, %rdx
	or	%rdx, %rax
	mov	%rax, 64(%rbx)
	mov	%r8, %rax
	shr	$32, %rax
	mov	%rax, 72(%rbx)
	/* lgdt via a descriptor on the stack */
	sub	$16, %rsp
	movw	$127, (%rsp)
	mov	%rbx, 2(%rsp)
	lgdt	(%rsp)
	add	$16, %rsp
	mov	$TSS_SEL, %ax
	ltr	%ax
	mov	$KDS, %eax
	mov	%eax, %ss
	mov	%eax, %ds
	mov	%eax, %es
	test	%rdi, %rdi
	jnz	4f
	call	build_idt
4:	lidt	idt_desc(%rip)
	/* syscall MSRs */
	mov	$0xc0000081, %ecx
	mov	$0x00230010, %edx
	xor	%eax, %eax
	wrmsr
	mov	$0xc0000082, %ecx
	lea	entry_syscall(%rip), %rax
	mov	%rax, %rdx
	shr	$32, %rdx
	wrmsr
	mov	$0xc0000084, %ecx
	mov	$0x700, %eax			/* TF IF DF */
	xor	%edx, %edx
	wrmsr
	/* GS base: per-cpu area */
	mov	$0xc0000102, %ecx
	imul	$64, %rdi, %rax
	lea	percpu(%rip), %rdx
	add	%rdx, %rax
	mov	%rax, %rdx
	shr	$32, %rdx
	wrmsr
	pop	%rbx
	pop	%rbp
	ret
	.size setup_cpu, .-setup_cpu

/* build_idt: fill idt from idt_init {vector u64, handler u64, attr u64}. */
	.type build_idt, @function
build_idt:
	lea	idt_init(%rip), %rsi
5:	mov	(%rsi), %rcx			/* vector; -1 ends */
	cmp	$-1, %rcx
	je	6f
	mov	8(%rsi), %rax			/* handler */
	mov	16(%rsi), %r9			/* ist | type<<8 */
	shl	$4, %rcx
	lea	idt(%rip), %rdx
	add	%rcx, %rdx
	mov	%ax, (%rdx)
	movw	$KCS, 2(%rdx)
	mov	%r9w, 4(%rdx)
	mov	%rax, %r10
	shr	$16, %r10
	mov	%r10w, 6(%rdx)
	shr	$16, %r10
	mov	%r10d, 8(%rdx)
	movl	$0, 12(%rdx)
	add	$24, %rsi
	jmp	5b
6:	ret
	.size build_idt, .-build_idt

	.globl main
	.type main, @function
main:
	push	%rbp
	mov	%rsp, %rbp
	sti
	mov	boot_args(%rip), %rdi		/* spin count; 0 = 2000 */
	test	%rdi, %rdi
	jnz	14f
	mov	$2000, %edi
14:	call	level1
	mov	%eax, result(%rip)
	int3
	/* a recovered #PF: the handler moves ip to pf_fixup */
	movabs	$0x00000000deadb000, %rax
	.globl pf_site
pf_site:
	mov	(%rax), %rax
	.globl pf_fixup
pf_fixup:
	lea	msg_kernel(%rip), %rdi
	call	puts
	/* IPI an NMI to cpu 1 when there is one */
	mov	$0x102, %eax
	mov	$0x4e0, %dx
	out	%eax, %dx
	call	to_user
	pop	%rbp
	ret
	.size main, .-main

	.globl level1
	.type level1, @function
level1:
	push	%rbp
	mov	%rsp, %rbp
	push	%rbx
	mov	%edi, %ebx
	call	level2
	add	%ebx, %eax
	pop	%rbx
	pop	%rbp
	ret
	.size level1, .-level1

	.globl level2
	.type level2, @function
level2:
	push	%rbp
	mov	%rsp, %rbp
	call	level3
	inc	%eax
	pop	%rbp
	ret
	.size level2, .-level2

	.globl level3
	.type level3, @function
level3:
	push	%rbp
	mov	%rsp, %rbp
	xor	%eax, %eax
	mov	%edi, %ecx
	.globl spin
spin:
	add	%ecx, %eax
	rol	$3, %eax
	dec	%ecx
	jnz	spin
	pop	%rbp
	ret
	.size level3, .-level3

/* puts(s): console output */
	.globl puts
	.type puts, @function
puts:
	movzbl	(%rdi), %eax
	test	%al, %al
	jz	7f
	out	%al, $0xe9
	inc	%rdi
	jmp	puts
7:	ret
	.size puts, .-puts

/* to_user: iretq to user_main on the user stack */
	.type to_user, @function
to_user:
	lea	user_stack_top(%rip), %rax
	pushq	$UDS
	push	%rax
	pushq	$0x202
	pushq	$UCS
	lea	user_main(%rip), %rax
	push	%rax
	iretq
	.size to_user, .-to_user

/* handle_event(regs, vector): C-like handler */
	.globl handle_event
	.type handle_event, @function
handle_event:
	push	%rbp
	mov	%rsp, %rbp
	lea	counts(%rip), %rax
	incq	(%rax,%rsi,8)
	cmp	$14, %esi
	jne	8f
	lea	pf_site(%rip), %rax
	cmp	%rax, 128(%rdi)
	jne	8f
	lea	pf_fixup(%rip), %rax
	mov	%rax, 128(%rdi)
8:	cmp	$2, %esi
	jne	9f
	cmpq	$0, nmi_int3(%rip)
	je	9f
	int3
	.globl after_nmi_int3
after_nmi_int3:
9:	pop	%rbp
	ret
	.size handle_event, .-handle_event

/* handle_syscall(regs): nr in regs->orig_ax (120); 1 = putc(di), 60 = exit(di) */
	.globl handle_syscall
	.type handle_syscall, @function
handle_syscall:
	push	%rbp
	mov	%rsp, %rbp
	mov	120(%rdi), %rax
	cmp	$1, %rax
	jne	10f
	mov	112(%rdi), %rax
	out	%al, $0xe9
	jmp	11f
10:	cmp	$60, %rax
	jne	11f
	mov	112(%rdi), %rax
	out	%eax, $0xf4
11:	pop	%rbp
	ret
	.size handle_syscall, .-handle_syscall

	.macro PUSH_REGS
	push	%rdi
	push	%rsi
	push	%rdx
	push	%rcx
	push	%rax
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	.endm
	.macro POP_REGS
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rax
	pop	%rcx
	pop	%rdx
	pop	%rsi
	pop	%rdi
	.endm

	.macro STUB name, vec, err
	.globl \name
	.type \name, @function
\name:
	.if \err == 0
	pushq	$-1
	.endif
	PUSH_REGS
	mov	%rsp, %rdi
	mov	$\vec, %esi
	call	handle_event
	POP_REGS
	add	$8, %rsp
	iretq
	.size \name, .-\name
	.endm

	STUB asm_exc_debug, 1, 0
	STUB asm_exc_nmi, 2, 0
	STUB asm_exc_int3, 3, 0
	STUB asm_exc_double_fault, 8, 1
	STUB asm_exc_gp, 13, 1
	STUB asm_exc_page_fault, 14, 1
	STUB asm_timer, 0xec, 0

	.globl entry_syscall
	.type entry_syscall, @function
entry_syscall:
	swapgs
	mov	%rsp, %gs:8			/* user rsp scratch */
	mov	%gs:16, %rsp			/* unused: 0; use task stack top below */
	lea	task_stacks+STACK(%rip), %rsp
	pushq	$UDS
	pushq	%gs:8
	push	%r11
	pushq	$UCS
	push	%rcx
	push	%rax				/* orig_ax */
	PUSH_REGS
	mov	%rsp, %rdi
	call	handle_syscall
	POP_REGS
	add	$8, %rsp
	pop	%rcx
	add	$8, %rsp
	pop	%r11
	pop	%rsp
	swapgs
	sysretq
	.size entry_syscall, .-entry_syscall

	.section .rodata
msg_kernel:	.asciz "kernel ok\n"
	.balign 8
idt_desc:	.word 256*16-1
		.quad idt
idt_init:
	.quad 1, asm_exc_debug, 0x8e03
	.quad 2, asm_exc_nmi, 0x8e02
	.quad 3, asm_exc_int3, 0xee00
	.quad 8, asm_exc_double_fault, 0x8e01
	.quad 13, asm_exc_gp, 0x8e00
	.quad 14, asm_exc_page_fault, 0x8e00
	.quad 0xec, asm_timer, 0x8e00
	.quad -1, 0, 0
gdt_template:
	.quad 0
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x10 kernel code */
	.quad 0x00cf93000000ffff	/* 0x18 kernel data */
	.quad 0x00cffb000000ffff	/* 0x20 user32 code */
	.quad 0x00cff3000000ffff	/* 0x28 user data */
	.quad 0x00affb000000ffff	/* 0x30 user code */
	.quad 0

	.data
	.balign 8
	.globl boot_args
boot_args:	.quad 0
	.globl nmi_int3
nmi_int3:	.quad 0
	.globl result
result:		.quad 0
	.globl counts
counts:		.fill 256, 8, 0

	.bss
	.balign 4096
	.globl idt
idt:		.fill 256*16, 1, 0
gdts:		.fill 2*128, 1, 0
tsss:		.fill 2*0x70, 1, 0
percpu:		.fill 2*64, 1, 0
	.balign 4096
	.globl task_stacks
task_stacks:	.fill 2*STACK, 1, 0
	.size task_stacks, 2*STACK
	.globl nmi_stacks
nmi_stacks:	.fill 2*IST_STACK, 1, 0
	.size nmi_stacks, 2*IST_STACK
	.globl db_stacks
db_stacks:	.fill 2*IST_STACK, 1, 0
	.size db_stacks, 2*IST_STACK
	.globl df_stacks
df_stacks:	.fill 2*IST_STACK, 1, 0
	.size df_stacks, 2*IST_STACK

/* ---------------- user mode ---------------- */
	.section .user.text, "ax"
	.globl user_main
	.type user_main, @function
user_main:
	lea	msg_user(%rip), %rdi
	call	uputs
	mov	$60, %eax
	xor	%edi, %edi
	syscall
	ud2
	.size user_main, .-user_main

	.globl uputs
	.type uputs, @function
uputs:
	push	%rbx
	mov	%rdi, %rbx
12:	movzbl	(%rbx), %edi
	test	%edi, %edi
	jz	13f
	mov	$1, %eax
	syscall
	inc	%rbx
	jmp	12b
13:	pop	%rbx
	ret
	.size uputs, .-uputs

	.section .user.data, "aw"
msg_user:	.asciz "user ok\n"
	.section .user.bss, "aw", @nobits
	.balign 16
user_stack:	.fill 8192, 1, 0
	.globl user_stack_top
user_stack_top:
