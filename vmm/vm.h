/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine: the KVM file descriptors, guest memory, the two buses,
 * the vCPUs and the architecture's platform. One struct vm lives from power
 * on to power off or reset; a reset builds a fresh one, so no state leaks
 * from one boot into the next.
 */
#ifndef MINIVM_VM_H
#define MINIVM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/cli.h"
#include "vmm/events.h"
#include "vmm/memory.h"

struct console;
struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint64_t exits; /* statistics: total exits to userspace */
};

struct kvm_caps {
	int max_vcpus;
	bool tsc_deadline;
	bool xcrs;
};

struct vm {
	const struct vm_config *cfg;
	struct console *console;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct kvm_caps caps;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct vcpu *vcpus;
	unsigned nr_vcpus;
	void *arch; /* the platform: struct pc on x86 */

	/* The first event a device or vCPU fires wins; the main thread waits. */
	int event;
	int event_fd;
	bool stopping;
};

int vm_create(struct vm *vm, const struct vm_config *cfg, struct console *con);
/* Starts the vCPUs and returns the event that ended this boot. */
enum vm_event vm_run(struct vm *vm, int signal_fd);
void vm_destroy(struct vm *vm);
void vm_fire_event(struct vm *vm, enum vm_event ev);
/* An event_sink that fires into this VM, for devices. */
struct event_sink vm_event_sink(struct vm *vm);

/* kvm.c: the KVM API */
int kvm_open(struct vm *vm);
int kvm_create_vm(struct vm *vm);
int kvm_map_memory(struct vm *vm);
int kvm_create_vcpu(struct vm *vm, struct vcpu *vcpu, unsigned id);
void kvm_destroy_vcpu(struct vm *vm, struct vcpu *vcpu);
bool kvm_is_pvm(void);
/* For devices' irq_line: drives a GSI of the in-kernel irqchip. */
void kvm_irq_line(void *vm, unsigned gsi, int level);

/* vcpu.c */
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_signals_init(void);

#endif
