// SPDX-License-Identifier: MIT
/*
 * QEMU's image locking protocol (block/file-posix.c, raw_apply_lock_bytes),
 * used for raw and qcow2 images alike. With open file description locks (per
 * open(), not per process, so two opens in one process conflict too), a
 * user that holds permission P takes a shared lock on byte 100 + P, and a
 * user that will not share P with others takes a shared lock on byte
 * 200 + P; both check the other byte for conflicts. P = 1 is "write".
 * minivm takes:
 *   read-write: exclusive locks on bytes 101 and 201: nobody else may write
 *               (101), and anyone who refuses writers (201) conflicts;
 *   read-only:  a shared lock on byte 201 (we refuse writers, share with
 *               readers) and a check that nobody holds byte 101.
 * Checked against qemu-io 7.2: a QEMU writer and minivm refuse each other
 * either way round. QEMU's read-only users (qemu-io -r, qemu-img info) share
 * "write" by QEMU's own rules, so they can look at an image minivm is using,
 * as they can with a running QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "disk/filelock.h"

#define FILELOCK_WRITE 101         /* QEMU: RAW_LOCK_PERM_BASE + "write" */
#define FILELOCK_UNSHARE_WRITE 201 /* QEMU: RAW_LOCK_SHARED_BASE + "write" */

static int ofd_lock(int fd, short type, off_t byte)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	return fcntl(fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

/* Whether another open file description holds a lock on byte. */
static int ofd_locked(int fd, off_t byte)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl))
		return -errno;
	return fl.l_type != F_UNLCK ? -EBUSY : 0;
}

int filelock_take(int fd, bool read_only)
{
	int ret;

	if (read_only) {
		ret = ofd_lock(fd, F_RDLCK, FILELOCK_UNSHARE_WRITE);
		if (!ret)
			ret = ofd_locked(fd, FILELOCK_WRITE);
	} else {
		ret = ofd_lock(fd, F_WRLCK, FILELOCK_WRITE);
		if (!ret)
			ret = ofd_lock(fd, F_WRLCK, FILELOCK_UNSHARE_WRITE);
	}
	/* fcntl() says EAGAIN or EACCES for a conflicting lock */
	return ret == -EAGAIN || ret == -EACCES ? -EBUSY : ret;
}
