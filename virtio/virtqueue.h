/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue, device side (virtio 1.x, section 2.7 "Split Virtqueues").
 *
 * A split virtqueue is three rings in guest RAM that the driver allocates:
 * the descriptor table (buffers), the available ring (chains the driver
 * offers) and the used ring (chains the device has finished with). The
 * transport (virtio-pci) fills in the addresses, the size and the negotiated
 * features and calls virtq_init(); a device (blk, net, ...) then loops:
 *
 *	for (;;) {
 *		virtq_set_notify(q, false);      // no kicks while we are busy
 *		while ((r = virtq_pop(q, &chain)) > 0) {
 *			... read chain.iov[0 .. n_out), write the rest ...
 *			virtq_push(q, chain.head, bytes_written);
 *		}
 *		if (r < 0)
 *			... queue broken: set DEVICE_NEEDS_RESET, stop ...
 *		if (virtq_needs_interrupt(q))
 *			... raise the queue's interrupt ...
 *		virtq_set_notify(q, true);       // includes a full barrier
 *		if (!virtq_has_work(q))          // re-check: no lost kick
 *			break;
 *	}
 *
 * The guest is the attacker: a malformed ring breaks the queue (every later
 * call fails) instead of being trusted, and no host memory outside guest RAM
 * is ever touched. Buffer contents (the iovecs) stay shared with the guest,
 * which may change them at any time: devices copy headers before checking
 * them.
 *
 * One thread at a time may use a queue: there is no lock inside.
 */
#ifndef MINIVM_VIRTQUEUE_H
#define MINIVM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"

#define VIRTQ_MAX_SIZE 32768

/*
 * Most segments one chain may have: IOV_MAX, so a chain always fits one
 * preadv()/writev(), and the same limit Linux and QEMU use.
 */
#define VIRTQ_MAX_SEGS 1024

/* Ring layout in guest memory (section 2.7.5 - 2.7.8). All little-endian. */
#define VIRTQ_DESC_F_NEXT 1     /* the chain continues at .next */
#define VIRTQ_DESC_F_WRITE 2    /* device-writable (else device-readable) */
#define VIRTQ_DESC_F_INDIRECT 4 /* the buffer is a table of descriptors */

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1 /* driver: please don't interrupt */
#define VIRTQ_USED_F_NO_NOTIFY 1     /* device: please don't kick */

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then uint16_t used_event */
};

struct virtq_used_elem {
	uint32_t id;  /* head of the chain, 32 bits for padding reasons */
	uint32_t len; /* bytes the device wrote into the chain */
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then uint16_t avail_event */
};

/* Bytes of each ring, event fields included, and their alignment (2.7). */
#define VIRTQ_DESC_BYTES(n) (16ULL * (n))
#define VIRTQ_AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define VIRTQ_USED_BYTES(n) (6ULL + 8ULL * (n))
#define VIRTQ_DESC_ALIGN 16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN 4

struct virtq {
	/* Set by the transport before virtq_init(). */
	const struct guest_mem *mem;
	uint16_t size;       /* power of 2, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool event_idx;      /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;       /* VIRTIO_F_INDIRECT_DESC negotiated */

	/* Private: set up by virtq_init(), changed by the calls below. */
	bool ready;
	int error;                /* 0, or the -errno that broke the queue */
	uint16_t last_avail_idx;  /* next avail->ring slot to pop */
	uint16_t used_idx;        /* shadow of used->idx: we are its only writer */
	uint16_t signalled_used;  /* used_idx at the last needs_interrupt() */
	uint32_t unsignalled;     /* pushes since then, saturating at 65536 */
	bool notify;              /* kicks wanted (virtq_set_notify()) */
	struct virtq_desc *desc;  /* host pointers, checked once in init */
	struct virtq_avail *avail;
	struct virtq_used *used;
	uint16_t *used_event;     /* avail->ring[size] */
	uint16_t *avail_event;    /* used->ring[size] */
};

/*
 * One popped chain (one request). iov[0 .. n_out) are the device-readable
 * ("out", driver to device) buffers, iov[n_out .. n_out + n_in) the
 * device-writable ("in") ones. Zero-length descriptors are left out.
 * out_len + in_len never exceeds UINT32_MAX.
 */
struct virtq_chain {
	uint16_t head;
	unsigned int n_out;
	unsigned int n_in;
	uint64_t out_len;
	uint64_t in_len;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/*
 * Checks the configuration (size a power of 2 up to 32768, rings aligned and
 * each wholly inside one RAM region), caches the ring pointers and resets
 * the indices to 0. Returns 0 or -EINVAL / -EFAULT; the queue then stays
 * unusable until a successful virtq_init().
 */
int virtq_init(struct virtq *q);

/*
 * Takes the next available chain. Returns 1 with *c filled in, 0 if the
 * ring is empty, or -errno if the ring is malformed (-EINVAL, -EFAULT,
 * -ELOOP, -E2BIG, -EOVERFLOW): the queue is then broken, *c is garbage and
 * every later call fails with the same error.
 *
 * A chain may hold at most size descriptors, direct and indirect ones
 * together (2.7.5.3.1), and VIRTQ_MAX_SEGS non-empty ones: a device that
 * advertises a segment limit (blk seg_max) keeps it below both.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/*
 * Returns chain head to the driver, having written written bytes into it.
 * Publishes used->idx with release semantics. 0, or -errno.
 */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/*
 * Returns n chains at once and publishes used->idx once, after all of them:
 * a driver never sees part of the batch. virtio-net needs this for one
 * frame spread over several rx buffers (MRG_RXBUF), which the driver
 * reads as a whole once it sees the first. 0, or -errno (nothing pushed).
 */
int virtq_push_n(struct virtq *q, const struct virtq_used_elem *elems, unsigned int n);

/*
 * After one or more pushes: does the driver want an interrupt? Honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with VIRTIO_F_EVENT_IDX
 * (section 2.7.10). False if nothing was pushed since the last call.
 */
bool virtq_needs_interrupt(struct virtq *q);

/*
 * Asks the driver to kick (enable) or not to bother (disable) when it adds
 * buffers: VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX. Both are
 * hints. After enabling, call virtq_has_work() once more: a buffer added
 * just before the driver saw the change comes with no kick.
 */
void virtq_set_notify(struct virtq *q, bool enable);

/* True if the driver has made chains available that were not popped yet. */
bool virtq_has_work(struct virtq *q);

#endif
