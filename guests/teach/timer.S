/* SPDX-License-Identifier: MIT */
/*
 * timer: interrupts in real mode. It programs the two 8259 PICs and
 * channel 0 of the 8254 PIT (both modelled inside KVM: KVM_CREATE_IRQCHIP
 * and KVM_CREATE_PIT2, so neither costs a trip to minivm), points interrupt
 * vector 0x20 at a handler, and sleeps with sti; hlt until 20 timer
 * interrupts have come, at 100 Hz: 0.2 s.
 *
 *   timer: PIC and PIT programmed, 100 Hz
 *   timer: tick 5
 *   timer: tick 10
 *   timer: tick 15
 *   timer: tick 20
 *   timer: 20 interrupts taken, done
 *
 * In real mode the interrupt vector table (IVT) is at address 0: vector n
 * is a far pointer (offset, then segment) at 4 * n.
 *
 * The PIC: 8259A datasheet, initialization command words ICW1-ICW4, then
 * OCW1 (the mask). The PIT: 8254 datasheet, control word then the 16-bit
 * divisor of its 1.193182 MHz clock.
 */
#include "teach.h"

#define PIC1_CMD	0x20
#define PIC1_DATA	0x21
#define PIC2_CMD	0xa0
#define PIC2_DATA	0xa1
#define PIC_EOI		0x20	/* OCW2: non-specific end of interrupt */
#define IRQ_BASE	0x20	/* vectors 0x20-0x27 (master), 0x28-0x2f (slave) */
#define PIT_CH0		0x40
#define PIT_CMD		0x43
#define PIT_HZ		1193182
#define TICK_HZ		100
#define TICKS		20
#define REPORT_EVERY	5

	.code16
	.section .text.start, "ax"
	.globl _start
_start:
	start16			/* teach.h: segments, stack, cli, cld */
	movw	$0, ticks	/* .bss: a flat binary brings none */

	/* IVT entry for IRQ 0, which the PIC will deliver as vector 0x20. */
	movw	$irq0, 4 * IRQ_BASE
	movw	$0, 4 * IRQ_BASE + 2

	/* ICW1: edge-triggered, cascade, ICW4 follows. */
	mov	$0x11, %al
	out	%al, $PIC1_CMD
	out	%al, $PIC2_CMD
	mov	$IRQ_BASE, %al		/* ICW2: vector base */
	out	%al, $PIC1_DATA
	mov	$(IRQ_BASE + 8), %al
	out	%al, $PIC2_DATA
	mov	$0x04, %al		/* ICW3: the slave hangs on master pin 2 */
	out	%al, $PIC1_DATA
	mov	$0x02, %al		/* ICW3: the slave's cascade identity */
	out	%al, $PIC2_DATA
	mov	$0x01, %al		/* ICW4: 8086 mode */
	out	%al, $PIC1_DATA
	out	%al, $PIC2_DATA
	mov	$0xfe, %al		/* OCW1: only IRQ 0 unmasked */
	out	%al, $PIC1_DATA
	mov	$0xff, %al
	out	%al, $PIC2_DATA

	/* Channel 0, low then high byte, mode 2 (rate generator), binary. */
	mov	$0x34, %al
	out	%al, $PIT_CMD
	mov	$((PIT_HZ + TICK_HZ / 2) / TICK_HZ), %ax	/* 11932 */
	out	%al, $PIT_CH0
	mov	%ah, %al
	out	%al, $PIT_CH0

	mov	$programmed, %si
	call	puts16

	mov	$REPORT_EVERY, %bx	/* the next tick to report */
	sti
wait:	hlt			/* sleeps until an interrupt has been handled */
	cmp	%bx, ticks
	jb	wait
	mov	$tick_msg, %si
	call	puts16
	mov	%bx, %ax
	call	putdec16
	mov	$eol, %si
	call	puts16
	add	$REPORT_EVERY, %bx
	cmp	$TICKS, %bx
	jbe	wait

	cli
	mov	$0xff, %al	/* mask the timer again */
	out	%al, $PIC1_DATA
	mov	$done, %si
	call	puts16
	jmp	poweroff16

/* Vector 0x20. The CPU pushed FLAGS, CS and IP and cleared IF. */
irq0:
	push	%ax
	incw	%cs:ticks	/* %cs: don't trust %ds in a handler */
	mov	$PIC_EOI, %al	/* without it the PIC sends no further IRQ 0 */
	out	%al, $PIC1_CMD
	pop	%ax
	iret

	.section .rodata
programmed:	.asciz	"timer: PIC and PIT programmed, 100 Hz\r\n"
tick_msg:	.asciz	"timer: tick "
eol:		.asciz	"\r\n"
done:		.asciz	"timer: 20 interrupts taken, done\r\n"

	.bss
ticks:	.skip	2
