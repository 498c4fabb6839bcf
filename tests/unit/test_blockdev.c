// SPDX-License-Identifier: MIT
/*
 * The block layer and the raw driver, on real temporary images under
 * /var/tmp: asynchronous completion, request checks, cache modes, discard
 * and write-zeroes, image locking, many requests in flight, draining.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disk/blockdev.h"
#include "tests/unit/unit.h"

#define MiB (1ULL << 20)

static char image[PATH_MAX];

/* A temporary image of size bytes, removed by the fixture. */
static void make_image_at(char *path, size_t pathlen, const char *dir, uint64_t size)
{
	int fd;

	snprintf(path, pathlen, "%s/minivm-blk-XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	close(fd);
}

static void setup(void)
{
	make_image_at(image, sizeof(image), "/var/tmp", 4 * MiB);
}

static void teardown(void)
{
	unlink(image);
}

/* Opens path with -drive options extra ("" for none); returns the error. */
static int try_open(const char *path, const char *extra, struct blockdev **bd, char *err,
		    size_t errlen)
{
	struct drive_opts o;
	char arg[PATH_MAX + 128];

	snprintf(arg, sizeof(arg), "file=%s%s%s", path, *extra ? "," : "", extra);
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	return blockdev_open(&o, bd, err, errlen);
}

static struct blockdev *open_ok(const char *path, const char *extra)
{
	struct blockdev *bd;
	char err[256] = "";
	int ret = try_open(path, extra, &bd, err, sizeof(err));

	ck_assert_msg(ret == 0, "open %s,%s: %d %s", path, extra, ret, err);
	return bd;
}

/* Completion tracking: requests carry a struct treq, done() counts them. */
struct tracker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int completed;
};

struct treq {
	struct blk_req r;
	struct iovec iov[8];
	int result;
	pthread_t thread;
	struct tracker *t;
};

static void on_done(struct blk_req *r, int result)
{
	struct treq *q = r->opaque;

	pthread_mutex_lock(&q->t->lock);
	q->result = result;
	q->thread = pthread_self();
	q->t->completed++;
	pthread_cond_broadcast(&q->t->cond);
	pthread_mutex_unlock(&q->t->lock);
}

static void tracker_init(struct tracker *t)
{
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->completed = 0;
}

static void tracker_wait(struct tracker *t, int n)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	pthread_mutex_lock(&t->lock);
	while (t->completed < n) {
		int ret = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);

		ck_assert_msg(ret == 0, "timed out: %d of %d requests completed", t->completed, n);
	}
	pthread_mutex_unlock(&t->lock);
}

static void treq_init(struct treq *q, struct tracker *t, enum blk_op op, uint64_t offset)
{
	memset(q, 0, sizeof(*q));
	q->t = t;
	q->r.op = op;
	q->r.offset = offset;
	q->r.iov = q->iov;
	q->r.done = on_done;
	q->r.opaque = q;
	q->result = INT_MIN;
}

/* Submits one request and waits for it: returns done()'s result. */
static int run(struct blockdev *bd, struct treq *q)
{
	int before, ret;

	pthread_mutex_lock(&q->t->lock);
	before = q->t->completed;
	pthread_mutex_unlock(&q->t->lock);
	ret = blockdev_submit(bd, &q->r);
	if (ret)
		return ret;
	tracker_wait(q->t, before + 1);
	return q->result;
}

static int rw1(struct blockdev *bd, enum blk_op op, uint64_t offset, void *buf, size_t len)
{
	struct tracker t;
	struct treq q;

	tracker_init(&t);
	treq_init(&q, &t, op, offset);
	q.iov[0] = (struct iovec){ buf, len };
	q.r.iovcnt = 1;
	return run(bd, &q);
}

static int range_op(struct blockdev *bd, enum blk_op op, uint64_t offset, uint64_t len,
		    bool unmap)
{
	struct tracker t;
	struct treq q;

	tracker_init(&t);
	treq_init(&q, &t, op, offset);
	q.r.len = len;
	q.r.unmap = unmap;
	return run(bd, &q);
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i])
			return false;
	}
	return true;
}

