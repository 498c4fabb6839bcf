// SPDX-License-Identifier: MIT
/*
 * PCI configuration mechanism #1 and config-space masks, via the port bus;
 * BARs mapped on a real MMIO bus; capabilities; INTx routing.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "vmm/bus.h"
#include "tests/unit/unit.h"

static struct bus bus;
static struct bus mmio;
static struct pci_host host;

/* GSI levels the host drove, and how often. */
static int gsi_level[24];
static int gsi_calls[24];

static void record_irq(void *ctx, unsigned gsi, int level)
{
	ck_assert_ptr_eq(ctx, &host);
	ck_assert_uint_lt(gsi, 24);
	gsi_level[gsi] = level;
	gsi_calls[gsi]++;
}

/*
 * Devices in the tests below are static: they must outlive the host, which
 * teardown() destroys after the test function has returned.
 */
static void setup(void)
{
	bus_init(&bus, "pio");
	bus_init(&mmio, "mmio");
	pci_host_init(&host);
	ck_assert_int_eq(pci_host_register(&host, &bus), 0);
	memset(gsi_level, 0, sizeof(gsi_level));
	memset(gsi_calls, 0, sizeof(gsi_calls));
}

static void teardown(void)
{
	pci_host_destroy(&host);
	ck_assert_uint_eq(mmio.nr, 0); /* every BAR unmapped */
	bus_destroy(&mmio);
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
	static struct pci_device d, dup, bad;

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
	static struct pci_device d;

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
	static struct pci_device d;
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


/* A device's BAR handler: the last access it saw. */
struct bar_log {
	uint64_t offset;
	unsigned size;
	uint64_t val;
	int reads, writes;
};

static void bar_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct bar_log *log = opaque;

	log->offset = offset;
	log->size = size;
	log->reads++;
	bus_put(data, size, 0x1122334455667788ULL);
}

static void bar_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	struct bar_log *log = opaque;

	log->offset = offset;
	log->size = size;
	log->val = bus_get(data, size);
	log->writes++;
}

static const struct bus_ops bar_ops = {
	.read = bar_read,
	.write = bar_write,
};

/* A region on the MMIO bus at exactly [base, base + len)? */
static bool mapped(uint64_t base, uint64_t len)
{
	const struct bus_region *r = bus_find(&mmio, base);

	return r && r->base == base && r->len == len;
}

START_TEST(bar_sizing_all_types)
{
	static struct pci_device d, big;

	pci_device_init(&d, 6, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x80, PCI_BAR_IO), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 1, 0x100000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 2, 0x2000, PCI_BAR_MEM64), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 4, 0x10, PCI_BAR_PREFETCH), 0);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);

	/* As Linux's __pci_read_base(): save, all-ones, read, restore. */
	for (unsigned r = 0x10; r < 0x28; r += 4) {
		uint32_t orig = cfg_read(6, 0, r, 4);

		cfg_write(6, 0, r, 4, 0xffffffff);
		switch (r) {
		case 0x10:
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0xffffff81);
			break;
		case 0x14:
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0xfff00000);
			break;
		case 0x18: /* 64-bit: type 10b in bits 2:1 */
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0xffffe004);
			break;
		case 0x1c: /* its upper half */
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0xffffffff);
			break;
		case 0x20:
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0xfffffff8);
			break;
		default: /* not implemented */
			ck_assert_uint_eq(cfg_read(6, 0, r, 4), 0);
		}
		cfg_write(6, 0, r, 4, orig);
		ck_assert_uint_eq(cfg_read(6, 0, r, 4), orig);
	}

	/* A 64-bit BAR over 4 GiB sizes in its upper half, but cannot fit. */
	pci_device_init(&big, 7, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&big, 0, 1ULL << 33,
					    PCI_BAR_MEM64 | PCI_BAR_PREFETCH), 0);
	ck_assert_uint_eq(big.wmask[0x10] | big.wmask[0x11] << 8 |
			  big.wmask[0x12] << 16 | (uint32_t)big.wmask[0x13] << 24, 0);
	ck_assert_uint_eq(pci_config_get(&big, 0x14, 4) | 0, 0);
	ck_assert_uint_eq(big.wmask[0x14], 0xfe);
	ck_assert_int_eq(pci_host_add(&host, &big), -ENOSPC);
	ck_assert_uint_eq(cfg_read(7, 0, 0x00, 4), 0xffffffff);

	/* Ops only for memory BARs that exist. */
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 0, &bar_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 3, &bar_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 5, &bar_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 6, &bar_ops, NULL), -EINVAL);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 1, &bar_ops, NULL), 0);
}
END_TEST

