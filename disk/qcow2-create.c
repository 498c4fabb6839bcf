// SPDX-License-Identifier: MIT
/*
 * qcow2 image creation and resizing (docs/interop/qcow2.txt: "Header",
 * "Header extensions", "Host cluster management", "Cluster mapping").
 *
 * Create writes the whole image with plain pwrite, laid out as qemu-img 7.2
 * lays out a fresh image: the header in cluster 0, then the refcount table,
 * the refcount blocks, the L1 table and, with preallocation, each L2 table
 * followed by the data clusters it maps. The layout is computed up front, so
 * the refcount blocks describe the whole file from the start and nothing
 * needs the allocator. The header goes last: a crash half way leaves a file
 * that does not open as qcow2 rather than one that lies.
 *
 * Resize works on an open image through the allocator of qcow2-refcount.c.
 */
#include <errno.h>
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/filelock.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

#define SECTOR 512u
#define ZERO_CHUNK (1u << 20)

/*
 * The feature name table as qemu-img writes it. qemu-img leaves it out of
 * images with clusters of 4 KiB or less, to keep room for a backing file
 * name in the header cluster; we do the same so the headers compare equal.
 */
#define FEATURE_TABLE_MIN_CLUSTER 8192
#define FEATURE_NAME_LEN 46

static const struct {
	uint8_t type; /* 0 incompatible, 1 compatible, 2 autoclear */
	uint8_t bit;
	const char *name;
} feature_names[] = {
	{ 0, 0, "dirty bit" },
	{ 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" },
	{ 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" },
	{ 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },
	{ 2, 1, "raw external data" },
};

/* Where everything goes, in clusters. */
struct layout {
	uint32_t cluster_bits;
	uint64_t cs;
	uint64_t guest_clusters;
	uint64_t l1_entries;
	uint64_t l1_clusters;
	uint64_t nb_l2;              /* preallocated L2 tables (0 without preallocation) */
	uint64_t data_clusters;      /* preallocated data clusters */
	uint64_t reftable_clusters;
	uint64_t nb_refblocks;
	uint64_t total;              /* clusters in the file */
	uint64_t reftable;           /* first cluster of each part */
	uint64_t refblocks;
	uint64_t l1;
	uint64_t l2;
};

static int validate(const struct qcow2_create_opts *o, uint64_t *cs, int *version,
		    uint32_t *rc_bits, char *err, size_t errlen)
{
	*cs = o->cluster_size ? o->cluster_size : 1u << QCOW2_DEFAULT_CLUSTER_BITS;
	*version = o->compat ? o->compat : 3;
	*rc_bits = o->refcount_bits ? o->refcount_bits : 16;

	if (*cs < (1u << QCOW2_MIN_CLUSTER_BITS) || *cs > (1u << QCOW2_MAX_CLUSTER_BITS) ||
	    (*cs & (*cs - 1))) {
		snprintf(err, errlen, "Cluster size must be a power of two between %u and %uk",
			 1u << QCOW2_MIN_CLUSTER_BITS, 1u << (QCOW2_MAX_CLUSTER_BITS - 10));
		return -EINVAL;
	}
	if (*version != 2 && *version != 3) {
		snprintf(err, errlen, "Invalid compatibility level: %d", *version);
		return -EINVAL;
	}
	if (*rc_bits > 64 || (*rc_bits & (*rc_bits - 1))) {
		snprintf(err, errlen, "Refcount width must be a power of two and may not exceed 64 bits");
		return -EINVAL;
	}
	if (*version == 2 && *rc_bits != 16) {
		snprintf(err, errlen, "Different refcount widths than 16 bits require compatibility "
			 "level 1.1 or above (use version=v3 or greater)");
		return -EINVAL;
	}
	if (*version == 2 && o->lazy_refcounts) {
		snprintf(err, errlen, "Lazy refcounts only supported with compatibility level 1.1 "
			 "and above (use version=v3 or greater)");
		return -EINVAL;
	}
	if (o->backing_file && o->prealloc != QCOW2_PREALLOC_OFF) {
		snprintf(err, errlen, "Backing file and preallocation can only be used at the same "
			 "time if extended_l2 is on");
		return -EINVAL;
	}
	if (o->backing_format && !o->backing_file) {
		snprintf(err, errlen, "Backing format cannot be used without backing file");
		return -EINVAL;
	}
	if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME) {
		snprintf(err, errlen, "Backing file name too long");
		return -EINVAL;
	}
	return 0;
}

/* Finds every part a place; -EFBIG when the size cannot be described. */
static int plan(struct layout *l, uint64_t size, uint64_t cs, uint32_t rc_bits, bool prealloc,
		char *err, size_t errlen)
{
	uint64_t l2_entries = cs / sizeof(uint64_t);
	uint64_t rb_entries = cs * 8 / rc_bits;
	uint64_t fixed;

	memset(l, 0, sizeof(*l));
	l->cs = cs;
	l->cluster_bits = (uint32_t)__builtin_ctzll(cs);
	l->guest_clusters = (size + cs - 1) / cs;
	l->l1_entries = (l->guest_clusters + l2_entries - 1) / l2_entries;
	if (size > QCOW2_MAX_SIZE || l->l1_entries * sizeof(uint64_t) > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "The image size is too large for file format 'qcow2' (try "
			 "using a larger cluster size)");
		return -EFBIG;
	}
	l->l1_clusters = (l->l1_entries * sizeof(uint64_t) + cs - 1) / cs;
	if (prealloc) {
		l->nb_l2 = l->l1_entries;
		l->data_clusters = l->guest_clusters;
	}
	fixed = 1 + l->l1_clusters + l->nb_l2 + l->data_clusters;

	/* The refcount blocks count themselves and the table: iterate to a fixed point. */
	l->nb_refblocks = 1;
	l->reftable_clusters = 1;
	for (;;) {
		uint64_t total = fixed + l->reftable_clusters + l->nb_refblocks;
		uint64_t rb = (total + rb_entries - 1) / rb_entries;
		uint64_t rt = (rb * sizeof(uint64_t) + cs - 1) / cs;

		if (rb <= l->nb_refblocks && rt <= l->reftable_clusters)
			break;
		l->nb_refblocks = MAX(rb, l->nb_refblocks);
		l->reftable_clusters = MAX(rt, l->reftable_clusters);
	}
	if (l->reftable_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
		snprintf(err, errlen, "The image size is too large for file format 'qcow2' (try "
			 "using a larger cluster size)");
		return -EFBIG;
	}
	l->reftable = 1;
	l->refblocks = l->reftable + l->reftable_clusters;
	l->l1 = l->refblocks + l->nb_refblocks;
	l->l2 = l->l1 + l->l1_clusters;
	l->total = l->l2 + l->nb_l2 + l->data_clusters;
	return 0;
}

