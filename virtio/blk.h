/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk: a virtual disk on the virtio transport, as the virtio 1.x
 * specification describes it in §5.2 "Block Device". One request queue;
 * requests go to a struct blockdev (disk/blockdev.h), which runs them on its
 * worker threads, so the event loop only pops, checks and submits.
 *
 * Two layers, so the part that reads what the guest wrote can be tested
 * without KVM or a transport:
 *  - virtio_blk_parse(): a popped chain -> a checked request description,
 *    with no side effects but trimming the chain's iovecs;
 *  - struct virtio_blk: the device (config space, queue handling,
 *    completions), behind struct virtio_dev_ops.
 */
#ifndef MINIVM_VIRTIO_BLK_H
#define MINIVM_VIRTIO_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "disk/blockdev.h"
#include "disk/drive.h"
#include "virtio/virtio.h"
#include "virtio/virtqueue.h"

/* Feature bits (§5.2.3) */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_CONFIG_WCE 11
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types (§5.2.6) */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* The status byte (§5.2.6) */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512      /* the protocol's unit, whatever blk_size says */
#define VIRTIO_BLK_ID_BYTES 20     /* GET_ID reply: NUL-padded, no NUL if 20 long */
#define VIRTIO_BLK_DWZ_F_UNMAP 1   /* virtio_blk_discard_write_zeroes.flags bit 0 */

/*
 * What this device offers. A chain holds at most queue-size descriptors
 * (§2.7.5.3.1, enforced by virtq_pop), and header and status take one each,
 * so seg_max is queue size - 2. seg_max * size_max stays below
 * BLOCKDEV_MAX_RW, so a driver that keeps to both never sends a request the
 * block layer refuses for its size.
 */
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_SIZE_MAX (4U << 20)
/*
 * DISCARD and WRITE_ZEROES: segments per request (Linux merges discards of
 * up to max_discard_seg ranges; write zeroes always come one at a time) and
 * sectors per segment: 1 GiB, so one segment keeps a worker busy for a
 * bounded time when the host has to write the zeros out.
 */
#define VIRTIO_BLK_MAX_DWZ_SEG 32
#define VIRTIO_BLK_MAX_DWZ_SECTORS (1U << 21)

/*
 * Device configuration layout (§5.2.4), as the driver reads it: packed and
 * little-endian. Only the fields up to the write-zeroes ones: the rest
 * (secure erase, zoned) belongs to features we do not offer.
 */
