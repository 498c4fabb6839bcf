/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_SERIAL8250_H
#define MINIVM_SERIAL8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/irq.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_FIFO_SIZE 16

/* Where transmitted bytes go: the console, a file, or nowhere. */
struct serial_out {
	void (*write)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
};

/*
 * Callbacks (out.write, irq.set, rx_notify) are always made without s->lock
 * held, so they may call serial8250_receive()/serial8250_rx_room(). They run
 * on whichever thread touched the device: a vCPU thread (inside bus_read/
 * bus_write, so under the PIO bus read lock: do not (un)register on that
 * bus from them) or the thread calling serial8250_receive().
 */
struct serial8250 {
	pthread_mutex_t lock;

	/* Registers as the guest programmed them. */
	uint8_t ier;		/* bits 3:0 only */
	uint8_t fcr;		/* FIFO enable, DMA mode, RX trigger level */
	uint8_t lcr;
	uint8_t mcr;		/* bits 4:0 only */
	uint8_t scr;
	uint8_t dll, dlm;	/* divisor latch, reachable with LCR.DLAB */
	uint8_t msr_delta;	/* MSR bits 3:0, cleared by reading MSR */
	bool thre_pending;	/* THRE interrupt latched, see serial_iir() */

	/* Receive FIFO; holds a single byte while FIFOs are disabled. */
	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
	uint8_t rx_head, rx_count;

	/* Interrupt output as last decided under lock, and its ordering. */
	bool irq_high;
	uint64_t irq_seq;		/* under lock: last decision made */
	pthread_mutex_t irq_lock;	/* leaf lock, orders irq.set calls */
	uint64_t irq_done;		/* under irq_lock: last decision applied */

	struct irq_line irq;
	struct serial_out out;
	void (*rx_notify)(void *ctx); /* called, unlocked, when RX room frees up */
	void *rx_notify_ctx;
};

void serial8250_init(struct serial8250 *s, struct irq_line irq, struct serial_out out);
void serial8250_destroy(struct serial8250 *s);
/* Claims the 8 ports at base. Returns 0 or -errno. */
int serial8250_register(struct serial8250 *s, struct bus *pio, uint16_t base);
/*
 * Queues received bytes; returns how many fit (the rest must be retried).
 * Returns 0 while the guest has the UART in loopback, as the receiver is
 * then cut off from the line.
 */
size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t len);
size_t serial8250_rx_room(struct serial8250 *s);
/*
 * fn runs whenever the receiver gets room again after refusing bytes: the
 * guest read from a full FIFO, or the FIFO was cleared, or loopback ended.
 * A caller holding bytes that did not fit will always see it once.
 */
void serial8250_set_rx_notify(struct serial8250 *s, void (*fn)(void *ctx), void *ctx);

#endif
