// SPDX-License-Identifier: MIT
/*
 * The qcow2 driver against QEMU's own tools as the oracle: images made by
 * qemu-img and qemu-io (every version, cluster size and refcount width,
 * compressed and zero clusters, backing chains, internal snapshots) read
 * the same through image_pread() as through `qemu-img convert`; what we
 * write passes `qemu-img check` and reads back in qemu-img as written;
 * malformed headers are refused with a message; many blockdev workers at
 * once leave a consistent image.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/blockdev.h"
#include "disk/image.h"
#include "disk/qcow2.h"
#include "tests/unit/unit.h"

#define KiB 1024ull
#define MiB (1024ull * 1024)

static char dir[PATH_MAX];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = system(cmd);
	return WIFEXITED(ret) ? WEXITSTATUS(ret) : -1;
}

static bool have_qemu(void)
{
	return access("/usr/bin/qemu-img", X_OK) == 0 && access("/usr/bin/qemu-io", X_OK) == 0;
}

#define NEED_QEMU()                                                        \
	do {                                                               \
		if (!have_qemu()) {                                        \
			fprintf(stderr, "qemu-img missing: test skipped\n"); \
			return;                                            \
		}                                                          \
	} while (0)

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/var/tmp/minivm-qcow2-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	sh("rm -rf '%s'", dir);
}

static char *path_in(const char *name)
{
	static char p[64][PATH_MAX + 64];
	static int n;
	char *r = p[n++ % 64];

	snprintf(r, sizeof(p[0]), "%.*s/%s", PATH_MAX - 1, dir, name);
	return r;
}

static uint8_t *read_file(const char *path, uint64_t *size)
{
	struct stat st;
	uint8_t *b;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	b = malloc(st.st_size + 1);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pread(fd, b, st.st_size, 0), st.st_size);
	close(fd);
	*size = st.st_size;
	return b;
}

/* What qemu-img says the image contains. */
static uint8_t *qemu_contents(const char *path, uint64_t *size)
{
	char *raw = path_in("oracle.raw");

	ck_assert_int_eq(sh("qemu-img convert -U -O raw '%s' '%s'", path, raw), 0);
	return read_file(raw, size);
}

static struct image *open_img(const char *path, unsigned flags)
{
	struct image *img;
	char err[512] = "";
	int ret = image_open(path, -1, flags, &img, err, sizeof(err));

	ck_assert_msg(ret == 0, "open %s: %d %s", path, ret, err);
	return img;
}

/* What we say the image contains. */
static uint8_t *our_contents(const char *path, uint64_t *size)
{
	struct image *img = open_img(path, 0);
	uint8_t *b = malloc(img->size + 1);

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(image_pread(img, b, img->size, 0), 0);
	*size = img->size;
	image_close(img);
	return b;
}

static void ck_same(const uint8_t *a, const uint8_t *b, uint64_t size, const char *what)
{
	for (uint64_t i = 0; i < size; i++) {
		if (a[i] != b[i])
			ck_abort_msg("%s: differs at byte %llu (%#x vs %#x)", what,
				     (unsigned long long)i, a[i], b[i]);
	}
}

static void ck_reads_as_qemu(const char *path)
{
	uint64_t n1, n2;
	uint8_t *q = qemu_contents(path, &n1), *m = our_contents(path, &n2);

	ck_assert_uint_eq(n1, n2);
	ck_same(q, m, n1, path);
	free(q);
	free(m);
}

