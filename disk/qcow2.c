// SPDX-License-Identifier: MIT
/*
 * qcow2 runtime: opening and validating an image, the metadata caches, the
 * read and write paths, discard and block status, and the blockdev driver.
 * The format is QEMU's docs/interop/qcow2.txt; section names below refer to
 * it. The image is untrusted input: every offset read from it is checked
 * before it is used, and a bad one gives -EINVAL at open or -EIO at use,
 * never a write outside the data clusters the metadata legitimately owns.
 *
 * Crash safety ("Host cluster management" and "Cluster mapping" sections):
 * a cluster is never referenced on disk before its refcount increment is on
 * disk, and a refcount is never decremented on disk before the reference is
 * gone from the disk. Refcount changes and L2 changes live in two caches;
 * whenever dirty L2 tables go to disk, dirty refcount blocks go first, with
 * an fdatasync between. Frees are deferred (q->pending) and applied only at
 * the end of qcow2_flush(), after the L2/L1 writes that dropped the
 * reference were synced, so a killed or powered-off minivm leaves at worst
 * leaked clusters.
 *
 * Concurrency: q->meta is taken shared to read and to overwrite clusters
 * that are already ours (COPIED), and exclusively for anything that changes
 * metadata. The caches have their own mutexes because shared holders load
 * tables into them.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "disk/blockdev.h"
#include "disk/iov.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

/*
 * Cache sizes: a fixed memory budget, within bounds. Small clusters need
 * many tables to cover a useful part of the disk, and every eviction of a
 * dirty L2 table costs an fdatasync (refcounts first).
 */
#define QCOW2_L2_CACHE_BYTES (4u << 20)
#define QCOW2_RC_CACHE_BYTES (1u << 20)
#define QCOW2_CACHE_MIN 16u
#define QCOW2_CACHE_MAX 256u
#define QCOW2_MAX_DIO_ALIGN 4096u
#define QCOW2_FEATURE_NAME_LEN 46
/* the blockdev driver copies scattered requests up to this size into one buffer */
#define QCOW2_BOUNCE_MAX (4u << 20)

/* What an L2 entry says about its guest cluster. */
enum qcow2_ctype {
	QC_UNALLOCATED,  /* backing file or zeros */
	QC_ZERO_PLAIN,   /* zero flag, no host cluster */
	QC_ZERO_ALLOC,   /* zero flag with a host cluster kept */
	QC_NORMAL,
	QC_COMPRESSED,
};

struct qcow2_cache_entry {
	uint64_t table;  /* host offset; 0: empty */
	uint8_t *buf;
	bool dirty;
	uint64_t used;   /* LRU clock */
};

struct qcow2_cache {
	pthread_mutex_t lock;
	bool is_l2;
	unsigned n;
	uint64_t clock;
	struct qcow2_cache_entry *e;
};

/* ---- diagnostics ---- */

int qcow2_corrupt(struct qcow2 *q, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	if (__atomic_exchange_n(&q->reported, true, __ATOMIC_RELAXED))
		return -EIO;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("%s: corrupt qcow2 image: %s\n", q->img ? q->img->path : "qcow2", msg);
	return -EIO;
}

/* ---- host I/O ---- */

static int pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, offset + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += n;
	}
	*got = done;
	return 0;
}

int qcow2_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, offset + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += n;
	}
	return 0;
}

/*
 * With O_DIRECT, every transfer goes through an aligned buffer covering the
 * aligned span; the unaligned edges are read first. Callers never have two
 * such transfers in one aligned block at once: data is written in whole
 * blocks of dio_align (the device's block size) and metadata under the
 * exclusive lock or a cache mutex, and dio_align <= cluster size.
 */
static int direct_rw(struct qcow2 *q, bool write, void *buf, size_t len, uint64_t offset,
		     bool strict)
{
	uint64_t a = q->dio_align;
	uint64_t start = ALIGN_DOWN(offset, a), end = ALIGN_UP(offset + len, a);
	size_t span = end - start, got;
	uint8_t *b;
	int ret;

	if (posix_memalign((void **)&b, QCOW2_MAX_DIO_ALIGN, span))
		return -ENOMEM;
	if (!write || start != offset || end != offset + len) {
		ret = pread_full(q->fd, b, span, start, &got);
		if (ret)
			goto out;
		if (!write && strict && got < offset - start + len) {
			ret = -EIO;
			goto out;
		}
		memset(b + got, 0, span - got);
	}
	if (write) {
		memcpy(b + (offset - start), buf, len);
		ret = qcow2_pwrite_all(q->fd, b, span, start);
	} else {
		memcpy(buf, b + (offset - start), len);
		ret = 0;
	}
out:
	free(b);
	return ret;
}

/* strict: a read that meets end-of-file fails with -EIO instead of reading zeros. */
static int host_read(struct qcow2 *q, void *buf, size_t len, uint64_t offset, bool strict)
{
	size_t got;
	int ret;

	if (q->direct)
		return direct_rw(q, false, buf, len, offset, strict);
	ret = pread_full(q->fd, buf, len, offset, &got);
	if (ret)
		return ret;
	if (got < len) {
		if (strict)
			return -EIO;
		memset((uint8_t *)buf + got, 0, len - got);
	}
	return 0;
}

static int host_write(struct qcow2 *q, const void *buf, size_t len, uint64_t offset)
{
	if (q->direct)
		return direct_rw(q, true, (void *)buf, len, offset, false);
	return qcow2_pwrite_all(q->fd, buf, len, offset);
}

int qcow2_meta_pread(struct qcow2 *q, void *buf, size_t len, uint64_t offset)
{
	return host_read(q, buf, len, offset, true);
}

int qcow2_meta_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t offset)
{
	if (q->read_only)
		return -EROFS;
	return host_write(q, buf, len, offset);
}

static int q_sync(struct qcow2 *q)
{
	return fdatasync(q->fd) ? -errno : 0;
}

/* ---- metadata caches ---- */

static struct qcow2_cache *cache_new(unsigned n, bool is_l2)
{
	struct qcow2_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->e = calloc(n, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	/*
	 * Table buffers come on first use (cache_get): an image that is opened
	 * and closed again (info, a backing chain refused as too deep) costs
	 * no cluster-sized buffers, which reach 2 MiB each.
	 */
	c->n = n;
	c->is_l2 = is_l2;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void cache_free(struct qcow2_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->e[i].buf);
	pthread_mutex_destroy(&c->lock);
	free(c->e);
	free(c);
}

/* Writes one dirty entry; c->lock held. */
static int cache_write_entry(struct qcow2 *q, struct qcow2_cache *c, struct qcow2_cache_entry *e)
{
	int ret;

	if (!e->dirty)
		return 0;
	if (c->is_l2) {
		/* the clusters this table points to must be counted on disk first */
		ret = qcow2_refcount_writeback(q);
		if (!ret)
			ret = q_sync(q);
		if (ret)
			return ret;
	}
	ret = qcow2_meta_pwrite(q, e->buf, q->cluster_size, e->table);
	if (ret)
		return ret;
	e->dirty = false;
	return 0;
}

/* Writes every dirty entry of c (no sync). */
static int cache_writeback(struct qcow2 *q, struct qcow2_cache *c)
{
	bool any = false;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n; i++)
		any |= c->e[i].dirty;
	if (any && c->is_l2) {
		ret = qcow2_refcount_writeback(q);
		if (!ret)
			ret = q_sync(q);
	}
	for (unsigned i = 0; i < c->n && !ret; i++) {
		struct qcow2_cache_entry *e = &c->e[i];

		if (!e->dirty)
			continue;
		ret = qcow2_meta_pwrite(q, e->buf, q->cluster_size, e->table);
		if (!ret)
			e->dirty = false;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static bool cache_dirty(struct qcow2_cache *c)
{
	bool any = false;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n; i++)
		any |= c->e[i].dirty;
	pthread_mutex_unlock(&c->lock);
	return any;
}

static void cache_drop(struct qcow2_cache *c)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < c->n; i++) {
		if (!c->e[i].dirty)
			c->e[i].table = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Finds table in c, loading it (load) or not; c->lock held. */
static int cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, bool load,
		     struct qcow2_cache_entry **out)
{
	struct qcow2_cache_entry *victim = NULL;
	int ret;

	for (unsigned i = 0; i < c->n; i++) {
		struct qcow2_cache_entry *e = &c->e[i];

		if (e->table == table) {
			e->used = ++c->clock;
			*out = e;
			return 0;
		}
		if (!victim || (victim->table && (!e->table || e->used < victim->used)))
			victim = e;
	}
	if (victim->table) {
		ret = cache_write_entry(q, c, victim);
		if (ret)
			return ret;
		victim->table = 0;
	}
	if (!victim->buf &&
	    posix_memalign((void **)&victim->buf, QCOW2_MAX_DIO_ALIGN, q->cluster_size)) {
		victim->buf = NULL;
		return -ENOMEM;
	}
	if (load) {
		ret = qcow2_meta_pread(q, victim->buf, q->cluster_size, table);
		if (ret)
			return ret == -EIO ?
				qcow2_corrupt(q, "%s at %#" PRIx64 " is past the end of the file",
					      c->is_l2 ? "L2 table" : "refcount block", table) : ret;
	}
	victim->table = table;
	victim->dirty = false;
	victim->used = ++c->clock;
	*out = victim;
	return 0;
}

