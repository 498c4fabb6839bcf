/* SPDX-License-Identifier: MIT */
/*
 * qcow2, QEMU's copy-on-write image format (docs/interop/qcow2.txt in QEMU's
 * tree is the specification). This header is shared by the files that make
 * up the driver:
 *
 *   qcow2.c           open/validate/close, header and extensions, read and
 *                     write paths, L2 cache, block status, the blockdev
 *                     driver (qcow2_ops), create, resize
 *   qcow2-refcount.c  refcount blocks, cluster allocation and freeing
 *   qcow2-snapshot.c  the snapshot table; create, apply, delete
 *   qcow2-check.c     consistency check and repair (minivm-img check)
 *
 * Everything on disk is big-endian; the structs below hold host-endian
 * copies.
 */
#ifndef MINIVM_DISK_QCOW2_H
#define MINIVM_DISK_QCOW2_H

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "disk/image.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Big-endian on-disk fields at any alignment, read and written in place. */
static inline uint16_t get_be16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_DEFAULT_CLUSTER_BITS 16

#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104 /* without the compression type byte and padding */

/* Incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
/* Compatible feature bits */
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
/* Autoclear feature bits */
#define QCOW2_AUTOCLEAR_BITMAPS      (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ull << 1)

/* Header extension types */
#define QCOW2_EXT_END            0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857u
#define QCOW2_EXT_BITMAPS        0x23852875u
#define QCOW2_EXT_CRYPTO         0x0537be77u
#define QCOW2_EXT_DATA_FILE      0x44415441u

/* L1 and L2 entries */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_L1E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_L2E_OFFSET_MASK  0x00fffffffffffe00ull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull

/* Sanity limits for what an image may ask us to allocate (QEMU's are similar). */
#define QCOW2_MAX_L1_BYTES      (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS     65536
#define QCOW2_MAX_BACKING_NAME  1023
#define QCOW2_MAX_SIZE          (1ull << 55) /* bytes of virtual disk */

struct qcow2_header {
	uint32_t magic;
	uint32_t version;               /* 2 or 3 */
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;                  /* virtual disk size */
	uint32_t crypt_method;          /* must be 0 */
	uint32_t l1_size;               /* entries */
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	/* version 3 (version 2 images read as the defaults: 0 features, order 4, length 72) */
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;        /* refcount_bits = 1 << refcount_order */
	uint32_t header_length;
	uint8_t compression_type;       /* 0 = zlib (the only one we take) */
};

/* A header extension we do not interpret, kept verbatim so it survives header rewrites. */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;
	uint8_t *data;
};

struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
	char *id_str;
	char *name;
	uint32_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;         /* the larger of the 32-bit and 64-bit fields */
	uint64_t disk_size;             /* from the extra data; the image's size if absent */
	uint32_t extra_data_size;
	uint8_t *extra_data;            /* kept verbatim beyond the fields we know */
};

struct qcow2_cache; /* metadata cache, private to qcow2.c / qcow2-refcount.c */

struct qcow2 {
	struct image *img;              /* the image this is the driver state of */
	int fd;
	bool read_only;
	/*
	 * Opened read-write although the header says CORRUPT, for check's
	 * repair (IMAGE_NO_REPAIR): metadata may be rewritten, but nothing
	 * that changes the disk's content or shape (qcow2_writable()).
	 */
	bool repair_only;
	bool direct;                    /* fd is O_DIRECT: aligned bounce buffers for all I/O */
	struct qcow2_header h;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint32_t l2_bits;               /* log2(entries per L2 table) = cluster_bits - 3 */
	uint32_t refcount_bits;         /* 1 .. 64 */
	uint32_t rcb_bits;              /* log2(entries per refcount block) */
	uint64_t *l1;                   /* active L1 table, host-endian, h.l1_size entries */
	uint64_t *reftable;             /* host-endian, reftable_entries */
	uint64_t reftable_entries;
	char *backing_file;             /* as recorded in the image (NULL: none) */
	char *backing_format;           /* from the backing format extension (NULL: none) */
	struct image *backing;          /* opened chain, NULL with IMAGE_NO_BACKING or none */
	struct qcow2_ext *exts;         /* extensions we keep verbatim */
	unsigned nb_exts;
	struct qcow2_snapshot *snapshots;
	unsigned nb_snapshots;
	uint64_t free_cluster_hint;     /* where the allocator starts looking */
	struct qcow2_cache *l2_cache;
	struct qcow2_cache *rc_cache;
	/*
	 * meta: held exclusively to change metadata (allocate, free, L1/L2,
	 * refcounts, header), shared to read through it. The caches have
	 * their own lock inside.
	 */
	pthread_rwlock_t meta;