static blkcnt_t blocks_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_blocks;
}

START_TEST(open_reports_geometry)
{
	struct blockdev *bd = open_ok(image, "");

	ck_assert_uint_eq(bd->size, 4 * MiB);
	ck_assert_uint_eq(bd->block_size, 512);
	ck_assert(!bd->read_only);
	ck_assert(!bd->discard);
	ck_assert_str_eq(bd->name, image);
	ck_assert_ptr_eq(bd->ops, &raw_ops);
	blockdev_close(bd);
	blockdev_close(NULL);
}
END_TEST

START_TEST(write_read_multiple_iovecs)
{
	struct blockdev *bd = open_ok(image, "");
	uint8_t src[4096], dst[4096], file[4096];
	struct tracker t;
	struct treq q;
	int fd;

	fill(src, sizeof(src), 1);
	tracker_init(&t);
	treq_init(&q, &t, BLK_WRITE, 8192);
	q.iov[0] = (struct iovec){ src, 512 };
	q.iov[1] = (struct iovec){ src + 512, 1024 };
	q.iov[2] = (struct iovec){ src + 1536, 0 };
	q.iov[3] = (struct iovec){ src + 1536, 2560 };
	q.r.iovcnt = 4;
	ck_assert_int_eq(run(bd, &q), 4096);
	/* completion ran on a worker, not here */
	ck_assert(!pthread_equal(q.thread, pthread_self()));

	memset(dst, 0xee, sizeof(dst));
	treq_init(&q, &t, BLK_READ, 8192);
	q.iov[0] = (struct iovec){ dst, 3000 };
	q.iov[1] = (struct iovec){ dst + 3000, 1096 };
	q.r.iovcnt = 2;
	ck_assert_int_eq(run(bd, &q), 4096);
	ck_assert_mem_eq(src, dst, sizeof(src));
	blockdev_close(bd);

	/* and it is really at byte 8192 of the file */
	fd = open(image, O_RDONLY);
	ck_assert_int_eq(pread(fd, file, sizeof(file), 8192), (ssize_t)sizeof(file));
	ck_assert_mem_eq(src, file, sizeof(src));
	ck_assert_int_eq(pread(fd, file, 512, 8192 - 512), 512);
	ck_assert(all_zero(file, 512));
	close(fd);
}
END_TEST

/* More iovecs than one preadv() takes: the driver continues on its own. */
START_TEST(more_than_iov_max)
{
	struct blockdev *bd = open_ok(image, "");
	const int n = 2 * IOV_MAX + 3;
	uint8_t *src = malloc(n * 512), *dst = calloc(n, 512);
	struct iovec *iov = calloc(n, sizeof(*iov));
	struct tracker t;
	struct treq q;

	fill(src, n * 512, 2);
	tracker_init(&t);
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ src + i * 512, 512 };
	treq_init(&q, &t, BLK_WRITE, 0);
	q.r.iov = iov;
	q.r.iovcnt = n;
	ck_assert_int_eq(run(bd, &q), n * 512);
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ dst + i * 512, 512 };
	treq_init(&q, &t, BLK_READ, 0);
	q.r.iov = iov;
	q.r.iovcnt = n;
	ck_assert_int_eq(run(bd, &q), n * 512);
	ck_assert_mem_eq(src, dst, n * 512);
	blockdev_close(bd);
	free(iov);
	free(src);
	free(dst);
}
END_TEST

/* Empty segments, even more than IOV_MAX of them, are skipped. */
START_TEST(empty_segments)
{
	struct blockdev *bd = open_ok(image, "");
	const int n = IOV_MAX + 5;
	struct iovec *iov = calloc(n + 1, sizeof(*iov));
	uint8_t src[512], dst[512];
	struct tracker t;
	struct treq q;

	fill(src, sizeof(src), 8);
	for (int i = 0; i < n; i++)
		iov[i] = (struct iovec){ src, 0 };
	iov[n] = (struct iovec){ src, 512 };
	tracker_init(&t);
	treq_init(&q, &t, BLK_WRITE, 512);
	q.r.iov = iov;
	q.r.iovcnt = n + 1;
	ck_assert_int_eq(run(bd, &q), 512);
	ck_assert_int_eq(rw1(bd, BLK_READ, 512, dst, 512), 512);
	ck_assert_mem_eq(src, dst, 512);
	blockdev_close(bd);
	free(iov);
}
END_TEST

