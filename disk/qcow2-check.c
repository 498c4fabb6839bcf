// SPDX-License-Identifier: MIT
/*
 * qcow2 consistency check and repair (docs/interop/qcow2.txt, "Host
 * cluster management": a cluster's refcount is the number of references to
 * it from the header, the refcount structures, the L1/L2 tables of the
 * active state and of every snapshot, and the snapshot table).
 *
 * The check counts every reference in memory, one counter per host cluster
 * of the file, and compares with the refcounts on disk: fewer refcounts
 * than references is a corruption (the cluster could be handed out again
 * while in use), more is a leak (space lost, nothing else). The COPIED flag
 * of each active L1 and L2 entry must say whether its refcount is exactly 1.
 * Messages and the counts follow qemu-img check, so that the two can be
 * compared line by line.
 *
 * Repair: leaks and too-low refcounts are corrected one cluster at a time.
 * When the refcount structure itself is broken (a refcount block missing,
 * misplaced or shared), a whole new refcount table and blocks are written
 * past the end of the file from the counted references, then the header is
 * switched to them in one write: until then the old structure is in force,
 * so a crash during repair changes nothing.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/qcow2.h"
#include "vmm/log.h"

/* Counters for more clusters than this (1 GiB of them) are refused. */
#define CHECK_MAX_CLUSTERS (1ull << 28)

#define L1E_RESERVED 0x7f000000000001ffull
#define L2E_STD_RESERVED 0x3f000000000001feull
#define REFT_RESERVED 0x1ffull

struct check {
	struct qcow2 *q;
	struct qcow2_check_result *res;
	void (*report)(void *opaque, const char *line);
	void *opaque;
	uint64_t cs;
	uint64_t file_size;
	uint32_t *refs;            /* references to each host cluster */
	uint64_t nb;               /* entries of refs */
	uint64_t *reftable;        /* the on-disk table; entries found bad are zeroed */
	uint64_t reftable_entries;
	uint64_t *table;           /* one cluster of scratch for L1/L2 tables */
	uint8_t *rb;               /* the refcount block of rb_index, or rb_index == -1 */
	uint64_t rb_index;
	bool rb_ok;
	bool rebuild;              /* the refcount structure cannot be fixed in place */
	uint64_t highest;          /* last cluster with a refcount or a reference */
};

uint64_t qcow2_rc_entry_get(const void *block, uint64_t idx, uint32_t refcount_bits)
{
	const uint8_t *b = block;
	uint64_t v = 0;

	if (refcount_bits < 8) {
		unsigned per_byte = 8 / refcount_bits;
		unsigned shift = (unsigned)(idx % per_byte) * refcount_bits;

		return (b[idx / per_byte] >> shift) & ((1u << refcount_bits) - 1);
	}
	b += idx * (refcount_bits / 8);
	for (unsigned i = 0; i < refcount_bits / 8; i++)
		v = v << 8 | b[i];
	return v;
}

void qcow2_rc_entry_set(void *block, uint64_t idx, uint32_t refcount_bits, uint64_t v)
{
	uint8_t *b = block;

	if (refcount_bits < 8) {
		unsigned per_byte = 8 / refcount_bits;
		unsigned shift = (unsigned)(idx % per_byte) * refcount_bits;
		uint8_t mask = (uint8_t)(((1u << refcount_bits) - 1) << shift);

		b[idx / per_byte] = (uint8_t)((b[idx / per_byte] & ~mask) | ((v << shift) & mask));
		return;
	}
	b += idx * (refcount_bits / 8);
	for (unsigned i = refcount_bits / 8; i-- > 0; v >>= 8)
		b[i] = (uint8_t)v;
}

static void say(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct check *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!c->report)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->report(c->opaque, line);
}

static uint64_t max_refcount(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
}

/*
 * Counts one reference to each cluster overlapping [offset, offset+len).
 * A range reaching a whole cluster or more past the end of the file is a
 * corruption and counts nothing (the file's last cluster may be partly
 * written). Returns false then.
 */
static bool inc(struct check *c, uint64_t offset, uint64_t len)
{
	uint32_t cb = c->q->cluster_bits;

	if (!len)
		return true;
	if (offset + len > c->file_size && offset + len - c->file_size >= c->cs) {
		say(c, "ERROR: counting reference for region exceeding the end of the file by "
		       "one cluster or more: offset 0x%" PRIx64 " size 0x%" PRIx64, offset, len);
		c->res->corruptions++;
		return false;
	}
	for (uint64_t k = offset >> cb; k <= (offset + len - 1) >> cb; k++) {
		if (k < c->nb && c->refs[k] != UINT32_MAX)
			c->refs[k]++;
	}
	return true;
}