int qcow2_cache_read(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, size_t pos,
		     void *buf, size_t len)
{
	struct qcow2_cache_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = cache_get(q, c, table, true, &e);
	if (!ret)
		memcpy(buf, e->buf + pos, len);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int qcow2_cache_write(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, size_t pos,
		      const void *buf, size_t len)
{
	struct qcow2_cache_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = cache_get(q, c, table, true, &e);
	if (!ret) {
		memcpy(e->buf + pos, buf, len);
		e->dirty = true;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int qcow2_cache_install(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, const void *buf)
{
	struct qcow2_cache_entry *e;
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = cache_get(q, c, table, false, &e);
	if (!ret) {
		memcpy(e->buf, buf, q->cluster_size);
		e->dirty = true;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int qcow2_refcount_writeback(struct qcow2 *q)
{
	uint64_t *be;
	int ret;

	ret = cache_writeback(q, q->rc_cache);
	if (ret || !q->reftable_dirty)
		return ret;
	/* new blocks before the table entries that name them */
	ret = q_sync(q);
	if (ret)
		return ret;
	be = malloc(q->reftable_entries * 8);
	if (!be)
		return -ENOMEM;
	for (uint64_t i = 0; i < q->reftable_entries; i++)
		be[i] = htobe64(q->reftable[i]);
	ret = qcow2_meta_pwrite(q, be, q->reftable_entries * 8, q->h.refcount_table_offset);
	free(be);
	if (!ret)
		q->reftable_dirty = false;
	return ret;
}

/* ---- L1 ---- */

static void l1_mark_dirty(struct qcow2 *q, uint32_t i)
{
	if (q->l1_dirty_lo >= q->l1_dirty_hi) {
		q->l1_dirty_lo = i;
		q->l1_dirty_hi = i + 1;
	} else {
		q->l1_dirty_lo = MIN(q->l1_dirty_lo, i);
		q->l1_dirty_hi = MAX(q->l1_dirty_hi, i + 1);
	}
}

static int write_l1_range(struct qcow2 *q, uint32_t lo, uint32_t hi)
{
	uint64_t *be;
	int ret;

	if (lo >= hi)
		return 0;
	be = malloc((size_t)(hi - lo) * 8);
	if (!be)
		return -ENOMEM;
	for (uint32_t i = lo; i < hi; i++)
		be[i - lo] = htobe64(q->l1[i]);
	ret = qcow2_meta_pwrite(q, be, (size_t)(hi - lo) * 8, q->h.l1_table_offset + (uint64_t)lo * 8);
	free(be);
	return ret;
}

int qcow2_write_l1(struct qcow2 *q)
{
	int ret = write_l1_range(q, 0, q->h.l1_size);

	if (!ret) {
		q->l1_dirty_lo = q->l1_dirty_hi = 0;
		ret = qcow2_rebuild_meta_index(q);
	}
	return ret;
}

/* ---- the metadata index: which host clusters are metadata ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Single clusters that hold metadata: the active L2 tables and the
 * refcount blocks. (The header, L1 and refcount tables are ranges, checked
 * directly.) Kept sorted for a binary search on every data write.
 */
int qcow2_rebuild_meta_index(struct qcow2 *q)
{
	size_t n = 0, cap = q->h.l1_size + q->reftable_entries;
	uint64_t *idx = cap ? malloc(cap * 8) : NULL;

	if (cap && !idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		if (q->l1[i] & QCOW2_L1E_OFFSET_MASK)
			idx[n++] = q->l1[i] & QCOW2_L1E_OFFSET_MASK;
	}
	for (uint64_t i = 0; i < q->reftable_entries; i++) {
		if (q->reftable[i] & QCOW2_REFT_OFFSET_MASK)
			idx[n++] = q->reftable[i] & QCOW2_REFT_OFFSET_MASK;
	}
	qsort(idx, n, 8, cmp_u64);
	free(q->meta_idx);
	q->meta_idx = idx;
	q->nb_meta_idx = n;
	q->meta_idx_cap = cap;
	return 0;
}

/* Index of the first entry >= offset. */
static size_t meta_idx_find(const struct qcow2 *q, uint64_t offset)
{
	size_t lo = 0, hi = q->nb_meta_idx;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (q->meta_idx[mid] < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int qcow2_meta_index_add(struct qcow2 *q, uint64_t offset)
{
	size_t i = meta_idx_find(q, offset);

	if (i < q->nb_meta_idx && q->meta_idx[i] == offset)
		return 0;
	if (q->nb_meta_idx == q->meta_idx_cap) {
		size_t cap = q->meta_idx_cap ? q->meta_idx_cap * 2 : 64;
		uint64_t *n = realloc(q->meta_idx, cap * 8);

		if (!n)
			return -ENOMEM;
		q->meta_idx = n;
		q->meta_idx_cap = cap;
	}
	memmove(q->meta_idx + i + 1, q->meta_idx + i, (q->nb_meta_idx - i) * 8);
	q->meta_idx[i] = offset;
	q->nb_meta_idx++;
	return 0;
}

void qcow2_meta_index_del(struct qcow2 *q, uint64_t offset)
{
	size_t i = meta_idx_find(q, offset);

	if (i >= q->nb_meta_idx || q->meta_idx[i] != offset)
		return;
	memmove(q->meta_idx + i, q->meta_idx + i + 1, (q->nb_meta_idx - i - 1) * 8);
	q->nb_meta_idx--;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

bool qcow2_overlaps_metadata(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	size_t lo = 0, hi = q->nb_meta_idx;

	if (offset < q->cluster_size)
		return true;
	if (ranges_overlap(offset, len, q->h.l1_table_offset, (uint64_t)q->h.l1_size * 8))
		return true;
	if (ranges_overlap(offset, len, q->h.refcount_table_offset,
			   (uint64_t)q->h.refcount_table_clusters << q->cluster_bits))
		return true;
	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		if (ranges_overlap(offset, len, q->snapshots[i].l1_table_offset,
				   (uint64_t)q->snapshots[i].l1_size * 8))
			return true;
	}
	/* first index entry >= the cluster containing offset */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (q->meta_idx[mid] + q->cluster_size <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->nb_meta_idx && q->meta_idx[lo] < offset + len;
}

/* ---- open: header, extensions, tables ---- */

static void parse_header(const uint8_t *b, struct qcow2_header *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = get_be32(b);
	h->version = get_be32(b + 4);
	h->backing_file_offset = get_be64(b + 8);
	h->backing_file_size = get_be32(b + 16);
	h->cluster_bits = get_be32(b + 20);
	h->size = get_be64(b + 24);
	h->crypt_method = get_be32(b + 32);
	h->l1_size = get_be32(b + 36);
	h->l1_table_offset = get_be64(b + 40);
	h->refcount_table_offset = get_be64(b + 48);
	h->refcount_table_clusters = get_be32(b + 56);
	h->nb_snapshots = get_be32(b + 60);
	h->snapshots_offset = get_be64(b + 64);
	if (h->version < 3) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LEN;
		return;
	}
	h->incompatible_features = get_be64(b + 72);
	h->compatible_features = get_be64(b + 80);
	h->autoclear_features = get_be64(b + 88);
	h->refcount_order = get_be32(b + 96);
	h->header_length = get_be32(b + 100);
	if (h->header_length > QCOW2_V3_HEADER_LEN)
		h->compression_type = b[104];
}

/* The feature name table's name for a bit, or NULL. */
static const char *feature_name(const struct qcow2 *q, int type, unsigned bit, char *buf)
{
	for (unsigned i = 0; i < q->nb_exts; i++) {
		const struct qcow2_ext *x = &q->exts[i];

		if (x->type != QCOW2_EXT_FEATURE_TABLE)
			continue;
		for (uint32_t pos = 0; pos + 48 <= x->len; pos += 48) {
			if (x->data[pos] != type || x->data[pos + 1] != bit)
				continue;
			memcpy(buf, x->data + pos + 2, QCOW2_FEATURE_NAME_LEN);
			buf[QCOW2_FEATURE_NAME_LEN] = 0;
			return buf;
		}
	}
	return NULL;
}

static int add_ext(struct qcow2 *q, uint32_t type, const uint8_t *data, uint32_t len)
{
	struct qcow2_ext *x = realloc(q->exts, (q->nb_exts + 1) * sizeof(*x));

	if (!x)
		return -ENOMEM;
	q->exts = x;
	x = &q->exts[q->nb_exts];
	x->type = type;
	x->len = len;
	x->data = malloc(len ? len : 1);
	if (!x->data)
		return -ENOMEM;
	memcpy(x->data, data, len);
	q->nb_exts++;
	return 0;
}

/* "Header extensions": from the end of the header to the backing name or the cluster's end. */
static int parse_extensions(struct qcow2 *q, const uint8_t *b, const char *path, char *err,
			    size_t errlen)
{
	uint64_t pos = q->h.header_length, end = q->cluster_size;
	int ret;

	if (q->h.backing_file_offset && q->h.backing_file_offset > pos)
		end = MIN(end, q->h.backing_file_offset);
	while (pos + 8 <= end) {
		uint32_t type = get_be32(b + pos), len = get_be32(b + pos + 4);

		pos += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - pos) {
			snprintf(err, errlen, "%s: qcow2 header extension %#x overruns the header",
				 path, type);
			return -EINVAL;
		}
		if (type == QCOW2_EXT_BACKING_FORMAT) {
			if (len > 63 || memchr(b + pos, 0, len)) {
				snprintf(err, errlen, "%s: bad backing format extension", path);
				return -EINVAL;
			}
			free(q->backing_format);
			q->backing_format = strndup((const char *)b + pos, len);
			if (!q->backing_format)
				return -ENOMEM;
		} else {
			ret = add_ext(q, type, b + pos, len);
			if (ret)
				return ret;
		}
		pos += ALIGN_UP((uint64_t)len, 8);
	}
	return 0;
}

/* Offsets of a table: aligned, after the header cluster, inside the file. */
static int check_table(struct qcow2 *q, const char *what, uint64_t offset, uint64_t bytes,
		       const char *path, char *err, size_t errlen)
{
	if (!bytes)
		return 0;
	if (offset & (q->cluster_size - 1)) {
		snprintf(err, errlen, "%s: %s offset %#" PRIx64 " is not cluster-aligned", path, what,
			 offset);
		return -EINVAL;
	}
	if (offset < q->cluster_size) {
		snprintf(err, errlen, "%s: %s overlaps the qcow2 header", path, what);
		return -EINVAL;
	}
	if (offset > q->file_end || bytes > q->file_end - offset) {
		snprintf(err, errlen, "%s: %s at %#" PRIx64 " is past the end of the file", path,
			 what, offset);
		return -EINVAL;
	}
	return 0;
}

static const uint64_t known_incompat = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT |
	QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2;

static int check_features(struct qcow2 *q, unsigned flags, const char *path, char *err,
			  size_t errlen)
{
	uint64_t unknown = q->h.incompatible_features & ~known_incompat;
	char name[QCOW2_FEATURE_NAME_LEN + 1];

	if (unknown) {
		unsigned bit = __builtin_ctzll(unknown);
		const char *n = feature_name(q, 0, bit, name);

		if (n)
			snprintf(err, errlen, "%s: unsupported qcow2 feature: %s", path, n);
		else
			snprintf(err, errlen, "%s: unsupported qcow2 feature: incompatible bit %u",
				 path, bit);
		return -ENOTSUP;
	}
	if (q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
		snprintf(err, errlen, "%s: qcow2 images with an external data file are not supported",
			 path);
		return -ENOTSUP;
	}
	if (q->h.incompatible_features & QCOW2_INCOMPAT_EXTL2) {
		snprintf(err, errlen, "%s: qcow2 images with extended L2 entries are not supported",
			 path);
		return -ENOTSUP;
	}
	if ((q->h.incompatible_features & QCOW2_INCOMPAT_COMPRESSION) || q->h.compression_type) {
		snprintf(err, errlen, "%s: qcow2 compression type %u is not supported (only zlib)",
			 path, q->h.compression_type);
		return -ENOTSUP;
	}
	if ((q->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) && !q->read_only) {
		/* check may open it to repair it (QEMU's BDRV_O_CHECK); nothing else writes */
		if (flags & IMAGE_NO_REPAIR) {
			q->repair_only = true;
			return 0;
		}
		snprintf(err, errlen,
			 "%s: qcow2 image is marked corrupt; repair it with 'minivm-img check -r all'",
			 path);
		return -EACCES;
	}
	return 0;
}

static int check_header(struct qcow2 *q, const char *path, char *err, size_t errlen)
{
	struct qcow2_header *h = &q->h;
	uint64_t l1_need, cover;
	int ret;

	if (h->magic != QCOW2_MAGIC) {
		snprintf(err, errlen, "%s: not a qcow2 image", path);
		return -EINVAL;
	}
	if (h->version != 2 && h->version != 3) {
		snprintf(err, errlen, "%s: unsupported qcow2 version %u", path, h->version);
		return -ENOTSUP;
	}
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		snprintf(err, errlen, "%s: unsupported qcow2 cluster size 2^%u", path,
			 h->cluster_bits);
		return -EINVAL;
	}
	q->cluster_bits = h->cluster_bits;
	q->cluster_size = 1ull << h->cluster_bits;
	q->l2_bits = h->cluster_bits - 3;
	if (h->version >= 3 && (h->header_length < QCOW2_V3_HEADER_LEN ||
				h->header_length > q->cluster_size || (h->header_length & 7))) {
		snprintf(err, errlen, "%s: bad qcow2 header length %u", path, h->header_length);
		return -EINVAL;
	}
	if (h->refcount_order > 6) {
		snprintf(err, errlen, "%s: bad qcow2 refcount order %u", path, h->refcount_order);
		return -EINVAL;
	}
	q->refcount_bits = 1u << h->refcount_order;
	q->rcb_bits = h->cluster_bits + 3 - h->refcount_order;
	if (h->crypt_method) {
		snprintf(err, errlen, "%s: encrypted qcow2 images are not supported", path);
		return -ENOTSUP;
	}
	if (h->size > QCOW2_MAX_SIZE) {
		snprintf(err, errlen, "%s: qcow2 virtual size %" PRIu64 " is too large", path, h->size);
		return -EINVAL;
	}
	if (h->backing_file_size > QCOW2_MAX_BACKING_NAME ||
	    (h->backing_file_size && (h->backing_file_offset < h->header_length ||
				       h->backing_file_offset > q->cluster_size ||
				       h->backing_file_size > q->cluster_size - h->backing_file_offset))) {
		snprintf(err, errlen, "%s: bad backing file name location in the qcow2 header", path);
		return -EINVAL;
	}
	/* entries of the L1 table needed to map the whole disk */
	cover = q->cluster_size << q->l2_bits;
	l1_need = h->size / cover + !!(h->size % cover);
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES || l1_need * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "%s: qcow2 L1 table is too large", path);
		return -EINVAL;
	}
	if (h->l1_size < l1_need) {
		snprintf(err, errlen, "%s: qcow2 L1 table is too small for the virtual size", path);
		return -EINVAL;
	}
	ret = check_table(q, "L1 table", h->l1_table_offset, (uint64_t)h->l1_size * 8, path, err,
			  errlen);
	if (ret)
		return ret;
	if (!h->refcount_table_clusters ||
	    h->refcount_table_clusters > QCOW2_MAX_REFTABLE_BYTES >> h->cluster_bits) {
		snprintf(err, errlen, "%s: bad qcow2 refcount table size (%u clusters)", path,
			 h->refcount_table_clusters);
		return -EINVAL;
	}
	ret = check_table(q, "refcount table", h->refcount_table_offset,
			  (uint64_t)h->refcount_table_clusters << h->cluster_bits, path, err, errlen);
	if (ret)
		return ret;
	if (ranges_overlap(h->l1_table_offset, (uint64_t)h->l1_size * 8, h->refcount_table_offset,
			   (uint64_t)h->refcount_table_clusters << h->cluster_bits)) {
		snprintf(err, errlen, "%s: qcow2 L1 and refcount tables overlap", path);
		return -EINVAL;
	}
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		snprintf(err, errlen, "%s: too many qcow2 snapshots (%u)", path, h->nb_snapshots);
		return -EINVAL;
	}
	if (h->nb_snapshots) {
		ret = check_table(q, "snapshot table", h->snapshots_offset, 1, path, err, errlen);
		if (ret)
			return ret;
	}
	return 0;
}

static int load_l1(struct qcow2 *q, const char *path, char *err, size_t errlen)
{
	int ret;

	q->l1 = calloc(MAX(q->h.l1_size, 1u), 8);
	if (!q->l1)
		return -ENOMEM;
	if (!q->h.l1_size)
		return 0;
	ret = qcow2_meta_pread(q, q->l1, (size_t)q->h.l1_size * 8, q->h.l1_table_offset);
	if (ret) {
		snprintf(err, errlen, "%s: cannot read the L1 table: %s", path, strerror(-ret));
		return ret;
	}
	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		uint64_t off;

		q->l1[i] = be64toh(q->l1[i]);
		off = q->l1[i] & QCOW2_L1E_OFFSET_MASK;
		if (off & (q->cluster_size - 1)) {
			snprintf(err, errlen, "%s: L1 entry %u: L2 table offset %#" PRIx64
				 " is not cluster-aligned", path, i, off);
			return -EINVAL;
		}
	}
	return 0;
}

static int read_backing_name(struct qcow2 *q, const uint8_t *b, const char *path, char *err,
			     size_t errlen)
{
	uint32_t n = q->h.backing_file_size;

	if (!q->h.backing_file_offset || !n)
		return 0;
	if (memchr(b + q->h.backing_file_offset, 0, n)) {
		snprintf(err, errlen, "%s: bad backing file name in the qcow2 header", path);
		return -EINVAL;
	}
	q->backing_file = strndup((const char *)b + q->h.backing_file_offset, n);
	return q->backing_file ? 0 : -ENOMEM;
}

/* QEMU's path_combine(): a relative backing name is relative to the overlay's directory. */
static char *backing_path(const char *overlay, const char *name)
{
	const char *slash = strrchr(overlay, '/');
	char *p;

	if (name[0] == '/' || !slash)
		return strdup(name);
	if (asprintf(&p, "%.*s/%s", (int)(slash - overlay), overlay, name) < 0)
		return NULL;
	return p;
}

static int open_backing(struct qcow2 *q, unsigned flags, char *err, size_t errlen)
{
	struct image *img = q->img;
	char child[512] = "";
	int fmt = -1, ret;
	char *path;

	if (!q->backing_file)
		return 0;
	if (q->backing_format) {
		enum image_format f;

		if (image_format_parse(q->backing_format, &f)) {
			snprintf(err, errlen, "%s: unknown backing file format '%s'", img->path,
				 q->backing_format);
			return -ENOTSUP;
		}
		fmt = f;
	}
	if (!strncmp(q->backing_file, "json:", 5)) {
		snprintf(err, errlen, "%s: backing file names in json: syntax are not supported",
			 img->path);
		return -ENOTSUP;
	}
	path = backing_path(img->path, q->backing_file);
	if (!path)
		return -ENOMEM;
	ret = image_open_depth(path, fmt, flags & (IMAGE_NO_LOCK | IMAGE_DIRECT), img->depth + 1,
			       &q->backing, child, sizeof(child));
	free(path);
	if (ret == -ELOOP)
		snprintf(err, errlen, "%s", child);
	else if (ret)
		snprintf(err, errlen, "%s: backing file: %s", img->path, child);
	return ret;
}

static int setup_direct(struct qcow2 *q, const char *path, char *err, size_t errlen)
{
	struct statx stx;

	q->dio_align = BLOCKDEV_SECTOR;
	if (!q->direct)
		return 0;
	if (statx(q->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align)
		q->dio_align = MAX(stx.stx_dio_offset_align, BLOCKDEV_SECTOR);
	if (q->dio_align > QCOW2_MAX_DIO_ALIGN || (q->dio_align & (q->dio_align - 1))) {
		snprintf(err, errlen, "%s: unsupported O_DIRECT alignment %u", path, q->dio_align);
		return -EINVAL;
	}
	return 0;
}

/* Sets or clears an incompatible feature bit on disk, synced. */
static int write_incompat(struct qcow2 *q, uint64_t bits)
{
	uint8_t b[8];
	int ret;

	put_be64(b, bits);
	ret = host_write(q, b, 8, 72);
	if (!ret)
		ret = q_sync(q);
	if (!ret)
		q->h.incompatible_features = bits;
	return ret;
}

int qcow2_mark_clean(struct qcow2 *q)
{
	uint64_t bits = q->h.incompatible_features;
	int ret;

	if (!(bits & (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)))
		return 0;
	/* the repair must be durable before the header says it is done */
	ret = qcow2_flush_and_drop_caches(q);
	if (!ret)
		ret = q_sync(q);
	if (!ret)
		ret = write_incompat(q, bits & ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT));
	if (!ret)
		q->dirty_bit_set = false;
	return ret;
}

/* "dirty bit": refcounts may be stale; recount them, then clear the bit. */
static int repair_dirty(struct qcow2 *q, char *err, size_t errlen)
{
	struct qcow2_check_result res;
	int ret;

	memset(&res, 0, sizeof(res));
	/* a clean result has qcow2_check() clear the bit itself */
	ret = qcow2_check(q, QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &res, NULL, NULL);
	if (!ret && !qcow2_check_clean(&res))
		ret = -EIO;
	if (ret)
		snprintf(err, errlen, "%s: cannot repair the refcounts of a dirty qcow2 image: %s",
			 q->img->path, strerror(-ret));
	return ret;
}

static int read_first_cluster(struct qcow2 *q, uint8_t **out, const char *path, char *err,
			      size_t errlen)
{
	uint8_t hdr[QCOW2_V3_HEADER_LEN + 8];
	uint8_t *b;
	int ret;

	ret = host_read(q, hdr, sizeof(hdr), 0, false);
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	parse_header(hdr, &q->h);
	ret = check_header(q, path, err, errlen);
	if (ret)
		return ret;
	b = malloc(q->cluster_size);
	if (!b)
		return -ENOMEM;
	ret = host_read(q, b, q->cluster_size, 0, false);
	if (ret) {
		free(b);
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	*out = b;
	return 0;
}

static unsigned cache_entries(const struct qcow2 *q, uint64_t bytes)
{
	return MAX(QCOW2_CACHE_MIN, MIN(QCOW2_CACHE_MAX, bytes >> q->cluster_bits));
}

static int qcow2_open_tables(struct qcow2 *q, const char *path, char *err, size_t errlen)
{
	int ret;

	ret = load_l1(q, path, err, errlen);
	if (ret)
		return ret;
	ret = qcow2_refcount_init(q);
	if (ret) {
		snprintf(err, errlen, "%s: bad qcow2 refcount table%s", path,
			 ret == -ENOMEM ? ": out of memory" : "");
		return ret;
	}
	q->l2_cache = cache_new(cache_entries(q, QCOW2_L2_CACHE_BYTES), true);
	q->rc_cache = cache_new(cache_entries(q, QCOW2_RC_CACHE_BYTES), false);
	if (!q->l2_cache || !q->rc_cache)
		return -ENOMEM;
	ret = qcow2_snapshots_load(q, err, errlen);
	if (ret)
		return ret;
	return qcow2_rebuild_meta_index(q);
}

static void qcow2_free_state(struct qcow2 *q)
{
	image_close(q->backing);
	cache_free(q->l2_cache);
	cache_free(q->rc_cache);
	qcow2_snapshots_free(q);
	for (unsigned i = 0; i < q->nb_exts; i++)
		free(q->exts[i].data);
	free(q->exts);
	free(q->l1);
	free(q->reftable);
	free(q->backing_file);
	free(q->backing_format);
	free(q->pending);
	free(q->meta_idx);
	pthread_rwlock_destroy(&q->meta);
	free(q);
}

int qcow2_open(struct image *img, unsigned flags, char *err, size_t errlen)
{
	pthread_rwlockattr_t attr;
	struct qcow2 *q;
	struct stat st;
	uint8_t *b = NULL;
	int ret;

	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "%s: out of memory", img->path);
		return -ENOMEM;
	}
	/* writers must not starve behind a stream of readers */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&q->meta, &attr);
	pthread_rwlockattr_destroy(&attr);
	q->img = img;
	q->fd = img->fd;
	q->read_only = img->read_only;
	q->direct = flags & IMAGE_DIRECT;
	if (fstat(q->fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", img->path, strerror(-ret));
		goto fail;
	}
	q->file_end = st.st_size;
	ret = setup_direct(q, img->path, err, errlen);
	if (ret)
		goto fail;
	ret = read_first_cluster(q, &b, img->path, err, errlen);
	if (ret)
		goto fail;
	if (q->direct && q->dio_align > q->cluster_size) {
		snprintf(err, errlen, "%s: O_DIRECT needs clusters of at least %u bytes here",
			 img->path, q->dio_align);
		ret = -EINVAL;
		goto fail;
	}
	ret = parse_extensions(q, b, img->path, err, errlen);
	if (!ret)
		ret = check_features(q, flags, img->path, err, errlen);
	if (!ret)
		ret = read_backing_name(q, b, img->path, err, errlen);
	if (!ret)
		ret = qcow2_open_tables(q, img->path, err, errlen);
	if (ret)
		goto fail;
	img->qcow2 = q;
	img->size = q->h.size;

	if (!q->read_only && (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
	    !(flags & IMAGE_NO_REPAIR)) {
		ret = repair_dirty(q, err, errlen);
		if (ret)
			goto fail;
	}
	/* "autoclear": bits we do not understand are cleared by writers */
	if (!q->read_only && q->h.autoclear_features) {
		q->h.autoclear_features = 0;
		ret = qcow2_write_header(q);
		if (ret) {
			snprintf(err, errlen, "%s: cannot update the qcow2 header: %s", img->path,
				 strerror(-ret));
			goto fail;
		}
	}
	if (!(flags & IMAGE_NO_BACKING)) {
		ret = open_backing(q, flags, err, errlen);
		if (ret)
			goto fail;
	}
	free(b);
	return 0;

fail:
	if (ret == -ENOMEM && !*err)
		snprintf(err, errlen, "%s: out of memory", img->path);
	img->qcow2 = NULL;
	free(b);
	qcow2_free_state(q);
	return ret;
}

void qcow2_close(struct qcow2 *q)
{
	int ret = 0;

	if (!q)
		return;
	if (!q->read_only) {
		/* twice: the first flush applies deferred frees, the second writes them */
		ret = qcow2_flush(q);
		if (!ret)
			ret = qcow2_flush(q);
		if (!ret && q->dirty_bit_set)
			ret = write_incompat(q, q->h.incompatible_features & ~QCOW2_INCOMPAT_DIRTY);
		if (ret)
			pr_err("%s: cannot write qcow2 metadata at close: %s\n", q->img->path,
			       strerror(-ret));
	}
	qcow2_free_state(q);
}

/* ---- cluster mapping ("Cluster mapping" section) ---- */

static uint64_t l2_entries(const struct qcow2 *q)
{
	return 1ull << q->l2_bits;
}

/* The L2 entry of guest cluster gc (0 when there is no L2 table). */
static int get_l2e(struct qcow2 *q, uint64_t gc, uint64_t *entry)
{
	uint64_t l1i = gc >> q->l2_bits, l2, be;
	int ret;

	*entry = 0;
	if (l1i >= q->h.l1_size)
		return 0;
	l2 = q->l1[l1i] & QCOW2_L1E_OFFSET_MASK;
	if (!l2)
		return 0;
	ret = qcow2_cache_read(q, q->l2_cache, l2, (gc & (l2_entries(q) - 1)) * 8, &be, 8);
	if (ret)
		return ret;
	*entry = be64toh(be);
	return 0;
}

static int set_l2e(struct qcow2 *q, uint64_t l2, uint64_t gc, uint64_t entry)
{
	uint64_t be = htobe64(entry);

	return qcow2_cache_write(q, q->l2_cache, l2, (gc & (l2_entries(q) - 1)) * 8, &be, 8);
}

static enum qcow2_ctype ctype(const struct qcow2 *q, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED)
		return QC_COMPRESSED;
	if ((e & QCOW2_OFLAG_ZERO) && q->h.version >= 3)
		return (e & QCOW2_L2E_OFFSET_MASK) ? QC_ZERO_ALLOC : QC_ZERO_PLAIN;
	return (e & QCOW2_L2E_OFFSET_MASK) ? QC_NORMAL : QC_UNALLOCATED;
}

