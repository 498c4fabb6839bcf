// SPDX-License-Identifier: MIT
/*
 * MSI-X through the guest's eyes: the capability via configuration
 * mechanism #1 on a port bus, the table and PBA via a real MMIO bus, in a
 * BAR shared with the device's own registers.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/msix.h"
#include "devices/pci.h"
#include "vmm/bus.h"
#include "tests/unit/unit.h"

#define SLOT 2
#define NVEC 70 /* two PBA qwords */
#define TABLE 0x2000
#define PBA 0x3000
#define BAR_SIZE 0x4000

static struct bus pio, mmio;
static struct pci_host host;
static struct pci_device dev;
static struct msix msix;

/* What the device's own BAR handler saw. */
static int dev_reads, dev_writes;
static uint64_t dev_offset;

/* What the VMM's callbacks saw. */
#define LOG_MAX 256
static struct {
	uint64_t addr;
	uint32_t data;
} sent[LOG_MAX];
static unsigned nsent;
static unsigned changed[LOG_MAX];
static unsigned nchanged;
static int gsi_level[24];

static void dev_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	(void)opaque;
	dev_reads++;
	dev_offset = offset;
	memset(data, 0xab, size);
}

static void dev_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	(void)opaque;
	(void)data;
	(void)size;
	dev_writes++;
	dev_offset = offset;
}

static const struct bus_ops dev_ops = {
	.read = dev_read,
	.write = dev_write,
};

static int deliver(void *ctx, uint64_t addr, uint32_t data)
{
	ck_assert_ptr_eq(ctx, &msix);
	ck_assert_uint_lt(nsent, LOG_MAX);
	sent[nsent].addr = addr;
	sent[nsent].data = data;
	nsent++;
	return 0;
}

static void vector_changed(void *ctx, unsigned vec)
{
	struct msix_msg msg;

	ck_assert_ptr_eq(ctx, &msix);
	ck_assert_uint_lt(vec, NVEC);
	/* Callbacks run unlocked: calling back in must not deadlock. */
	ck_assert_int_eq(msix_vector_get(&msix, vec, &msg), 0);
	if (nchanged < LOG_MAX)
		changed[nchanged] = vec;
	nchanged++;
}

static const struct msix_ops vmm_ops = {
	.deliver = deliver,
	.vector_changed = vector_changed,
};

static void record_irq(void *ctx, unsigned gsi, int level)
{
	(void)ctx;
	gsi_level[gsi] = level;
}

static void cfg_write(unsigned reg, unsigned size, uint32_t v)
{
	uint32_t a = 0x80000000u | SLOT << 11 | (reg & 0xfc);

	bus_write(&pio, PCI_CONFIG_ADDRESS, &a, 4);
	bus_write(&pio, PCI_CONFIG_DATA + (reg & 3), &v, size);
}

static uint32_t cfg_read(unsigned reg, unsigned size)
{
	uint32_t a = 0x80000000u | SLOT << 11 | (reg & 0xfc), v = 0;

	bus_write(&pio, PCI_CONFIG_ADDRESS, &a, 4);
	bus_read(&pio, PCI_CONFIG_DATA + (reg & 3), &v, size);
	return v;
}

static uint64_t bar_base(void)
{
	return pci_device_bar_address(&dev, 0);
}

static uint64_t rd(uint64_t offset, unsigned size)
{
	uint64_t v = 0;

	ck_assert(bus_read(&mmio, bar_base() + offset, &v, size));
	return v;
}

static void wr(uint64_t offset, unsigned size, uint64_t v)
{
	ck_assert(bus_write(&mmio, bar_base() + offset, &v, size));
}

static uint8_t cap(void)
{
	uint8_t p = cfg_read(PCI_CAPABILITY_LIST, 1);

	while (p && cfg_read(p, 1) != PCI_CAP_ID_MSIX)
		p = cfg_read(p + 1, 1);
	ck_assert_uint_ne(p, 0);
	return p;
}

static void set_control(uint16_t bits)
{
	cfg_write(cap() + 2, 2, bits);
}

/* Programs vector vec with a recognisable message. */
static void program(unsigned vec)
{
	uint64_t e = TABLE + vec * 16;

	wr(e + 0, 4, 0xfee00000 | vec << 12);
	wr(e + 4, 4, 0);
	wr(e + 8, 4, 0x4000 | vec);
}

static void set_vector_mask(unsigned vec, bool masked)
{
	wr(TABLE + vec * 16 + 12, 4, masked);
}

