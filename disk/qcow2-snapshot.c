// SPDX-License-Identifier: MIT
/*
 * qcow2 internal snapshots (docs/interop/qcow2.txt, "Snapshots"): the
 * snapshot table, and creating, applying and deleting snapshots.
 *
 * A snapshot is a copy of the active L1 table plus one more reference to
 * every L2 table and data cluster it reaches, so that the write path copies
 * those clusters before changing them (their COPIED flag is clear while
 * they are shared). Everything here runs under the exclusive meta lock with
 * the caches flushed and dropped, reading and writing the tables on disk.
 *
 * Crash safety: refcounts are raised and synced before a new reference to
 * the clusters reaches the disk, and lowered only after the old references
 * are gone from the disk, so an interrupted operation leaves leaked
 * clusters at worst. The snapshot table is never changed in place: a new
 * one is written to new clusters and the header switched to it in one
 * write.
 *
 * Names as qemu-img: apply looks a snapshot up by id, then by name; delete
 * by name, then by id (qemu-img deletes by name only).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk/qcow2.h"
#include "vmm/log.h"

#define SN_HEADER_LEN 40
#define SN_EXTRA_V3 16             /* vm_state_size_large, disk_size: required in v3 */
#define SN_EXTRA_QEMU 24           /* ... and icount, as QEMU 7.2 writes */
#define SN_MAX_EXTRA 1024          /* QEMU's limit */
#define SN_MAX_TABLE (64u << 20)   /* QEMU's limit on the whole table */

static uint64_t entry_size(const struct qcow2_snapshot *sn)
{
	return ALIGN_UP(SN_HEADER_LEN + (uint64_t)sn->extra_data_size + strlen(sn->id_str) +
				strlen(sn->name), 8);
}

static uint64_t table_size(const struct qcow2_snapshot *s, unsigned n)
{
	uint64_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += entry_size(&s[i]);
	return len;
}

uint64_t qcow2_snapshot_table_size(const struct qcow2 *q)
{
	return table_size(q->snapshots, q->nb_snapshots);
}

static void free_entry(struct qcow2_snapshot *sn)
{
	free(sn->id_str);
	free(sn->name);
	free(sn->extra_data);
}

void qcow2_snapshots_free(struct qcow2 *q)
{
	for (unsigned i = 0; i < q->nb_snapshots; i++)
		free_entry(&q->snapshots[i]);
	free(q->snapshots);
	q->snapshots = NULL;
	q->nb_snapshots = 0;
}

