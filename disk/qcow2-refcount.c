// SPDX-License-Identifier: MIT
/*
 * qcow2 refcounts and cluster allocation (docs/interop/qcow2.txt, "Host
 * cluster management"): a refcount table of refcount block offsets, each
 * block an array of refcount_bits-wide big-endian counts, one per host
 * cluster. Entries narrower than a byte are packed from the least
 * significant bit up, as QEMU packs them.
 *
 * Allocation is first-fit from q->free_cluster_hint. The refcount blocks a
 * new run needs go at the front of the same free run (see
 * qcow2_alloc_clusters()); a full refcount table is replaced by a bigger one
 * at the end of the file, written together with the blocks that describe
 * it, synced, and only then named in the header.
 *
 * Decrements are deferred (qcow2_free_clusters() queues them, the end of
 * qcow2_flush() applies them), see qcow2.c for why.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/qcow2.h"
#include "vmm/log.h"

/* Host offsets must fit the 56-bit offset fields of L1/L2 entries. */
#define QCOW2_MAX_HOST_OFFSET (1ull << 56)

enum { RETRY = 1 };

int qcow2_refcount_init(struct qcow2 *q)
{
	uint64_t bytes = (uint64_t)q->h.refcount_table_clusters << q->cluster_bits;
	int ret;

	q->reftable_entries = bytes / 8;
	q->reftable = malloc(bytes);
	if (!q->reftable)
		return -ENOMEM;
	ret = qcow2_meta_pread(q, q->reftable, bytes, q->h.refcount_table_offset);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < q->reftable_entries; i++) {
		uint64_t e = be64toh(q->reftable[i]);

		q->reftable[i] = e;
		/* the low 9 bits are reserved; a block is a whole cluster after the header */
		if ((e & ~QCOW2_REFT_OFFSET_MASK) || (e & (q->cluster_size - 1)) ||
		    (e && e < q->cluster_size) || e >= QCOW2_MAX_HOST_OFFSET)
			return -EINVAL;
	}
	q->free_cluster_hint = 0;
	return 0;
}

static uint64_t rc_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
}

/* Where in its block the count of cluster ci lives: byte position and, below 8 bits, shift. */
static void rc_pos(const struct qcow2 *q, uint64_t ci, size_t *pos, unsigned *shift)
{
	uint64_t j = ci & ((1ull << q->rcb_bits) - 1);

	*pos = j * q->refcount_bits / 8;
	*shift = q->refcount_bits < 8 ? (j * q->refcount_bits) % 8 : 0;
}

static int rc_read(struct qcow2 *q, uint64_t block, uint64_t ci, uint64_t *rc)
{
	unsigned shift, nbytes = q->refcount_bits < 8 ? 1 : q->refcount_bits / 8;
	uint8_t b[8];
	size_t pos;
	int ret;

	rc_pos(q, ci, &pos, &shift);
	ret = qcow2_cache_read(q, q->rc_cache, block, pos, b, nbytes);
	if (ret)
		return ret;
	if (q->refcount_bits < 8) {
		*rc = (b[0] >> shift) & rc_max(q);
		return 0;
	}
	*rc = 0;
	for (unsigned i = 0; i < nbytes; i++)
		*rc = *rc << 8 | b[i];
	return 0;
}

/* Exclusive lock held, so the read-modify-write of a shared byte is safe. */
static int rc_write(struct qcow2 *q, uint64_t block, uint64_t ci, uint64_t rc)
{
	unsigned shift, nbytes = q->refcount_bits < 8 ? 1 : q->refcount_bits / 8;
	uint8_t b[8];
	size_t pos;
	int ret;

	rc_pos(q, ci, &pos, &shift);
	if (q->refcount_bits < 8) {
		ret = qcow2_cache_read(q, q->rc_cache, block, pos, b, 1);
		if (ret)
			return ret;
		b[0] &= ~(rc_max(q) << shift);
		b[0] |= rc << shift;
	} else {
		for (unsigned i = 0; i < nbytes; i++)
			b[i] = rc >> (8 * (nbytes - 1 - i));
	}
	return qcow2_cache_write(q, q->rc_cache, block, pos, b, nbytes);
}