/*
 * The image shrinks under us: the read comes back short in the middle of a
 * segment, the driver continues there, meets end-of-file and reads zeros.
 */
START_TEST(image_truncated_under_us)
{
	struct blockdev *bd = open_ok(image, "");
	uint8_t src[8192], dst[8192];

	fill(src, sizeof(src), 9);
	ck_assert_int_eq(rw1(bd, BLK_WRITE, 0, src, sizeof(src)), sizeof(src));
	ck_assert_int_eq(truncate(image, 4196), 0);
	memset(dst, 0xff, sizeof(dst));
	ck_assert_int_eq(rw1(bd, BLK_READ, 0, dst, sizeof(dst)), sizeof(dst));
	ck_assert_mem_eq(dst, src, 4196);
	ck_assert(all_zero(dst + 4196, sizeof(dst) - 4196));
	blockdev_close(bd);
}
END_TEST

static void dummy_done(struct blk_req *r, int result)
{
	(void)r;
	(void)result;
	ck_abort_msg("done() called for a refused request");
}

START_TEST(refused_requests)
{
	struct blockdev *bd = open_ok(image, "discard=unmap");
	static uint8_t buf[2 * MiB];
	struct iovec iov[2] = { { buf, 512 }, { buf, 512 } };
	struct blk_req r = { .iov = iov, .iovcnt = 1, .done = dummy_done };
	struct stat before, after;

	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(stat(image, &before), 0);
	/* beyond the end */
	r.op = BLK_WRITE;
	r.offset = 4 * MiB;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.offset = 4 * MiB - 512;
	r.iovcnt = 2;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.op = BLK_READ;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	/* offset + len wraps around */
	r.iovcnt = 1;
	r.offset = UINT64_MAX - 511;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.offset = UINT64_MAX & ~511ULL;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	/* not a whole number of blocks */
	r.offset = 100;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.offset = 0;
	iov[0].iov_len = 100;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	iov[0].iov_len = 512;
	/* nonsense */
	r.iovcnt = -1;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.iovcnt = 1;
	r.iov = NULL;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.iov = iov;
	r.op = 77;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.op = BLK_READ;
	r.done = NULL;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.done = dummy_done;
	/* more than BLOCKDEV_MAX_RW in one request, and lengths that would wrap */
	iov[0] = (struct iovec){ buf, BLOCKDEV_MAX_RW };
	iov[1] = (struct iovec){ buf, 512 };
	r.iovcnt = 2;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	iov[0].iov_len = SIZE_MAX - 511;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	/* range operations beyond the end */
	r.iovcnt = 0;
	r.op = BLK_DISCARD;
	r.offset = 2 * MiB;
	r.len = 2 * MiB + 512;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.op = BLK_WRITE_ZEROES;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.len = UINT64_MAX & ~511ULL;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	r.len = 256;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EINVAL);
	blockdev_close(bd);

	/* none of that touched the file */
	ck_assert_int_eq(stat(image, &after), 0);
	ck_assert_int_eq(before.st_size, after.st_size);
	ck_assert_int_eq(before.st_blocks, after.st_blocks);
	ck_assert_int_eq(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	ck_assert_int_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
}
END_TEST

START_TEST(edges_and_empty_requests)
{
	struct blockdev *bd = open_ok(image, "");
	uint8_t buf[512];
	struct tracker t;
	struct treq q;

	/* the last block, and empty requests at the very end */
	fill(buf, sizeof(buf), 3);
	ck_assert_int_eq(rw1(bd, BLK_WRITE, 4 * MiB - 512, buf, 512), 512);
	ck_assert_int_eq(rw1(bd, BLK_READ, 4 * MiB - 512, buf, 512), 512);
	ck_assert_int_eq(rw1(bd, BLK_READ, 4 * MiB, buf, 0), 0);
	tracker_init(&t);
	treq_init(&q, &t, BLK_READ, 0);
	ck_assert_int_eq(run(bd, &q), 0);
	ck_assert_int_eq(range_op(bd, BLK_WRITE_ZEROES, 4 * MiB, 0, false), 0);
	blockdev_close(bd);
}
END_TEST