static char *dup_str(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* L1 entries that a disk of size bytes needs. */
static uint64_t l1_entries(const struct qcow2 *q, uint64_t size)
{
	uint32_t shift = q->cluster_bits + q->l2_bits;

	return (size + (1ull << shift) - 1) >> shift;
}

/* Parses entry i at pos (bytes from the table's start); -EINVAL with err. */
static int load_entry(struct qcow2 *q, uint64_t file_size, uint64_t *pos,
		      struct qcow2_snapshot *sn, unsigned i, char *err, size_t errlen)
{
	uint64_t off = q->h.snapshots_offset + *pos;
	uint8_t h[SN_HEADER_LEN], *var;
	uint32_t id_len, name_len, extra;
	uint64_t len;
	int ret;

	if (*pos + SN_HEADER_LEN > SN_MAX_TABLE || off + SN_HEADER_LEN > file_size)
		goto trunc;
	ret = qcow2_meta_pread(q, h, sizeof(h), off);
	if (ret)
		return ret;
	sn->l1_table_offset = get_be64(h);
	sn->l1_size = get_be32(h + 8);
	id_len = get_be16(h + 12);
	name_len = get_be16(h + 14);
	sn->date_sec = get_be32(h + 16);
	sn->date_nsec = get_be32(h + 20);
	sn->vm_clock_nsec = get_be64(h + 24);
	sn->vm_state_size = get_be32(h + 32);
	extra = get_be32(h + 36);
	if (extra > SN_MAX_EXTRA) {
		snprintf(err, errlen, "snapshot %u: %u bytes of extra data, more than %u", i,
			 extra, SN_MAX_EXTRA);
		return -EINVAL;
	}
	if (q->h.version >= 3 && extra < SN_EXTRA_V3) {
		snprintf(err, errlen, "snapshot %u: %u bytes of extra data, a version 3 image "
			 "needs %u", i, extra, SN_EXTRA_V3);
		return -EINVAL;
	}
	len = SN_HEADER_LEN + (uint64_t)extra + id_len + name_len;
	if (*pos + len > SN_MAX_TABLE || off + len > file_size)
		goto trunc;

	var = malloc(len - SN_HEADER_LEN + 1);
	if (!var)
		return -ENOMEM;
	ret = qcow2_meta_pread(q, var, len - SN_HEADER_LEN, off + SN_HEADER_LEN);
	if (ret) {
		free(var);
		return ret;
	}
	sn->extra_data_size = extra;
	sn->extra_data = malloc(extra ? extra : 1);
	sn->id_str = dup_str(var + extra, id_len);
	sn->name = dup_str(var + extra + id_len, name_len);
	if (sn->extra_data)
		memcpy(sn->extra_data, var, extra);
	free(var);
	if (!sn->extra_data || !sn->id_str || !sn->name)
		return -ENOMEM;
	if (strlen(sn->id_str) != id_len || strlen(sn->name) != name_len) {
		snprintf(err, errlen, "snapshot %u: NUL byte in its id or name", i);
		return -EINVAL;
	}
	if (extra >= 8)
		sn->vm_state_size = MAX(sn->vm_state_size, get_be64(sn->extra_data));
	sn->disk_size = extra >= 16 ? get_be64(sn->extra_data + 8) : q->h.size;

	if ((sn->l1_table_offset & (q->cluster_size - 1)) ||
	    (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
	    (sn->l1_size && (!sn->l1_table_offset ||
			     sn->l1_table_offset + (uint64_t)sn->l1_size * 8 > file_size))) {
		snprintf(err, errlen, "snapshot %.32s: bad L1 table (offset %#" PRIx64 ", %" PRIu32
			 " entries)", sn->id_str, sn->l1_table_offset, sn->l1_size);
		return -EINVAL;
	}
	if (sn->disk_size > QCOW2_MAX_SIZE ||
	    l1_entries(q, sn->disk_size) * 8 > QCOW2_MAX_L1_BYTES) {
		snprintf(err, errlen, "snapshot %.32s: disk size %" PRIu64 " too large", sn->id_str,
			 sn->disk_size);
		return -EINVAL;
	}
	*pos = ALIGN_UP(*pos + len, 8);
	return 0;
trunc:
	snprintf(err, errlen, "snapshot table entry %u past the end of the file or too large", i);
	return -EINVAL;
}

int qcow2_snapshots_load(struct qcow2 *q, char *err, size_t errlen)
{
	uint32_t nb = q->h.nb_snapshots;
	struct qcow2_snapshot *s;
	char e[200] = "";
	uint64_t pos = 0;
	struct stat st;
	int ret;

	q->snapshots = NULL;
	q->nb_snapshots = 0;
	if (!nb)
		return 0;
	if (nb > QCOW2_MAX_SNAPSHOTS) {
		snprintf(err, errlen, "%s: too many snapshots (%" PRIu32 ")", q->img->path, nb);
		return -EINVAL;
	}
	if (fstat(q->fd, &st))
		return -errno;
	if (!q->h.snapshots_offset || (q->h.snapshots_offset & (q->cluster_size - 1)) ||
	    q->h.snapshots_offset >= (uint64_t)st.st_size) {
		snprintf(err, errlen, "%s: bad snapshot table offset %#" PRIx64, q->img->path,
			 q->h.snapshots_offset);
		return -EINVAL;
	}
	s = calloc(nb, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (unsigned i = 0; i < nb; i++) {
		ret = load_entry(q, (uint64_t)st.st_size, &pos, &s[i], i, e, sizeof(e));
		if (ret) {
			for (unsigned j = 0; j <= i; j++)
				free_entry(&s[j]);
			free(s);
			snprintf(err, errlen, "%s: bad qcow2 snapshot table: %s", q->img->path,
				 e[0] ? e : strerror(-ret));
			return ret;
		}
	}
	q->snapshots = s;
	q->nb_snapshots = nb;
	return 0;
}

static uint8_t *serialize(const struct qcow2_snapshot *s, unsigned n, uint64_t len)
{
	uint8_t *buf = calloc(1, len ? len : 1), *p = buf;

	if (!buf)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		const struct qcow2_snapshot *sn = &s[i];
		size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);

		put_be64(p, sn->l1_table_offset);
		put_be32(p + 8, sn->l1_size);
		put_be16(p + 12, (uint16_t)id_len);
		put_be16(p + 14, (uint16_t)name_len);
		put_be32(p + 16, sn->date_sec);
		put_be32(p + 20, sn->date_nsec);
		put_be64(p + 24, sn->vm_clock_nsec);
		put_be32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : (uint32_t)sn->vm_state_size);
		put_be32(p + 36, sn->extra_data_size);
		memcpy(p + SN_HEADER_LEN, sn->extra_data, sn->extra_data_size);
		memcpy(p + SN_HEADER_LEN + sn->extra_data_size, sn->id_str, id_len);
		memcpy(p + SN_HEADER_LEN + sn->extra_data_size + id_len, sn->name, name_len);
		p += entry_size(sn);
	}
	return buf;
}

