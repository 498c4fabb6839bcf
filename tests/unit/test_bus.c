// SPDX-License-Identifier: MIT
/* Bus dispatch and guest memory bounds: the two gates guest accesses pass. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"
#include "vmm/memory.h"
#include "tests/unit/unit.h"

struct fake_dev {
	uint64_t last_off;
	uint64_t last_val;
	unsigned last_size;
	int reads, writes;
};

static void fake_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->reads++;
	d->last_off = off;
	d->last_size = size;
	bus_put(data, size, 0x1100 + off);
}

static void fake_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->writes++;
	d->last_off = off;
	d->last_size = size;
	d->last_val = bus_get(data, size);
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

START_TEST(dispatch_by_offset)
{
	struct bus bus;
	struct fake_dev a = { 0 }, b = { 0 };
	uint8_t buf[4];
	uint32_t v = 0xdeadbeef;

	bus_init(&bus, "test");
	ck_assert_int_eq(bus_register(&bus, 0x3f8, 8, &fake_ops, &a, "a"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x70, 2, &fake_ops, &b, "b"), 0);
	ck_assert(bus_read(&bus, 0x3fd, buf, 1));
	ck_assert_int_eq(a.reads, 1);
	ck_assert_int_eq(a.last_off, 5);
	ck_assert_int_eq(buf[0], 0x05); /* low byte of 0x1105 */
	ck_assert(bus_write(&bus, 0x71, &v, 4));
	ck_assert_int_eq(b.writes, 1);
	ck_assert_int_eq(b.last_off, 1);
	ck_assert_int_eq(b.last_size, 4);
	ck_assert_uint_eq(b.last_val, 0xdeadbeef);
	ck_assert_int_eq(a.writes, 0);
	bus_destroy(&bus);
}
END_TEST

START_TEST(unmapped_reads_all_ones_and_counts)
{
	struct bus bus;
	uint32_t v = 0;

	bus_init(&bus, "test");
	ck_assert(!bus_read(&bus, 0x1234, &v, 4));
	ck_assert_uint_eq(v, 0xffffffff);
	ck_assert(!bus_write(&bus, 0x1234, &v, 2));
	ck_assert_uint_eq(bus.unhandled, 2);
	bus_destroy(&bus);
}
END_TEST

START_TEST(overlap_and_bad_ranges_refused)
{
	struct bus bus;
	struct fake_dev a = { 0 };

	bus_init(&bus, "test");
	ck_assert_int_eq(bus_register(&bus, 0x100, 0x10, &fake_ops, &a, "a"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x10f, 1, &fake_ops, &a, "b"), -EEXIST);
	ck_assert_int_eq(bus_register(&bus, 0xf8, 0x9, &fake_ops, &a, "c"), -EEXIST);
	ck_assert_int_eq(bus_register(&bus, 0xf0, 0x10, &fake_ops, &a, "d"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x110, 0x10, &fake_ops, &a, "e"), 0);
	ck_assert_int_eq(bus_register(&bus, 0x200, 0, &fake_ops, &a, "f"), -EINVAL);
	ck_assert_int_eq(bus_register(&bus, UINT64_MAX, 2, &fake_ops, &a, "g"), -EINVAL);
	ck_assert_str_eq(bus_find(&bus, 0x10f)->name, "a");
	ck_assert_str_eq(bus_find(&bus, 0xff)->name, "d");
	ck_assert_ptr_null(bus_find(&bus, 0x120));
	ck_assert_int_eq(bus_unregister(&bus, 0x100), 0);
	ck_assert_ptr_null(bus_find(&bus, 0x105));
	ck_assert_int_eq(bus_unregister(&bus, 0x100), -ENOENT);
	bus_destroy(&bus);
}
END_TEST

START_TEST(many_regions_stay_sorted)
{
	struct bus bus;
	struct fake_dev d = { 0 };

	bus_init(&bus, "test");
	/* Register in a scrambled order, more than the initial capacity. */
	for (int i = 0; i < 100; i++) {
		int slot = (i * 37) % 100;

		ck_assert_int_eq(bus_register(&bus, slot * 0x10, 0x10, &fake_ops, &d, "x"), 0);
	}
	for (size_t i = 1; i < bus.nr; i++)
		ck_assert(bus.regions[i - 1].base < bus.regions[i].base);
	for (int a = 0; a < 1000; a += 7)
		ck_assert_uint_eq(bus_find(&bus, a)->base, (uint64_t)(a & ~0xf));
	bus_destroy(&bus);
}
END_TEST

START_TEST(memory_low_only)
{
	struct guest_mem mem;

	ck_assert_int_eq(guest_mem_init(&mem, 128ULL << 20), 0);
	ck_assert_int_eq(mem.nr, 1);
	ck_assert_uint_eq(guest_mem_low_end(&mem), 128ULL << 20);
	ck_assert_ptr_nonnull(guest_ptr(&mem, 0, 4096));
	ck_assert_ptr_nonnull(guest_ptr(&mem, (128ULL << 20) - 1, 1));
	ck_assert_ptr_null(guest_ptr(&mem, (128ULL << 20) - 1, 2));
	ck_assert_ptr_null(guest_ptr(&mem, 128ULL << 20, 1));
	ck_assert_ptr_null(guest_ptr(&mem, 16, UINT64_MAX));
	ck_assert_ptr_null(guest_ptr(&mem, UINT64_MAX, 2));
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(memory_split_around_hole)
{
	struct guest_mem mem;
	uint64_t size = 3584ULL << 20;
	char buf[8] = "abcdefg";

	ck_assert_int_eq(guest_mem_init(&mem, size), 0);
	ck_assert_int_eq(mem.nr, 2);
	ck_assert_uint_eq(mem.regions[0].size + mem.regions[1].size, size);
	ck_assert_uint_eq(guest_mem_low_end(&mem), MEM_HOLE_START);
	ck_assert_uint_eq(mem.regions[1].gpa, MEM_HOLE_END);
	ck_assert_ptr_null(guest_ptr(&mem, MEM_HOLE_START, 1));
	ck_assert_ptr_null(guest_ptr(&mem, 0xfee00000, 4));
	/* A range that spans the hole is refused even though both ends are RAM. */
	ck_assert_ptr_null(guest_ptr(&mem, MEM_HOLE_START - 4, MEM_HOLE_END - MEM_HOLE_START + 8));
	ck_assert_int_eq(guest_write(&mem, MEM_HOLE_END + 100, buf, 8), 0);
	ck_assert_int_eq(guest_write(&mem, MEM_HOLE_END + size - MEM_HOLE_START - 4, buf, 8),
			 -EFAULT);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(guest_read(&mem, MEM_HOLE_END + 100, buf, 8), 0);
	ck_assert_str_eq(buf, "abcdefg");
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(memory_bad_sizes)
{
	struct guest_mem mem;

	ck_assert_int_eq(guest_mem_init(&mem, 0), -EINVAL);
	ck_assert_int_eq(guest_mem_init(&mem, 4097), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, dispatch_by_offset);
	tcase_add_test(tc, unmapped_reads_all_ones_and_counts);
	tcase_add_test(tc, overlap_and_bad_ranges_refused);
	tcase_add_test(tc, many_regions_stay_sorted);
	tcase_add_test(tc, memory_low_only);
	tcase_add_test(tc, memory_split_around_hole);
	tcase_add_test(tc, memory_bad_sizes);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