static void ck_qemu_check(const char *path)
{
	int ret = sh("qemu-img check -q '%s' >&2", path);

	ck_assert_msg(ret == 0, "qemu-img check %s: exit %d", path, ret);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/*
 * Writes random runs through image_pwrite (partial clusters, cross-cluster,
 * unaligned) and into the model, then checks the image with qemu-img.
 */
static unsigned extra_flags; /* for the O_DIRECT run */

static void exercise_writes(const char *path, unsigned nwrites, uint64_t maxlen)
{
	uint64_t size, n2;
	uint8_t *model = qemu_contents(path, &size), *after, *buf;
	struct image *img = open_img(path, IMAGE_RDWR | extra_flags);

	buf = malloc(maxlen + 512);
	for (unsigned i = 0; i < nwrites; i++) {
		uint64_t len = 1 + rnd() % maxlen, off = rnd() % size;

		if (i % 3 == 0)
			off &= ~511ull, len = (len + 511) & ~511ull;
		if (len > size - off)
			len = size - off;
		memset(buf, 0x40 + i % 64, len);
		buf[0] = i;
		ck_assert_int_eq(image_pwrite(img, buf, len, off), 0);
		memcpy(model + off, buf, len);
		if (i % 17 == 0)
			ck_assert_int_eq(image_flush(img), 0);
	}
	image_close(img);
	free(buf);
	ck_qemu_check(path);
	after = qemu_contents(path, &n2);
	ck_assert_uint_eq(n2, size);
	ck_same(model, after, size, path);
	free(after);
	after = our_contents(path, &n2);
	ck_same(model, after, size, path);
	free(after);
	free(model);
}

/* A pattern of data, zero clusters and holes, written by qemu-io. */
static void qemu_fill(const char *path)
{
	ck_assert_int_eq(sh("qemu-io -f qcow2 -c 'write -P 0x11 0 70k' -c 'write -P 0x22 1000k 300k' "
			    "-c 'write -P 0x33 3m 5k' -c 'write -z 3m 2k' -c 'write -P 0x44 5m 1m' "
			    "-c 'write -z 5200k 256k' '%s' >/dev/null", path), 0);
}

START_TEST(read_and_write_matrix)
{
	static const struct {
		const char *compat;
		unsigned cluster, refbits;
	} m[] = {
		{ "0.10", 512, 16 }, { "0.10", 4096, 16 }, { "0.10", 65536, 16 },
		{ "0.10", 2 << 20, 16 },
		{ "1.1", 512, 1 }, { "1.1", 512, 64 }, { "1.1", 4096, 8 }, { "1.1", 4096, 16 },
		{ "1.1", 65536, 1 }, { "1.1", 65536, 16 }, { "1.1", 65536, 64 },
		{ "1.1", 2 << 20, 16 }, { "1.1", 2 << 20, 2 },
	};

	NEED_QEMU();
	for (unsigned i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		char *p = path_in("m.qcow2");
		const char *refopt = strcmp(m[i].compat, "1.1") ? "" : ",refcount_bits=";
		char rb[16] = "";

		if (*refopt)
			snprintf(rb, sizeof(rb), "%u", m[i].refbits);
		ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o compat=%s,cluster_size=%u%s%s '%s' 8M",
				    m[i].compat, m[i].cluster, refopt, rb, p), 0);
		qemu_fill(p);
		ck_reads_as_qemu(p);
		exercise_writes(p, 60, 3 * m[i].cluster + 1000 > 300 * KiB ? 300 * KiB :
				3 * m[i].cluster + 1000);
		unlink(p);
	}
}
END_TEST

/* 512-byte clusters with 64-bit refcounts: blocks of 64 clusters, so the table must grow. */
START_TEST(refcount_table_growth)
{
	char *p = path_in("g.qcow2");
	struct image *img;
	uint8_t *buf = malloc(MiB);

	NEED_QEMU();
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 '%s' 16M",
			    p), 0);
	img = open_img(p, IMAGE_RDWR);
	for (unsigned i = 0; i < 16; i++) {
		memset(buf, i + 1, MiB);
		ck_assert_int_eq(image_pwrite(img, buf, MiB, i * MiB), 0);
	}
	image_close(img);
	ck_qemu_check(p);
	ck_reads_as_qemu(p);
	exercise_writes(p, 40, 4000);
	free(buf);
}
END_TEST

static void ck_compressed_at(const char *path, uint64_t off)
{
	struct image *img = open_img(path, 0);
	struct image_extent ext;

	ck_assert_int_eq(image_block_status(img, off, 4096, true, &ext), 0);
	ck_assert_msg(ext.flags & IMAGE_EXT_COMPRESSED, "%s: not compressed at %llu", path,
		      (unsigned long long)off);
	image_close(img);
}