/* Refcount changes and table writes on disk, synced: the order points of this file. */
static int sync_meta(struct qcow2 *q)
{
	int ret = qcow2_flush_and_drop_caches(q);

	if (!ret && fdatasync(q->fd))
		ret = -errno;
	return ret;
}

/*
 * Writes s[0..n) as the new snapshot table in new clusters and switches the
 * header to it; the old table's clusters are freed. On success q->snapshots
 * is s (the old array is freed, not its entries: the caller owns those).
 */
static int write_table(struct qcow2 *q, struct qcow2_snapshot *s, unsigned n)
{
	uint64_t len = table_size(s, n), off = 0;
	uint64_t old_off = q->h.snapshots_offset, old_len = qcow2_snapshot_table_size(q);
	uint32_t old_nb = q->h.nb_snapshots;
	uint8_t *buf = NULL;
	int ret;

	if (len > SN_MAX_TABLE)
		return -EFBIG;
	if (n) {
		uint64_t clusters = (len + q->cluster_size - 1) >> q->cluster_bits;

		buf = serialize(s, n, clusters << q->cluster_bits);
		if (!buf)
			return -ENOMEM;
		ret = qcow2_alloc_clusters(q, clusters, &off);
		if (ret)
			goto out;
		ret = qcow2_meta_pwrite(q, buf, clusters << q->cluster_bits, off);
		if (!ret)
			ret = sync_meta(q);
		if (ret) {
			qcow2_update_refcount(q, off, len, -1);
			goto out;
		}
	}
	q->h.nb_snapshots = n;
	q->h.snapshots_offset = off;
	ret = qcow2_write_header(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret) {
		/* the header may or may not have made it: leak the new table rather than guess */
		q->h.nb_snapshots = old_nb;
		q->h.snapshots_offset = old_off;
		goto out;
	}
	if (old_nb && old_len)
		qcow2_update_refcount(q, old_off, old_len, -1);
	if (q->snapshots != s)
		free(q->snapshots);
	q->snapshots = s;
	q->nb_snapshots = n;
out:
	free(buf);
	return ret;
}

static bool l2_offset_ok(struct qcow2 *q, uint64_t off, uint64_t file_size)
{
	return !(off & (q->cluster_size - 1)) && off >= q->cluster_size &&
	       off + q->cluster_size <= file_size;
}

