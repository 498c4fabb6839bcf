// SPDX-License-Identifier: MIT
/*
 * The raw format: guest block N is byte N * block_size of the image, which
 * may be a regular file or a host block device.
 *
 * Cache modes map to open flags (drive.h has the table): O_DIRECT for
 * cache=none and directsync, O_DSYNC for writethrough and directsync (every
 * write is durable when it completes), and FLUSH is fdatasync() unless
 * cache=unsafe, where blockdev.c drops it.
 *
 * O_DIRECT wants the file offset, each buffer address and each buffer length
 * aligned; the kernel says how much through statx(STATX_DIOALIGN). The
 * offset alignment becomes the device's logical block size (512 on most
 * storage, 4096 on 4K-native disks), so blockdev.c refuses misaligned
 * offsets before they get here. Misaligned guest buffers are legal in
 * virtio-blk, so instead of failing those requests we bounce them through an
 * aligned buffer, RAW_BOUNCE_MAX bytes at a time.
 *
 * Locking follows QEMU's protocol so that minivm and QEMU refuse each
 * other; disk/filelock.c has the details.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/blockdev.h"
#include "disk/filelock.h"
#include "disk/iov.h"
#include "vmm/log.h"

#define RAW_BOUNCE_MAX (1U << 20)
#define RAW_ZERO_CHUNK (64U << 10)
#define RAW_MAX_DIO_ALIGN 4096U


struct raw {
	int fd;
	bool direct;       /* opened O_DIRECT */
	bool sync_writes;  /* opened O_DSYNC: fallocate()s need an fdatasync */
	uint32_t mem_align; /* O_DIRECT buffer alignment; 1 without O_DIRECT */
};

/* Aligned source for writing zeros when fallocate() cannot. */
static const uint8_t raw_zeroes[RAW_ZERO_CHUNK] __attribute__((aligned(RAW_MAX_DIO_ALIGN)));

/*
 * preadv/pwritev until the whole iovec is transferred: the kernel may stop
 * short (IOV_MAX, a file that shrank, signals on some files), and we never
 * hand a partial transfer to the guest. We advance through a copy of the
 * iovec, on the stack for the usual small ones, so the caller's stays as it
 * was. A read that meets end-of-file (the image was truncated under us)
 * reads zeros, as a hole would.
 */
static int raw_rw_full(struct raw *raw, bool write, uint64_t offset, const struct iovec *iov,
		       int iovcnt)
{
	size_t total = iov_total(iov, iovcnt), done = 0;
	struct iovec local[64], *heap = NULL, *v = local;
	int ret = 0;

	if (iovcnt > (int)ARRAY_SIZE(local)) {
		heap = malloc((size_t)iovcnt * sizeof(*heap));
		if (!heap)
			return -ENOMEM;
		v = heap;
	}
	if (iovcnt > 0)
		memcpy(v, iov, (size_t)iovcnt * sizeof(*v));
	while (done < total) {
		ssize_t n;

		/* bytes remain, so this stops inside the array */
		while (!v->iov_len) {
			v++;
			iovcnt--;
		}
		if (write)
			n = pwritev(raw->fd, v, MIN(iovcnt, IOV_MAX), offset + done);
		else
			n = preadv(raw->fd, v, MIN(iovcnt, IOV_MAX), offset + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0) {
			if (write) {
				ret = -EIO;
				break;
			}
			for (int i = 0; i < iovcnt; i++)
				memset(v[i].iov_base, 0, v[i].iov_len);
			done = total;
			break;
		}
		done += n;
		/* drop what was transferred, then the next call starts mid-segment */
		while (n && (size_t)n >= v->iov_len) {
			n -= v->iov_len;
			v++;
			iovcnt--;
		}
		if (n) {
			v->iov_base = (uint8_t *)v->iov_base + n;
			v->iov_len -= n;
		}
	}
	free(heap);
	return ret ? ret : (int)done;
}

/* Whether O_DIRECT can take this iovec as it is. */
static bool raw_iov_aligned(const struct blockdev *bd, const struct raw *raw,
			    const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		if ((uintptr_t)iov[i].iov_base % raw->mem_align || iov[i].iov_len % bd->block_size)
			return false;
	}
	return true;
}