/* "Compressed Clusters Descriptor": host offset and the bytes the data may take. */
static void compressed_extent(const struct qcow2 *q, uint64_t e, uint64_t *host, uint64_t *size)
{
	unsigned x = 62 - (q->cluster_bits - 8);
	uint64_t nsec = (e >> x) & ((1ull << (q->cluster_bits - 8)) - 1);

	*host = e & ((1ull << x) - 1);
	*size = (nsec + 1) * 512 - (*host & 511);
}

/* A host data cluster taken from an L2 entry, checked before any I/O on it. */
static int check_data_cluster(struct qcow2 *q, uint64_t host, uint64_t len, bool write)
{
	if (host & (q->cluster_size - 1))
		return qcow2_corrupt(q, "data cluster offset %#" PRIx64 " is not cluster-aligned",
				     host);
	if (host >= q->file_end)
		return qcow2_corrupt(q, "data cluster at %#" PRIx64 " is past the end of the file",
				     host);
	if (write && qcow2_overlaps_metadata(q, host, len))
		return qcow2_corrupt(q, "data cluster at %#" PRIx64 " overlaps metadata", host);
	return 0;
}

struct qmap {
	enum qcow2_ctype type;
	uint64_t entry;         /* the first cluster's L2 entry */
	uint64_t host;          /* NORMAL, ZERO_ALLOC: host offset of the first byte */
	uint64_t len;           /* bytes from the offset mapped alike */
};