static uint64_t block_of(const struct qcow2 *q, uint64_t ci)
{
	uint64_t bi = ci >> q->rcb_bits;

	return bi < q->reftable_entries ? q->reftable[bi] & QCOW2_REFT_OFFSET_MASK : 0;
}

int qcow2_get_refcount(struct qcow2 *q, uint64_t ci, uint64_t *refcount)
{
	uint64_t block = block_of(q, ci);

	*refcount = 0;
	return block ? rc_read(q, block, ci, refcount) : 0;
}

/* An all-zero refcount block for cluster b, in the cache only. */
static int new_refblock(struct qcow2 *q, uint64_t b)
{
	uint8_t *buf = calloc(1, q->cluster_size);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = qcow2_cache_install(q, q->rc_cache, b << q->cluster_bits, buf);
	free(buf);
	return ret;
}

/* Points reftable entry bi at the refcount block in cluster b. */
static int link_refblock(struct qcow2 *q, uint64_t bi, uint64_t b)
{
	q->reftable[bi] = b << q->cluster_bits;
	q->reftable_dirty = true;
	q->file_end = MAX(q->file_end, (b + 1) << q->cluster_bits);
	return qcow2_meta_index_add(q, b << q->cluster_bits);
}

/*
 * Creates the refcount block for range bi, inside that range and outside
 * [c, c+n): the clusters whose refcounts are about to go up, which are in
 * use even though no block counts them yet. Allocation does not come here
 * (qcow2_alloc_clusters() places the blocks it needs itself); this is for
 * raising the count of clusters in a range that has no block, which only a
 * damaged image has. If every cluster of the range is in [c, c+n), there is
 * no safe place and the image needs a rebuild (check -r all).
 */
static int make_refblock(struct qcow2 *q, uint64_t bi, uint64_t c, uint64_t n)
{
	uint64_t first = bi << q->rcb_bits, per = 1ull << q->rcb_bits, b = 0;
	bool found = false;
	int ret;

	for (uint64_t i = first; i < first + per; i++) {
		if (i >= c && i < c + n)
			continue;
		if (qcow2_overlaps_metadata(q, i << q->cluster_bits, q->cluster_size))
			continue;
		b = i;
		found = true;
		break;
	}
	if (!found)
		return qcow2_corrupt(q, "no room for a refcount block in range %" PRIu64, bi);
	if ((b + 1) << q->cluster_bits > QCOW2_MAX_HOST_OFFSET)
		return -ENOSPC;
	ret = new_refblock(q, b);
	if (ret)
		return ret;
	/* the block counts itself */
	ret = rc_write(q, b << q->cluster_bits, b, 1);
	if (ret)
		return ret;
	return link_refblock(q, bi, b);
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + !!(a % b);
}

/* Writes k clusters of refcount table from table (host-endian). */
static int write_reftable(struct qcow2 *q, const uint64_t *table, uint64_t entries,
			  uint64_t offset)
{
	uint64_t *be = malloc(entries * 8);
	int ret;

	if (!be)
		return -ENOMEM;
	for (uint64_t i = 0; i < entries; i++)
		be[i] = htobe64(table[i]);
	ret = qcow2_meta_pwrite(q, be, entries * 8, offset);
	free(be);
	return ret;
}

/*
 * Replaces the refcount table with one that has entry need: placed after
 * everything the old table can describe and the end of the file, followed
 * by the new blocks that count the new table and themselves.
 */