static void setup(void)
{
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	pci_host_init(&host);
	ck_assert_int_eq(pci_host_register(&host, &pio), 0);
	pci_host_set_mmio(&host, &mmio);
	pci_host_set_irq(&host, record_irq, NULL);

	pci_device_init(&dev, SLOT, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&dev, 0, BAR_SIZE, 0), 0);
	ck_assert_int_eq(pci_device_set_bar_ops(&dev, 0, &dev_ops, NULL), 0);
	ck_assert_int_eq(pci_device_set_intx_pin(&dev, PCI_INTX_PIN_A), 0);
	ck_assert_int_eq(msix_init(&msix, &dev, NVEC, 0, TABLE, PBA), 0);
	msix_set_ops(&msix, &vmm_ops, &msix);
	ck_assert_int_eq(pci_host_add(&host, &dev), 0);
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

	dev_reads = dev_writes = 0;
	nsent = nchanged = 0;
	memset(gsi_level, 0, sizeof(gsi_level));
}

static void teardown(void)
{
	pci_host_destroy(&host);
	msix_destroy(&msix);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

START_TEST(capability)
{
	uint8_t c = cap();

	ck_assert(cfg_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	ck_assert_uint_eq(c, msix.cap);
	ck_assert_uint_eq(cfg_read(c + 2, 2), NVEC - 1);
	ck_assert_uint_eq(cfg_read(c + 4, 4), TABLE | 0);
	ck_assert_uint_eq(cfg_read(c + 8, 4), PBA | 0);
	ck_assert_uint_eq(cfg_read(c + 1, 1), 0); /* last */

	/* Only Enable and Function Mask are writable. */
	cfg_write(c, 4, 0xffffffff);
	cfg_write(c + 4, 4, 0xffffffff);
	cfg_write(c + 8, 4, 0);
	ck_assert_uint_eq(cfg_read(c, 4),
			  PCI_CAP_ID_MSIX | (uint32_t)(0xc000 | (NVEC - 1)) << 16);
	ck_assert_uint_eq(cfg_read(c + 4, 4), TABLE);
	ck_assert_uint_eq(cfg_read(c + 8, 4), PBA);
	ck_assert(msix_enabled(&msix));
}
END_TEST

START_TEST(enable_bit)
{
	ck_assert(!msix_enabled(&msix));
	program(1);
	set_vector_mask(1, false);
	ck_assert_int_eq(msix_notify(&msix, 1), -EAGAIN); /* off: use INTx */
	ck_assert_uint_eq(nsent, 0);
	ck_assert_uint_eq(rd(PBA, 8), 0);

	nchanged = 0;
	set_control(MSIX_CTRL_ENABLE);
	ck_assert(msix_enabled(&msix));
	ck_assert_uint_eq(nchanged, NVEC); /* every vector's mask changed */
	ck_assert_int_eq(msix_notify(&msix, 1), 0);
	ck_assert_uint_eq(nsent, 1);
	ck_assert_uint_eq(sent[0].addr, 0xfee01000);
	ck_assert_uint_eq(sent[0].data, 0x4001);

	/* Rewriting the same value changes nothing. */
	nchanged = 0;
	set_control(MSIX_CTRL_ENABLE);
	ck_assert_uint_eq(nchanged, 0);
	/* A byte write of the upper half works too. */
	cfg_write(msix.cap + 3, 1, 0);
	ck_assert(!msix_enabled(&msix));
	ck_assert_int_eq(msix_notify(&msix, 1), -EAGAIN);
}
END_TEST

START_TEST(table_read_write)
{
	struct msix_msg msg;

	/* Reset state: zero messages, every vector masked. */
	for (unsigned v = 0; v < NVEC; v++) {
		ck_assert_uint_eq(rd(TABLE + v * 16, 8), 0);
		ck_assert_uint_eq(rd(TABLE + v * 16 + 8, 4), 0);
		ck_assert_uint_eq(rd(TABLE + v * 16 + 12, 4), 1);
	}
	ck_assert_uint_eq(nchanged, 0);

	wr(TABLE + 5 * 16, 4, 0xfee0300f); /* bits 1:0 read as zero */
	wr(TABLE + 5 * 16 + 4, 4, 0x12345678);
	wr(TABLE + 5 * 16 + 8, 4, 0xdeadbeef);
	wr(TABLE + 5 * 16 + 12, 4, 0xfffffffe); /* reserved bits: zero */
	ck_assert_uint_eq(rd(TABLE + 5 * 16, 4), 0xfee0300c);
	ck_assert_uint_eq(rd(TABLE + 5 * 16 + 4, 4), 0x12345678);
	ck_assert_uint_eq(rd(TABLE + 5 * 16, 8), 0x12345678fee0300cULL);
	ck_assert_uint_eq(rd(TABLE + 5 * 16 + 8, 8), 0xdeadbeef);
	ck_assert_uint_eq(nchanged, 4);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(changed[i], 5);
	ck_assert_int_eq(msix_vector_get(&msix, 5, &msg), 0);
	ck_assert_uint_eq(msg.addr, 0x12345678fee0300cULL);
	ck_assert_uint_eq(msg.data, 0xdeadbeef);
	ck_assert(msg.masked); /* MSI-X is off */

	/* Qword writes, as Linux may do. */
	wr(TABLE + 69 * 16, 8, 0x00000000fee01004ULL);
	wr(TABLE + 69 * 16 + 8, 8, 0x0000000100000041ULL);
	ck_assert_uint_eq(rd(TABLE + 69 * 16, 4), 0xfee01004);
	ck_assert_uint_eq(rd(TABLE + 69 * 16 + 8, 4), 0x41);
	ck_assert_uint_eq(rd(TABLE + 69 * 16 + 12, 4), 1);
	/* Same value again: no change reported. */
	nchanged = 0;
	wr(TABLE + 69 * 16 + 8, 8, 0x0000000100000041ULL);
	ck_assert_uint_eq(nchanged, 0);

	/* None of this reached the device's own handler. */
	ck_assert_int_eq(dev_reads, 0);
	ck_assert_int_eq(dev_writes, 0);
	/* Its registers still do. */
	ck_assert_uint_eq(rd(0x10, 4), 0xabababab);
	ck_assert_uint_eq(dev_offset, 0x10);
	wr(TABLE - 4, 4, 1);
	ck_assert_uint_eq(dev_offset, TABLE - 4);
	rd(TABLE + NVEC * 16, 4); /* just past the table */
	ck_assert_uint_eq(dev_offset, TABLE + NVEC * 16);
	rd(PBA + 16, 4); /* just past the PBA */
	ck_assert_uint_eq(dev_offset, PBA + 16);
	ck_assert_int_eq(dev_reads, 3);
}
END_TEST

START_TEST(masked_vector_pends)
{
	set_control(MSIX_CTRL_ENABLE);
	program(3);
	ck_assert_int_eq(msix_notify(&msix, 3), MSIX_PENDING); /* masked at reset */
	ck_assert_int_eq(msix_notify(&msix, 3), MSIX_PENDING);
	ck_assert_uint_eq(nsent, 0);
	ck_assert_uint_eq(rd(PBA, 8), 1u << 3);
	ck_assert_uint_eq(rd(PBA, 4), 1u << 3);
	ck_assert_uint_eq(rd(PBA + 4, 4), 0);

	/* Unmasking sends it once and clears the pending bit. */
	nchanged = 0;
	set_vector_mask(3, false);
	ck_assert_uint_eq(nchanged, 1);
	ck_assert_uint_eq(changed[0], 3);
	ck_assert_uint_eq(nsent, 1);
	ck_assert_uint_eq(sent[0].addr, 0xfee03000);
	ck_assert_uint_eq(sent[0].data, 0x4003);
	ck_assert_uint_eq(rd(PBA, 8), 0);

	/* Unmasked: straight out. */
	ck_assert_int_eq(msix_notify(&msix, 3), 0);
	ck_assert_uint_eq(nsent, 2);
	/* Masked again, then unmasked with nothing pending: nothing sent. */
	set_vector_mask(3, true);
	set_vector_mask(3, false);
	ck_assert_uint_eq(nsent, 2);

	/* A qword write of data + control unmasks with the new data. */
	set_vector_mask(3, true);
	ck_assert_int_eq(msix_notify(&msix, 3), MSIX_PENDING);
	wr(TABLE + 3 * 16 + 8, 8, 0x0000000000005555ULL);
	ck_assert_uint_eq(nsent, 3);
	ck_assert_uint_eq(sent[2].data, 0x5555);

	/* Messages with the vector's mask bit set never go out. */
	ck_assert_int_eq(msix_notify(&msix, 7), MSIX_PENDING);
	ck_assert_uint_eq(nsent, 3);
}
END_TEST

START_TEST(function_mask)
{
	struct msix_msg msg;

	set_control(MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK);
	for (unsigned v = 0; v < NVEC; v++) {
		program(v);
		set_vector_mask(v, false);
	}
	ck_assert_int_eq(msix_vector_get(&msix, 1, &msg), 0);
	ck_assert(msg.masked);
	ck_assert_int_eq(msix_notify(&msix, 66), MSIX_PENDING);
	ck_assert_int_eq(msix_notify(&msix, 1), MSIX_PENDING);
	ck_assert_uint_eq(nsent, 0);
	ck_assert_uint_eq(rd(PBA, 8), 1u << 1);
	ck_assert_uint_eq(rd(PBA + 8, 8), 1u << 2);
	ck_assert_uint_eq(rd(PBA + 8, 4), 1u << 2);
	ck_assert_uint_eq(rd(PBA + 12, 4), 0);
	/* Setting or clearing the Function Mask leaves vector masks alone. */
	ck_assert_uint_eq(rd(TABLE + 16 + 12, 4), 0);

	nchanged = 0;
	set_control(MSIX_CTRL_ENABLE);
	ck_assert_uint_eq(nchanged, NVEC);
	ck_assert_uint_eq(nsent, 2);
	ck_assert_uint_eq(sent[0].data, 0x4001);
	ck_assert_uint_eq(sent[1].data, 0x4000 | 66);
	ck_assert_uint_eq(rd(PBA, 8), 0);
	ck_assert_uint_eq(rd(PBA + 8, 8), 0);
	ck_assert_int_eq(msix_vector_get(&msix, 1, &msg), 0);
	ck_assert(!msg.masked);
	ck_assert_uint_eq(msg.addr, 0xfee01000);

	/* Pending while masked per vector stays pending across an fmask flip. */
	set_vector_mask(9, true);
	ck_assert_int_eq(msix_notify(&msix, 9), MSIX_PENDING);
	set_control(MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK);
	set_control(MSIX_CTRL_ENABLE);
	ck_assert_uint_eq(nsent, 2);
	ck_assert_uint_eq(rd(PBA, 8), 1u << 9);
	set_vector_mask(9, false);
	ck_assert_uint_eq(nsent, 3);
}
END_TEST

START_TEST(bad_accesses)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };

	set_control(MSIX_CTRL_ENABLE);
	program(0);
	wr(TABLE + 12, 4, 0);
	ck_assert_int_eq(msix_notify(&msix, NVEC), -EINVAL);
	ck_assert_int_eq(msix_notify(&msix, ~0u), -EINVAL);
	ck_assert_int_eq(msix_vector_get(&msix, NVEC, &(struct msix_msg){ 0 }),
			 -EINVAL);

	/* Every size at every byte of the table and PBA: no crash, and only
	 * aligned dwords and qwords take effect. */
	for (unsigned s = 0; s < 4; s++) {
		for (uint64_t o = TABLE; o < PBA + 16; o++) {
			unsigned size = sizes[s];
			bool legal = (size == 4 || size == 8) && o % size == 0;
			uint64_t v = ~0ULL;

			if (o >= TABLE + NVEC * 16 && o < PBA)
				continue; /* the device's own registers */
			if (o < PBA && o - TABLE < 16)
				continue; /* keep vector 0 intact */
			ck_assert(bus_read(&mmio, bar_base() + o, &v, size));
			if (!legal)
				ck_assert_uint_eq(v & (~0ULL >> (64 - 8 * size)), 0);
			if (o >= PBA)
				wr(o, size, ~0ULL); /* read-only */
			else if (!legal)
				wr(o, size, ~0ULL);
		}
	}
	ck_assert_int_eq(dev_reads, 0);
	ck_assert_int_eq(dev_writes, 0);
	ck_assert_uint_eq(rd(PBA, 8), 0);
	ck_assert_uint_eq(rd(PBA + 8, 8), 0);
	for (unsigned v = 1; v < NVEC; v++) {
		ck_assert_uint_eq(rd(TABLE + v * 16, 8), 0);
		ck_assert_uint_eq(rd(TABLE + v * 16 + 8, 8), 1ULL << 32);
	}
	ck_assert_int_eq(msix_notify(&msix, 0), 0);
	ck_assert_uint_eq(sent[0].addr, 0xfee00000);

	/* A qword straddling the BAR's end reaches the device, bounded. */
	wr(BAR_SIZE - 4, 8, 0);
	ck_assert_int_eq(dev_writes, 1);
}
END_TEST