START_TEST(compressed_clusters)
{
	char *src = path_in("src.qcow2"), *c = path_in("c.qcow2");
	struct image *img;
	uint8_t *buf = malloc(256 * KiB);

	NEED_QEMU();
	for (unsigned cl = 512; cl <= 2 << 20; cl *= 8) {
		ck_assert_int_eq(sh("qemu-img create -q -f qcow2 '%s' 8M", src), 0);
		qemu_fill(src);
		ck_assert_int_eq(sh("qemu-img convert -c -O qcow2 -o cluster_size=%u '%s' '%s'", cl,
				    src, c), 0);
		ck_compressed_at(c, 0);
		ck_reads_as_qemu(c);
		exercise_writes(c, 40, 3 * cl > 200 * KiB ? 200 * KiB : 3 * cl);
	}
	/* and our own compressed writes */
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 '%s' 4M", c), 0);
	img = open_img(c, IMAGE_RDWR);
	for (unsigned i = 0; i < 16; i++) {
		for (unsigned j = 0; j < 64 * KiB; j++)
			buf[j] = (j / 100 + i) & 0xff;
		ck_assert_int_eq(qcow2_pwrite_compressed(img->qcow2, buf, i * 64 * KiB), 0);
	}
	memset(buf, 0x5a, 4096);
	ck_assert_int_eq(image_pwrite(img, buf, 4096, 3 * 64 * KiB + 100), 0);
	image_close(img);
	ck_qemu_check(c);
	ck_compressed_at(c, 0);
	ck_reads_as_qemu(c);
	free(buf);
}
END_TEST

