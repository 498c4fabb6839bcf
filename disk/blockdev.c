// SPDX-License-Identifier: MIT
/*
 * The block layer between a disk device and a format driver: checks every
 * request against the device (bounds, alignment, read-only), then runs it on
 * a pool of worker threads so the device's queue thread never blocks on the
 * host's storage. Why threads and not io_uring: see blockdev.h.
 *
 * One pool per device: a FIFO of requests under one mutex, N workers taking
 * from it, and a count of requests in flight for blockdev_drain(). Workers
 * run with every signal blocked, so signals meant for the VMM (Ctrl-C, vCPU
 * kicks) never land on them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/blockdev.h"
#include "disk/image.h"
#include "disk/iov.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

struct blk_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* a request was queued, or stopping */
	pthread_cond_t idle;  /* inflight dropped to 0 */
	struct blk_req *head, *tail;
	unsigned inflight;    /* queued or running */
	bool stopping;
	unsigned nthreads;    /* started */
	pthread_t threads[BLOCKDEV_MAX_WORKERS];
};

static const struct blockdev_ops *blockdev_driver(enum drive_format format)
{
	switch (format) {
	case DRIVE_FORMAT_RAW:
		return &raw_ops;
	case DRIVE_FORMAT_QCOW2:
		return &qcow2_ops;
	}
	return NULL;
}

/*
 * format= absent: the magic decides. A probed raw image remembers it, for
 * the guard in blk_execute(). When the file cannot be read, raw's open
 * reports why.
 */
static const struct blockdev_ops *blockdev_probe(struct blockdev *bd, const char *path)
{
	enum image_format f;
	char err[16];

	if (!image_probe(path, &f, err, sizeof(err)) && f == IMAGE_FORMAT_QCOW2)
		return &qcow2_ops;
	bd->probed_raw = true;
	return &raw_ops;
}

/*
 * QEMU's guard for probed raw images: a write that would give sector 0 a
 * qcow2 magic would make the next probe open it as qcow2, with backing
 * files of the guest's choosing.
 */
static bool blk_probe_guard(const struct blockdev *bd, const struct blk_req *r)
{
	uint8_t head[4];

	if (!bd->probed_raw || r->op != BLK_WRITE || r->offset != 0 ||
	    iov_total(r->iov, r->iovcnt) < sizeof(head))
		return false;
	iov_copy(r->iov, r->iovcnt, 0, head, sizeof(head), false);
	return head[0] == (QCOW2_MAGIC >> 24) && head[1] == ((QCOW2_MAGIC >> 16) & 0xff) &&
	       head[2] == ((QCOW2_MAGIC >> 8) & 0xff) && head[3] == (QCOW2_MAGIC & 0xff);
}

/* Runs one checked request with the driver; returns done()'s result. */
static int blk_execute(struct blockdev *bd, struct blk_req *r)
{
	switch (r->op) {
	case BLK_READ:
		return bd->ops->readv(bd, r->offset, r->iov, r->iovcnt);
	case BLK_WRITE:
		if (blk_probe_guard(bd, r))
			return -EPERM;
		return bd->ops->writev(bd, r->offset, r->iov, r->iovcnt);
	case BLK_FLUSH:
		/* Nothing to make durable on a read-only device; unsafe drops flushes. */
		if (bd->read_only || bd->cache.no_flush)
			return 0;
		return bd->ops->flush(bd);
	case BLK_DISCARD:
		/* discard=ignore: QEMU completes discards without doing anything */
		if (!bd->discard || !r->len)
			return 0;
		return bd->ops->discard(bd, r->offset, r->len);
	case BLK_WRITE_ZEROES:
		if (!r->len)
			return 0;
		return bd->ops->write_zeroes(bd, r->offset, r->len, r->unmap && bd->discard);
	}
	return -EINVAL;
}