static int rd(struct check *c, void *buf, size_t len, uint64_t offset, const char *what)
{
	int ret = qcow2_meta_pread(c->q, buf, len, offset);

	if (ret) {
		say(c, "ERROR: Could not read %s at 0x%" PRIx64 ": %s", what, offset,
		    strerror(-ret));
		c->res->check_errors++;
	}
	return ret;
}

/* The host range a compressed cluster descriptor covers. */
static void compressed_range(const struct qcow2 *q, uint64_t e, uint64_t *off, uint64_t *len)
{
	uint32_t shift = 62 - (q->cluster_bits - 8);
	uint64_t sectors = ((e >> shift) & ((1ull << (q->cluster_bits - 8)) - 1)) + 1;

	*off = e & ((1ull << shift) - 1);
	*len = sectors * 512 - (*off & 511);
}

static void walk_l2(struct check *c, uint64_t l2_off, bool active)
{
	struct qcow2_check_result *r = c->res;
	uint64_t n = c->cs / 8, next = 0;

	if (rd(c, c->table, c->cs, l2_off, "L2 table"))
		return;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t e = be64toh(c->table[i]);
		uint64_t off, len;

		if (e & QCOW2_OFLAG_COMPRESSED) {
			compressed_range(c->q, e, &off, &len);
			if (e & QCOW2_OFLAG_COPIED) {
				say(c, "ERROR: coffset=0x%" PRIx64 ": copied flag must never be set "
				       "for compressed clusters", off);
				r->corruptions++;
			}
			inc(c, off, len);
			if (active) {
				/* compressed clusters are fragmented by nature, qemu-img says */
				r->allocated_clusters++;
				r->compressed_clusters++;
				r->fragmented_clusters++;
			}
			continue;
		}
		if (e & L2E_STD_RESERVED) {
			say(c, "ERROR found l2 entry with reserved bits set: %" PRIx64, e);
			r->corruptions++;
		}
		off = e & QCOW2_L2E_OFFSET_MASK;
		if (!off)
			continue;
		if (off & (c->cs - 1)) {
			if (e & QCOW2_OFLAG_ZERO)
				say(c, "ERROR offset=%" PRIx64 ": Preallocated cluster is not "
				       "properly aligned; L2 entry corrupted.", off);
			else
				say(c, "ERROR offset=%" PRIx64 ": Data cluster is not properly "
				       "aligned; L2 entry corrupted.", off);
			r->corruptions++;
		}
		if (active) {
			r->allocated_clusters++;
			if (next && off != next)
				r->fragmented_clusters++;
			next = off + c->cs;
		}
		inc(c, off, c->cs);
	}
}

static void walk_l1(struct check *c, uint64_t l1_off, uint32_t l1_size, bool active)
{
	uint64_t *l1;

	if (!l1_size || !inc(c, l1_off, (uint64_t)l1_size * 8))
		return;
	l1 = malloc((size_t)l1_size * 8);
	if (!l1) {
		c->res->check_errors++;
		return;
	}
	if (rd(c, l1, (size_t)l1_size * 8, l1_off, "L1 table"))
		goto out;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t e = be64toh(l1[i]);
		uint64_t l2 = e & QCOW2_L1E_OFFSET_MASK;

		if (e & L1E_RESERVED) {
			say(c, "ERROR found L1 entry with reserved bits set: %" PRIx64, e);
			c->res->corruptions++;
		}
		if (!l2)
			continue;
		if (!inc(c, l2, c->cs))
			continue;
		if (l2 & (c->cs - 1)) {
			say(c, "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 "
			       "entry corrupted", l2);
			c->res->corruptions++;
			continue;
		}
		walk_l2(c, l2, active);
	}
out:
	free(l1);
}

