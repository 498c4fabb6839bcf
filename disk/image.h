/* SPDX-License-Identifier: MIT */
/*
 * Images as files of a format, read and written synchronously: what
 * minivm-img works on, and what a qcow2 image reads its backing file
 * through. (The guest's disks go through blockdev.h, which runs a format's
 * calls on worker threads; the qcow2 blockdev driver is a thin layer over
 * the calls here.)
 *
 * The format of an image is probed by its magic unless the caller names
 * it. Probing is dangerous for raw images, and we guard it as QEMU does:
 * when a raw image was opened by probing (no format given), a write to its
 * first sector that would make it probe as another format (a guest writing
 * a qcow2 header there) is refused with -EPERM, so a guest can never turn
 * its disk into an image that opens host files as backing files. Backing
 * files are opened with the overlay's backing_fmt when it records one.
 *
 * Offsets and lengths passed to image_pread/pwrite need no alignment; the
 * formats handle partial sectors and clusters themselves.
 */
#ifndef MINIVM_DISK_IMAGE_H
#define MINIVM_DISK_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk/drive.h"

/* Deeper backing chains than this are refused (and cycles are caught by it). */
#define IMAGE_MAX_CHAIN 64

enum image_format {
	IMAGE_FORMAT_RAW,
	IMAGE_FORMAT_QCOW2,
};

/* image_open() flags */
#define IMAGE_RDWR        (1u << 0)  /* else read-only */
#define IMAGE_NO_BACKING  (1u << 1)  /* do not open the backing chain (info, rebase -u) */
#define IMAGE_NO_LOCK     (1u << 2)  /* skip the QEMU-style OFD locks (qemu-img -U) */
#define IMAGE_NO_REPAIR   (1u << 3)  /* qcow2: for check: a dirty image is not repaired at
                                      * open; one marked corrupt opens read-write, but
                                      * only check's repair may write (qcow2_writable) */
#define IMAGE_DIRECT      (1u << 4)  /* O_DIRECT (cache=none, directsync) */
#define IMAGE_DSYNC       (1u << 5)  /* O_DSYNC (cache=writethrough, directsync) */

struct qcow2;

struct image {
	enum image_format format;
	char *path;               /* as given, for messages */
	uint64_t size;            /* virtual disk size in bytes */
	bool read_only;
	int fd;
	struct qcow2 *qcow2;      /* format == IMAGE_FORMAT_QCOW2 */
	int depth;                /* 0 for the top image, 1 for its backing file, ... */
	bool probed_raw;          /* raw by probing: writes of a format magic to sector 0 refused */
	unsigned flags;           /* as passed to image_open() */
};

/* Extent flags from image_block_status(), QEMU's meanings (qemu-img map). */
#define IMAGE_EXT_DATA       (1u << 0)  /* reads come from a host file */
#define IMAGE_EXT_ZERO       (1u << 1)  /* reads as zeros */
#define IMAGE_EXT_ALLOCATED  (1u << 2)  /* defined by this image, not a backing file */
#define IMAGE_EXT_COMPRESSED (1u << 3)

struct image_extent {
	uint64_t offset;          /* guest offset */
	uint64_t length;
	unsigned flags;
	int depth;                /* image in the chain that defines it (0 = top) */
	uint64_t host_offset;     /* with DATA and not COMPRESSED: offset in that image's file */
	const struct image *file; /* that image, or NULL when nothing in the chain defines it */
};

/*
 * Reads the first bytes of path and says which format it is. Returns 0, or
 * -errno with one line in err.
 */
int image_probe(const char *path, enum image_format *format, char *err, size_t errlen);

/*
 * Opens path. format < 0 probes. Backing files are opened read-only,
 * following the chain to its end unless IMAGE_NO_BACKING. Returns 0, or
 * -errno with one line in err naming the file and the cause.
 */
int image_open(const char *path, int format, unsigned flags, struct image **out, char *err,
	       size_t errlen);

/*
 * image_open() for a backing file depth levels below the top image: the
 * chain beyond IMAGE_MAX_CHAIN is refused. (qcow2_open() calls it.)
 */
int image_open_depth(const char *path, int format, unsigned flags, int depth,
		     struct image **out, char *err, size_t errlen);

/* Flushes (qcow2 metadata too) and closes the chain. NULL is fine. */
void image_close(struct image *img);

/* Whole transfers or -errno. Reads past a backing file's end read zeros. */
int image_pread(struct image *img, void *buf, uint64_t len, uint64_t offset);
int image_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t offset);
int image_flush(struct image *img);
/* Zeros (and, with unmap, may deallocate) a range. */
int image_write_zeroes(struct image *img, uint64_t offset, uint64_t len, bool unmap);

/*
 * Describes the longest run starting at offset (at most len bytes) that
 * has the same flags, depth and (for data) contiguous host offsets.
 * with_backing: look through unallocated areas into the backing chain;
 * otherwise unallocated areas come back with flags 0 and depth 0.
 */
int image_block_status(struct image *img, uint64_t offset, uint64_t len, bool with_backing,
		       struct image_extent *ext);

/* Bytes the image's file takes on the host (st_blocks * 512). */
int64_t image_allocated_bytes(const struct image *img);

const char *image_format_name(enum image_format format);
int image_format_parse(const char *name, enum image_format *format);

#endif
