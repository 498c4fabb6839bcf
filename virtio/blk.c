// SPDX-License-Identifier: MIT
/*
 * virtio-blk, the device side of virtio 1.x §5.2 "Block Device": one
 * request queue (no MQ), read, write, flush, get-ID, discard and write
 * zeroes, over a struct blockdev.
 *
 * A request is a chain: a 16-byte header (le32 type, le32 reserved, le64
 * sector) in device-readable buffers, then the data, then one status byte,
 * the last device-writable byte. virtio_blk_parse() turns a chain into a
 * checked struct virtio_blk_req, reading guest memory once (the header and
 * the discard segments are copied before they are looked at: the guest may
 * change its buffers at any time).
 *
 * Threads:
 *  - queue_notify runs on the event loop: it pops, parses and submits to
 *    the block layer, and never waits for I/O. Requests that need no I/O
 *    (errors, GET_ID, empty reads and writes) complete right there.
 *  - done() runs on the block layer's workers, several at once: it writes
 *    the status byte and pushes the chain with virtio_push_and_notify(),
 *    which serializes pushes under the queue's lock. Pops take the same
 *    lock, since the ring is shared between the two.
 *  - activate and reset run on a vCPU thread with the transport's lock
 *    held. reset stops the popping (b->lock) and drains the block layer;
 *    completions that finish during the reset write no status and push
 *    nothing, so the rings are left alone from the moment reset starts
 *    (data a read was already transferring still lands in its buffers).
 *  Lock order: transport lock -> b->lock -> queue lock; b->pool_lock is
 *  taken alone. So the transport's virtio_push_and_notify() and
 *  virtio_set_needs_reset(), which queue_notify calls holding b->lock,
 *  must never wait for the transport's own lock.
 *
 * Errors: the used length is the bytes written: data + status for a good
 * IN, what fits of the ID + status for GET_ID, else 1. A request that can
 * be answered is answered (IOERR for driver errors, see virtio_blk_parse());
 * only a chain with no status byte, a malformed ring, or more chains in
 * flight than descriptors set DEVICE_NEEDS_RESET, after which the queue is
 * left alone until the driver resets the device.
 *
 * Per-request state lives in a pool of VIRTIO_BLK_QUEUE_SIZE contexts: a
 * driver cannot have more chains in flight than the queue has descriptors.
 * One that does (by offering a head twice) has broken the protocol and gets
 * DEVICE_NEEDS_RESET. A context goes back to the pool before its chain is
 * pushed, so a driver that reuses descriptors as soon as it sees them used
 * always finds one free.
 *
 * CONFIG_WCE is offered so the guest sees the host's cache mode as QEMU
 * shows it: "write through" for cache=writethrough and directsync, whose
 * writes are durable when they complete, "write back" (and flushes) for the
 * others. The mode stays the host's choice (-drive cache=): a guest's write
 * to the writeback field is ignored, and the guest reads the mode back.
 *
 * Not offered: GEOMETRY and TOPOLOGY (optional hints), MQ, and the secure
 * erase, lifetime and zoned extensions.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/blk.h"
#include "vmm/log.h"

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
} __attribute__((packed));

struct virtio_blk_dwz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_req header");
_Static_assert(sizeof(struct virtio_blk_dwz) == 16, "virtio_blk_discard_write_zeroes");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "config layout");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "config layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "config layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "config layout");
_Static_assert(sizeof(struct virtio_blk_config) == 60, "config layout");
_Static_assert((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX <= BLOCKDEV_MAX_RW,
	       "a request within seg_max and size_max must fit the block layer");

struct virtio_blk_ctx {
	struct blk_req br;
	struct virtio_blk *b;
	uint16_t head;
	unsigned int seg;               /* DISCARD/WRITE_ZEROES: the one in flight */
	struct virtio_blk_req req;      /* its iov points at iov[] below */
	struct iovec iov[VIRTIO_BLK_QUEUE_SIZE];
	struct virtio_blk_ctx *next;    /* in the free list */
};

/* ---- iovec helpers ---- */

