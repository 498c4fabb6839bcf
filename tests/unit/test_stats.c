// SPDX-License-Identifier: MIT
/*
 * Exit statistics without a VM: the calls the vCPU loop makes, made by hand,
 * then the tables and their text and JSON forms checked against what was
 * done. Time is real, so tests check where it went, not how much there was.
 */
#include <check.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/stats.h"
#include "vmm/vm.h"
#include "tests/unit/unit.h"

/* One exit the way vcpu.c reports it: enter, exit, then its accesses. */
static void one_exit(struct vcpu_stats *vs, unsigned reason, enum stats_bus bus,
		     const char *dev, uint64_t addr, bool write)
{
	stats_run_enter(vs);
	stats_run_exit(vs, reason);
	if (bus != STATS_FREE)
		stats_io(vs, bus, dev, addr, write);
}

static const struct stats_addr *find_addr(const struct vcpu_stats *vs, enum stats_bus bus,
					  uint64_t addr, bool write)
{
	for (unsigned i = 0; i < STATS_ADDR_SLOTS; i++) {
		const struct stats_addr *a = &vs->addr[i];

		if (a->bus == bus && a->addr == addr && a->write == write)
			return a;
	}
	return NULL;
}

static const struct stats_dev *find_dev(const struct vcpu_stats *vs, const char *name)
{
	for (unsigned i = 0; i < vs->nr_dev; i++)
		if (!strcmp(vs->dev[i].name, name))
			return &vs->dev[i];
	return NULL;
}

/* The count guest's pattern: 1000 outb to 0x80 (no device), 12 to COM1. */
static void count_guest(struct vcpu_stats *vs)
{
	for (int i = 0; i < 1000; i++)
		one_exit(vs, KVM_EXIT_IO, STATS_PIO, NULL, 0x80, true);
	for (int i = 0; i < 12; i++)
		one_exit(vs, KVM_EXIT_IO, STATS_PIO, "serial", 0x3f8, true);
	one_exit(vs, KVM_EXIT_IO, STATS_PIO, "serial", 0x3fd, false);
	one_exit(vs, KVM_EXIT_INTR, STATS_FREE, NULL, 0, false);
	one_exit(vs, KVM_EXIT_MMIO, STATS_MMIO, "pci-00:01.0-bar4", 0xfebf1000, true);
	stats_run_enter(vs); /* times the last exit */
}

START_TEST(counts_by_reason_device_and_address)
{
	struct stats s;
	struct vcpu_stats *vs;
	const struct stats_addr *a;
	const struct stats_dev *d;

	ck_assert_int_eq(stats_init(&s, 1), 0);
	vs = &s.vcpu[0];
	count_guest(vs);

	ck_assert_uint_eq(vs->total.count, 1015);
	ck_assert_uint_eq(vs->reason[KVM_EXIT_IO].count, 1013);
	ck_assert_uint_eq(vs->reason[KVM_EXIT_INTR].count, 1);
	ck_assert_uint_eq(vs->reason[KVM_EXIT_MMIO].count, 1);

	a = find_addr(vs, STATS_PIO, 0x80, true);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->b.count, 1000);
	ck_assert_str_eq(vs->dev[a->dev].name, "unassigned");
	ck_assert_ptr_null(find_addr(vs, STATS_PIO, 0x80, false));
	ck_assert_uint_eq(find_addr(vs, STATS_PIO, 0x3f8, true)->b.count, 12);
	ck_assert_uint_eq(find_addr(vs, STATS_PIO, 0x3fd, false)->b.count, 1);
	ck_assert_uint_eq(find_addr(vs, STATS_MMIO, 0xfebf1000, true)->b.count, 1);

	d = find_dev(vs, "serial");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->wr.count, 12);
	ck_assert_uint_eq(d->rd.count, 1);
	ck_assert_uint_eq(find_dev(vs, "unassigned")->wr.count, 1000);
	ck_assert_uint_eq(vs->addr_other.count, 0);
	stats_destroy(&s);
}
END_TEST

/*
 * Each exit's userspace time goes to the total, its reason, and for an
 * access its device and address, once each: the sums must agree exactly.
 */