START_TEST(read_only)
{
	struct blockdev *bd;
	uint8_t buf[512];
	struct blk_req r = { .op = BLK_WRITE, .iovcnt = 1, .done = dummy_done };
	struct iovec iov = { buf, 512 };
	int fd;

	fd = open(image, O_WRONLY);
	fill(buf, sizeof(buf), 4);
	ck_assert_int_eq(pwrite(fd, buf, 512, 1024), 512);
	close(fd);

	bd = open_ok(image, "readonly=on,discard=unmap");
	ck_assert(bd->read_only);
	r.iov = &iov;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EROFS);
	r.op = BLK_DISCARD;
	r.iovcnt = 0;
	r.len = 512;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EROFS);
	r.op = BLK_WRITE_ZEROES;
	ck_assert_int_eq(blockdev_submit(bd, &r), -EROFS);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(rw1(bd, BLK_READ, 1024, buf, 512), 512);
	{
		uint8_t want[512];

		fill(want, sizeof(want), 4);
		ck_assert_mem_eq(buf, want, 512);
	}
	ck_assert_int_eq(range_op(bd, BLK_FLUSH, 0, 0, false), 0);
	blockdev_close(bd);
}
END_TEST

START_TEST(flush_in_every_cache_mode)
{
	const char *modes[] = { "cache=writeback", "cache=writethrough", "cache=unsafe",
				"cache=none", "cache=directsync" };
	static uint8_t buf[8192] __attribute__((aligned(4096)));
	static uint8_t back[8192] __attribute__((aligned(4096)));

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct blockdev *bd = open_ok(image, modes[i]);

		fill(buf, sizeof(buf), 10 + i);
		ck_assert_int_eq(rw1(bd, BLK_WRITE, 65536 * i, buf, sizeof(buf)), sizeof(buf));
		ck_assert_int_eq(range_op(bd, BLK_FLUSH, 0, 0, false), 0);
		ck_assert_int_eq(rw1(bd, BLK_READ, 65536 * i, back, sizeof(back)), sizeof(back));
		ck_assert_mem_eq(buf, back, sizeof(buf));
		blockdev_close(bd);
	}
}
END_TEST

/* O_DIRECT with guest buffers at odd addresses: bounced, not refused. */
START_TEST(direct_misaligned_buffers)
{
	struct blockdev *bd = open_ok(image, "cache=none");
	uint8_t *src = malloc(3 * MiB + 1), *dst = malloc(3 * MiB + 1);
	struct tracker t;
	struct treq q;

	ck_assert(bd->cache.direct);
	fill(src, 3 * MiB + 1, 5);
	tracker_init(&t);
	treq_init(&q, &t, BLK_WRITE, 4096);
	q.iov[0] = (struct iovec){ src + 1, 512 };
	q.iov[1] = (struct iovec){ src + 513, 3 * MiB - 512 };
	q.r.iovcnt = 2;
	ck_assert_int_eq(run(bd, &q), 3 * MiB);
	memset(dst, 0, 3 * MiB + 1);
	treq_init(&q, &t, BLK_READ, 4096);
	q.iov[0] = (struct iovec){ dst + 1, 3 * MiB - 1024 };
	q.iov[1] = (struct iovec){ dst + 1 + 3 * MiB - 1024, 1024 };
	q.r.iovcnt = 2;
	ck_assert_int_eq(run(bd, &q), 3 * MiB);
	ck_assert_mem_eq(src + 1, dst + 1, 3 * MiB);
	blockdev_close(bd);
	free(src);
	free(dst);
}
END_TEST