/* Refcount blocks: each must be inside the file and owned by nothing else. */
static void walk_refblocks(struct check *c)
{
	for (uint64_t i = 0; i < c->reftable_entries; i++) {
		uint64_t e = c->reftable[i];
		uint64_t off = e & QCOW2_REFT_OFFSET_MASK;

		if (e & REFT_RESERVED) {
			say(c, "ERROR refcount table entry %" PRIu64 " has reserved bits set", i);
			goto bad;
		}
		if (off & (c->cs - 1)) {
			say(c, "ERROR refcount block %" PRIu64 " is not cluster aligned; refcount "
			       "table entry corrupted", i);
			goto bad;
		}
		if (!off)
			continue;
		if (off >= c->file_size) {
			say(c, "ERROR refcount block %" PRIu64 " is outside image", i);
			goto bad;
		}
		inc(c, off, c->cs);
		if (c->refs[off / c->cs] != 1) {
			say(c, "ERROR refcount block %" PRIu64 " refcount=%" PRIu32, i,
			    c->refs[off / c->cs]);
			c->res->corruptions++;
			c->rebuild = true;
		}
		continue;
bad:
		c->res->corruptions++;
		c->rebuild = true;
		c->reftable[i] = 0;
	}
}

/* One bitmap's table and the data clusters it names. */
static void walk_bitmap_table(struct check *c, uint64_t off, uint32_t entries)
{
	uint64_t *t;

	if (!entries || !inc(c, off, (uint64_t)entries * 8))
		return;
	t = malloc((size_t)entries * 8);
	if (!t) {
		c->res->check_errors++;
		return;
	}
	if (!rd(c, t, (size_t)entries * 8, off, "bitmap table")) {
		for (uint32_t i = 0; i < entries; i++) {
			uint64_t data = be64toh(t[i]) & QCOW2_L2E_OFFSET_MASK;

			if (data)
				inc(c, data, c->cs);
		}
	}
	free(t);
}

/*
 * Persistent dirty bitmaps ("Bitmaps extension"), while the autoclear bit
 * says they are valid: the directory, each bitmap table, its data clusters.
 */
static void walk_bitmaps(struct check *c)
{
	struct qcow2 *q = c->q;
	const struct qcow2_ext *x = NULL;
	uint64_t dir_size, dir_off;
	uint8_t *d;

	if (!(q->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return;
	for (unsigned i = 0; i < q->nb_exts; i++) {
		if (q->exts[i].type == QCOW2_EXT_BITMAPS && q->exts[i].len >= 24)
			x = &q->exts[i];
	}
	if (!x)
		return;
	dir_size = get_be64(x->data + 8);
	dir_off = get_be64(x->data + 16);
	if (!dir_size || dir_size > (64u << 20) || !inc(c, dir_off, dir_size))
		return;
	d = malloc(dir_size);
	if (!d) {
		c->res->check_errors++;
		return;
	}
	if (!rd(c, d, dir_size, dir_off, "bitmap directory")) {
		for (uint64_t pos = 0; pos + 24 <= dir_size;) {
			uint64_t len = 24 + (uint64_t)get_be32(d + pos + 20) +
				       ((uint32_t)d[pos + 18] << 8 | d[pos + 19]);

			walk_bitmap_table(c, get_be64(d + pos), get_be32(d + pos + 8));
			pos += ALIGN_UP(len, 8);
		}
	}
	free(d);
}

/* Every reference there is, into c->refs (zeroed first). */
static void count_references(struct check *c)
{
	struct qcow2 *q = c->q;

	memset(c->refs, 0, c->nb * sizeof(*c->refs));
	inc(c, 0, c->cs);
	walk_l1(c, q->h.l1_table_offset, q->h.l1_size, true);
	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &q->snapshots[i];

		if (sn->l1_table_offset & (c->cs - 1)) {
			say(c, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64 ": L1 table is not "
			       "cluster aligned; snapshot table entry corrupted",
			    sn->id_str, sn->name, sn->l1_table_offset);
			c->res->corruptions++;
			continue;
		}
		if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
			say(c, "ERROR snapshot %s (%s) l1_size=%#" PRIx32 ": L1 table is too large; "
			       "snapshot table entry corrupted", sn->id_str, sn->name, sn->l1_size);
			c->res->corruptions++;
			continue;
		}
		walk_l1(c, sn->l1_table_offset, sn->l1_size, false);
	}
	if (q->nb_snapshots)
		inc(c, q->h.snapshots_offset, qcow2_snapshot_table_size(q));
	inc(c, q->h.refcount_table_offset, (uint64_t)q->h.refcount_table_clusters * c->cs);
	walk_bitmaps(c);
	walk_refblocks(c);
}