START_TEST(bars_preassigned)
{
	static const struct {
		unsigned bar;
		uint64_t size;
		uint32_t flags;
	} decl[] = {
		{ 0, 0x1000, 0 },
		{ 1, 0x40, PCI_BAR_IO },
		{ 2, 0x100000, PCI_BAR_MEM64 | PCI_BAR_PREFETCH },
		{ 4, 0x10, 0 },
		{ 5, 0x4000, 0 },
	};
	static struct pci_device d[3];
	uint64_t lo[16], hi[16];
	unsigned n = 0;

	for (unsigned i = 0; i < 3; i++) {
		pci_device_init(&d[i], 1 + i, 0, 0x1af4, 0x1041, 0x020000);
		for (unsigned j = 0; j < sizeof(decl) / sizeof(decl[0]); j++)
			ck_assert_int_eq(pci_device_set_bar(&d[i], decl[j].bar,
							    decl[j].size << i,
							    decl[j].flags), 0);
		ck_assert_int_eq(pci_host_add(&host, &d[i]), 0);
	}
	for (unsigned i = 0; i < 3; i++) {
		for (unsigned j = 0; j < sizeof(decl) / sizeof(decl[0]); j++) {
			unsigned reg = 0x10 + 4 * decl[j].bar;
			uint64_t size = decl[j].size << i;
			uint64_t a = pci_device_bar_address(&d[i], decl[j].bar);
			uint32_t low = cfg_read(1 + i, 0, reg, 4);

			if (decl[j].flags & PCI_BAR_IO) {
				/* The guest places I/O BARs itself. */
				ck_assert_uint_eq(low, PCI_BAR_IO);
				continue;
			}
			ck_assert_uint_eq(low & 0xf, decl[j].flags);
			if (decl[j].flags & PCI_BAR_MEM64)
				ck_assert_uint_eq(cfg_read(1 + i, 0, reg + 4, 4), 0);
			ck_assert_uint_ge(a, PCI_MMIO_WINDOW_BASE);
			ck_assert_uint_le(a + size, PCI_MMIO_WINDOW_END);
			ck_assert_uint_eq(a % size, 0);
			lo[n] = a;
			hi[n] = a + size;
			n++;
		}
	}
	ck_assert_uint_eq(n, 12);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			ck_assert(hi[i] <= lo[j] || hi[j] <= lo[i]);
	/* Nothing decodes before the guest sets Memory Space. */
	ck_assert_uint_eq(mmio.nr, 0);
}
END_TEST

