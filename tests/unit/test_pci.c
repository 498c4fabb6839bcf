// SPDX-License-Identifier: MIT
/* PCI configuration mechanism #1 and config-space masks, via the port bus. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "vmm/bus.h"

static struct bus bus;
static struct pci_host host;

static void setup(void)
{
	bus_init(&bus, "pio");
	pci_host_init(&host);
	ck_assert_int_eq(pci_host_register(&host, &bus), 0);
}

static void teardown(void)
{
	pci_host_destroy(&host);
	bus_destroy(&bus);
}

static uint32_t cfg_addr(unsigned b, unsigned d, unsigned f, unsigned reg)
{
	return 0x80000000u | b << 16 | d << 11 | f << 8 | (reg & 0xfc);
}

static void select_reg(unsigned b, unsigned d, unsigned f, unsigned reg)
{
	uint32_t a = cfg_addr(b, d, f, reg);

	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 4);
}

/* Like Linux's pci_conf1_read(): the data port carries the low address bits. */
static uint32_t cfg_read(unsigned d, unsigned f, unsigned reg, unsigned size)
{
	uint32_t v = 0;

	select_reg(0, d, f, reg);
	bus_read(&bus, PCI_CONFIG_DATA + (reg & 3), &v, size);
	return v;
}

static void cfg_write(unsigned d, unsigned f, unsigned reg, unsigned size,
		      uint32_t v)
{
	select_reg(0, d, f, reg);
	bus_write(&bus, PCI_CONFIG_DATA + (reg & 3), &v, size);
}

START_TEST(host_bridge_ids)
{
	ck_assert_uint_eq(cfg_read(0, 0, 0x00, 4), 0x12378086);
	ck_assert_uint_eq(cfg_read(0, 0, 0x00, 2), 0x8086);
	ck_assert_uint_eq(cfg_read(0, 0, 0x02, 2), 0x1237);
	ck_assert_uint_eq(cfg_read(0, 0, 0x00, 1), 0x86);
	ck_assert_uint_eq(cfg_read(0, 0, 0x01, 1), 0x80);
	ck_assert_uint_eq(cfg_read(0, 0, 0x02, 1), 0x37);
	ck_assert_uint_eq(cfg_read(0, 0, 0x03, 1), 0x12);
	ck_assert_uint_eq(cfg_read(0, 0, 0x08, 4) >> 8, 0x060000);
	ck_assert_uint_eq(cfg_read(0, 0, 0x0a, 2), 0x0600);
	ck_assert_uint_eq(cfg_read(0, 0, 0x0b, 1), 0x06);
	ck_assert_uint_eq(cfg_read(0, 0, 0x0e, 1), 0x00); /* header type 0 */
}
END_TEST

START_TEST(absent_reads_all_ones)
{
	uint32_t v = 0x12345678;

	ck_assert_uint_eq(cfg_read(5, 0, 0x00, 4), 0xffffffff);
	ck_assert_uint_eq(cfg_read(31, 7, 0xfc, 4), 0xffffffff);
	ck_assert_uint_eq(cfg_read(0, 1, 0x00, 4), 0xffffffff);
	ck_assert_uint_eq(cfg_read(5, 0, 0x02, 2), 0xffff);
	select_reg(1, 0, 0, 0); /* bus 1 */
	bus_read(&bus, PCI_CONFIG_DATA, &v, 4);
	ck_assert_uint_eq(v, 0xffffffff);
	bus_write(&bus, PCI_CONFIG_DATA, &v, 4); /* dropped */
	cfg_write(5, 0, 0x04, 2, 0x0007);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), PCI_COMMAND_MEMORY);
}
END_TEST

START_TEST(enable_bit_clear)
{
	uint32_t a = cfg_addr(0, 0, 0, 0) & ~0x80000000u, v = 0;

	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 4);
	bus_read(&bus, PCI_CONFIG_DATA, &v, 4);
	ck_assert_uint_eq(v, 0xffffffff);
	a |= 0x04;
	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 4);
	v = 0x0007;
	bus_write(&bus, PCI_CONFIG_DATA, &v, 2);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), PCI_COMMAND_MEMORY);
}
END_TEST

START_TEST(config_address_latch)
{
	uint32_t a = 0xffffffff, v = 0;
	uint8_t b = 0x01;

	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 4);
	bus_read(&bus, PCI_CONFIG_ADDRESS, &v, 4);
	ck_assert_uint_eq(v, 0x80fffffc);
	/* Linux's pci_check_type1(): a byte at 0xCFB must not latch. */
	a = 0x80000000;
	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 4);
	bus_write(&bus, PCI_CONFIG_ADDRESS + 3, &b, 1);
	bus_write(&bus, PCI_CONFIG_ADDRESS, &a, 2);
	bus_read(&bus, PCI_CONFIG_ADDRESS, &v, 4);
	ck_assert_uint_eq(v, 0x80000000);
	v = 0;
	bus_read(&bus, PCI_CONFIG_ADDRESS, &v, 2);
	ck_assert_uint_eq(v, 0xffff);
}
END_TEST

