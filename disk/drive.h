/* SPDX-License-Identifier: MIT */
/*
 * -drive, spelled as QEMU spells it:
 *
 *   -drive file=disk.img,if=virtio,format=raw,cache=none,readonly=on,serial=X
 *
 * Items are comma-separated key=value pairs. As in QEMU, ",," inside an item
 * is a literal comma, so "file=a,,b.img" names the file "a,b.img". A key
 * given twice keeps its last value (QEMU does the same). Keys minivm does not
 * know, and values it cannot honour, are refused by name, so a command line
 * copied from QEMU either means the same here or fails loudly.
 *
 * Defaults follow QEMU: if=virtio (QEMU's default is ide; minivm has only
 * virtio), cache=writeback, readonly=off, discard=ignore, aio=threads, and
 * format= absent means probed by magic (qcow2 or raw; a probed raw image
 * refuses guest writes that would give it a qcow2 magic, see image.h).
 * discard=ignore is QEMU's default and is kept so that a QEMU command line
 * behaves the same; pass discard=unmap to let the guest punch holes.
 */
#ifndef MINIVM_DISK_DRIVE_H
#define MINIVM_DISK_DRIVE_H

#include <limits.h>
#include <stdbool.h>

#define DRIVE_SERIAL_MAX 20 /* VIRTIO_BLK_ID_BYTES: the GET_ID reply is 20 bytes */
#define DRIVE_ID_MAX 31
#define DRIVE_ERR_MAX 128

enum drive_if {
	DRIVE_IF_VIRTIO,
};

enum drive_format {
	DRIVE_FORMAT_RAW,
	DRIVE_FORMAT_QCOW2,
};

/* QEMU's cache modes; drive_cache_flags() says what each one means. */
enum drive_cache_mode {
	DRIVE_CACHE_WRITEBACK,
	DRIVE_CACHE_NONE,
	DRIVE_CACHE_WRITETHROUGH,
	DRIVE_CACHE_DIRECTSYNC,
	DRIVE_CACHE_UNSAFE,
};

enum drive_discard {
	DRIVE_DISCARD_IGNORE, /* discard requests succeed and do nothing */
	DRIVE_DISCARD_UNMAP,  /* discard requests deallocate (punch holes) */
};

/* Accepted for QEMU compatibility; the backend always uses its thread pool. */
enum drive_aio {
	DRIVE_AIO_THREADS,
	DRIVE_AIO_IO_URING,
	DRIVE_AIO_NATIVE,
};

struct drive_opts {
	char file[PATH_MAX];          /* with ",," already turned into "," */
	enum drive_if iface;
	enum drive_format format;
	bool format_given;            /* false: format= absent, probed by magic */
	enum drive_cache_mode cache;
	bool read_only;
	char serial[DRIVE_SERIAL_MAX + 1]; /* "" when not given */
	char id[DRIVE_ID_MAX + 1];    /* "" when not given */
	enum drive_discard discard;
	enum drive_aio aio;
	/*
	 * Not a -drive key: worker threads for this drive's backend, 0 for
	 * BLOCKDEV_DEFAULT_WORKERS. Set by code (tests, benchmarks).
	 */
	unsigned workers;
	char err[DRIVE_ERR_MAX];      /* one line naming the key, after -EINVAL */
};

/* What a cache mode asks of the host, in QEMU's meanings. */
struct drive_cache {
	bool direct;       /* bypass the host page cache: O_DIRECT */
	bool writethrough; /* each write is durable when it completes: O_DSYNC */
	bool no_flush;     /* flush requests succeed without syncing */
};

/* Fills o with the defaults above. drive_parse() calls it first. */
void drive_opts_init(struct drive_opts *o);

/*
 * Parses one -drive argument into o. Returns 0, or -EINVAL with o->err set to
 * one line that names the offending key (the caller prints it).
 */
int drive_parse(const char *arg, struct drive_opts *o);

/*
 *   mode          direct  writethrough  no_flush
 *   writeback     -       -             -        page cache; flush = fdatasync
 *   none          yes     -             -        O_DIRECT; flush honoured
 *   writethrough  -       yes           -        page cache; each write durable
 *   directsync    yes     yes           -        O_DIRECT; each write durable
 *   unsafe        -       -             yes      page cache; flushes ignored
 */
struct drive_cache drive_cache_flags(enum drive_cache_mode mode);

/* "writeback", "none", ...: the -drive spelling of each value. */
const char *drive_cache_name(enum drive_cache_mode mode);
const char *drive_format_name(enum drive_format format);

#endif
