// SPDX-License-Identifier: MIT
/*
 * Images as files of a format, opened and used synchronously (image.h):
 * probing by magic, opening with the cache flags and QEMU's locks
 * (filelock.c), the raw format's side of reads, writes and block status,
 * and the walk down a backing chain for block status. The qcow2 side is
 * qcow2.c; a qcow2 image opens its backing chain through image_open_depth().
 *
 * A raw image that was probed (no format given) refuses a write that would
 * put a qcow2 magic into its first bytes, as QEMU does: otherwise a guest
 * could turn its disk into an image that names host files as backing files
 * the next time it is probed.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/filelock.h"
#include "disk/image.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

#define IMAGE_DIO_ALIGN 4096u
#define IMAGE_ZERO_CHUNK (64u << 10)

static bool is_qcow2_magic(const uint8_t *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return be32toh(v) == QCOW2_MAGIC;
}

int image_probe(const char *path, enum image_format *format, char *err, size_t errlen)
{
	uint8_t magic[4];
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	do {
		n = pread(fd, magic, sizeof(magic), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = -errno;
		if (ret == -EISDIR)
			snprintf(err, errlen, "%s: is a directory", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	} else if (n == (ssize_t)sizeof(magic) && is_qcow2_magic(magic)) {
		*format = IMAGE_FORMAT_QCOW2;
	} else {
		*format = IMAGE_FORMAT_RAW;
	}
	close(fd);
	return ret;
}

static int open_fd(const char *path, unsigned flags, struct stat *st, char *err, size_t errlen)
{
	int oflags = O_CLOEXEC | (flags & IMAGE_RDWR ? O_RDWR : O_RDONLY);
	int fd, ret;

	if (flags & IMAGE_DIRECT)
		oflags |= O_DIRECT;
	if (flags & IMAGE_DSYNC)
		oflags |= O_DSYNC;
	fd = open(path, oflags);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EINVAL && (flags & IMAGE_DIRECT))
			snprintf(err, errlen,
				 "%s: O_DIRECT is not supported by this filesystem (use cache=writeback or writethrough)",
				 path);
		else if (ret == -EISDIR)
			snprintf(err, errlen, "%s: is a directory", path);
		else
			snprintf(err, errlen, "%s: %s%s", path, strerror(-ret),
				 (flags & IMAGE_RDWR) && (ret == -EROFS || ret == -EACCES) ?
					 " (open it read-only)" : "");
		return ret;
	}
	if (fstat(fd, st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		goto fail;
	}
	if (S_ISDIR(st->st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "%s: is a directory", path);
		goto fail;
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or block device", path);
		goto fail;
	}
	if (flags & IMAGE_NO_LOCK)
		return fd;
	ret = filelock_take(fd, !(flags & IMAGE_RDWR));
	if (ret == -EBUSY) {
		snprintf(err, errlen, "%s: image is in use by another process (locked)", path);
		goto fail;
	} else if (ret) {
		/* e.g. a filesystem without locks: QEMU's locking=auto goes on too */
		pr_warn("%s: cannot lock the image (%s); not protected against concurrent use\n",
			path, strerror(-ret));
	}
	return fd;
fail:
	close(fd);
	return ret;
}

