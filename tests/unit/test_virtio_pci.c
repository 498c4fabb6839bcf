// SPDX-License-Identifier: MIT
/*
 * The virtio-pci transport driven as a guest driver would: through PCI
 * config space and BAR0, with a dummy device type behind it. No KVM here:
 * the VM has no fd, so kicks take the BAR path instead of an ioeventfd,
 * which is exactly the fallback this also checks.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/pci.h"
#include "virtio/pci.h"
#include "vmm/vm.h"
#include "tests/unit/unit.h"

static struct vm vm;
static struct virtio_dev dev;
static int activations, resets, kicks;
static uint8_t devcfg[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static void d_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned size)
{
	(void)v;
	memcpy(data, devcfg + off, size);
}

static int d_activate(struct virtio_dev *v)
{
	(void)v;
	activations++;
	return 0;
}

static void d_reset(struct virtio_dev *v)
{
	(void)v;
	resets++;
}

static void d_notify(struct virtio_dev *v, unsigned q)
{
	(void)v;
	(void)q;
	__atomic_fetch_add(&kicks, 1, __ATOMIC_SEQ_CST);
}

static const struct virtio_dev_ops dummy_ops = {
	.config_read = d_config_read,
	.activate = d_activate,
	.reset = d_reset,
	.queue_notify = d_notify,
};

static struct pci_host host;
static uint64_t bar0;

static void cfg_write(unsigned reg, uint32_t v, unsigned size)
{
	uint32_t addr = 0x80000000u | (1u << 11) | (reg & 0xfc);

	bus_write(&vm.pio, 0xcf8, &addr, 4);
	bus_write(&vm.pio, 0xcfc + (reg & 3), &v, size);
}

static uint32_t cfg_read(unsigned reg, unsigned size)
{
	uint32_t addr = 0x80000000u | (1u << 11) | (reg & 0xfc), v = 0;

	bus_write(&vm.pio, 0xcf8, &addr, 4);
	bus_read(&vm.pio, 0xcfc + (reg & 3), &v, size);
	return v;
}

static uint64_t rd(unsigned off, unsigned size)
{
	uint64_t v = 0;

	bus_read(&vm.mmio, bar0 + off, &v, size);
	return v;
}

static void wr(unsigned off, uint64_t v, unsigned size)
{
	bus_write(&vm.mmio, bar0 + off, &v, size);
}

static void setup(void)
{
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	bus_init(&vm.pio, "pio");
	bus_init(&vm.mmio, "mmio");
	pthread_mutex_init(&vm.routing.lock, NULL);
	ck_assert_int_eq(guest_mem_init(&vm.mem, 16 << 20), 0);
	ck_assert_int_eq(evloop_init(&vm.evloop, "test"), 0);
	pci_host_init(&host);
	pci_host_set_mmio(&host, &vm.mmio);
	ck_assert_int_eq(pci_host_register(&host, &vm.pio), 0);

	memset(&dev, 0, sizeof(dev));
	dev.ops = &dummy_ops;
	dev.device_id = VIRTIO_ID_BLOCK;
	dev.pci_class = 0x018000;
	dev.num_queues = 2;
	dev.queue_size = 64;
	dev.config_size = sizeof(devcfg);
	dev.features = VIRTIO_BIT(9) | VIRTIO_BIT(6);
	activations = resets = kicks = 0;
	ck_assert_int_eq(virtio_pci_init(&dev, &vm, &host, 1), 0);

	/* As Linux: keep the assigned BAR, enable memory decoding. */
	bar0 = cfg_read(0x10, 4) & ~0xfULL;
	ck_assert_uint_ne(bar0, 0);
	cfg_write(0x04, 0x6, 2);
	ck_assert_int_eq(evloop_start(&vm.evloop), 0);
}

static void teardown(void)
{
	evloop_stop(&vm.evloop);
	virtio_pci_stop(&dev);
	pci_host_destroy(&host);
	virtio_pci_free(&dev);
	evloop_destroy(&vm.evloop);
	guest_mem_destroy(&vm.mem);
	free(vm.routing.table);
	bus_destroy(&vm.mmio);
	bus_destroy(&vm.pio);
}