START_TEST(discard_punches_hole)
{
	static uint8_t buf[MiB];
	struct blockdev *bd;
	blkcnt_t full, after;

	/* discard=ignore (the default): the data stays */
	bd = open_ok(image, "");
	fill(buf, sizeof(buf), 6);
	ck_assert_int_eq(rw1(bd, BLK_WRITE, MiB, buf, MiB), MiB);
	ck_assert_int_eq(range_op(bd, BLK_FLUSH, 0, 0, false), 0);
	full = blocks_of(image);
	ck_assert_int_ge(full, MiB / 512);
	ck_assert_int_eq(range_op(bd, BLK_DISCARD, MiB, MiB, false), 0);
	ck_assert_int_eq(blocks_of(image), full);
	blockdev_close(bd);

	bd = open_ok(image, "discard=unmap");
	ck_assert(bd->discard);
	ck_assert_int_eq(range_op(bd, BLK_DISCARD, MiB, MiB / 2, false), 0);
	after = blocks_of(image);
	ck_assert_msg(after < full, "st_blocks %ld -> %ld", (long)full, (long)after);
	ck_assert_int_eq(rw1(bd, BLK_READ, MiB, buf, MiB), MiB);
	ck_assert(all_zero(buf, MiB / 2));
	{
		static uint8_t want[MiB];

		fill(want, sizeof(want), 6);
		ck_assert_mem_eq(buf + MiB / 2, want + MiB / 2, MiB / 2);
	}
	ck_assert_uint_eq(bd->size, 4 * MiB); /* size kept */
	blockdev_close(bd);
}
END_TEST

START_TEST(write_zeroes_reads_back_zeros)
{
	static uint8_t buf[MiB], want[MiB];
	struct blockdev *bd = open_ok(image, "discard=unmap");
	blkcnt_t full;

	fill(want, sizeof(want), 7);
	ck_assert_int_eq(rw1(bd, BLK_WRITE, 0, want, MiB), MiB);
	ck_assert_int_eq(range_op(bd, BLK_FLUSH, 0, 0, false), 0);
	full = blocks_of(image);
	/* without unmap: ZERO_RANGE */
	ck_assert_int_eq(range_op(bd, BLK_WRITE_ZEROES, 4096, 8192, false), 0);
	ck_assert_int_eq(rw1(bd, BLK_READ, 0, buf, MiB), MiB);
	ck_assert_mem_eq(buf, want, 4096);
	ck_assert(all_zero(buf + 4096, 8192));
	ck_assert_mem_eq(buf + 12288, want + 12288, MiB - 12288);
	/* with unmap: the blocks go too */
	ck_assert_int_eq(range_op(bd, BLK_WRITE_ZEROES, MiB / 2, MiB / 2, true), 0);
	ck_assert_int_lt(blocks_of(image), full);
	ck_assert_int_eq(rw1(bd, BLK_READ, 0, buf, MiB), MiB);
	ck_assert(all_zero(buf + MiB / 2, MiB / 2));
	ck_assert_mem_eq(buf + 12288, want + 12288, MiB / 2 - 12288);
	blockdev_close(bd);

	/* cache=directsync takes the same paths with O_DIRECT|O_DSYNC */
	bd = open_ok(image, "cache=directsync");
	ck_assert_int_eq(range_op(bd, BLK_WRITE_ZEROES, 0, 4096, true), 0);
	ck_assert_int_eq(rw1(bd, BLK_READ, 0, buf, 4096), 4096);
	ck_assert(all_zero(buf, 4096));
	blockdev_close(bd);
}
END_TEST

static void ck_locked(const char *extra)
{
	struct blockdev *bd = NULL;
	char err[256] = "";

	ck_assert_int_eq(try_open(image, extra, &bd, err, sizeof(err)), -EBUSY);
	ck_assert_ptr_null(bd);
	ck_assert_msg(strstr(err, "image is in use by another process (locked)"), "%s", err);
	ck_assert_ptr_nonnull(strstr(err, image));
}

START_TEST(lock_in_one_process)
{
	struct blockdev *rw, *ro1, *ro2;

	/* read-write excludes everybody */
	rw = open_ok(image, "");
	ck_locked("");
	ck_locked("readonly=on");
	blockdev_close(rw);

	/* readers share, and exclude writers */
	ro1 = open_ok(image, "readonly=on");
	ro2 = open_ok(image, "readonly=on");
	ck_locked("");
	blockdev_close(ro1);
	ck_locked("");
	blockdev_close(ro2);

	/* closing released everything */
	rw = open_ok(image, "");
	blockdev_close(rw);
}
END_TEST

