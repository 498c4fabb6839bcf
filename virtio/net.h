/* SPDX-License-Identifier: MIT */
/*
 * virtio-net: a virtual Ethernet card on the virtio transport, as the
 * virtio 1.x specification describes it in §5.1 "Network Device". Queue 0
 * receives, queue 1 transmits, queue 2 is the control queue; frames go to
 * and come from a struct net_backend (net/backend.h), a TAP for now.
 *
 * Everything but activate/reset and config reads runs on the VM's event
 * loop thread: the queues' kicks and the backend's "frame waiting".
 */
#ifndef MINIVM_VIRTIO_NET_H
#define MINIVM_VIRTIO_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/backend.h"
#include "virtio/virtio.h"
#include "vmm/evloop.h"

/* Feature bits (§5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_CTRL_RX 18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_CTRL_MAC_ADDR 23

/* config.status */
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* virtio_net_hdr_v1 (§5.1.6) */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO 4
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* The control queue (§5.1.6.5) */
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1
#define VIRTIO_NET_CTRL_RX 0
#define VIRTIO_NET_CTRL_RX_PROMISC 0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC 1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_MAC_ADDR_SET 1
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0

#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_CTRLQ 2
#define VIRTIO_NET_QUEUE_SIZE 256
/* Largest frame either way: 64 KiB of GSO payload plus headers, as QEMU. */
#define VIRTIO_NET_MAX_FRAME (NET_HDR_LEN + 65536 + 4096)
/* Addresses the MAC table holds; more turns the filter off (as QEMU does). */
#define VIRTIO_NET_MAC_TABLE 64

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

/* Device configuration layout (§5.1.4): packed, little-endian. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes, rx_dropped; /* dropped: no fit, filtered, link down */
	uint64_t tx_frames, tx_bytes, tx_dropped; /* dropped: bad header, backend refused */
};

/* The receive filter the control queue sets (§5.1.6.5.1, 5.1.6.5.2). */
struct virtio_net_filter {
	bool promisc;
	bool allmulti;
	bool uni_overflow;   /* more unicast addresses than the table holds: take all */
	bool multi_overflow;
	unsigned int nr_uni, nr_multi;
	uint8_t uni[VIRTIO_NET_MAC_TABLE][6];
	uint8_t multi[VIRTIO_NET_MAC_TABLE][6];
};

/*
 * A frame on its way into the guest. It was read from the backend whole
 * into buf; with MRG_RXBUF it may need several rx chains, and the ring can
 * run dry half way: the chains already filled wait in used[] until the
 * driver adds more buffers.
 */
struct virtio_net_rx {
	uint8_t *buf;                /* VIRTIO_NET_MAX_FRAME bytes */
	uint32_t len;                /* 0: no frame waiting */
	uint32_t done;               /* bytes copied into the guest so far */
	unsigned int nr_used;
	struct virtq_used_elem used[VIRTIO_NET_QUEUE_SIZE];
	uint8_t *num_buffers;        /* in the first chain: set last, when known */
	uint8_t *num_buffers_hi;     /* (the two bytes may sit in two buffers) */
};

struct virtio_net {
	struct virtio_dev vdev;         /* the transport's view; vdev.priv == this */
	struct net_backend *be;         /* not owned: the caller closes it */
	struct evloop *loop;            /* where be->fd is watched */
	struct ev_handler be_ev;        /* "the backend has a frame" */
	struct virtio_net_config config;
	struct virtq_chain *chain;      /* scratch for one popped chain: 16 KiB */
	struct virtio_net_rx rx;

	/*
	 * Held by the event loop while it works on the queues, by activate
	 * and reset, and for config and link changes. Lock order: transport
	 * lock -> lock -> queue lock.
	 */
	pthread_mutex_t lock;
	bool active;                    /* between activate and reset */
	bool broken;                    /* the guest broke the protocol: wait for reset */
	bool polling;                   /* be->fd is on the event loop */
	struct virtio_net_filter filter;
	struct virtio_net_stats stats;
};

/*
 * Fills in n->vdev for a NIC with mac and mtu on backend be, whose fd is
 * watched on loop. n may hold anything before. 0 or -ENOMEM.
 */
int virtio_net_init(struct virtio_net *n, struct net_backend *be, struct evloop *loop,
		    const uint8_t mac[6], unsigned int mtu);
/* After virtio_pci_stop(): frees what init allocated. Does not close n->be. */
void virtio_net_destroy(struct virtio_net *n);

/* Link up or down (the monitor's set_link): config interrupt if STATUS. */
void virtio_net_set_link(struct virtio_net *n, bool up);
/* Asks the guest to announce itself (GUEST_ANNOUNCE), e.g. after a move. */
void virtio_net_announce(struct virtio_net *n);
void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s);
bool virtio_net_link_up(struct virtio_net *n);

#endif
