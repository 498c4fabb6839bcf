/* SPDX-License-Identifier: MIT */
/*
 * realmode: the smallest useful guest. The CPU starts as an 8086 would:
 * 16-bit real mode, no paging, addresses segment * 16 + offset. minivm
 * starts it at 0000:7c00, where a BIOS would start a boot sector, with
 * every other segment register 0 and interrupts off.
 *
 * It prints three lines on COM1 and powers off through ACPI:
 *
 *   realmode: hello from 16-bit real mode
 *   realmode: started at cs=0000 ip=7c00
 *   realmode: powering off through ACPI PM1a_CNT
 *
 * Every byte costs two VM exits (an LSR read and a THR write): the UART
 * is emulated by minivm in userspace. See README.md.
 */
#include "teach.h"

	.code16
	.section .text.start, "ax"
	.globl _start
_start:
	cli
	xor	%ax, %ax	/* segment registers can't be loaded with a constant */
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$LOAD_ADDR, %sp	/* the stack grows down from just below us */
	cld			/* lodsb counts up */

	mov	$hello, %si
	call	puts16

	/* Where are we? call pushes the return address: that is our IP. */
	mov	$at_cs, %si
	call	puts16
	mov	%cs, %ax
	call	puthex16
	mov	$at_ip, %si
	call	puts16
	call	1f
1:	pop	%ax
	sub	$(1b - _start), %ax	/* IP of _start */
	call	puthex16
	mov	$eol, %si
	call	puts16

	mov	$bye, %si
	call	puts16
	jmp	poweroff16

	.section .rodata
hello:	.asciz	"realmode: hello from 16-bit real mode\r\n"
at_cs:	.asciz	"realmode: started at cs="
at_ip:	.asciz	" ip="
eol:	.asciz	"\r\n"
bye:	.asciz	"realmode: powering off through ACPI PM1a_CNT\r\n"
