// SPDX-License-Identifier: MIT
/*
 * The life of one VM: create it (KVM VM, memory, platform, vCPUs, kernel),
 * run it until an event (power off, reset, error, signal), tear it down.
 * A guest reboot is a teardown and a fresh create, which resets every
 * device and vCPU without any per-device reset code to get wrong.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "disk/blockdev.h"
#include "net/slirp.h"
#include "net/tap.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "vmm/arch.h"
#include "vmm/console.h"
#include "vmm/log.h"
#include "vmm/vm.h"

void vm_fire_event(struct vm *vm, enum vm_event ev)
{
	int none = VM_EVENT_NONE;
	uint64_t one = 1;

	/* The first event wins: a poweroff racing an error stays a poweroff. */
	if (__atomic_compare_exchange_n(&vm->event, &none, ev, false,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		if (write(vm->event_fd, &one, sizeof(one)) < 0)
			pr_debug("event_fd: %s", strerror(errno));
	}
}

static void vm_event_fire(void *ctx, enum vm_event ev)
{
	vm_fire_event(ctx, ev);
}

struct event_sink vm_event_sink(struct vm *vm)
{
	return (struct event_sink){ .fire = vm_event_fire, .ctx = vm };
}

static int vm_create_vcpus(struct vm *vm)
{
	int ret;

	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		ret = kvm_create_vcpu(vm, &vm->vcpus[i], i);
		if (ret)
			return ret;
		ret = arch_vcpu_init(&vm->vcpus[i]);
		if (ret)
			return ret;
	}
	return 0;
}

struct vm_blk {
	struct virtio_blk blk;
	struct blockdev *bd;
};

static void vm_blk_release(void *owner)
{
	struct vm_blk *b = owner;

	virtio_blk_destroy(&b->blk);
	blockdev_close(b->bd);
	free(b);
}

/* PCI slot 0 is the host bridge; devices follow in command-line order. */
static int vm_add_drive(struct vm *vm, const struct drive_opts *o, unsigned slot)
{
	struct vm_blk *b = calloc(1, sizeof(*b));
	struct vm_virtio *vv = &vm->virtio[vm->nr_virtio];
	char err[256];
	int ret;

	if (!b)
		return -ENOMEM;
	ret = blockdev_open(o, &b->bd, err, sizeof(err));
	if (ret) {
		pr_err("-drive: %s", err); /* err names the image */
		free(b);
		return ret;
	}
	ret = virtio_blk_init(&b->blk, b->bd, o);
	if (ret) {
		pr_err("-drive file=%s: %s", o->file, strerror(-ret));
		blockdev_close(b->bd);
		free(b);
		return ret;
	}
	*vv = (struct vm_virtio){ .vdev = &b->blk.vdev, .release = vm_blk_release, .owner = b };
	vm->nr_virtio++;
	ret = virtio_pci_init(vv->vdev, vm, arch_pci_host(vm), slot);
	if (ret)
		pr_err("-drive file=%s: cannot add the device: %s", o->file, strerror(-ret));
	return ret;
}

struct vm_nic {
	struct virtio_net net;
	struct net_backend *be;
};

static void vm_nic_release(void *owner)
{
	struct vm_nic *nic = owner;

	virtio_net_destroy(&nic->net);
	nic->be->ops->close(nic->be);
	free(nic);
}

/* How the user named a backend: -netdev ID, or the -nic / -net tap|user that made it. */
static const char *netdev_label(const struct netdev_opts *d, char *buf, size_t len)
{
	if (netdev_named(d))
		snprintf(buf, len, "-netdev %s", d->id);
	else if (netdev_from_nic(d))
		snprintf(buf, len, "-nic");
	else
		snprintf(buf, len, "-net %s", netdev_type_name(d->type));
	return buf;
}

/*
 * A NIC and its backend, opened afresh for each boot like the disks: a
 * reboot closes the TAP (downscript) and opens it again (script); a user
 * network starts over, its connections gone and its hostfwd ports bound
 * again.
 */