START_TEST(pci_identity_and_caps)
{
	unsigned cap, types = 0;

	ck_assert_uint_eq(cfg_read(0x00, 2), 0x1af4);
	ck_assert_uint_eq(cfg_read(0x02, 2), 0x1042);
	ck_assert_uint_eq(cfg_read(0x08, 4) >> 8, 0x018000);
	ck_assert_uint_ge(cfg_read(0x08, 1), 1);
	ck_assert(cfg_read(0x06, 2) & 0x10); /* capability list */
	for (cap = cfg_read(0x34, 1); cap; cap = cfg_read(cap + 1, 1))
		if (cfg_read(cap, 1) == 0x09)
			types |= 1u << cfg_read(cap + 3, 1);
	/* common, notify, ISR and device configuration */
	ck_assert_uint_eq(types, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4));
}
END_TEST

START_TEST(feature_negotiation)
{
	wr(0x00, 0, 4);
	ck_assert_uint_eq(rd(0x04, 4), (1u << 9) | (1u << 6) | (1u << 28) | (1u << 29));
	wr(0x00, 1, 4);
	ck_assert_uint_eq(rd(0x04, 4), 1); /* VERSION_1 */
	wr(0x00, 7, 4);
	ck_assert_uint_eq(rd(0x04, 4), 0);
	ck_assert_uint_eq(rd(0x12, 2), 2); /* num_queues */

	/* Asking for a bit that was not offered: FEATURES_OK does not stick. */
	wr(0x14, 1 | 2, 1);
	wr(0x08, 0, 4);
	wr(0x0c, (1u << 9) | (1u << 3), 4);
	wr(0x08, 1, 4);
	wr(0x0c, 1, 4);
	wr(0x14, 1 | 2 | 8, 1);
	ck_assert_uint_eq(rd(0x14, 1) & 8, 0);

	/* A legacy driver (no VERSION_1) fails too. */
	wr(0x14, 0, 1);
	wr(0x14, 1 | 2, 1);
	wr(0x08, 0, 4);
	wr(0x0c, 1u << 9, 4);
	wr(0x14, 1 | 2 | 8, 1);
	ck_assert_uint_eq(rd(0x14, 1) & 8, 0);

	/* A proper subset is accepted, and is exactly what was negotiated. */
	wr(0x14, 0, 1);
	wr(0x14, 1 | 2, 1);
	wr(0x08, 0, 4);
	wr(0x0c, (1u << 9) | (1u << 29), 4);
	wr(0x08, 1, 4);
	wr(0x0c, 1, 4);
	wr(0x14, 1 | 2 | 8, 1);
	ck_assert_uint_eq(rd(0x14, 1) & 8, 8);
	ck_assert_uint_eq(dev.driver_features, VIRTIO_BIT(9) | VIRTIO_BIT(29) | VIRTIO_BIT(32));
	ck_assert(virtio_has_feature(&dev, VIRTIO_F_EVENT_IDX));
	ck_assert(!virtio_has_feature(&dev, 6)); /* offered but not taken */
	ck_assert(!virtio_has_feature(&dev, VIRTIO_F_INDIRECT_DESC));
}
END_TEST

static void negotiate(void)
{
	wr(0x14, 0, 1);
	wr(0x14, 1 | 2, 1);
	wr(0x08, 1, 4);
	wr(0x0c, 1, 4);
	wr(0x14, 1 | 2 | 8, 1);
}

static void setup_queue(unsigned q, uint64_t base, unsigned size)
{
	wr(0x16, q, 2);
	wr(0x18, size, 2);
	/* Linux writes 64-bit addresses as two 32-bit halves. */
	wr(0x20, base, 4);
	wr(0x24, base >> 32, 4);
	wr(0x28, base + 0x1000, 4);
	wr(0x2c, 0, 4);
	wr(0x30, base + 0x2000, 8);
	wr(0x1c, 1, 2);
}