START_TEST(memory_space_enable_maps)
{
	static struct pci_device d;
	struct bar_log log = { 0 };
	uint64_t a, q = 0;
	uint32_t v = 0;

	pci_host_set_mmio(&host, &mmio);
	pci_device_init(&d, 2, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 1, 0x1000, 0), 0); /* no ops */
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 0, &bar_ops, &log), 0);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	a = pci_device_bar_address(&d, 0);
	ck_assert(bus_find(&mmio, a) == NULL);

	cfg_write(2, 0, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert_uint_eq(cfg_read(2, 0, 0x04, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert(mapped(a, 0x1000));
	ck_assert_uint_eq(mmio.nr, 1); /* a BAR without a handler stays off */
	ck_assert(bus_read(&mmio, a + 0x10, &v, 4));
	ck_assert_uint_eq(v, 0x55667788);
	ck_assert_uint_eq(log.offset, 0x10);
	ck_assert_uint_eq(log.size, 4);
	q = 0xabcdef;
	ck_assert(bus_write(&mmio, a + 0xff8, &q, 8));
	ck_assert_uint_eq(log.offset, 0xff8);
	ck_assert_uint_eq(log.val, 0xabcdef);

	/* Writing other command bits keeps it; clearing MSE unmaps. */
	cfg_write(2, 0, 0x04, 1, PCI_COMMAND_MEMORY);
	ck_assert(mapped(a, 0x1000));
	cfg_write(2, 0, 0x04, 2, PCI_COMMAND_MASTER);
	ck_assert(bus_find(&mmio, a) == NULL);
	ck_assert_uint_eq(mmio.nr, 0);
	log.reads = 0;
	ck_assert(!bus_read(&mmio, a, &v, 4));
	ck_assert_int_eq(log.reads, 0);
	cfg_write(2, 0, 0x04, 4, PCI_COMMAND_MEMORY); /* dword write */
	ck_assert(mapped(a, 0x1000));
}
END_TEST

START_TEST(bar_moves)
{
	static struct pci_device d;
	struct bar_log log0 = { 0 }, log2 = { 0 };
	uint64_t a0, a2;
	uint32_t v;

	pci_host_set_mmio(&host, &mmio);
	pci_device_init(&d, 9, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 2, 0x4000, PCI_BAR_MEM64), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 0, &bar_ops, &log0), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 2, &bar_ops, &log2), 0);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	a0 = pci_device_bar_address(&d, 0);
	a2 = pci_device_bar_address(&d, 2);
	cfg_write(9, 0, 0x04, 2, PCI_COMMAND_MEMORY);
	ck_assert(mapped(a0, 0x1000));
	ck_assert(mapped(a2, 0x4000));

	/* Move BAR0 while decoding: the old range goes, the new one comes. */
	cfg_write(9, 0, 0x10, 4, 0xd0000000);
	ck_assert(bus_find(&mmio, a0) == NULL);
	ck_assert(mapped(0xd0000000, 0x1000));
	ck_assert(bus_read(&mmio, 0xd0000004, &v, 4));
	ck_assert_uint_eq(log0.offset, 4);

	/* Byte writes build the address up: each step remaps or unmaps. */
	cfg_write(9, 0, 0x13, 1, 0xe0);
	ck_assert(mapped(0xe0000000, 0x1000));
	ck_assert_uint_eq(mmio.nr, 2);

	/* The 64-bit BAR: above 4 GiB leaves the window, back in maps. */
	cfg_write(9, 0, 0x1c, 4, 0x1);
	ck_assert(bus_find(&mmio, a2) == NULL);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(9, 0, 0x18, 4, 0xd8000000);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(9, 0, 0x1c, 4, 0);
	ck_assert(mapped(0xd8000000, 0x4000));
	ck_assert(bus_read(&mmio, 0xd8003ffc, &v, 4));
	ck_assert_uint_eq(log2.offset, 0x3ffc);

	/* Zero, or the window's edges, are not decoded. */
	cfg_write(9, 0, 0x10, 4, 0);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(9, 0, 0x10, 4, PCI_MMIO_WINDOW_END - 0x1000);
	ck_assert(mapped(PCI_MMIO_WINDOW_END - 0x1000, 0x1000));
	cfg_write(9, 0, 0x10, 4, PCI_MMIO_WINDOW_END);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(9, 0, 0x10, 4, PCI_MMIO_WINDOW_BASE - 0x1000);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(9, 0, 0x10, 4, PCI_MMIO_WINDOW_BASE);
	ck_assert(mapped(PCI_MMIO_WINDOW_BASE, 0x1000));
}
END_TEST

START_TEST(sizing_never_maps)
{
	static struct pci_device d;
	struct bar_log log = { 0 };
	uint64_t a0, a2;

	pci_host_set_mmio(&host, &mmio);
	pci_device_init(&d, 10, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 2, 0x8000000, PCI_BAR_MEM64), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 0, &bar_ops, &log), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&d, 2, &bar_ops, &log), 0);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	a0 = pci_device_bar_address(&d, 0);
	a2 = pci_device_bar_address(&d, 2);

	/* Linux turns decoding off to size; nothing may map meanwhile. */
	for (unsigned r = 0x10; r < 0x20; r += 4) {
		uint32_t orig = cfg_read(10, 0, r, 4);

		cfg_write(10, 0, r, 4, 0xffffffff);
		ck_assert_uint_eq(mmio.nr, 0);
		cfg_write(10, 0, r, 4, orig);
	}
	ck_assert_uint_eq(mmio.nr, 0);

	/* A guest that sizes with decoding on loses the BAR meanwhile. */
	cfg_write(10, 0, 0x04, 2, PCI_COMMAND_MEMORY);
	ck_assert_uint_eq(mmio.nr, 2);
	cfg_write(10, 0, 0x10, 4, 0xffffffff);
	ck_assert_uint_eq(mmio.nr, 1);
	ck_assert(bus_find(&mmio, 0xfffff000) == NULL);
	cfg_write(10, 0, 0x10, 4, a0);
	ck_assert(mapped(a0, 0x1000));
	/* 64-bit, one half at a time: all-ones low, then high. */
	cfg_write(10, 0, 0x18, 4, 0xffffffff);
	ck_assert_uint_eq(mmio.nr, 1);
	ck_assert(bus_find(&mmio, 0xf8000000) == NULL);
	cfg_write(10, 0, 0x1c, 4, 0xffffffff);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(10, 0, 0x18, 4, a2);
	ck_assert_uint_eq(mmio.nr, 1);
	cfg_write(10, 0, 0x1c, 4, 0);
	ck_assert(mapped(a2, 0x8000000));
	ck_assert(mapped(a0, 0x1000));
}
END_TEST

