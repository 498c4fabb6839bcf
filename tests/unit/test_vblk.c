// SPDX-License-Identifier: MIT
/*
 * virtio-blk. The request parser on chains built by hand over real guest
 * memory; the config space; and the whole device on a real raw image under
 * /var/tmp, driven through a split ring in guest memory by a small test
 * "driver", with a fake transport: this file defines the two transport
 * calls blk.c makes, virtio_push_and_notify() and virtio_set_needs_reset(),
 * so virtio/pci.c is never linked in.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "virtio/blk.h"
#include "vmm/memory.h"
#include "tests/unit/unit.h"

#define MiB (1ULL << 20)
#define RAM_SIZE (16 * MiB)
#define IMAGE_SIZE (4 * MiB)
#define CAPACITY (IMAGE_SIZE / 512)

/* Guest memory layout */
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x20000ULL
#define USED_GPA 0x30000ULL
#define HDR_GPA 0x100000ULL    /* request headers, 64 bytes apart */
#define STATUS_GPA 0x180000ULL /* status bytes, 16 apart */
#define DATA_GPA 0x200000ULL   /* data */
#define DATA2_GPA 0x800000ULL
#define QSIZE 256

static struct guest_mem mem;
static char image[PATH_MAX];
static struct blockdev *bd;
static struct virtio_blk blk;
static struct virtq_chain chain;
static struct virtio_blk_req req;

/* ---- the fake transport ---- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int pushes;
	unsigned int needs_reset;
	const char *why;
	bool gate;               /* pushes wait while it is closed */
	unsigned int at_gate;
} fake = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, false, 0 };

int virtio_push_and_notify(struct virtio_dev *v, unsigned q, uint16_t head, uint32_t len)
{
	struct virtio_queue *vq = &v->queues[q];
	int ret;

	pthread_mutex_lock(&fake.lock);
	fake.at_gate++;
	pthread_cond_broadcast(&fake.cond);
	while (fake.gate)
		pthread_cond_wait(&fake.cond, &fake.lock);
	fake.at_gate--;
	pthread_mutex_unlock(&fake.lock);

	pthread_mutex_lock(&vq->lock);
	ret = virtq_push(&vq->vq, head, len);
	pthread_mutex_unlock(&vq->lock);
	pthread_mutex_lock(&fake.lock);
	fake.pushes++;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
	return ret;
}

void virtio_set_needs_reset(struct virtio_dev *v, const char *why)
{
	(void)v;
	pthread_mutex_lock(&fake.lock);
	fake.needs_reset++;
	fake.why = why;
	pthread_mutex_unlock(&fake.lock);
}

static unsigned int pushes(void)
{
	unsigned int n;

	pthread_mutex_lock(&fake.lock);
	n = fake.pushes;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

static void wait_pushes(unsigned int n)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	pthread_mutex_lock(&fake.lock);
	while (fake.pushes < n) {
		int ret = pthread_cond_timedwait(&fake.cond, &fake.lock, &deadline);

		ck_assert_msg(ret == 0, "timed out: %u of %u requests completed", fake.pushes, n);
	}
	pthread_mutex_unlock(&fake.lock);
}

/* ---- guest memory and the image ---- */

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = guest_ptr(&mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint32_t t = htole32(type), res = 0;
	uint64_t s = htole64(sector);
	uint8_t *p = gp(gpa, 16);

	memcpy(p, &t, 4);
	memcpy(p + 4, &res, 4);
	memcpy(p + 8, &s, 8);
}

static void put_seg(uint64_t gpa, uint64_t sector, uint32_t num, uint32_t flags)
{
	uint8_t *p = gp(gpa, 16);

	sector = htole64(sector);
	num = htole32(num);
	flags = htole32(flags);
	memcpy(p, &sector, 8);
	memcpy(p + 8, &num, 4);
	memcpy(p + 12, &flags, 4);
}

static uint8_t get8(uint64_t gpa)
{
	return *(uint8_t *)gp(gpa, 1);
}