/* Copies up to len bytes, starting skip bytes into iov, to dst. Returns the count. */
static size_t iov_gather(const struct iovec *iov, unsigned int cnt, size_t skip, void *dst,
			 size_t len)
{
	uint8_t *d = dst;
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = MIN(iov[i].iov_len - skip, len - done);
		memcpy(d + done, (uint8_t *)iov[i].iov_base + skip, n);
		done += n;
		skip = 0;
	}
	return done;
}

/* Copies up to len bytes from src into iov. Returns the count. */
static size_t iov_scatter(const struct iovec *iov, unsigned int cnt, const void *src, size_t len)
{
	const uint8_t *s = src;
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		size_t n = MIN(iov[i].iov_len, len - done);

		memcpy(iov[i].iov_base, s + done, n);
		done += n;
	}
	return done;
}

/* ---- the request parser ---- */

/* Is [sector, sector + bytes) inside the disk and aligned to its blocks? */
static bool range_ok(const struct virtio_blk_limits *l, uint64_t sector, uint64_t bytes)
{
	uint64_t spb = l->block_size / VIRTIO_BLK_SECTOR; /* sectors per block */

	if (bytes % l->block_size || sector % spb)
		return false;
	/* sector <= capacity first, so that nothing below can overflow */
	return sector <= l->capacity && bytes / VIRTIO_BLK_SECTOR <= l->capacity - sector;
}