/* The host range of a compressed cluster descriptor. */
static void compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len)
{
	uint32_t shift = 62 - (q->cluster_bits - 8);
	uint64_t sectors = ((e >> shift) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;

	*off = e & ((1ull << shift) - 1);
	*len = sectors * 512 - (*off & 511);
}

/*
 * Adds delta to the refcount of every L2 table and data cluster that the L1
 * table l1 (host-endian, n entries) reaches, once per reference.
 */
static int update_tree(struct qcow2 *q, const uint64_t *l1, uint32_t n, int64_t delta)
{
	uint64_t per = q->cluster_size / 8;
	uint64_t *l2 = malloc(q->cluster_size);
	struct stat st;
	int ret = 0;

	if (!l2)
		return -ENOMEM;
	if (fstat(q->fd, &st)) {
		ret = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < n && !ret; i++) {
		uint64_t l2_off = l1[i] & QCOW2_L1E_OFFSET_MASK;

		if (!l2_off)
			continue;
		if (!l2_offset_ok(q, l2_off, (uint64_t)st.st_size)) {
			ret = qcow2_corrupt(q, "L2 table offset %#" PRIx64 " invalid", l2_off);
			break;
		}
		ret = qcow2_meta_pread(q, l2, q->cluster_size, l2_off);
		for (uint64_t j = 0; j < per && !ret; j++) {
			uint64_t e = be64toh(l2[j]), off, len;

			if (e & QCOW2_OFLAG_COMPRESSED) {
				compressed_range(q, e, &off, &len);
				ret = qcow2_update_refcount(q, off, len, delta);
			} else if ((off = e & QCOW2_L2E_OFFSET_MASK)) {
				ret = qcow2_update_refcount(q, off, q->cluster_size, delta);
			}
		}
		if (!ret)
			ret = qcow2_update_refcount(q, l2_off, q->cluster_size, delta);
	}
out:
	free(l2);
	return ret;
}

/*
 * Sets the COPIED flag of every active L1 and L2 entry to "refcount is 1",
 * after refcounts changed under them.
 */
static int fix_copied(struct qcow2 *q)
{
	uint64_t per = q->cluster_size / 8;
	uint64_t *l2 = malloc(q->cluster_size);
	bool l1_dirty = false;
	int ret = 0;

	if (!l2)
		return -ENOMEM;
	for (uint32_t i = 0; i < q->h.l1_size && !ret; i++) {
		uint64_t e = q->l1[i], l2_off = e & QCOW2_L1E_OFFSET_MASK, rc;
		bool dirty = false;

		if (!l2_off)
			continue;
		ret = qcow2_get_refcount(q, l2_off >> q->cluster_bits, &rc);
		if (ret)
			break;
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
			q->l1[i] = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
			l1_dirty = true;
		}
		ret = qcow2_meta_pread(q, l2, q->cluster_size, l2_off);
		for (uint64_t j = 0; j < per && !ret; j++) {
			uint64_t le = be64toh(l2[j]), off = le & QCOW2_L2E_OFFSET_MASK;

			if ((le & QCOW2_OFLAG_COMPRESSED) || !off)
				continue;
			ret = qcow2_get_refcount(q, off >> q->cluster_bits, &rc);
			if (ret || (rc == 1) == !!(le & QCOW2_OFLAG_COPIED))
				continue;
			le = rc == 1 ? le | QCOW2_OFLAG_COPIED : le & ~QCOW2_OFLAG_COPIED;
			l2[j] = htobe64(le);
			dirty = true;
		}
		if (!ret && dirty)
			ret = qcow2_meta_pwrite(q, l2, q->cluster_size, l2_off);
	}
	if (!ret && l1_dirty)
		ret = qcow2_write_l1(q);
	free(l2);
	return ret;
}

/*
 * The index of the snapshot whose ID or name is key, -1 if none. Apply looks
 * at IDs first and delete at names first, as QEMU does.
 */
static int find_entry(const struct qcow2 *q, const char *key, bool id_first)
{
	for (int pass = 0; pass < 2; pass++) {
		bool by_id = id_first == !pass;

		for (unsigned i = 0; i < q->nb_snapshots; i++) {
			const struct qcow2_snapshot *sn = &q->snapshots[i];

			if (!strcmp(by_id ? sn->id_str : sn->name, key))
				return (int)i;
		}
	}
	return -1;
}

/* Whether snapshots may change; if not, the reason in err. */
static int check_writable(const struct qcow2 *q, char *err, size_t errlen)
{
	int ret = qcow2_writable(q);

	if (ret == -EROFS)
		snprintf(err, errlen, "the image is read-only");
	else if (ret == -EACCES)
		snprintf(err, errlen, "the image is marked corrupt; repair it first");
	return ret;
}

/* Makes refcount changes durable, then sets the COPIED flags to match them. */
static int sync_and_fix_copied(struct qcow2 *q)
{
	int ret = sync_meta(q);

	return ret ? ret : fix_copied(q);
}

/* Reads a snapshot's L1 table, host-endian, into a zeroed array of n >= l1_size entries. */
static int read_l1(struct qcow2 *q, const struct qcow2_snapshot *sn, uint32_t n, uint64_t **out)
{
	uint64_t *l1 = calloc(n ? n : 1, 8);
	int ret;

	if (!l1)
		return -ENOMEM;
	ret = qcow2_meta_pread(q, l1, (size_t)sn->l1_size * 8, sn->l1_table_offset);
	if (ret) {
		free(l1);
		return ret;
	}
	for (uint32_t i = 0; i < sn->l1_size; i++)
		l1[i] = be64toh(l1[i]);
	*out = l1;
	return 0;
}

