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
#include <sys/types.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/cli.h"
#include "vmm/evloop.h"
#include "vmm/events.h"
#include "vmm/memory.h"
#include "vmm/pause.h"

struct console;
struct stats;
struct trace;
struct vcpu_stats;
struct virtio_dev;
struct virtio_net;
struct vm;

/* A virtio device and how to free its device type and backend. */
struct vm_virtio {
	struct virtio_dev *vdev;
	void (*release)(void *owner);
	void *owner;
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	bool in_run; /* inside KVM_RUN: for a diagnosis when it will not stop */
	uint64_t exits; /* statistics: total exits to userspace */
	struct vcpu_stats *stats; /* this vCPU's counters (vmm/stats.h); NULL: off */
	pid_t tid; /* the thread's id, for the monitor's info cpus */
};

/*
 * KVM's GSI routing table: what each GSI number means (an irqchip pin, or an
 * MSI message). KVM_SET_GSI_ROUTING replaces the whole table, so minivm
 * keeps it here and commits it whole after each change.
 */
struct irq_routing {
	pthread_mutex_t lock;
	struct kvm_irq_routing *table;
	unsigned cap;
	unsigned next_gsi; /* the next free GSI for MSI routes */
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
	struct evloop evloop; /* device work off the vCPU threads */
	struct irq_routing routing;
	struct vm_virtio *virtio; /* virtio devices, torn down with the VM */
	unsigned nr_virtio;

	/* The first event a device or vCPU fires wins; the main thread waits. */
	int event;
	int event_fd;
	bool stopping;
	struct vm_pause pause; /* the monitor's stop and cont */
	/* Owned by main(), outliving reboots; NULL when off (stats.h, trace.h). */
	struct stats *stats;
	struct trace *trace;
};

int vm_create(struct vm *vm, const struct vm_config *cfg, struct console *con);
/*
 * A clean shutdown asked for by SIGTERM: the guest gets an ACPI power button
 * press and timeout_s seconds to power off before the VM is stopped. It
 * outlives one VM: a guest that reboots instead is not booted again.
 */
struct vm_shutdown {
	unsigned timeout_s; /* 0: stop at once, as on SIGINT */
	bool requested;
	struct timespec deadline; /* CLOCK_MONOTONIC */
};

/* Starts the vCPUs and returns the event that ended this boot. */
enum vm_event vm_run(struct vm *vm, int signal_fd, struct vm_shutdown *sd);
void vm_destroy(struct vm *vm);
/* The i-th NIC in command-line order (-device/-nic/-net nic), or NULL. */
struct virtio_net *vm_nic(struct vm *vm, unsigned int i);
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

/* irqroute in kvm.c: GSI routes, irqfds and ioeventfds */
int vm_route_irqchip(struct vm *vm, unsigned gsi, unsigned chip, unsigned pin);
int vm_route_commit(struct vm *vm);
/* Allocates a GSI above the irqchip pins for an MSI route; returns it or -errno. */
int vm_msi_route_alloc(struct vm *vm, unsigned first_free);
int vm_msi_route_set(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data);
int vm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign);
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool assign);
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/* vcpu.c */
int vcpu_start(struct vcpu *vcpu);
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_signals_init(void);

#endif