/* O_DIRECT with misaligned buffers: go through an aligned copy. */
static int raw_rw_bounce(struct blockdev *bd, bool write, uint64_t offset,
			 const struct iovec *iov, int iovcnt)
{
	struct raw *raw = bd->priv;
	size_t total = iov_total(iov, iovcnt);
	size_t chunk = MIN(total, RAW_BOUNCE_MAX);
	void *buf;
	int ret = 0;

	/* total and RAW_BOUNCE_MAX are multiples of the block size, so chunks are too */
	buf = aligned_alloc(RAW_MAX_DIO_ALIGN, ALIGN_UP(chunk, RAW_MAX_DIO_ALIGN));
	if (!buf)
		return -ENOMEM;
	for (size_t pos = 0; pos < total; pos += chunk) {
		size_t n = MIN(chunk, total - pos);
		struct iovec b = { .iov_base = buf, .iov_len = n };

		if (write)
			iov_copy(iov, iovcnt, pos, buf, n, false);
		ret = raw_rw_full(raw, write, offset + pos, &b, 1);
		if (ret < 0)
			break;
		if (!write)
			iov_copy(iov, iovcnt, pos, buf, n, true);
	}
	free(buf);
	return ret < 0 ? ret : (int)total;
}

static int raw_rw(struct blockdev *bd, bool write, uint64_t offset, const struct iovec *iov,
		  int iovcnt)
{
	struct raw *raw = bd->priv;

	if (raw->direct && !raw_iov_aligned(bd, raw, iov, iovcnt))
		return raw_rw_bounce(bd, write, offset, iov, iovcnt);
	return raw_rw_full(raw, write, offset, iov, iovcnt);
}

static int raw_readv(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return raw_rw(bd, false, offset, iov, iovcnt);
}

static int raw_writev(struct blockdev *bd, uint64_t offset, const struct iovec *iov, int iovcnt)
{
	return raw_rw(bd, true, offset, iov, iovcnt);
}

static int raw_flush(struct blockdev *bd)
{
	struct raw *raw = bd->priv;

	return fdatasync(raw->fd) ? -errno : 0;
}

static int raw_fallocate(struct raw *raw, int mode, uint64_t offset, uint64_t len)
{
	int ret;

	do {
		ret = fallocate(raw->fd, mode | FALLOC_FL_KEEP_SIZE, offset, len);
	} while (ret && errno == EINTR);
	if (ret)
		return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	/* O_DSYNC covers writes, not fallocate(): writethrough needs this */
	if (raw->sync_writes && fdatasync(raw->fd))
		return -errno;
	return 0;
}

/* Deallocates the range; it reads back as zeros. */
static int raw_discard(struct blockdev *bd, uint64_t offset, uint64_t len)
{
	return raw_fallocate(bd->priv, FALLOC_FL_PUNCH_HOLE, offset, len);
}

/*
 * Zeros the range: by punching a hole when the guest allows deallocation,
 * else by FALLOC_FL_ZERO_RANGE, else (filesystems without it) by writing
 * zeros.
 */
static int raw_write_zeroes(struct blockdev *bd, uint64_t offset, uint64_t len, bool unmap)
{
	struct raw *raw = bd->priv;
	int ret;

	if (unmap) {
		ret = raw_fallocate(raw, FALLOC_FL_PUNCH_HOLE, offset, len);
		if (ret != -EOPNOTSUPP)
			return ret;
	}
	ret = raw_fallocate(raw, FALLOC_FL_ZERO_RANGE, offset, len);
	if (ret != -EOPNOTSUPP && ret != -EINVAL)
		return ret;
	while (len) {
		struct iovec z = { .iov_base = (void *)raw_zeroes, .iov_len = MIN(len, RAW_ZERO_CHUNK) };

		ret = raw_rw_full(raw, true, offset, &z, 1);
		if (ret < 0)
			return ret;
		offset += z.iov_len;
		len -= z.iov_len;
	}
	return 0;
}

/*
 * O_DIRECT alignment from statx(STATX_DIOALIGN) (Linux 6.1); when the kernel
 * or filesystem does not say, assume what works on all common storage.
 */