/* Takes the exclusive lock and brings the disk up to date with memory. */
static int begin(struct qcow2 *q)
{
	int ret;

	pthread_rwlock_wrlock(&q->meta);
	ret = qcow2_flush_and_drop_caches(q);
	if (!ret && q->l1_dirty_lo < q->l1_dirty_hi)
		ret = qcow2_write_l1(q);
	if (!ret)
		ret = sync_meta(q);
	if (ret)
		pthread_rwlock_unlock(&q->meta);
	return ret;
}

/* Makes everything durable and releases the lock; ret is the operation's result. */
static int end(struct qcow2 *q, int ret)
{
	int r = sync_meta(q);

	pthread_rwlock_unlock(&q->meta);
	return ret ? ret : r;
}

static char *next_id(const struct qcow2 *q)
{
	unsigned long max = 0;
	char *id;

	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		unsigned long v = strtoul(q->snapshots[i].id_str, NULL, 10);

		max = MAX(max, v);
	}
	if (asprintf(&id, "%lu", max + 1) < 0)
		return NULL;
	return id;
}

/* The new entry for a snapshot of the active state whose L1 copy is at l1_off. */
static int new_entry(struct qcow2 *q, const char *name, uint64_t l1_off,
		     struct qcow2_snapshot *sn)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	memset(sn, 0, sizeof(*sn));
	sn->l1_table_offset = l1_off;
	sn->l1_size = q->h.l1_size;
	sn->date_sec = (uint32_t)ts.tv_sec;
	sn->date_nsec = (uint32_t)ts.tv_nsec;
	sn->disk_size = q->h.size;
	sn->extra_data_size = SN_EXTRA_QEMU;
	sn->extra_data = calloc(1, SN_EXTRA_QEMU);
	sn->id_str = next_id(q);
	sn->name = strdup(name);
	if (!sn->extra_data || !sn->id_str || !sn->name) {
		free_entry(sn);
		return -ENOMEM;
	}
	put_be64(sn->extra_data + 8, sn->disk_size); /* vm_state_size_large and icount stay 0 */
	return 0;
}

int qcow2_snapshot_create(struct qcow2 *q, const char *name, char *err, size_t errlen)
{
	uint64_t l1_bytes = (uint64_t)q->h.l1_size * 8, l1_off = 0;
	struct qcow2_snapshot *s = NULL;
	uint64_t *be = NULL;
	int ret;

	ret = check_writable(q, err, errlen);
	if (ret)
		return ret;
	if (q->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
		snprintf(err, errlen, "Maximum number of snapshots reached");
		return -EFBIG;
	}
	if (strlen(name) > UINT16_MAX) {
		snprintf(err, errlen, "snapshot name too long");
		return -EINVAL;
	}
	ret = begin(q);
	if (ret)
		goto fail;

	/* the snapshot's own copy of the active L1 table */
	if (l1_bytes) {
		uint64_t clusters = (l1_bytes + q->cluster_size - 1) >> q->cluster_bits;

		be = calloc(clusters, q->cluster_size);
		ret = -ENOMEM;
		if (!be)
			goto out;
		for (uint32_t i = 0; i < q->h.l1_size; i++)
			be[i] = htobe64(q->l1[i]);
		ret = qcow2_alloc_clusters(q, clusters, &l1_off);
		if (!ret)
			ret = qcow2_meta_pwrite(q, be, clusters << q->cluster_bits, l1_off);
		if (ret)
			goto out;
	}
	/* one more reference to everything, counted before anything points at it twice */
	ret = update_tree(q, q->l1, q->h.l1_size, 1);
	if (!ret)
		ret = sync_and_fix_copied(q);
	if (!ret)
		ret = sync_meta(q);
	if (ret)
		goto out;

	s = calloc(q->nb_snapshots + 1, sizeof(*s));
	ret = -ENOMEM;
	if (!s)
		goto out;
	if (q->nb_snapshots)
		memcpy(s, q->snapshots, q->nb_snapshots * sizeof(*s));
	ret = new_entry(q, name, l1_off, &s[q->nb_snapshots]);
	if (ret)
		goto out;
	ret = write_table(q, s, q->nb_snapshots + 1);
	if (ret) {
		free_entry(&s[q->nb_snapshots]);
		goto out;
	}
	s = NULL;
out:
	free(s);
	free(be);
	ret = end(q, ret);
fail:
	if (ret)
		snprintf(err, errlen, "Could not create snapshot '%s': %s", name, strerror(-ret));
	return ret;
}