/* The on-disk refcount of cluster i (0 where no block covers it). */
static int disk_refcount(struct check *c, uint64_t i, uint64_t *rc)
{
	struct qcow2 *q = c->q;
	uint64_t t = i >> q->rcb_bits;

	if (t >= c->reftable_entries || !(c->reftable[t] & QCOW2_REFT_OFFSET_MASK)) {
		*rc = 0;
		return 0;
	}
	if (c->rb_index != t) {
		c->rb_index = t;
		c->rb_ok = !rd(c, c->rb, c->cs, c->reftable[t] & QCOW2_REFT_OFFSET_MASK,
			       "refcount block");
	}
	if (!c->rb_ok)
		return -EIO;
	*rc = qcow2_rc_entry_get(c->rb, i & ((1ull << q->rcb_bits) - 1), q->refcount_bits);
	return 0;
}

/*
 * Compares refcounts with references; with fix, corrects what can be
 * corrected in place. A cluster in use whose refcount is 0 cannot be fixed
 * that way (its refcount block may not exist): that asks for a rebuild.
 */
static void compare(struct check *c, unsigned fix)
{
	struct qcow2_check_result *r = c->res;
	struct qcow2 *q = c->q;

	c->rb_index = UINT64_MAX;
	c->highest = 0;
	for (uint64_t i = 0; i < c->nb; i++) {
		uint64_t r1, r2 = c->refs[i];
		uint64_t *fixed = NULL;

		if (disk_refcount(c, i, &r1))
			continue;
		if (r1 || r2)
			c->highest = i;
		if (r1 == r2)
			continue;
		if (r1 == 0)
			c->rebuild = true;
		else if (r1 > r2 && (fix & QCOW2_FIX_LEAKS))
			fixed = &r->leaks_fixed;
		else if (r1 < r2 && (fix & QCOW2_FIX_ERRORS))
			fixed = &r->corruptions_fixed;
		say(c, "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64,
		    fixed ? "Repairing" : r1 < r2 ? "ERROR" : "Leaked", i, r1, r2);
		if (fixed && r2 <= max_refcount(q) &&
		    !qcow2_update_refcount(q, i * c->cs, c->cs, (int64_t)(r2 - r1))) {
			(*fixed)++;
			continue;
		}
		if (r1 < r2)
			r->corruptions++;
		else
			r->leaks++;
	}
}

/*
 * The COPIED flag of each active L1 and L2 entry against the refcount.
 * Repairs with FIX_ERRORS, or with FIX_LEAKS alone when nothing else was
 * wrong (the refcounts are trustworthy then).
 */
static int check_copied(struct check *c, unsigned fix)
{
	struct qcow2_check_result *r = c->res;
	struct qcow2 *q = c->q;
	bool repair = (fix & QCOW2_FIX_ERRORS) ||
		      ((fix & QCOW2_FIX_LEAKS) && !r->check_errors && !r->corruptions && !r->leaks);
	bool l1_dirty = false;
	int ret;

	c->rb_index = UINT64_MAX;
	for (uint32_t i = 0; i < q->h.l1_size; i++) {
		uint64_t e = q->l1[i], l2 = e & QCOW2_L1E_OFFSET_MASK;
		unsigned l2_dirty = 0;
		uint64_t rc;

		if (!l2 || (l2 & (c->cs - 1)) || disk_refcount(c, l2 / c->cs, &rc))
			continue;
		if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
			say(c, "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32 " l1_entry=%" PRIx64
			       " refcount=%" PRIu64, repair ? "Repairing" : "ERROR", i, e, rc);
			if (repair) {
				q->l1[i] = rc == 1 ? e | QCOW2_OFLAG_COPIED :
						     e & ~QCOW2_OFLAG_COPIED;
				l1_dirty = true;
				r->corruptions_fixed++;
			} else {
				r->corruptions++;
			}
		}
		if (l2 + c->cs > c->file_size || rd(c, c->table, c->cs, l2, "L2 table"))
			continue;
		for (uint64_t j = 0; j < c->cs / 8; j++) {
			uint64_t le = be64toh(c->table[j]), off = le & QCOW2_L2E_OFFSET_MASK;

			if ((le & QCOW2_OFLAG_COMPRESSED) || !off ||
			    disk_refcount(c, off / c->cs, &rc))
				continue;
			if ((rc == 1) == !!(le & QCOW2_OFLAG_COPIED))
				continue;
			say(c, "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64,
			    repair ? "Repairing" : "ERROR", le, rc);
			if (!repair) {
				r->corruptions++;
				continue;
			}
			le = rc == 1 ? le | QCOW2_OFLAG_COPIED : le & ~QCOW2_OFLAG_COPIED;
			c->table[j] = htobe64(le);
			l2_dirty++;
		}
		if (!l2_dirty)
			continue;
		ret = qcow2_meta_pwrite(q, c->table, c->cs, l2);
		if (ret) {
			say(c, "ERROR: Could not write L2 table: %s", strerror(-ret));
			r->check_errors++;
			return ret;
		}
		r->corruptions_fixed += l2_dirty;
	}
	if (l1_dirty) {
		ret = qcow2_write_l1(q);
		if (ret) {
			say(c, "ERROR: Could not write L1 table: %s", strerror(-ret));
			r->check_errors++;
			return ret;
		}
	}
	return 0;
}

