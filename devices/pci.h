/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_PCI_H
#define MINIVM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
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
#define PCI_STATUS_INTERRUPT 0x0008 /* INTx asserted (read-only) */
#define PCI_STATUS_CAP_LIST 0x0010
#define PCI_STATUS_ERRORS 0xf900 /* parity, target/master aborts, SERR */
#define PCI_HEADER_TYPE_MULTI 0x80

#define PCI_NUM_BARS 6
#define PCI_BAR_IO 0x01
#define PCI_BAR_MEM64 0x04
#define PCI_BAR_PREFETCH 0x08

/* Capability IDs (PCI Local Bus 3.0, appendix H) */
#define PCI_CAP_ID_MSIX 0x11
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_START 0x40 /* first byte after the type 0 header */

/* INTA#..INTD# as the Interrupt Pin register numbers them. */
#define PCI_INTX_PIN_A 1
#define PCI_INTX_PIN_D 4
/* Where the host bridge routes INTx: IOAPIC pins 16-19, level-triggered. */
#define PCI_INTX_GSI_BASE 16
#define PCI_INTX_NR_GSIS 4

struct msix;
struct pci_device;
struct pci_host;

/*
 * The one INTx swizzle of this platform, shared by the host bridge and the
 * ACPI _PRT (boot/acpi.c): slot S, pin P (1 = INTA#) -> GSI 16 + (S + P - 1) % 4.
 */
static inline unsigned pci_intx_gsi(unsigned slot, unsigned pin)
{
	return PCI_INTX_GSI_BASE + (slot + pin - 1) % PCI_INTX_NR_GSIS;
}

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

/* A BAR as the VMM declared it, and where the host has it on the MMIO bus. */
struct pci_bar {
	uint64_t size;             /* 0: not implemented (or a 64-bit BAR's upper half) */
	uint32_t flags;            /* PCI_BAR_* */
	const struct bus_ops *ops; /* offsets relative to the BAR's base */
	void *opaque;
	struct pci_device *dev;    /* back pointer, for the BAR dispatcher */
	/* Owned by the host, under its lock: */
	bool mapped;
	uint64_t mapped_at;
	char name[24];
};

struct pci_device {
	uint8_t config[PCI_CONFIG_SIZE];
	uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits the guest clears with a 1 */
	uint8_t bus, dev, fn;             /* bus is always 0 for now */
	const struct pci_device_ops *ops; /* may be NULL */
	void *opaque;                     /* for the owner of the hooks */
	struct pci_bar bars[PCI_NUM_BARS];
	uint8_t cap_last;                 /* offset of the last capability, or 0 */
	uint16_t cap_free;                /* where the next capability goes */
	struct msix *msix;                /* set by msix_init() */
	struct pci_host *host;            /* set by pci_host_add() */
	unsigned intx_gsi;                /* set by pci_host_add(); 0: no pin */
	/* INTx, under host->intx_lock */
	bool intx_level;   /* what the device asks for */
	bool intx_blocked; /* Command.INTx Disable or MSI-X on */
	bool intx_out;     /* what the pin drives: level && !blocked */
};

/*
 * Locking: the host's lock serialises configuration accesses and BAR
 * (un)mapping, which takes the MMIO bus's write lock. MMIO dispatch holds
 * that bus's read lock while a BAR handler runs, so nothing reachable from a
 * BAR handler (pci_device_set_intx(), msix_notify(), the MSI-X table) takes
 * the host's lock: INTx has its own intx_lock, MSI-X its own.
 */
struct pci_host {
	pthread_mutex_t lock;
	uint32_t config_address;
	struct pci_device bridge; /* 00:00.0 */
	struct pci_device *devices[PCI_MAX_SLOTS * PCI_MAX_FUNCTIONS]; /* devfn */
	struct bus *mmio;         /* where memory BARs decode; NULL: nowhere */
	uint64_t mmio_next;       /* BAR allocator, in the 32-bit window */
	/* INTx: the devices asserting each of GSI 16-19, ORed here */
	pthread_mutex_t intx_lock;
	unsigned intx_count[PCI_INTX_NR_GSIS];
	void (*irq_set)(void *ctx, unsigned gsi, int level);
	void *irq_ctx;
};

void pci_host_init(struct pci_host *h);
/* Unmaps every BAR; the MMIO bus must still exist. */
void pci_host_destroy(struct pci_host *h);
int pci_host_register(struct pci_host *h, struct bus *pio);
/*
 * The MMIO bus memory BARs decode on, and the function that drives GSIs
 * (kvm_irq_line). Both before pci_host_add() and before the guest runs.
 */
void pci_host_set_mmio(struct pci_host *h, struct bus *mmio);
void pci_host_set_irq(struct pci_host *h,
		      void (*set)(void *ctx, unsigned gsi, int level), void *ctx);
/*
 * Plugs d in on bus 0 at d->dev/d->fn, after its BARs, capabilities and pin
 * are declared. Gives each memory BAR a naturally aligned address in
 * [PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END), as firmware would; the guest
 * may move it. Returns -EINVAL for a bad address, -EEXIST if taken, -ENOSPC
 * if the window is full. d must outlive the host; it is not copied.
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
/*
 * The handler for memory BAR bar: the host registers [base, base + size) on
 * the MMIO bus with it while Command.Memory Space is set and the BAR holds
 * an address inside the window. Accesses to an MSI-X table or PBA in the
 * BAR go to msix.c first and never reach ops. I/O BARs can be sized but do
 * not decode: -EINVAL, as for a BAR not declared. Call before pci_host_add().
 */
int pci_device_set_bar_ops(struct pci_device *d, unsigned bar,
			   const struct bus_ops *ops, void *opaque);
/*
 * The address the guest programmed, without the flag bits. Reads config[]:
 * under the host's lock or before the guest runs.
 */
uint64_t pci_device_bar_address(const struct pci_device *d, unsigned bar);

/*
 * Appends a capability to the list at PCI_CAPABILITY_LIST (the first one at
 * 0x40, each dword aligned): cap_id, the next pointer, then len bytes of
 * body (the capability's bytes from offset 2 on). All read-only: open up
 * fields with pci_device_set_wmask(). *offset_out (may be NULL) gets the
 * capability's offset. Sets Status.Capabilities List. Returns -ENOSPC if
 * config space is full, -EINVAL for a body that cannot fit at all.
 */
int pci_add_capability(struct pci_device *d, uint8_t cap_id, const void *body,
		       size_t len, uint8_t *offset_out);
/* Offset of the first capability cap_id, or 0. */
uint8_t pci_find_capability(const struct pci_device *d, uint8_t cap_id);
/* Which bits of config[offset..offset+size) the guest may write (size 1-4). */
void pci_device_set_wmask(struct pci_device *d, unsigned offset, unsigned size,
			  uint32_t mask);
/* Which of those bits a guest's 1 clears instead (size 1-4). */
void pci_device_set_w1cmask(struct pci_device *d, unsigned offset,
			    unsigned size, uint32_t mask);

/* Interrupt Pin: PCI_INTX_PIN_A..D, or 0 for none. Before pci_host_add(). */
int pci_device_set_intx_pin(struct pci_device *d, uint8_t pin);
/*
 * Drives the device's INTx pin (level 1 = asserted): GSI pci_intx_gsi(slot,
 * pin) follows while Command.INTx Disable is clear and MSI-X is off, ORed
 * with the other devices on that GSI. Status.Interrupt Status shows level.
 * Any thread, no lock held; a no-op for a device without a pin.
 */
void pci_device_set_intx(struct pci_device *d, int level);

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
