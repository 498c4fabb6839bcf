/* SPDX-License-Identifier: MIT */
/*
 * A network backend: where a virtual NIC's frames go to and come from on
 * the host. TAP (net/tap.c) is the first; a user-mode one (libslirp) is to
 * plug in the same way. The NIC (virtio/net.c) sees only this interface.
 *
 * Every frame crosses it with the 12-byte virtio_net_hdr_v1 in front
 * (virtio 1.x §5.1.6): a TAP opened with IFF_VNET_HDR and a header size of
 * 12 reads and writes exactly that, so the common case copies nothing. A
 * backend that cannot take checksum or segmentation offloads says so in
 * .offloads, the NIC then offers none, and the header it sees is all zero.
 */
#ifndef MINIVM_NET_BACKEND_H
#define MINIVM_NET_BACKEND_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The header every frame carries across the interface: sizeof(virtio_net_hdr_v1). */
#define NET_HDR_LEN 12

/*
 * Offloads, in TUNSETOFFLOAD's meaning: what the backend can take from
 * the NIC already (tx) and may hand to it unfinished (rx).
 */
#define NET_OFFLOAD_CSUM 0x01    /* partial checksums (NEEDS_CSUM) */
#define NET_OFFLOAD_TSO4 0x02    /* TCP segmentation, IPv4 */
#define NET_OFFLOAD_TSO6 0x04    /* TCP segmentation, IPv6 */
#define NET_OFFLOAD_ECN 0x08     /* TSO with the ECN (CWR) bit */
#define NET_OFFLOAD_UFO 0x10     /* UDP fragmentation */

struct net_backend;

struct net_backend_ops {
	/*
	 * Sends one frame, header included, gathered from iov. Never blocks.
	 * Returns the bytes sent, or -errno (-EAGAIN: no room now; the frame
	 * is the caller's to drop).
	 */
	ssize_t (*send)(struct net_backend *b, const struct iovec *iov, int iovcnt);
	/*
	 * Receives one frame, header included, into buf. Never blocks.
	 * Returns its length, or -errno (-EAGAIN: nothing waiting).
	 */
	ssize_t (*recv)(struct net_backend *b, void *buf, size_t len);
	/*
	 * Sets the rx offloads the guest accepts (NET_OFFLOAD_* within
	 * b->offloads): with none, the backend finishes checksums and
	 * segments before it hands frames over. 0 or -errno.
	 */
	int (*set_offloads)(struct net_backend *b, unsigned int offloads);
	/* Closes and frees b (running its downscript, for a TAP). */
	void (*close)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	int fd;                  /* readable when recv() has a frame; -1: none */
	unsigned int offloads;   /* NET_OFFLOAD_* it supports */
	char ifname[IFNAMSIZ];   /* for messages and the monitor; "" if none */
};

#endif