static int load_reftable(struct check *c)
{
	struct qcow2 *q = c->q;
	uint64_t bytes = (uint64_t)q->h.refcount_table_clusters * c->cs;
	int ret;

	free(c->reftable);
	c->reftable_entries = bytes / 8;
	c->reftable = malloc(bytes ? bytes : 1);
	if (!c->reftable)
		return -ENOMEM;
	ret = rd(c, c->reftable, bytes, q->h.refcount_table_offset, "refcount table");
	if (ret)
		return ret;
	for (uint64_t i = 0; i < c->reftable_entries; i++)
		c->reftable[i] = be64toh(c->reftable[i]);
	return 0;
}

/* The refcount table changed under qcow2-refcount.c: have it load the new one. */
static int reload_reftable(struct qcow2 *q)
{
	free(q->reftable);
	q->reftable = NULL;
	q->reftable_entries = 0;
	q->free_cluster_hint = 0;
	return qcow2_refcount_init(q);
}

/*
 * Writes a new refcount structure past everything in use, from the counted
 * references, and switches the header to it. The old table and blocks are
 * not counted: they become free clusters.
 */
static int rebuild(struct check *c)
{
	struct qcow2 *q = c->q;
	uint64_t per_rb = 1ull << q->rcb_bits, per_rt = c->cs / 8;
	uint64_t start, nrb = 1, nrt = 1, total;
	uint64_t *rt = NULL;
	uint8_t *blk;
	int ret;

	/* what the old structure took is no longer in use */
	for (uint64_t i = 0; i < c->reftable_entries; i++) {
		uint64_t off = c->reftable[i] & QCOW2_REFT_OFFSET_MASK;

		if (off && off / c->cs < c->nb && c->refs[off / c->cs])
			c->refs[off / c->cs]--;
	}
	for (uint64_t k = 0; k < q->h.refcount_table_clusters; k++) {
		uint64_t i = q->h.refcount_table_offset / c->cs + k;

		if (i < c->nb && c->refs[i])
			c->refs[i]--;
	}
	for (uint64_t i = 0; i < c->nb; i++) {
		if (c->refs[i] > max_refcount(q)) {
			say(c, "ERROR cluster %" PRIu64 " has %" PRIu32 " references, more than "
			       "%" PRIu32 "-bit refcounts hold", i, c->refs[i], q->refcount_bits);
			return -ERANGE;
		}
	}

	start = c->nb;
	while (start && !c->refs[start - 1])
		start--;
	start = MAX(start, (c->file_size + c->cs - 1) / c->cs);
	for (;;) {
		uint64_t t = start + nrb + nrt;
		uint64_t b = (t + per_rb - 1) / per_rb, s = (b + per_rt - 1) / per_rt;

		if (b <= nrb && s <= nrt)
			break;
		nrb = MAX(b, nrb);
		nrt = MAX(s, nrt);
	}
	if (nrt * c->cs > QCOW2_MAX_REFTABLE_BYTES)
		return -EFBIG;
	total = start + nrb + nrt;

	blk = calloc(1, c->cs);
	rt = calloc(nrt, c->cs);
	ret = -ENOMEM;
	if (!blk || !rt)
		goto out;
	for (uint64_t b = 0; b < nrb; b++) {
		memset(blk, 0, c->cs);
		for (uint64_t k = 0; k < per_rb; k++) {
			uint64_t i = b * per_rb + k;
			uint64_t v = i < c->nb ? c->refs[i] : 0;

			if (i >= start && i < total)
				v = 1; /* the new blocks and table themselves */
			if (v)
				qcow2_rc_entry_set(blk, k, q->refcount_bits, v);
		}
		rt[b] = htobe64((start + b) * c->cs);
		ret = qcow2_meta_pwrite(q, blk, c->cs, (start + b) * c->cs);
		if (ret)
			goto out;
	}
	ret = qcow2_meta_pwrite(q, rt, nrt * c->cs, (start + nrb) * c->cs);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret)
		goto out;

	q->file_end = MAX(q->file_end, total * c->cs);
	q->h.refcount_table_offset = (start + nrb) * c->cs;
	q->h.refcount_table_clusters = (uint32_t)nrt;
	ret = qcow2_write_header(q);
	if (!ret && fdatasync(q->fd))
		ret = -errno;
	if (ret)
		goto out;
	ret = reload_reftable(q);
	/* cached copies of the old blocks must go: their clusters are free now */
	if (!ret)
		ret = qcow2_flush_and_drop_caches(q);
