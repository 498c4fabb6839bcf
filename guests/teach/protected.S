/* SPDX-License-Identifier: MIT */
/*
 * protected: from 16-bit real mode to 32-bit protected mode, the way every
 * PC boot loader and OS has done it since the 80386 (Intel SDM vol. 3A,
 * 9.9.1 "Switching to Protected Mode"):
 *
 *   1. describe flat 4 GiB code and data segments in a GDT, load it (lgdt);
 *   2. set CR0.PE;
 *   3. far-jump, which loads CS from the GDT: from here the CPU decodes
 *      32-bit instructions;
 *   4. load the data segment registers with the data selector.
 *
 * To show that the 64 KiB real-mode limit is gone, the 32-bit code writes
 * and reads back a word at 2 MiB (so the guest needs -m 3 or more).
 *
 *   protected: hello from 16-bit real mode, switching to protected mode
 *   protected: hello from 32-bit protected mode
 *   protected: wrote and read back 0x600dc0de at 0x00200000
 */
#include "teach.h"

#define CODE_SEL	0x08	/* GDT entry 1 */
#define DATA_SEL	0x10	/* GDT entry 2 */
#define PROBE_ADDR	0x200000
#define PROBE_VALUE	0x600dc0de

	.code16
	.section .text.start, "ax"
	.globl _start
_start:
	start16			/* teach.h; its cli: protected mode has no IDT here */
	mov	$hello16, %si
	call	puts16

	lgdt	gdt_desc
	mov	%cr0, %eax
	or	$1, %eax	/* CR0.PE */
	mov	%eax, %cr0
	ljmp	$CODE_SEL, $pm32	/* still 16-bit code until this lands */

	.code32
pm32:
	mov	$DATA_SEL, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$LOAD_ADDR, %esp

	mov	$hello32, %esi
	call	puts32
	movl	$PROBE_VALUE, PROBE_ADDR
	cmpl	$PROBE_VALUE, PROBE_ADDR
	mov	$probe_ok, %esi
	je	1f
	mov	$probe_bad, %esi
1:	call	puts32

	mov	$PM1_POWEROFF, %ax
	mov	$PM1A_CNT, %dx
	out	%ax, %dx
2:	cli
	hlt
	jmp	2b

/* puts32: the 32-bit twin of puts16, string at %esi. */
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
/*
 * A segment descriptor packs base, limit and flags in 8 bytes (SDM 3.4.5).
 * Both here: base 0, limit 0xfffff in 4 KiB units (4 GiB), 32-bit (D=1).
 */
gdt:
	.quad	0			/* the null descriptor: selector 0 */
	.quad	0x00cf9a000000ffff	/* 0x08: code, execute/read, ring 0 */
	.quad	0x00cf92000000ffff	/* 0x10: data, read/write, ring 0 */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1	/* limit: size - 1 */
	.long	gdt			/* linear base address */

hello16:	.asciz	"protected: hello from 16-bit real mode, switching to protected mode\r\n"
hello32:	.asciz	"protected: hello from 32-bit protected mode\r\n"
probe_ok:	.asciz	"protected: wrote and read back 0x600dc0de at 0x00200000\r\n"
probe_bad:	.asciz	"protected: memory at 0x00200000 did not hold its value\r\n"
