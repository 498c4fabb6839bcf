/* SPDX-License-Identifier: MIT */
/*
 * Helpers for 16-bit real-mode code, shared by the guests that start there:
 * print a string or a number on COM1, and power the machine off.
 *
 * Real mode has no memory protection and 64 KiB segments: an address is
 * segment * 16 + offset. The guests keep every segment register at 0, so
 * an offset is the physical address, and they are linked at 0x7c00.
 */
#include "teach.h"

	.code16
	.text

/*
 * puts16: sends the NUL-terminated string at %ds:%si to COM1.
 * Waits for THRE before each byte, as a driver for real hardware must (a
 * 16550 takes about 87 us per byte at 115200 baud). Clobbers %si.
 */
	.globl puts16
puts16:
	push	%ax
	push	%dx
1:	lodsb			/* %al = *%si++ */
	test	%al, %al
	jz	3f
	mov	%al, %ah
	mov	$COM1_LSR, %dx
2:	in	%dx, %al	/* a port read: one VM exit */
	test	$LSR_THRE, %al
	jz	2b
	mov	%ah, %al
	mov	$COM1, %dx
	out	%al, %dx	/* a port write: another VM exit */
	jmp	1b
3:	pop	%dx
	pop	%ax
	ret

/* putdec16: prints %ax as an unsigned decimal number. */
	.globl putdec16
putdec16:
	push	%ax
	push	%bx
	push	%dx
	push	%si
	mov	$numbuf_end, %si	/* digits are found last first */
	movb	$0, (%si)
	mov	$10, %bx
1:	xor	%dx, %dx
	div	%bx		/* %ax = %dx:%ax / 10, %dx = remainder */
	add	$'0', %dl
	dec	%si
	mov	%dl, (%si)
	test	%ax, %ax
	jnz	1b
	call	puts16
	pop	%si
	pop	%dx
	pop	%bx
	pop	%ax
	ret

/* puthex16: prints %ax as four hex digits. */
	.globl puthex16
puthex16:
	push	%ax
	push	%bx
	push	%cx
	push	%si
	mov	%ax, %bx
	mov	$numbuf, %si
	mov	$4, %cx
1:	rol	$4, %bx		/* the top nibble comes round to the bottom */
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	2f
	add	$('a' - '9' - 1), %al
2:	mov	%al, (%si)
	inc	%si
	loop	1b
	movb	$0, (%si)
	mov	$numbuf, %si
	call	puts16
	pop	%si
	pop	%cx
	pop	%bx
	pop	%ax
	ret

/*
 * poweroff16: ACPI soft-off, as the last step of an OS shutdown. It does
 * not return: if the write had no effect (no ACPI PM device), the CPU stops
 * for good with interrupts off.
 */
	.globl poweroff16
poweroff16:
	mov	$PM1_POWEROFF, %ax
	mov	$PM1A_CNT, %dx
	out	%ax, %dx	/* one 16-bit write: SLP_TYP and SLP_EN together */
1:	cli
	hlt
	jmp	1b

	.bss
numbuf:	.skip	6
numbuf_end:
	.skip	1