static int vm_add_nic(struct vm *vm, const struct nic_opts *o, unsigned slot)
{
	const struct netdev_opts *d = &vm->cfg->net.netdevs[o->backend];
	struct vm_nic *nic = calloc(1, sizeof(*nic));
	struct vm_virtio *vv = &vm->virtio[vm->nr_virtio];
	char err[NET_ERR_MAX + PATH_MAX], label[NET_ID_MAX + 16];
	int ret;

	if (!nic)
		return -ENOMEM;
	netdev_label(d, label, sizeof(label));
	if (d->type == NETDEV_USER)
		ret = usernet_open(d, &nic->be, err, sizeof(err));
	else
		ret = tap_open(d, &nic->be, err, sizeof(err));
	if (ret) {
		pr_err("%s: %s", label, err);
		free(nic);
		return ret;
	}
	ret = virtio_net_init(&nic->net, nic->be, &vm->evloop, o->mac, o->mtu);
	if (ret) {
		pr_err("%s: %s", label, strerror(-ret));
		nic->be->ops->close(nic->be);
		free(nic);
		return ret;
	}
	*vv = (struct vm_virtio){ .vdev = &nic->net.vdev, .release = vm_nic_release, .owner = nic };
	vm->nr_virtio++;
	ret = virtio_pci_init(vv->vdev, vm, arch_pci_host(vm), slot);
	if (ret)
		pr_err("%s: cannot add the NIC: %s", label, strerror(-ret));
	return ret;
}

struct virtio_net *vm_nic(struct vm *vm, unsigned int i)
{
	/* vm_create_devices() adds the drives first, then the NICs */
	unsigned int k = vm->cfg->nr_drives + i;
	struct vm_nic *nic;

	if (i >= vm->cfg->net.nr_nics || k >= vm->nr_virtio)
		return NULL;
	nic = vm->virtio[k].owner;
	return &nic->net;
}

static int vm_create_devices(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	int ret;

	vm->virtio = calloc(cfg->nr_drives + cfg->net.nr_nics + 1, sizeof(*vm->virtio));
	if (!vm->virtio)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		ret = vm_add_drive(vm, &cfg->drives[i], 1 + i);
		if (ret)
			return ret;
	}
	/* NICs take the PCI slots after the drives, in command-line order */
	for (unsigned i = 0; i < cfg->net.nr_nics; i++) {
		ret = vm_add_nic(vm, &cfg->net.nics[i], 1 + cfg->nr_drives + i);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct console *con)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->console = con;
	vm->kvm_fd = vm->vm_fd = vm->event_fd = -1;
	vm->evloop.epfd = vm->evloop.wake_fd = -1;
	vm->nr_vcpus = cfg->ncpus;
	vm_pause_init(&vm->pause);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->routing.lock, NULL);
	ret = evloop_init(&vm->evloop, "devices");
	if (ret)
		return ret;

	vm->event_fd = eventfd(0, EFD_CLOEXEC);
	if (vm->event_fd < 0)
		return -errno;
	ret = kvm_open(vm);
	if (ret)
		return ret;
	ret = kvm_create_vm(vm);
	if (ret)
		return ret;
	ret = guest_mem_init(&vm->mem, cfg->ram_size);
	if (ret) {
		pr_err("cannot allocate %llu MiB of guest memory: %s",
		       (unsigned long long)(cfg->ram_size >> 20), strerror(-ret));
		return ret;
	}
	ret = kvm_map_memory(vm);
	if (ret)
		return ret;
	ret = arch_vm_init(vm);
	if (ret)
		return ret;
	ret = vm_create_devices(vm);
	if (ret)
		return ret;
	ret = vm_create_vcpus(vm);
	if (ret)
		return ret;
	ret = arch_load_kernel(vm);
	if (ret)
		return ret;
	arch_console_attach(vm);
	return 0;
}