/*
 * Maps [offset, offset+len) as far as the clusters are of one kind (and
 * for host clusters, contiguous with the same COPIED flag). Compressed
 * clusters come one at a time. Meta lock held (either way).
 */
static int qmap(struct qcow2 *q, uint64_t offset, uint64_t len, struct qmap *m)
{
	uint64_t gc = offset >> q->cluster_bits, in = offset & (q->cluster_size - 1);
	uint64_t e, first;
	int ret;

	ret = get_l2e(q, gc, &e);
	if (ret)
		return ret;
	m->type = ctype(q, e);
	m->entry = e;
	first = e & QCOW2_L2E_OFFSET_MASK;
	if ((m->type == QC_NORMAL || m->type == QC_ZERO_ALLOC) && (first & (q->cluster_size - 1)))
		return qcow2_corrupt(q, "data cluster offset %#" PRIx64 " is not cluster-aligned",
				     first);
	m->host = first + in;
	m->len = MIN(len, q->cluster_size - in);
	if (m->type == QC_COMPRESSED)
		return 0;
	for (uint64_t i = 1; m->len < len; i++) {
		uint64_t e2;

		ret = get_l2e(q, gc + i, &e2);
		if (ret)
			return ret;
		if (ctype(q, e2) != m->type || ((e2 ^ e) & QCOW2_OFLAG_COPIED))
			break;
		if ((m->type == QC_NORMAL || m->type == QC_ZERO_ALLOC) &&
		    (e2 & QCOW2_L2E_OFFSET_MASK) != first + (i << q->cluster_bits))
			break;
		m->len += MIN(q->cluster_size, len - m->len);
	}
	return 0;
}

