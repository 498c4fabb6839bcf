/* SPDX-License-Identifier: MIT */
/*
 * Exit statistics: what made each vCPU leave the guest, how often, and how
 * long minivm took to send it back.
 *
 * Every time KVM_RUN returns, the vCPU thread counts the exit by its reason
 * (kvm_run->exit_reason: KVM_EXIT_IO, KVM_EXIT_MMIO, ...), and for port and
 * MMIO exits by device (the bus region's name) and by address and direction.
 * The time from KVM_RUN returning to the next KVM_RUN is the exit's cost in
 * userspace; it is added to the same buckets, so a learner sees which device
 * costs what.
 *
 * Cheap enough to be on by default: each vCPU writes only its own struct
 * vcpu_stats, so counting needs no locks and no atomic read-modify-write;
 * readers (the --stats summary, the monitor's "info stats") see values that
 * may be a few exits stale. The by-address table is fixed in size per vCPU;
 * addresses that do not fit are counted in an "other" bucket.
 *
 * An exit's time is added when the vCPU goes back into the guest, so the
 * last exit of a vCPU that never goes back (the one that powered it off) is
 * counted but not timed. Time a vCPU spends paused by the monitor is not
 * charged to any exit.
 *
 * A guest reboot builds a fresh struct vm; struct stats is owned by main()
 * and outlives it, so the summary covers the whole run.
 *
 * bench/exits.sh measures what counting costs (about 120 ns of CPU per exit
 * on the development machines, where an exit itself takes about 10 us).
 */
#ifndef MINIVM_STATS_H
#define MINIVM_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define STATS_NR_REASONS 48   /* KVM_EXIT_* numbers counted one by one ... */
#define STATS_REASON_OTHER (STATS_NR_REASONS - 1) /* ... and the rest here */
#define STATS_ADDR_SLOTS 64   /* by-address table entries per vCPU */
#define STATS_ADDR_PROBES 8   /* open-addressing probes before "other" */
#define STATS_DEVS 32         /* devices per vCPU before "other" */
#define STATS_NAME_LEN 32

enum stats_bus {
	STATS_FREE = 0, /* an unused slot */
	STATS_PIO = 1,
	STATS_MMIO = 2,
};

/* How many, and how much userspace time they took. */
struct stats_bucket {
	uint64_t count;
	uint64_t ns;
};

struct stats_addr {
	uint64_t addr;
	uint8_t bus;   /* enum stats_bus; written last, so readers see a whole slot */
	bool write;
	uint8_t dev;   /* index into the vCPU's dev[] */
	struct stats_bucket b;
};

struct stats_dev {
	/*
	 * The region's name pointer in the current VM: compared first, as it is
	 * cheaper than strcmp. A reboot frees the old names, so stats_attach()
	 * forgets the keys and the copied names match them up again.
	 */
	const char *key;
	char name[STATS_NAME_LEN];
	uint8_t bus;
	struct stats_bucket rd, wr;
};

struct vcpu_stats {
	struct stats_bucket total;
	struct stats_bucket reason[STATS_NR_REASONS]; /* by KVM_EXIT_* number */
	/* dev[STATS_DEVS] is "other": accesses once the others are taken. */
	struct stats_dev dev[STATS_DEVS + 1];
	unsigned nr_dev;
	struct stats_addr addr[STATS_ADDR_SLOTS];
	struct stats_bucket addr_other;

	/* The exit being handled: when it began (stats_cycles(), 0: none) and
	 * which buckets pay for it. */
	uint64_t exit_cycles;
	uint64_t ns_mult; /* stats_clock: ns = cycles * ns_mult >> 32 */
	struct stats_bucket *charge[3];
};

struct stats {
	unsigned nr_vcpus;
	unsigned boots;     /* VMs built so far: 1 + guest reboots */
	uint64_t start_ns;
	struct vcpu_stats *vcpu;
};

struct vm;

/* Returns 0 or -ENOMEM. */
int stats_init(struct stats *s, unsigned nr_vcpus);
void stats_destroy(struct stats *s);
/* Points a freshly created VM and its vCPUs at s (s may be NULL: no stats). */
void stats_attach(struct stats *s, struct vm *vm);

/*
 * The hot path, called by the vCPU thread that owns vs (NULL: counting is
 * off). stats_run_enter() just before KVM_RUN; stats_run_exit() just after
 * it returns, with the exit reason; stats_io() for each port or MMIO access
 * the exit made, with the name of the bus region that took it (NULL: none).
 */