static void image_pwrite(const void *buf, size_t len, uint64_t off)
{
	int fd = open(image, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void image_pread(void *buf, size_t len, uint64_t off)
{
	int fd = open(image, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void fill(void *p, size_t len, unsigned int seed)
{
	uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/*
 * Opens the image with -drive options extra ("" for none) and creates the
 * device; workers: the block layer's threads, 0 for the default.
 */
static void dev_open_workers(const char *extra, unsigned int workers)
{
	struct drive_opts o;
	char arg[PATH_MAX + 128], err[256] = "";
	int ret;

	snprintf(arg, sizeof(arg), "file=%s,format=raw%s%s", image, *extra ? "," : "", extra);
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	o.workers = workers;
	ret = blockdev_open(&o, &bd, err, sizeof(err));
	ck_assert_msg(ret == 0, "blockdev_open %s: %d %s", arg, ret, err);
	ck_assert_int_eq(virtio_blk_init(&blk, bd, &o), 0);
}

static void dev_open(const char *extra)
{
	dev_open_workers(extra, 0);
}

static void dev_close(void)
{
	virtio_blk_destroy(&blk);
	blockdev_close(bd);
	bd = NULL;
}

static void setup(void)
{
	int fd;

	ck_assert_int_eq(guest_mem_init(&mem, RAM_SIZE), 0);
	snprintf(image, sizeof(image), "/var/tmp/minivm-vblk-XXXXXX");
	fd = mkstemp(image);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMAGE_SIZE), 0);
	close(fd);
	fake.pushes = fake.needs_reset = fake.at_gate = 0;
	fake.why = NULL;
	fake.gate = false;
}

static void teardown(void)
{
	if (bd)
		dev_close();
	unlink(image);
	guest_mem_destroy(&mem);
}

/* ---- hand-built chains for the parser ---- */

static void chain_clear(void)
{
	chain.head = 0;
	chain.n_out = chain.n_in = 0;
	chain.out_len = chain.in_len = 0;
}

static void add(uint64_t gpa, uint64_t len, bool writable)
{
	struct iovec *iov = &chain.iov[chain.n_out + chain.n_in];

	ck_assert(writable || !chain.n_in);
	iov->iov_base = gp(gpa, len);
	iov->iov_len = len;
	if (writable) {
		chain.n_in++;
		chain.in_len += len;
	} else {
		chain.n_out++;
		chain.out_len += len;
	}
}

/* header, optional data in direction w, status; parsed against l */
static uint8_t simple(const struct virtio_blk_limits *l, uint32_t type, uint64_t sector,
		      uint64_t len, bool w)
{
	chain_clear();
	put_hdr(HDR_GPA, type, sector);
	add(HDR_GPA, 16, false);
	if (len)
		add(DATA_GPA, len, w);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(l, &chain, &req), 0);
	ck_assert_ptr_eq(req.status_ptr, gp(STATUS_GPA, 1));
	return req.status;
}

static struct virtio_blk_limits limits(void)
{
	return (struct virtio_blk_limits){
		.capacity = CAPACITY,
		.block_size = 512,
		.discard = true,
		.write_zeroes = true,
		.max_dwz_seg = 4,
		.max_dwz_sectors = 2048,
	};
}

START_TEST(test_parse_read)
{
	struct virtio_blk_limits l = limits();

	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 24);
	add(HDR_GPA, 16, false);
	add(DATA_GPA, 4096, true);
	add(DATA2_GPA, 512, true);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.type, VIRTIO_BLK_T_IN);
	ck_assert_uint_eq(req.sector, 24);
	ck_assert_uint_eq(req.len, 4608);
	ck_assert_uint_eq(req.iovcnt, 2);
	ck_assert_ptr_eq(req.iov, &chain.iov[1]);
	ck_assert_ptr_eq(req.iov[0].iov_base, gp(DATA_GPA, 1));
	ck_assert_uint_eq(req.iov[0].iov_len, 4096);
	ck_assert_uint_eq(req.iov[1].iov_len, 512);
	ck_assert_ptr_eq(req.status_ptr, gp(STATUS_GPA, 1));
}
END_TEST

/* The header in three pieces, its last bytes sharing an iovec with the data. */
START_TEST(test_parse_header_split)
{
	struct virtio_blk_limits l = limits();
	uint8_t hdr[16];
	uint32_t type = htole32(VIRTIO_BLK_T_OUT);
	uint64_t sector = htole64(0x1122);

	memcpy(hdr, &type, 4);
	memset(hdr + 4, 0xee, 4); /* reserved: ignored */
	memcpy(hdr + 8, &sector, 8);
	memcpy(gp(HDR_GPA, 5), hdr, 5);
	memcpy(gp(HDR_GPA + 0x100, 7), hdr + 5, 7);
	memcpy(gp(DATA_GPA, 4), hdr + 12, 4);

	chain_clear();
	add(HDR_GPA, 5, false);
	add(HDR_GPA + 0x100, 7, false);
	add(DATA_GPA, 4 + 1024, false);
	add(DATA2_GPA, 512, false);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.type, VIRTIO_BLK_T_OUT);
	ck_assert_uint_eq(req.sector, 0x1122);
	ck_assert_uint_eq(req.len, 1536);
	ck_assert_uint_eq(req.iovcnt, 2);
	ck_assert_ptr_eq(req.iov[0].iov_base, gp(DATA_GPA + 4, 1));
	ck_assert_uint_eq(req.iov[0].iov_len, 1024);
	ck_assert_ptr_eq(req.iov[1].iov_base, gp(DATA2_GPA, 1));

	/* A header that ends exactly at an iovec's end: the data starts at the next. */
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_OUT, 3);
	add(HDR_GPA, 8, false);
	add(HDR_GPA + 8, 8, false);
	add(DATA_GPA, 512, false);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.sector, 3);
	ck_assert_uint_eq(req.iovcnt, 1);
	ck_assert_ptr_eq(req.iov, &chain.iov[2]);
	ck_assert_uint_eq(req.iov[0].iov_len, 512);
}
END_TEST

START_TEST(test_parse_status_shares_data)
{
	struct virtio_blk_limits l = limits();

	/* one writable buffer: 512 bytes of data, then the status */
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 0);
	add(HDR_GPA, 16, false);
	add(DATA_GPA, 513, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.len, 512);
	ck_assert_uint_eq(req.iovcnt, 1);
	ck_assert_uint_eq(req.iov[0].iov_len, 512);
	ck_assert_ptr_eq(req.status_ptr, gp(DATA_GPA + 512, 1));

	/* header, data and status all in one buffer each way round is not possible:
	 * readable comes first. A writable 1-byte tail after data: its own iovec. */
	chain_clear();
	add(HDR_GPA, 16, false);
	add(DATA_GPA, 1024, true);
	add(DATA2_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.iovcnt, 1);
	ck_assert_uint_eq(req.len, 1024);
	ck_assert_ptr_eq(req.status_ptr, gp(DATA2_GPA, 1));

	/* GET_ID with the status in the 21st byte */
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_GET_ID, 0);
	add(HDR_GPA, 16, false);
	add(DATA_GPA, 21, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.len, 20);
	ck_assert_ptr_eq(req.status_ptr, gp(DATA_GPA + 20, 1));
}
END_TEST

