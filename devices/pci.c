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
 * react to a write (a BAR moving) hook in through pci_device_ops.
 */
#include <errno.h>
#include <string.h>

#include "devices/pci.h"

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

static void pci_wmask_set(struct pci_device *d, unsigned offset,
			  unsigned size, uint32_t mask)
{
	bus_put(&d->wmask[offset], size, mask);
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
	pci_wmask_set(d, PCI_COMMAND, 2,
		      PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
		      PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
		      PCI_COMMAND_INTX_DISABLE);
	bus_put(&d->w1cmask[PCI_STATUS], 2, PCI_STATUS_ERRORS);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff; /* firmware's scratch byte */
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
	pci_wmask_set(d, offset, 4, (uint32_t)~(size - 1) & ~(low_flags | 0x3u));
	if (flags & PCI_BAR_MEM64 && !(flags & PCI_BAR_IO)) {
		pci_config_set(d, offset + 4, 4, 0);
		pci_wmask_set(d, offset + 4, 4, ~(size - 1) >> 32);
	}
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

static uint32_t pci_device_read(struct pci_device *d, unsigned offset,
				unsigned size)
{
	uint32_t val = pci_config_get(d, offset, size);

	if (d->ops && d->ops->config_read)
		d->ops->config_read(d, offset, size, &val);
	return val;
}

static void pci_device_write(struct pci_device *d, unsigned offset,
			     unsigned size, uint32_t val)
{
	for (unsigned i = 0; i < size; i++) {
		unsigned o = offset + i;
		uint8_t b = val >> (8 * i);

		d->config[o] = (d->config[o] & ~d->wmask[o]) | (b & d->wmask[o]);
		d->config[o] &= ~(b & d->w1cmask[o]);
	}
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
		bus_put(data, n, pci_device_read(d, (h->config_address & 0xfc) +
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
		pci_device_write(d, (h->config_address & 0xfc) + offset, n,
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

int pci_host_add(struct pci_host *h, struct pci_device *d)
{
	unsigned devfn = d->dev * PCI_MAX_FUNCTIONS + d->fn;
	int ret = 0;

	if (d->bus != 0 || d->dev >= PCI_MAX_SLOTS || d->fn >= PCI_MAX_FUNCTIONS)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->devices[devfn])
		ret = -EEXIST;
	else
		h->devices[devfn] = d;
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* 82441FX values from its datasheet; Linux only matches vendor/device. */
void pci_host_init(struct pci_host *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pci_device_init(&h->bridge, 0, 0, 0x8086, 0x1237, 0x060000);
	pci_config_set(&h->bridge, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	pci_config_set(&h->bridge, PCI_STATUS, 2, 0x0280); /* medium DEVSEL, fast b2b */
	h->bridge.config[PCI_REVISION_ID] = 0x02;
	h->devices[0] = &h->bridge;
}

void pci_host_destroy(struct pci_host *h)
{
	pthread_mutex_destroy(&h->lock);
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
