/* SPDX-License-Identifier: MIT */
/*
 * Pausing a running VM (the monitor's stop and cont). Every vCPU thread
 * passes a pause point before each KVM_RUN; to pause, the monitor raises a
 * flag, kicks every vCPU out of KVM_RUN and waits until all of them are
 * parked on a condition variable. Nothing in KVM is torn down: the in-kernel
 * LAPICs, IOAPIC and PIT keep their state and pending interrupts, and
 * irqfds keep queueing interrupts that the vCPUs take when they run again.
 *
 * The guest's view of time is kept with KVM_GET_CLOCK at stop and
 * KVM_SET_CLOCK at cont, as QEMU does: kvm-clock then resumes where it
 * stopped instead of jumping forward by the length of the pause.
 */
#ifndef MINIVM_PAUSE_H
#define MINIVM_PAUSE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vm;
struct vcpu;

struct vm_pause {
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* parked vCPUs wait here for cont */
	pthread_cond_t changed; /* the pauser waits here for vCPUs to park */
	bool paused;            /* read locklessly by the vCPUs' fast path */
	unsigned running;       /* vCPU threads inside their loop */
	unsigned parked;        /* ... of which waiting at the pause point */
	bool released;          /* the VM is stopping: no more pauses */
	int stuck;              /* the vCPU that made the last pause fail, or -1 */
	unsigned limit_ms;      /* how long a pause waits for a vCPU to park */
	bool clock_saved;
	struct kvm_clock_data clock;
};

void vm_pause_init(struct vm_pause *p);
void vm_pause_destroy(struct vm_pause *p);

/*
 * Stops every vCPU and returns once none is in KVM_RUN. With save_clock,
 * the guest's clock is frozen as well (stop); without, the pause is a short
 * one to read vCPU state. Returns -EALREADY if already paused, -ESHUTDOWN
 * if the VM is stopping, -ETIMEDOUT (the VM left running) if a vCPU would
 * not stop: vm_pause_explain() then says which and where it was.
 */
int vm_pause(struct vm *vm, bool save_clock);
int vm_pause_explain(struct vm *vm, char *buf, size_t len);
/* Lets the vCPUs run again. Returns -EALREADY if not paused. */
int vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* Lets parked vCPUs go for good: the VM is being stopped. */
void vm_pause_release(struct vm *vm);

/* For the vCPU thread: around its loop, and before each KVM_RUN. */
void vcpu_pause_enter(struct vcpu *vcpu);
void vcpu_pause_point(struct vcpu *vcpu);
void vcpu_pause_leave(struct vcpu *vcpu);

#endif