START_TEST(test_parse_types)
{
	struct virtio_blk_limits l = limits();

	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 512, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 0, true), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.len, 0);
	ck_assert_uint_eq(req.iovcnt, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 5, 0, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.type, VIRTIO_BLK_T_FLUSH);
	/* the sector of a flush is unused: anything goes */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_FLUSH, ~0ULL, 0, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.len, 20);
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(test_parse_unknown_type)
{
	struct virtio_blk_limits l = limits();
	static const uint32_t types[] = { 2, 3, 5, 10, 12, 14, 15, 16, 0x80000000, 0x80000001,
					  UINT32_MAX };

	for (unsigned int i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ck_assert_int_eq(simple(&l, types[i], 0, 0, false), VIRTIO_BLK_S_UNSUPP);
		ck_assert_int_eq(simple(&l, types[i], 0, 512, true), VIRTIO_BLK_S_UNSUPP);
	}
	/* not offered */
	l.discard = false;
	l.write_zeroes = false;
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_UNSUPP);
}
END_TEST

/* An IN of n buffers of 512 MiB, which the parser never dereferences. */
static uint8_t huge_read(const struct virtio_blk_limits *l, unsigned int n)
{
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 0);
	add(HDR_GPA, 16, false);
	for (unsigned int i = 0; i < n; i++) {
		chain.iov[1 + i].iov_base = gp(DATA_GPA, 1);
		chain.iov[1 + i].iov_len = 512 * MiB;
		chain.n_in++;
		chain.in_len += 512 * MiB;
	}
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(l, &chain, &req), 0);
	return req.status;
}

START_TEST(test_parse_out_of_range)
{
	struct virtio_blk_limits l = limits();

	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, CAPACITY - 1, 512, true), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, CAPACITY - 2, 1024, true), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, CAPACITY - 1, 1024, true),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, CAPACITY, 512, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, CAPACITY, 0, true), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, CAPACITY + 1, 0, true), VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps around 2^64 */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 1ULL << 55, 512, true), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, (1ULL << 55) + 1, 512, false),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, UINT64_MAX, 512, false),
			 VIRTIO_BLK_S_IOERR);
	/* a huge disk: the limit then is BLOCKDEV_MAX_RW (the data is not touched) */
	l.capacity = UINT64_MAX / 512;
	ck_assert_int_eq(huge_read(&l, 2), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.len, BLOCKDEV_MAX_RW);
	ck_assert_int_eq(huge_read(&l, 3), VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_parse_len_not_sector_multiple)
{
	struct virtio_blk_limits l = limits();

	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 511, true), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 513, true), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 1000, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 1, false), VIRTIO_BLK_S_IOERR);
	/* 4K logical blocks: offsets and lengths must be whole blocks */
	l.block_size = 4096;
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 8, 4096, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 8, 512, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 1, 4096, true), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 8, 1, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 4, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 8, 16, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(test_parse_readonly)
{
	struct virtio_blk_limits l = limits();

	l.read_only = true;
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 512, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 0, false), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_IOERR);
	/* what a read-only device offers: no discard, no write zeroes; still IOERR */
	l.discard = l.write_zeroes = false;
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(test_parse_wrong_direction)
{
	struct virtio_blk_limits l = limits();

	/* IN with device-readable data after the header */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_IN, 0, 512, false), VIRTIO_BLK_S_IOERR);
	/* OUT with device-writable data before the status */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_OUT, 0, 512, true), VIRTIO_BLK_S_IOERR);
	/* FLUSH with data either way */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_FLUSH, 0, 512, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_FLUSH, 0, 512, true), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_GET_ID, 0, 20, false), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 0, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, true), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, true), VIRTIO_BLK_S_IOERR);

	/* readable data both sides of a good IN: header + 1 readable byte */
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_IN, 0);
	add(HDR_GPA, 17, false);
	add(DATA_GPA, 513, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(test_parse_malformed)
{
	struct virtio_blk_limits l = limits();

	/* no device-writable byte at all: nowhere to put a status */
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_OUT, 0);
	add(HDR_GPA, 16, false);
	add(DATA_GPA, 512, false);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), -EINVAL);
	chain_clear();
	add(HDR_GPA, 16, false);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), -EINVAL);
	chain_clear();
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), -EINVAL);

	/* a status byte but a short header: IOERR, type unknown */
	chain_clear();
	add(HDR_GPA, 15, false);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(req.type, UINT32_MAX);
	ck_assert_ptr_eq(req.status_ptr, gp(STATUS_GPA, 1));
	chain_clear();
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_IOERR);
	/* the header in the device-writable part does not count */
	chain_clear();
	put_hdr(DATA_GPA, VIRTIO_BLK_T_IN, 0);
	add(DATA_GPA, 16 + 512 + 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_IOERR);
}
END_TEST