static uint64_t file_length(const struct layout *l, bool prealloc)
{
	if (prealloc || !l->l1_entries)
		return l->total << l->cluster_bits;
	return (l->l1 << l->cluster_bits) + l->l1_entries * sizeof(uint64_t);
}

/* Every cluster of the file has refcount 1: the rest of the last block stays 0. */
static int write_refcounts(int fd, const struct layout *l, uint32_t rc_bits, uint8_t *buf)
{
	uint64_t rb_entries = l->cs * 8 / rc_bits;
	uint64_t left = l->total;
	int ret;

	for (uint64_t b = 0; b < l->nb_refblocks; b++) {
		uint64_t n = MIN(left, rb_entries);

		memset(buf, 0, l->cs);
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_entry_set(buf, i, rc_bits, 1);
		left -= n;
		ret = qcow2_pwrite_all(fd, buf, l->cs, (l->refblocks + b) << l->cluster_bits);
		if (ret)
			return ret;
	}
	for (uint64_t c = 0; c < l->reftable_clusters; c++) {
		uint64_t per = l->cs / sizeof(uint64_t);

		memset(buf, 0, l->cs);
		for (uint64_t i = 0; i < per && c * per + i < l->nb_refblocks; i++)
			put_be64(buf + i * 8, (l->refblocks + c * per + i) << l->cluster_bits);
		ret = qcow2_pwrite_all(fd, buf, l->cs, (l->reftable + c) << l->cluster_bits);
		if (ret)
			return ret;
	}
	return 0;
}

/* Preallocated L2 table i sits at this cluster, its data clusters right after it. */
static uint64_t l2_cluster(const struct layout *l, uint64_t i)
{
	return l->l2 + i * (1 + l->cs / sizeof(uint64_t));
}

