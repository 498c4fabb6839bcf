/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_I8042_H
#define MINIVM_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/events.h"
#include "vmm/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12
#define I8042_QUEUE_LEN 16

struct i8042_byte {
	uint8_t data;
	bool aux; /* came from the aux (mouse) side: status AUX_OBF, IRQ 12 */
};

struct i8042 {
	pthread_mutex_t lock;
	uint8_t ram[32];      /* controller RAM; byte 0 is the command byte */
	uint8_t outport;      /* output port: bit 0 reset line, bit 1 A20 */
	bool cmd_last;        /* status bit 3: the last write went to 0x64 */
	uint8_t pending;      /* controller command awaiting a data byte */
	uint8_t kbd_pending;  /* keyboard command awaiting its argument */
	struct i8042_byte queue[I8042_QUEUE_LEN]; /* head = output buffer */
	unsigned head, count;
	uint8_t last;         /* what 0x60 reads when the buffer is empty */
	struct event_sink events; /* VM_EVENT_RESET on command 0xFE */
	struct irq_line kbd_irq;  /* ISA IRQ 1 */
	struct irq_line aux_irq;  /* ISA IRQ 12 */
};

void i8042_init(struct i8042 *k, struct event_sink events,
		struct irq_line kbd_irq, struct irq_line aux_irq);
void i8042_destroy(struct i8042 *k);
int i8042_register(struct i8042 *k, struct bus *pio);

#endif