out:
	free(rt);
	free(blk);
	return ret;
}

static int setup(struct check *c)
{
	struct stat st;

	if (fstat(c->q->fd, &st))
		return -errno;
	c->file_size = (uint64_t)st.st_size;
	c->nb = (c->file_size + c->cs - 1) / c->cs + 1;
	if (c->nb > CHECK_MAX_CLUSTERS) {
		say(c, "ERROR: the image file is too large to check (%" PRIu64 " clusters)", c->nb);
		c->res->check_errors++;
		return -EFBIG;
	}
	free(c->refs);
	c->refs = calloc(c->nb, sizeof(*c->refs));
	if (!c->refs)
		return -ENOMEM;
	return load_reftable(c);
}

/* One pass: count, compare, repair what fix allows. */
static int check_once(struct check *c, unsigned fix)
{
	struct qcow2_check_result *r = c->res;
	struct qcow2_check_result before;
	int ret;

	ret = setup(c);
	if (ret)
		return ret;
	r->total_clusters = (c->q->h.size + c->cs - 1) / c->cs;
	count_references(c);
	before = *r;
	compare(c, 0);

	if (c->rebuild && (fix & QCOW2_FIX_ERRORS)) {
		struct qcow2_check_result found = *r;

		say(c, "Rebuilding refcount structure");
		ret = rebuild(c);
		if (ret) {
			say(c, "ERROR: Could not rebuild the refcount structure: %s", strerror(-ret));
			r->check_errors++;
			return ret;
		}
		/* count again against the new structure; only what it could not fix remains */
		c->rebuild = false;
		ret = setup(c);
		if (ret)
			return ret;
		memset(r, 0, sizeof(*r));
		r->check_errors = found.check_errors;
		r->total_clusters = found.total_clusters;
		count_references(c);
		compare(c, fix & QCOW2_FIX_LEAKS);
		if (c->rebuild)
			say(c, "ERROR rebuilt refcount structure is still broken");
		if (r->corruptions < found.corruptions)
			r->corruptions_fixed = found.corruptions - r->corruptions;
		if (r->leaks < found.leaks)
			r->leaks_fixed = found.leaks - r->leaks;
	} else if (fix) {
		if (c->rebuild) {
			say(c, "ERROR need to rebuild refcount structures");
			r->check_errors++;
			return -EIO;
		}
		if (r->leaks || r->corruptions) {
			*r = before;
			compare(c, fix);
		}
	}
	if (fix && !c->q->read_only) {
		ret = qcow2_flush_and_drop_caches(c->q);
		if (ret)
			return ret;
	}
	ret = check_copied(c, fix);
	if (ret)
		return ret;
	r->image_end_offset = (c->highest + 1) * c->cs;
	return 0;
}

int qcow2_check(struct qcow2 *q, unsigned fix, struct qcow2_check_result *res,
		void (*report)(void *opaque, const char *line), void *opaque)
{
	struct check c = {
		.q = q, .res = res, .report = report, .opaque = opaque, .cs = q->cluster_size,
	};
	int ret;

	memset(res, 0, sizeof(*res));
	if (q->read_only)
		fix = 0;
	c.table = malloc(c.cs);
	c.rb = malloc(c.cs);
	if (!c.table || !c.rb) {
		ret = -ENOMEM;
		goto out;
	}
	pthread_rwlock_wrlock(&q->meta);
	/* the disk must be the whole truth: what we read directly */
	ret = q->read_only ? 0 : qcow2_flush_and_drop_caches(q);
	if (!ret)
		ret = check_once(&c, fix);
	/* a repair that leaves it consistent ends the DIRTY and CORRUPT states */
	if (!ret && fix && qcow2_check_clean(res))
		ret = qcow2_mark_clean(q);
	pthread_rwlock_unlock(&q->meta);
out:
	free(c.refs);
	free(c.reftable);
	free(c.rb);
	free(c.table);
	return ret;
}
