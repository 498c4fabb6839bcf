// SPDX-License-Identifier: MIT
/*
 * The C half of the long-mode guest: "freestanding" C, with no C library
 * and no operating system. It is compiled with
 *
 *   -ffreestanding -nostdlib   no libc; only the compiler's own headers
 *   -mno-red-zone              nothing may use the 128 bytes below %rsp
 *                              (an interrupt would overwrite them)
 *   -mgeneral-regs-only        no SSE: nobody enabled it (CR4.OSFXSR)
 *   -fno-pic                   the code runs where it was linked, 0x7c00
 *
 * and it talks to the hardware with inline assembly, as a kernel does.
 */
#include <stdint.h>

#include "teach.h"

void teach_main(void);

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static void serial_putc(char c)
{
	while (!(inb(COM1_LSR) & LSR_THRE))
		;
	outb(COM1, c);
}

static void serial_puts(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

static void serial_putu64(uint64_t v)
{
	char buf[21];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	serial_puts(&buf[i]);
}

#define MSR_EFER 0xc0000080
#define EFER_LMA (1u << 10)

void teach_main(void)
{
	/* volatile: the compiler would otherwise do the sum itself */
	volatile uint32_t n = 100000;
	uint64_t sum = 0;

	serial_puts("longmode: hello from C in 64-bit long mode\r\n");
	for (uint32_t i = 1; i <= n; i++)
		sum += i;
	serial_puts("longmode: 1 + 2 + ... + 100000 = ");
	serial_putu64(sum);
	serial_puts("\r\n");
	if (rdmsr(MSR_EFER) & EFER_LMA)
		serial_puts("longmode: EFER.LMA is set\r\n");
	else
		serial_puts("longmode: EFER.LMA is clear\r\n");
}