static int grow_reftable(struct qcow2 *q, uint64_t need)
{
	uint64_t cs = q->cluster_size, per = 1ull << q->rcb_bits;
	uint64_t base = MAX(q->reftable_entries << q->rcb_bits, div_up(q->file_end, cs));
	uint64_t entries = MAX(need + 1, q->reftable_entries * 2), k, m = 0, last;
	uint64_t old_off = q->h.refcount_table_offset, old_clusters = q->h.refcount_table_clusters;
	uint64_t *table = NULL;
	uint8_t *blk = NULL, hdr[12];
	int ret;

	for (;;) {
		uint64_t m2;

		entries = ALIGN_UP(entries, cs / 8);
		k = entries * 8 / cs;
		last = base + k + m - 1;
		m2 = (last >> q->rcb_bits) - (base >> q->rcb_bits) + 1;
		if ((last >> q->rcb_bits) + 1 > entries) {
			entries = (last >> q->rcb_bits) + 1;
			continue;
		}
		if (m2 == m)
			break;
		m = m2;
	}
	if (entries * 8 > QCOW2_MAX_REFTABLE_BYTES || (last + 1) * cs > QCOW2_MAX_HOST_OFFSET)
		return -ENOSPC;
	/* the blocks the old table names go first: the new table names them too */
	ret = qcow2_refcount_writeback(q);
	if (ret)
		return ret;
	table = calloc(entries, 8);
	blk = calloc(1, cs);
	if (!table || !blk) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(table, q->reftable, q->reftable_entries * 8);
	for (uint64_t j = 0; j < m; j++) {
		uint64_t rb = (base >> q->rcb_bits) + j, bo = (base + k + j) * cs;

		memset(blk, 0, cs);
		for (uint64_t ci = MAX(base, rb * per); ci <= last && ci < (rb + 1) * per; ci++) {
			size_t pos = (ci - rb * per) * q->refcount_bits / 8;

			if (q->refcount_bits < 8)
				blk[pos] |= 1u << (((ci - rb * per) * q->refcount_bits) % 8);
			else
				blk[pos + q->refcount_bits / 8 - 1] = 1;
		}
		ret = qcow2_meta_pwrite(q, blk, cs, bo);
		if (ret)
			goto out;
		table[rb] = bo;
	}
	ret = write_reftable(q, table, entries, base * cs);
	if (!ret)
		ret = fdatasync(q->fd) ? -errno : 0;
	if (ret)
		goto out;
	{
		uint64_t off = htobe64(base * cs);
		uint32_t n = htobe32(k);

		memcpy(hdr, &off, 8);
		memcpy(hdr + 8, &n, 4);
	}
	ret = qcow2_meta_pwrite(q, hdr, sizeof(hdr), 48);
	if (!ret)
		ret = fdatasync(q->fd) ? -errno : 0;
	if (ret)
		goto out;
	free(q->reftable);
	q->reftable = table;
	table = NULL;
	q->reftable_entries = entries;
	q->reftable_dirty = false;
	q->h.refcount_table_offset = base * cs;
	q->h.refcount_table_clusters = k;
	q->file_end = MAX(q->file_end, (last + 1) * cs);
	ret = qcow2_rebuild_meta_index(q);
	/* nothing names the old table any more, and that is on disk */
	if (!ret)
		ret = qcow2_update_refcount(q, old_off, old_clusters * cs, -1);
out:
	free(table);
	free(blk);
	return ret;
}