static void vm_stop_vcpus(struct vm *vm)
{
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

/* Milliseconds from now until t (CLOCK_MONOTONIC), for poll(). */
static int ms_until(const struct timespec *t)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (t->tv_sec - now.tv_sec) * 1000LL + (t->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

/*
 * A signal: SIGINT and SIGHUP stop the VM at once. SIGTERM first presses
 * the guest's ACPI power button, so that it can shut down cleanly, and
 * stops the VM only if it has not powered off by sd's deadline (or a second
 * SIGTERM comes). A paused guest cannot react, so it is stopped at once.
 * Returns true when the VM must stop now.
 */
static bool vm_signal(struct vm *vm, int signal_fd, struct vm_shutdown *sd)
{
	struct signalfd_siginfo si;

	if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo != SIGTERM || !sd || !sd->timeout_s || sd->requested ||
	    vm_is_paused(vm)) {
		pr_info("terminating on signal %u", si.ssi_signo);
		return true;
	}
	pr_info("terminating on signal %u: pressing the power button, stopping the guest in %u s",
		si.ssi_signo, sd->timeout_s);
	sd->requested = true;
	clock_gettime(CLOCK_MONOTONIC, &sd->deadline);
	sd->deadline.tv_sec += sd->timeout_s;
	arch_power_button(vm);
	return false;
}

/* Waits for a VM event or a signal; returns the event. */
static enum vm_event vm_wait(struct vm *vm, int signal_fd, struct vm_shutdown *sd)
{
	struct pollfd fds[3] = {
		{ .fd = vm->event_fd, .events = POLLIN },
		{ .fd = vm->console ? vm->console->quit_fd : -1, .events = POLLIN },
		{ .fd = signal_fd, .events = POLLIN },
	};

	for (;;) {
		int n = poll(fds, 3, sd && sd->requested ? ms_until(&sd->deadline) : -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("poll: %s", strerror(errno));
			return VM_EVENT_ERROR;
		}
		if (n == 0) {
			pr_info("the guest has not powered off within %u s: stopping it",
				sd->timeout_s);
			return VM_EVENT_POWEROFF;
		}
		if (fds[0].revents)
			return __atomic_load_n(&vm->event, __ATOMIC_ACQUIRE);
		if (fds[1].revents)
			return VM_EVENT_POWEROFF; /* Ctrl-a x */
		if (fds[2].revents && vm_signal(vm, signal_fd, sd))
			return VM_EVENT_POWEROFF;
	}
}

enum vm_event vm_run(struct vm *vm, int signal_fd, struct vm_shutdown *sd)
{
	enum vm_event ev;

	if (evloop_start(&vm->evloop)) {
		pr_err("cannot start the device thread");
		return VM_EVENT_ERROR;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(&vm->vcpus[i])) {
			vm_pause_release(vm);
			vm_stop_vcpus(vm);
			return VM_EVENT_ERROR;
		}
	}
	ev = vm_wait(vm, signal_fd, sd);
	vm_pause_release(vm); /* parked vCPUs must see the stop */
	vm_stop_vcpus(vm);
	evloop_stop(&vm->evloop);
	return ev;
}

void vm_destroy(struct vm *vm)
{
	if (vm->pio.unhandled || vm->mmio.unhandled)
		pr_debug("accesses nothing decoded: %llu port, %llu MMIO",
			 (unsigned long long)vm->pio.unhandled,
			 (unsigned long long)vm->mmio.unhandled);
	if (vm->console)
		console_detach(vm->console);
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			kvm_destroy_vcpu(vm, &vm->vcpus[i]);
		free(vm->vcpus);
	}
	evloop_stop(&vm->evloop);
	/* Quiesce devices while the platform they sit on still exists ... */
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		virtio_pci_stop(vm->virtio[i].vdev);
	arch_vm_destroy(vm);
	/* ... and free them once it has let go of them. */
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		virtio_pci_free(vm->virtio[i].vdev);
		vm->virtio[i].release(vm->virtio[i].owner);
	}
	free(vm->virtio);
	evloop_destroy(&vm->evloop);
	free(vm->routing.table);
	pthread_mutex_destroy(&vm->routing.lock);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	guest_mem_destroy(&vm->mem);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	vm_pause_destroy(&vm->pause);
	memset(vm, 0, sizeof(*vm));
}
