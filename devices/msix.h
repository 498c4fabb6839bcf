/* SPDX-License-Identifier: MIT */
/*
 * MSI-X (PCI Local Bus 3.0, §6.8.2) for a struct pci_device: the capability
 * in config space, and the vector table and pending bit array (PBA) in one
 * of the device's memory BARs.
 *
 * The PCI host routes accesses to the table and PBA here by itself (see
 * pci_device_set_bar_ops()), so they never reach the device's own BAR
 * handler, and tells this code about writes to Message Control. The device
 * only calls msix_notify().
 */
#ifndef MINIVM_MSIX_H
#define MINIVM_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"

#define MSIX_MAX_VECTORS 2048 /* Table Size is 11 bits, N - 1 */
#define MSIX_ENTRY_SIZE 16

/* Message Control, at capability offset 2 */
#define MSIX_CTRL_TABLE_SIZE 0x07ff
#define MSIX_CTRL_FUNCTION_MASK 0x4000
#define MSIX_CTRL_ENABLE 0x8000
/* Table entry: dword offsets */
#define MSIX_ENTRY_ADDR_LO 0x0
#define MSIX_ENTRY_ADDR_HI 0x4
#define MSIX_ENTRY_DATA 0x8
#define MSIX_ENTRY_CTRL 0xc
#define MSIX_ENTRY_CTRL_MASKED 0x1

/* msix_notify() found the vector masked and set its pending bit. */
#define MSIX_PENDING 1

/*
 * Supplied by the VMM or the transport. Both are called without the MSI-X
 * lock but possibly with the PCI host's lock held (a Message Control write)
 * or the MMIO bus's read lock (a table write): they must not take the host's
 * lock nor (un)register anything on the MMIO bus. They may call back into
 * msix_*().
 */
struct msix_ops {
	/* Sends one message: KVM_SIGNAL_MSI, say. Returns 0 or -errno. */
	int (*deliver)(void *ctx, uint64_t addr, uint32_t data);
	/*
	 * Vector vec's address, data or effective mask may have changed (for
	 * instance to re-point an irqfd route); msix_vector_get() says how.
	 */
	void (*vector_changed)(void *ctx, unsigned vec);
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

/* A vector as the guest programmed it. */
struct msix_msg {
	uint64_t addr;
	uint32_t data;
	bool masked; /* by its Mask bit, the Function Mask, or MSI-X off */
};

struct msix {
	pthread_mutex_t lock;
	struct pci_device *dev;
	unsigned nvec;
	unsigned bar;
	uint32_t table_off, pba_off; /* in the BAR */
	uint8_t cap;                 /* the capability's offset in config space */
	const struct msix_ops *ops;
	void *ctx;
	/* Under lock: */
	bool enabled, function_masked; /* Message Control, mirrored */
	struct msix_entry *table;
	uint64_t *pba;
};

/*
 * Gives d nvec (1-2048) vectors with the table at table_off and the PBA at
 * pba_off (both 8-byte aligned, not overlapping, inside the BAR) in memory
 * BAR bar, which must be declared already; adds the capability. All vectors
 * start masked, MSI-X off. Call before pci_host_add(). Returns -EINVAL,
 * -ENOSPC (config space full) or -ENOMEM.
 */
int msix_init(struct msix *m, struct pci_device *d, unsigned nvec,
	      unsigned bar, uint32_t table_off, uint32_t pba_off);
/* After the PCI host is gone. */
void msix_destroy(struct msix *m);
void msix_set_ops(struct msix *m, const struct msix_ops *ops, void *ctx);

bool msix_enabled(struct msix *m);
/*
 * Signals vector vec: delivers it (0, or what deliver() returned), or sets
 * its pending bit if it is masked (MSIX_PENDING); it goes out when the guest
 * unmasks it. -EINVAL for a vector beyond the table, -EAGAIN while MSI-X is
 * off (use INTx then). Any thread, no lock held.
 */
int msix_notify(struct msix *m, unsigned vec);
/* Fills *msg for vector vec; -EINVAL if there is no such vector. */
int msix_vector_get(struct msix *m, unsigned vec, struct msix_msg *msg);

/*
 * For devices/pci.c. An access whose first byte falls in the table or PBA
 * is consumed (true), even if it is not one the spec allows: only aligned
 * dword and qword accesses do anything, others read as zero and write
 * nothing. The PBA is read-only.
 */
bool msix_bar_read(struct msix *m, uint64_t offset, void *data, unsigned size);
bool msix_bar_write(struct msix *m, uint64_t offset, const void *data,
		    unsigned size);
/* A config write of [offset, offset + size) landed; host lock held. */
void msix_config_write(struct msix *m, unsigned offset, unsigned size);

#endif