/* DISCARD, WRITE_ZEROES: copies the segments out, then checks the copies. */
static uint8_t parse_dwz(const struct virtio_blk_limits *l, struct virtio_blk_req *r)
{
	struct virtio_blk_dwz raw[VIRTIO_BLK_MAX_DWZ_SEG];
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;

	if (!r->len || r->len % sizeof(raw[0]) || r->len / sizeof(raw[0]) > l->max_dwz_seg ||
	    r->len > sizeof(raw))
		return VIRTIO_BLK_S_IOERR;
	r->nseg = r->len / sizeof(raw[0]);
	iov_gather(r->iov, r->iovcnt, 0, raw, r->len);
	for (unsigned int i = 0; i < r->nseg; i++) {
		struct virtio_blk_seg *s = &r->seg[i];

		s->sector = le64toh(raw[i].sector);
		s->num_sectors = le32toh(raw[i].num_sectors);
		s->flags = le32toh(raw[i].flags);
		/* §5.2.6.4: unknown flags, and unmap on a discard, are UNSUPP */
		if (s->flags & ~(uint32_t)(discard ? 0 : VIRTIO_BLK_DWZ_F_UNMAP))
			return VIRTIO_BLK_S_UNSUPP;
		if (s->num_sectors > l->max_dwz_sectors ||
		    !range_ok(l, s->sector, (uint64_t)s->num_sectors * VIRTIO_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Checks r once its header has been read and its data located. */
static uint8_t parse_type(const struct virtio_blk_limits *l, struct virtio_blk_req *r,
			  uint64_t readable, uint64_t writable)
{
	bool to_device; /* the data is device-readable */

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		to_device = false;
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_FLUSH:
		to_device = true;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/* §5.2.6.4: a write on a read-only device is an IOERR */
		if (l->read_only)
			return VIRTIO_BLK_S_IOERR;
		if (!(r->type == VIRTIO_BLK_T_DISCARD ? l->discard : l->write_zeroes))
			return VIRTIO_BLK_S_UNSUPP;
		to_device = true;
		break;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	if (r->type == VIRTIO_BLK_T_OUT && l->read_only)
		return VIRTIO_BLK_S_IOERR;
	/* Data the other way round is a driver error, as is data for a flush. */
	if ((to_device ? writable : readable) ||
	    (r->type == VIRTIO_BLK_T_FLUSH && readable))
		return VIRTIO_BLK_S_IOERR;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r->len > BLOCKDEV_MAX_RW || !range_ok(l, r->sector, r->len))
			return VIRTIO_BLK_S_IOERR;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_dwz(l, r);
	default: /* FLUSH, GET_ID */
		return VIRTIO_BLK_S_OK;
	}
}

int virtio_blk_parse(const struct virtio_blk_limits *l, struct virtq_chain *c,
		     struct virtio_blk_req *r)
{
	struct virtio_blk_outhdr hdr;
	struct iovec *last;
	size_t skip;
	unsigned int i;

	r->type = UINT32_MAX;
	r->sector = 0;
	r->iov = NULL;
	r->iovcnt = 0;
	r->len = 0;
	r->nseg = 0;
	r->status_ptr = NULL;
	r->status = VIRTIO_BLK_S_IOERR;

	/* virtq_pop leaves out empty buffers, but be sure of the last one */
	if (!c->n_in || !c->iov[c->n_out + c->n_in - 1].iov_len)
		return -EINVAL;
	last = &c->iov[c->n_out + c->n_in - 1];
	r->status_ptr = (uint8_t *)last->iov_base + last->iov_len - 1;

	if (c->out_len < sizeof(hdr))
		return 0; /* IOERR: we know where to say so, not what was asked */
	iov_gather(c->iov, c->n_out, 0, &hdr, sizeof(hdr));
	r->type = le32toh(hdr.type);
	r->sector = le64toh(hdr.sector);

	if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID) {
		/* the device-writable buffers, less the status byte */
		last->iov_len--;
		r->iov = &c->iov[c->n_out];
		r->iovcnt = c->n_in - (last->iov_len ? 0 : 1);
		r->len = c->in_len - 1;
	} else {
		/* the device-readable buffers, less the header */
		skip = sizeof(hdr);
		for (i = 0; i < c->n_out && skip >= c->iov[i].iov_len; i++)
			skip -= c->iov[i].iov_len;
		if (i < c->n_out) {
			c->iov[i].iov_base = (uint8_t *)c->iov[i].iov_base + skip;
			c->iov[i].iov_len -= skip;
		}
		r->iov = &c->iov[i];
		r->iovcnt = c->n_out - i;
		r->len = c->out_len - sizeof(hdr);
	}
	r->status = parse_type(l, r, c->out_len - sizeof(hdr), c->in_len - 1);
	return 0;
}

/* ---- the request pool ---- */

static struct virtio_blk_ctx *ctx_get(struct virtio_blk *b)
{
	struct virtio_blk_ctx *x;

	pthread_mutex_lock(&b->pool_lock);
	x = b->free;
	if (x) {
		b->free = x->next;
		b->inflight++;
	}
	pthread_mutex_unlock(&b->pool_lock);
	return x;
}

/* Returns x to the pool and counts its completion (status < 0: none). */
static void ctx_put(struct virtio_blk *b, struct virtio_blk_ctx *x, int status)
{
	pthread_mutex_lock(&b->pool_lock);
	if (status >= 0) {
		b->stats.requests++;
		if (status == VIRTIO_BLK_S_IOERR)
			b->stats.ioerr++;
		else if (status == VIRTIO_BLK_S_UNSUPP)
			b->stats.unsupp++;
		else if (x->req.type == VIRTIO_BLK_T_IN)
			b->stats.bytes_read += x->req.len;
		else if (x->req.type == VIRTIO_BLK_T_OUT)
			b->stats.bytes_written += x->req.len;
	}
	x->next = b->free;
	b->free = x;
	b->inflight--;
	pthread_mutex_unlock(&b->pool_lock);
}

/* ---- completion ---- */

/*
 * Writes the status byte and gives the chain back, written bytes long; or,
 * once a reset has begun, only frees x: the driver is throwing the queue
 * away and must not see it change any more.
 */
static void vblk_complete(struct virtio_blk *b, struct virtio_blk_ctx *x, uint8_t status,
			  uint32_t written)
{
	uint16_t head = x->head;

	if (__atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE)) {
		ctx_put(b, x, -1);
		return;
	}
	*x->req.status_ptr = status;
	/* x is free from here: a new request may reuse it as soon as we push */
	ctx_put(b, x, status);
	/* pushing publishes used->idx with release semantics: the status is seen first */
	virtio_push_and_notify(&b->vdev, 0, head, written);
}

