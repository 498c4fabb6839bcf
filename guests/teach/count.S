/* SPDX-License-Identifier: MIT */
/*
 * count: a guest whose VM exits are known in advance, to check minivm's
 * exit statistics and tracing against.
 *
 * It runs in 16-bit real mode and does, in this order:
 *
 *   1. exactly 1000 one-byte writes (outb) to port 0x80, which no device
 *      claims, so each is one KVM_EXIT_IO that the bus drops;
 *   2. exactly 38 one-byte writes to COM1's THR (port 0x3f8): the line
 *      "count: 1000 writes to port 0x80 done\r\n" (36 printable bytes,
 *      then CR and LF);
 *   3. exactly 1 two-byte write (outw) of 0x3400 to port 0x604 (PM1a_CNT:
 *      SLP_TYP=5, SLP_EN), which powers the machine off: minivm exits 0.
 *
 * That is 1039 port-I/O exits, all writes, and no port reads and no MMIO
 * at all. Unlike the other guests it does not poll the UART's LSR before
 * each byte: minivm's UART sends each byte at once and never reports a
 * busy transmitter, and polling would add reads whose number is up to the
 * device. Besides the port exits, the vCPU may show a KVM_EXIT_INTR when
 * minivm stops it after the power-off.
 *
 * Loaded as a flat binary (count.bin at 0x7c00) or as an ELF (count.elf);
 * both start at 0000:7c00.
 */
#include "teach.h"

#define WRITES 1000

	.code16
	.section .text.start, "ax"
	.globl _start
_start:
	start16			/* teach.h: segments, stack, cli, cld */

	mov	$WRITES, %cx
	xor	%al, %al
1:	out	%al, $POST_PORT	/* one exit each */
	inc	%al		/* the value is a running count, mod 256 */
	loop	1b		/* --%cx, and again while not 0 */

	mov	$msg, %si
	mov	$COM1, %dx
2:	lodsb
	test	%al, %al
	jz	3f
	out	%al, %dx	/* no LSR polling: see above */
	jmp	2b

3:	mov	$PM1_POWEROFF, %ax
	mov	$PM1A_CNT, %dx
	out	%ax, %dx
4:	cli
	hlt
	jmp	4b

	.section .rodata
msg:	.asciz	"count: 1000 writes to port 0x80 done\r\n"