START_TEST(time_goes_where_the_exit_went)
{
	struct stats s;
	struct vcpu_stats *vs;
	uint64_t reasons = 0, devs = 0, addrs = 0;

	ck_assert_int_eq(stats_init(&s, 1), 0);
	vs = &s.vcpu[0];
	count_guest(vs);
	for (unsigned r = 0; r < STATS_NR_REASONS; r++)
		reasons += vs->reason[r].ns;
	for (unsigned i = 0; i <= STATS_DEVS; i++)
		devs += vs->dev[i].rd.ns + vs->dev[i].wr.ns;
	for (unsigned i = 0; i < STATS_ADDR_SLOTS; i++)
		addrs += vs->addr[i].b.ns;
	addrs += vs->addr_other.ns;
	ck_assert_uint_gt(vs->total.ns, 0);
	ck_assert_uint_eq(reasons, vs->total.ns);
	/* Every exit but the INTR made an access. */
	ck_assert_uint_eq(devs, vs->total.ns - vs->reason[KVM_EXIT_INTR].ns);
	ck_assert_uint_eq(addrs, devs);
	ck_assert_uint_eq(vs->exit_cycles, 0);
	stats_destroy(&s);
}
END_TEST

START_TEST(string_io_charges_the_first_access)
{
	struct stats s;
	struct vcpu_stats *vs;

	ck_assert_int_eq(stats_init(&s, 1), 0);
	vs = &s.vcpu[0];
	/* rep outsb: one exit, four accesses */
	stats_run_enter(vs);
	stats_run_exit(vs, KVM_EXIT_IO);
	for (int i = 0; i < 4; i++)
		stats_io(vs, STATS_PIO, "serial", 0x3f8, true);
	stats_run_enter(vs);
	ck_assert_uint_eq(vs->total.count, 1);
	ck_assert_uint_eq(find_addr(vs, STATS_PIO, 0x3f8, true)->b.count, 4);
	ck_assert_uint_eq(find_addr(vs, STATS_PIO, 0x3f8, true)->b.ns, vs->total.ns);
	stats_destroy(&s);
}
END_TEST

START_TEST(address_table_is_bounded)
{
	struct stats s;
	struct vcpu_stats *vs;
	uint64_t in_slots = 0;
	unsigned used = 0;

	ck_assert_int_eq(stats_init(&s, 1), 0);
	vs = &s.vcpu[0];
	for (uint64_t port = 0; port < 1000; port++)
		one_exit(vs, KVM_EXIT_IO, STATS_PIO, "dev", port, port & 1);
	for (unsigned i = 0; i < STATS_ADDR_SLOTS; i++) {
		if (vs->addr[i].bus == STATS_FREE)
			continue;
		used++;
		in_slots += vs->addr[i].b.count;
		ck_assert_uint_lt(vs->addr[i].addr, 1000);
	}
	ck_assert_uint_le(used, STATS_ADDR_SLOTS);
	ck_assert_uint_gt(used, STATS_ADDR_SLOTS / 2); /* the probes do find room */
	ck_assert_uint_gt(vs->addr_other.count, 0);
	ck_assert_uint_eq(in_slots + vs->addr_other.count, 1000);
	/* An address that has a slot keeps counting there, full table or not. */
	for (unsigned i = 0; i < STATS_ADDR_SLOTS; i++) {
		struct stats_addr *a = &vs->addr[i];
		uint64_t before;

		if (a->bus == STATS_FREE)
			continue;
		before = a->b.count;
		one_exit(vs, KVM_EXIT_IO, STATS_PIO, "dev", a->addr, a->write);
		ck_assert_uint_eq(a->b.count, before + 1);
		break;
	}
	stats_destroy(&s);
}
END_TEST

START_TEST(device_table_is_bounded)
{
	struct stats s;
	struct vcpu_stats *vs;
	char names[100][16];

	ck_assert_int_eq(stats_init(&s, 1), 0);
	vs = &s.vcpu[0];
	for (int i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "dev%d", i);
		one_exit(vs, KVM_EXIT_MMIO, STATS_MMIO, names[i], 0x1000 * i, false);
	}
	ck_assert_uint_eq(vs->nr_dev, STATS_DEVS);
	ck_assert_str_eq(vs->dev[STATS_DEVS].name, "other");
	ck_assert_uint_eq(vs->dev[STATS_DEVS].rd.count, 100 - STATS_DEVS);
	ck_assert_uint_eq(find_dev(vs, "dev0")->rd.count, 1);
	stats_destroy(&s);
}
END_TEST

