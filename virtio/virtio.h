/* SPDX-License-Identifier: MIT */
/*
 * What a virtio device type (blk, net, ...) sees of its transport. The
 * device describes itself (ID, queues, config space, features) and serves
 * its queues; the transport (virtio/pci.c, virtio 1.x §4.1) owns feature
 * negotiation, device status, queue setup, doorbells and interrupts. A
 * device never touches PCI.
 *
 * Threads: queue_notify runs on the VM's event loop thread; config
 * accesses on vCPU threads; activate and reset on a vCPU thread (the
 * driver's status write), with the transport's lock held.
 */
#ifndef MINIVM_VIRTIO_H
#define MINIVM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/msix.h"
#include "devices/pci.h"
#include "virtio/virtqueue.h"
#include "vmm/evloop.h"

/* Device status bits (§2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport-level feature bits (§6) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BIT(n) (1ULL << (n))

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2

#define VIRTIO_MAX_QUEUES 16
#define VIRTIO_NO_VECTOR 0xffff

struct virtio_dev;

struct virtio_dev_ops {
	/* Reads/writes of the device-specific config space (§4.1.4.6). */
	void (*config_read)(struct virtio_dev *v, uint64_t off, void *data, unsigned size);
	void (*config_write)(struct virtio_dev *v, uint64_t off, const void *data, unsigned size);
	/* DRIVER_OK: features are final and the enabled queues are set up. */
	int (*activate)(struct virtio_dev *v);
	/* Device reset (status 0) or teardown: stop, finish in-flight work. */
	void (*reset)(struct virtio_dev *v);
	/* The driver kicked queue q. */
	void (*queue_notify)(struct virtio_dev *v, unsigned q);
};

/* One queue as the transport sets it up. */
struct virtio_queue {
	struct virtq vq;
	uint16_t max_size;
	bool enabled;
	uint16_t vector;        /* MSI-X vector, or VIRTIO_NO_VECTOR */
	struct ev_handler kick; /* its fd is the ioeventfd */
	bool kick_registered;   /* on the event loop */
	bool ioeventfd;         /* and KVM signals it on the doorbell write */
	pthread_mutex_t lock;   /* for devices that complete on several threads */
};

struct virtio_dev {
	/* Filled in by the device type before virtio_pci_init(). */
	const struct virtio_dev_ops *ops;
	uint16_t device_id;
	uint32_t pci_class;     /* class code, e.g. 0x018000 for storage */
	unsigned num_queues;
	uint16_t queue_size;    /* maximum queue size offered */
	uint32_t config_size;   /* bytes of device-specific config */
	uint64_t features;      /* device-specific feature bits offered */
	void *priv;

	/* Transport state: read-only for the device except where noted. */
	struct virtio_transport *t;
	uint64_t driver_features; /* what was negotiated (valid after FEATURES_OK) */
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	const struct guest_mem *mem;
};

/* Interrupts the driver for queue q (MSI-X vector, or INTx + ISR bit 0). */
void virtio_notify_queue(struct virtio_dev *v, unsigned q);
/* Pops, pushes and signals are each done by the device; this helper does
 * the common "push and interrupt if the driver wants it" under queue lock. */
int virtio_push_and_notify(struct virtio_dev *v, unsigned q, uint16_t head, uint32_t len);
/* The config space changed (capacity, link status): a config interrupt. */
void virtio_notify_config(struct virtio_dev *v);
/* The guest broke a queue: set DEVICE_NEEDS_RESET, log once, stop. */
void virtio_set_needs_reset(struct virtio_dev *v, const char *why);
bool virtio_has_feature(const struct virtio_dev *v, unsigned bit);

#endif
