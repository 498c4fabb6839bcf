/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_SERIAL8250_H
#define MINIVM_SERIAL8250_H

#include <pthread.h>
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

struct serial8250 {
	pthread_mutex_t lock;
	/* TODO(helper): register state, RX FIFO, interrupt state. */
	struct irq_line irq;
	struct serial_out out;
	void (*rx_notify)(void *ctx); /* called, unlocked, when RX room frees up */
	void *rx_notify_ctx;
};

void serial8250_init(struct serial8250 *s, struct irq_line irq, struct serial_out out);
void serial8250_destroy(struct serial8250 *s);
/* Claims the 8 ports at base. Returns 0 or -errno. */
int serial8250_register(struct serial8250 *s, struct bus *pio, uint16_t base);
/* Queues received bytes; returns how many fit (the rest must be retried). */
size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t len);
size_t serial8250_rx_room(struct serial8250 *s);
void serial8250_set_rx_notify(struct serial8250 *s, void (*fn)(void *ctx), void *ctx);

#endif