static void raw_dio_align(int fd, uint32_t *offset_align, uint32_t *mem_align)
{
	struct statx stx;

	*offset_align = BLOCKDEV_SECTOR;
	*mem_align = RAW_MAX_DIO_ALIGN;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		*offset_align = MAX(stx.stx_dio_offset_align, BLOCKDEV_SECTOR);
		*mem_align = MAX(stx.stx_dio_mem_align, 1);
	}
}

static int raw_open(struct blockdev *bd, const struct drive_opts *o, char *err, size_t errlen)
{
	int flags = O_CLOEXEC | (bd->read_only ? O_RDONLY : O_RDWR);
	uint32_t offset_align = BLOCKDEV_SECTOR, mem_align = 1;
	struct raw *raw;
	struct stat st;
	uint64_t size;
	int fd, ret;

	if (bd->cache.direct)
		flags |= O_DIRECT;
	if (bd->cache.writethrough)
		flags |= O_DSYNC;
	fd = open(o->file, flags);
	if (fd < 0 && errno == EINVAL && bd->cache.direct) {
		/* EINVAL from open() with O_DIRECT: the filesystem cannot do it */
		snprintf(err, errlen,
			 "%s: cache=%s needs O_DIRECT, which this filesystem does not support (use cache=writeback or writethrough)",
			 o->file, drive_cache_name(o->cache));
		return -EINVAL;
	}
	if (fd < 0 && errno == EISDIR) {
		snprintf(err, errlen, "%s: is a directory", o->file);
		return -EISDIR;
	}
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s%s", o->file, strerror(-ret),
			 !bd->read_only && (ret == -EROFS || ret == -EACCES) ?
				 " (readonly=on opens it read-only)" : "");
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", o->file, strerror(-ret));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "%s: is a directory", o->file);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file or block device", o->file);
		goto fail;
	}

	ret = filelock_take(fd, bd->read_only);
	if (ret == -EBUSY) {
		snprintf(err, errlen, "%s: image is in use by another process (locked)", o->file);
		goto fail;
	} else if (ret) {
		/* e.g. a filesystem without locks: QEMU's locking=auto goes on too */
		pr_warn("%s: cannot lock the image (%s); not protected against concurrent use\n",
			o->file, strerror(-ret));
	}

	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		if (end < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: cannot get the size: %s", o->file, strerror(-ret));
			goto fail;
		}
		size = end;
	} else {
		size = st.st_size;
	}

	if (bd->cache.direct) {
		raw_dio_align(fd, &offset_align, &mem_align);
		if (offset_align > RAW_MAX_DIO_ALIGN || (offset_align & (offset_align - 1)) ||
		    mem_align > RAW_MAX_DIO_ALIGN || (mem_align & (mem_align - 1))) {
			ret = -EINVAL;
			snprintf(err, errlen, "%s: unsupported O_DIRECT alignment %u/%u (use cache=writeback)",
				 o->file, offset_align, mem_align);
			goto fail;
		}
	}

	raw = calloc(1, sizeof(*raw));
	if (!raw) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", o->file);
		goto fail;
	}
	raw->fd = fd;
	raw->direct = bd->cache.direct;
	raw->sync_writes = bd->cache.writethrough;
	raw->mem_align = mem_align;
	bd->priv = raw;
	bd->block_size = offset_align;
	bd->size = ALIGN_DOWN(size, (uint64_t)bd->block_size);
	if (bd->size != size)
		pr_warn("%s: size %llu is not a multiple of %u; the guest sees %llu bytes\n",
			o->file, (unsigned long long)size, bd->block_size,
			(unsigned long long)bd->size);
	return 0;

fail:
	close(fd);
	return ret;
}

static void raw_close(struct blockdev *bd)
{
	struct raw *raw = bd->priv;

	if (!raw)
		return;
	close(raw->fd); /* also drops the locks */
	free(raw);
	bd->priv = NULL;
}

const struct blockdev_ops raw_ops = {
	.format = "raw",
	.open = raw_open,
	.close = raw_close,
	.readv = raw_readv,
	.writev = raw_writev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
};
