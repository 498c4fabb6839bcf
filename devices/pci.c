// SPDX-License-Identifier: MIT
/*
 * PCI host bridge with configuration mechanism #1: CONFIG_ADDRESS at 0xCF8
 * and CONFIG_DATA at 0xCFC-0xCFF (PCI Local Bus 3.0, §3.2.2.3.2), and the
 * bridge itself at 00:00.0 posing as an Intel 82441FX (i440FX), which Linux
 * knows. Only bus 0 exists.
 *
 * Each device's config space is plain bytes plus two masks saying which bits
 * the guest may write and which it clears by writing 1, so read-only IDs,
 * W1C status bits and BAR sizing need no code per device. Devices that must
 * react to a write of their own registers hook in through pci_device_ops.
 *
 * Memory BARs: pci_host_add() places each one in the 32-bit window, as
 * firmware would, and the host keeps the MMIO bus in step with the guest's
 * view: a BAR decodes while Command.Memory Space is set and the BAR holds
 * an address inside the window the _CRS advertises. The all-ones pattern of
 * a sizing write always ends at 4 GiB, beyond PCI_MMIO_WINDOW_END, so it
 * never maps. I/O BARs can be declared and sized but do not decode: mapping
 * one would mean registering on the port bus from inside its own dispatch.
 *
 * INTx: slot S, pin P reaches GSI pci_intx_gsi(S, P), IOAPIC pins 16-19,
 * which the DSDT's _PRT lists without link devices, so the guest takes them
 * as level-triggered, active-low (the ACPI default for a _PRT GSI). The
 * VMM still asserts with level 1: since Linux 3.17 (commit 100943c54e09,
 * "kvm: x86: ignore ioapic polarity", flagged by KVM_CAP_IOAPIC_POLARITY_
 * IGNORED) KVM's IOAPIC ignores the polarity bit the guest programs, and
 * KVM_IRQ_LINE's level is 1 = asserted, 0 = deasserted, whatever the pin's
 * polarity (Documentation/virt/kvm/api.rst, KVM_IRQ_LINE). Before that,
 * KVM XORed the level with the polarity bit, and an active-low GSI would
 * have needed level 0 to assert. KVM_IRQ_LINE does not OR the userspace
 * sources of one GSI (they share one source ID), so the host counts the
 * devices asserting each GSI and drives the line on 0 <-> 1 changes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "devices/msix.h"
#include "devices/pci.h"
#include "vmm/log.h"

#define ADDR_ENABLE 0x80000000u
/* Bits 30-24 are reserved and 1-0 select type 0/1: both read as zero. */
#define ADDR_MASK 0x80fffffcu

static unsigned addr_bus(uint32_t a)
{
	return (a >> 16) & 0xff;
}

static unsigned addr_devfn(uint32_t a)
{
	return (a >> 8) & 0xff;
}

static bool pci_config_range_ok(unsigned offset, unsigned size)
{
	return size >= 1 && size <= 4 && offset < PCI_CONFIG_SIZE &&
	       size <= PCI_CONFIG_SIZE - offset;
}

void pci_device_set_wmask(struct pci_device *d, unsigned offset, unsigned size,
			  uint32_t mask)
{
	if (pci_config_range_ok(offset, size))
		bus_put(&d->wmask[offset], size, mask);
}

void pci_device_set_w1cmask(struct pci_device *d, unsigned offset,
			    unsigned size, uint32_t mask)
{
	if (pci_config_range_ok(offset, size))
		bus_put(&d->w1cmask[offset], size, mask);
}

/* Does [offset, offset + size) touch [reg, reg + len)? */
static bool pci_overlaps(unsigned offset, unsigned size, unsigned reg,
			 unsigned len)
{
	return offset < reg + len && reg < offset + size;
}

void pci_device_init(struct pci_device *d, uint8_t dev, uint8_t fn,
		     uint16_t vendor, uint16_t device, uint32_t class_code)
{
	memset(d, 0, sizeof(*d));
	d->dev = dev;
	d->fn = fn;
	pci_config_set(d, PCI_VENDOR_ID, 2, vendor);
	pci_config_set(d, PCI_DEVICE_ID, 2, device);
	pci_config_set(d, PCI_CLASS_PROG, 3, class_code);
	pci_device_set_wmask(d, PCI_COMMAND, 2,
			     PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
			     PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
			     PCI_COMMAND_INTX_DISABLE);
	bus_put(&d->w1cmask[PCI_STATUS], 2, PCI_STATUS_ERRORS);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff; /* firmware's scratch byte */
	d->cap_free = PCI_CAP_START;
}