/* Another process, as a second minivm would be. */
static int child_open(const char *extra)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct blockdev *bd;
		char err[256];
		int ret = try_open(image, extra, &bd, err, sizeof(err));

		if (!ret)
			blockdev_close(bd);
		_exit(ret == -EBUSY && strstr(err, "(locked)") ? 1 : ret ? 2 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(lock_across_processes)
{
	struct blockdev *bd = open_ok(image, "");

	ck_assert_int_eq(child_open(""), 1);
	ck_assert_int_eq(child_open("readonly=on"), 1);
	blockdev_close(bd);
	ck_assert_int_eq(child_open(""), 0);

	bd = open_ok(image, "readonly=on");
	ck_assert_int_eq(child_open("readonly=on"), 0);
	ck_assert_int_eq(child_open(""), 1);
	blockdev_close(bd);
}
END_TEST

/* What the lock looks like from outside: QEMU's byte numbers (see raw.c). */
static short lock_seen(int fd, short type, off_t byte)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	ck_assert_int_eq(fcntl(fd, F_OFD_GETLK, &fl), 0);
	return fl.l_type;
}

START_TEST(lock_bytes_as_qemu)
{
	int fd = open(image, O_RDWR);
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 101, .l_len = 1 };
	struct blockdev *bd;

	bd = open_ok(image, "");
	ck_assert_int_eq(lock_seen(fd, F_RDLCK, 101), F_WRLCK);
	ck_assert_int_eq(lock_seen(fd, F_RDLCK, 201), F_WRLCK);
	ck_assert_int_eq(lock_seen(fd, F_WRLCK, 100), F_UNLCK);
	blockdev_close(bd);

	bd = open_ok(image, "readonly=on");
	ck_assert_int_eq(lock_seen(fd, F_WRLCK, 201), F_RDLCK);
	ck_assert_int_eq(lock_seen(fd, F_WRLCK, 101), F_UNLCK);
	blockdev_close(bd);

	/* a QEMU writer holds a shared lock on byte 101 */
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	ck_locked("");
	ck_locked("readonly=on");
	close(fd);
	bd = open_ok(image, "");
	blockdev_close(bd);
}
END_TEST

#define NR_INFLIGHT 256
#define BLK 4096

/* 256 writes submitted at once, to distinct offsets; then 256 reads. */
START_TEST(many_in_flight)
{
	struct blockdev *bd = open_ok(image, "");
	struct treq *q = calloc(NR_INFLIGHT, sizeof(*q));
	uint8_t *buf = malloc(NR_INFLIGHT * BLK), *want = malloc(BLK);
	struct tracker t;
	int fd;

	tracker_init(&t);
	for (int i = 0; i < NR_INFLIGHT; i++) {
		/* spread out, in an order that is not sequential */
		uint64_t slot = (i * 97) % NR_INFLIGHT;

		fill(buf + i * BLK, BLK, 100 + i);
		treq_init(&q[i], &t, BLK_WRITE, slot * BLK * 4);
		q[i].iov[0] = (struct iovec){ buf + i * BLK, BLK };
		q[i].r.iovcnt = 1;
	}
	for (int i = 0; i < NR_INFLIGHT; i++)
		ck_assert_int_eq(blockdev_submit(bd, &q[i].r), 0);
	tracker_wait(&t, NR_INFLIGHT);
	for (int i = 0; i < NR_INFLIGHT; i++)
		ck_assert_int_eq(q[i].result, BLK);

	/* check through the file, then through reads in flight together */
	fd = open(image, O_RDONLY);
	for (int i = 0; i < NR_INFLIGHT; i++) {
		uint8_t got[BLK];

		fill(want, BLK, 100 + i);
		ck_assert_int_eq(pread(fd, got, BLK, q[i].r.offset), BLK);
		ck_assert_mem_eq(got, want, BLK);
	}
	close(fd);
	memset(buf, 0, NR_INFLIGHT * BLK);
	tracker_init(&t);
	for (int i = 0; i < NR_INFLIGHT; i++) {
		uint64_t offset = q[i].r.offset;

		treq_init(&q[i], &t, BLK_READ, offset);
		q[i].iov[0] = (struct iovec){ buf + i * BLK, BLK };
		q[i].r.iovcnt = 1;
		ck_assert_int_eq(blockdev_submit(bd, &q[i].r), 0);
	}
	tracker_wait(&t, NR_INFLIGHT);
	for (int i = 0; i < NR_INFLIGHT; i++) {
		fill(want, BLK, 100 + i);
		ck_assert_int_eq(q[i].result, BLK);
		ck_assert_mem_eq(buf + i * BLK, want, BLK);
	}
	blockdev_close(bd);
	free(q);
	free(buf);
	free(want);
}
END_TEST

