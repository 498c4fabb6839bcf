// SPDX-License-Identifier: MIT
/*
 * Exit statistics: the per-vCPU tables the vCPU threads fill (see stats.h
 * for the hot path) and the summary that adds them up for a person (text)
 * or a script (JSON). Exit reasons are KVM's, as listed in the kernel's
 * Documentation/virt/kvm/api.rst under "struct kvm_run".
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/stats.h"
#include "vmm/vm.h"

#define STATS_TEXT_VCPUS 8 /* more vCPUs than this: only the total column */
#define STATS_TEXT_ADDRS 32 /* rows of the by-address table in text */

static const char *const reason_names[STATS_NR_REASONS] = {
	[KVM_EXIT_UNKNOWN] = "unknown",
	[KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io",
	[KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug",
	[KVM_EXIT_HLT] = "hlt",
	[KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open",
	[KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry",
	[KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr",
	[KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi",
	[KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_WATCHDOG] = "watchdog",
	[KVM_EXIT_EPR] = "epr",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event",
	[KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_HYPERV] = "hyperv",
	[KVM_EXIT_ARM_NISV] = "arm_nisv",
	[KVM_EXIT_X86_RDMSR] = "x86_rdmsr",
	[KVM_EXIT_X86_WRMSR] = "x86_wrmsr",
	[KVM_EXIT_DIRTY_RING_FULL] = "dirty_ring_full",
	[KVM_EXIT_AP_RESET_HOLD] = "ap_reset_hold",
	[KVM_EXIT_X86_BUS_LOCK] = "x86_bus_lock",
	[KVM_EXIT_XEN] = "xen",
	[KVM_EXIT_NOTIFY] = "notify",
	[STATS_REASON_OTHER] = "other",
};

const char *stats_reason_name(unsigned reason)
{
	if (reason >= STATS_NR_REASONS)
		reason = STATS_REASON_OTHER;
	return reason_names[reason] ? reason_names[reason] : "other";
}

/*
 * How many ns one stats_cycles() tick is, times 2^32: both clocks read
 * across a 2 ms sleep. A counter that does not advance (or runs backwards)
 * would make nonsense of every time, so then the times read 0.
 */
static uint64_t stats_clock_calibrate(void)
{
	struct timespec nap = { .tv_nsec = 2000000 };
	uint64_t t0, c0, t1, c1;

#ifndef STATS_CPU_COUNTER
	return 1ULL << 32; /* stats_cycles() is clock_gettime() in ns already */
#endif
	t0 = stats_now_ns();
	c0 = stats_cycles();
	nanosleep(&nap, NULL);
	t1 = stats_now_ns();
	c1 = stats_cycles();
	if (c1 <= c0 || t1 <= t0)
		return 0;
	return (uint64_t)(((unsigned __int128)(t1 - t0) << 32) / (c1 - c0));
}

int stats_init(struct stats *s, unsigned nr_vcpus)
{
	uint64_t mult;

	memset(s, 0, sizeof(*s));
	s->vcpu = calloc(nr_vcpus, sizeof(*s->vcpu));
	if (!s->vcpu)
		return -ENOMEM;
	s->nr_vcpus = nr_vcpus;
	s->start_ns = stats_now_ns();
	mult = stats_clock_calibrate();
	for (unsigned i = 0; i < nr_vcpus; i++) {
		strcpy(s->vcpu[i].dev[STATS_DEVS].name, "other");
		s->vcpu[i].ns_mult = mult; /* a copy per vCPU: no shared cache line */
	}
	return 0;
}

void stats_destroy(struct stats *s)
{
	free(s->vcpu);
	memset(s, 0, sizeof(*s));
}

void stats_attach(struct stats *s, struct vm *vm)
{
	vm->stats = s;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].stats = s && i < s->nr_vcpus ? &s->vcpu[i] : NULL;
	if (!s)
		return;
	s->boots++;
	/* The old VM's region names are gone, and its last exits untimed. */
	for (unsigned i = 0; i < s->nr_vcpus; i++) {
		struct vcpu_stats *vs = &s->vcpu[i];

		for (unsigned d = 0; d < vs->nr_dev; d++)
			vs->dev[d].key = NULL;
		vs->exit_cycles = 0;
		memset(vs->charge, 0, sizeof(vs->charge));
	}
}

/* ---- the vCPU thread's side ---- */

static unsigned stats_dev_find(struct vcpu_stats *vs, enum stats_bus bus,
			       const char *label)
{
	unsigned n = vs->nr_dev;
	struct stats_dev *d;

	for (unsigned i = 0; i < n; i++)
		if (vs->dev[i].key == label && vs->dev[i].bus == bus)
			return i;
	/* A name seen in an earlier VM, or the same name from another device. */
	for (unsigned i = 0; i < n; i++) {
		d = &vs->dev[i];
		if (d->bus == bus && !strncmp(d->name, label, STATS_NAME_LEN - 1)) {
			d->key = label;
			return i;
		}
	}
	if (n == STATS_DEVS)
		return STATS_DEVS;
	d = &vs->dev[n];
	d->key = label;
	d->bus = bus;
	snprintf(d->name, sizeof(d->name), "%s", label);
	__atomic_store_n(&vs->nr_dev, n + 1, __ATOMIC_RELEASE);
	return n;
}

static unsigned stats_addr_hash(enum stats_bus bus, uint64_t addr, bool write)
{
	uint64_t h = (addr ^ ((uint64_t)bus << 62) ^ ((uint64_t)write << 61)) *
		     0x9e3779b97f4a7c15ull; /* Fibonacci hashing: the top bits mix */

	return h >> (64 - 6);
}

_Static_assert(STATS_ADDR_SLOTS == 1 << 6, "stats_addr_hash gives 6 bits");

static struct stats_bucket *stats_addr_find(struct vcpu_stats *vs, enum stats_bus bus,
					    uint64_t addr, bool write, unsigned dev)
{
	unsigned h = stats_addr_hash(bus, addr, write);

	for (unsigned i = 0; i < STATS_ADDR_PROBES; i++) {
		struct stats_addr *a = &vs->addr[(h + i) % STATS_ADDR_SLOTS];

		if (a->bus == bus && a->addr == addr && a->write == write)
			return &a->b;
		if (a->bus == STATS_FREE) {
			a->addr = addr;
			a->write = write;
			a->dev = dev;
			__atomic_store_n(&a->bus, bus, __ATOMIC_RELEASE);
			return &a->b;
		}
	}
	return &vs->addr_other;
}

void stats_io_slow(struct vcpu_stats *vs, enum stats_bus bus, const char *name,
		   uint64_t addr, bool write)
{
	unsigned dev = stats_dev_find(vs, bus, name ? name : "unassigned");
	struct stats_dev *d = &vs->dev[dev];

	stats_count(vs, write ? &d->wr : &d->rd, 1);
	stats_count(vs, stats_addr_find(vs, bus, addr, write, dev), 2);
}

/* ---- the reader's side: add up the vCPUs' tables ---- */

static uint64_t rd64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void bucket_add(struct stats_bucket *to, const struct stats_bucket *b)
{
	to->count += rd64(&b->count);
	to->ns += rd64(&b->ns);
}

struct dev_row {
	const char *name;
	uint8_t bus;
	struct stats_bucket rd, wr;
};

struct addr_row {
	uint64_t addr;
	uint8_t bus;
	bool write;
	const char *dev;
	struct stats_bucket b;
};

struct stats_sum {
	struct stats_bucket total;
	struct stats_bucket reason[STATS_NR_REASONS];
	struct dev_row *devs;
	size_t nr_devs;
	struct addr_row *addrs;
	size_t nr_addrs;
	struct stats_bucket addr_other;
};

static int dev_cmp_key(const void *a, const void *b)
{
	const struct dev_row *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (int)x->bus - (int)y->bus;
}

static int dev_cmp_count(const void *a, const void *b)
{
	const struct dev_row *x = a, *y = b;
	uint64_t cx = x->rd.count + x->wr.count, cy = y->rd.count + y->wr.count;

	return cx != cy ? (cx < cy ? 1 : -1) : dev_cmp_key(a, b);
}

static int addr_cmp_key(const void *a, const void *b)
{
	const struct addr_row *x = a, *y = b;

	if (x->bus != y->bus)
		return (int)x->bus - (int)y->bus;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return (int)x->write - (int)y->write;
}

static int addr_cmp_count(const void *a, const void *b)
{
	const struct addr_row *x = a, *y = b;

	if (x->b.count != y->b.count)
		return x->b.count < y->b.count ? 1 : -1;
	return addr_cmp_key(a, b);
}

static void sum_devs(struct stats_sum *sum, const struct vcpu_stats *vs)
{
	unsigned n = __atomic_load_n(&vs->nr_dev, __ATOMIC_ACQUIRE);

	for (unsigned i = 0; i <= STATS_DEVS; i++) {
		const struct stats_dev *d = &vs->dev[i];
		struct dev_row *r = &sum->devs[sum->nr_devs];

		if (i >= n && i < STATS_DEVS)
			continue;
		*r = (struct dev_row){ .name = d->name, .bus = d->bus };
		bucket_add(&r->rd, &d->rd);
		bucket_add(&r->wr, &d->wr);
		if (r->rd.count || r->wr.count)
			sum->nr_devs++;
	}
}

static void sum_addrs(struct stats_sum *sum, const struct vcpu_stats *vs)
{
	for (unsigned i = 0; i < STATS_ADDR_SLOTS; i++) {
		const struct stats_addr *a = &vs->addr[i];
		uint8_t bus = __atomic_load_n(&a->bus, __ATOMIC_ACQUIRE);
		struct addr_row *r;

		if (bus == STATS_FREE)
			continue;
		r = &sum->addrs[sum->nr_addrs++];
		*r = (struct addr_row){
			.addr = a->addr, .bus = bus, .write = a->write,
			.dev = vs->dev[a->dev].name,
		};
		bucket_add(&r->b, &a->b);
	}
	bucket_add(&sum->addr_other, &vs->addr_other);
}

/* Sorts rows by key, folds equal keys into the first, and returns the new count. */
static size_t fold_devs(struct dev_row *r, size_t n)
{
	size_t out = 0;

	qsort(r, n, sizeof(*r), dev_cmp_key);
	for (size_t i = 0; i < n; i++) {
		if (out && !dev_cmp_key(&r[out - 1], &r[i])) {
			bucket_add(&r[out - 1].rd, &r[i].rd);
			bucket_add(&r[out - 1].wr, &r[i].wr);
		} else {
			r[out++] = r[i];
		}
	}
	qsort(r, out, sizeof(*r), dev_cmp_count);
	return out;
}

static size_t fold_addrs(struct addr_row *r, size_t n)
{
	size_t out = 0;

	qsort(r, n, sizeof(*r), addr_cmp_key);
	for (size_t i = 0; i < n; i++) {
		if (out && !addr_cmp_key(&r[out - 1], &r[i]))
			bucket_add(&r[out - 1].b, &r[i].b);
		else
			r[out++] = r[i];
	}
	qsort(r, out, sizeof(*r), addr_cmp_count);
	return out;
}

static int stats_sum(const struct stats *s, struct stats_sum *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->devs = calloc((size_t)s->nr_vcpus * (STATS_DEVS + 1) + 1, sizeof(*sum->devs));
	sum->addrs = calloc((size_t)s->nr_vcpus * STATS_ADDR_SLOTS + 1, sizeof(*sum->addrs));
	if (!sum->devs || !sum->addrs) {
		free(sum->devs);
		free(sum->addrs);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < s->nr_vcpus; i++) {
		const struct vcpu_stats *vs = &s->vcpu[i];

		bucket_add(&sum->total, &vs->total);
		for (unsigned r = 0; r < STATS_NR_REASONS; r++)
			bucket_add(&sum->reason[r], &vs->reason[r]);
		sum_devs(sum, vs);
		sum_addrs(sum, vs);
	}
	sum->nr_devs = fold_devs(sum->devs, sum->nr_devs);
	sum->nr_addrs = fold_addrs(sum->addrs, sum->nr_addrs);
	return 0;
}

static const char *bus_name(uint8_t bus)
{
	return bus == STATS_PIO ? "pio" : bus == STATS_MMIO ? "mmio" : "-";
}

static const char *dir_name(uint8_t bus, bool write)
{
	if (bus == STATS_PIO)
		return write ? "out" : "in";
	return write ? "write" : "read";
}

/* ---- text ---- */

static double us(uint64_t ns)
{
	return ns / 1000.0;
}

static void text_reasons(FILE *out, const struct stats *s, const struct stats_sum *sum)
{
	bool cols = s->nr_vcpus <= STATS_TEXT_VCPUS;
	char name[16];

	fprintf(out, "exits by reason:\n  %-19s", "reason");
	for (unsigned v = 0; cols && v < s->nr_vcpus; v++) {
		snprintf(name, sizeof(name), "vcpu%u", v);
		fprintf(out, " %12s", name);
	}
	fprintf(out, " %12s %12s %9s\n", "total", "user_us", "avg_us");
	for (unsigned r = 0; r < STATS_NR_REASONS; r++) {
		const struct stats_bucket *b = &sum->reason[r];

		if (!b->count)
			continue;
		fprintf(out, "  %-19s", stats_reason_name(r));
		for (unsigned v = 0; cols && v < s->nr_vcpus; v++)
			fprintf(out, " %12" PRIu64, rd64(&s->vcpu[v].reason[r].count));
		fprintf(out, " %12" PRIu64 " %12.1f %9.2f\n", b->count, us(b->ns),
			us(b->ns) / b->count);
	}
	fprintf(out, "  %-19s", "all");
	for (unsigned v = 0; cols && v < s->nr_vcpus; v++)
		fprintf(out, " %12" PRIu64, rd64(&s->vcpu[v].total.count));
	fprintf(out, " %12" PRIu64 " %12.1f %9.2f\n", sum->total.count, us(sum->total.ns),
		sum->total.count ? us(sum->total.ns) / sum->total.count : 0.0);
}

static void text_devices(FILE *out, const struct stats_sum *sum)
{
	fprintf(out, "accesses by device:\n  %-19s %-5s %12s %12s %12s\n",
		"device", "bus", "reads", "writes", "user_us");
	for (size_t i = 0; i < sum->nr_devs; i++) {
		const struct dev_row *d = &sum->devs[i];

		fprintf(out, "  %-19s %-5s %12" PRIu64 " %12" PRIu64 " %12.1f\n",
			d->name, bus_name(d->bus), d->rd.count, d->wr.count,
			us(d->rd.ns + d->wr.ns));
	}
}

static void text_addrs(FILE *out, const struct stats_sum *sum)
{
	size_t shown = MIN(sum->nr_addrs, STATS_TEXT_ADDRS);
	char addr[24];

	fprintf(out, "accesses by address:\n  %-5s %-18s %-5s %12s %12s  %s\n",
		"bus", "address", "dir", "count", "user_us", "device");
	for (size_t i = 0; i < shown; i++) {
		const struct addr_row *a = &sum->addrs[i];

		snprintf(addr, sizeof(addr), "0x%0*" PRIx64, a->bus == STATS_PIO ? 4 : 8,
			 a->addr);
		fprintf(out, "  %-5s %-18s %-5s %12" PRIu64 " %12.1f  %s\n",
			bus_name(a->bus), addr, dir_name(a->bus, a->write), a->b.count,
			us(a->b.ns), a->dev);
	}
	if (shown < sum->nr_addrs)
		fprintf(out, "  (%zu more addresses, listed in the JSON form)\n",
			sum->nr_addrs - shown);
	if (sum->addr_other.count)
		fprintf(out, "  %-5s %-18s %-5s %12" PRIu64 " %12.1f  %s\n", "-", "other", "-",
			sum->addr_other.count, us(sum->addr_other.ns),
			"(the by-address table was full)");
}

static void stats_print_text(FILE *out, const struct stats *s, const struct stats_sum *sum)
{
	fprintf(out, "exit statistics: %u vCPU%s, %u boot%s, %.3f s\n", s->nr_vcpus,
		s->nr_vcpus == 1 ? "" : "s", s->boots, s->boots == 1 ? "" : "s",
		(stats_now_ns() - s->start_ns) / 1e9);
	text_reasons(out, s, sum);
	text_devices(out, sum);
	text_addrs(out, sum);
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *str)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void json_bucket(FILE *out, const char *name, const struct stats_bucket *b)
{
	if (name)
		fprintf(out, "\"%s\":", name);
	fprintf(out, "{\"count\":%" PRIu64 ",\"user_ns\":%" PRIu64 "}", b->count, b->ns);
}

static void json_reasons(FILE *out, const struct stats_bucket *reason)
{
	bool first = true;

	fprintf(out, "\"by_reason\":{");
	for (unsigned r = 0; r < STATS_NR_REASONS; r++) {
		struct stats_bucket b = { 0 };

		bucket_add(&b, &reason[r]);
		if (!b.count)
			continue;
		fprintf(out, "%s", first ? "" : ",");
		json_bucket(out, stats_reason_name(r), &b);
		first = false;
	}
	fputc('}', out);
}

static void json_vcpus(FILE *out, const struct stats *s)
{
	fprintf(out, "\"per_vcpu\":[");
	for (unsigned v = 0; v < s->nr_vcpus; v++) {
		const struct vcpu_stats *vs = &s->vcpu[v];

		fprintf(out, "%s{\"vcpu\":%u,\"count\":%" PRIu64 ",\"user_ns\":%" PRIu64 ",",
			v ? "," : "", v, rd64(&vs->total.count), rd64(&vs->total.ns));
		json_reasons(out, vs->reason);
		fputc('}', out);
	}
	fputc(']', out);
}

static void json_devices(FILE *out, const struct stats_sum *sum)
{
	fprintf(out, "\"devices\":[");
	for (size_t i = 0; i < sum->nr_devs; i++) {
		const struct dev_row *d = &sum->devs[i];

		fprintf(out, "%s{\"name\":", i ? "," : "");
		json_str(out, d->name);
		fprintf(out, ",\"bus\":\"%s\",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
			",\"user_ns\":%" PRIu64 "}", bus_name(d->bus), d->rd.count,
			d->wr.count, d->rd.ns + d->wr.ns);
	}
	fputc(']', out);
}

static void json_addrs(FILE *out, const struct stats_sum *sum)
{
	fprintf(out, "\"addresses\":[");
	for (size_t i = 0; i < sum->nr_addrs; i++) {
		const struct addr_row *a = &sum->addrs[i];

		fprintf(out, "%s{\"bus\":\"%s\",\"address\":%" PRIu64 ",\"dir\":\"%s\","
			"\"count\":%" PRIu64 ",\"user_ns\":%" PRIu64 ",\"device\":",
			i ? "," : "", bus_name(a->bus), a->addr, dir_name(a->bus, a->write),
			a->b.count, a->b.ns);
		json_str(out, a->dev);
		fputc('}', out);
	}
	fprintf(out, "],");
	json_bucket(out, "addresses_other", &sum->addr_other);
}

static void stats_print_json(FILE *out, const struct stats *s, const struct stats_sum *sum)
{
	fprintf(out, "{\"vcpus\":%u,\"boots\":%u,\"seconds\":%.6f,\"exits\":{\"count\":%"
		PRIu64 ",\"user_ns\":%" PRIu64 ",", s->nr_vcpus, s->boots,
		(stats_now_ns() - s->start_ns) / 1e9, sum->total.count, sum->total.ns);
	json_reasons(out, sum->reason);
	fprintf(out, "},");
	json_vcpus(out, s);
	fputc(',', out);
	json_devices(out, sum);
	fputc(',', out);
	json_addrs(out, sum);
	fprintf(out, "}\n");
}

int stats_print(FILE *out, const struct stats *s, bool json)
{
	struct stats_sum sum;
	int ret;

	ret = stats_sum(s, &sum);
	if (ret)
		return ret;
	if (json)
		stats_print_json(out, s, &sum);
	else
		stats_print_text(out, s, &sum);
	free(sum.devs);
	free(sum.addrs);
	return 0;
}
