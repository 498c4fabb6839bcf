// SPDX-License-Identifier: MIT
/*
 * A 16550A UART, as on a PC's COM1. It follows the National Semiconductor
 * PC16550D datasheet: the register summary table, the register descriptions
 * (LCR/DLAB, LSR, FCR, IIR, IER, MCR loopback, MSR, SCR), the interrupt
 * control functions table (sources, priorities, how each is reset) and the
 * reset configuration table. Only what the Linux 8250 driver relies on is
 * modelled: there is no baud clock, so a THR byte leaves at once, THR is
 * always empty, and the line never has errors.
 *
 * Locking: every access decides under s->lock what must happen (a byte to
 * send, an interrupt edge, an RX notification) into a struct serial_fx, and
 * serial_fx_apply() does it after unlocking, so a slow console never stalls
 * the input thread and no callback can deadlock on us.
 */
#include <string.h>

#include "devices/serial8250.h"

enum {
	UART_RBR = 0, UART_THR = 0, UART_DLL = 0,
	UART_IER = 1, UART_DLM = 1,
	UART_IIR = 2, UART_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
	UART_NR_REGS = 8,
};

#define IER_ERBFI	0x01	/* received data available */
#define IER_ETBEI	0x02	/* THR empty */
#define IER_EDSSI	0x08	/* modem status */
#define IER_MASK	0x0f

#define IIR_NO_INT	0x01
#define IIR_MSI		0x00
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_FIFO	0xc0

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_KEEP	0xc9	/* RX trigger, DMA mode, enable; 1, 2 self-clear */

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MCR_MASK	0x1f

#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80
#define MSR_TERI	0x04

enum serial_irq_action { SERIAL_IRQ_KEEP, SERIAL_IRQ_LOWER, SERIAL_IRQ_PULSE };

/* What one access must do once s->lock is dropped. */
struct serial_fx {
	bool tx;
	uint8_t tx_byte;
	enum serial_irq_action irq;
	uint64_t irq_seq;
	size_t rx_room;			/* room before the access */
	void (*notify)(void *ctx);
	void *notify_ctx;
};