static atomic_int drained_count;

static void count_done(struct blk_req *r, int result)
{
	ck_assert_int_eq(result, BLK);
	(void)r;
	usleep(1000); /* slow completions, so close really has to wait */
	atomic_fetch_add(&drained_count, 1);
}

START_TEST(close_drains)
{
	struct drive_opts o;
	struct blockdev *bd;
	static struct blk_req r[64];
	static struct iovec iov[64];
	static uint8_t buf[64][BLK];
	char err[256];

	ck_assert_int_eq(drive_parse("file=x", &o), 0);
	snprintf(o.file, sizeof(o.file), "%s", image);
	o.workers = 2;
	ck_assert_int_eq(blockdev_open(&o, &bd, err, sizeof(err)), 0);
	atomic_store(&drained_count, 0);
	for (int i = 0; i < 64; i++) {
		iov[i] = (struct iovec){ buf[i], BLK };
		r[i] = (struct blk_req){ .op = BLK_WRITE, .offset = i * BLK, .iov = &iov[i],
					 .iovcnt = 1, .done = count_done };
		ck_assert_int_eq(blockdev_submit(bd, &r[i]), 0);
	}
	blockdev_close(bd);
	ck_assert_int_eq(atomic_load(&drained_count), 64);
}
END_TEST

/* A done() that submits the next request: chains must work and drain. */
struct chain {
	struct blockdev *bd;
	struct blk_req r;
	struct iovec iov;
	uint8_t buf[512];
	atomic_int left;
};

static void chain_done(struct blk_req *r, int result)
{
	struct chain *c = r->opaque;

	ck_assert_int_eq(result, 512);
	if (atomic_fetch_sub(&c->left, 1) > 1) {
		r->offset += 512;
		ck_assert_int_eq(blockdev_submit(c->bd, r), 0);
	}
}

START_TEST(resubmit_from_done)
{
	static struct chain c;

	c.bd = open_ok(image, "");
	c.iov = (struct iovec){ c.buf, 512 };
	c.r = (struct blk_req){ .op = BLK_WRITE, .iov = &c.iov, .iovcnt = 1, .done = chain_done,
				.opaque = &c };
	atomic_store(&c.left, 100);
	ck_assert_int_eq(blockdev_submit(c.bd, &c.r), 0);
	blockdev_drain(c.bd);
	ck_assert_int_eq(atomic_load(&c.left), 0);
	ck_assert_uint_eq(c.r.offset, 99 * 512);
	blockdev_close(c.bd);
}
END_TEST

static void ck_open_fails(const char *path, const char *extra, int err_want, const char *in_msg)
{
	struct blockdev *bd = NULL;
	char err[512] = "";

	ck_assert_int_eq(try_open(path, extra, &bd, err, sizeof(err)), err_want);
	ck_assert_ptr_null(bd);
	ck_assert_msg(strstr(err, in_msg), "'%s' lacks '%s'", err, in_msg);
}

START_TEST(refused_images)
{
	char missing[PATH_MAX + 16], dir[] = "/var/tmp/minivm-dir-XXXXXX";

	snprintf(missing, sizeof(missing), "%s.missing", image);
	ck_open_fails(missing, "", -ENOENT, missing);
	ck_open_fails(missing, "", -ENOENT, "No such file");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_open_fails(dir, "", -EISDIR, "is a directory");
	ck_open_fails(dir, "readonly=on", -EISDIR, "is a directory");
	rmdir(dir);
	ck_open_fails("/dev/null", "", -EINVAL, "not a regular file or block device");
	ck_open_fails(image, "format=qcow2", -EINVAL, "not a qcow2 image");
}
END_TEST