START_TEST(backing_chains)
{
	char *base = path_in("base.raw");
	uint64_t n1, n2;
	uint8_t *before, *after;

	NEED_QEMU();
	ck_assert_int_eq(sh("cd '%s' && head -c 6M /dev/urandom > base.raw && "
			    "qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 8M && "
			    "qemu-io -c 'write -P 0x77 1m 200k' -c 'write -z 2m 64k' mid.qcow2 >/dev/null && "
			    "mkdir sub && qemu-img create -q -f qcow2 -o compat=0.10 -b ../mid.qcow2 -F qcow2 sub/top.qcow2 && "
			    "qemu-io -c 'write -P 0x99 1100k 10k' sub/top.qcow2 >/dev/null", dir), 0);
	before = read_file(base, &n1);
	ck_reads_as_qemu(path_in("sub/top.qcow2"));
	ck_reads_as_qemu(path_in("mid.qcow2"));
	exercise_writes(path_in("sub/top.qcow2"), 60, 150 * KiB);
	exercise_writes(path_in("mid.qcow2"), 30, 150 * KiB);
	ck_reads_as_qemu(path_in("sub/top.qcow2"));
	after = read_file(base, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_same(before, after, n1, "base");
	free(before);
	free(after);
}
END_TEST

START_TEST(snapshot_cow)
{
	char *p = path_in("s.qcow2");
	uint64_t n1, n2;
	uint8_t *snap, *now;

	NEED_QEMU();
	for (unsigned cl = 512; cl <= 65536; cl *= 128) {
		ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=%u '%s' 8M", cl, p), 0);
		qemu_fill(p);
		ck_assert_int_eq(sh("qemu-img snapshot -c s1 '%s'", p), 0);
		snap = qemu_contents(p, &n1);
		exercise_writes(p, 50, 100 * KiB);
		ck_assert_int_eq(sh("qemu-img snapshot -c s2 '%s'", p), 0);
		exercise_writes(p, 20, 100 * KiB);
		ck_assert_int_eq(sh("qemu-img snapshot -a s1 '%s'", p), 0);
		ck_qemu_check(p);
		now = qemu_contents(p, &n2);
		ck_same(snap, now, n1, "snapshot s1");
		free(snap);
		free(now);
	}
}
END_TEST

START_TEST(discard_zeroes_status)
{
	char *p = path_in("d.qcow2");
	struct image_extent ext;
	struct image *img;
	uint64_t size, n;
	uint8_t *model, *after;

	NEED_QEMU();
	ck_assert_int_eq(sh("cd '%s' && head -c 8M /dev/urandom > b.raw && "
			    "qemu-img create -q -f qcow2 -b b.raw -F raw d.qcow2 && "
			    "qemu-io -c 'write -P 1 0 4m' d.qcow2 >/dev/null", dir), 0);
	model = qemu_contents(p, &size);
	img = open_img(p, IMAGE_RDWR);
	ck_assert_int_eq(qcow2_discard(img->qcow2, 64 * KiB, 128 * KiB, false), 0);
	memset(model + 64 * KiB, 0, 128 * KiB);
	ck_assert_int_eq(image_write_zeroes(img, 1 * MiB + 100, 300 * KiB, false), 0);
	memset(model + MiB + 100, 0, 300 * KiB);
	ck_assert_int_eq(image_write_zeroes(img, 5 * MiB, 256 * KiB, true), 0);
	memset(model + 5 * MiB, 0, 256 * KiB);
	ck_assert_int_eq(image_block_status(img, 64 * KiB, MiB, false, &ext), 0);
	ck_assert_uint_eq(ext.flags, IMAGE_EXT_ZERO | IMAGE_EXT_ALLOCATED);
	ck_assert_uint_eq(ext.length, 128 * KiB);
	ck_assert_int_eq(image_block_status(img, 0, MiB, false, &ext), 0);
	ck_assert_uint_eq(ext.flags, IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED);
	ck_assert_uint_eq(ext.length, 64 * KiB);
	ck_assert_int_eq(image_block_status(img, 6 * MiB, MiB, true, &ext), 0);
	ck_assert_uint_eq(ext.flags, IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED);
	ck_assert_int_eq(ext.depth, 1);
	ck_assert_int_eq(image_block_status(img, 6 * MiB, MiB, false, &ext), 0);
	ck_assert_uint_eq(ext.flags, 0);
	ck_assert_int_eq(qcow2_discard(img->qcow2, 2 * MiB, MiB, true), 0);
	after = our_contents(path_in("b.raw"), &n);
	memcpy(model + 2 * MiB, after + 2 * MiB, MiB);
	free(after);
	image_close(img);
	ck_qemu_check(p);
	after = qemu_contents(p, &n);
	ck_same(model, after, size, "after discard");
	free(after);
	free(model);
}
END_TEST

START_TEST(direct_io)
{
	char *p = path_in("dio.qcow2");

	NEED_QEMU();
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=4096 '%s' 8M", p), 0);
	qemu_fill(p);
	ck_assert_int_eq(sh("qemu-img snapshot -c s '%s'", p), 0);
	extra_flags = IMAGE_DIRECT | IMAGE_DSYNC;
	exercise_writes(p, 60, 40 * KiB);
	extra_flags = 0;
}
END_TEST

/* ---- malformed images ---- */

static void patch(const char *path, uint64_t off, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, b, n, off), (ssize_t)n);
	close(fd);
}

static void patch32(const char *path, uint64_t off, uint32_t v)
{
	v = htobe32(v);
	patch(path, off, &v, 4);
}

static void patch64(const char *path, uint64_t off, uint64_t v)
{
	v = htobe64(v);
	patch(path, off, &v, 8);
}

static void ck_refused(const char *path, unsigned flags, const char *msg)
{
	struct image *img = NULL;
	char err[512] = "";
	int ret = image_open(path, -1, flags, &img, err, sizeof(err));

	ck_assert_msg(ret < 0, "%s opened", msg);
	ck_assert_ptr_null(img);
	ck_assert_msg(strstr(err, msg), "'%s' lacks '%s'", err, msg);
}

static char *fresh(void)
{
	char *p = path_in("bad.qcow2");

	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 '%s' 1M && qemu-io -c 'write 0 64k' '%s' >/dev/null",
			    p, p), 0);
	return p;
}