static bool pci_bar_size_ok(unsigned bar, uint64_t size, uint32_t flags)
{
	if (bar >= PCI_NUM_BARS || size & (size - 1))
		return false;
	if (flags & PCI_BAR_IO)
		return size >= 4 && size <= 0x10000;
	if (flags & PCI_BAR_MEM64)
		return bar + 1 < PCI_NUM_BARS && size >= 16;
	return size >= 16 && size <= 0x80000000u;
}

/* The guest sizes a BAR by writing ones: wmask makes it read back ~(size-1). */
int pci_device_set_bar(struct pci_device *d, unsigned bar, uint64_t size,
		       uint32_t flags)
{
	unsigned offset = PCI_BAR0 + 4 * bar;
	uint32_t low_flags = PCI_BAR_IO;

	if (!pci_bar_size_ok(bar, size, flags))
		return -EINVAL;
	if (!(flags & PCI_BAR_IO))
		low_flags = flags & (PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
	pci_config_set(d, offset, 4, low_flags);
	pci_device_set_wmask(d, offset, 4, (uint32_t)~(size - 1) & ~(low_flags | 0x3u));
	d->bars[bar] = (struct pci_bar){
		.size = size, .flags = low_flags, .dev = d,
	};
	if (low_flags & PCI_BAR_MEM64) {
		pci_config_set(d, offset + 4, 4, 0);
		pci_device_set_wmask(d, offset + 4, 4, ~(size - 1) >> 32);
		d->bars[bar + 1] = (struct pci_bar){ .dev = d };
	}
	return 0;
}

int pci_device_set_bar_ops(struct pci_device *d, unsigned bar,
			   const struct bus_ops *ops, void *opaque)
{
	if (bar >= PCI_NUM_BARS || !d->bars[bar].size ||
	    d->bars[bar].flags & PCI_BAR_IO)
		return -EINVAL;
	d->bars[bar].ops = ops;
	d->bars[bar].opaque = opaque;
	return 0;
}

uint64_t pci_device_bar_address(const struct pci_device *d, unsigned bar)
{
	uint32_t low;
	uint64_t addr;

	if (bar >= PCI_NUM_BARS)
		return 0;
	low = pci_config_get(d, PCI_BAR0 + 4 * bar, 4);
	if (low & PCI_BAR_IO)
		return low & ~0x3u;
	addr = low & ~0xfu;
	if (low & PCI_BAR_MEM64 && bar + 1 < PCI_NUM_BARS)
		addr |= (uint64_t)pci_config_get(d, PCI_BAR0 + 4 * (bar + 1), 4) << 32;
	return addr;
}

/* ------------------------------------------------------------------------
 * Capabilities
 */

int pci_add_capability(struct pci_device *d, uint8_t cap_id, const void *body,
		       size_t len, uint8_t *offset_out)
{
	unsigned at = d->cap_free ? d->cap_free : PCI_CAP_START;

	if (len > PCI_CONFIG_SIZE - PCI_CAP_START - 2)
		return -EINVAL;
	if (at > PCI_CONFIG_SIZE || len + 2 > PCI_CONFIG_SIZE - at)
		return -ENOSPC;
	d->config[at] = cap_id;
	d->config[at + 1] = 0;
	if (len && body)
		memcpy(&d->config[at + 2], body, len);
	else if (len)
		memset(&d->config[at + 2], 0, len);
	memset(&d->wmask[at], 0, len + 2);
	memset(&d->w1cmask[at], 0, len + 2);
	if (d->cap_last)
		d->config[d->cap_last + 1] = at;
	else
		d->config[PCI_CAPABILITY_LIST] = at;
	d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = at;
	d->cap_free = ALIGN_UP(at + 2 + len, 4);
	if (offset_out)
		*offset_out = at;
	return 0;
}

/* A pointer's two low bits are reserved; 48 dwords bound a looping list. */
uint8_t pci_find_capability(const struct pci_device *d, uint8_t cap_id)
{
	uint8_t p = d->config[PCI_CAPABILITY_LIST] & ~3u;

	if (!(d->config[PCI_STATUS] & PCI_STATUS_CAP_LIST))
		return 0;
	for (unsigned n = 0; p >= PCI_CAP_START && n < 48; n++) {
		if (d->config[p] == cap_id)
			return p;
		p = d->config[p + 1] & ~3u;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Memory BARs on the MMIO bus
 */

static bool pci_bar_is_msix(const struct pci_bar *b)
{
	struct msix *m = b->dev->msix;

	return m && &b->dev->bars[m->bar] == b;
}

/*
 * The region's handler: the MSI-X table and PBA first, then the device. A
 * part of the BAR nobody implements reads as zero.
 */
static void pci_bar_read(void *opaque, uint64_t offset, void *data,
			 unsigned size)
{
	struct pci_bar *b = opaque;

	if (pci_bar_is_msix(b) && msix_bar_read(b->dev->msix, offset, data, size))
		return;
	if (b->ops && b->ops->read)
		b->ops->read(b->opaque, offset, data, size);
	else
		memset(data, 0, size);
}

static void pci_bar_write(void *opaque, uint64_t offset, const void *data,
			  unsigned size)
{
	struct pci_bar *b = opaque;

	if (pci_bar_is_msix(b) && msix_bar_write(b->dev->msix, offset, data, size))
		return;
	if (b->ops && b->ops->write)
		b->ops->write(b->opaque, offset, data, size);
}

static const struct bus_ops pci_bar_ops = {
	.read = pci_bar_read,
	.write = pci_bar_write,
};

/* Where memory BAR i of d should decode now, if anywhere. Host lock held. */
static bool pci_bar_wanted(const struct pci_device *d, unsigned i,
			   uint64_t *base)
{
	const struct pci_bar *b = &d->bars[i];
	uint64_t a;

	if (!b->size || b->flags & PCI_BAR_IO)
		return false;
	if (!b->ops && !pci_bar_is_msix(b))
		return false;
	if (!(pci_config_get(d, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
		return false;
	a = pci_device_bar_address(d, i);
	if (a < PCI_MMIO_WINDOW_BASE || a >= PCI_MMIO_WINDOW_END ||
	    b->size > PCI_MMIO_WINDOW_END - a)
		return false;
	*base = a;
	return true;
}

/*
 * Brings the MMIO bus in line with every BAR: all stale mappings go first,
 * so that BARs that trade places, or one moved off another, map afterwards.
 * A BAR the guest made overlap another stays unmapped until it moves.
 */
static void pci_host_remap(struct pci_host *h)
{
	uint64_t base;

	if (!h->mmio)
		return;
	for (unsigned devfn = 0; devfn < ARRAY_SIZE(h->devices); devfn++) {
		struct pci_device *d = h->devices[devfn];

		for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bars[i];

			if (!b->mapped)
				continue;
			if (pci_bar_wanted(d, i, &base) && base == b->mapped_at)
				continue;
			bus_unregister(h->mmio, b->mapped_at);
			b->mapped = false;
		}
	}
	for (unsigned devfn = 0; devfn < ARRAY_SIZE(h->devices); devfn++) {
		struct pci_device *d = h->devices[devfn];

		for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bars[i];
			int ret;

			if (b->mapped || !pci_bar_wanted(d, i, &base))
				continue;
			ret = bus_register(h->mmio, base, b->size, &pci_bar_ops, b,
					   b->name);
			if (ret) {
				pr_debug("%s at 0x%llx: %s", b->name,
					 (unsigned long long)base, strerror(-ret));
				continue;
			}
			b->mapped = true;
			b->mapped_at = base;
		}
	}
}

/* ------------------------------------------------------------------------
 * INTx
 */

/* host->intx_lock held */
static void pci_intx_drive(struct pci_host *h, struct pci_device *d)
{
	bool out = d->intx_level && !d->intx_blocked;
	unsigned *count;

	if (out == d->intx_out || !d->intx_gsi)
		return;
	d->intx_out = out;
	count = &h->intx_count[d->intx_gsi - PCI_INTX_GSI_BASE];
	if (out && (*count)++ == 0 && h->irq_set)
		h->irq_set(h->irq_ctx, d->intx_gsi, 1);
	else if (!out && --(*count) == 0 && h->irq_set)
		h->irq_set(h->irq_ctx, d->intx_gsi, 0);
}

void pci_device_set_intx(struct pci_device *d, int level)
{
	struct pci_host *h = d->host;

	if (!h) {
		d->intx_level = level; /* not plugged in: nobody else looks */
		return;
	}
	pthread_mutex_lock(&h->intx_lock);
	d->intx_level = level;
	pci_intx_drive(h, d);
	pthread_mutex_unlock(&h->intx_lock);
}

int pci_device_set_intx_pin(struct pci_device *d, uint8_t pin)
{
	if (pin > PCI_INTX_PIN_D)
		return -EINVAL;
	d->config[PCI_INTERRUPT_PIN] = pin;
	return 0;
}

/*
 * Command.INTx Disable, or MSI-X on, keeps the pin deasserted (PCI 3.0
 * §6.2.2 and §6.8.2.3); the device's level survives, so the pin comes
 * back when both clear. Host lock held.
 */
static void pci_intx_update_blocked(struct pci_host *h, struct pci_device *d)
{
	bool blocked = pci_config_get(d, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE;

	if (d->msix && msix_enabled(d->msix))
		blocked = true;
	pthread_mutex_lock(&h->intx_lock);
	d->intx_blocked = blocked;
	pci_intx_drive(h, d);
	pthread_mutex_unlock(&h->intx_lock);
}

/* ------------------------------------------------------------------------
 * Configuration accesses, host lock held
 */

static uint32_t pci_device_read(struct pci_host *h, struct pci_device *d,
				unsigned offset, unsigned size)
{
	uint32_t val = pci_config_get(d, offset, size);

	if (pci_overlaps(offset, size, PCI_STATUS, 1)) {
		bool level;

		pthread_mutex_lock(&h->intx_lock);
		level = d->intx_level;
		pthread_mutex_unlock(&h->intx_lock);
		if (level)
			val |= (uint32_t)PCI_STATUS_INTERRUPT << 8 * (PCI_STATUS - offset);
	}
	if (d->ops && d->ops->config_read)
		d->ops->config_read(d, offset, size, &val);
	return val;
}

static void pci_device_write(struct pci_host *h, struct pci_device *d,
			     unsigned offset, unsigned size, uint32_t val)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned o = offset + i;
		uint8_t b = val >> (8 * i);

		d->config[o] = (d->config[o] & ~d->wmask[o]) | (b & d->wmask[o]);
		d->config[o] &= ~(b & d->w1cmask[o]);
	}
	if (d->msix)
		msix_config_write(d->msix, offset, size);
	pci_intx_update_blocked(h, d);
	if (pci_overlaps(offset, size, PCI_COMMAND, 2) ||
	    pci_overlaps(offset, size, PCI_BAR0, 4 * PCI_NUM_BARS))
		pci_host_remap(h);
	if (d->ops && d->ops->config_write)
		d->ops->config_write(d, offset, size, val);
}

/* NULL for anything the guest must see as absent: reads then float high. */
static struct pci_device *pci_host_lookup(struct pci_host *h, uint32_t addr)
{
	if (!(addr & ADDR_ENABLE) || addr_bus(addr) != 0)
		return NULL;
	return h->devices[addr_devfn(addr)];
}

/*
 * Only dword accesses reach CONFIG_ADDRESS: a byte or word at 0xCF8-0xCFB is
 * some other register on real chipsets (0xCF9 resets a PIIX), absent here.
 */
static void pci_addr_read(void *opaque, uint64_t offset, void *data,
			  unsigned size)
{
	struct pci_host *h = opaque;

	memset(data, 0xff, size);
	if (offset != 0 || size != 4)
		return;
	pthread_mutex_lock(&h->lock);
	bus_put(data, 4, h->config_address);
	pthread_mutex_unlock(&h->lock);
}

static void pci_addr_write(void *opaque, uint64_t offset, const void *data,
			   unsigned size)
{
	struct pci_host *h = opaque;

	if (offset != 0 || size != 4)
		return;
	pthread_mutex_lock(&h->lock);
	h->config_address = bus_get(data, 4) & ADDR_MASK;
	pthread_mutex_unlock(&h->lock);
}

/*
 * CONFIG_DATA port 0xCFC + n reaches register (addr & 0xfc) + n; the part of
 * a wide access that runs past 0xCFF reads as all-ones and writes nothing.
 */
static unsigned pci_data_span(uint64_t offset, unsigned size)
{
	if (offset >= 4)
		return 0;
	return size < 4 - offset ? size : 4 - offset;
}

static void pci_data_read(void *opaque, uint64_t offset, void *data,
			  unsigned size)
{
	struct pci_host *h = opaque;
	unsigned n = pci_data_span(offset, size);
	struct pci_device *d;

	memset(data, 0xff, size);
	if (!n)
		return;
	pthread_mutex_lock(&h->lock);
	d = pci_host_lookup(h, h->config_address);
	if (d)
		bus_put(data, n, pci_device_read(h, d, (h->config_address & 0xfc) +
						 offset, n));
	pthread_mutex_unlock(&h->lock);
}

static void pci_data_write(void *opaque, uint64_t offset, const void *data,
			   unsigned size)
{
	struct pci_host *h = opaque;
	unsigned n = pci_data_span(offset, size);
	struct pci_device *d;

	if (!n)
		return;
	pthread_mutex_lock(&h->lock);
	d = pci_host_lookup(h, h->config_address);
	if (d)
		pci_device_write(h, d, (h->config_address & 0xfc) + offset, n,
				 bus_get(data, n));
	pthread_mutex_unlock(&h->lock);
}

static const struct bus_ops pci_addr_ops = {
	.read = pci_addr_read,
	.write = pci_addr_write,
};

static const struct bus_ops pci_data_ops = {
	.read = pci_data_read,
	.write = pci_data_write,
};

/*
 * Naturally aligned addresses for d's memory BARs, bottom up in the window,
 * into config[] as firmware leaves them; nothing changes unless all fit.
 */
static int pci_host_place_bars(struct pci_host *h, struct pci_device *d)
{
	uint64_t next = h->mmio_next, base[PCI_NUM_BARS] = { 0 };

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *b = &d->bars[i];

		if (!b->size || b->flags & PCI_BAR_IO)
			continue;
		base[i] = ALIGN_UP(next, b->size);
		if (base[i] < next || base[i] >= PCI_MMIO_WINDOW_END ||
		    b->size > PCI_MMIO_WINDOW_END - base[i])
			return -ENOSPC;
		next = base[i] + b->size;
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		unsigned offset = PCI_BAR0 + 4 * i;
		struct pci_bar *b = &d->bars[i];

		snprintf(b->name, sizeof(b->name), "pci-%02x:%02x.%x-bar%u",
			 d->bus, d->dev, d->fn, i);
		if (!base[i])
			continue;
		pci_config_set(d, offset, 4, (uint32_t)base[i] | b->flags);
		if (b->flags & PCI_BAR_MEM64)
			pci_config_set(d, offset + 4, 4, base[i] >> 32);
	}
	h->mmio_next = next;
	return 0;
}

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	unsigned devfn = d->dev * PCI_MAX_FUNCTIONS + d->fn;
	uint8_t pin = d->config[PCI_INTERRUPT_PIN];
	int ret = 0;

	if (d->bus != 0 || d->dev >= PCI_MAX_SLOTS || d->fn >= PCI_MAX_FUNCTIONS)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->devices[devfn])
		ret = -EEXIST;
	else
		ret = pci_host_place_bars(h, d);
	if (!ret) {
		d->host = h;
		if (pin) {
			d->intx_gsi = pci_intx_gsi(d->dev, pin);
			d->config[PCI_INTERRUPT_LINE] = d->intx_gsi;
		}
		h->devices[devfn] = d;
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* 82441FX values from its datasheet; Linux only matches vendor/device. */
void pci_host_init(struct pci_host *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->intx_lock, NULL);
	h->mmio_next = PCI_MMIO_WINDOW_BASE;
	pci_device_init(&h->bridge, 0, 0, 0x8086, 0x1237, 0x060000);
	pci_config_set(&h->bridge, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	pci_config_set(&h->bridge, PCI_STATUS, 2, 0x0280); /* medium DEVSEL, fast b2b */
	h->bridge.config[PCI_REVISION_ID] = 0x02;
	h->bridge.host = h;
	h->devices[0] = &h->bridge;
}

void pci_host_destroy(struct pci_host *h)
{
	pthread_mutex_lock(&h->lock);
	for (unsigned devfn = 0; devfn < ARRAY_SIZE(h->devices); devfn++) {
		struct pci_device *d = h->devices[devfn];

		for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
			if (d->bars[i].mapped && h->mmio)
				bus_unregister(h->mmio, d->bars[i].mapped_at);
			d->bars[i].mapped = false;
		}
	}
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_destroy(&h->intx_lock);
	pthread_mutex_destroy(&h->lock);
}

void pci_host_set_mmio(struct pci_host *h, struct bus *mmio)
{
	pthread_mutex_lock(&h->lock);
	h->mmio = mmio;
	pci_host_remap(h);
	pthread_mutex_unlock(&h->lock);
}

void pci_host_set_irq(struct pci_host *h,
		      void (*set)(void *ctx, unsigned gsi, int level), void *ctx)
{
	pthread_mutex_lock(&h->intx_lock);
	h->irq_set = set;
	h->irq_ctx = ctx;
	pthread_mutex_unlock(&h->intx_lock);
}

int pci_host_register(struct pci_host *h, struct bus *pio)
{
	int ret;

	ret = bus_register(pio, PCI_CONFIG_ADDRESS, 4, &pci_addr_ops, h,
			   "pci-config-address");
	if (ret)
		return ret;
	ret = bus_register(pio, PCI_CONFIG_DATA, 4, &pci_data_ops, h,
			   "pci-config-data");
	if (ret)
		bus_unregister(pio, PCI_CONFIG_ADDRESS);
	return ret;
}
