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

/*
 * TODO(helper): struct pci_device (256-byte config space, write masks,
 * callbacks for config reads/writes), and the host bridge as the device at
 * 00:00.0. Devices of later issues (virtio) plug into pci_host_add().
 */
struct pci_device;

struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address;
	/* TODO(helper) */
};

void pci_host_init(struct pci_host *h);
void pci_host_destroy(struct pci_host *h);
int pci_host_register(struct pci_host *h, struct bus *pio);

#endif
