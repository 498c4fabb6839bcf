// SPDX-License-Identifier: MIT
/*
 * Intel 8042 keyboard controller, at 0x60 (data) and 0x64 (status/command),
 * with an AT keyboard behind it and an empty aux (PS/2 mouse) port. Follows
 * the IBM PC/AT Technical Reference's keyboard controller and keyboard
 * chapters, and the command set Linux's drivers/input/serio/i8042.c uses.
 *
 * Commands complete the moment they are written, so IBF never reads 1 and
 * replies wait in a small queue whose head is the output buffer. Linux needs
 * this much to probe the controller in microseconds, and to reboot through
 * command 0xFE without spinning on a busy controller.
 */
#include <errno.h>
#include <string.h>

#include "devices/i8042.h"

/* Status register */
#define STR_OBF 0x01
#define STR_SYS 0x04
#define STR_CMDDAT 0x08  /* last write was a command */
#define STR_UNLOCKED 0x10 /* keylock switch off */
#define STR_AUXDATA 0x20

/* Command byte (controller RAM byte 0) */
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20

/* Controller commands */
#define CMD_READ_RAM 0x20  /* 0x20-0x3f */
#define CMD_WRITE_RAM 0x60 /* 0x60-0x7f */
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KBD_TEST 0xab
#define CMD_KBD_DISABLE 0xad
#define CMD_KBD_ENABLE 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_PULSE 0xf0 /* 0xf0-0xff: pulse output port bits 0-3 low */

#define OUTPORT_RESET 0x01 /* active low */
#define OUTPORT_A20 0x02

/* Keyboard commands and replies */
#define KBD_SET_LEDS 0xed
#define KBD_ECHO 0xee
#define KBD_SCANSET 0xf0
#define KBD_GET_ID 0xf2
#define KBD_SET_REP 0xf3
#define KBD_RESET 0xff
#define KBD_ACK 0xfa
#define KBD_RESEND 0xfe
#define KBD_BAT_OK 0xaa

static uint8_t i8042_ctr(const struct i8042 *k)
{
	return k->ram[0];
}

/* ISA interrupts are edges: one per byte that reaches the output buffer. */
static void i8042_raise(struct i8042 *k)
{
	const struct i8042_byte *b;

	if (!k->count)
		return;
	b = &k->queue[k->head];
	if (b->aux && (i8042_ctr(k) & CTR_AUXINT))
		irq_pulse(&k->aux_irq);
	else if (!b->aux && (i8042_ctr(k) & CTR_KBDINT))
		irq_pulse(&k->kbd_irq);
}

/* A full queue drops the byte, like a device overrunning the controller. */
static void i8042_push(struct i8042 *k, uint8_t data, bool aux)
{
	unsigned tail = (k->head + k->count) % I8042_QUEUE_LEN;

	if (k->count == I8042_QUEUE_LEN)
		return;
	k->queue[tail] = (struct i8042_byte){ .data = data, .aux = aux };
	if (k->count++ == 0)
		i8042_raise(k);
}

static uint8_t i8042_pop(struct i8042 *k)
{
	if (!k->count)
		return k->last; /* the output buffer keeps its stale byte */
	k->last = k->queue[k->head].data;
	k->head = (k->head + 1) % I8042_QUEUE_LEN;
	k->count--;
	i8042_raise(k);
	return k->last;
}

static uint8_t i8042_status(const struct i8042 *k)
{
	uint8_t s = STR_UNLOCKED;

	if (k->count)
		s |= STR_OBF | (k->queue[k->head].aux ? STR_AUXDATA : 0);
	if (i8042_ctr(k) & CTR_SYS)
		s |= STR_SYS;
	if (k->cmd_last)
		s |= STR_CMDDAT;
	return s;
}

/* Enabling an interrupt with a byte already waiting must still deliver it. */
static void i8042_set_ctr(struct i8042 *k, uint8_t ctr)
{
	uint8_t enabled = ctr & ~i8042_ctr(k) & (CTR_KBDINT | CTR_AUXINT);

	k->ram[0] = ctr;
	if (enabled)
		i8042_raise(k);
}

/* Replies of an AT keyboard that always succeeds; scan set 2 throughout. */
static void i8042_kbd_arg(struct i8042 *k, uint8_t cmd, uint8_t arg)
{
	if (cmd != KBD_SCANSET) {
		i8042_push(k, KBD_ACK, false);
	} else if (arg == 0) {
		i8042_push(k, KBD_ACK, false);
		i8042_push(k, 2, false);
	} else {
		i8042_push(k, arg <= 3 ? KBD_ACK : KBD_RESEND, false);
	}
}

static void i8042_kbd_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->kbd_pending;

	k->kbd_pending = 0;
	if (cmd) {
		i8042_kbd_arg(k, cmd, v);
		return;
	}
	switch (v) {
	case KBD_SET_LEDS:
	case KBD_SCANSET:
	case KBD_SET_REP:
		k->kbd_pending = v;
		i8042_push(k, KBD_ACK, false);
		break;
	case KBD_ECHO:
		i8042_push(k, KBD_ECHO, false);
		break;
	case KBD_GET_ID:
		i8042_push(k, KBD_ACK, false);
		i8042_push(k, 0xab, false);
		i8042_push(k, 0x83, false);
		break;
	case KBD_RESET:
		i8042_push(k, KBD_ACK, false);
		i8042_push(k, KBD_BAT_OK, false);
		break;
	default:
		/* 0xf4-0xfe: enable, disable, defaults, set-3 modes, resend */
		i8042_push(k, v >= 0xf4 ? KBD_ACK : KBD_RESEND, false);
		break;
	}
}