static uint8_t errno_status(int err)
{
	return err == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

static void vblk_done(struct blk_req *br, int result);

/* Sets up x->br for segment x->seg of a DISCARD or WRITE_ZEROES. */
static void dwz_prepare(struct virtio_blk_ctx *x)
{
	const struct virtio_blk_seg *s = &x->req.seg[x->seg];

	x->br = (struct blk_req){
		.op = x->req.type == VIRTIO_BLK_T_DISCARD ? BLK_DISCARD : BLK_WRITE_ZEROES,
		.offset = s->sector * VIRTIO_BLK_SECTOR,
		.len = (uint64_t)s->num_sectors * VIRTIO_BLK_SECTOR,
		.unmap = s->flags & VIRTIO_BLK_DWZ_F_UNMAP,
		.done = vblk_done,
		.opaque = x,
	};
}

/* On a block layer worker. */
static void vblk_done(struct blk_req *br, int result)
{
	struct virtio_blk_ctx *x = br->opaque;
	struct virtio_blk *b = x->b;
	int ret;

	switch (x->req.type) {
	case VIRTIO_BLK_T_IN:
		if (result >= 0 && (uint64_t)result == x->req.len)
			vblk_complete(b, x, VIRTIO_BLK_S_OK, x->req.len + 1);
		else
			vblk_complete(b, x, errno_status(result), 1);
		return;
	case VIRTIO_BLK_T_OUT:
		if (result >= 0 && (uint64_t)result == x->req.len)
			vblk_complete(b, x, VIRTIO_BLK_S_OK, 1);
		else
			vblk_complete(b, x, errno_status(result), 1);
		return;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		/*
		 * A discard only allows deallocation (§5.2.6.4): a host that
		 * cannot punch holes has still done all that was asked.
		 */
		if (x->req.type == VIRTIO_BLK_T_DISCARD && result == -EOPNOTSUPP)
			result = 0;
		/* One segment at a time, each submitted from the last one's done(). */
		if (result < 0 || ++x->seg == x->req.nseg) {
			vblk_complete(b, x, result < 0 ? errno_status(result) : VIRTIO_BLK_S_OK, 1);
			return;
		}
		if (__atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE)) {
			ctx_put(b, x, -1);
			return;
		}
		dwz_prepare(x);
		ret = blockdev_submit(b->bd, &x->br);
		if (ret)
			vblk_complete(b, x, errno_status(ret), 1);
		return;
	default: /* FLUSH */
		vblk_complete(b, x, result < 0 ? errno_status(result) : VIRTIO_BLK_S_OK, 1);
		return;
	}
}

/* ---- the request queue ---- */

/*
 * Parses and starts the chain in b->chain. Returns NULL, or why the driver
 * broke the protocol.
 */
static const char *vblk_start(struct virtio_blk *b)
{
	struct virtq_chain *c = b->chain;
	struct virtio_blk_ctx *x = ctx_get(b);
	struct virtio_blk_req *r;
	size_t n;
	int ret;

	if (!x)
		return "more requests in flight than the queue has descriptors";
	r = &x->req;
	if (virtio_blk_parse(&b->limits, c, r) < 0) {
		ctx_put(b, x, -1);
		return "a request without a status byte";
	}
	x->head = c->head;
	if (r->status != VIRTIO_BLK_S_OK) {
		vblk_complete(b, x, r->status, 1);
		return NULL;
	}

	switch (r->type) {
	case VIRTIO_BLK_T_GET_ID:
		n = iov_scatter(r->iov, r->iovcnt, b->id, MIN(r->len, sizeof(b->id)));
		vblk_complete(b, x, VIRTIO_BLK_S_OK, n + 1);
		return NULL;
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (!r->len) {
			vblk_complete(b, x, VIRTIO_BLK_S_OK, 1);
			return NULL;
		}
		/* r->iov points into b->chain, which the next pop overwrites */
		if (r->iovcnt > ARRAY_SIZE(x->iov)) { /* a chain is at most queue size long */
			vblk_complete(b, x, VIRTIO_BLK_S_IOERR, 1);
			return NULL;
		}
		memcpy(x->iov, r->iov, r->iovcnt * sizeof(x->iov[0]));
		r->iov = x->iov;
		x->br = (struct blk_req){
			.op = r->type == VIRTIO_BLK_T_IN ? BLK_READ : BLK_WRITE,
			.offset = r->sector * VIRTIO_BLK_SECTOR,
			.iov = x->iov,
			.iovcnt = r->iovcnt,
			.done = vblk_done,
			.opaque = x,
		};
		break;
	case VIRTIO_BLK_T_FLUSH:
		x->br = (struct blk_req){ .op = BLK_FLUSH, .done = vblk_done, .opaque = x };
		break;
	default: /* DISCARD, WRITE_ZEROES: the parser accepts nothing else */
		r->iov = NULL;
		r->iovcnt = 0;
		x->seg = 0;
		dwz_prepare(x);
		break;
	}
	/* From here x belongs to the block layer until done(). */
	ret = blockdev_submit(b->bd, &x->br);
	if (ret)
		vblk_complete(b, x, errno_status(ret), 1);
	return NULL;
}

