/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_I8042_H
#define MINIVM_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/events.h"
#include "vmm/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

struct i8042 {
	pthread_mutex_t lock;
	/* TODO(helper): status, command byte, output buffer, pending command. */
	struct event_sink events; /* VM_EVENT_RESET on command 0xFE */
	struct irq_line kbd_irq;  /* ISA IRQ 1 */
	struct irq_line aux_irq;  /* ISA IRQ 12 */
};

void i8042_init(struct i8042 *k, struct event_sink events,
		struct irq_line kbd_irq, struct irq_line aux_irq);
void i8042_destroy(struct i8042 *k);
int i8042_register(struct i8042 *k, struct bus *pio);

#endif