	/* Private to qcow2.c and qcow2-refcount.c. */
	uint32_t dio_align;             /* with direct: alignment of every host transfer */
	uint64_t file_end;              /* bytes of the file known in use (fstat, allocations) */
	uint32_t l1_dirty_lo, l1_dirty_hi; /* entries of l1 changed in memory only */
	bool reftable_dirty;            /* reftable changed in memory only */
	struct qcow2_range *pending;    /* frees waiting until their dereference is durable */
	size_t nb_pending, pending_cap;
	uint64_t cbytes_off;            /* qcow2_alloc_bytes: next free byte, 0: none */
	bool dirty_bit_set;             /* we set DIRTY on disk (a lazy-refcounts image) */
	bool reported;                  /* a corruption was already reported */
	uint64_t *meta_idx;             /* sorted host offsets of metadata clusters */
	size_t nb_meta_idx, meta_idx_cap;
};

/* A byte range of the host file. */
struct qcow2_range {
	uint64_t offset;
	uint64_t len;
};

/* ---- the public side: image.c, minivm-img and the blockdev driver ---- */

struct qcow2_create_opts {
	uint64_t size;                  /* bytes; rounded up to 512 */
	uint32_t cluster_size;          /* 0: 64 KiB */
	int compat;                     /* 2 (compat=0.10) or 3 (compat=1.1, default) */
	uint32_t refcount_bits;         /* 0: 16 */
	enum {
		QCOW2_PREALLOC_OFF,
		QCOW2_PREALLOC_METADATA,
		QCOW2_PREALLOC_FALLOC,
		QCOW2_PREALLOC_FULL,
	} prealloc;
	bool lazy_refcounts;
	const char *backing_file;       /* NULL: none */
	const char *backing_format;     /* NULL: probe (and record nothing) */
};

/* Creates (truncating) path as a qcow2 image. 0 or -errno with one line in err. */
int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen);

/* Called by image_open() with img->fd open; fills img->size and img->qcow2. */
int qcow2_open(struct image *img, unsigned flags, char *err, size_t errlen);
void qcow2_close(struct qcow2 *q);

int qcow2_pread(struct qcow2 *q, void *buf, uint64_t len, uint64_t offset);
int qcow2_pwrite(struct qcow2 *q, const void *buf, uint64_t len, uint64_t offset);
/* Writes one whole cluster compressed (convert -c); falls back to a normal write if it does not shrink. */
int qcow2_pwrite_compressed(struct qcow2 *q, const void *buf, uint64_t offset);
/* Writes the metadata caches back in a crash-safe order, then fdatasync. */
int qcow2_flush(struct qcow2 *q);
/*
 * full=false (a guest's discard): the whole clusters of the range are
 * freed; they read as zeros afterwards except where a backing file could
 * show through on a v2 image, which has no zero flag: there, as in QEMU,
 * the clusters become unallocated and read from the backing file. On v3
 * with a backing file they get the zero flag and read as zeros. Partial
 * clusters at the edges are left as they are. full=true (commit's
 * emptying): clusters become unallocated, reads fall through to the
 * backing file.
 */
