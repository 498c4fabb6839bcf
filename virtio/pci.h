/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_VIRTIO_PCI_H
#define MINIVM_VIRTIO_PCI_H

#include "devices/pci.h"
#include "virtio/virtio.h"

struct vm;

/*
 * Puts a virtio device (its struct virtio_dev filled in by the device type)
 * on the PCI bus at slot. Returns 0 or -errno, having printed nothing.
 */
int virtio_pci_init(struct virtio_dev *v, struct vm *vm, struct pci_host *host, unsigned slot);
/* Quiesces the device: reset it, detach its doorbells and interrupts. */
void virtio_pci_stop(struct virtio_dev *v);
/* Frees the transport; after the PCI host is gone. */
void virtio_pci_free(struct virtio_dev *v);

#endif
