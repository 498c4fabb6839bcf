// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the fuzzer plays a hostile image file. Its input is
 * written to a file and opened read-only as qcow2 (disk/image.h), then read
 * the ways minivm and minivm-img read an image: every cluster up to a bound,
 * odd-sized and unaligned reads, the last bytes of the disk, block status
 * with and without the backing chain, and the consistency check (without
 * repairs). Sanitizers catch bad memory accesses; the checks below catch
 * answers that break the interfaces' promises. A hang (an endless walk) is
 * caught by libFuzzer's -timeout. FUZZ_VERBOSE=1 in the environment prints
 * why each image did not open (to see that the seeds do).
 *
 * Backing files: only two names are let through, both inside the
 * harness's private directory: "img" (the image itself, so the chain is a
 * cycle that IMAGE_MAX_CHAIN must end) and "base" (a small raw file). Any
 * other name is opened with IMAGE_NO_BACKING, so an input can never make
 * the harness open an arbitrary host file (a FIFO or a device would hang).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/image.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

#define READ_BOUND   (2u << 20)  /* read the first 2 MiB of the disk */
#define READ_CHUNK   (64u << 10)
#define MAX_EXTENTS  4096u       /* block status calls per pass */
#define BASE_SIZE    (64u << 10)

/*
 * vmm/log.c's functions, silent: the driver reports every corrupt image it
 * meets, and a line on stderr for each input slows the fuzzer to a crawl.
 * The messages are still formatted, so a bad format argument shows.
 */
int log_verbose;

static void fuzz_log(const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "minivm: %s\n", line);
}

#define FUZZ_LOG_FN(name)                            \
	void name(const char *fmt, ...)              \
	{                                            \
		va_list ap;                          \
		va_start(ap, fmt);                   \
		fuzz_log(fmt, ap);                   \
		va_end(ap);                          \
	}
FUZZ_LOG_FN(pr_err)
FUZZ_LOG_FN(pr_warn)
FUZZ_LOG_FN(pr_info)
FUZZ_LOG_FN(pr_debug)

static char dir[64];
static char img_path[80];
static uint8_t buf[READ_CHUNK + 4096];

static void setup(void)
{
	char path[80];
	uint8_t data[BASE_SIZE];
	int fd;

	snprintf(dir, sizeof(dir), "/dev/shm/fuzz-qcow2.XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-qcow2.XXXXXX");
		CHECK(mkdtemp(dir));
	}
	snprintf(img_path, sizeof(img_path), "%s/img", dir);
	snprintf(path, sizeof(path), "%s/base", dir);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = i * 7 + (i >> 9);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
}

static void cleanup(void)
{
	char path[80];

	snprintf(path, sizeof(path), "%s/base", dir);
	unlink(path);
	unlink(img_path);
	rmdir(dir);
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Whether the header names a backing file we let the image open. */
static bool backing_allowed(const uint8_t *data, size_t size)
{
	uint64_t off, len;

	if (size < 20)
		return false;
	off = be(data + 8, 8);
	len = be(data + 16, 4);
	if (off == 0 || len == 0)
		return true; /* none */
	if (off > size || len > size - off)
		return false; /* the driver must refuse it; don't risk it */
	return (len == 3 && !memcmp(data + off, "img", 3)) ||
	       (len == 4 && !memcmp(data + off, "base", 4));
}

static void check_err(int r, const char *err)
{
	CHECK(r < 0 && r > -4096);
	CHECK(memchr(err, 0, 256)); /* terminated */
}

static void read_all(struct image *img)
{
	uint64_t end = MIN(img->size, (uint64_t)READ_BOUND);
	int r;

	for (uint64_t off = 0; off < end; off += READ_CHUNK) {
		r = image_pread(img, buf, MIN((uint64_t)READ_CHUNK, end - off), off);
		CHECK(r == 0 || (r < 0 && r > -4096));
	}
	/* Odd sizes at odd offsets: partial sectors and clusters. */
	if (img->size > 5000) {
		r = image_pread(img, buf, 4097, 1);
		CHECK(r <= 0);
		r = image_pread(img, buf, 511, img->size / 3 | 1);
		CHECK(r <= 0);
	}
	/* The far end of the disk: the last L1 entries. */
	if (img->size >= 4096) {
		r = image_pread(img, buf, 4096, img->size - 4096);
		CHECK(r <= 0);
	}
	/* Past the end must fail, not read. */
	r = image_pread(img, buf, 512, img->size);
	CHECK(r < 0);
}

static void status_pass(struct image *img, uint64_t start, uint64_t end, bool with_backing)
{
	struct image_extent ext;
	uint64_t off = start;

	for (unsigned i = 0; i < MAX_EXTENTS && off < end; i++) {
		memset(&ext, 0xa5, sizeof(ext));
		int r = image_block_status(img, off, end - off, with_backing, &ext);

		CHECK(r <= 0);
		if (r < 0)
			return;
		CHECK(ext.offset == off);
		CHECK(ext.length > 0 && ext.length <= end - off);
		CHECK(ext.depth >= 0 && ext.depth <= IMAGE_MAX_CHAIN);
		if (!with_backing)
			CHECK(ext.depth == 0);
		off += ext.length;
	}
}

static void block_status(struct image *img)
{
	uint64_t end = MIN(img->size, (uint64_t)READ_BOUND);

	status_pass(img, 0, end, false);
	status_pass(img, 0, end, true);
	if (img->size > end)
		status_pass(img, img->size - MIN(img->size - end, (uint64_t)65536), img->size, true);
}

static void check(struct image *img)
{
	struct qcow2_check_result res;
	int r;

	memset(&res, 0, sizeof(res));
	r = qcow2_check(img->qcow2, 0, &res, NULL, NULL);
	CHECK(r <= 0);
	CHECK(res.corruptions_fixed == 0 && res.leaks_fixed == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	unsigned flags = IMAGE_NO_LOCK;
	struct image *img = NULL;
	enum image_format fmt;
	char err[256];
	int fd, r;

	if (!ready) {
		setup();
		atexit(cleanup);
		ready = true;
	}
	fd = open(img_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);

	memset(err, 0, sizeof(err));
	r = image_probe(img_path, &fmt, err, sizeof(err));
	if (r < 0)
		check_err(r, err);

	if (!backing_allowed(data, size))
		flags |= IMAGE_NO_BACKING;
	memset(err, 0, sizeof(err));
	r = image_open(img_path, IMAGE_FORMAT_QCOW2, flags, &img, err, sizeof(err));
	if (r < 0) {
		check_err(r, err);
		CHECK(err[0]); /* one line saying why */
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_qcow2: open: %s\n", err);
		return 0;
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_qcow2: opened, %llu bytes\n", (unsigned long long)img->size);
	CHECK(r == 0 && img);
	CHECK(img->format == IMAGE_FORMAT_QCOW2 && img->qcow2);
	CHECK(img->read_only);
	CHECK(img->size <= QCOW2_MAX_SIZE);
	read_all(img);
	block_status(img);
	check(img);
	image_close(img);
	return 0;
}