START_TEST(msix_blocks_intx)
{
	pci_device_set_intx(&dev, 1);
	ck_assert_int_eq(gsi_level[pci_intx_gsi(SLOT, 1)], 1);
	set_control(MSIX_CTRL_ENABLE);
	ck_assert_int_eq(gsi_level[pci_intx_gsi(SLOT, 1)], 0);
	pci_device_set_intx(&dev, 1);
	ck_assert_int_eq(gsi_level[pci_intx_gsi(SLOT, 1)], 0);
	set_control(0);
	ck_assert_int_eq(gsi_level[pci_intx_gsi(SLOT, 1)], 1);
}
END_TEST

START_TEST(bar_unmapped_with_mse_off)
{
	uint64_t v;

	cfg_write(PCI_COMMAND, 2, 0);
	ck_assert(!bus_read(&mmio, bar_base() + TABLE, &v, 4));
	cfg_write(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	ck_assert(bus_read(&mmio, bar_base() + TABLE, &v, 4));
}
END_TEST

/* MSI-X in a BAR of its own, without device ops, still decodes. */
START_TEST(dedicated_bar)
{
	static struct pci_device d2;
	static struct msix m2;
	uint64_t base, v = 0;
	uint32_t a = 0x80000000u | 4 << 11 | PCI_COMMAND, cmd = PCI_COMMAND_MEMORY;

	pci_device_init(&d2, 4, 0, 0x1af4, 0x1042, 0x010000);
	ck_assert_int_eq(pci_device_set_bar(&d2, 2, 0x1000, PCI_BAR_MEM64), 0);
	ck_assert_int_eq(msix_init(&m2, &d2, 1, 2, 0, 0x800), 0);
	ck_assert_int_eq(pci_host_add(&host, &d2), 0);
	bus_write(&pio, PCI_CONFIG_ADDRESS, &a, 4);
	bus_write(&pio, PCI_CONFIG_DATA, &cmd, 2);
	base = pci_device_bar_address(&d2, 2);
	ck_assert(bus_read(&mmio, base + 12, &v, 4));
	ck_assert_uint_eq(v, 1);
	ck_assert(bus_read(&mmio, base + 0x10, &v, 4)); /* nothing there */
	ck_assert_uint_eq(v, 0);
	ck_assert(bus_read(&mmio, base + 0x800, &v, 8));
	ck_assert_uint_eq(v, 0);
	pci_host_destroy(&host); /* before m2 goes */
	pci_host_init(&host);
	msix_destroy(&m2);
}
END_TEST

START_TEST(init_errors)
{
	static struct pci_device d;
	struct msix m, m2;

	pci_device_init(&d, 5, 0, 0x1af4, 0x1041, 0x020000);
	ck_assert_int_eq(pci_device_set_bar(&d, 0, 0x1000, 0), 0);
	ck_assert_int_eq(pci_device_set_bar(&d, 1, 0x100, PCI_BAR_IO), 0);
	ck_assert_int_eq(msix_init(&m, &d, 0, 0, 0, 0x800), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 2049, 0, 0, 0x800), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 4, 1, 0, 0x80), -EINVAL); /* I/O */
	ck_assert_int_eq(msix_init(&m, &d, 4, 2, 0, 0x80), -EINVAL); /* none */
	ck_assert_int_eq(msix_init(&m, &d, 4, 6, 0, 0x80), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 4, 0x80), -EINVAL); /* align */
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0, 0x81), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0, 0x38), -EINVAL); /* overlap */
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0x40, 0x78), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0xfc8, 0), -EINVAL); /* past end */
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0, 0x1000), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 2048, 0, 0, 0x800), -EINVAL);
	ck_assert_uint_eq(pci_find_capability(&d, PCI_CAP_ID_MSIX), 0);
	/* Table and PBA may touch; a BAR gets one MSI-X. */
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0xfb8, 0xff8), 0);
	ck_assert_uint_eq(pci_find_capability(&d, PCI_CAP_ID_MSIX), m.cap);
	ck_assert_ptr_eq(d.msix, &m);
	ck_assert_int_eq(msix_init(&m2, &d, 4, 0, 0, 0x800), -EINVAL);
	ck_assert_int_eq(msix_init(&m, &d, 4, 0, 0, 0x800), -EINVAL);
	ck_assert_ptr_nonnull(m.table); /* untouched by the failed calls */
	msix_destroy(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("msix");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, capability);
	tcase_add_test(tc, enable_bit);
	tcase_add_test(tc, table_read_write);
	tcase_add_test(tc, masked_vector_pends);
	tcase_add_test(tc, function_mask);
	tcase_add_test(tc, bad_accesses);
	tcase_add_test(tc, msix_blocks_intx);
	tcase_add_test(tc, bar_unmapped_with_mse_off);
	tcase_add_test(tc, dedicated_bar);
	tcase_add_test(tc, init_errors);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
