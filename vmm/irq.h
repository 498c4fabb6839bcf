/* SPDX-License-Identifier: MIT */
/*
 * An interrupt line as a device sees it: a wire it can raise and lower. The
 * device does not know whether the line ends at KVM's in-kernel IOAPIC or at
 * a unit test's recorder.
 */
#ifndef MINIVM_IRQ_H
#define MINIVM_IRQ_H

struct irq_line {
	void (*set)(void *ctx, unsigned gsi, int level);
	void *ctx;
	unsigned gsi;
};

static inline void irq_set(const struct irq_line *l, int level)
{
	if (l->set)
		l->set(l->ctx, l->gsi, level);
}

/* Edge-triggered ISA interrupts need a fresh 0->1 transition per event. */
static inline void irq_pulse(const struct irq_line *l)
{
	irq_set(l, 0);
	irq_set(l, 1);
}

#endif