START_TEST(malformed_headers)
{
	char *p;
	struct image *img;

	NEED_QEMU();
	p = fresh(); patch32(p, 4, 1); ck_refused(p, 0, "version 1");
	p = fresh(); patch32(p, 20, 8); ck_refused(p, 0, "cluster size");
	p = fresh(); patch32(p, 20, 22); ck_refused(p, 0, "cluster size");
	p = fresh(); patch32(p, 36, 0x10000000); ck_refused(p, 0, "L1 table is too large");
	p = fresh(); patch64(p, 24, 1ull << 40); ck_refused(p, 0, "too small");
	p = fresh(); patch64(p, 24, 1ull << 62); ck_refused(p, 0, "too large");
	p = fresh(); patch64(p, 40, 1ull << 40); ck_refused(p, 0, "past the end");
	p = fresh(); patch64(p, 40, 0x30200); ck_refused(p, 0, "not cluster-aligned");
	p = fresh(); patch64(p, 40, 0); ck_refused(p, 0, "header");
	p = fresh(); patch64(p, 48, 0x10200); ck_refused(p, 0, "not cluster-aligned");
	p = fresh(); patch32(p, 56, 0x7fffffff); ck_refused(p, 0, "refcount table");
	p = fresh(); patch32(p, 32, 1); ck_refused(p, 0, "encrypted");
	p = fresh(); patch32(p, 60, 100000); ck_refused(p, 0, "snapshots");
	p = fresh(); patch32(p, 16, 2000); ck_refused(p, 0, "backing file");
	p = fresh(); patch64(p, 72, 1ull << 20); ck_refused(p, 0, "bit 20");
	p = fresh(); patch64(p, 72, 1ull << 4); ck_refused(p, 0, "extended L2");
	p = fresh(); patch64(p, 72, 1ull << 2); ck_refused(p, 0, "data file");
	p = fresh(); patch64(p, 72, 1ull << 3); ck_refused(p, 0, "compression type");
	/* an L2 entry pointing into the header: reads and writes fail, nothing crashes */
	p = fresh();
	{
		uint64_t l1 = 0, l2;
		uint8_t b[64 * 1024];
		int fd = open(p, O_RDONLY);

		ck_assert_int_eq(pread(fd, &l1, 8, 40), 8);
		ck_assert_int_eq(pread(fd, &l2, 8, be64toh(l1)), 8);
		close(fd);
		patch64(p, be64toh(l2) & QCOW2_L1E_OFFSET_MASK, (1ull << 63) | 512);
		img = open_img(p, IMAGE_RDWR);
		ck_assert_int_eq(image_pread(img, b, sizeof(b), 0), -EIO);
		ck_assert_int_eq(image_pwrite(img, b, 512, 0), -EIO);
		patch64(p, be64toh(l2) & QCOW2_L1E_OFFSET_MASK, (1ull << 63) | (1ull << 40));
		image_close(img);
		img = open_img(p, 0);
		ck_assert_int_eq(image_pread(img, b, sizeof(b), 0), -EIO);
		image_close(img);
	}
	/* corrupt: read-only yes, read-write no */
	p = fresh();
	patch64(p, 72, 2);
	ck_refused(p, IMAGE_RDWR, "marked corrupt");
	img = open_img(p, 0);
	image_close(img);
	/* a backing chain that loops */
	ck_assert_int_eq(sh("cd '%s' && qemu-img create -q -f qcow2 b.qcow2 1M && "
			    "qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 a.qcow2 && "
			    "qemu-img rebase -u -b a.qcow2 -F qcow2 b.qcow2", dir), 0);
	ck_refused(path_in("a.qcow2"), 0, "too deep (cycle?)");
}
END_TEST

/*
 * A refcount table whose every entry names one block full of the largest
 * refcount claims 2^28 clusters in use. The allocator must not walk them all
 * (with 2 MiB clusters and 1-bit refcounts it would be 2^44): clusters in
 * use far past the end of the file make the write fail as corruption.
 */
START_TEST(refcounts_past_eof)
{
	char *p = fresh();
	uint64_t reft, rb, e;
	uint8_t *buf = malloc(64 * KiB);
	struct image *img;
	int fd;

	NEED_QEMU();
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(pread(fd, &reft, 8, 48), 8);
	reft = be64toh(reft);
	ck_assert_int_eq(pread(fd, &rb, 8, reft), 8);
	close(fd);
	rb = be64toh(rb);
	e = htobe64(rb);
	for (unsigned i = 0; i < 64 * KiB / 8; i++)
		memcpy(buf + i * 8, &e, 8);
	patch(p, reft, buf, 64 * KiB);
	memset(buf, 0xff, 64 * KiB);
	patch(p, rb, buf, 64 * KiB);
	img = open_img(p, IMAGE_RDWR);
	ck_assert_int_eq(image_pwrite(img, buf, 512, 512 * KiB), -EIO);
	image_close(img);
	free(buf);
}
END_TEST