int qcow2_discard(struct qcow2 *q, uint64_t offset, uint64_t len, bool full);
int qcow2_write_zeroes(struct qcow2 *q, uint64_t offset, uint64_t len, bool unmap);
int qcow2_block_status(struct qcow2 *q, uint64_t offset, uint64_t len, struct image_extent *ext);
/* Grows (or with allow_shrink, shrinks) the virtual size. */
int qcow2_resize(struct qcow2 *q, uint64_t new_size, bool allow_shrink, char *err, size_t errlen);
/* Records a new backing file name and format (NULL, NULL: none). Does not reopen the chain. */
int qcow2_set_backing(struct qcow2 *q, const char *file, const char *format);
/* Rewrites the header, the extensions we keep and the backing file name. */
int qcow2_write_header(struct qcow2 *q);

/* The blockdev driver for -drive format=qcow2 (and probed qcow2). */
struct blockdev_ops;
extern const struct blockdev_ops qcow2_ops;

/* ---- internal: refcounts (qcow2-refcount.c) ---- */

int qcow2_refcount_init(struct qcow2 *q);       /* loads the refcount table */
int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster_index, uint64_t *refcount);
/* Adds delta to the refcount of every cluster overlapping [offset, offset+len). Meta lock held. */
int qcow2_update_refcount(struct qcow2 *q, uint64_t offset, uint64_t len, int64_t delta);
/* Allocates n contiguous clusters with refcount 1; *offset gets the first. Meta lock held. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset);
/* Allocates len bytes for a compressed cluster, packed into partly used clusters. */
int qcow2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *offset);
/*
 * Drops one reference to every cluster overlapping [offset, offset+len).
 * The decrement is deferred to the end of the next qcow2_flush(), after the
 * change that removed the reference is durable, so a freed cluster is never
 * reused while the disk may still point to it.
 */
void qcow2_free_clusters(struct qcow2 *q, uint64_t offset, uint64_t len);

/* ---- internal: metadata I/O (qcow2.c) ---- */

/* pwrite() until all of buf is written, retrying EINTR: 0 or -errno (-EIO on no progress). */
int qcow2_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);
/* pread/pwrite of metadata at a host offset, going around O_DIRECT alignment. */
int qcow2_meta_pread(struct qcow2 *q, void *buf, size_t len, uint64_t offset);
int qcow2_meta_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t offset);
/*
 * Writes all dirty cached L2 tables and refcount blocks (refcount blocks
 * first, with an fdatasync between), then empties both caches so that code
 * working on the file directly (snapshots, check) sees and changes the truth.
 * Deferred frees are applied and written too. Takes no lock: call it with
 * q->meta held exclusively, or while nothing else uses q (minivm-img).
 * qcow2_write_l1() and qcow2_write_header() are the same.
 */
int qcow2_flush_and_drop_caches(struct qcow2 *q);
/* Writes the in-memory L1 table to h.l1_table_offset. */
int qcow2_write_l1(struct qcow2 *q);
/*
 * 0 if the disk's content and shape may change (guest writes, discard,
 * resize, snapshots, backing file); -EROFS read-only, -EACCES for an image
 * marked corrupt that check opened to repair.
 */
static inline int qcow2_writable(const struct qcow2 *q)
{
	return q->read_only ? -EROFS : q->repair_only ? -EACCES : 0;
}
/*
 * After a repair that left the image consistent: syncs, then clears the
 * DIRTY and CORRUPT bits on disk (as QEMU's qcow2_mark_clean and
 * qcow2_mark_consistent do). Nothing to do when neither is set.
 */
int qcow2_mark_clean(struct qcow2 *q);

/*
 * The metadata caches (L2 tables, refcount blocks): byte ranges of one
 * cached table at host offset table. Writes mark the table dirty; dirty L2
 * tables reach the disk only after every dirty refcount block did (with an
 * fdatasync between), which is the crash-safety ordering of qcow2.c.
 */
int qcow2_cache_read(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, size_t pos,
		     void *buf, size_t len);
int qcow2_cache_write(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, size_t pos,
		      const void *buf, size_t len);
