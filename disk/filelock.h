/* SPDX-License-Identifier: MIT */
/*
 * QEMU-compatible image locking (block/file-posix.c's protocol), shared by
 * every format so that minivm and QEMU refuse each other whatever the
 * format: open file description locks, which belong to one open() and so
 * also conflict between two opens in one process.
 */
#ifndef MINIVM_DISK_FILELOCK_H
#define MINIVM_DISK_FILELOCK_H

#include <stdbool.h>

/*
 * Takes the locks for a reader (read_only) or a writer on fd. Returns 0,
 * -EBUSY when someone else holds the image in a conflicting way, or another
 * -errno when the filesystem cannot lock at all.
 */
int filelock_take(int fd, bool read_only);

#endif