static int vblk_pop(struct virtio_queue *vq, struct virtq_chain *c)
{
	int ret;

	pthread_mutex_lock(&vq->lock);
	ret = virtq_pop(&vq->vq, c);
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

/* Event loop thread. */
static void vblk_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtio_blk *b = v->priv;
	struct virtio_queue *vq = &v->queues[q];
	const char *why = NULL;
	bool more;
	int ret = 0;

	if (q != 0)
		return;
	pthread_mutex_lock(&b->lock);
	if (!b->active || b->broken)
		goto out;
	/* virtqueue.h: no kicks while we pop, then re-check so none is lost. */
	do {
		pthread_mutex_lock(&vq->lock);
		virtq_set_notify(&vq->vq, false);
		pthread_mutex_unlock(&vq->lock);

		while (!__atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE) &&
		       (ret = vblk_pop(vq, b->chain)) > 0) {
			why = vblk_start(b);
			if (why)
				break;
		}
		if (__atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE))
			break; /* a reset is waiting for us */
		if (!why && ret < 0)
			why = "malformed request queue";
		if (why) {
			b->broken = true;
			break;
		}

		pthread_mutex_lock(&vq->lock);
		virtq_set_notify(&vq->vq, true);
		more = virtq_has_work(&vq->vq);
		pthread_mutex_unlock(&vq->lock);
	} while (more);
out:
	pthread_mutex_unlock(&b->lock);
	if (why)
		virtio_set_needs_reset(v, why);
}

/* ---- struct virtio_dev_ops ---- */

static void vblk_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned size)
{
	struct virtio_blk *b = v->priv;
	const uint8_t *cfg = (const uint8_t *)&b->config;
	uint8_t *out = data;

	/* Any size at any offset; bytes past the end read as 0. */
	for (unsigned i = 0; i < size; i++)
		out[i] = off < sizeof(b->config) && i < sizeof(b->config) - off ? cfg[off + i] : 0;
}

static void vblk_config_write(struct virtio_dev *v, uint64_t off, const void *data,
			      unsigned size)
{
	/* Only writeback is writable (CONFIG_WCE), and the host's cache mode wins. */
	(void)v;
	(void)off;
	(void)data;
	(void)size;
}

static int vblk_activate(struct virtio_dev *v)
{
	struct virtio_blk *b = v->priv;

	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->stopping, false, __ATOMIC_RELEASE);
	b->broken = false;
	b->active = true;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void vblk_reset(struct virtio_dev *v)
{
	struct virtio_blk *b = v->priv;

	/* First make a queue_notify under way stop at its next chain... */
	__atomic_store_n(&b->stopping, true, __ATOMIC_RELEASE);
	/* ...wait for it to leave... */
	pthread_mutex_lock(&b->lock);
	b->active = false;
	b->broken = false;
	pthread_mutex_unlock(&b->lock);
	/* ...and for the requests it started: their completions are dropped. */
	blockdev_drain(b->bd);
}