/* Segments: copied out, split across iovecs, limits and flags checked. */
START_TEST(test_parse_discard_segments)
{
	struct virtio_blk_limits l = limits();
	uint8_t segs[3 * 16];

	/* three segments, the second split 5 | 11 between two buffers */
	put_seg(DATA_GPA, 0x10, 8, 0);
	put_seg(DATA_GPA + 16, 0x100, 2048, 0);
	put_seg(DATA_GPA + 32, CAPACITY - 1, 1, 0);
	memcpy(segs, gp(DATA_GPA, sizeof(segs)), sizeof(segs));
	memcpy(gp(DATA2_GPA, 16 + 21), segs, 21);
	memcpy(gp(DATA2_GPA + 0x1000, 27), segs + 21, 27);
	chain_clear();
	put_hdr(HDR_GPA, VIRTIO_BLK_T_DISCARD, 0);
	add(HDR_GPA, 16, false);
	add(DATA2_GPA, 21, false);
	add(DATA2_GPA + 0x1000, 27, false);
	add(STATUS_GPA, 1, true);
	ck_assert_int_eq(virtio_blk_parse(&l, &chain, &req), 0);
	ck_assert_int_eq(req.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.nseg, 3);
	ck_assert_uint_eq(req.seg[0].sector, 0x10);
	ck_assert_uint_eq(req.seg[0].num_sectors, 8);
	ck_assert_uint_eq(req.seg[1].sector, 0x100);
	ck_assert_uint_eq(req.seg[1].num_sectors, 2048);
	ck_assert_uint_eq(req.seg[2].sector, CAPACITY - 1);
	ck_assert_uint_eq(req.seg[2].flags, 0);
	/* the guest changing its buffer afterwards changes nothing */
	put_seg(DATA2_GPA, 0, 0, 0xffffffff);
	ck_assert_uint_eq(req.seg[0].sector, 0x10);

	/* at most max_dwz_seg segments */
	for (unsigned int i = 0; i < 5; i++)
		put_seg(DATA_GPA + 16 * i, i * 8, 8, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 4 * 16, false), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.nseg, 4);
	ck_assert_uint_eq(req.seg[3].sector, 24);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 5 * 16, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 5 * 16, false),
			 VIRTIO_BLK_S_IOERR);
	/* whole segments only, at least one */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 0, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 24, false), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 8, false), VIRTIO_BLK_S_IOERR);

	/* past the end, over the per-segment limit */
	put_seg(DATA_GPA, CAPACITY - 1, 2, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, UINT64_MAX - 1, 2, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, 0, 2049, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_IOERR);
	put_seg(DATA_GPA, CAPACITY, 0, 0);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(test_parse_dwz_flags)
{
	struct virtio_blk_limits l = limits();

	put_seg(DATA_GPA, 0, 8, VIRTIO_BLK_DWZ_F_UNMAP);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(req.seg[0].flags, VIRTIO_BLK_DWZ_F_UNMAP);
	/* §5.2.6.4: unmap on a discard, and unknown flags, are UNSUPP */
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_UNSUPP);
	put_seg(DATA_GPA, 0, 8, 2);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
			 VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_DISCARD, 0, 16, false), VIRTIO_BLK_S_UNSUPP);
	/* in the second segment */
	put_seg(DATA_GPA, 0, 8, 0);
	put_seg(DATA_GPA + 16, 8, 8, 0x80000000);
	ck_assert_int_eq(simple(&l, VIRTIO_BLK_T_WRITE_ZEROES, 0, 32, false),
			 VIRTIO_BLK_S_UNSUPP);
}
END_TEST

/* ---- config space and features ---- */

static void cfg_read(uint64_t off, void *data, unsigned int size)
{
	blk.vdev.ops->config_read(&blk.vdev, off, data, size);
}

static uint64_t cfg_get(uint64_t off, unsigned int size)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0xaa, sizeof(b));
	cfg_read(off, b, size);
	for (unsigned int i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

START_TEST(test_config_default)
{
	uint64_t f;

	dev_open("");
	ck_assert_ptr_eq(blk.vdev.priv, &blk);
	ck_assert_uint_eq(blk.vdev.device_id, VIRTIO_ID_BLOCK);
	ck_assert_uint_eq(blk.vdev.pci_class, 0x018000);
	ck_assert_uint_eq(blk.vdev.num_queues, 1);
	ck_assert_uint_eq(blk.vdev.queue_size, 256);
	ck_assert_uint_eq(blk.vdev.config_size, 60);
	f = blk.vdev.features;
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX));
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_BLK_F_RO)));
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD))); /* discard=ignore */
	ck_assert(f & VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE));
	ck_assert(!(f & VIRTIO_BIT(VIRTIO_BLK_F_MQ)));
	ck_assert(!(f >> 24)); /* transport bits are the transport's */

	ck_assert_uint_eq(cfg_get(0, 8), CAPACITY);
	ck_assert_uint_eq(cfg_get(0, 4), CAPACITY);
	ck_assert_uint_eq(cfg_get(4, 4), 0);
	ck_assert_uint_eq(cfg_get(1, 1), (CAPACITY >> 8) & 0xff);
	ck_assert_uint_eq(cfg_get(1, 2), (CAPACITY >> 8) & 0xffff);
	ck_assert_uint_eq(cfg_get(8, 4), VIRTIO_BLK_SIZE_MAX);
	ck_assert_uint_eq(cfg_get(12, 4), 254);
	ck_assert_uint_eq(cfg_get(20, 4), 512);
	ck_assert_uint_eq(cfg_get(32, 1), 1);  /* writeback: cache=writeback */
	ck_assert_uint_eq(cfg_get(36, 4), 0);  /* no discard */
	ck_assert_uint_eq(cfg_get(48, 4), VIRTIO_BLK_MAX_DWZ_SECTORS);
	ck_assert_uint_eq(cfg_get(52, 4), VIRTIO_BLK_MAX_DWZ_SEG);
	ck_assert_uint_eq(cfg_get(56, 1), 0);  /* may_unmap: not with discard=ignore */
	/* odd offsets and sizes, and across the end */
	ck_assert_uint_eq(cfg_get(11, 3), (uint64_t)254 << 8);
	ck_assert_uint_eq(cfg_get(50, 8), (uint64_t)VIRTIO_BLK_MAX_DWZ_SEG << 16 |
					 (VIRTIO_BLK_MAX_DWZ_SECTORS >> 16));
	ck_assert_uint_eq(cfg_get(58, 8), 0);
	ck_assert_uint_eq(cfg_get(60, 4), 0);
	ck_assert_uint_eq(cfg_get(0x1000, 8), 0);
	ck_assert_uint_eq(cfg_get(UINT64_MAX, 8), 0);
	ck_assert_uint_eq(cfg_get(UINT64_MAX - 3, 8), 0);
	/* writes are ignored */
	blk.vdev.ops->config_write(&blk.vdev, 0, "\x01\x02\x03\x04", 4);
	blk.vdev.ops->config_write(&blk.vdev, 32, "\x00", 1);
	ck_assert_uint_eq(cfg_get(0, 8), CAPACITY);
	ck_assert_uint_eq(cfg_get(32, 1), 1);
}
END_TEST

