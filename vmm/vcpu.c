// SPDX-License-Identifier: MIT
/*
 * One thread per vCPU. Each loops on KVM_RUN: the CPU runs guest code until
 * something needs the VMM (a port or MMIO access nothing in the kernel
 * handles, a shutdown, an error), then KVM_RUN returns and kvm_run->exit_reason
 * says why. The loop hands I/O to the buses and knows no device by name.
 *
 * To stop a vCPU from another thread, set kvm_run->immediate_exit and send
 * the thread SIG_VCPU_KICK: if the thread is inside KVM_RUN the signal makes
 * it return with EINTR; if it is about to enter, immediate_exit makes KVM_RUN
 * return at once. Either way no kick is lost.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "vmm/arch.h"
#include "vmm/log.h"
#include "vmm/stats.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

#define SIG_VCPU_KICK SIGUSR1
#define VCPU_REKICK_MS 100

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN */
}

void vcpu_signals_init(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(SIG_VCPU_KICK, &sa, NULL);
}

/* Counts and traces one port or MMIO access, after the device has run. */
static void vcpu_observe_io(struct vcpu *vcpu, bool mmio, uint64_t addr, unsigned size,
			    bool write, const void *data, const char *dev)
{
	stats_io(vcpu->stats, mmio ? STATS_MMIO : STATS_PIO, dev, addr, write);
	trace_io(vcpu->vm->trace, vcpu->id, mmio, addr, size, write, data, dev);
}

static void vcpu_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	const char *dev;

	/* String instructions (rep outsb) arrive as one exit with count > 1. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		dev = bus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, out);
		vcpu_observe_io(vcpu, false, run->io.port, run->io.size, out, data, dev);
	}
}

static void vcpu_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->mmio.len > 8 ? 8 : run->mmio.len;
	const char *dev;

	dev = bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
			 run->mmio.is_write);
	vcpu_observe_io(vcpu, true, run->mmio.phys_addr, len, run->mmio.is_write,
			run->mmio.data, dev);
}

static void vcpu_fail(struct vcpu *vcpu, const char *why)
{
	pr_err("vCPU %u: %s", vcpu->id, why);
	arch_dump_vcpu(vcpu);
	vm_fire_event(vcpu->vm, VM_EVENT_ERROR);
}

static void vcpu_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_fire_event(vcpu->vm, VM_EVENT_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_fire_event(vcpu->vm, VM_EVENT_RESET);
		break;
	default:
		vcpu_fail(vcpu, "the guest crashed (KVM_SYSTEM_EVENT_CRASH)");
		break;
	}
}

/*
 * Statistics and tracing see every return from KVM_RUN; a kick (EINTR) is
 * KVM_EXIT_INTR by another name. Port and MMIO exits are traced access by
 * access in vcpu_observe_io().
 */
static void vcpu_observe_exit(struct vcpu *vcpu, int ret)
{
	unsigned reason = vcpu->run->exit_reason;
	int err = errno;

	if (ret < 0) {
		if (err != EINTR)
			return;
		reason = KVM_EXIT_INTR;
	}
	stats_run_exit(vcpu->stats, reason);
	if (reason != KVM_EXIT_IO && reason != KVM_EXIT_MMIO)
		trace_exit(vcpu->vm->trace, vcpu->id, reason, ret < 0 ? NULL : vcpu->run);
	errno = err; /* the caller looks at it next */
}

/* Returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char why[96];

	vcpu->exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* With the in-kernel LAPIC, HLT stays in the kernel; a halt that
		 * reaches us means the CPU can never wake up again. */
		vcpu_fail(vcpu, "halted with interrupts off");
		return false;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_system_event(vcpu);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(why, sizeof(why), "VM entry failed (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(vcpu, why);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(why, sizeof(why), "KVM internal error (suberror %u)",
			 run->internal.suberror);
		vcpu_fail(vcpu, why);
		return false;
	default:
		snprintf(why, sizeof(why), "unexpected exit reason %u", run->exit_reason);
		vcpu_fail(vcpu, why);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	sigset_t set;
	int ret;

	sigemptyset(&set);
	sigaddset(&set, SIG_VCPU_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	vcpu_pause_enter(vcpu);
	while (!__atomic_load_n(&vcpu->vm->stopping, __ATOMIC_ACQUIRE)) {
		/* The last exit's time ends here, before any pause. */
		stats_run_enter(vcpu->stats);
		vcpu_pause_point(vcpu); /* the monitor's stop parks us here */
		__atomic_store_n(&vcpu->in_run, true, __ATOMIC_RELAXED);
		ret = ioctl(vcpu->fd, KVM_RUN, 0);
		__atomic_store_n(&vcpu->in_run, false, __ATOMIC_RELAXED);
		vcpu_observe_exit(vcpu, ret);
		if (ret < 0) {
			/* EINTR: kicked. EAGAIN: a secondary vCPU leaving INIT. */
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vcpu_fail(vcpu, strerror(errno));
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	vcpu_pause_leave(vcpu);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	char name[16];
	int ret;

	ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	if (ret) {
		pr_err("cannot start vCPU %u: %s", vcpu->id, strerror(ret));
		return -ret;
	}
	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(vcpu->thread, name);
	vcpu->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu->thread, SIG_VCPU_KICK);
}

/*
 * Waits for a kicked vCPU thread to end, kicking it again every 100 ms. One
 * kick should do; but in the rig (TCG emulating nested SVM) a vCPU has been
 * seen to sleep through one after the guest powered off, and a signal costs
 * nothing. A vCPU that still has not stopped after 10 s is named, with
 * where it is, so that the hang can be told from a slow machine.
 */
void vcpu_join(struct vcpu *vcpu)
{
	struct timespec until;
	unsigned waited_ms = 0;

	if (!vcpu->started)
		return;
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += VCPU_REKICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(vcpu->thread, NULL, &until) == 0)
			break;
		waited_ms += VCPU_REKICK_MS;
		if (waited_ms % 10000 == 0)
			pr_warn("vCPU %u has not stopped %u s after it was told to (%s, %llu exits so far, the last with reason %u)",
				vcpu->id, waited_ms / 1000,
				__atomic_load_n(&vcpu->in_run, __ATOMIC_RELAXED) ?
					"inside KVM_RUN" : "in minivm",
				(unsigned long long)vcpu->exits, vcpu->run->exit_reason);
		vcpu_kick(vcpu);
	}
	vcpu->started = false;
}