/* ---- read path ---- */

static int read_backing(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset)
{
	uint64_t n = 0;
	int ret;

	if (q->backing && offset < q->backing->size) {
		n = MIN(len, q->backing->size - offset);
		ret = image_pread(q->backing, buf, n, offset);
		if (ret)
			return ret;
	}
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

static void *cluster_buf(struct qcow2 *q)
{
	void *b;

	return posix_memalign(&b, QCOW2_MAX_DIO_ALIGN, q->cluster_size) ? NULL : b;
}

/* Decompresses the cluster described by e into out (cluster_size bytes). */
static int read_compressed(struct qcow2 *q, uint64_t e, uint8_t *out)
{
	uint64_t host, size;
	z_stream z;
	uint8_t *in;
	int ret, zr;

	compressed_extent(q, e, &host, &size);
	if (host < q->cluster_size || host >= q->file_end)
		return qcow2_corrupt(q, "compressed cluster at %#" PRIx64 " is outside the file",
				     host);
	/* the last compressed cluster may end before its last sector does */
	size = MIN(size, q->file_end - host);
	in = malloc(size);
	if (!in)
		return -ENOMEM;
	ret = host_read(q, in, size, host, false);
	if (ret)
		goto out;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK) {
		ret = -ENOMEM;
		goto out;
	}
	z.next_in = in;
	z.avail_in = size;
	z.next_out = out;
	z.avail_out = q->cluster_size;
	zr = inflate(&z, Z_FINISH);
	/* the sector padding after the stream is fine; a short cluster is not */
	if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || z.avail_out)
		ret = qcow2_corrupt(q, "compressed cluster at %#" PRIx64 " does not decompress",
				    host);
	inflateEnd(&z);
out:
	free(in);
	return ret;
}

static int read_mapped(struct qcow2 *q, const struct qmap *m, uint8_t *buf, uint64_t offset)
{
	uint8_t *c;
	int ret;

	switch (m->type) {
	case QC_UNALLOCATED:
		return read_backing(q, buf, m->len, offset);
	case QC_ZERO_PLAIN:
	case QC_ZERO_ALLOC:
		memset(buf, 0, m->len);
		return 0;
	case QC_NORMAL:
		ret = check_data_cluster(q, ALIGN_DOWN(m->host + m->len - 1, q->cluster_size),
					 q->cluster_size, false);
		if (!ret)
			ret = check_data_cluster(q, ALIGN_DOWN(m->host, q->cluster_size),
						 q->cluster_size, false);
		if (ret)
			return ret;
		return host_read(q, buf, m->len, m->host, false);
	case QC_COMPRESSED:
		c = cluster_buf(q);
		if (!c)
			return -ENOMEM;
		ret = read_compressed(q, m->entry, c);
		if (!ret)
			memcpy(buf, c + (offset & (q->cluster_size - 1)), m->len);
		free(c);
		return ret;
	}
	return -EINVAL;
}

static int check_range(const struct qcow2 *q, uint64_t len, uint64_t offset)
{
	return offset > q->h.size || len > q->h.size - offset ? -EINVAL : 0;
}

/* check_range() for a change of the disk's content, which must be allowed too. */
static int check_write_range(const struct qcow2 *q, uint64_t len, uint64_t offset)
{
	int ret = qcow2_writable(q);

	return ret ? ret : check_range(q, len, offset);
}

int qcow2_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset)
{
	uint8_t *b = buf;
	int ret;

	ret = check_range(q, len, offset);
	if (ret)
		return ret;
	pthread_rwlock_rdlock(&q->meta);
	while (len) {
		struct qmap m;

		ret = qmap(q, offset, len, &m);
		if (!ret)
			ret = read_mapped(q, &m, b, offset);
		if (ret)
			break;
		b += m.len;
		offset += m.len;
		len -= m.len;
	}
	pthread_rwlock_unlock(&q->meta);
	return ret;
}

/* ---- write path ---- */

/* Lazy-refcounts images carry DIRTY while we write, as QEMU does. Exclusive lock held. */
static int mark_dirty(struct qcow2 *q)
{
	int ret;

	if (q->dirty_bit_set || !(q->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS))
		return 0;
	ret = write_incompat(q, q->h.incompatible_features | QCOW2_INCOMPAT_DIRTY);
	if (!ret)
		q->dirty_bit_set = true;
	return ret;
}

static int refcount_of(struct qcow2 *q, uint64_t host, uint64_t *rc)
{
	return qcow2_get_refcount(q, host >> q->cluster_bits, rc);
}

/* COPIED as the spec defines it: set exactly when the refcount is 1. */
static int fix_copied(struct qcow2 *q, uint64_t *e)
{
	enum qcow2_ctype t = ctype(q, *e);
	uint64_t rc;
	int ret;

	if (t != QC_NORMAL && t != QC_ZERO_ALLOC) {
		*e &= ~QCOW2_OFLAG_COPIED;
		return 0;
	}
	ret = refcount_of(q, *e & QCOW2_L2E_OFFSET_MASK, &rc);
	if (ret)
		return ret;
	if (rc == 1)
		*e |= QCOW2_OFLAG_COPIED;
	else
		*e &= ~QCOW2_OFLAG_COPIED;
	return 0;
}