START_TEST(test_config_discard_readonly)
{
	dev_open("discard=unmap");
	ck_assert(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	ck_assert(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	ck_assert_uint_eq(cfg_get(36, 4), VIRTIO_BLK_MAX_DWZ_SECTORS);
	ck_assert_uint_eq(cfg_get(40, 4), VIRTIO_BLK_MAX_DWZ_SEG);
	ck_assert_uint_eq(cfg_get(44, 4), 1);
	ck_assert_uint_eq(cfg_get(56, 4), 1); /* may_unmap, then unused1 */
	ck_assert(blk.limits.discard && blk.limits.write_zeroes && !blk.limits.read_only);
	dev_close();

	dev_open("readonly=on,discard=unmap");
	ck_assert(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	ck_assert(!(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)));
	ck_assert(!(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)));
	ck_assert(blk.vdev.features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	ck_assert_uint_eq(cfg_get(36, 8), 0);
	ck_assert_uint_eq(cfg_get(48, 8), 0);
	ck_assert_uint_eq(cfg_get(56, 1), 0);
	ck_assert_uint_eq(cfg_get(0, 8), CAPACITY);
	ck_assert(blk.limits.read_only);
}
END_TEST

/* ---- the whole device, through a ring ---- */

static uint16_t next_desc, drv_avail;

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(gp(gpa, 2), &v, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(gpa, 2), 2);
	return le16toh(v);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(gpa, 4), 4);
	return le32toh(v);
}

/* What the transport does at queue enable and DRIVER_OK. */
static void dev_start_workers(const char *extra, unsigned int workers)
{
	struct virtio_queue *vq;

	dev_open_workers(extra, workers);
	blk.vdev.mem = &mem;
	vq = &blk.vdev.queues[0];
	pthread_mutex_init(&vq->lock, NULL);
	vq->max_size = blk.vdev.queue_size;
	vq->vq.mem = &mem;
	vq->vq.size = QSIZE;
	vq->vq.desc_gpa = DESC_GPA;
	vq->vq.avail_gpa = AVAIL_GPA;
	vq->vq.used_gpa = USED_GPA;
	ck_assert_int_eq(virtq_init(&vq->vq), 0);
	vq->enabled = true;
	next_desc = drv_avail = 0;
	ck_assert_int_eq(blk.vdev.ops->activate(&blk.vdev), 0);
}

static void dev_start(const char *extra)
{
	dev_start_workers(extra, 0);
}

/* A queue reset by the transport after ops->reset, then set up again. */
static void dev_restart(void)
{
	struct virtio_queue *vq = &blk.vdev.queues[0];

	memset(gp(AVAIL_GPA, 4 + 2 * QSIZE), 0, 4 + 2 * QSIZE);
	memset(gp(USED_GPA, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	ck_assert_int_eq(virtq_init(&vq->vq), 0);
	next_desc = drv_avail = 0;
	ck_assert_int_eq(blk.vdev.ops->activate(&blk.vdev), 0);
}

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool w;
};

/* Writes a chain of n buffers into the table and makes it available. */
static uint16_t offer(const struct buf *b, unsigned int n)
{
	uint16_t head = next_desc;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t d = next_desc++ % QSIZE;
		uint64_t g = DESC_GPA + 16ULL * d;
		uint16_t flags = (b[i].w ? VIRTQ_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		uint64_t addr = htole64(b[i].gpa);
		uint32_t len = htole32(b[i].len);

		memcpy(gp(g, 8), &addr, 8);
		memcpy(gp(g + 8, 4), &len, 4);
		put16(g + 12, flags);
		put16(g + 14, (d + 1) % QSIZE);
	}
	put16(AVAIL_GPA + 4 + 2 * (drv_avail % QSIZE), head % QSIZE);
	drv_avail++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL_GPA + 2, drv_avail);
	return head % QSIZE;
}

/* header at HDR_GPA + 64 * slot, status at STATUS_GPA + 16 * slot */
static uint16_t offer_rw(unsigned int slot, uint32_t type, uint64_t sector, uint64_t data,
			 uint32_t len, bool w)
{
	struct buf b[3];
	unsigned int n = 0;

	put_hdr(HDR_GPA + 64 * slot, type, sector);
	*(uint8_t *)gp(STATUS_GPA + 16 * slot, 1) = 0xee;
	b[n++] = (struct buf){ HDR_GPA + 64 * slot, 16, false };
	if (len)
		b[n++] = (struct buf){ data, len, w };
	b[n++] = (struct buf){ STATUS_GPA + 16 * slot, 1, true };
	return offer(b, n);
}