static int fill_data(int fd, const struct layout *l, int prealloc, uint64_t first, uint64_t n)
{
	static const uint8_t zeroes[ZERO_CHUNK];
	uint64_t off = first << l->cluster_bits;
	uint64_t len = n << l->cluster_bits;
	int ret;

	if (prealloc == QCOW2_PREALLOC_FALLOC) {
		ret = posix_fallocate(fd, (off_t)off, (off_t)len);
		return -ret;
	}
	while (len) {
		size_t chunk = (size_t)MIN(len, (uint64_t)ZERO_CHUNK);

		ret = qcow2_pwrite_all(fd, zeroes, chunk, off);
		if (ret)
			return ret;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

static int write_tables(int fd, const struct layout *l, int prealloc, uint8_t *buf)
{
	uint64_t per = l->cs / sizeof(uint64_t);
	uint64_t mapped = 0;
	int ret;

	for (uint64_t c = 0; c < l->l1_clusters; c++) {
		uint64_t n = MIN(per, l->l1_entries - c * per);

		memset(buf, 0, l->cs);
		for (uint64_t i = 0; i < n && c * per + i < l->nb_l2; i++)
			put_be64(buf + i * 8, (l2_cluster(l, c * per + i) << l->cluster_bits) |
						   QCOW2_OFLAG_COPIED);
		ret = qcow2_pwrite_all(fd, buf, n * 8, (l->l1 + c) << l->cluster_bits);
		if (ret)
			return ret;
	}
	for (uint64_t t = 0; t < l->nb_l2; t++) {
		uint64_t l2 = l2_cluster(l, t);
		uint64_t n = MIN(per, l->data_clusters - mapped);

		memset(buf, 0, l->cs);
		for (uint64_t i = 0; i < n; i++)
			put_be64(buf + i * 8,
				 ((l2 + 1 + i) << l->cluster_bits) | QCOW2_OFLAG_COPIED);
		ret = qcow2_pwrite_all(fd, buf, l->cs, l2 << l->cluster_bits);
		if (ret)
			return ret;
		if (prealloc == QCOW2_PREALLOC_FALLOC || prealloc == QCOW2_PREALLOC_FULL) {
			ret = fill_data(fd, l, prealloc, l2 + 1, n);
			if (ret)
				return ret;
		}
		mapped += n;
	}
	return 0;
}

static size_t put_ext(uint8_t *p, uint32_t type, const void *data, uint32_t len)
{
	put_be32(p, type);
	put_be32(p + 4, len);
	memcpy(p + 8, data, len);
	return 8 + ALIGN_UP((size_t)len, 8);
}

/* Builds cluster 0; -ENOSPC when the extensions and backing name do not fit. */
static int build_header(uint8_t *buf, const struct layout *l, int version, uint32_t rc_bits,
			const struct qcow2_create_opts *o, uint64_t size)
{
	size_t hlen = version == 3 ? QCOW2_V3_HEADER_LEN + 8 : QCOW2_V2_HEADER_LEN;
	size_t name_len = o->backing_file ? strlen(o->backing_file) : 0;
	size_t fmt_len = o->backing_format ? strlen(o->backing_format) : 0;
	size_t ft_len = ARRAY_SIZE(feature_names) * (2 + FEATURE_NAME_LEN);
	bool ft = version == 3 && l->cs >= FEATURE_TABLE_MIN_CLUSTER;
	size_t need = hlen + 8 + name_len;
	size_t p;

	if (fmt_len)
		need += 8 + ALIGN_UP(fmt_len, 8);
	if (ft)
		need += 8 + ft_len;
	if (need > l->cs)
		return -ENOSPC;

	memset(buf, 0, l->cs);
	put_be32(buf + 0, QCOW2_MAGIC);
	put_be32(buf + 4, (uint32_t)version);
	put_be32(buf + 20, l->cluster_bits);
	put_be64(buf + 24, size);
	put_be32(buf + 36, (uint32_t)l->l1_entries);
	put_be64(buf + 40, l->l1_entries ? l->l1 << l->cluster_bits : 0);
	put_be64(buf + 48, l->reftable << l->cluster_bits);
	put_be32(buf + 56, (uint32_t)l->reftable_clusters);
	if (version == 3) {
		put_be64(buf + 80, o->lazy_refcounts ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
		put_be32(buf + 96, (uint32_t)__builtin_ctz(rc_bits));
		put_be32(buf + 100, (uint32_t)hlen);
		/* buf[104]: compression type 0 (zlib), then padding to 112 */
	}

	p = hlen;
	if (fmt_len)
		p += put_ext(buf + p, QCOW2_EXT_BACKING_FORMAT, o->backing_format,
			     (uint32_t)fmt_len);
	if (ft) {
		put_be32(buf + p, QCOW2_EXT_FEATURE_TABLE);
		put_be32(buf + p + 4, (uint32_t)ft_len);
		p += 8;
		for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
			buf[p] = feature_names[i].type;
			buf[p + 1] = feature_names[i].bit;
			memcpy(buf + p + 2, feature_names[i].name, strlen(feature_names[i].name));
			p += 2 + FEATURE_NAME_LEN;
		}
	}
	p += 8; /* end of extensions: type 0, length 0 */
	if (name_len) {
		put_be64(buf + 8, p);
		put_be32(buf + 16, (uint32_t)name_len);
		memcpy(buf + p, o->backing_file, name_len);
	}
	return 0;
}

/*
 * Without a size, the image takes its backing file's. A relative backing
 * name is relative to the new image's directory, as it will be when the
 * image is opened.
 */
static int backing_size(const char *path, const struct qcow2_create_opts *o, uint64_t *size,
			char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	enum image_format f;
	struct image *img;
	char *full = NULL;
	char e[256];
	int fmt = -1;
	int ret;

	if (o->backing_format) {
		if (image_format_parse(o->backing_format, &f)) {
			snprintf(err, errlen, "Unknown backing file format '%s'", o->backing_format);
			return -EINVAL;
		}
		fmt = (int)f;
	}
	if (o->backing_file[0] != '/' && slash) {
		if (asprintf(&full, "%.*s/%s", (int)(slash - path), path, o->backing_file) < 0)
			return -ENOMEM;
	}
	ret = image_open(full ? full : o->backing_file, fmt, IMAGE_NO_BACKING | IMAGE_NO_LOCK,
			 &img, e, sizeof(e));
	free(full);
	if (ret) {
		snprintf(err, errlen, "Could not open backing image to determine size: %s", e);
		return ret;
	}
	*size = img->size;
	image_close(img);
	return 0;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
	uint64_t size = o->size;
	struct layout l;
	uint8_t *hdr, *buf;
	uint32_t rc_bits;
	int version;
	uint64_t cs;
	int fd, ret;

	ret = validate(o, &cs, &version, &rc_bits, err, errlen);
	if (ret)
		return ret;
	if (!size && o->backing_file) {
		ret = backing_size(path, o, &size, err, errlen);
		if (ret)
			return ret;
	}
	if (size > QCOW2_MAX_SIZE) {
		snprintf(err, errlen, "The image size is too large for file format 'qcow2'");
		return -EFBIG;
	}
	size = ALIGN_UP(size, (uint64_t)SECTOR);
	ret = plan(&l, size, cs, rc_bits, o->prealloc != QCOW2_PREALLOC_OFF, err, errlen);
	if (ret)
		return ret;

	hdr = malloc(cs);
	buf = malloc(cs);
	ret = -ENOMEM;
	if (!hdr || !buf)
		goto out_free;
	ret = build_header(hdr, &l, version, rc_bits, o, size);
	if (ret) {
		snprintf(err, errlen, "Backing file name and format do not fit in the header "
			 "cluster (try a larger cluster size)");
		goto out_free;
	}

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out_free;
	}
	/* never truncate an image someone is using (a filesystem without locks is fine) */
	if (filelock_take(fd, false) == -EBUSY) {
		ret = -EBUSY;
		snprintf(err, errlen, "Failed to get \"write\" lock: is another process using the "
			 "image %s?", path);
		close(fd);
		goto out_free;
	}
	if (ftruncate(fd, 0)) {
		ret = -errno;
		goto out_io;
	}
	/*
	 * Preallocated data clusters are never written: the file's length makes
	 * them exist. Without preallocation the file ends with the L1 table's
	 * last entry, as qemu-img leaves it.
	 */
	if (ftruncate(fd, (off_t)file_length(&l, o->prealloc != QCOW2_PREALLOC_OFF))) {
		ret = -errno;
		goto out_io;
	}
	ret = write_refcounts(fd, &l, rc_bits, buf);
	if (!ret)
		ret = write_tables(fd, &l, (int)o->prealloc, buf);
	if (!ret && fdatasync(fd))
		ret = -errno;
	if (ret)
		goto out_io;
	ret = qcow2_pwrite_all(fd, hdr, l.cs, 0);
	if (!ret && fsync(fd))
		ret = -errno;
out_io:
	if (ret)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	close(fd);
out_free:
	free(buf);
	free(hdr);
	return ret;
}

/* ---- resize ---- */

static uint64_t size_to_l1(const struct qcow2 *q, uint64_t size)
{
	uint32_t shift = q->cluster_bits + q->l2_bits;

	return (size + (1ull << shift) - 1) >> shift;
}

int qcow2_grow_l1(struct qcow2 *q, uint32_t new_size)
{
	uint64_t old_off = q->h.l1_table_offset;
	uint32_t old_size = q->h.l1_size;
	uint64_t bytes = (uint64_t)new_size * 8, clusters, off;
	uint64_t *l1, *be;
	int ret;

	if (new_size <= old_size)
		return 0;
	if (bytes > QCOW2_MAX_L1_BYTES)
		return -EFBIG;
	clusters = (bytes + q->cluster_size - 1) >> q->cluster_bits;
	l1 = calloc(new_size, 8);
	be = calloc(clusters, q->cluster_size);
	ret = -ENOMEM;
	if (!l1 || !be)
		goto out;
	if (old_size)
		memcpy(l1, q->l1, (size_t)old_size * 8);
	for (uint32_t i = 0; i < new_size; i++)
		be[i] = htobe64(l1[i]);

	ret = qcow2_alloc_clusters(q, clusters, &off);
	if (ret)
		goto out;
	ret = qcow2_meta_pwrite(q, be, clusters << q->cluster_bits, off);
	if (!ret)
		ret = qcow2_flush_and_drop_caches(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret)
		goto out_unalloc;

	/* offset and size of the new table in one header write */
	q->h.l1_table_offset = off;
	q->h.l1_size = new_size;
	ret = qcow2_write_header(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret) {
		/* the header may or may not have made it: leak the new table rather than guess */
		q->h.l1_table_offset = old_off;
		q->h.l1_size = old_size;
		goto out;
	}
	free(q->l1);
	q->l1 = l1;
	l1 = NULL;
	if (old_size)
		qcow2_update_refcount(q, old_off, (uint64_t)old_size * 8, -1);
	ret = qcow2_rebuild_meta_index(q);
	goto out;
out_unalloc:
	qcow2_update_refcount(q, off, bytes, -1);
out:
	free(be);
	free(l1);
	return ret;
}

/* Drops the L2 tables of L1 entries from n on, whose clusters were discarded already. */
static int shrink_l1(struct qcow2 *q, uint32_t n)
{
	uint32_t old = q->h.l1_size;
	uint64_t *gone;
	int ret;

	if (n >= old)
		return 0;
	gone = malloc((size_t)(old - n) * 8);
	if (!gone)
		return -ENOMEM;
	memcpy(gone, q->l1 + n, (size_t)(old - n) * 8);
	memset(q->l1 + n, 0, (size_t)(old - n) * 8);
	ret = qcow2_write_l1(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	for (uint32_t i = 0; i < old - n && !ret; i++) {
		uint64_t l2 = gone[i] & QCOW2_L1E_OFFSET_MASK;

		if (l2)
			ret = qcow2_update_refcount(q, l2, q->cluster_size, -1);
	}
	free(gone);
	return ret;
}

int qcow2_resize(struct qcow2 *q, uint64_t new_size, bool allow_shrink, char *err, size_t errlen)
{
	uint64_t old_size = q->h.size, l1;
	int ret;

	if (q->read_only) {
		snprintf(err, errlen, "the image is read-only");
		return -EROFS;
	}
	if (q->repair_only) {
		snprintf(err, errlen, "the image is marked corrupt; repair it first");
		return -EACCES;
	}
	if (new_size % SECTOR) {
		snprintf(err, errlen, "The new size must be a multiple of %u", SECTOR);
		return -EINVAL;
	}
	if (q->nb_snapshots && q->h.version < 3) {
		snprintf(err, errlen, "Can't resize a v2 image which has snapshots");
		return -ENOTSUP;
	}
	if (new_size < old_size && !allow_shrink) {
		snprintf(err, errlen, "Use the --shrink option to perform a shrink operation.");
		return -EINVAL;
	}
	l1 = size_to_l1(q, new_size);
	if (new_size > QCOW2_MAX_SIZE || l1 * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "The image size is too large for file format 'qcow2' (try "
			 "using a larger cluster size)");
		return -EFBIG;
	}
	if (new_size < old_size) {
		uint64_t from = ALIGN_UP(new_size, q->cluster_size);

		/* the clusters past the new end go first, through the normal discard path */
		if (from < old_size) {
			ret = qcow2_discard(q, from, old_size - from, true);
			if (ret)
				goto fail;
		}
	}

	pthread_rwlock_wrlock(&q->meta);
	ret = qcow2_flush_and_drop_caches(q);
	if (!ret && q->l1_dirty_lo < q->l1_dirty_hi)
		ret = qcow2_write_l1(q);
	if (!ret)
		ret = new_size < old_size ? shrink_l1(q, (uint32_t)l1) :
					    qcow2_grow_l1(q, (uint32_t)l1);
	if (!ret) {
		q->h.size = new_size;
		ret = qcow2_write_header(q);
		if (ret)
			q->h.size = old_size;
		else if (q->img)
			q->img->size = new_size;
	}
	if (!ret)
		ret = qcow2_flush_and_drop_caches(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	pthread_rwlock_unlock(&q->meta);
fail:
	if (ret)
		snprintf(err, errlen, "Could not resize the image: %s", strerror(-ret));
	return ret;
}