START_TEST(dirty_and_lazy)
{
	char *p = path_in("lazy.qcow2");
	struct image *img;
	uint8_t b[4096];
	uint64_t inc;
	int fd;

	NEED_QEMU();
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o lazy_refcounts=on '%s' 1M", p), 0);
	img = open_img(p, IMAGE_RDWR);
	memset(b, 3, sizeof(b));
	ck_assert_int_eq(image_pwrite(img, b, sizeof(b), 8192), 0);
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(pread(fd, &inc, 8, 72), 8);
	ck_assert_uint_eq(be64toh(inc) & 1, 1);
	image_close(img);
	ck_assert_int_eq(pread(fd, &inc, 8, 72), 8);
	ck_assert_uint_eq(be64toh(inc) & 1, 0);
	close(fd);
	ck_qemu_check(p);
	/* a dirty image with a leak is repaired on a read-write open */
	patch64(p, 72, 1);
	img = open_img(p, 0);
	image_close(img);
	img = open_img(p, IMAGE_RDWR);
	image_close(img);
	ck_qemu_check(p);
}
END_TEST

START_TEST(header_rewrite_keeps_extensions)
{
	char *p = path_in("h.qcow2");
	struct image *img;

	NEED_QEMU();
	ck_assert_int_eq(sh("cd '%s' && qemu-img create -q -f raw b1 1M && qemu-img create -q -f raw b2 1M && "
			    "qemu-img create -q -f qcow2 -b b1 -F raw h.qcow2", dir), 0);
	img = open_img(p, IMAGE_RDWR | IMAGE_NO_BACKING);
	ck_assert_str_eq(img->qcow2->backing_file, "b1");
	ck_assert_str_eq(img->qcow2->backing_format, "raw");
	ck_assert_int_eq(qcow2_set_backing(img->qcow2, "b2", "raw"), 0);
	image_close(img);
	ck_qemu_check(p);
	ck_assert_int_eq(sh("qemu-img info '%s' | grep -q 'backing file: b2'", p), 0);
	ck_assert_int_eq(sh("qemu-img info '%s' | grep -q 'backing file format: raw'", p), 0);
}
END_TEST

/* ---- many workers through blockdev ---- */

struct sync_req {
	struct blk_req r;
	struct iovec iov;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int result;
};

static void sync_done(struct blk_req *r, int result)
{
	struct sync_req *s = r->opaque;

	pthread_mutex_lock(&s->lock);
	s->result = result;
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static int bd_io(struct blockdev *bd, enum blk_op op, void *buf, uint64_t len, uint64_t off)
{
	struct sync_req s = { .r = { .op = op, .offset = off, .len = len } };

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	s.iov.iov_base = buf;
	s.iov.iov_len = len;
	s.r.iov = &s.iov;
	s.r.iovcnt = op == BLK_READ || op == BLK_WRITE;
	s.r.done = sync_done;
	s.r.opaque = &s;
	ck_assert_int_eq(blockdev_submit(bd, &s.r), 0);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
	return s.result;
}

#define NTHREADS 8
#define REGION (4 * MiB)

struct worker {
	struct blockdev *bd;
	unsigned id;
	uint8_t *model; /* the whole disk */
	int failures;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1);
	uint8_t *buf = malloc(256 * KiB), *rd = malloc(256 * KiB);

	for (unsigned i = 0; i < 150; i++) {
		uint64_t len, off;
		int ret;

		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		len = 512 * (1 + seed % 256);
		off = w->id * REGION + ((seed >> 20) % (REGION - len)) / 512 * 512;
		memset(buf, w->id * 16 + i % 16, len);
		ret = bd_io(w->bd, BLK_WRITE, buf, len, off);
		w->failures += ret != (int)len;
		memcpy(w->model + off, buf, len);
		ret = bd_io(w->bd, BLK_READ, rd, len, off);
		w->failures += ret != (int)len || memcmp(rd, buf, len);
		/* a shared area everybody reads while others write it */
		ret = bd_io(w->bd, BLK_READ, rd, 64 * KiB, NTHREADS * REGION + (seed % 16) * 64 * KiB);
		w->failures += ret != 64 * KiB;
		if (i % 10 == 0) {
			memset(buf, 0xee, 64 * KiB);
			ret = bd_io(w->bd, BLK_WRITE, buf, 64 * KiB,
				    NTHREADS * REGION + (seed % 16) * 64 * KiB);
			w->failures += ret != 64 * KiB;
		}
		if (i % 37 == 0)
			w->failures += bd_io(w->bd, BLK_FLUSH, NULL, 0, 0) != 0;
	}
	free(buf);
	free(rd);
	return NULL;
}

