// SPDX-License-Identifier: MIT
/*
 * stop and cont: parking the vCPU threads, and freezing the guest's clock
 * while they are parked. See pause.h for the protocol.
 *
 * The kick is the same one that stops a VM (vcpu_kick: immediate_exit plus
 * a signal), so a vCPU inside KVM_RUN returns with EINTR and one about to
 * enter it returns at once; either way it comes round to its pause point.
 * A vCPU that sleeps through a kick (seen in the rig, see vcpu_join) is
 * kicked again every 100 ms; one that has still not parked after
 * p->limit_ms (10 s) makes the pause fail instead of hanging the monitor: the
 * others are let go again and the caller learns which vCPU would not stop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/pause.h"
#include "vmm/vm.h"

#define PAUSE_REKICK_MS 100

void vm_pause_init(struct vm_pause *p)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	p->stuck = -1;
	p->limit_ms = 10000;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	/* Timed waits on CLOCK_MONOTONIC: a host clock step cannot stretch them. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->changed, &ca);
	pthread_condattr_destroy(&ca);
}

void vm_pause_destroy(struct vm_pause *p)
{
	pthread_cond_destroy(&p->changed);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

static void deadline_in_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The first vCPU still inside KVM_RUN, for the caller's error message. */
static int stuck_vcpu(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (__atomic_load_n(&vm->vcpus[i].in_run, __ATOMIC_RELAXED))
			return (int)i;
	return -1;
}

/*
 * Called with the lock held; returns 0 with every running vCPU parked, or
 * -ETIMEDOUT (and p->stuck set) if one would not park within the limit.
 */
static int wait_parked(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	struct timespec until;
	unsigned waited_ms = 0;

	kick_all(vm);
	while (p->parked < p->running) {
		deadline_in_ms(&until, PAUSE_REKICK_MS);
		if (pthread_cond_timedwait(&p->changed, &p->lock, &until) != ETIMEDOUT)
			continue;
		waited_ms += PAUSE_REKICK_MS;
		if (waited_ms >= p->limit_ms) {
			p->stuck = stuck_vcpu(vm);
			return -ETIMEDOUT;
		}
		kick_all(vm);
	}
	return 0;
}

/*
 * A pause that failed: the parked vCPUs run again (no half-stopped VM), and
 * the kick is taken back from the ones that never parked. Only parking
 * clears immediate_exit; left set, it would make the stuck vCPU, once it
 * comes out of KVM_RUN, return from every KVM_RUN at once, for ever.
 */
static void give_up_pause(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;

	__atomic_store_n(&p->paused, false, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].run)
			__atomic_store_n(&vm->vcpus[i].run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&p->wake);
}

/*
 * kvm-clock is computed from the host's clock; without this the guest
 * would see the whole pause go by the next time it reads the time.
 */
static void save_clock(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;

	memset(&p->clock, 0, sizeof(p->clock));
	p->clock_saved = ioctl(vm->vm_fd, KVM_GET_CLOCK, &p->clock) == 0;
	if (!p->clock_saved)
		pr_debug("KVM_GET_CLOCK: %s", strerror(errno));
}

static void restore_clock(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	struct kvm_clock_data c = { .clock = p->clock.clock };

	if (!p->clock_saved)
		return;
	p->clock_saved = false;
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
		pr_debug("KVM_SET_CLOCK: %s", strerror(errno));
}

int vm_pause(struct vm *vm, bool clock)
{
	struct vm_pause *p = &vm->pause;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->released) {
		ret = -ESHUTDOWN;
	} else if (p->paused) {
		ret = -EALREADY;
	} else {
		__atomic_store_n(&p->paused, true, __ATOMIC_SEQ_CST);
		p->stuck = -1;
		ret = wait_parked(vm);
		if (ret) {
			give_up_pause(vm);
		} else if (clock) {
			save_clock(vm);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int vm_resume(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (!p->paused) {
		ret = -EALREADY;
	} else {
		restore_clock(vm);
		__atomic_store_n(&p->paused, false, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int vm_pause_explain(struct vm *vm, char *buf, size_t len)
{
	int id = __atomic_load_n(&vm->pause.stuck, __ATOMIC_RELAXED);
	struct vcpu *v;

	if (id < 0 || (unsigned)id >= vm->nr_vcpus)
		return snprintf(buf, len, "a vCPU did not stop within %.1f s",
				vm->pause.limit_ms / 1000.0);
	v = &vm->vcpus[id];
	return snprintf(buf, len,
			"vCPU %d did not leave KVM_RUN within %.1f s (thread %d, %llu exits so far, the last with reason %u)",
			id, vm->pause.limit_ms / 1000.0, (int)v->tid,
			(unsigned long long)__atomic_load_n(&v->exits, __ATOMIC_RELAXED),
			v->run->exit_reason);
}

bool vm_is_paused(struct vm *vm)
{
	return __atomic_load_n(&vm->pause.paused, __ATOMIC_ACQUIRE);
}

void vm_pause_release(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;

	pthread_mutex_lock(&p->lock);
	p->released = true;
	__atomic_store_n(&p->paused, false, __ATOMIC_SEQ_CST);
	p->clock_saved = false;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void vcpu_pause_enter(struct vcpu *vcpu)
{
	struct vm_pause *p = &vcpu->vm->pause;

	vcpu->tid = gettid();
	pthread_mutex_lock(&p->lock);
	p->running++;
	pthread_mutex_unlock(&p->lock);
}

void vcpu_pause_leave(struct vcpu *vcpu)
{
	struct vm_pause *p = &vcpu->vm->pause;

	pthread_mutex_lock(&p->lock);
	p->running--;
	pthread_cond_broadcast(&p->changed); /* one fewer to wait for */
	pthread_mutex_unlock(&p->lock);
}

void vcpu_pause_point(struct vcpu *vcpu)
{
	struct vm_pause *p = &vcpu->vm->pause;

	if (!__atomic_load_n(&p->paused, __ATOMIC_SEQ_CST))
		return;
	pthread_mutex_lock(&p->lock);
	p->parked++;
	pthread_cond_broadcast(&p->changed);
	while (p->paused)
		pthread_cond_wait(&p->wake, &p->lock);
	p->parked--;
	/*
	 * The kick left immediate_exit set. Clearing it after the flag check
	 * is safe: a new pause sets the flag before it kicks, so the loop's
	 * next pass sees one or the other.
	 */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&p->lock);
}