/* A reboot frees the region names; the same name at a new address matches. */
START_TEST(reboot_keeps_counting)
{
	struct stats s;
	struct vcpu vcpus[2] = { 0 };
	struct vm vm = { .vcpus = vcpus, .nr_vcpus = 2 };
	char name1[] = "serial", name2[] = "serial";

	ck_assert_int_eq(stats_init(&s, 2), 0);
	stats_attach(&s, &vm);
	ck_assert_ptr_eq(vm.stats, &s);
	ck_assert_ptr_eq(vcpus[1].stats, &s.vcpu[1]);
	one_exit(vcpus[1].stats, KVM_EXIT_IO, STATS_PIO, name1, 0x3f8, true);
	memset(name1, 'x', 5); /* the old VM's name is gone */

	memset(&vm, 0, sizeof(vm));
	memset(vcpus, 0, sizeof(vcpus));
	vm.vcpus = vcpus;
	vm.nr_vcpus = 2;
	stats_attach(&s, &vm);
	one_exit(vcpus[1].stats, KVM_EXIT_IO, STATS_PIO, name2, 0x3f8, true);
	ck_assert_uint_eq(s.boots, 2);
	ck_assert_uint_eq(s.vcpu[1].nr_dev, 1);
	ck_assert_uint_eq(find_dev(&s.vcpu[1], "serial")->wr.count, 2);
	ck_assert_uint_eq(s.vcpu[0].total.count, 0);

	stats_attach(NULL, &vm); /* --no-stats */
	ck_assert_ptr_null(vm.stats);
	ck_assert_ptr_null(vcpus[0].stats);
	stats_destroy(&s);
}
END_TEST

START_TEST(reason_names)
{
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_IO), "io");
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_MMIO), "mmio");
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_INTR), "intr");
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_HLT), "hlt");
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_SYSTEM_EVENT), "system_event");
	ck_assert_str_eq(stats_reason_name(KVM_EXIT_SHUTDOWN), "shutdown");
	ck_assert_str_eq(stats_reason_name(1000), "other");
	ck_assert_str_eq(stats_reason_name(STATS_NR_REASONS - 2), "other");
}
END_TEST

static char *render(const struct stats *s, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(stats_print(f, s, json), 0);
	fclose(f);
	return buf;
}

