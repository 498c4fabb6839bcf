/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_PCI_H
#define MINIVM_PCI_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define PCI_MMIO_WINDOW_BASE 0xC0000000ULL /* = MEM_HOLE_START */
#define PCI_MMIO_WINDOW_END 0xFEC00000ULL  /* the IOAPIC sits here */

#define PCI_CONFIG_SIZE 256
#define PCI_MAX_SLOTS 32
#define PCI_MAX_FUNCTIONS 8

/* Type 0 configuration header (PCI Local Bus 3.0, §6.1) */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG 0x09 /* class code: prog-if, subclass, base class */
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_LATENCY_TIMER 0x0d
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_PARITY 0x0040
#define PCI_COMMAND_SERR 0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_STATUS_ERRORS 0xf900 /* parity, target/master aborts, SERR */
#define PCI_HEADER_TYPE_MULTI 0x80

#define PCI_NUM_BARS 6
#define PCI_BAR_IO 0x01
#define PCI_BAR_MEM64 0x04
#define PCI_BAR_PREFETCH 0x08

struct pci_device;

/*
 * Optional hooks, called with the host's lock held (so they must not touch
 * the pci_host). offset and size never cross a dword: size is 1 to 4.
 */
struct pci_device_ops {
	/* May replace *val, already read from config[]. */
	void (*config_read)(struct pci_device *d, unsigned offset,
			    unsigned size, uint32_t *val);
	/* Runs after the write landed in config[] through wmask/w1cmask. */
	void (*config_write)(struct pci_device *d, unsigned offset,
			     unsigned size, uint32_t val);
};

struct pci_device {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits the guest clears with a 1 */
	uint8_t bus, dev, fn;             /* bus is always 0 for now */
	const struct pci_device_ops *ops; /* may be NULL */
	void *opaque;                     /* for the owner of the hooks */
};

struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address;
	struct pci_device bridge; /* 00:00.0 */
	struct pci_device *devices[PCI_MAX_SLOTS * PCI_MAX_FUNCTIONS]; /* devfn */
};

void pci_host_init(struct pci_host *h);
void pci_host_destroy(struct pci_host *h);
int pci_host_register(struct pci_host *h, struct bus *pio);
/*
 * Plugs d in on bus 0 at d->dev/d->fn. Returns -EINVAL for a bad address,
 * -EEXIST if taken. d must outlive the host; it is not copied.
 */
int pci_host_add(struct pci_host *h, struct pci_device *d);

/*
 * Initialises a type 0 header: IDs and class (0xBBSSPP: base class, subclass,
 * prog-if) read-only; command, cache line, latency, interrupt line writable;
 * status error bits write-1-to-clear. No BARs or interrupt pin yet.
 */
void pci_device_init(struct pci_device *d, uint8_t dev, uint8_t fn,
		     uint16_t vendor, uint16_t device, uint32_t class_code);
/*
 * Declares BAR bar (0-5) of size bytes, a power of two, with PCI_BAR_* flags;
 * a PCI_BAR_MEM64 BAR also takes bar + 1. Returns -EINVAL if it cannot.
 */
int pci_device_set_bar(struct pci_device *d, unsigned bar, uint64_t size,
		       uint32_t flags);
/* The address the guest programmed, without the flag bits. */
uint64_t pci_device_bar_address(const struct pci_device *d, unsigned bar);

static inline uint32_t pci_config_get(const struct pci_device *d,
				      unsigned offset, unsigned size)
{
	return bus_get(&d->config[offset], size);
}

static inline void pci_config_set(struct pci_device *d, unsigned offset,
				  unsigned size, uint32_t val)
{
	bus_put(&d->config[offset], size, val);
}

#endif
