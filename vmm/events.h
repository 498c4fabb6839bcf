/* SPDX-License-Identifier: MIT */
/*
 * Requests that devices make of the machine as a whole: the guest wrote the
 * ACPI sleep register (power off), asked the keyboard controller for a reset,
 * and so on. The VM decides what each means (-no-reboot, for instance).
 */
#ifndef MINIVM_EVENTS_H
#define MINIVM_EVENTS_H

enum vm_event {
	VM_EVENT_NONE = 0,
	VM_EVENT_POWEROFF,
	VM_EVENT_RESET,
	VM_EVENT_ERROR,
};

struct event_sink {
	void (*fire)(void *ctx, enum vm_event ev);
	void *ctx;
};

static inline void event_fire(const struct event_sink *s, enum vm_event ev)
{
	if (s->fire)
		s->fire(s->ctx, ev);
}

#endif
