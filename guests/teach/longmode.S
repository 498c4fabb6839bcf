/* SPDX-License-Identifier: MIT */
/*
 * longmode: real mode -> 32-bit protected mode -> 64-bit long mode, then a
 * call into C (longmode-main.c). The steps are those of Intel SDM vol. 3A,
 * 10.8.5 "Initializing IA-32e Mode" (AMD APM vol. 2, 14.6):
 *
 *   1. protected mode, as in protected.S;
 *   2. page tables: long mode cannot run without paging. Three 4 KiB
 *      tables, PML4 -> PDPT -> PD, where the PD's 512 entries map 2 MiB
 *      each: the first 1 GiB, identity-mapped (virtual = physical);
 *   3. CR4.PAE (long mode uses PAE's 8-byte entries), CR3 = the PML4;
 *   4. EFER.LME (MSR 0xc0000080, bit 8): "long mode, when paging comes on";
 *   5. CR0.PG: the CPU sets EFER.LMA and is in long mode, but still runs
 *      the 32-bit code segment (compatibility mode);
 *   6. a far jump to a code segment with L=1: 64-bit mode.
 *
 *   longmode: hello from 16-bit real mode
 *   longmode: in 32-bit protected mode, building page tables
 *   longmode: hello from C in 64-bit long mode
 *   longmode: 1 + 2 + ... + 100000 = 5000050000
 *   longmode: EFER.LMA is set
 *
 * The last two lines come from C; the sum needs more than 32 bits.
 *
 * vnet-attack starts the same way, with its own C (vnet-attack.c) and its
 * own name in the first two lines: the build defines GUEST_NAME for it.
 */
#include "teach.h"

#ifndef GUEST_NAME
#define GUEST_NAME "longmode"
#endif

#define CODE32_SEL	0x08
#define DATA_SEL	0x10
#define CODE64_SEL	0x18
#define PAGE_P		0x001	/* present */
#define PAGE_RW		0x002	/* writable */
#define PAGE_PS		0x080	/* in a PD entry: a 2 MiB page, no page table */
#define CR4_PAE		0x20
#define CR0_PE		0x1
#define CR0_PG		0x80000000
#define MSR_EFER	0xc0000080
#define EFER_LME	0x100

	.code16
	.section .text.start, "ax"
	.globl _start
_start:
	start16			/* teach.h: segments, stack, cli, cld */
	mov	$hello16, %si
	call	puts16

	lgdt	gdt_desc
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmp	$CODE32_SEL, $pm32

	.code32
pm32:
	mov	$DATA_SEL, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$LOAD_ADDR, %esp
	mov	$hello32, %esi
	call	puts32

	/* The tables are .bss: zero them (a flat binary brings no .bss). */
	mov	$pml4, %edi
	mov	$(3 * 4096 / 4), %ecx
	xor	%eax, %eax
	rep stosl
	movl	$(pdpt + PAGE_P + PAGE_RW), pml4
	movl	$(pd + PAGE_P + PAGE_RW), pdpt
	mov	$pd, %edi
	mov	$(PAGE_P + PAGE_RW + PAGE_PS), %eax	/* 0 MiB, 2 MiB, 4 MiB, ... */
	mov	$512, %ecx
1:	mov	%eax, (%edi)	/* the high half of each entry stays 0 */
	add	$0x200000, %eax
	add	$8, %edi
	loop	1b

	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr			/* %edx:%eax = EFER */
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$CR0_PG, %eax
	mov	%eax, %cr0	/* paging on: long mode is active now */
	ljmp	$CODE64_SEL, $lm64

	.code64
lm64:
	mov	$DATA_SEL, %ax	/* in 64-bit mode data segments are flat anyway */
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$LOAD_ADDR, %rsp	/* 16-byte aligned, as the SysV ABI wants at a call */
	call	teach_main

	mov	$PM1_POWEROFF, %ax
	mov	$PM1A_CNT, %dx
	out	%ax, %dx
2:	cli
	hlt
	jmp	2b

	.code32
puts32:
	lodsb
	test	%al, %al
	jz	3f
	mov	%al, %ah
	mov	$COM1_LSR, %dx
1:	in	%dx, %al
	test	$LSR_THRE, %al
	jz	1b
	mov	%ah, %al
	mov	$COM1, %dx
	out	%al, %dx
	jmp	puts32
3:	ret

	.section .rodata
	.balign	8
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: data */
	.quad	0x00af9a000000ffff	/* 0x18: 64-bit code: L=1, D=0 */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt

hello16:	.ascii	GUEST_NAME
		.asciz	": hello from 16-bit real mode\r\n"
hello32:	.ascii	GUEST_NAME
		.asciz	": in 32-bit protected mode, building page tables\r\n"

	.bss
	.balign	4096	/* CR3 and table entries hold page-aligned addresses */
pml4:	.skip	4096
pdpt:	.skip	4096
pd:	.skip	4096
