/* SPDX-License-Identifier: MIT */
/*
 * Block backends: what a virtual disk device (virtio-blk) reads and writes.
 *
 * A struct blockdev is one open image. Format drivers (raw.c, qcow2.c)
 * implement blockdev_ops as plain synchronous calls; this layer makes
 * them asynchronous: blockdev_submit() checks a request, queues it and
 * returns at once, and a worker thread runs it and calls r->done(). A device
 * can so keep many requests in flight without blocking its queue thread.
 *
 * The engine is a pool of worker threads (BLOCKDEV_DEFAULT_WORKERS per
 * device) around one FIFO, not io_uring. bench/blockdev-bench.c measured both
 * on the 2-vCPU development VM (ext4 on virtio, 256 MiB file, random 4 KiB,
 * 256 requests in flight, one submitting thread as virtio-blk has; ranges
 * over repeated 3 s runs on a shared host, so only the rough shape counts):
 *
 *                      pool, 4 workers   pool, 8 workers   io_uring (liburing)
 *   read,  page cache  195-290K IOPS     250-300K          340-420K
 *   write, page cache  180-230K          175-240K          150-165K
 *   read,  O_DIRECT    31-35K            38-40K            32-54K
 *   write, O_DIRECT    21-26K            35K               56-59K
 *   CPU per request    3-22 us           2-15 us           1.6-3.8 us
 *
 * io_uring is ahead with O_DIRECT (up to 1.6x on writes) and costs less
 * CPU; through the page cache, the default, each wins one column (io_uring
 * punts buffered writes to its own workers). We still take the pool: it
 * needs nothing beyond libc, it works where io_uring is switched off
 * (container seccomp profiles, kernel.io_uring_disabled), any engine would
 * need it as the fallback, and it is short enough to read. 8 workers is
 * the knee for O_DIRECT on this storage. An io_uring engine for
 * aio=io_uring can go behind blockdev_submit() later without changing
 * callers.
 *
 * Rules for callers:
 *  - blockdev_submit() may be called from any thread, several at once.
 *  - done(r, result) runs exactly once per accepted request, on a worker
 *    thread, with no blockdev lock held; different requests complete on
 *    different workers at the same time, so the device locks its own state
 *    (used ring, interrupt) in done(). done() may call blockdev_submit()
 *    (also for r itself), but never blockdev_drain() or blockdev_close().
 *  - r, its iovec array and the buffers it points to belong to the backend
 *    from blockdev_submit() returning 0 until done() is called; afterwards
 *    they are the caller's again (done may free r).
 *  - Requests in flight are not ordered against each other. A FLUSH makes
 *    durable every write that completed before the FLUSH was submitted,
 *    which is what virtio-blk and the Linux block layer ask for.
 */
#ifndef MINIVM_DISK_BLOCKDEV_H
#define MINIVM_DISK_BLOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "disk/drive.h"

#define BLOCKDEV_DEFAULT_WORKERS 8
#define BLOCKDEV_MAX_WORKERS 64
#define BLOCKDEV_SECTOR 512
/* Largest READ/WRITE: done()'s result is an int byte count. */
#define BLOCKDEV_MAX_RW (1U << 30)

enum blk_op {
	BLK_READ,
	BLK_WRITE,
	BLK_FLUSH,
	BLK_DISCARD,
	BLK_WRITE_ZEROES,
};

struct blk_req {
	enum blk_op op;
	uint64_t offset;        /* bytes; a multiple of the block size */
	struct iovec *iov;      /* READ, WRITE */
	int iovcnt;
	uint64_t len;           /* DISCARD, WRITE_ZEROES: bytes, a multiple of the block size */
	bool unmap;             /* WRITE_ZEROES: the range may be deallocated */
	/* result: bytes transferred (READ, WRITE), 0 (others), or -errno */
	void (*done)(struct blk_req *r, int result);
	void *opaque;           /* the caller's */

	/* Private to blockdev.c. */
	struct blk_req *next;
};

struct blockdev;

/*
 * A format driver. Every call but open and close runs on worker threads,
 * several at once: drivers must be thread-safe (raw.c is, with pread/pwrite
 * on one fd). Requests reach a driver checked: in bounds, aligned, never a
 * write to a read-only device. READ/WRITE return bytes or -errno and must
 * transfer everything; the others return 0 or -errno.
 */
struct blockdev_ops {
	const char *format;
	int (*open)(struct blockdev *bd, const struct drive_opts *o, char *err, size_t errlen);
	void (*close)(struct blockdev *bd);
	int (*readv)(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt);
	int (*writev)(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt);
	int (*flush)(struct blockdev *bd);
	int (*discard)(struct blockdev *bd, uint64_t offset, uint64_t len);
	int (*write_zeroes)(struct blockdev *bd, uint64_t offset, uint64_t len, bool unmap);
};

struct blk_pool; /* the worker threads, private to blockdev.c */

struct blockdev {
	char *name;             /* the image's path, for messages */
	uint64_t size;          /* bytes, a multiple of block_size */
	uint32_t block_size;    /* logical block size: 512, or more for O_DIRECT on 4K storage */
	bool read_only;
	bool discard;           /* discard=unmap: DISCARD deallocates; else DISCARD is a no-op */
	struct drive_cache cache;
	const struct blockdev_ops *ops;
	void *priv;             /* the driver's */
	struct blk_pool *pool;
	bool probed_raw;        /* raw by probing: a qcow2 magic written to sector 0 is refused */
};

/* The raw driver (raw.c); qcow2_ops is in qcow2.h. */
extern const struct blockdev_ops raw_ops;

/*
 * Opens o->file with o->format's driver, or the probed one when format= was
 * not given, and starts the workers. On failure
 * returns -errno and writes one line into err naming the file and the cause.
 */
int blockdev_open(const struct drive_opts *o, struct blockdev **out, char *err, size_t errlen);

/*
 * Checks r and queues it. Returns 0: r->done() will be called later on a
 * worker thread. Returns -errno without calling done() when r is refused:
 * -EINVAL (out of range, misaligned, bad op, overflow, too large),
 * -EROFS (WRITE, DISCARD or WRITE_ZEROES on a read-only device).
 */
int blockdev_submit(struct blockdev *bd, struct blk_req *r);

/* Waits until every submitted request has completed (e.g. on device reset). */
void blockdev_drain(struct blockdev *bd);

/* Drains, stops the workers, closes the image and frees bd. NULL is fine. */
void blockdev_close(struct blockdev *bd);

#endif