START_TEST(queue_setup_activate_and_kick)
{
	uint16_t notify = 0;

	negotiate();
	wr(0x16, 0, 2);
	ck_assert_uint_eq(rd(0x18, 2), 64);
	ck_assert_uint_eq(rd(0x1e, 2), 0);
	wr(0x16, 5, 2);
	ck_assert_uint_eq(rd(0x18, 2), 0); /* no such queue */
	setup_queue(0, 0x100000, 32);
	setup_queue(1, 0x200000, 64);
	wr(0x16, 0, 2);
	ck_assert_uint_eq(rd(0x1c, 2), 1);
	ck_assert_uint_eq(rd(0x18, 2), 32);
	ck_assert_uint_eq(rd(0x20, 8), 0x100000);
	ck_assert_uint_eq(dev.queues[0].vq.used_gpa, 0x102000);
	ck_assert_int_eq(activations, 0);
	wr(0x14, 1 | 2 | 8 | 4, 1);
	ck_assert_int_eq(activations, 1);
	ck_assert_uint_eq(rd(0x14, 1), 1 | 2 | 8 | 4);
	/* A driver cannot clear a bit to start the device twice, or to
	 * renegotiate features under it: bits stay on until a reset. */
	wr(0x14, 1 | 2, 1);
	ck_assert_uint_eq(rd(0x14, 1), 1 | 2 | 8 | 4);
	wr(0x08, 0, 4);
	wr(0x0c, 1u << 29, 4);
	wr(0x14, 1 | 2 | 8 | 4, 1);
	ck_assert_int_eq(activations, 1);
	ck_assert_uint_eq(dev.driver_features, VIRTIO_BIT(32));

	/* A kick by the notify region reaches the device on the event loop. */
	wr(0x3000 + 4, 1, 2);
	for (int i = 0; i < 200 && !__atomic_load_n(&kicks, __ATOMIC_SEQ_CST); i++)
		usleep(5000);
	ck_assert_int_eq(kicks, 1);
	(void)notify;

	/* Device config reads go to the device type; out of range reads 0. */
	ck_assert_uint_eq(rd(0x2000 + 2, 2), 0x0403);
	ck_assert_uint_eq(rd(0x2000 + 8, 4), 0);

	/* Writing 0 resets: the device is told, and everything reads back 0. */
	wr(0x14, 0, 1);
	ck_assert_int_eq(resets, 1);
	ck_assert_uint_eq(rd(0x14, 1), 0);
	wr(0x16, 0, 2);
	ck_assert_uint_eq(rd(0x1c, 2), 0);
	ck_assert_uint_eq(rd(0x18, 2), 64);
}
END_TEST

START_TEST(bad_queue_sets_needs_reset)
{
	negotiate();
	/* Rings beyond the end of the 16 MiB of RAM. */
	setup_queue(0, 0x7ff0000000ULL, 32);
	ck_assert_uint_eq(rd(0x14, 1) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
	wr(0x16, 0, 2);
	ck_assert_uint_eq(rd(0x1c, 2), 0);
	/* The driver cannot clear it; a reset does. */
	wr(0x14, 1 | 2 | 8, 1);
	ck_assert_uint_eq(rd(0x14, 1) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
	wr(0x14, 0, 1);
	ck_assert_uint_eq(rd(0x14, 1), 0);

	/* A size larger than offered, or not a power of two, is refused too. */
	negotiate();
	setup_queue(1, 0x100000, 128);
	ck_assert_uint_eq(rd(0x14, 1) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
	wr(0x14, 0, 1);
	negotiate();
	setup_queue(1, 0x100000, 48);
	ck_assert_uint_eq(rd(0x14, 1) & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
}
END_TEST

START_TEST(odd_accesses_are_harmless)
{
	/* Every width at every offset of every region, reads and writes. */
	for (unsigned off = 0; off < 0x4000; off += 1) {
		for (unsigned size = 1; size <= 8; size *= 2) {
			rd(off, size);
			if (off != 0x14 && (off < 0x3000))
				wr(off, 0xffffffffffffffffULL, size);
		}
	}
	/* The ISR reads once and clears. */
	wr(0x14, 0, 1);
	ck_assert_uint_eq(rd(0x1000, 1), 0);
}
END_TEST

START_TEST(intx_and_isr_without_msix)
{
	negotiate();
	setup_queue(0, 0x100000, 32);
	wr(0x14, 1 | 2 | 8 | 4, 1);
	virtio_notify_queue(&dev, 0);
	ck_assert_uint_eq(rd(0x1000, 1), 1);
	ck_assert_uint_eq(rd(0x1000, 1), 0);
	virtio_notify_config(&dev);
	ck_assert_uint_eq(rd(0x1000, 1), 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, pci_identity_and_caps);
	tcase_add_test(tc, feature_negotiation);
	tcase_add_test(tc, queue_setup_activate_and_kick);
	tcase_add_test(tc, bad_queue_sets_needs_reset);
	tcase_add_test(tc, odd_accesses_are_harmless);
	tcase_add_test(tc, intx_and_isr_without_msix);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