/* Puts a whole new table into c (dirty) without reading the disk. */
int qcow2_cache_install(struct qcow2 *q, struct qcow2_cache *c, uint64_t table, const void *buf);
/* Writes the dirty refcount blocks, then the refcount table if it changed. */
int qcow2_refcount_writeback(struct qcow2 *q);
/* Applies the deferred frees (after the flush made their dereference durable). */
int qcow2_apply_pending_frees(struct qcow2 *q);
/* Whether [offset, offset+len) touches the header, the L1 or refcount table or blocks, or an L2 table. */
bool qcow2_overlaps_metadata(struct qcow2 *q, uint64_t offset, uint64_t len);
/*
 * Rebuilds the index behind qcow2_overlaps_metadata() after L1 or refcount
 * table changes; _add/_del keep it current for one new or dropped cluster.
 */
int qcow2_rebuild_meta_index(struct qcow2 *q);
int qcow2_meta_index_add(struct qcow2 *q, uint64_t offset);
void qcow2_meta_index_del(struct qcow2 *q, uint64_t offset);
/* Prints one line about a corrupt image (once per image) and returns -EIO. */
int qcow2_corrupt(struct qcow2 *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- internal: snapshots (qcow2-snapshot.c) ---- */

int qcow2_snapshots_load(struct qcow2 *q, char *err, size_t errlen); /* at open */
void qcow2_snapshots_free(struct qcow2 *q);
int qcow2_snapshot_create(struct qcow2 *q, const char *name, char *err, size_t errlen);
int qcow2_snapshot_apply(struct qcow2 *q, const char *name_or_id, char *err, size_t errlen);
int qcow2_snapshot_delete(struct qcow2 *q, const char *name_or_id, char *err, size_t errlen);
/* Bytes the snapshot table takes on disk (0 without snapshots). */
uint64_t qcow2_snapshot_table_size(const struct qcow2 *q);
/*
 * Grows the active L1 table to new_size entries in new clusters and
 * switches the header to it (qcow2-create.c; resize and snapshot apply).
 * Exclusive meta lock held, caches flushed.
 */
int qcow2_grow_l1(struct qcow2 *q, uint32_t new_size);

/* ---- internal: check (qcow2-check.c) ---- */

struct qcow2_check_result {
	uint64_t corruptions;           /* refcount too low, bad offsets, ... */
	uint64_t leaks;                 /* refcount higher than the references */
	uint64_t check_errors;          /* could not read something */
	uint64_t corruptions_fixed;
	uint64_t leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters;        /* guest clusters */
	uint64_t allocated_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
};

/*
 * Whether a check result says the image is consistent: nothing could not
 * be read and no corruption is left (after a repair, res.corruptions counts
 * only what the repair could not fix). Leaks are harmless. The rule for
 * clearing DIRTY and CORRUPT, as in QEMU.
 */
static inline bool qcow2_check_clean(const struct qcow2_check_result *res)
{
	return !res->corruptions && !res->check_errors;
}

#define QCOW2_FIX_LEAKS  (1u << 0)
#define QCOW2_FIX_ERRORS (1u << 1)

/*
 * Walks every piece of metadata, counts the references to each cluster and
 * compares with the refcounts; with fix flags, repairs. Messages for each
 * problem go to report (one line each, QEMU's wording) when it is not NULL.
 * After a repair, res holds the *_fixed counts and what could not be fixed;
 * as qemu-img does, callers check once more without fix to report the
 * result. A repair whose result is qcow2_check_clean() clears the DIRTY and
 * CORRUPT header bits. Takes the meta lock itself.
 */
int qcow2_check(struct qcow2 *q, unsigned fix, struct qcow2_check_result *res,
		void (*report)(void *opaque, const char *line), void *opaque);

/*
 * Entry idx of a refcount block in its on-disk form (big-endian; widths
 * below 8 bits start at the byte's least significant bit). refcount_bits
 * is 1 .. 64; set truncates v to the width.
 */
uint64_t qcow2_rc_entry_get(const void *block, uint64_t idx, uint32_t refcount_bits);
void qcow2_rc_entry_set(void *block, uint64_t idx, uint32_t refcount_bits, uint64_t v);

#endif