/*
 * Returns the L2 table of L1 index l1i, ours to change: allocated when
 * there is none, copied when it is shared with a snapshot ("copy-on-write"
 * of the table: the data clusters keep their refcounts, the new table gets
 * 1 and the old one loses a reference once the new L1 entry is durable).
 */
static int l2_for_write(struct qcow2 *q, uint64_t l1i, uint64_t *l2)
{
	uint64_t e = q->l1[l1i], old = e & QCOW2_L1E_OFFSET_MASK, new, rc;
	uint64_t *table;
	int ret;

	if (old && (e & QCOW2_OFLAG_COPIED)) {
		*l2 = old;
		return 0;
	}
	if (old) {
		ret = refcount_of(q, old, &rc);
		if (ret)
			return ret;
		if (rc == 1) {
			q->l1[l1i] |= QCOW2_OFLAG_COPIED;
			l1_mark_dirty(q, l1i);
			*l2 = old;
			return 0;
		}
	}
	table = cluster_buf(q);
	if (!table)
		return -ENOMEM;
	memset(table, 0, q->cluster_size);
	if (old) {
		ret = qcow2_cache_read(q, q->l2_cache, old, 0, table, q->cluster_size);
		for (uint64_t i = 0; i < l2_entries(q) && !ret; i++) {
			uint64_t v = be64toh(table[i]);

			ret = fix_copied(q, &v);
			table[i] = htobe64(v);
		}
		if (ret)
			goto out;
	}
	ret = qcow2_alloc_clusters(q, 1, &new);
	if (ret)
		goto out;
	ret = qcow2_cache_install(q, q->l2_cache, new, table);
	if (!ret)
		ret = qcow2_meta_index_add(q, new);
	if (ret) {
		qcow2_free_clusters(q, new, q->cluster_size);
		goto out;
	}
	q->l1[l1i] = new | QCOW2_OFLAG_COPIED;
	l1_mark_dirty(q, l1i);
	if (old) {
		qcow2_meta_index_del(q, old);
		qcow2_free_clusters(q, old, q->cluster_size);
	}
	*l2 = new;
out:
	free(table);
	return ret;
}

/* Drops the reference an L2 entry held (deferred until the new entry is durable). */
static void free_entry(struct qcow2 *q, uint64_t e)
{
	uint64_t host, size;

	switch (ctype(q, e)) {
	case QC_NORMAL:
	case QC_ZERO_ALLOC:
		qcow2_free_clusters(q, e & QCOW2_L2E_OFFSET_MASK, q->cluster_size);
		break;
	case QC_COMPRESSED:
		compressed_extent(q, e, &host, &size);
		qcow2_free_clusters(q, ALIGN_DOWN(host, 512), ALIGN_UP(host + size, 512) -
				    ALIGN_DOWN(host, 512));
		break;
	default:
		break;
	}
}

/* What the cluster read as before the write (for the parts the write leaves). */
static int old_contents(struct qcow2 *q, uint64_t e, uint64_t gc, uint8_t *c)
{
	uint64_t host = e & QCOW2_L2E_OFFSET_MASK;
	int ret;

	switch (ctype(q, e)) {
	case QC_UNALLOCATED:
		return read_backing(q, c, q->cluster_size, gc << q->cluster_bits);
	case QC_ZERO_PLAIN:
	case QC_ZERO_ALLOC:
		memset(c, 0, q->cluster_size);
		return 0;
	case QC_NORMAL:
		ret = check_data_cluster(q, host, q->cluster_size, false);
		return ret ? ret : host_read(q, c, q->cluster_size, host, false);
	case QC_COMPRESSED:
		return read_compressed(q, e, c);
	}
	return -EINVAL;
}

/*
 * One cluster's part of a write that needs metadata changes: a new cluster
 * (unallocated, zero, compressed or shared before), or a zero cluster that
 * keeps its host cluster. Exclusive lock held.
 */
static int write_slow(struct qcow2 *q, const uint8_t *buf, uint64_t len, uint64_t offset)
{
	uint64_t gc = offset >> q->cluster_bits, in = offset & (q->cluster_size - 1);
	uint64_t l2, e, host, new, rc = 0;
	enum qcow2_ctype t;
	uint8_t *c = NULL;
	int ret;

	ret = mark_dirty(q);
	if (!ret)
		ret = l2_for_write(q, gc >> q->l2_bits, &l2);
	if (!ret)
		ret = get_l2e(q, gc, &e);
	if (ret)
		return ret;
	t = ctype(q, e);
	host = e & QCOW2_L2E_OFFSET_MASK;
	if (t == QC_NORMAL || t == QC_ZERO_ALLOC) {
		ret = check_data_cluster(q, host, q->cluster_size, true);
		if (!ret)
			ret = refcount_of(q, host, &rc);
		if (ret)
			return ret;
		if (rc == 1 && t == QC_NORMAL) {
			ret = host_write(q, buf, len, host + in);
			if (!ret && !(e & QCOW2_OFLAG_COPIED))
				ret = set_l2e(q, l2, gc, e | QCOW2_OFLAG_COPIED);
			return ret;
		}
	}
	if (len < q->cluster_size) {
		c = cluster_buf(q);
		if (!c)
			return -ENOMEM;
		ret = old_contents(q, e, gc, c);
		if (ret)
			goto out;
		memcpy(c + in, buf, len);
		buf = c;
	}
	if ((t == QC_ZERO_ALLOC) && rc == 1) {
		/* the zero cluster keeps its host cluster: no allocation */
		ret = host_write(q, buf, q->cluster_size, host);
		if (!ret)
			ret = set_l2e(q, l2, gc, host | QCOW2_OFLAG_COPIED);
		goto out;
	}
	ret = qcow2_alloc_clusters(q, 1, &new);
	if (ret)
		goto out;
	ret = host_write(q, buf, q->cluster_size, new);
	if (!ret)
		ret = set_l2e(q, l2, gc, new | QCOW2_OFLAG_COPIED);
	if (ret) {
		qcow2_free_clusters(q, new, q->cluster_size);
		goto out;
	}
	free_entry(q, e);
out:
	free(c);
	return ret;
}

/* Writes in place when the clusters are ours; returns 1 when it cannot. Shared lock held. */
static int write_fast(struct qcow2 *q, const uint8_t *buf, uint64_t len, uint64_t offset,
		      uint64_t *done)
{
	uint64_t start;
	struct qmap m;
	int ret;

	ret = qmap(q, offset, len, &m);
	if (ret)
		return ret;
	if (m.type != QC_NORMAL || !(m.entry & QCOW2_OFLAG_COPIED))
		return 1;
	start = ALIGN_DOWN(m.host, q->cluster_size);
	ret = check_data_cluster(q, start, ALIGN_UP(m.host + m.len, q->cluster_size) - start, true);
	if (!ret)
		ret = check_data_cluster(q, ALIGN_DOWN(m.host + m.len - 1, q->cluster_size), 1, true);
	if (!ret)
		ret = host_write(q, buf, m.len, m.host);
	if (!ret)
		*done = m.len;
	return ret;
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, uint64_t len, uint64_t offset)
{
	const uint8_t *b = buf;
	int ret;

	ret = check_write_range(q, len, offset);
	if (ret)
		return ret;
	while (len) {
		uint64_t n = 0;

		pthread_rwlock_rdlock(&q->meta);
		ret = write_fast(q, b, len, offset, &n);
		pthread_rwlock_unlock(&q->meta);
		if (ret == 1) {
			n = MIN(len, q->cluster_size - (offset & (q->cluster_size - 1)));
			pthread_rwlock_wrlock(&q->meta);
			ret = write_slow(q, b, n, offset);
			pthread_rwlock_unlock(&q->meta);
		}
		if (ret)
			return ret;
		b += n;
		offset += n;
		len -= n;
	}
	return 0;
}

/* ---- discard, zeroing ---- */

enum zero_mode {
	ZM_UNMAP_FULL,  /* unallocated: the backing file shows through */
	ZM_DISCARD,     /* reads as zeros on v3 with a backing file; else unallocated */
	ZM_ZERO,        /* v3 zero flag, host cluster dropped */
	ZM_ZERO_KEEP,   /* v3 zero flag, host cluster kept when it is ours */
};

static uint64_t zero_target(struct qcow2 *q, uint64_t e, enum zero_mode mode)
{
	enum qcow2_ctype t = ctype(q, e);

	switch (mode) {
	case ZM_UNMAP_FULL:
		return 0;
	case ZM_DISCARD:
		return q->h.version >= 3 && q->backing_file ? QCOW2_OFLAG_ZERO : 0;
	case ZM_ZERO:
		return QCOW2_OFLAG_ZERO;
	case ZM_ZERO_KEEP:
		if ((t == QC_NORMAL || t == QC_ZERO_ALLOC) && (e & QCOW2_OFLAG_COPIED))
			return (e & (QCOW2_L2E_OFFSET_MASK | QCOW2_OFLAG_COPIED)) | QCOW2_OFLAG_ZERO;
		return QCOW2_OFLAG_ZERO;
	}
	return 0;
}