static inline uint64_t stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/*
 * The hot path's clock: the CPU's own counter, read in a few cycles.
 * clock_gettime() is as cheap only while the kernel trusts the TSC (the vDSO
 * reads it); where it does not, such as in the rig's L1 under TCG, each call
 * is a system call and an HPET read, and two per exit made statistics cost
 * some 10% of a Linux boot there. stats_init() measures the counter against
 * CLOCK_MONOTONIC once to turn cycles into ns. Other architectures, until
 * they get their counter here, use clock_gettime() (ns_mult is then 1 << 32).
 */
#if defined(__x86_64__) || defined(__aarch64__)
#define STATS_CPU_COUNTER 1
#endif

static inline uint64_t stats_cycles(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	uint64_t v;

	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	return stats_now_ns();
#endif
}

static inline uint64_t stats_cycles_to_ns(const struct vcpu_stats *vs, uint64_t cycles)
{
	return (uint64_t)(((unsigned __int128)cycles * vs->ns_mult) >> 32);
}

/* Single writer: a plain add, stored so that a reader never sees it torn. */
static inline void stats_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

static inline void stats_count(struct vcpu_stats *vs, struct stats_bucket *b,
			       unsigned slot)
{
	stats_add(&b->count, 1);
	if (!vs->charge[slot])
		vs->charge[slot] = b; /* an exit's first access pays for it */
}

static inline void stats_run_enter(struct vcpu_stats *vs)
{
	uint64_t d;

	if (!vs || !vs->exit_cycles)
		return;
	d = stats_cycles() - vs->exit_cycles;
	/* A thread moved between CPUs whose counters differ: call it 0. */
	d = (int64_t)d < 0 ? 0 : stats_cycles_to_ns(vs, d);
	stats_add(&vs->total.ns, d);
	for (unsigned i = 0; i < 3; i++) {
		if (vs->charge[i])
			stats_add(&vs->charge[i]->ns, d);
		vs->charge[i] = NULL;
	}
	vs->exit_cycles = 0;
}

static inline void stats_run_exit(struct vcpu_stats *vs, unsigned reason)
{
	if (!vs)
		return;
	vs->exit_cycles = stats_cycles() ?: 1; /* 0 means no exit pending */
	stats_add(&vs->total.count, 1);
	if (reason >= STATS_NR_REASONS)
		reason = STATS_REASON_OTHER;
	stats_count(vs, &vs->reason[reason], 0);
}

void stats_io_slow(struct vcpu_stats *vs, enum stats_bus bus, const char *name,
		   uint64_t addr, bool write);

static inline void stats_io(struct vcpu_stats *vs, enum stats_bus bus,
			    const char *name, uint64_t addr, bool write)
{
	if (vs)
		stats_io_slow(vs, bus, name, addr, write);
}

/* KVM's name for an exit reason, lower case without KVM_EXIT_: "io", "mmio". */
const char *stats_reason_name(unsigned reason);

/*
 * Prints what s has counted so far to out, from any thread while the vCPUs
 * run (values may be a few exits stale).
 *
 * Text (json false): a title line, then three tables, each under a header
 * line naming its columns:
 *   exits by reason:   reason, one count column per vCPU (up to 8 vCPUs),
 *                      total, user_us (userspace time), avg_us
 *   accesses by device: device, bus (pio|mmio), reads, writes, user_us
 *   accesses by address: bus, address (hex), dir (in|out|read|write),
 *                      count, user_us, device
 *
 * JSON (json true), one object on one line:
 *   {"vcpus":N,"boots":N,"seconds":S,
 *    "exits":{"count":N,"user_ns":N,"by_reason":{"io":{"count":N,"user_ns":N},...}},
 *    "per_vcpu":[{"vcpu":0,"count":N,"user_ns":N,"by_reason":{...}},...],
 *    "devices":[{"name":"serial","bus":"pio","reads":N,"writes":N,"user_ns":N},...],
 *    "addresses":[{"bus":"pio","address":1016,"dir":"out","count":N,
 *                  "user_ns":N,"device":"serial"},...],
 *    "addresses_other":{"count":N,"user_ns":N}}
 * Accesses that no device took have the device name "unassigned". Rows are
 * sorted by count, most first. Returns 0 or -ENOMEM.
 */
int stats_print(FILE *out, const struct stats *s, bool json);

#endif