int qcow2_snapshot_apply(struct qcow2 *q, const char *name_or_id, char *err, size_t errlen)
{
	uint64_t *new_l1 = NULL, *old_l1 = NULL;
	const struct qcow2_snapshot *sn;
	uint32_t n;
	int i, ret;

	ret = check_writable(q, err, errlen);
	if (ret)
		return ret;
	ret = begin(q);
	if (ret)
		goto fail;
	i = find_entry(q, name_or_id, true);
	if (i < 0) {
		pthread_rwlock_unlock(&q->meta);
		snprintf(err, errlen, "Could not apply snapshot '%s': snapshot not found",
			 name_or_id);
		return -ENOENT;
	}
	sn = &q->snapshots[i];

	/* big enough for the snapshot's table and for its disk size */
	ret = qcow2_grow_l1(q, MAX(sn->l1_size, (uint32_t)l1_entries(q, sn->disk_size)));
	if (ret)
		goto out;
	n = q->h.l1_size;
	ret = read_l1(q, sn, n, &new_l1);
	if (ret)
		goto out;
	old_l1 = malloc((size_t)n * 8);
	ret = -ENOMEM;
	if (!old_l1)
		goto out;
	memcpy(old_l1, q->l1, (size_t)n * 8);

	/* the snapshot's clusters gain the active state's reference first ... */
	ret = update_tree(q, new_l1, sn->l1_size, 1);
	if (!ret)
		ret = sync_meta(q);
	if (ret)
		goto out;
	memcpy(q->l1, new_l1, (size_t)n * 8);
	ret = qcow2_write_l1(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret) {
		/* the disk may hold either table now: keep both counted (leaks at worst) */
		memcpy(q->l1, old_l1, (size_t)n * 8);
		goto out;
	}
	if (q->h.size != sn->disk_size) {
		q->h.size = sn->disk_size;
		if (q->img)
			q->img->size = sn->disk_size;
		ret = qcow2_write_header(q);
		if (ret)
			goto out;
	}
	/* ... and the old active state's clusters lose it once nothing on disk points there */
	ret = update_tree(q, old_l1, n, -1);
	if (!ret)
		ret = sync_and_fix_copied(q);
out:
	free(old_l1);
	free(new_l1);
	ret = end(q, ret);
fail:
	if (ret)
		snprintf(err, errlen, "Could not apply snapshot '%s': %s", name_or_id,
			 strerror(-ret));
	return ret;
}

int qcow2_snapshot_delete(struct qcow2 *q, const char *name_or_id, char *err, size_t errlen)
{
	struct qcow2_snapshot *s = NULL, gone;
	uint64_t *l1 = NULL;
	int i, ret;

	ret = check_writable(q, err, errlen);
	if (ret)
		return ret;
	ret = begin(q);
	if (ret)
		goto fail;
	i = find_entry(q, name_or_id, false);
	if (i < 0) {
		pthread_rwlock_unlock(&q->meta);
		snprintf(err, errlen, "Could not delete snapshot '%s': snapshot not found",
			 name_or_id);
		return -ENOENT;
	}
	gone = q->snapshots[i];
	ret = read_l1(q, &gone, gone.l1_size, &l1);
	if (ret)
		goto out;

	s = calloc(q->nb_snapshots, sizeof(*s));
	ret = -ENOMEM;
	if (!s)
		goto out;
	memcpy(s, q->snapshots, (size_t)i * sizeof(*s));
	memcpy(s + i, q->snapshots + i + 1, (q->nb_snapshots - i - 1) * sizeof(*s));
	ret = write_table(q, s, q->nb_snapshots - 1);
	if (ret)
		goto out;
	s = NULL;

	/* the table no longer names it: its references go */
	ret = update_tree(q, l1, gone.l1_size, -1);
	if (!ret && gone.l1_size)
		ret = qcow2_update_refcount(q, gone.l1_table_offset,
					    (uint64_t)gone.l1_size * 8, -1);
	if (!ret)
		ret = sync_and_fix_copied(q);
	free_entry(&gone);
out:
	free(s);
	free(l1);
	ret = end(q, ret);
fail:
	if (ret)
		snprintf(err, errlen, "Could not delete snapshot '%s': %s", name_or_id,
			 strerror(-ret));
	return ret;
}
