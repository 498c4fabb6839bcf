/* SPDX-License-Identifier: MIT */
/*
 * What every teaching guest knows about the machine minivm gives it: the
 * PC's I/O ports. Included from both assembly (.S, run through the C
 * preprocessor) and the freestanding C of the long-mode guest, so it holds
 * #defines, and for assembly one macro.
 *
 * There is no BIOS: no int 0x10, no int 0x13. A guest talks to the devices
 * directly, as firmware does.
 */
#ifndef TEACH_H
#define TEACH_H

/* The first 16550A UART (COM1); minivm's is devices/serial8250.c. */
#define COM1		0x3f8	/* THR: write a byte to send it */
#define COM1_LSR	0x3fd	/* line status register */
#define LSR_THRE	0x20	/* transmit holding register empty */

/*
 * ACPI PM1a control block (devices/acpi_pm.h). Writing SLP_TYP = 5 (the
 * sleep type the DSDT's \_S5 names: soft off) together with SLP_EN powers
 * the machine off, which is what Linux's poweroff does in the end. minivm
 * then exits with status 0.
 */
#define PM1A_CNT	0x604
#define PM1_POWEROFF	((5 << 10) | (1 << 13))	/* 0x3400 */

/* Port 0x80: the POST-code port. Nothing in minivm claims it. */
#define POST_PORT	0x80

/* Where minivm starts a flat binary, like a BIOS starts a boot sector. */
#define LOAD_ADDR	0x7c00

#ifdef __ASSEMBLER__
/*
 * The first instructions of every guest, in 16-bit real mode at reset:
 * interrupts off until there is somewhere for them to go, the data and
 * stack segments at 0 (a segment register cannot be loaded with a constant,
 * so through %ax), the stack growing down from just below the guest, and
 * string instructions (lodsb) counting up. realmode.S spells it out.
 */
	.macro start16
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$LOAD_ADDR, %sp
	cld
	.endm
#endif

#endif