static void *blk_worker(void *arg)
{
	struct blockdev *bd = arg;
	struct blk_pool *p = bd->pool;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct blk_req *r;
		int result;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->work, &p->lock);
		r = p->head;
		if (!r)
			break; /* stopping, and the queue is empty */
		p->head = r->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		result = blk_execute(bd, r);
		r->done(r, result); /* r may be gone after this */

		pthread_mutex_lock(&p->lock);
		if (--p->inflight == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Stops and joins the workers; the queue must be empty. */
static void blk_pool_stop(struct blk_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static int blk_pool_start(struct blockdev *bd, unsigned nthreads)
{
	struct blk_pool *p = calloc(1, sizeof(*p));
	sigset_t all, old;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	bd->pool = p;

	/* Threads inherit the signal mask: create them with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < nthreads; i++) {
		char name[16];

		ret = -pthread_create(&p->threads[i], NULL, blk_worker, bd);
		if (ret)
			break;
		snprintf(name, sizeof(name), "blk%u", i);
		pthread_setname_np(p->threads[i], name);
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		blk_pool_stop(p);
		bd->pool = NULL;
	}
	return ret;
}

int blockdev_open(const struct drive_opts *o, struct blockdev **out, char *err, size_t errlen)
{
	unsigned workers = o->workers ? o->workers : BLOCKDEV_DEFAULT_WORKERS;
	struct blockdev *bd;
	int ret;

	*out = NULL;
	if (workers > BLOCKDEV_MAX_WORKERS) {
		snprintf(err, errlen, "%s: at most %d worker threads", o->file,
			 BLOCKDEV_MAX_WORKERS);
		return -EINVAL;
	}
	bd = calloc(1, sizeof(*bd));
	if (!bd || !(bd->name = strdup(o->file))) {
		free(bd);
		snprintf(err, errlen, "%s: out of memory", o->file);
		return -ENOMEM;
	}
	bd->read_only = o->read_only;
	bd->discard = o->discard == DRIVE_DISCARD_UNMAP;
	bd->cache = drive_cache_flags(o->cache);
	bd->block_size = BLOCKDEV_SECTOR;
	bd->ops = o->format_given ? blockdev_driver(o->format) : blockdev_probe(bd, o->file);
	if (!bd->ops) {
		snprintf(err, errlen, "%s: format=%s is not supported yet", o->file,
			 drive_format_name(o->format));
		ret = -ENOTSUP;
		goto fail;
	}
	ret = bd->ops->open(bd, o, err, errlen);
	if (ret)
		goto fail;
	ret = blk_pool_start(bd, workers);
	if (ret) {
		snprintf(err, errlen, "%s: cannot start I/O threads: %s", o->file, strerror(-ret));
		bd->ops->close(bd);
		goto fail;
	}
	*out = bd;
	return 0;

fail:
	free(bd->name);
	free(bd);
	return ret;
}

/* The checks every request passes before it is queued. */
static int blk_check(const struct blockdev *bd, const struct blk_req *r)
{
	uint64_t len = 0;

	if (!r->done)
		return -EINVAL;
	switch (r->op) {
	case BLK_READ:
	case BLK_WRITE:
		if (r->iovcnt < 0 || (r->iovcnt && !r->iov))
			return -EINVAL;
		for (int i = 0; i < r->iovcnt; i++) {
			if (r->iov[i].iov_len > BLOCKDEV_MAX_RW - len)
				return -EINVAL;
			len += r->iov[i].iov_len;
		}
		break;
	case BLK_FLUSH:
		return 0;
	case BLK_DISCARD:
	case BLK_WRITE_ZEROES:
		len = r->len;
		break;
	default:
		return -EINVAL;
	}
	if (r->op != BLK_READ && bd->read_only)
		return -EROFS;
	/* block_size is a power of two */
	if ((r->offset | len) & (bd->block_size - 1))
		return -EINVAL;
	/* written so that offset + len cannot overflow */
	if (r->offset > bd->size || len > bd->size - r->offset)
		return -EINVAL;
	return 0;
}

int blockdev_submit(struct blockdev *bd, struct blk_req *r)
{
	struct blk_pool *p = bd->pool;
	int ret = blk_check(bd, r);

	if (ret)
		return ret;
	r->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = r;
	else
		p->head = r;
	p->tail = r;
	p->inflight++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void blockdev_drain(struct blockdev *bd)
{
	struct blk_pool *p = bd->pool;

	pthread_mutex_lock(&p->lock);
	while (p->inflight)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void blockdev_close(struct blockdev *bd)
{
	if (!bd)
		return;
	blockdev_drain(bd);
	blk_pool_stop(bd->pool);
	bd->ops->close(bd);
	free(bd->name);
	free(bd);
}