START_TEST(worker_count)
{
	struct drive_opts o;
	struct blockdev *bd;
	char err[256];
	uint8_t buf[512];

	ck_assert_int_eq(drive_parse("file=x", &o), 0);
	snprintf(o.file, sizeof(o.file), "%s", image);
	o.workers = 1;
	ck_assert_int_eq(blockdev_open(&o, &bd, err, sizeof(err)), 0);
	ck_assert_int_eq(rw1(bd, BLK_READ, 0, buf, 512), 512);
	blockdev_close(bd);
	o.workers = BLOCKDEV_MAX_WORKERS + 1;
	ck_assert_int_eq(blockdev_open(&o, &bd, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(odd_size_rounds_down)
{
	struct blockdev *bd;

	ck_assert_int_eq(truncate(image, 1000), 0);
	bd = open_ok(image, "");
	ck_assert_uint_eq(bd->size, 512);
	blockdev_close(bd);
}
END_TEST

/*
 * cache=none on a filesystem without O_DIRECT: a clear error. tmpfs refused
 * O_DIRECT before Linux 6.6; ramfs still does, so mount one in a private
 * mount namespace when we may (root), else use /dev/shm as it is.
 */
START_TEST(direct_refused_by_filesystem)
{
	char dir[] = "/var/tmp/minivm-ramfs-XXXXXX";
	char path[PATH_MAX];
	const char *where = "/dev/shm";
	struct blockdev *bd = NULL;
	char err[512] = "";
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
	    mount("minivm-test", dir, "ramfs", 0, NULL) == 0)
		where = dir;
	make_image_at(path, sizeof(path), where, MiB);
	ret = try_open(path, "cache=none", &bd, err, sizeof(err));
	if (where == dir) {
		ck_assert_int_eq(ret, -EINVAL);
		ck_assert_ptr_null(bd);
		ck_assert_msg(strstr(err, "cache=none needs O_DIRECT"), "%s", err);
		ck_assert_ptr_nonnull(strstr(err, path));
		/* the other modes are fine there */
		bd = open_ok(path, "cache=writethrough");
		blockdev_close(bd);
	} else if (ret) {
		ck_assert_int_eq(ret, -EINVAL);
		ck_assert_msg(strstr(err, "cache=none needs O_DIRECT"), "%s", err);
	} else {
		fprintf(stderr, "note: %s takes O_DIRECT and ramfs could not be mounted\n", where);
		blockdev_close(bd);
	}
	unlink(path);
	if (where == dir)
		umount(dir);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blockdev");
	TCase *tc = tcase_create("raw");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_reports_geometry);
	tcase_add_test(tc, write_read_multiple_iovecs);
	tcase_add_test(tc, more_than_iov_max);
	tcase_add_test(tc, empty_segments);
	tcase_add_test(tc, image_truncated_under_us);
	tcase_add_test(tc, refused_requests);
	tcase_add_test(tc, edges_and_empty_requests);
	tcase_add_test(tc, read_only);
	tcase_add_test(tc, flush_in_every_cache_mode);
	tcase_add_test(tc, direct_misaligned_buffers);
	tcase_add_test(tc, discard_punches_hole);
	tcase_add_test(tc, write_zeroes_reads_back_zeros);
	tcase_add_test(tc, lock_in_one_process);
	tcase_add_test(tc, lock_across_processes);
	tcase_add_test(tc, lock_bytes_as_qemu);
	tcase_add_test(tc, many_in_flight);
	tcase_add_test(tc, close_drains);
	tcase_add_test(tc, resubmit_from_done);
	tcase_add_test(tc, refused_images);
	tcase_add_test(tc, worker_count);
	tcase_add_test(tc, odd_size_rounds_down);
	tcase_add_test(tc, direct_refused_by_filesystem);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