START_TEST(read_only_fields)
{
	cfg_write(0, 0, 0x00, 4, 0);
	cfg_write(0, 0, 0x08, 4, 0xffffffff);
	cfg_write(0, 0, 0x0e, 1, 0x80);
	cfg_write(0, 0, 0x10, 4, 0xffffffff); /* no BARs */
	ck_assert_uint_eq(cfg_read(0, 0, 0x00, 4), 0x12378086);
	ck_assert_uint_eq(cfg_read(0, 0, 0x08, 4) >> 8, 0x060000);
	ck_assert_uint_eq(cfg_read(0, 0, 0x0e, 1), 0x00);
	ck_assert_uint_eq(cfg_read(0, 0, 0x10, 4), 0);
}
END_TEST

START_TEST(command_writable)
{
	cfg_write(0, 0, 0x04, 2, 0x0007);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), 0x0007);
	cfg_write(0, 0, 0x04, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), 0x0547);
	cfg_write(0, 0, 0x04, 1, 0x00);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), 0x0500);
	cfg_write(0, 0, 0x3c, 1, 0x0b); /* interrupt line */
	ck_assert_uint_eq(cfg_read(0, 0, 0x3c, 1), 0x0b);
}
END_TEST

START_TEST(status_write_one_to_clear)
{
	uint16_t st = cfg_read(0, 0, 0x06, 2);

	host.bridge.config[PCI_STATUS + 1] |= 0x20; /* received master abort */
	ck_assert_uint_eq(cfg_read(0, 0, 0x06, 2), st | 0x2000);
	/* A dword write of the command with zero status clears nothing. */
	cfg_write(0, 0, 0x04, 4, 0x00000006);
	ck_assert_uint_eq(cfg_read(0, 0, 0x06, 2), st | 0x2000);
	cfg_write(0, 0, 0x06, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(0, 0, 0x06, 2), st);
}
END_TEST

START_TEST(odd_sizes_and_offsets)
{
	uint64_t q = 0;
	uint32_t v = 0;

	select_reg(0, 0, 0, 0);
	bus_read(&bus, PCI_CONFIG_DATA + 1, &v, 4); /* runs past 0xCFF */
	ck_assert_uint_eq(v, 0xff123780);
	bus_read(&bus, PCI_CONFIG_DATA + 3, &v, 2);
	ck_assert_uint_eq(v & 0xffff, 0xff12);
	bus_read(&bus, PCI_CONFIG_DATA, &q, 8);
	ck_assert_uint_eq(q, 0xffffffff12378086ULL);
	q = ~0ULL;
	bus_write(&bus, PCI_CONFIG_DATA + 3, &q, 8);
	bus_write(&bus, PCI_CONFIG_DATA, &q, 8);
	bus_write(&bus, PCI_CONFIG_ADDRESS + 1, &q, 4);
	bus_read(&bus, PCI_CONFIG_ADDRESS + 2, &q, 8);
	ck_assert_uint_eq(cfg_read(0, 0, 0x00, 4), 0x12378086);
	/* Unaligned word inside the dword. */
	ck_assert_uint_eq(cfg_read(0, 0, 0x01, 2), 0x3780);
	select_reg(0, 0, 0, 0xfc);
	bus_read(&bus, PCI_CONFIG_DATA + 2, &v, 4);
	bus_write(&bus, PCI_CONFIG_DATA + 3, &v, 4);
}
END_TEST