START_TEST(concurrent_blockdev)
{
	char *p = path_in("conc.qcow2");
	uint64_t size = (NTHREADS + 1) * REGION, n;
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct drive_opts o;
	struct blockdev *bd;
	char err[256] = "", arg[PATH_MAX + 64];
	uint8_t *model, *after;

	NEED_QEMU();
	ck_assert_int_eq(sh("qemu-img create -q -f qcow2 -o cluster_size=4096 '%s' %llu", p,
			    (unsigned long long)size), 0);
	ck_assert_int_eq(sh("qemu-img snapshot -c base '%s' && qemu-io -c 'write -P 7 0 %llu' '%s' >/dev/null",
			    p, (unsigned long long)size / 2, p), 0);
	ck_assert_int_eq(sh("qemu-img snapshot -c half '%s'", p), 0);
	model = qemu_contents(p, &n);
	snprintf(arg, sizeof(arg), "file=%s,format=qcow2,discard=unmap", p);
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	ck_assert_msg(blockdev_open(&o, &bd, err, sizeof(err)) == 0, "%s", err);
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .bd = bd, .id = i, .model = model };
		pthread_create(&t[i], NULL, worker, &w[i]);
	}
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	blockdev_close(bd);
	ck_qemu_check(p);
	after = qemu_contents(p, &n);
	ck_same(model, after, NTHREADS * REGION, "concurrent writes");
	free(after);
	free(model);
}
END_TEST

START_TEST(probe_guard)
{
	char *p = path_in("probe.raw"), arg[PATH_MAX + 32], err[256];
	struct drive_opts o;
	struct blockdev *bd;
	uint8_t sector[512] = { 'Q', 'F', 'I', 0xfb };

	ck_assert_int_eq(sh("truncate -s 1M '%s'", p), 0);
	snprintf(arg, sizeof(arg), "file=%s", p);
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	ck_assert_int_eq(blockdev_open(&o, &bd, err, sizeof(err)), 0);
	ck_assert_int_eq(bd_io(bd, BLK_WRITE, sector, 512, 0), -EPERM);
	ck_assert_int_eq(bd_io(bd, BLK_WRITE, sector, 512, 512), 512);
	blockdev_close(bd);
	snprintf(arg, sizeof(arg), "file=%s,format=raw", p);
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	ck_assert_int_eq(blockdev_open(&o, &bd, err, sizeof(err)), 0);
	ck_assert_int_eq(bd_io(bd, BLK_WRITE, sector, 512, 0), 512);
	blockdev_close(bd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2");
	TCase *tc = tcase_create("qcow2");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, malformed_headers);
	tcase_add_test(tc, header_rewrite_keeps_extensions);
	tcase_add_test(tc, refcounts_past_eof);
	tcase_add_test(tc, dirty_and_lazy);
	tcase_add_test(tc, probe_guard);
	tcase_add_test(tc, read_and_write_matrix);
	tcase_add_test(tc, refcount_table_growth);
	tcase_add_test(tc, compressed_clusters);
	tcase_add_test(tc, backing_chains);
	tcase_add_test(tc, snapshot_cow);
	tcase_add_test(tc, discard_zeroes_status);
	tcase_add_test(tc, concurrent_blockdev);
	tcase_add_test(tc, direct_io);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