static const struct virtio_dev_ops virtio_blk_ops = {
	.config_read = vblk_config_read,
	.config_write = vblk_config_write,
	.activate = vblk_activate,
	.reset = vblk_reset,
	.queue_notify = vblk_queue_notify,
};

/* ---- setup ---- */

int virtio_blk_init(struct virtio_blk *b, struct blockdev *bd, const struct drive_opts *o)
{
	struct virtio_blk_config *cfg = &b->config;
	struct virtio_blk_limits *l = &b->limits;
	uint32_t bs = bd->block_size;

	memset(b, 0, sizeof(*b));
	/* blk_size: a power of 2 of whole sectors that fits one segment; the disk: whole blocks */
	if (bs < VIRTIO_BLK_SECTOR || bs > VIRTIO_BLK_SIZE_MAX || (bs & (bs - 1)) || bd->size % bs)
		return -EINVAL;

	b->bd = bd;
	l->capacity = bd->size / VIRTIO_BLK_SECTOR;
	l->block_size = bs;
	l->read_only = bd->read_only;
	/* discard=ignore: QEMU would accept and drop discards; we do not offer them */
	l->discard = bd->discard && !bd->read_only;
	l->write_zeroes = !bd->read_only;
	l->max_dwz_seg = VIRTIO_BLK_MAX_DWZ_SEG;
	l->max_dwz_sectors = VIRTIO_BLK_MAX_DWZ_SECTORS;

	cfg->capacity = htole64(l->capacity);
	cfg->size_max = htole32(VIRTIO_BLK_SIZE_MAX);
	cfg->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	cfg->blk_size = htole32(bs);
	cfg->writeback = !bd->cache.writethrough;
	if (l->discard) {
		cfg->max_discard_sectors = htole32(l->max_dwz_sectors);
		cfg->max_discard_seg = htole32(l->max_dwz_seg);
		cfg->discard_sector_alignment = htole32(bs / VIRTIO_BLK_SECTOR);
	}
	if (l->write_zeroes) {
		cfg->max_write_zeroes_sectors = htole32(l->max_dwz_sectors);
		cfg->max_write_zeroes_seg = htole32(l->max_dwz_seg);
		/* the block layer deallocates on write zeroes only with discard=unmap */
		cfg->write_zeroes_may_unmap = bd->discard;
	}
	memcpy(b->id, o->serial, strnlen(o->serial, sizeof(b->id)));

	b->vdev.ops = &virtio_blk_ops;
	b->vdev.device_id = VIRTIO_ID_BLOCK;
	b->vdev.pci_class = 0x018000; /* mass storage, other */
	b->vdev.num_queues = 1;
	b->vdev.queue_size = VIRTIO_BLK_QUEUE_SIZE;
	b->vdev.config_size = sizeof(*cfg);
	b->vdev.features = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
			   VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
			   VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE);
	if (l->read_only)
		b->vdev.features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (l->discard)
		b->vdev.features |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD);
	if (l->write_zeroes)
		b->vdev.features |= VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	b->vdev.priv = b;

	b->chain = malloc(sizeof(*b->chain));
	b->pool = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*b->pool));
	if (!b->chain || !b->pool) {
		free(b->chain);
		free(b->pool);
		b->chain = NULL;
		b->pool = NULL;
		return -ENOMEM;
	}
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
		b->pool[i].b = b;
		b->pool[i].next = b->free;
		b->free = &b->pool[i];
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->pool_lock, NULL);
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b->pool)
		return; /* init failed, or destroyed already */
	__atomic_store_n(&b->stopping, true, __ATOMIC_RELEASE);
	blockdev_drain(b->bd);
	pthread_mutex_destroy(&b->pool_lock);
	pthread_mutex_destroy(&b->lock);
	free(b->pool);
	free(b->chain);
	b->pool = NULL;
	b->chain = NULL;
	b->free = NULL;
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *s)
{
	pthread_mutex_lock(&b->pool_lock);
	*s = b->stats;
	pthread_mutex_unlock(&b->pool_lock);
}