/* Changes one whole guest cluster. Exclusive lock held. */
static int zero_cluster(struct qcow2 *q, uint64_t gc, enum zero_mode mode)
{
	uint64_t e, ne, l2;
	int ret;

	ret = get_l2e(q, gc, &e);
	if (ret || zero_target(q, e, mode) == e)
		return ret;
	ret = mark_dirty(q);
	if (!ret)
		ret = l2_for_write(q, gc >> q->l2_bits, &l2);
	if (!ret)
		ret = get_l2e(q, gc, &e); /* COPIED may have changed with a copied table */
	if (ret)
		return ret;
	ne = zero_target(q, e, mode);
	if (ne == e)
		return 0;
	ret = set_l2e(q, l2, gc, ne);
	if (ret)
		return ret;
	if ((ne & QCOW2_L2E_OFFSET_MASK) != (e & QCOW2_L2E_OFFSET_MASK) ||
	    ctype(q, e) == QC_COMPRESSED)
		free_entry(q, e);
	return 0;
}

/* Whole clusters of [offset, offset+len); the disk's partial last cluster counts as whole. */
static void whole_clusters(struct qcow2 *q, uint64_t offset, uint64_t len, uint64_t *first,
			   uint64_t *end)
{
	uint64_t stop = offset + len;

	*first = ALIGN_UP(offset, q->cluster_size) >> q->cluster_bits;
	if (stop == q->h.size)
		stop = ALIGN_UP(stop, q->cluster_size);
	*end = ALIGN_DOWN(stop, q->cluster_size) >> q->cluster_bits;
}

static int zero_clusters(struct qcow2 *q, uint64_t first, uint64_t end, enum zero_mode mode)
{
	int ret = 0;

	pthread_rwlock_wrlock(&q->meta);
	for (uint64_t gc = first; gc < end && !ret; gc++)
		ret = zero_cluster(q, gc, mode);
	pthread_rwlock_unlock(&q->meta);
	return ret;
}

int qcow2_discard(struct qcow2 *q, uint64_t offset, uint64_t len, bool full)
{
	uint64_t first, end;
	int ret;

	ret = check_write_range(q, len, offset);
	if (ret)
		return ret;
	/* a discard is a hint: the partial clusters at the edges stay as they are */
	whole_clusters(q, offset, len, &first, &end);
	if (first >= end)
		return 0;
	return zero_clusters(q, first, end, full ? ZM_UNMAP_FULL : ZM_DISCARD);
}

static int write_zero_bytes(struct qcow2 *q, uint64_t offset, uint64_t len)
{
	uint8_t *z = cluster_buf(q);
	int ret = 0;

	if (!z)
		return -ENOMEM;
	memset(z, 0, q->cluster_size);
	while (len && !ret) {
		uint64_t n = MIN(len, q->cluster_size - (offset & (q->cluster_size - 1)));

		ret = qcow2_pwrite(q, z, n, offset);
		offset += n;
		len -= n;
	}
	free(z);
	return ret;
}

/* v2 has no zero flag: unallocated reads as zeros only without a backing file. */
static int zero_v2(struct qcow2 *q, uint64_t first, uint64_t end, bool unmap)
{
	int ret = 0;

	for (uint64_t gc = first; gc < end && !ret; gc++) {
		uint64_t e, off = gc << q->cluster_bits;

		pthread_rwlock_rdlock(&q->meta);
		ret = get_l2e(q, gc, &e);
		pthread_rwlock_unlock(&q->meta);
		if (ret)
			break;
		if (!q->backing_file && ctype(q, e) == QC_UNALLOCATED)
			continue;
		if (!q->backing_file && unmap)
			ret = zero_clusters(q, gc, gc + 1, ZM_UNMAP_FULL);
		else
			ret = write_zero_bytes(q, off, MIN(q->cluster_size, q->h.size - off));
	}
	return ret;
}

int qcow2_write_zeroes(struct qcow2 *q, uint64_t offset, uint64_t len, bool unmap)
{
	uint64_t first, end, a, b;
	int ret;

	ret = check_write_range(q, len, offset);
	if (ret)
		return ret;
	whole_clusters(q, offset, len, &first, &end);
	if (first >= end)
		return write_zero_bytes(q, offset, len);
	a = first << q->cluster_bits;
	b = MIN(end << q->cluster_bits, q->h.size);
	ret = write_zero_bytes(q, offset, a - offset);
	if (!ret)
		ret = write_zero_bytes(q, b, offset + len - b);
	if (ret)
		return ret;
	if (q->h.version < 3)
		return zero_v2(q, first, end, unmap);
	return zero_clusters(q, first, end, unmap ? ZM_ZERO : ZM_ZERO_KEEP);
}

/* ---- block status ---- */

static unsigned map_flags(const struct qmap *m)
{
	switch (m->type) {
	case QC_UNALLOCATED:
		return 0;
	case QC_ZERO_PLAIN:
	case QC_ZERO_ALLOC:
		return IMAGE_EXT_ZERO | IMAGE_EXT_ALLOCATED;
	case QC_NORMAL:
		return IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED;
	case QC_COMPRESSED:
		return IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED | IMAGE_EXT_COMPRESSED;
	}
	return 0;
}

int qcow2_block_status(struct qcow2 *q, uint64_t offset, uint64_t len, struct image_extent *ext)
{
	struct qmap m;
	int ret;

	ret = check_range(q, len, offset);
	if (ret || !len)
		return ret ? ret : -EINVAL;
	memset(ext, 0, sizeof(*ext));
	pthread_rwlock_rdlock(&q->meta);
	ret = qmap(q, offset, len, &m);
	if (ret)
		goto out;
	ext->offset = offset;
	ext->length = m.len;
	ext->flags = map_flags(&m);
	ext->file = ext->flags ? q->img : NULL;
	if (m.type == QC_NORMAL)
		ext->host_offset = m.host;
	/* runs of compressed clusters, or a data run that broke only on COPIED */
	while (ext->length < len) {
		struct qmap n;

		ret = qmap(q, offset + ext->length, len - ext->length, &n);
		if (ret)
			goto out;
		if (map_flags(&n) != ext->flags)
			break;
		if (n.type == QC_NORMAL && n.host != ext->host_offset + ext->length)
			break;
		ext->length += n.len;
	}
out:
	pthread_rwlock_unlock(&q->meta);
	return ret;
}

/* ---- compressed writes ---- */

/* Deflates one cluster; returns its length, or 0 when it does not shrink. */
static size_t deflate_cluster(struct qcow2 *q, const uint8_t *in, uint8_t *out)
{
	z_stream z;
	size_t n = 0;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (uint8_t *)in;
	z.avail_in = q->cluster_size;
	z.next_out = out;
	z.avail_out = q->cluster_size - 1;
	if (deflate(&z, Z_FINISH) == Z_STREAM_END)
		n = q->cluster_size - 1 - z.avail_out;
	deflateEnd(&z);
	return n;
}

int qcow2_pwrite_compressed(struct qcow2 *q, const void *buf, uint64_t offset)
{
	uint64_t gc = offset >> q->cluster_bits, l2, e, host, nsec, len;
	unsigned x = 62 - (q->cluster_bits - 8);
	uint8_t *in, *out;
	size_t clen;
	int ret;

	ret = qcow2_writable(q);
	if (ret)
		return ret;
	if ((offset & (q->cluster_size - 1)) || offset >= q->h.size)
		return -EINVAL;
	len = MIN(q->cluster_size, q->h.size - offset);
	in = cluster_buf(q);
	out = cluster_buf(q);
	if (!in || !out) {
		ret = -ENOMEM;
		goto out;
	}
	memset(in, 0, q->cluster_size);
	memcpy(in, buf, len);
	clen = deflate_cluster(q, in, out);
	if (!clen) {
		ret = qcow2_pwrite(q, buf, len, offset);
		goto out;
	}
	pthread_rwlock_wrlock(&q->meta);
	ret = mark_dirty(q);
	if (!ret)
		ret = l2_for_write(q, gc >> q->l2_bits, &l2);
	if (!ret)
		ret = get_l2e(q, gc, &e);
	if (!ret)
		ret = qcow2_alloc_bytes(q, clen, &host);
	if (ret)
		goto unlock;
	ret = host_write(q, out, clen, host);
	nsec = ((host + clen - 1) >> 9) - (host >> 9);
	if (!ret)
		ret = set_l2e(q, l2, gc, QCOW2_OFLAG_COMPRESSED | (nsec << x) | host);
	if (ret)
		qcow2_free_clusters(q, host, clen);
	else
		free_entry(q, e);
unlock:
	pthread_rwlock_unlock(&q->meta);
out:
	free(in);
	free(out);
	return ret;
}

/* ---- flush ---- */

/*
 * The crash-safe order: refcount blocks (and table), sync, L2 tables, sync,
 * L1 entries, sync; then the deferred frees, whose decrements reach the disk
 * at the next flush. Exclusive lock held (or nobody else using q).
 */