START_TEST(second_device_at_slot_3)
{
	struct pci_device d, dup, bad;

	pci_device_init(&d, 3, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_uint_eq(cfg_read(3, 0, 0x00, 4), 0xffffffff);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	ck_assert_uint_eq(cfg_read(3, 0, 0x00, 4), 0x10411af4);
	ck_assert_uint_eq(cfg_read(3, 0, 0x0b, 1), 0x02);
	ck_assert_uint_eq(cfg_read(3, 1, 0x00, 4), 0xffffffff);
	cfg_write(3, 0, 0x04, 2, PCI_COMMAND_MASTER);
	ck_assert_uint_eq(d.config[PCI_COMMAND], PCI_COMMAND_MASTER);
	ck_assert_uint_eq(cfg_read(0, 0, 0x04, 2), PCI_COMMAND_MEMORY);

	pci_device_init(&dup, 3, 0, 0x8086, 0x100e, 0x020000);
	ck_assert_int_eq(pci_host_add(&host, &dup), -EEXIST);
	pci_device_init(&bad, 32, 0, 0x8086, 0x100e, 0x020000);
	ck_assert_int_eq(pci_host_add(&host, &bad), -EINVAL);
	pci_device_init(&bad, 4, 8, 0x8086, 0x100e, 0x020000);
	ck_assert_int_eq(pci_host_add(&host, &bad), -EINVAL);
	pci_device_init(&bad, 4, 0, 0x8086, 0x100e, 0x020000);
	bad.bus = 1;
	ck_assert_int_eq(pci_host_add(&host, &bad), -EINVAL);
}
END_TEST

START_TEST(bar_sizing)
{
	struct pci_device d;

	pci_device_init(&d, 4, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 1, 0x40, PCI_BAR_IO), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 2, 0x4000,
					    PCI_BAR_MEM64 | PCI_BAR_PREFETCH), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 5, 0x4000, PCI_BAR_MEM64), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar(&d, 4, 0x3000, 0), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar(&d, 6, 0x1000, 0), -EINVAL);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);

	for (unsigned r = 0x10; r < 0x28; r += 4)
		cfg_write(4, 0, r, 4, 0xffffffff);
	ck_assert_uint_eq(cfg_read(4, 0, 0x10, 4), 0xfffff000);
	ck_assert_uint_eq(cfg_read(4, 0, 0x14, 4), 0xffffffc1);
	ck_assert_uint_eq(cfg_read(4, 0, 0x18, 4), 0xffffc00c);
	ck_assert_uint_eq(cfg_read(4, 0, 0x1c, 4), 0xffffffff);
	ck_assert_uint_eq(cfg_read(4, 0, 0x20, 4), 0);

	cfg_write(4, 0, 0x10, 4, 0xc0001000);
	cfg_write(4, 0, 0x14, 4, 0x0000c040);
	cfg_write(4, 0, 0x18, 4, 0xe0000000);
	cfg_write(4, 0, 0x1c, 4, 0x00000001);
	ck_assert_uint_eq(pci_device_bar_address(&d, 0), 0xc0001000);
	ck_assert_uint_eq(pci_device_bar_address(&d, 1), 0xc040);
	ck_assert_uint_eq(pci_device_bar_address(&d, 2), 0x1e0000000ULL);
}
END_TEST

struct hook_log {
	unsigned offset, size;
	uint32_t val;
	int writes;
};

static void hook_read(struct pci_device *d, unsigned offset, unsigned size,
		      uint32_t *val)
{
	(void)d;
	if (offset == 0x40 && size == 4)
		*val = 0xcafef00d;
}

static void hook_write(struct pci_device *d, unsigned offset, unsigned size,
		       uint32_t val)
{
	struct hook_log *log = d->opaque;

	log->offset = offset;
	log->size = size;
	log->val = val;
	log->writes++;
}

static const struct pci_device_ops hook_ops = {
	.config_read = hook_read,
	.config_write = hook_write,
};

START_TEST(device_hooks)
{
	struct pci_device d;
	struct hook_log log = { 0 };

	pci_device_init(&d, 7, 0, 0x1af4, 0x1041, 0x020000);
	d.ops = &hook_ops;
	d.opaque = &log;
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	ck_assert_uint_eq(cfg_read(7, 0, 0x40, 4), 0xcafef00d);
	ck_assert_uint_eq(cfg_read(7, 0, 0x40, 2), 0);
	cfg_write(7, 0, 0x06, 2, 0xabcd);
	ck_assert_int_eq(log.writes, 1);
	ck_assert_uint_eq(log.offset, 0x06);
	ck_assert_uint_eq(log.size, 2);
	ck_assert_uint_eq(log.val, 0xabcd);
	/* The part of a wide access inside the dword still reaches the hook. */
	select_reg(0, 7, 0, 0x10);
	bus_write(&bus, PCI_CONFIG_DATA + 2, &log.val, 4);
	ck_assert_uint_eq(log.offset, 0x12);
	ck_assert_uint_eq(log.size, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pci");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, host_bridge_ids);
	tcase_add_test(tc, absent_reads_all_ones);
	tcase_add_test(tc, enable_bit_clear);
	tcase_add_test(tc, config_address_latch);
	tcase_add_test(tc, read_only_fields);
	tcase_add_test(tc, command_writable);
	tcase_add_test(tc, status_write_one_to_clear);
	tcase_add_test(tc, odd_sizes_and_offsets);
	tcase_add_test(tc, second_device_at_slot_3);
	tcase_add_test(tc, bar_sizing);
	tcase_add_test(tc, device_hooks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