static size_t serial_rx_cap(const struct serial8250 *s)
{
	return (s->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

/* The receiver is cut off from the line in loopback. */
static size_t serial_rx_room_locked(const struct serial8250 *s)
{
	if (s->mcr & MCR_LOOP)
		return 0;
	return serial_rx_cap(s) - s->rx_count;
}

static bool serial_rx_push(struct serial8250 *s, uint8_t byte)
{
	if (s->rx_count >= serial_rx_cap(s))
		return false;
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t serial_rx_pop(struct serial8250 *s)
{
	uint8_t byte;

	if (!s->rx_count)
		return 0;
	byte = s->rx_fifo[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

static void serial_rx_clear(struct serial8250 *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/*
 * The modem inputs: in loopback, MCR drives them (RTS->CTS, DTR->DSR,
 * OUT1->RI, OUT2->DCD); otherwise a cable that is always ready, with no
 * ring.
 */
static uint8_t serial_msr_inputs(const struct serial8250 *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	return ((s->mcr & MCR_RTS) ? MSR_CTS : 0) |
	       ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
	       ((s->mcr & MCR_OUT1) ? MSR_RI : 0) |
	       ((s->mcr & MCR_OUT2) ? MSR_DCD : 0);
}

/* Delta bits 3:0 sit under their inputs in 7:4; RI only counts falling. */
static uint8_t serial_msr_deltas(uint8_t old, uint8_t new)
{
	uint8_t changed = (old ^ new) >> 4;

	if (new & MSR_RI)
		changed &= ~MSR_TERI;
	return changed;
}

/* Sources in the datasheet's priority order; line status never fires. */
static uint8_t serial_iir(const struct serial8250 *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_ERBFI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_ETBEI) && s->thre_pending)
		return fifo | IIR_THRI;
	if ((s->ier & IER_EDSSI) && s->msr_delta)
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

/*
 * On a PC, OUT2 gates the UART's interrupt pin onto the ISA bus, and
 * loopback forces OUT2's pin inactive.
 */
static bool serial_irq_wanted(const struct serial8250 *s)
{
	if ((s->mcr & (MCR_OUT2 | MCR_LOOP)) != MCR_OUT2)
		return false;
	return !(serial_iir(s) & IIR_NO_INT);
}

/*
 * IRQ 4 is an edge-triggered ISA interrupt. A guest that leaves its handler
 * with work still pending only comes back on a new edge, so every new event
 * (event is true when an enabled source fired again) pulses the line even if
 * it is already high. With nothing pending the line is lowered, which also
 * makes the next pulse a clean 0->1.
 */
static void serial_update_irq(struct serial8250 *s, struct serial_fx *fx,
			      bool event)
{
	bool want = serial_irq_wanted(s);

	if (want && (!s->irq_high || event))
		fx->irq = SERIAL_IRQ_PULSE;
	else if (!want && s->irq_high)
		fx->irq = SERIAL_IRQ_LOWER;
	else
		return;
	s->irq_high = want;
	fx->irq_seq = ++s->irq_seq;
}

static void serial_lock(struct serial8250 *s, struct serial_fx *fx)
{
	memset(fx, 0, sizeof(*fx));
	pthread_mutex_lock(&s->lock);
	fx->rx_room = serial_rx_room_locked(s);
}

/* Notify when the receiver goes from refusing bytes to having room. */
static void serial_unlock(struct serial8250 *s, struct serial_fx *fx)
{
	if (!fx->rx_room && serial_rx_room_locked(s)) {
		fx->notify = s->rx_notify;
		fx->notify_ctx = s->rx_notify_ctx;
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * Two threads may apply decisions in the opposite order to the one they made
 * them in; a decision older than one already applied is stale and dropped,
 * so the line always ends as the newest state says.
 */
static void serial_apply_irq(struct serial8250 *s, const struct serial_fx *fx)
{
	pthread_mutex_lock(&s->irq_lock);
	if (fx->irq_seq > s->irq_done) {
		s->irq_done = fx->irq_seq;
		if (fx->irq == SERIAL_IRQ_PULSE)
			irq_pulse(&s->irq);
		else
			irq_set(&s->irq, 0);
	}
	pthread_mutex_unlock(&s->irq_lock);
}

/*
 * Bytes from one vCPU stay in order, as its next OUT waits for this one;
 * OUTs racing on two vCPUs have no order the guest could rely on anyway.
 */
static void serial_fx_apply(struct serial8250 *s, const struct serial_fx *fx)
{
	if (fx->tx && s->out.write)
		s->out.write(s->out.ctx, &fx->tx_byte, 1);
	if (fx->irq != SERIAL_IRQ_KEEP)
		serial_apply_irq(s, fx);
	if (fx->notify)
		fx->notify(fx->notify_ctx);
}

/* The byte leaves at once, so THR is empty again: a new THRE event. */
static void serial_write_thr(struct serial8250 *s, struct serial_fx *fx,
			     uint8_t val)
{
	bool event = s->ier & IER_ETBEI;

	if (s->mcr & MCR_LOOP) {
		/* A full FIFO would overrun; the byte is lost silently. */
		if (serial_rx_push(s, val))
			event |= s->ier & IER_ERBFI;
	} else {
		fx->tx = true;
		fx->tx_byte = val;
	}
	s->thre_pending = true;
	serial_update_irq(s, fx, event);
}

/*
 * Enabling ETBEI with THR empty raises THRE: the driver kicks transmission
 * this way, and restores IER after polled console output expecting it.
 */
static void serial_write_ier(struct serial8250 *s, struct serial_fx *fx,
			     uint8_t val)
{
	s->ier = val & IER_MASK;
	if (s->ier & IER_ETBEI)
		s->thre_pending = true;
	serial_update_irq(s, fx, true);
}

/* FCR0 must be set for the other bits to count; toggling it empties FIFOs. */
static void serial_write_fcr(struct serial8250 *s, struct serial_fx *fx,
			     uint8_t val)
{
	if ((val ^ s->fcr) & FCR_ENABLE)
		serial_rx_clear(s);
	if (!(val & FCR_ENABLE)) {
		s->fcr = 0;
	} else {
		if (val & FCR_CLEAR_RX)
			serial_rx_clear(s);
		s->fcr = val & FCR_KEEP;
	}
	serial_update_irq(s, fx, false);
}

static void serial_write_mcr(struct serial8250 *s, struct serial_fx *fx,
			     uint8_t val)
{
	uint8_t old = serial_msr_inputs(s);
	uint8_t delta;

	s->mcr = val & MCR_MASK;
	delta = serial_msr_deltas(old, serial_msr_inputs(s));
	s->msr_delta |= delta;
	serial_update_irq(s, fx, delta && (s->ier & IER_EDSSI));
}

static void serial_write_reg(struct serial8250 *s, struct serial_fx *fx,
			     unsigned reg, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			s->dll = val;
		else
			serial_write_thr(s, fx, val);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = val;
		else
			serial_write_ier(s, fx, val);
		break;
	case UART_FCR:
		serial_write_fcr(s, fx, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		serial_write_mcr(s, fx, val);
		break;
	case UART_SCR:
		s->scr = val;
		break;
	default:
		/* LSR and MSR writes are for factory test only. */
		break;
	}
}

static uint8_t serial_read_rbr(struct serial8250 *s, struct serial_fx *fx)
{
	uint8_t byte = serial_rx_pop(s);

	serial_update_irq(s, fx, false);
	return byte;
}

/* Reading IIR resets a THRE interrupt, but only if it is what IIR shows. */
static uint8_t serial_read_iir(struct serial8250 *s, struct serial_fx *fx)
{
	uint8_t iir = serial_iir(s);

	if ((iir & ~IIR_FIFO) == IIR_THRI) {
		s->thre_pending = false;
		serial_update_irq(s, fx, false);
	}
	return iir;
}

static uint8_t serial_read_msr(struct serial8250 *s, struct serial_fx *fx)
{
	uint8_t msr = serial_msr_inputs(s) | s->msr_delta;

	s->msr_delta = 0;
	serial_update_irq(s, fx, false);
	return msr;
}

static uint8_t serial_read_reg(struct serial8250 *s, struct serial_fx *fx,
			       unsigned reg)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		return dlab ? s->dll : serial_read_rbr(s, fx);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		return serial_read_iir(s, fx);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case UART_MSR:
		return serial_read_msr(s, fx);
	default:
		return s->scr;
	}
}

/*
 * The registers are 8 bits wide. A wider access (or one straddling the end
 * of the region) reaches the register at its first byte; the rest reads 0.
 */
static void serial_bus_read(void *opaque, uint64_t offset, void *data,
			    unsigned size)
{
	struct serial8250 *s = opaque;
	struct serial_fx fx;
	uint8_t val;

	if (!size)
		return;
	memset(data, 0, size);
	if (offset >= UART_NR_REGS) {
		memset(data, 0xff, size);
		return;
	}
	serial_lock(s, &fx);
	val = serial_read_reg(s, &fx, offset);
	serial_unlock(s, &fx);
	serial_fx_apply(s, &fx);
	*(uint8_t *)data = val;
}

static void serial_bus_write(void *opaque, uint64_t offset, const void *data,
			     unsigned size)
{
	struct serial8250 *s = opaque;
	struct serial_fx fx;

	if (!size || offset >= UART_NR_REGS)
		return;
	serial_lock(s, &fx);
	serial_write_reg(s, &fx, offset, *(const uint8_t *)data);
	serial_unlock(s, &fx);
	serial_fx_apply(s, &fx);
}

static const struct bus_ops serial8250_ops = {
	.read = serial_bus_read,
	.write = serial_bus_write,
};

/* Reset values from the datasheet; the divisor is left at 9600 baud. */
void serial8250_init(struct serial8250 *s, struct irq_line irq,
		     struct serial_out out)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->irq_lock, NULL);
	s->dll = 12;
	s->irq = irq;
	s->out = out;
}

void serial8250_destroy(struct serial8250 *s)
{
	pthread_mutex_destroy(&s->irq_lock);
	pthread_mutex_destroy(&s->lock);
}

int serial8250_register(struct serial8250 *s, struct bus *pio, uint16_t base)
{
	return bus_register(pio, base, UART_NR_REGS, &serial8250_ops, s,
			    "serial8250");
}

size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	struct serial_fx fx;
	size_t n = 0;

	serial_lock(s, &fx);
	if (!(s->mcr & MCR_LOOP)) {
		while (n < len && serial_rx_push(s, buf[n]))
			n++;
	}
	serial_update_irq(s, &fx, n && (s->ier & IER_ERBFI));
	serial_unlock(s, &fx);
	serial_fx_apply(s, &fx);
	return n;
}

size_t serial8250_rx_room(struct serial8250 *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = serial_rx_room_locked(s);
	pthread_mutex_unlock(&s->lock);
	return room;
}

void serial8250_set_rx_notify(struct serial8250 *s, void (*fn)(void *ctx),
			      void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->rx_notify = fn;
	s->rx_notify_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}
