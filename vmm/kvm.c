// SPDX-License-Identifier: MIT
/*
 * The KVM API, as documented in the kernel's Documentation/virt/kvm/api.rst.
 * Three kinds of file descriptor: /dev/kvm for the system, one per VM from
 * KVM_CREATE_VM, and one per vCPU from KVM_CREATE_VCPU, each with a shared
 * struct kvm_run page that tells userspace why KVM_RUN returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

struct kvm_cap_need {
	int cap;
	const char *name;
};

/* What minivm cannot run without. A missing one is named, not guessed at. */
static const struct kvm_cap_need kvm_needed[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
	{ KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
};

bool kvm_is_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

int kvm_open(struct vm *vm)
{
	int ret;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		ret = -errno;
		pr_err("/dev/kvm: %s%s", strerror(errno),
		       errno == ENOENT ? " (is the kvm module loaded?)" : "");
		return ret;
	}
	ret = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ret != KVM_API_VERSION) {
		pr_err("/dev/kvm: API version %d, minivm needs %d", ret, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kvm_needed); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, kvm_needed[i].cap) <= 0) {
			pr_err("/dev/kvm lacks %s, which minivm needs", kvm_needed[i].name);
			return -ENOTSUP;
		}
	}
	vm->caps.max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (vm->caps.max_vcpus <= 0)
		vm->caps.max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (vm->caps.max_vcpus <= 0)
		vm->caps.max_vcpus = 4; /* what the API document promises */
	vm->caps.tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION,
				      KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	vm->caps.xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;

	ret = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret <= 0) {
		pr_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -errno;
	}
	vm->run_size = ret;
	return 0;
}

int kvm_create_vm(struct vm *vm)
{
	if (vm->nr_vcpus > (unsigned)vm->caps.max_vcpus) {
		pr_err("-smp %u: this host's KVM allows at most %d vCPUs",
		       vm->nr_vcpus, vm->caps.max_vcpus);
		return -EINVAL;
	}
	/* KVM_CREATE_VM can fail with EINTR while the kernel sets up. */
	do {
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	} while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int kvm_map_memory(struct vm *vm)
{
	for (int i = 0; i < vm->mem.nr; i++) {
		struct mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			pr_err("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int kvm_create_vcpu(struct vm *vm, struct vcpu *vcpu, unsigned id)
{
	void *run;

	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	if (vcpu->fd < 0) {
		pr_err("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return -errno;
	}
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		pr_err("mmap of vCPU %u's kvm_run: %s", id, strerror(errno));
		close(vcpu->fd);
		vcpu->fd = -1;
		return -errno;
	}
	vcpu->run = run;
	return 0;
}

void kvm_destroy_vcpu(struct vm *vm, struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

void kvm_irq_line(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	trace_irq(vm->trace, gsi, level);
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		pr_debug("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

/* ---- GSI routing, irqfd, ioeventfd ---- */

static struct kvm_irq_routing_entry *route_slot(struct irq_routing *r, unsigned gsi,
						 uint32_t type, bool *fresh)
{
	struct kvm_irq_routing *t = r->table;

	*fresh = false;
	/* MSI GSIs have one entry each; irqchip GSIs may have two (PIC + IOAPIC). */
	if (type == KVM_IRQ_ROUTING_MSI && t) {
		for (unsigned i = 0; i < t->nr; i++)
			if (t->entries[i].gsi == gsi)
				return &t->entries[i];
	}
	if (!t || t->nr == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 64;
		struct kvm_irq_routing *n = realloc(t, sizeof(*n) + cap * sizeof(n->entries[0]));

		if (!n)
			return NULL;
		if (!t)
			n->nr = 0;
		n->flags = 0;
		r->table = t = n;
		r->cap = cap;
	}
	*fresh = true;
	memset(&t->entries[t->nr], 0, sizeof(t->entries[0]));
	return &t->entries[t->nr++];
}

int vm_route_irqchip(struct vm *vm, unsigned gsi, unsigned chip, unsigned pin)
{
	struct kvm_irq_routing_entry *e;
	bool fresh;

	pthread_mutex_lock(&vm->routing.lock);
	e = route_slot(&vm->routing, gsi, KVM_IRQ_ROUTING_IRQCHIP, &fresh);
	if (e) {
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = chip;
		e->u.irqchip.pin = pin;
	}
	pthread_mutex_unlock(&vm->routing.lock);
	return e ? 0 : -ENOMEM;
}

static int route_commit_locked(struct vm *vm)
{
	if (!vm->routing.table)
		return 0;
	if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, vm->routing.table) < 0) {
		pr_err("KVM_SET_GSI_ROUTING: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vm_route_commit(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->routing.lock);
	ret = route_commit_locked(vm);
	pthread_mutex_unlock(&vm->routing.lock);
	return ret;
}

int vm_msi_route_alloc(struct vm *vm, unsigned first_free)
{
	struct kvm_irq_routing_entry *e;
	bool fresh;
	int gsi;

	pthread_mutex_lock(&vm->routing.lock);
	if (vm->routing.next_gsi < first_free)
		vm->routing.next_gsi = first_free;
	gsi = vm->routing.next_gsi++;
	/* An MSI route with a null message until the guest programs the vector. */
	e = route_slot(&vm->routing, gsi, KVM_IRQ_ROUTING_MSI, &fresh);
	if (e) {
		e->gsi = gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
	}
	pthread_mutex_unlock(&vm->routing.lock);
	return e ? gsi : -ENOMEM;
}

int vm_msi_route_set(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e;
	bool fresh;
	int ret;

	pthread_mutex_lock(&vm->routing.lock);
	e = route_slot(&vm->routing, gsi, KVM_IRQ_ROUTING_MSI, &fresh);
	if (!e) {
		pthread_mutex_unlock(&vm->routing.lock);
		return -ENOMEM;
	}
	if (!fresh && e->u.msi.address_lo == (uint32_t)addr &&
	    e->u.msi.address_hi == addr >> 32 && e->u.msi.data == data) {
		pthread_mutex_unlock(&vm->routing.lock);
		return 0; /* unchanged: spare KVM a table rebuild */
	}
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = addr;
	e->u.msi.address_hi = addr >> 32;
	e->u.msi.data = data;
	ret = route_commit_locked(vm);
	pthread_mutex_unlock(&vm->routing.lock);
	return ret;
}

int vm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned len, int fd, bool assign)
{
	struct kvm_ioeventfd ev = {
		.addr = addr, .len = len, .fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &ev) < 0)
		return -errno;
	return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
		.address_lo = addr, .address_hi = addr >> 32, .data = data,
	};

	trace_msi(vm->trace, addr, data);
	if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		return -errno;
	return 0;
}