START_TEST(overlapping_bars)
{
	static struct pci_device a, b;
	struct bar_log la = { 0 }, lb = { 0 };
	uint64_t aa, ab;
	uint32_t v;

	pci_host_set_mmio(&host, &mmio);
	pci_device_init(&a, 1, 0, 0x1af4, 0x1041, 0x020000);
	pci_device_init(&b, 2, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&a, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&b, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&a, 0, &bar_ops, &la), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&b, 0, &bar_ops, &lb), 0);
	ck_assert_int_eq(pci_host_add(&host, &a), 0);
	ck_assert_int_eq(pci_host_add(&host, &b), 0);
	aa = pci_device_bar_address(&a, 0);
	ab = pci_device_bar_address(&b, 0);
	cfg_write(1, 0, 0x04, 2, PCI_COMMAND_MEMORY);
	cfg_write(2, 0, 0x04, 2, PCI_COMMAND_MEMORY);
	ck_assert_uint_eq(mmio.nr, 2);

	/* b moves onto a: a keeps the range, b decodes nowhere. */
	cfg_write(2, 0, 0x10, 4, aa);
	ck_assert_uint_eq(mmio.nr, 1);
	ck_assert(bus_read(&mmio, aa, &v, 4));
	ck_assert_int_eq(la.reads, 1);
	ck_assert_int_eq(lb.reads, 0);
	/* a moves away: b gets the range. */
	cfg_write(1, 0, 0x10, 4, ab);
	ck_assert_uint_eq(mmio.nr, 2);
	ck_assert(bus_read(&mmio, aa, &v, 4));
	ck_assert_int_eq(lb.reads, 1);
	ck_assert(bus_read(&mmio, ab, &v, 4));
	ck_assert_int_eq(la.reads, 2);
}
END_TEST