static int flush_locked(struct qcow2 *q)
{
	bool l2_dirty, l1_dirty = q->l1_dirty_lo < q->l1_dirty_hi;
	int ret;

	if (q->read_only)
		return 0;
	l2_dirty = cache_dirty(q->l2_cache);
	ret = qcow2_refcount_writeback(q);
	if (!ret && (l2_dirty || l1_dirty))
		ret = q_sync(q);
	if (!ret && l2_dirty)
		ret = cache_writeback(q, q->l2_cache);
	if (!ret && l1_dirty && l2_dirty)
		ret = q_sync(q);
	if (!ret && l1_dirty) {
		ret = write_l1_range(q, q->l1_dirty_lo, q->l1_dirty_hi);
		if (!ret)
			q->l1_dirty_lo = q->l1_dirty_hi = 0;
	}
	if (!ret)
		ret = q_sync(q);
	if (!ret && q->nb_pending)
		ret = qcow2_apply_pending_frees(q);
	return ret;
}

int qcow2_flush(struct qcow2 *q)
{
	int ret;

	pthread_rwlock_wrlock(&q->meta);
	ret = flush_locked(q);
	pthread_rwlock_unlock(&q->meta);
	return ret;
}

int qcow2_flush_and_drop_caches(struct qcow2 *q)
{
	int ret = flush_locked(q);

	/* and once more for the decrements the first one applied */
	if (!ret)
		ret = flush_locked(q);
	if (ret)
		return ret;
	cache_drop(q->l2_cache);
	cache_drop(q->rc_cache);
	q->cbytes_off = 0;
	return qcow2_rebuild_meta_index(q);
}

/* ---- header ---- */

static int put_ext(uint8_t *b, size_t *pos, size_t cap, uint32_t type, const void *data,
		   uint32_t len)
{
	size_t need = 8 + ALIGN_UP((size_t)len, 8);

	if (*pos + need > cap)
		return -ENOSPC;
	put_be32(b + *pos, type);
	put_be32(b + *pos + 4, len);
	memset(b + *pos + 8, 0, need - 8);
	if (len)
		memcpy(b + *pos + 8, data, len);
	*pos += need;
	return 0;
}

int qcow2_write_header(struct qcow2 *q)
{
	struct qcow2_header *h = &q->h;
	size_t pos, cap = q->cluster_size, blen = q->backing_file ? strlen(q->backing_file) : 0;
	uint32_t hl = QCOW2_V2_HEADER_LEN;
	uint8_t *b;
	int ret = 0;

	if (q->read_only)
		return -EROFS;
	if (blen > QCOW2_MAX_BACKING_NAME)
		return -ENAMETOOLONG;
	b = calloc(1, cap);
	if (!b)
		return -ENOMEM;
	if (h->version >= 3)
		hl = h->header_length >= 112 ? 112 : QCOW2_V3_HEADER_LEN;
	put_be32(b, QCOW2_MAGIC);
	put_be32(b + 4, h->version);
	put_be32(b + 20, h->cluster_bits);
	put_be64(b + 24, h->size);
	put_be32(b + 32, h->crypt_method);
	put_be32(b + 36, h->l1_size);
	put_be64(b + 40, h->l1_table_offset);
	put_be64(b + 48, h->refcount_table_offset);
	put_be32(b + 56, h->refcount_table_clusters);
	put_be32(b + 60, h->nb_snapshots);
	put_be64(b + 64, h->snapshots_offset);
	if (h->version >= 3) {
		put_be64(b + 72, h->incompatible_features);
		put_be64(b + 80, h->compatible_features);
		put_be64(b + 88, h->autoclear_features);
		put_be32(b + 96, h->refcount_order);
		put_be32(b + 100, hl);
		if (hl > QCOW2_V3_HEADER_LEN)
			b[104] = h->compression_type;
	}
	pos = hl;
	if (q->backing_format)
		ret = put_ext(b, &pos, cap, QCOW2_EXT_BACKING_FORMAT, q->backing_format,
			      strlen(q->backing_format));
	for (unsigned i = 0; i < q->nb_exts && !ret; i++)
		ret = put_ext(b, &pos, cap, q->exts[i].type, q->exts[i].data, q->exts[i].len);
	if (!ret)
		ret = put_ext(b, &pos, cap, QCOW2_EXT_END, NULL, 0);
	if (!ret && pos + blen > cap)
		ret = -ENOSPC;
	if (ret) {
		pr_err("%s: the qcow2 header, its extensions and the backing file name do not fit in one cluster\n",
		       q->img ? q->img->path : "qcow2");
		goto out;
	}
	h->backing_file_offset = blen ? pos : 0;
	h->backing_file_size = blen;
	put_be64(b + 8, h->backing_file_offset);
	put_be32(b + 16, h->backing_file_size);
	memcpy(b + pos, q->backing_file ? q->backing_file : "", blen);
	h->header_length = hl;
	ret = host_write(q, b, pos + blen, 0);
out:
	free(b);
	return ret;
}

int qcow2_set_backing(struct qcow2 *q, const char *file, const char *format)
{
	char *of = q->backing_file, *ofmt = q->backing_format;
	int ret;

	ret = qcow2_writable(q);
	if (ret)
		return ret;
	q->backing_file = file ? strdup(file) : NULL;
	q->backing_format = file && format ? strdup(format) : NULL;
	if ((file && !q->backing_file) || (file && format && !q->backing_format)) {
		ret = -ENOMEM;
		goto undo;
	}
	ret = qcow2_write_header(q);
	if (ret)
		goto undo;
	free(of);
	free(ofmt);
	return 0;
undo:
	free(q->backing_file);
	free(q->backing_format);
	q->backing_file = of;
	q->backing_format = ofmt;
	return ret;
}

/* ---- the blockdev driver ---- */

static int q2_open(struct blockdev *bd, const struct drive_opts *o, char *err, size_t errlen)
{
	unsigned flags = bd->read_only ? 0 : IMAGE_RDWR;
	struct image *img;
	int ret;

	if (bd->cache.direct)
		flags |= IMAGE_DIRECT;
	if (bd->cache.writethrough)
		flags |= IMAGE_DSYNC;
	ret = image_open(o->file, IMAGE_FORMAT_QCOW2, flags, &img, err, errlen);
	if (ret)
		return ret;
	bd->priv = img;
	bd->block_size = img->qcow2->direct ? img->qcow2->dio_align : BLOCKDEV_SECTOR;
	bd->size = ALIGN_DOWN(img->size, (uint64_t)bd->block_size);
	if (bd->size != img->size)
		pr_warn("%s: size %" PRIu64 " is not a multiple of %u; the guest sees %" PRIu64 " bytes\n",
			o->file, img->size, bd->block_size, bd->size);
	return 0;
}

static void q2_close(struct blockdev *bd)
{
	image_close(bd->priv);
	bd->priv = NULL;
}

static int q2_rw(struct blockdev *bd, bool write, uint64_t offset, const struct iovec *iov,
		 int iovcnt)
{
	struct image *img = bd->priv;
	size_t total = iov_total(iov, iovcnt);
	uint8_t *buf;
	int ret = 0;

	if (iovcnt == 1 || total > QCOW2_BOUNCE_MAX) {
		/* one call per segment */
		for (int i = 0; i < iovcnt && !ret; i++) {
			ret = write ? qcow2_pwrite(img->qcow2, iov[i].iov_base, iov[i].iov_len, offset) :
				      qcow2_pread(img->qcow2, iov[i].iov_base, iov[i].iov_len, offset);
			offset += iov[i].iov_len;
		}
	} else {
		buf = malloc(total ? total : 1);
		if (!buf)
			return -ENOMEM;
		if (write) {
			iov_copy(iov, iovcnt, 0, buf, total, false);
			ret = qcow2_pwrite(img->qcow2, buf, total, offset);
		} else {
			ret = qcow2_pread(img->qcow2, buf, total, offset);
			if (!ret)
				iov_copy(iov, iovcnt, 0, buf, total, true);
		}
		free(buf);
	}
	/* writethrough: the write is durable when it completes, metadata too */
	if (!ret && write && bd->cache.writethrough)
		ret = qcow2_flush(img->qcow2);
	return ret ? ret : (int)total;
}

static int q2_readv(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return q2_rw(bd, false, offset, iov, iovcnt);
}

static int q2_writev(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return q2_rw(bd, true, offset, iov, iovcnt);
}

static int q2_flush(struct blockdev *bd)
{
	struct image *img = bd->priv;

	return qcow2_flush(img->qcow2);
}

static int q2_discard(struct blockdev *bd, uint64_t offset, uint64_t len)
{
	struct image *img = bd->priv;

	return qcow2_discard(img->qcow2, offset, len, false);
}

static int q2_write_zeroes(struct blockdev *bd, uint64_t offset, uint64_t len, bool unmap)
{
	struct image *img = bd->priv;
	int ret = qcow2_write_zeroes(img->qcow2, offset, len, unmap);

	if (!ret && bd->cache.writethrough)
		ret = qcow2_flush(img->qcow2);
	return ret;
}

const struct blockdev_ops qcow2_ops = {
	.format = "qcow2",
	.open = q2_open,
	.close = q2_close,
	.readv = q2_readv,
	.writev = q2_writev,
	.flush = q2_flush,
	.discard = q2_discard,
	.write_zeroes = q2_write_zeroes,
};