struct virtio_blk_config {
	uint64_t capacity; /* in 512-byte sectors, always present */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* One DISCARD / WRITE_ZEROES segment, copied out of the request, host order. */
struct virtio_blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* What requests are checked against; fixed when the device is created. */
struct virtio_blk_limits {
	uint64_t capacity;      /* 512-byte sectors */
	uint32_t block_size;    /* bytes, a power of 2 >= 512: offsets and lengths align to it */
	bool read_only;         /* VIRTIO_BLK_F_RO offered */
	bool discard;           /* VIRTIO_BLK_F_DISCARD offered */
	bool write_zeroes;      /* VIRTIO_BLK_F_WRITE_ZEROES offered */
	uint32_t max_dwz_seg;   /* <= VIRTIO_BLK_MAX_DWZ_SEG */
	uint32_t max_dwz_sectors;
};

/* A request as virtio_blk_parse() found it. */
struct virtio_blk_req {
	/*
	 * VIRTIO_BLK_S_OK: the request is valid and is to be carried out.
	 * IOERR or UNSUPP: complete it at once with this status.
	 */
	uint8_t status;
	uint8_t *status_ptr;    /* the last device-writable byte: in guest RAM */
	uint32_t type;          /* from the header; UINT32_MAX when there was none */
	uint64_t sector;        /* from the header */
	/*
	 * The data: a sub-array of the chain's iovecs, without the header
	 * and the status byte. Device-writable for IN and GET_ID,
	 * device-readable for OUT, DISCARD and WRITE_ZEROES, empty for FLUSH.
	 */
	struct iovec *iov;
	unsigned int iovcnt;
	uint64_t len;           /* bytes in iov */
	/* DISCARD, WRITE_ZEROES: the segments, copied and checked */
	unsigned int nseg;
	struct virtio_blk_seg seg[VIRTIO_BLK_MAX_DWZ_SEG];
};

/*
 * Reads and checks one popped request. The 16-byte header (and the
 * DISCARD/WRITE_ZEROES segments) are copied out of guest memory once and
 * only the copies are looked at; data buffers are not read. To make r->iov
 * a sub-array of c->iov, the first data iovec is advanced past the end of
 * the header and the last one shortened by the status byte, in place.
 *
 * Returns -EINVAL when the chain has no device-writable byte to hold the
 * status: the driver broke the protocol and there is no way to tell it, so
 * the device sets DEVICE_NEEDS_RESET. Otherwise returns 0 and r->status says
 * whether to carry the request out; these become IOERR (the spec's
 * "device or driver error"):
 *  - a device-readable part shorter than the header;
 *  - data in the wrong direction, or any for FLUSH (which has none);
 *  - IN/OUT: a length or sector not a multiple of 512 (and of block_size),
 *    a range past the capacity (overflow included), more than
 *    BLOCKDEV_MAX_RW bytes;
 *  - OUT, DISCARD, WRITE_ZEROES on a read-only device (§5.2.6.4);
 *  - DISCARD/WRITE_ZEROES: no segment, a length not a multiple of 16, more
 *    than max_dwz_seg segments, a segment out of range, misaligned or over
 *    max_dwz_sectors;
 * and these UNSUPP: an unknown type, DISCARD or WRITE_ZEROES when not
 * offered, and (§5.2.6.4) any flag but unmap, or unmap on a DISCARD.
 */
int virtio_blk_parse(const struct virtio_blk_limits *l, struct virtq_chain *c,
		     struct virtio_blk_req *r);

struct virtio_blk_ctx; /* one request in flight; private to blk.c */

struct virtio_blk_stats {
	uint64_t requests;       /* completed with any status */
	uint64_t ioerr;
	uint64_t unsupp;
	uint64_t bytes_read;     /* IN */
	uint64_t bytes_written;  /* OUT */
};

struct virtio_blk {
	struct virtio_dev vdev;         /* the transport's view; vdev.priv == this */
	struct blockdev *bd;            /* not owned: the caller closes it */
	struct virtio_blk_config config;
	struct virtio_blk_limits limits;
	char id[VIRTIO_BLK_ID_BYTES];   /* the GET_ID reply */
	struct virtq_chain *chain;      /* queue_notify's scratch: 16 KiB, on the heap */

	/*
	 * Held by queue_notify while it pops and submits, and by activate and
	 * reset to change the flags, so that a reset never races a pop.
	 */
	pthread_mutex_t lock;
	bool active;                    /* between activate and reset */
	bool broken;                    /* the guest broke the protocol: wait for reset */
	/* Atomic: a reset is under way; completions are dropped, pops stop. */
	bool stopping;

	/* The request contexts, one per possible chain in flight. */
	pthread_mutex_t pool_lock;
	struct virtio_blk_ctx *pool;
	struct virtio_blk_ctx *free;    /* under pool_lock */
	unsigned int inflight;          /* under pool_lock */
	struct virtio_blk_stats stats;  /* under pool_lock */
};

/*
 * Fills in b->vdev for bd (the options o give the serial number); the caller
 * then hands &b->vdev to the transport (virtio_pci_init()). b may hold
 * anything before. Returns 0 or -errno (-ENOMEM, -EINVAL for an image
 * whose size or block size the protocol cannot express).
 */
int virtio_blk_init(struct virtio_blk *b, struct blockdev *bd, const struct drive_opts *o);

/*
 * After the transport has stopped calling in (virtio_pci_stop()): waits for
 * requests still in flight, frees what init allocated. Does not close b->bd.
 */
void virtio_blk_destroy(struct virtio_blk *b);

/* A snapshot of the counters. */
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s);

#endif