START_TEST(capability_chain)
{
	static const uint8_t vndr[] = { 14, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
					0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t pm[] = { 0x03, 0x00, 0x00, 0x00, 0x00, 0x00 };
	static struct pci_device d;
	uint8_t off1 = 0, off2 = 0, p, off;
	unsigned n = 0;

	pci_device_init(&d, 11, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_uint_eq(pci_find_capability(&d, PCI_CAP_ID_VNDR), 0);
	ck_assert_int_eq(pci_add_capability(&d, PCI_CAP_ID_VNDR, vndr, sizeof(vndr),
					    &off1), 0);
	ck_assert_int_eq(pci_add_capability(&d, 0x01, pm, sizeof(pm), &off2), 0);
	ck_assert_uint_eq(off1, 0x40);
	ck_assert_uint_eq(off2, 0x50); /* 0x40 + 14, dword aligned */
	pci_device_set_wmask(&d, off2 + 4, 2, 0x0003); /* PMCSR power state */
	ck_assert_int_eq(pci_host_add(&host, &d), 0);

	ck_assert(cfg_read(11, 0, 0x06, 2) & PCI_STATUS_CAP_LIST);
	ck_assert(!(cfg_read(0, 0, 0x06, 2) & PCI_STATUS_CAP_LIST));
	/* Walk it as a guest does. */
	for (p = cfg_read(11, 0, 0x34, 1); p; p = cfg_read(11, 0, p + 1, 1)) {
		ck_assert_uint_eq(p & 3, 0);
		ck_assert_uint_ge(p, 0x40);
		if (n == 0) {
			ck_assert_uint_eq(p, off1);
			ck_assert_uint_eq(cfg_read(11, 0, p, 1), PCI_CAP_ID_VNDR);
			for (unsigned i = 0; i < sizeof(vndr); i++)
				ck_assert_uint_eq(cfg_read(11, 0, p + 2 + i, 1), vndr[i]);
		} else {
			ck_assert_uint_eq(p, off2);
			ck_assert_uint_eq(cfg_read(11, 0, p, 1), 0x01);
			ck_assert_uint_eq(cfg_read(11, 0, p + 2, 2), 0x0003);
		}
		ck_assert_uint_lt(++n, 3);
	}
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(pci_find_capability(&d, PCI_CAP_ID_VNDR), off1);
	ck_assert_uint_eq(pci_find_capability(&d, 0x01), off2);
	ck_assert_uint_eq(pci_find_capability(&d, PCI_CAP_ID_MSIX), 0);

	/* Read-only, except what the owner opened up. */
	cfg_write(11, 0, 0x34, 1, 0x80);
	cfg_write(11, 0, off1, 4, 0xffffffff);
	cfg_write(11, 0, off2 + 4, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(11, 0, 0x34, 1), off1);
	ck_assert_uint_eq(cfg_read(11, 0, off1, 4),
			  PCI_CAP_ID_VNDR | off2 << 8 | 14 << 16 | 0xaau << 24);
	ck_assert_uint_eq(cfg_read(11, 0, off2 + 4, 2), 0x0003);
	cfg_write(11, 0, off2 + 4, 2, 0);
	ck_assert_uint_eq(cfg_read(11, 0, off2 + 4, 2), 0);

	/* Config space runs out. */
	for (n = 0; pci_add_capability(&d, 0x0a, NULL, 30, &off) == 0; n++)
		ck_assert_uint_le(off + 32u, 256);
	ck_assert_uint_eq(n, 5); /* 0x58 + 5 * 32 = 0xf8: 8 bytes left */
	ck_assert_int_eq(pci_add_capability(&d, 0x0a, NULL, 6, &off), 0);
	ck_assert_uint_eq(off, 0xf8);
	ck_assert_int_eq(pci_add_capability(&d, 0x0a, NULL, 0, &off), -ENOSPC);
	ck_assert_int_eq(pci_add_capability(&d, 0x0a, NULL, 300, &off), -EINVAL);
}
END_TEST

START_TEST(intx_routing)
{
	static struct pci_device d;

	pci_host_set_irq(&host, record_irq, &host);
	pci_device_init(&d, 3, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_intx_pin(&d, 5), -EINVAL);
	ck_assert_int_eq(pci_device_set_intx_pin(&d, PCI_INTX_PIN_A), 0);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);

	/* Slot 3, INTA#: GSI 16 + (3 + 1 - 1) % 4 = 19, as the _PRT says. */
	ck_assert_uint_eq(pci_intx_gsi(3, 1), 19);
	ck_assert_uint_eq(cfg_read(3, 0, 0x3d, 1), 1);
	ck_assert_uint_eq(cfg_read(3, 0, 0x3c, 1), 19);
	cfg_write(3, 0, 0x3c, 2, 0x040b); /* line writable, pin read-only */
	ck_assert_uint_eq(cfg_read(3, 0, 0x3c, 2), 0x010b);

	pci_device_set_intx(&d, 1);
	ck_assert_int_eq(gsi_level[19], 1);
	ck_assert_int_eq(gsi_calls[19], 1);
	ck_assert(cfg_read(3, 0, 0x06, 2) & PCI_STATUS_INTERRUPT);
	ck_assert(cfg_read(3, 0, 0x04, 4) & PCI_STATUS_INTERRUPT << 16);
	ck_assert(cfg_read(3, 0, 0x06, 1) & PCI_STATUS_INTERRUPT);
	pci_device_set_intx(&d, 1); /* no second edge */
	ck_assert_int_eq(gsi_calls[19], 1);
	cfg_write(3, 0, 0x06, 2, 0xffff); /* read-only, not W1C */
	ck_assert(cfg_read(3, 0, 0x06, 2) & PCI_STATUS_INTERRUPT);

	/* INTx Disable drops the pin; Interrupt Status still shows it. */
	cfg_write(3, 0, 0x04, 2, PCI_COMMAND_INTX_DISABLE);
	ck_assert_uint_eq(cfg_read(3, 0, 0x04, 2), PCI_COMMAND_INTX_DISABLE);
	ck_assert_int_eq(gsi_level[19], 0);
	ck_assert(cfg_read(3, 0, 0x06, 2) & PCI_STATUS_INTERRUPT);
	pci_device_set_intx(&d, 0);
	pci_device_set_intx(&d, 1);
	ck_assert_int_eq(gsi_calls[19], 2);
	cfg_write(3, 0, 0x05, 1, 0);
	ck_assert_int_eq(gsi_level[19], 1);
	ck_assert_int_eq(gsi_calls[19], 3);
	pci_device_set_intx(&d, 0);
	ck_assert_int_eq(gsi_level[19], 0);
	ck_assert(!(cfg_read(3, 0, 0x06, 2) & PCI_STATUS_INTERRUPT));
	for (unsigned g = 0; g < 24; g++)
		ck_assert_int_eq(gsi_calls[g], g == 19 ? 4 : 0);
}
END_TEST

START_TEST(intx_shared_gsi)
{
	static struct pci_device a, b, nopin;

	pci_host_set_irq(&host, record_irq, &host);
	pci_device_init(&a, 1, 0, 0x1af4, 0x1041, 0x020000);
	pci_device_init(&b, 5, 0, 0x1af4, 0x1041, 0x020000);
	pci_device_init(&nopin, 6, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_intx_pin(&a, 2), 0);
	ck_assert_int_eq(pci_device_set_intx_pin(&b, 2), 0);
	ck_assert_int_eq(pci_host_add(&host, &a), 0);
	ck_assert_int_eq(pci_host_add(&host, &b), 0);
	ck_assert_int_eq(pci_host_add(&host, &nopin), 0);
	ck_assert_uint_eq(pci_intx_gsi(1, 2), 18);
	ck_assert_uint_eq(pci_intx_gsi(5, 2), 18);

	/* The line is the OR of both devices. */
	pci_device_set_intx(&a, 1);
	pci_device_set_intx(&b, 1);
	ck_assert_int_eq(gsi_level[18], 1);
	pci_device_set_intx(&a, 0);
	ck_assert_int_eq(gsi_level[18], 1);
	pci_device_set_intx(&b, 0);
	ck_assert_int_eq(gsi_level[18], 0);
	ck_assert_int_eq(gsi_calls[18], 2);

	/* One device's INTx Disable does not mute the other. */
	pci_device_set_intx(&a, 1);
	pci_device_set_intx(&b, 1);
	cfg_write(1, 0, 0x04, 2, PCI_COMMAND_INTX_DISABLE);
	ck_assert_int_eq(gsi_level[18], 1);
	pci_device_set_intx(&b, 0);
	ck_assert_int_eq(gsi_level[18], 0);

	pci_device_set_intx(&nopin, 1); /* no pin: nothing */
	ck_assert_uint_eq(cfg_read(6, 0, 0x3d, 1), 0);
	for (unsigned g = 0; g < 24; g++)
		if (g != 18)
			ck_assert_int_eq(gsi_calls[g], 0);
}
END_TEST

START_TEST(device_command_and_status)
{
	static struct pci_device d;

	pci_device_init(&d, 12, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_host_add(&host, &d), 0);
	cfg_write(12, 0, 0x04, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(12, 0, 0x04, 2),
			  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			  PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
			  PCI_COMMAND_INTX_DISABLE);
	ck_assert_uint_eq(cfg_read(12, 0, 0x06, 2), 0);
	d.config[PCI_STATUS + 1] = 0x80; /* detected parity error */
	cfg_write(12, 0, 0x06, 2, 0x0100);
	ck_assert_uint_eq(cfg_read(12, 0, 0x06, 2), 0x8000);
	cfg_write(12, 0, 0x06, 2, 0x8000);
	ck_assert_uint_eq(cfg_read(12, 0, 0x06, 2), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pci");
	TCase *tc = tcase_create("core");

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
	tcase_add_test(tc, bar_sizing_all_types);
	tcase_add_test(tc, bars_preassigned);
	tcase_add_test(tc, memory_space_enable_maps);
	tcase_add_test(tc, bar_moves);
	tcase_add_test(tc, sizing_never_maps);
	tcase_add_test(tc, overlapping_bars);
	tcase_add_test(tc, capability_chain);
	tcase_add_test(tc, intx_routing);
	tcase_add_test(tc, intx_shared_gsi);
	tcase_add_test(tc, device_command_and_status);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