/* The row of the by-address table for bus/address/dir: its count, or -1. */
static long long text_addr_count(const char *text, const char *bus, const char *addr,
				 const char *dir)
{
	const char *line = text;

	while (line && *line) {
		char b[16], a[32], d[16];
		unsigned long long n;

		if (sscanf(line, " %15s %31s %15s %llu", b, a, d, &n) == 4 &&
		    !strcmp(b, bus) && !strcmp(a, addr) && !strcmp(d, dir))
			return n;
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return -1;
}

START_TEST(text_summary)
{
	struct stats s;
	char *text;

	ck_assert_int_eq(stats_init(&s, 2), 0);
	s.boots = 1;
	count_guest(&s.vcpu[0]);
	one_exit(&s.vcpu[1], KVM_EXIT_IO, STATS_PIO, NULL, 0x80, true);
	text = render(&s, false);
	ck_assert_ptr_nonnull(strstr(text, "exit statistics: 2 vCPUs, 1 boot,"));
	/* Both vCPUs' writes to 0x80 in one row. */
	ck_assert_int_eq(text_addr_count(text, "pio", "0x0080", "out"), 1001);
	ck_assert_int_eq(text_addr_count(text, "pio", "0x03f8", "out"), 12);
	ck_assert_int_eq(text_addr_count(text, "pio", "0x03fd", "in"), 1);
	ck_assert_int_eq(text_addr_count(text, "mmio", "0xfebf1000", "write"), 1);
	/* reason, vcpu0, vcpu1, total */
	ck_assert_ptr_nonnull(strstr(text, "\n  io "));
	{
		const char *io = strstr(text, "\n  io ");
		unsigned long long v0, v1, tot;

		ck_assert_int_eq(sscanf(io, " io %llu %llu %llu", &v0, &v1, &tot), 3);
		ck_assert_uint_eq(v0, 1013);
		ck_assert_uint_eq(v1, 1);
		ck_assert_uint_eq(tot, 1014);
	}
	ck_assert_ptr_nonnull(strstr(text, "\n  intr "));
	ck_assert_ptr_null(strstr(text, "\n  hlt ")); /* reasons never seen: no row */
	{
		const char *row = strstr(text, "\n  unassigned ");
		unsigned long long rd, wr;
		char bus[8];

		ck_assert_ptr_nonnull(row);
		ck_assert_int_eq(sscanf(row, " unassigned %7s %llu %llu", bus, &rd, &wr), 3);
		ck_assert_str_eq(bus, "pio");
		ck_assert_uint_eq(rd, 0);
		ck_assert_uint_eq(wr, 1001);
	}
	free(text);
	stats_destroy(&s);
}
END_TEST

/* Brackets balance outside strings, and strings end: a JSON parser's first look. */
static void assert_json_shape(const char *j)
{
	int depth = 0;
	bool in_str = false;

	for (const char *p = j; *p; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = false;
			continue;
		}
		if (*p == '"')
			in_str = true;
		else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			ck_assert_int_ge(--depth, 0);
	}
	ck_assert(!in_str);
	ck_assert_int_eq(depth, 0);
	ck_assert_ptr_eq(strchr(j, '\n'), j + strlen(j) - 1); /* one line */
}

START_TEST(json_summary)
{
	struct stats s;
	char *j;

	ck_assert_int_eq(stats_init(&s, 2), 0);
	s.boots = 3;
	count_guest(&s.vcpu[0]);
	one_exit(&s.vcpu[1], KVM_EXIT_IO, STATS_PIO, "we\"ird\\name\n", 0x99, false);
	j = render(&s, true);
	assert_json_shape(j);
	ck_assert_ptr_nonnull(strstr(j, "{\"vcpus\":2,\"boots\":3,"));
	ck_assert_ptr_nonnull(strstr(j, "\"exits\":{\"count\":1016,"));
	ck_assert_ptr_nonnull(strstr(j, "\"by_reason\":{\"io\":{\"count\":1014,"));
	ck_assert_ptr_nonnull(strstr(j, "{\"vcpu\":1,\"count\":1,"));
	ck_assert_ptr_nonnull(strstr(j, "{\"bus\":\"pio\",\"address\":128,\"dir\":\"out\","
				     "\"count\":1000,"));
	ck_assert_ptr_nonnull(strstr(j, "{\"name\":\"serial\",\"bus\":\"pio\",\"reads\":1,"
				     "\"writes\":12,"));
	ck_assert_ptr_nonnull(strstr(j, "\"we\\\"ird\\\\name\\u000a\""));
	ck_assert_ptr_nonnull(strstr(j, "\"addresses_other\":{\"count\":0,"));
	free(j);
	stats_destroy(&s);
}
END_TEST

START_TEST(empty_summary)
{
	struct stats s;
	char *text, *j;

	ck_assert_int_eq(stats_init(&s, 1), 0);
	text = render(&s, false);
	ck_assert_ptr_nonnull(strstr(text, "\n  all "));
	j = render(&s, true);
	assert_json_shape(j);
	ck_assert_ptr_nonnull(strstr(j, "\"devices\":[]"));
	free(text);
	free(j);
	stats_destroy(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");

	tcase_add_test(tc, counts_by_reason_device_and_address);
	tcase_add_test(tc, time_goes_where_the_exit_went);
	tcase_add_test(tc, string_io_charges_the_first_access);
	tcase_add_test(tc, address_table_is_bounded);
	tcase_add_test(tc, device_table_is_bounded);
	tcase_add_test(tc, reboot_keeps_counting);
	tcase_add_test(tc, reason_names);
	tcase_add_test(tc, text_summary);
	tcase_add_test(tc, json_summary);
	tcase_add_test(tc, empty_summary);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