/*
 * Reading the command byte, tests and reset. Anything unlisted (A20 gate
 * commands, input port, test inputs) does nothing: A20 is always on here.
 */
static enum vm_event i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + 0x20) {
		i8042_push(k, k->ram[cmd & 0x1f], false);
		return VM_EVENT_NONE;
	}
	if (cmd >= CMD_PULSE)
		return cmd & OUTPORT_RESET ? VM_EVENT_NONE : VM_EVENT_RESET;
	switch (cmd) {
	case CMD_AUX_DISABLE:
		i8042_set_ctr(k, i8042_ctr(k) | CTR_AUXDIS);
		break;
	case CMD_AUX_ENABLE:
		i8042_set_ctr(k, i8042_ctr(k) & ~CTR_AUXDIS);
		break;
	case CMD_KBD_DISABLE:
		i8042_set_ctr(k, i8042_ctr(k) | CTR_KBDDIS);
		break;
	case CMD_KBD_ENABLE:
		i8042_set_ctr(k, i8042_ctr(k) & ~CTR_KBDDIS);
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		i8042_push(k, 0x00, false); /* no clock or data line stuck */
		break;
	case CMD_SELF_TEST:
		i8042_push(k, 0x55, false);
		break;
	case CMD_READ_OUTPORT:
		i8042_push(k, k->outport, false);
		break;
	default:
		if ((cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) ||
		    (cmd >= CMD_WRITE_OUTPORT && cmd <= CMD_WRITE_AUX))
			k->pending = cmd; /* its operand follows on 0x60 */
		break;
	}
	return VM_EVENT_NONE;
}

static enum vm_event i8042_data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	if (cmd == CMD_WRITE_RAM) {
		i8042_set_ctr(k, v);
	} else if (cmd > CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + 0x20) {
		k->ram[cmd & 0x1f] = v;
	} else if (cmd == CMD_WRITE_OUTPORT) {
		k->outport = v;
		return v & OUTPORT_RESET ? VM_EVENT_NONE : VM_EVENT_RESET;
	} else if (cmd == CMD_WRITE_KBD_OBUF || cmd == CMD_WRITE_AUX_OBUF) {
		i8042_push(k, v, cmd == CMD_WRITE_AUX_OBUF);
	} else if (cmd == CMD_WRITE_AUX) {
		/* Nothing is plugged in: Linux takes the NAK as "no mouse". */
		i8042_push(k, KBD_RESEND, true);
	} else {
		i8042_kbd_write(k, v);
	}
	return VM_EVENT_NONE;
}

/* Only the first byte of a wide access reaches the (1-byte) register. */
/*
 * Both ports read one byte: the output buffer (popping it) or the status
 * register. Wider or offset reads see open bus.
 */
static void i8042_port_read(struct i8042 *k, bool status_port, uint64_t offset, void *data,
			    unsigned size)
{
	memset(data, 0xff, size);
	if (offset != 0 || size == 0)
		return;
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = status_port ? i8042_status(k) : i8042_pop(k);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_data_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	i8042_port_read(opaque, false, offset, data, size);
}

static void i8042_status_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	i8042_port_read(opaque, true, offset, data, size);
}

/* Events fire unlocked: the VM's handler may well stop this vCPU. */
static void i8042_port_write(struct i8042 *k, bool cmd_port, uint64_t offset,
			     const void *data, unsigned size)
{
	uint8_t v = *(const uint8_t *)data;
	enum vm_event ev;

	if (offset != 0 || size == 0)
		return;
	pthread_mutex_lock(&k->lock);
	k->cmd_last = cmd_port;
	ev = cmd_port ? i8042_command(k, v) : i8042_data(k, v);
	pthread_mutex_unlock(&k->lock);
	if (ev != VM_EVENT_NONE)
		event_fire(&k->events, ev);
}

static void i8042_data_write(void *opaque, uint64_t offset, const void *data,
			     unsigned size)
{
	i8042_port_write(opaque, false, offset, data, size);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const void *data,
			    unsigned size)
{
	i8042_port_write(opaque, true, offset, data, size);
}

static const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_ops i8042_cmd_ops = {
	.read = i8042_status_read,
	.write = i8042_cmd_write,
};

void i8042_init(struct i8042 *k, struct event_sink events,
		struct irq_line kbd_irq, struct irq_line aux_irq)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->events = events;
	k->kbd_irq = kbd_irq;
	k->aux_irq = aux_irq;
	/*
	 * As a BIOS leaves it: both interrupts on, self-test passed, and no
	 * scancode translation, so a keyboard model can speak set 2 directly.
	 */
	k->ram[0] = CTR_KBDINT | CTR_AUXINT | CTR_SYS;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

int i8042_register(struct i8042 *k, struct bus *pio)
{
	int ret;

	ret = bus_register(pio, I8042_DATA_PORT, 1, &i8042_data_ops, k,
			   "i8042-data");
	if (ret)
		return ret;
	ret = bus_register(pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, k,
			   "i8042-cmd");
	if (ret)
		bus_unregister(pio, I8042_DATA_PORT);
	return ret;
}