static int file_size(int fd, const struct stat *st, uint64_t *size)
{
	off_t end;

	if (!S_ISBLK(st->st_mode)) {
		*size = st->st_size;
		return 0;
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	*size = end;
	return 0;
}

int image_open_depth(const char *path, int format, unsigned flags, int depth,
		     struct image **out, char *err, size_t errlen)
{
	enum image_format fmt = format;
	struct image *img;
	struct stat st;
	bool probed = false;
	int fd, ret;

	*out = NULL;
	if (depth >= IMAGE_MAX_CHAIN) {
		snprintf(err, errlen, "%s: backing chain too deep (cycle?)", path);
		return -ELOOP;
	}
	if (format < 0) {
		ret = image_probe(path, &fmt, err, errlen);
		if (ret)
			return ret;
		probed = true;
	} else if (format != IMAGE_FORMAT_RAW && format != IMAGE_FORMAT_QCOW2) {
		snprintf(err, errlen, "%s: unknown image format", path);
		return -EINVAL;
	}
	fd = open_fd(path, flags, &st, err, errlen);
	if (fd < 0)
		return fd;
	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	img->format = fmt;
	img->read_only = !(flags & IMAGE_RDWR);
	img->fd = fd;
	img->depth = depth;
	img->flags = flags;
	img->probed_raw = probed && fmt == IMAGE_FORMAT_RAW;
	if (fmt == IMAGE_FORMAT_QCOW2) {
		ret = qcow2_open(img, flags, err, errlen);
	} else {
		ret = file_size(fd, &st, &img->size);
		if (ret)
			snprintf(err, errlen, "%s: cannot get the size: %s", path, strerror(-ret));
	}
	if (ret) {
		close(fd);
		free(img->path);
		free(img);
		return ret;
	}
	*out = img;
	return 0;
}

int image_open(const char *path, int format, unsigned flags, struct image **out, char *err,
	       size_t errlen)
{
	return image_open_depth(path, format, flags, 0, out, err, errlen);
}

void image_close(struct image *img)
{
	if (!img)
		return;
	if (img->qcow2)
		qcow2_close(img->qcow2);
	close(img->fd); /* also drops the locks */
	free(img->path);
	free(img);
}

/* ---- raw ---- */

/* Reads past the end of the file read as zeros. */
static int raw_read(struct image *img, uint8_t *buf, uint64_t len, uint64_t offset)
{
	while (len) {
		ssize_t n = pread(img->fd, buf, MIN(len, (uint64_t)1 << 30), offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		offset += n;
		len -= n;
	}
	return 0;
}

static int raw_write(struct image *img, const uint8_t *buf, uint64_t len, uint64_t offset)
{
	while (len) {
		ssize_t n = pwrite(img->fd, buf, MIN(len, (uint64_t)1 << 30), offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		offset += n;
		len -= n;
	}
	return 0;
}

/* O_DIRECT: through an aligned buffer, reading the partial blocks at the edges. */
static int raw_direct(struct image *img, bool write, uint8_t *buf, uint64_t len, uint64_t offset)
{
	const uint64_t chunk = 1u << 20;
	uint8_t *b;
	int ret = 0;

	if (posix_memalign((void **)&b, IMAGE_DIO_ALIGN, chunk + 2 * IMAGE_DIO_ALIGN))
		return -ENOMEM;
	while (len && !ret) {
		uint64_t start = ALIGN_DOWN(offset, IMAGE_DIO_ALIGN);
		uint64_t n = MIN(len, chunk - (offset - start));
		uint64_t end = ALIGN_UP(offset + n, IMAGE_DIO_ALIGN);

		if (!write || start != offset || end != offset + n)
			ret = raw_read(img, b, end - start, start);
		if (ret)
			break;
		if (write) {
			memcpy(b + (offset - start), buf, n);
			ret = raw_write(img, b, end - start, start);
		} else {
			memcpy(buf, b + (offset - start), n);
		}
		buf += n;
		offset += n;
		len -= n;
	}
	free(b);
	return ret;
}

/* QEMU's guard for probed raw images (see the top of this file). */
static int raw_probe_guard(struct image *img, const uint8_t *buf, uint64_t len, uint64_t offset)
{
	uint8_t head[4];
	int ret;

	if (!img->probed_raw || offset >= sizeof(head))
		return 0;
	ret = image_pread(img, head, MIN(sizeof(head), img->size), 0);
	if (ret)
		return ret;
	memcpy(head + offset, buf, MIN(len, sizeof(head) - offset));
	if (img->size >= sizeof(head) && is_qcow2_magic(head))
		return -EPERM;
	return 0;
}

static int raw_fallocate(struct image *img, int mode, uint64_t offset, uint64_t len)
{
	int ret;

	do {
		ret = fallocate(img->fd, mode | FALLOC_FL_KEEP_SIZE, offset, len);
	} while (ret && errno == EINTR);
	if (ret)
		return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	if ((img->flags & IMAGE_DSYNC) && fdatasync(img->fd))
		return -errno;
	return 0;
}

static int raw_write_zeroes(struct image *img, uint64_t offset, uint64_t len, bool unmap)
{
	uint8_t *z;
	int ret;

	if (unmap) {
		ret = raw_fallocate(img, FALLOC_FL_PUNCH_HOLE, offset, len);
		if (ret != -EOPNOTSUPP)
			return ret;
	}
	ret = raw_fallocate(img, FALLOC_FL_ZERO_RANGE, offset, len);
	if (ret != -EOPNOTSUPP && ret != -EINVAL)
		return ret;
	z = calloc(1, IMAGE_ZERO_CHUNK);
	if (!z)
		return -ENOMEM;
	ret = 0;
	while (len && !ret) {
		uint64_t n = MIN(len, IMAGE_ZERO_CHUNK);

		ret = image_pwrite(img, z, n, offset);
		offset += n;
		len -= n;
	}
	free(z);
	return ret;
}

/* Holes read as zeros; everything is this image's own (QEMU's file driver). */
static int raw_block_status(struct image *img, uint64_t offset, uint64_t len,
			    struct image_extent *ext)
{
	off_t data = lseek(img->fd, offset, SEEK_DATA), hole;

	ext->offset = offset;
	ext->file = img;
	if (data < 0 && errno == ENXIO) {
		data = img->size; /* a hole up to the end */
	} else if (data < 0) {
		/* no SEEK_DATA here: all data */
		ext->length = len;
		ext->flags = IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED;
		ext->host_offset = offset;
		return 0;
	}
	if ((uint64_t)data > offset) {
		ext->length = MIN(len, (uint64_t)data - offset);
		ext->flags = IMAGE_EXT_ZERO | IMAGE_EXT_ALLOCATED;
		return 0;
	}
	hole = lseek(img->fd, offset, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole <= offset)
		hole = offset + len;
	ext->length = MIN(len, (uint64_t)hole - offset);
	ext->flags = IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED;
	ext->host_offset = offset;
	return 0;
}

/* ---- the format-independent calls ---- */

static int check_range(const struct image *img, uint64_t len, uint64_t offset)
{
	return offset > img->size || len > img->size - offset ? -EINVAL : 0;
}

int image_pread(struct image *img, void *buf, uint64_t len, uint64_t offset)
{
	int ret = check_range(img, len, offset);

	if (ret || !len)
		return ret;
	if (img->format == IMAGE_FORMAT_QCOW2)
		return qcow2_pread(img->qcow2, buf, len, offset);
	if (img->flags & IMAGE_DIRECT)
		return raw_direct(img, false, buf, len, offset);
	return raw_read(img, buf, len, offset);
}

int image_pwrite(struct image *img, const void *buf, uint64_t len, uint64_t offset)
{
	int ret = check_range(img, len, offset);

	if (ret || !len)
		return ret;
	if (img->read_only)
		return -EROFS;
	if (img->format == IMAGE_FORMAT_QCOW2)
		return qcow2_pwrite(img->qcow2, buf, len, offset);
	ret = raw_probe_guard(img, buf, len, offset);
	if (ret)
		return ret;
	if (img->flags & IMAGE_DIRECT)
		return raw_direct(img, true, (void *)buf, len, offset);
	return raw_write(img, buf, len, offset);
}

int image_flush(struct image *img)
{
	if (img->read_only)
		return 0;
	if (img->format == IMAGE_FORMAT_QCOW2)
		return qcow2_flush(img->qcow2);
	return fdatasync(img->fd) ? -errno : 0;
}

int image_write_zeroes(struct image *img, uint64_t offset, uint64_t len, bool unmap)
{
	int ret = check_range(img, len, offset);

	if (ret || !len)
		return ret;
	if (img->read_only)
		return -EROFS;
	if (img->format == IMAGE_FORMAT_QCOW2)
		return qcow2_write_zeroes(img->qcow2, offset, len, unmap);
	return raw_write_zeroes(img, offset, len, unmap);
}

/* Block status of img, depth levels below the image the caller asked about. */
static int block_status(struct image *img, uint64_t offset, uint64_t len, bool with_backing,
			int depth, struct image_extent *ext)
{
	struct image *b;
	int ret;

	memset(ext, 0, sizeof(*ext));
	if (img->format == IMAGE_FORMAT_RAW)
		ret = raw_block_status(img, offset, len, ext);
	else
		ret = qcow2_block_status(img->qcow2, offset, len, ext);
	if (ret)
		return ret;
	ext->depth = depth;
	if (ext->flags || !with_backing)
		return 0;
	b = img->qcow2->backing;
	if (!b) {
		/* nothing in the chain defines it: it reads as zeros */
		ext->flags = IMAGE_EXT_ZERO;
		return 0;
	}
	if (offset >= b->size) {
		/* past the backing file's end: zeros */
		ext->flags = IMAGE_EXT_ZERO;
		ext->depth = depth + 1;
		return 0;
	}
	len = MIN(ext->length, b->size - offset);
	return block_status(b, offset, len, true, depth + 1, ext);
}

int image_block_status(struct image *img, uint64_t offset, uint64_t len, bool with_backing,
		       struct image_extent *ext)
{
	if (!len || offset >= img->size)
		return -EINVAL;
	return block_status(img, offset, MIN(len, img->size - offset), with_backing, 0, ext);
}

int64_t image_allocated_bytes(const struct image *img)
{
	struct stat st;

	if (fstat(img->fd, &st))
		return -errno;
	return (int64_t)st.st_blocks * 512;
}

const char *image_format_name(enum image_format format)
{
	switch (format) {
	case IMAGE_FORMAT_RAW:
		return "raw";
	case IMAGE_FORMAT_QCOW2:
		return "qcow2";
	}
	return "unknown";
}

int image_format_parse(const char *name, enum image_format *format)
{
	if (!strcmp(name, "raw"))
		*format = IMAGE_FORMAT_RAW;
	else if (!strcmp(name, "qcow2"))
		*format = IMAGE_FORMAT_QCOW2;
	else
		return -EINVAL;
	return 0;
}