static uint8_t status_of(unsigned int slot)
{
	return get8(STATUS_GPA + 16 * slot);
}

static void kick(void)
{
	blk.vdev.ops->queue_notify(&blk.vdev, 0);
}

/* The used length the device reported for head; fails if it is not used. */
static uint32_t used_len(uint16_t head)
{
	uint16_t idx = get16(USED_GPA + 2);

	for (uint16_t i = 0; i < idx && i < QSIZE; i++) {
		if (get32(USED_GPA + 4 + 8 * i) == head)
			return get32(USED_GPA + 4 + 8 * i + 4);
	}
	ck_abort_msg("head %u not used", head);
	return 0;
}

START_TEST(test_dev_write_read)
{
	uint8_t *data = gp(DATA_GPA, 8192), *back = gp(DATA2_GPA, 8192);
	uint8_t file[8192];
	struct virtio_blk_stats st;
	struct buf b[4];
	uint16_t h;

	dev_start("");
	fill(data, 8192, 1);
	/* OUT: header, two 4 KiB buffers, status */
	put_hdr(HDR_GPA, VIRTIO_BLK_T_OUT, 16);
	b[0] = (struct buf){ HDR_GPA, 16, false };
	b[1] = (struct buf){ DATA_GPA, 4096, false };
	b[2] = (struct buf){ DATA_GPA + 4096, 4096, false };
	b[3] = (struct buf){ STATUS_GPA, 1, true };
	h = offer(b, 4);
	kick();
	wait_pushes(1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len(h), 1);
	image_pread(file, sizeof(file), 16 * 512);
	ck_assert_mem_eq(file, data, 8192);

	/* IN, into one buffer with the status at its end */
	memset(back, 0, 8193);
	put_hdr(HDR_GPA + 64, VIRTIO_BLK_T_IN, 16);
	b[0] = (struct buf){ HDR_GPA + 64, 16, false };
	b[1] = (struct buf){ DATA2_GPA, 8193, true };
	h = offer(b, 2);
	kick();
	wait_pushes(2);
	ck_assert_int_eq(get8(DATA2_GPA + 8192), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len(h), 8193);
	ck_assert_mem_eq(back, data, 8192);

	/* notifications back on after the queue ran dry */
	ck_assert_uint_eq(get16(USED_GPA) & VIRTQ_USED_F_NO_NOTIFY, 0);
	virtio_blk_get_stats(&blk, &st);
	ck_assert_uint_eq(st.requests, 2);
	ck_assert_uint_eq(st.bytes_written, 8192);
	ck_assert_uint_eq(st.bytes_read, 8192);
	ck_assert_uint_eq(st.ioerr + st.unsupp, 0);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

/* 128 requests in one kick, on 8 workers: all complete, each in its place. */
START_TEST(test_dev_many_in_flight)
{
	enum { N = 128, LEN = 4096 };
	static uint8_t file[N * LEN];
	uint16_t heads[N];

	dev_start("");
	for (unsigned int i = 0; i < N; i++) {
		uint64_t hdr = DATA_GPA + i * 0x2000ULL;
		struct buf b[2] = {
			{ hdr, 16 + LEN, false }, /* header and data in one buffer */
			{ STATUS_GPA + 16 * i, 1, true },
		};

		put_hdr(hdr, VIRTIO_BLK_T_OUT, (uint64_t)i * (LEN / 512));
		fill(gp(hdr + 16, LEN), LEN, i + 100);
		*(uint8_t *)gp(STATUS_GPA + 16 * i, 1) = 0xee;
		heads[i] = offer(b, 2);
	}
	kick();
	wait_pushes(N);
	image_pread(file, sizeof(file), 0);
	for (unsigned int i = 0; i < N; i++) {
		ck_assert_int_eq(status_of(i), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(used_len(heads[i]), 1);
		ck_assert_mem_eq(file + i * LEN, gp(DATA_GPA + i * 0x2000ULL + 16, LEN), LEN);
	}
	ck_assert_uint_eq(blk.inflight, 0);
}
END_TEST

START_TEST(test_dev_get_id)
{
	uint16_t h;

	dev_start("serial=abc-123");
	memset(gp(DATA_GPA, 64), 0xff, 64);
	h = offer_rw(0, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 20, true);
	kick();
	wait_pushes(1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len(h), 21);
	ck_assert_mem_eq(gp(DATA_GPA, 20), "abc-123\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	ck_assert_uint_eq(get8(DATA_GPA + 20), 0xff);

	/* a short buffer gets what fits */
	memset(gp(DATA_GPA, 64), 0xff, 64);
	h = offer_rw(1, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 4, true);
	kick();
	wait_pushes(2);
	ck_assert_int_eq(status_of(1), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len(h), 5);
	ck_assert_mem_eq(gp(DATA_GPA, 5), "abc-\xff", 5);
	teardown();

	/* 20 characters: no NUL */
	setup();
	dev_start("serial=ABCDEFGHIJKLMNOPQRST");
	memset(gp(DATA_GPA, 64), 0xff, 64);
	h = offer_rw(0, VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 32, true);
	kick();
	wait_pushes(1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(used_len(h), 21);
	ck_assert_mem_eq(gp(DATA_GPA, 21), "ABCDEFGHIJKLMNOPQRST\xff", 21);
}
END_TEST

START_TEST(test_dev_flush_unsupp_errors)
{
	struct virtio_blk_stats st;
	uint16_t h[4];

	dev_start("");
	h[0] = offer_rw(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	h[1] = offer_rw(1, 10 /* GET_LIFETIME */, 0, DATA_GPA, 8, true);
	h[2] = offer_rw(2, VIRTIO_BLK_T_IN, CAPACITY, DATA_GPA, 512, true);
	h[3] = offer_rw(3, VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, false); /* not offered */
	put_seg(DATA_GPA, 0, 8, 0);
	kick();
	wait_pushes(4);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(status_of(1), VIRTIO_BLK_S_UNSUPP);
	ck_assert_int_eq(status_of(2), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(status_of(3), VIRTIO_BLK_S_UNSUPP);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(used_len(h[i]), 1);
	virtio_blk_get_stats(&blk, &st);
	ck_assert_uint_eq(st.requests, 4);
	ck_assert_uint_eq(st.ioerr, 1);
	ck_assert_uint_eq(st.unsupp, 2);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

START_TEST(test_dev_readonly)
{
	uint8_t file[4096], zero[4096] = { 0 };

	dev_start("readonly=on");
	fill(gp(DATA_GPA, 4096), 4096, 7);
	offer_rw(0, VIRTIO_BLK_T_OUT, 0, DATA_GPA, 4096, false);
	put_seg(DATA2_GPA, 0, 8, 0);
	offer_rw(1, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA2_GPA, 16, false);
	offer_rw(2, VIRTIO_BLK_T_IN, 0, DATA_GPA + 8192, 4096, true);
	offer_rw(3, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	wait_pushes(4);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(status_of(1), VIRTIO_BLK_S_IOERR);
	ck_assert_int_eq(status_of(2), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(status_of(3), VIRTIO_BLK_S_OK);
	image_pread(file, sizeof(file), 0);
	ck_assert_mem_eq(file, zero, sizeof(file));
}
END_TEST

START_TEST(test_dev_discard_write_zeroes)
{
	static uint8_t file[64 * 512], want[64 * 512];

	dev_start("discard=unmap");
	fill(want, sizeof(want), 3);
	image_pwrite(want, sizeof(want), 0);

	/* WRITE_ZEROES, two segments, one with unmap */
	put_seg(DATA_GPA, 0, 8, VIRTIO_BLK_DWZ_F_UNMAP);
	put_seg(DATA_GPA + 16, 32, 16, 0);
	offer_rw(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 32, false);
	kick();
	wait_pushes(1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	memset(want, 0, 8 * 512);
	memset(want + 32 * 512, 0, 16 * 512);
	image_pread(file, sizeof(file), 0);
	ck_assert_mem_eq(file, want, sizeof(file));

	/* DISCARD, three segments: only the status is certain */
	put_seg(DATA_GPA + 0x100, 8, 8, 0);
	put_seg(DATA_GPA + 0x110, 16, 8, 0);
	put_seg(DATA_GPA + 0x120, 4096, 2048, 0);
	offer_rw(1, VIRTIO_BLK_T_DISCARD, 0, DATA_GPA + 0x100, 48, false);
	/* and one whose last segment is out of range: nothing is done */
	put_seg(DATA_GPA + 0x200, 48, 8, 0);
	put_seg(DATA_GPA + 0x210, CAPACITY, 8, 0);
	offer_rw(2, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA + 0x200, 32, false);
	kick();
	wait_pushes(3);
	ck_assert_int_eq(status_of(1), VIRTIO_BLK_S_OK);
	ck_assert_int_eq(status_of(2), VIRTIO_BLK_S_IOERR);
	image_pread(file, 8 * 512, 48 * 512);
	ck_assert_mem_eq(file, want + 48 * 512, 8 * 512);
}
END_TEST

/* A chain with no status byte: NEEDS_RESET, and nothing more until a reset. */
START_TEST(test_dev_no_status)
{
	struct buf b[1] = { { HDR_GPA, 16, false } };

	dev_start("");
	put_hdr(HDR_GPA, VIRTIO_BLK_T_FLUSH, 0);
	offer(b, 1);
	offer_rw(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "a request without a status byte");
	kick();
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_uint_eq(pushes(), 0);
	ck_assert_int_eq(status_of(1), 0xee);
	ck_assert_uint_eq(blk.inflight, 0);

	/* the driver resets the device and starts again */
	blk.vdev.ops->reset(&blk.vdev);
	dev_restart();
	offer_rw(2, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	wait_pushes(1);
	ck_assert_int_eq(status_of(2), VIRTIO_BLK_S_OK);
}
END_TEST

START_TEST(test_dev_bad_ring)
{
	dev_start("");
	put16(AVAIL_GPA + 4, QSIZE + 5); /* a head outside the table */
	put16(AVAIL_GPA + 2, 1);
	kick();
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "malformed request queue");
	ck_assert_uint_eq(pushes(), 0);
}
END_TEST

/*
 * More chains in flight than the queue has descriptors (a driver offering a
 * head again before it was used): the pool runs dry. Timing decides when with
 * real completions, so the test empties the pool by hand.
 */
START_TEST(test_dev_pool_dry)
{
	struct virtio_blk_ctx *saved;

	dev_start("");
	saved = blk.free;
	blk.free = NULL;
	offer_rw(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "more requests in flight than the queue has descriptors");
	ck_assert_uint_eq(pushes(), 0);
	blk.free = saved;
}
END_TEST

/* After reset returns, no completion touches the ring. */
START_TEST(test_dev_reset_drains)
{
	enum { N = 80 }; /* 3 descriptors each */
	unsigned int n;

	dev_start("");
	for (unsigned int i = 0; i < N; i++)
		offer_rw(i, i % 2 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, (i % 64) * 128ULL,
			 DATA_GPA + i * 0x10000ULL, 0x10000, !(i % 2));
	kick();
	blk.vdev.ops->reset(&blk.vdev);
	n = pushes();
	ck_assert_uint_eq(blk.inflight, 0);
	ck_assert_uint_eq(get16(USED_GPA + 2), n);
	usleep(50 * 1000);
	ck_assert_uint_eq(pushes(), n);
	ck_assert_uint_eq(get16(USED_GPA + 2), n);
	/* a stale kick after the reset does nothing */
	kick();
	ck_assert_uint_eq(pushes(), n);

	dev_restart();
	offer_rw(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, false);
	kick();
	wait_pushes(n + 1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
}
END_TEST

static void *reset_thread(void *arg)
{
	(void)arg;
	blk.vdev.ops->reset(&blk.vdev);
	return NULL;
}

/*
 * Completions that start once a reset has begun write no status and push
 * nothing. One worker; the first completion is held in the (fake) push
 * while the reset starts, so the other nine complete during the reset.
 */
START_TEST(test_dev_reset_drops_completions)
{
	pthread_t t;

	dev_start_workers("", 1);
	fake.gate = true;
	for (unsigned int i = 0; i < 10; i++)
		offer_rw(i, VIRTIO_BLK_T_IN, i, DATA_GPA + 512 * i, 512, true);
	kick();
	pthread_mutex_lock(&fake.lock);
	while (!fake.at_gate)
		pthread_cond_wait(&fake.cond, &fake.lock);
	pthread_mutex_unlock(&fake.lock);

	ck_assert_int_eq(pthread_create(&t, NULL, reset_thread, NULL), 0);
	while (!__atomic_load_n(&blk.stopping, __ATOMIC_ACQUIRE))
		sched_yield();
	pthread_mutex_lock(&fake.lock);
	fake.gate = false;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
	pthread_join(t, NULL);

	ck_assert_uint_eq(pushes(), 1);
	ck_assert_uint_eq(get16(USED_GPA + 2), 1);
	ck_assert_int_eq(status_of(0), VIRTIO_BLK_S_OK);
	for (unsigned int i = 1; i < 10; i++)
		ck_assert_int_eq(status_of(i), 0xee);
	ck_assert_uint_eq(blk.inflight, 0);
}
END_TEST

/* The guest sees QEMU's write cache for each mode, and cannot change it. */
START_TEST(test_config_writeback_follows_cache_mode)
{
	static const struct { const char *mode; unsigned wb; } modes[] = {
		{ "cache=writeback", 1 }, { "cache=unsafe", 1 },
		{ "cache=writethrough", 0 },
	};
	uint8_t zero = 0;

	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		dev_open(modes[i].mode);
		ck_assert_msg(cfg_get(32, 1) == modes[i].wb, "%s", modes[i].mode);
		blk.vdev.ops->config_write(&blk.vdev, 32, &zero, 1);
		ck_assert_msg(cfg_get(32, 1) == modes[i].wb, "%s after a guest write", modes[i].mode);
		dev_close();
	}
}
END_TEST

static Suite *vblk_suite(void)
{
	Suite *s = suite_create("virtio-blk");
	TCase *parse = tcase_create("parse");
	TCase *config = tcase_create("config");
	TCase *dev = tcase_create("device");

	tcase_add_checked_fixture(parse, setup, teardown);
	tcase_add_test(parse, test_parse_read);
	tcase_add_test(parse, test_parse_header_split);
	tcase_add_test(parse, test_parse_status_shares_data);
	tcase_add_test(parse, test_parse_types);
	tcase_add_test(parse, test_parse_unknown_type);
	tcase_add_test(parse, test_parse_out_of_range);
	tcase_add_test(parse, test_parse_len_not_sector_multiple);
	tcase_add_test(parse, test_parse_readonly);
	tcase_add_test(parse, test_parse_wrong_direction);
	tcase_add_test(parse, test_parse_malformed);
	tcase_add_test(parse, test_parse_discard_segments);
	tcase_add_test(parse, test_parse_dwz_flags);
	suite_add_tcase(s, parse);

	tcase_add_checked_fixture(config, setup, teardown);
	tcase_add_test(config, test_config_default);
	tcase_add_test(config, test_config_writeback_follows_cache_mode);
	tcase_add_test(config, test_config_discard_readonly);
	suite_add_tcase(s, config);

	tcase_add_checked_fixture(dev, setup, teardown);
	tcase_set_timeout(dev, 60);
	tcase_add_test(dev, test_dev_write_read);
	tcase_add_test(dev, test_dev_many_in_flight);
	tcase_add_test(dev, test_dev_get_id);
	tcase_add_test(dev, test_dev_flush_unsupp_errors);
	tcase_add_test(dev, test_dev_readonly);
	tcase_add_test(dev, test_dev_discard_write_zeroes);
	tcase_add_test(dev, test_dev_no_status);
	tcase_add_test(dev, test_dev_bad_ring);
	tcase_add_test(dev, test_dev_pool_dry);
	tcase_add_test(dev, test_dev_reset_drains);
	tcase_add_test(dev, test_dev_reset_drops_completions);
	suite_add_tcase(s, dev);
	return s;
}



int main(void)
{
	return unit_run(vblk_suite());
}