/* Makes sure every cluster of [c, c+n) has a refcount block. */
static int ensure_blocks(struct qcow2 *q, uint64_t c, uint64_t n)
{
	for (uint64_t bi = c >> q->rcb_bits; bi <= (c + n - 1) >> q->rcb_bits; bi++) {
		int ret;

		if (bi >= q->reftable_entries) {
			ret = grow_reftable(q, bi);
			return ret ? ret : RETRY;
		}
		if (!q->reftable[bi]) {
			ret = make_refblock(q, bi, c, n);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int qcow2_update_refcount(struct qcow2 *q, uint64_t offset, uint64_t len, int64_t delta)
{
	uint64_t first, last;
	int ret;

	if (!len)
		return 0;
	first = offset >> q->cluster_bits;
	last = (offset + len - 1) >> q->cluster_bits;
	if (delta > 0) {
		do {
			ret = ensure_blocks(q, first, last - first + 1);
		} while (ret == RETRY);
		if (ret)
			return ret;
	}
	for (uint64_t ci = first; ci <= last; ci++) {
		uint64_t block = block_of(q, ci), rc = 0;

		if (block) {
			ret = rc_read(q, block, ci, &rc);
			if (ret)
				return ret;
		}
		if (delta < 0 && rc < (uint64_t)-delta)
			return qcow2_corrupt(q, "refcount of cluster %#" PRIx64 " would drop below zero",
					     ci << q->cluster_bits);
		if (delta > 0 && rc_max(q) - rc < (uint64_t)delta)
			return -ERANGE;
		if (!block)
			return -EIO;
		ret = rc_write(q, block, ci, rc + delta);
		if (ret)
			return ret;
		if (rc + delta == 0 && ci < q->free_cluster_hint)
			q->free_cluster_hint = ci;
	}
	return 0;
}

/* Whether host cluster ci can be handed out. */
static int cluster_free(struct qcow2 *q, uint64_t ci, bool *free_)
{
	uint64_t rc;
	int ret;

	*free_ = false;
	if (qcow2_overlaps_metadata(q, ci << q->cluster_bits, q->cluster_size))
		return 0;
	ret = qcow2_get_refcount(q, ci, &rc);
	if (ret)
		return ret;
	*free_ = rc == 0;
	return 0;
}

/*
 * First cluster past everything that can be in use: past it no refcount
 * block covers a cluster (so its refcount is 0) and no metadata lies.
 */
static uint64_t known_end(struct qcow2 *q)
{
	uint64_t end = q->reftable_entries << q->rcb_bits, cs = q->cluster_size;

	end = MAX(end, div_up(q->h.l1_table_offset + (uint64_t)q->h.l1_size * 8, cs));
	end = MAX(end, div_up(q->h.refcount_table_offset +
			      ((uint64_t)q->h.refcount_table_clusters << q->cluster_bits), cs));
	for (unsigned i = 0; i < q->nb_snapshots; i++)
		end = MAX(end, div_up(q->snapshots[i].l1_table_offset +
				      (uint64_t)q->snapshots[i].l1_size * 8, cs));
	if (q->nb_meta_idx)
		end = MAX(end, (q->meta_idx[q->nb_meta_idx - 1] >> q->cluster_bits) + 1);
	return end;
}

/*
 * First fit of n free clusters from the hint. Bounded: every step moves c
 * forward, and from known_end() on every cluster is free, so the run
 * completes at most n clusters past it. known_end() trusts the refcount
 * table's reach, which a crafted image can make 2^44 clusters long; but
 * every cluster we allocate moves file_end, so clusters in use far past the
 * end of the file are a lie, and the walk stops there instead of crossing
 * terabytes of made-up refcounts. A few are real: a crash can leave
 * metadata clusters refcounted whose contents never reached the file
 * (leaks), hence the slack.
 */
#define QCOW2_EOF_SLACK 65536 /* clusters */

static int find_free(struct qcow2 *q, uint64_t n, uint64_t *out)
{
	uint64_t limit = QCOW2_MAX_HOST_OFFSET >> q->cluster_bits;
	uint64_t c, run = 0, end = known_end(q);
	uint64_t eof = div_up(q->file_end, q->cluster_size);

	/* cluster 0 is the header */
	q->free_cluster_hint = MAX(q->free_cluster_hint, 1);
	c = q->free_cluster_hint;
	while (run < n) {
		bool f;
		int ret;

		if (n > limit || c + n - run > limit)
			return -ENOSPC;
		if (c >= end) {
			/* all free from here on */
			c += n - run;
			break;
		}
		ret = cluster_free(q, c, &f);
		if (ret)
			return ret;
		if (!f && c >= eof + QCOW2_EOF_SLACK)
			return qcow2_corrupt(q, "cluster %llu past the end of the file has a refcount",
					     (unsigned long long)c);
		if (!f) {
			run = 0;
			if (c == q->free_cluster_hint)
				q->free_cluster_hint = c + 1;
		} else {
			run++;
		}
		c++;
	}
	*out = c - n;
	return 0;
}

/*
 * How many of the ranges [c, c+n) touches have no refcount block; grows the
 * refcount table first (and returns RETRY, the search starts over) when it
 * cannot name them all.
 */
static int missing_blocks(struct qcow2 *q, uint64_t c, uint64_t n, uint64_t *missing)
{
	uint64_t last = (c + n - 1) >> q->rcb_bits;
	int ret;

	if (last >= q->reftable_entries) {
		ret = grow_reftable(q, last);
		return ret ? ret : RETRY;
	}
	*missing = 0;
	for (uint64_t bi = c >> q->rcb_bits; bi <= last; bi++)
		*missing += !q->reftable[bi];
	return 0;
}

/*
 * Allocates n contiguous clusters. The refcount blocks the run needs are
 * placed in front of it, one cluster each, in the same free run, the way
 * QEMU puts a new block at the first free cluster: a block does not have
 * to lie in the range it counts, and forcing it there would split every
 * range, so that no run longer than a range could ever be found.
 *
 * Termination: the refcount table only grows (up to its size limit) and
 * extra only grows, by at most the number of ranges n + extra clusters
 * touch, which is far below extra's own growth once extra > n / per + 2.
 */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset)
{
	uint64_t c = 0, extra = 0, missing = 0, j = 0; /* c: set by find_free(), which gcc -O2 cannot see */
	int ret;

	if (!n)
		return -EINVAL;
	for (;;) {
		ret = find_free(q, n + extra, &c);
		if (ret)
			return ret;
		ret = missing_blocks(q, c, n + extra, &missing);
		if (ret == RETRY)
			continue;
		if (ret)
			return ret;
		if (missing <= extra)
			break;
		extra = missing;
	}
	/*
	 * The j-th new block goes to cluster c + j. That cluster's range is at
	 * most the j-th missing range, so its block exists by then (or is the
	 * very block just made) and can take the count at once.
	 */
	for (uint64_t bi = c >> q->rcb_bits; j < missing; bi++) {
		uint64_t b = c + j;

		if (q->reftable[bi])
			continue;
		ret = new_refblock(q, b);
		if (!ret)
			ret = link_refblock(q, bi, b);
		if (!ret)
			ret = rc_write(q, block_of(q, b), b, 1);
		if (ret)
			return ret;
		j++;
	}
	ret = qcow2_update_refcount(q, (c + missing) << q->cluster_bits, n << q->cluster_bits, 1);
	if (ret)
		return ret;
	if (q->free_cluster_hint == c)
		q->free_cluster_hint = c + missing + n;
	c += missing;
	q->file_end = MAX(q->file_end, (c + n) << q->cluster_bits);
	*offset = c << q->cluster_bits;
	return 0;
}

/*
 * Packs compressed clusters: every host cluster's refcount is the number
 * of compressed clusters that touch it, so a new user of the current
 * cluster adds one, and one that spills into the next (contiguous) cluster
 * takes that cluster's first reference.
 */
int qcow2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *offset)
{
	uint64_t cs = q->cluster_size, end, new;
	int ret;

	if (!len || len > cs)
		return -EINVAL;
	if (q->cbytes_off) {
		end = ALIGN_UP(q->cbytes_off, cs);
		if (q->cbytes_off + len <= end) {
			ret = qcow2_update_refcount(q, q->cbytes_off, 1, 1);
			if (ret)
				return ret;
			*offset = q->cbytes_off;
			q->cbytes_off = q->cbytes_off + len == end ? 0 : q->cbytes_off + len;
			return 0;
		}
	}
	ret = qcow2_alloc_clusters(q, 1, &new);
	if (ret)
		return ret;
	if (q->cbytes_off && new == ALIGN_UP(q->cbytes_off, cs)) {
		ret = qcow2_update_refcount(q, q->cbytes_off, 1, 1);
		if (ret) {
			qcow2_free_clusters(q, new, cs);
			return ret;
		}
		*offset = q->cbytes_off;
	} else {
		*offset = new;
	}
	q->cbytes_off = (*offset + len) & (cs - 1) ? *offset + len : 0;
	return 0;
}

void qcow2_free_clusters(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	if (!len)
		return;
	if (q->nb_pending == q->pending_cap) {
		size_t cap = q->pending_cap ? q->pending_cap * 2 : 64;
		struct qcow2_range *p = realloc(q->pending, cap * sizeof(*p));

		if (!p) {
			/* a leak is the safe way to fail */
			pr_warn("qcow2: out of memory; a cluster is leaked\n");
			return;
		}
		q->pending = p;
		q->pending_cap = cap;
	}
	q->pending[q->nb_pending].offset = offset;
	q->pending[q->nb_pending].len = len;
	q->nb_pending++;
}

int qcow2_apply_pending_frees(struct qcow2 *q)
{
	int ret = 0;

	for (size_t i = 0; i < q->nb_pending; i++) {
		int r = qcow2_update_refcount(q, q->pending[i].offset, q->pending[i].len, -1);

		/* a bad count is reported and left; the other frees still happen */
		if (r && !ret && r != -EIO)
			ret = r;
	}
	q->nb_pending = 0;
	/* a freed cluster may be handed out again: do not append to it */
	q->cbytes_off = 0;
	return ret;
}
