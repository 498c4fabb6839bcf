// SPDX-License-Identifier: MIT
/*
 * qcow2 metadata operations (create, resize, snapshots, check and repair)
 * with Debian's qemu-img and qemu-io as the oracle: images we make must pass
 * `qemu-img check` and look the same to `qemu-img info` as the ones it
 * makes; snapshots made either side are listed, applied and deleted by the
 * other; the check finds what qemu-img check finds on images damaged on
 * purpose, and after our repair qemu-img finds nothing.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "disk/image.h"
#include "disk/qcow2.h"
#include "tests/unit/unit.h"

static char dir[PATH_MAX];

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/qcow2-meta-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A file in the test's directory; four buffers, so that a call can name several. */
static const char *p(const char *name)
{
	static char buf[4][PATH_MAX + 64];
	static int n;
	char *b = buf[n++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/%.60s", dir, name);
	return b;
}

/* Runs a shell command in dir (output to /dev/null unless redirected); its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	int n, st;
	va_list ap;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && { ", dir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - n, "; } >/dev/null 2>&1");
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The output of a shell command run in dir (static buffer). */
static const char *out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *out(const char *fmt, ...)
{
	static char res[65536];
	char cmd[4096];
	size_t len = 0, n;
	va_list ap;
	FILE *f;
	int k;

	k = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	va_start(ap, fmt);
	vsnprintf(cmd + k, sizeof(cmd) - k, fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while ((n = fread(res + len, 1, sizeof(res) - 1 - len, f)) > 0)
		len += n;
	res[len] = '\0';
	pclose(f);
	return res;
}

/* The value of "key" in qemu-img's JSON output, as text ("" when absent). */
static const char *jv(const char *json, const char *key)
{
	static char v[4][256];
	static int n;
	char pat[128], *b = v[n++ % 4];
	const char *s;
	size_t len;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	s = strstr(json, pat);
	b[0] = '\0';
	if (!s)
		return b;
	s += strlen(pat);
	len = strcspn(s, ",\n}");
	if (len >= 256)
		len = 255;
	memcpy(b, s, len);
	b[len] = '\0';
	return b;
}

static long jnum(const char *json, const char *key)
{
	const char *v = jv(json, key);

	return *v ? strtol(v, NULL, 10) : 0;
}

static struct image *open_rw(const char *name)
{
	struct image *img;
	char err[256];
	int ret = image_open(p(name), IMAGE_FORMAT_QCOW2, IMAGE_RDWR, &img, err, sizeof(err));

	if (ret)
		ck_abort_msg("open %s: %s", name, err);
	return img;
}

/* ---- create ---- */

static const char *prealloc_name[] = { "off", "metadata", "falloc", "full" };

/* Ours and qemu-img's, same options: both check clean and info agrees. */
static void create_pair(int compat, uint32_t cs, uint32_t rcb, int pre, bool lazy, uint64_t size)
{
	struct qcow2_create_opts o = {
		.size = size, .cluster_size = cs, .compat = compat, .refcount_bits = rcb,
		.prealloc = pre, .lazy_refcounts = lazy,
	};
	static const char *keys[] = { "virtual-size", "cluster-size", "compat", "refcount-bits",
				      "lazy-refcounts", "corrupt", "extended-l2", "compression-type",
				      "dirty-flag" };
	char err[256], mine[4096], ref[4096];

	if (qcow2_create(p("m.qcow2"), &o, err, sizeof(err)))
		ck_abort_msg("create compat=%d cs=%u rcb=%u %s: %s", compat, cs, rcb,
			     prealloc_name[pre], err);
	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o compat=%s,cluster_size=%u,refcount_bits=%u,"
			    "preallocation=%s,lazy_refcounts=%s r.qcow2 %llu",
			    compat == 2 ? "0.10" : "1.1", cs, rcb, prealloc_name[pre],
			    lazy ? "on" : "off", (unsigned long long)size), 0);
	if (sh("qemu-img check m.qcow2"))
		ck_abort_msg("qemu-img check compat=%d cs=%u rcb=%u %s:\n%s", compat, cs, rcb,
			     prealloc_name[pre], out("qemu-img check m.qcow2 2>&1"));
	snprintf(mine, sizeof(mine), "%s", out("qemu-img info --output=json m.qcow2"));
	snprintf(ref, sizeof(ref), "%s", out("qemu-img info --output=json r.qcow2"));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_msg(!strcmp(jv(mine, keys[i]), jv(ref, keys[i])),
			      "%s: ours %s, qemu-img's %s (compat=%d cs=%u rcb=%u %s)", keys[i],
			      jv(mine, keys[i]), jv(ref, keys[i]), compat, cs, rcb, prealloc_name[pre]);
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F qcow2 m.qcow2 r.qcow2"), 0);
	if (pre != QCOW2_PREALLOC_OFF) {
		const char *c = out("qemu-img check --output=json m.qcow2");

		ck_assert_int_eq(jnum(c, "allocated-clusters"), jnum(c, "total-clusters"));
	}
}

START_TEST(create_matrix)
{
	static const uint32_t sizes[] = { 512, 4096, 65536, 2u << 20 };
	static const uint32_t widths[] = { 1, 2, 4, 8, 16, 32, 64 };

	for (size_t s = 0; s < 4; s++) {
		for (size_t w = 0; w < 7; w++)
			create_pair(3, sizes[s], widths[w], QCOW2_PREALLOC_OFF, w == 4, 64 << 20);
		for (int pre = 0; pre < 4; pre++) {
			create_pair(2, sizes[s], 16, pre, false, (8 << 20) + 3 * 512);
			create_pair(3, sizes[s], pre == 1 ? 1 : 16, pre, pre == 2, (8 << 20) + 3 * 512);
		}
	}
	/* sizes: zero, rounding up to a sector, several L2 tables, several refcount blocks */
	create_pair(3, 65536, 16, QCOW2_PREALLOC_OFF, false, 0);
	create_pair(3, 65536, 16, QCOW2_PREALLOC_OFF, false, 1000);
	create_pair(3, 512, 16, QCOW2_PREALLOC_METADATA, false, 3 << 20);
	create_pair(3, 512, 64, QCOW2_PREALLOC_METADATA, false, 1 << 20);
	create_pair(3, 65536, 16, QCOW2_PREALLOC_OFF, false, 1ull << 40);
	create_pair(2, 65536, 16, QCOW2_PREALLOC_METADATA, false, 3ull << 30);
}
END_TEST

START_TEST(create_backing)
{
	struct qcow2_create_opts o = { .backing_file = "base.qcow2", .backing_format = "qcow2" };
	const char *info;
	char err[256];

	ck_assert_int_eq(sh("qemu-img create -f qcow2 base.qcow2 5M && "
			    "qemu-io -c 'write -P 0x5a 64k 128k' base.qcow2"), 0);
	/* size 0: the backing file's; the name stays relative */
	ck_assert_int_eq(qcow2_create(p("ov.qcow2"), &o, err, sizeof(err)), 0);
	ck_assert_int_eq(sh("qemu-img check ov.qcow2"), 0);
	info = out("qemu-img info --output=json ov.qcow2");
	ck_assert_str_eq(jv(info, "virtual-size"), "5242880");
	ck_assert_str_eq(jv(info, "backing-filename"), "\"base.qcow2\"");
	ck_assert_str_eq(jv(info, "backing-filename-format"), "\"qcow2\"");
	ck_assert_int_eq(sh("qemu-img compare ov.qcow2 base.qcow2"), 0);

	/* a raw backing file, v2, an explicit size, small clusters (no feature table) */
	ck_assert_int_eq(sh("qemu-img create -f raw base.raw 1M"), 0);
	o = (struct qcow2_create_opts){ .size = 2 << 20, .compat = 2, .cluster_size = 512,
					.backing_file = "base.raw", .backing_format = "raw" };
	ck_assert_int_eq(qcow2_create(p("ov2.qcow2"), &o, err, sizeof(err)), 0);
	ck_assert_int_eq(sh("qemu-img check ov2.qcow2"), 0);
	info = out("qemu-img info --output=json ov2.qcow2");
	ck_assert_str_eq(jv(info, "virtual-size"), "2097152");
	ck_assert_str_eq(jv(info, "backing-filename-format"), "\"raw\"");
	ck_assert_str_eq(jv(info, "compat"), "\"0.10\"");

	/* no backing format recorded */
	o = (struct qcow2_create_opts){ .backing_file = "base.raw" };
	ck_assert_int_eq(qcow2_create(p("ov3.qcow2"), &o, err, sizeof(err)), 0);
	info = out("qemu-img info -U --output=json ov3.qcow2");
	ck_assert_str_eq(jv(info, "virtual-size"), "1048576");
	ck_assert_str_eq(jv(info, "backing-filename-format"), "");

	/* a missing backing file when the size must come from it */
	o = (struct qcow2_create_opts){ .backing_file = "nothere", .backing_format = "qcow2" };
	ck_assert_int_lt(qcow2_create(p("ov4.qcow2"), &o, err, sizeof(err)), 0);
}
END_TEST

START_TEST(create_refusals)
{
	struct qcow2_create_opts o = { .size = 1 << 20 };
	struct image *img;
	char err[256];

	o.cluster_size = 1000;
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o.cluster_size = 4u << 20;
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o.cluster_size = 256;
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .compat = 2, .refcount_bits = 8 };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .compat = 2, .lazy_refcounts = true };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .refcount_bits = 3 };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .refcount_bits = 128 };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1ull << 40, .cluster_size = 512 };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EFBIG);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .backing_file = "b",
					.prealloc = QCOW2_PREALLOC_METADATA };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);
	o = (struct qcow2_create_opts){ .size = 1 << 20, .backing_format = "raw" };
	ck_assert_int_eq(qcow2_create(p("x"), &o, err, sizeof(err)), -EINVAL);

	/* an image in use is not overwritten */
	o = (struct qcow2_create_opts){ .size = 1 << 20 };
	ck_assert_int_eq(qcow2_create(p("busy.qcow2"), &o, err, sizeof(err)), 0);
	img = open_rw("busy.qcow2");
	ck_assert_int_eq(qcow2_create(p("busy.qcow2"), &o, err, sizeof(err)), -EBUSY);
	image_close(img);
	ck_assert_int_eq(sh("qemu-img check busy.qcow2"), 0);
}
END_TEST

/* ---- snapshots ---- */

/* Raw contents of an image, for comparing with later states. */
static void to_raw(const char *img, const char *raw)
{
	ck_assert_int_eq(sh("qemu-img convert -O raw %s %s", img, raw), 0);
}

static void assert_clean(const char *img)
{
	if (sh("qemu-img check %s", img))
		ck_abort_msg("qemu-img check %s:\n%s", img, out("qemu-img check %s 2>&1", img));
}

static void snap(const char *img, int op, const char *name)
{
	struct image *i = open_rw(img);
	char err[256];
	int ret;

	if (op == 'c')
		ret = qcow2_snapshot_create(i->qcow2, name, err, sizeof(err));
	else if (op == 'a')
		ret = qcow2_snapshot_apply(i->qcow2, name, err, sizeof(err));
	else
		ret = qcow2_snapshot_delete(i->qcow2, name, err, sizeof(err));
	if (ret)
		ck_abort_msg("snapshot -%c %s %s: %s", op, name, img, err);
	image_close(i);
}

static void snapshot_cycle(const char *compat, uint32_t cs)
{
	const char *l;

	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o compat=%s,cluster_size=%u a.qcow2 4M",
			    compat, cs), 0);
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x22 2M 512k' a.qcow2"), 0);
	to_raw("a.qcow2", "s1.raw");
	snap("a.qcow2", 'c', "one");
	assert_clean("a.qcow2");
	l = out("qemu-img snapshot -l a.qcow2");
	ck_assert_msg(strstr(l, "one"), "%s", l);

	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x33 0 64k' -c 'write -P 0x44 3M 4k' a.qcow2"), 0);
	assert_clean("a.qcow2");
	to_raw("a.qcow2", "s2.raw");
	/* a second snapshot by qemu-img, on top of ours */
	ck_assert_int_eq(sh("qemu-img snapshot -c two a.qcow2"), 0);
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x55 512k 1M' a.qcow2"), 0);

	snap("a.qcow2", 'a', "one");
	assert_clean("a.qcow2");
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F raw a.qcow2 s1.raw"), 0);
	snap("a.qcow2", 'a', "2"); /* by id */
	assert_clean("a.qcow2");
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F raw a.qcow2 s2.raw"), 0);
	/* qemu-img applies ours */
	ck_assert_int_eq(sh("qemu-img snapshot -a one a.qcow2"), 0);
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F raw a.qcow2 s1.raw"), 0);
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x66 0 2M' a.qcow2"), 0);

	snap("a.qcow2", 'd', "one");
	assert_clean("a.qcow2");
	snap("a.qcow2", 'd', "two");
	assert_clean("a.qcow2");
	l = out("qemu-img snapshot -l a.qcow2");
	ck_assert_msg(!strstr(l, "one") && !strstr(l, "two"), "%s", l);
	/* nothing leaked: only the active state's clusters are left */
	l = out("qemu-img check --output=json a.qcow2");
	ck_assert_int_eq(jnum(l, "leaks"), 0);
}

START_TEST(snapshot_v3)
{
	snapshot_cycle("1.1", 65536);
}
END_TEST

START_TEST(snapshot_v2_small_clusters)
{
	snapshot_cycle("0.10", 512);
}
END_TEST

START_TEST(snapshot_listing)
{
	struct image *i;
	struct qcow2 *q;

	ck_assert_int_eq(sh("qemu-img create -f qcow2 a.qcow2 1M && qemu-img snapshot -c first a.qcow2"
			    " && qemu-img resize a.qcow2 3M && qemu-img snapshot -c second a.qcow2"), 0);
	i = open_rw("a.qcow2");
	q = i->qcow2;
	ck_assert_uint_eq(q->nb_snapshots, 2);
	ck_assert_str_eq(q->snapshots[0].id_str, "1");
	ck_assert_str_eq(q->snapshots[0].name, "first");
	ck_assert_uint_eq(q->snapshots[0].disk_size, 1 << 20);
	ck_assert_str_eq(q->snapshots[1].name, "second");
	ck_assert_uint_eq(q->snapshots[1].disk_size, 3 << 20);
	image_close(i);

	/* applying the small one brings the size back, as with qemu-img */
	snap("a.qcow2", 'a', "first");
	ck_assert_str_eq(jv(out("qemu-img info --output=json a.qcow2"), "virtual-size"), "1048576");
	assert_clean("a.qcow2");
	snap("a.qcow2", 'c', "third");
	i = open_rw("a.qcow2");
	ck_assert_str_eq(i->qcow2->snapshots[2].id_str, "3");
	image_close(i);
	ck_assert_int_eq(sh("qemu-img snapshot -d third a.qcow2"), 0);
	assert_clean("a.qcow2");
}
END_TEST

START_TEST(snapshot_compressed)
{
	ck_assert_int_eq(sh("qemu-img create -f qcow2 a.qcow2 2M && "
			    "qemu-io -c 'write -P 0x11 0 1M' a.qcow2 && "
			    "qemu-img convert -c -O qcow2 a.qcow2 c.qcow2"), 0);
	to_raw("c.qcow2", "c.raw");
	snap("c.qcow2", 'c', "s");
	assert_clean("c.qcow2");
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x22 0 64k' c.qcow2"), 0);
	snap("c.qcow2", 'a', "s");
	assert_clean("c.qcow2");
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F raw c.qcow2 c.raw"), 0);
	snap("c.qcow2", 'd', "s");
	assert_clean("c.qcow2");
}
END_TEST

START_TEST(snapshot_refusals)
{
	struct image *i;
	char err[256];

	ck_assert_int_eq(sh("qemu-img create -f qcow2 a.qcow2 1M"), 0);
	i = open_rw("a.qcow2");
	ck_assert_int_eq(qcow2_snapshot_apply(i->qcow2, "nope", err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(qcow2_snapshot_delete(i->qcow2, "nope", err, sizeof(err)), -ENOENT);
	image_close(i);

	/* 1-bit refcounts cannot count a second reference */
	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o refcount_bits=1 b.qcow2 1M && "
			    "qemu-io -c 'write 0 64k' b.qcow2"), 0);
	i = open_rw("b.qcow2");
	ck_assert_int_lt(qcow2_snapshot_create(i->qcow2, "s", err, sizeof(err)), 0);
	image_close(i);
}
END_TEST

/* A snapshot table that points outside the file: refused at open, clearly. */
START_TEST(snapshot_table_bad)
{
	struct image *i;
	char err[256];
	uint64_t v = htobe64(1ull << 40);
	int fd;

	ck_assert_int_eq(sh("qemu-img create -f qcow2 a.qcow2 1M && qemu-img snapshot -c s a.qcow2"), 0);
	fd = open(p("a.qcow2"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, &v, 8, 64), 8);
	close(fd);
	ck_assert_int_lt(image_open(p("a.qcow2"), IMAGE_FORMAT_QCOW2, 0, &i, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "snapshot"), "%s", err);
}
END_TEST

/* ---- resize ---- */

START_TEST(resize)
{
	struct image *i;
	char err[256];

	ck_assert_int_eq(sh("qemu-img create -f qcow2 a.qcow2 1M && "
			    "qemu-io -c 'write -P 0x11 0 1M' a.qcow2"), 0);
	i = open_rw("a.qcow2");
	/* past one L2 table's reach, so the L1 table moves */
	ck_assert_int_eq(qcow2_resize(i->qcow2, 3ull << 30, false, err, sizeof(err)), 0);
	ck_assert_uint_eq(i->size, 3ull << 30);
	ck_assert_int_eq(qcow2_resize(i->qcow2, 1 << 19, false, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(qcow2_resize(i->qcow2, 1000, false, err, sizeof(err)), -EINVAL);
	image_close(i);
	assert_clean("a.qcow2");
	ck_assert_str_eq(jv(out("qemu-img info --output=json a.qcow2"), "virtual-size"),
			 "3221225472");
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 1M' -c 'read -P 0 1M 1M' a.qcow2"), 0);

	/* shrink, with a snapshot holding the clusters (v3 allows it) */
	ck_assert_int_eq(sh("qemu-img snapshot -c s a.qcow2"), 0);
	i = open_rw("a.qcow2");
	ck_assert_int_eq(qcow2_resize(i->qcow2, 512 << 10, true, err, sizeof(err)), 0);
	image_close(i);
	assert_clean("a.qcow2");
	ck_assert_str_eq(jv(out("qemu-img info --output=json a.qcow2"), "virtual-size"), "524288");
	ck_assert_int_eq(sh("qemu-img snapshot -d s a.qcow2"), 0);
	assert_clean("a.qcow2");
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 512k' a.qcow2"), 0);

	/* v2 with a snapshot: refused */
	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o compat=0.10 b.qcow2 1M && "
			    "qemu-img snapshot -c s b.qcow2"), 0);
	i = open_rw("b.qcow2");
	ck_assert_int_eq(qcow2_resize(i->qcow2, 2 << 20, false, err, sizeof(err)), -ENOTSUP);
	image_close(i);
}
END_TEST

/*
 * Growing a small-cluster image far: the new L1 table needs more clusters
 * than one refcount block covers, and at 64G the refcount table must grow
 * too. This used to spin forever in the allocator (every new refcount
 * block was put inside the run being allocated, so no run long enough ever
 * formed); tcase_set_timeout catches a regression.
 */
START_TEST(resize_small_clusters)
{
	static const uint64_t sizes[] = { 1ull << 30, 8ull << 30, 64ull << 30 };
	struct image *i;
	char err[256];

	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o cluster_size=512 a.qcow2 1M && "
			    "qemu-io -c 'write -P 0x11 0 1M' a.qcow2"), 0);
	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		i = open_rw("a.qcow2");
		ck_assert_int_eq(qcow2_resize(i->qcow2, sizes[k], false, err, sizeof(err)), 0);
		image_close(i);
		assert_clean("a.qcow2");
	}
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 1M' -c 'write -P 0x22 63G 1M' "
			    "-c 'read -P 0x22 63G 1M' a.qcow2"), 0);
	assert_clean("a.qcow2");
}
END_TEST

/* ---- check and repair ---- */

static uint64_t rd64(int fd, uint64_t off)
{
	uint64_t v;

	ck_assert_int_eq(pread(fd, &v, 8, off), 8);
	return be64toh(v);
}

static void wr64(int fd, uint64_t off, uint64_t v)
{
	v = htobe64(v);
	ck_assert_int_eq(pwrite(fd, &v, 8, off), 8);
}

/* Sets the 16-bit refcount of host cluster c (in the first refcount block). */
static void poke_refcount(const char *img, uint64_t c, uint16_t v)
{
	int fd = open(p(img), O_RDWR);
	uint64_t rb;

	ck_assert_int_ge(fd, 0);
	rb = rd64(fd, rd64(fd, 48));
	v = htobe16(v);
	ck_assert_int_eq(pwrite(fd, &v, 2, rb + 2 * c), 2);
	close(fd);
}

/* Host offsets of the first L2 table and of the data cluster of guest cluster 0. */
static void locate(const char *img, uint64_t *l2, uint64_t *data)
{
	int fd = open(p(img), O_RDONLY);

	ck_assert_int_ge(fd, 0);
	*l2 = rd64(fd, rd64(fd, 40)) & QCOW2_L1E_OFFSET_MASK;
	*data = rd64(fd, *l2) & QCOW2_L2E_OFFSET_MASK;
	close(fd);
}

static int run_check(const char *img, unsigned fix, struct qcow2_check_result *r)
{
	struct image *i;
	char err[256];
	int ret;

	ret = image_open(p(img), IMAGE_FORMAT_QCOW2,
			 (fix ? IMAGE_RDWR : 0) | IMAGE_NO_REPAIR | IMAGE_NO_BACKING, &i, err,
			 sizeof(err));
	if (ret)
		ck_abort_msg("open %s: %s", img, err);
	ret = qcow2_check(i->qcow2, fix, r, NULL, NULL);
	image_close(i);
	return ret;
}

/* Our counts against qemu-img check's JSON for the same image. */
static void compare_with_qemu(const char *img, int want_exit)
{
	struct qcow2_check_result r;
	const char *j;

	ck_assert_int_eq(sh("qemu-img check %s", img), want_exit);
	j = out("qemu-img check --output=json %s 2>/dev/null", img);
	ck_assert_int_eq(run_check(img, 0, &r), 0);
	ck_assert_uint_eq(r.corruptions, (uint64_t)jnum(j, "corruptions"));
	ck_assert_uint_eq(r.leaks, (uint64_t)jnum(j, "leaks"));
	ck_assert_uint_eq(r.allocated_clusters, (uint64_t)jnum(j, "allocated-clusters"));
	ck_assert_uint_eq(r.total_clusters, (uint64_t)jnum(j, "total-clusters"));
	ck_assert_uint_eq(r.fragmented_clusters, (uint64_t)jnum(j, "fragmented-clusters"));
	ck_assert_uint_eq(r.compressed_clusters, (uint64_t)jnum(j, "compressed-clusters"));
	ck_assert_uint_eq(r.image_end_offset, (uint64_t)jnum(j, "image-end-offset"));
}

static void make_data_image(const char *img)
{
	ck_assert_int_eq(sh("qemu-img create -f qcow2 %s 4M && "
			    "qemu-io -c 'write -P 0x11 0 128k' -c 'write -P 0x22 1M 64k' "
			    "-c 'write -P 0x33 192k 64k' %s", img, img), 0);
}

START_TEST(check_clean)
{
	make_data_image("a.qcow2");
	compare_with_qemu("a.qcow2", 0);
	ck_assert_int_eq(sh("qemu-img snapshot -c s a.qcow2 && "
			    "qemu-io -c 'write -P 0x44 0 64k' a.qcow2 && "
			    "qemu-img convert -c -O qcow2 a.qcow2 c.qcow2"), 0);
	compare_with_qemu("a.qcow2", 0);
	compare_with_qemu("c.qcow2", 0);
}
END_TEST

START_TEST(check_leak)
{
	struct qcow2_check_result r;
	uint64_t l2, data;

	make_data_image("a.qcow2");
	locate("a.qcow2", &l2, &data);
	poke_refcount("a.qcow2", data >> 16, 2);
	/* and a cluster past everything, counted but unused */
	ck_assert_int_eq(sh("truncate -s +64k a.qcow2"), 0);
	poke_refcount("a.qcow2", (uint64_t)atoll(out("stat -c %%s a.qcow2")) / 65536 - 1, 1);
	compare_with_qemu("a.qcow2", 2); /* the raised refcount also breaks COPIED */

	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS, &r), 0);
	ck_assert_uint_eq(r.leaks_fixed, 2);
	assert_clean("a.qcow2");
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 128k' a.qcow2"), 0);
}
END_TEST

START_TEST(check_leak_only)
{
	struct qcow2_check_result r;

	make_data_image("a.qcow2");
	ck_assert_int_eq(sh("truncate -s +128k a.qcow2"), 0);
	poke_refcount("a.qcow2", (uint64_t)atoll(out("stat -c %%s a.qcow2")) / 65536 - 2, 1);
	poke_refcount("a.qcow2", (uint64_t)atoll(out("stat -c %%s a.qcow2")) / 65536 - 1, 3);
	compare_with_qemu("a.qcow2", 3);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS, &r), 0);
	ck_assert_uint_eq(r.leaks_fixed, 2);
	ck_assert_uint_eq(r.leaks, 0);
	assert_clean("a.qcow2");
}
END_TEST

START_TEST(check_refcount_zero)
{
	struct qcow2_check_result r;
	uint64_t l2, data;

	make_data_image("a.qcow2");
	locate("a.qcow2", &l2, &data);
	poke_refcount("a.qcow2", data >> 16, 0);
	compare_with_qemu("a.qcow2", 2);
	/* leaks alone cannot fix it */
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS, &r), -EIO);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r), 0);
	ck_assert_uint_ge(r.corruptions_fixed, 1);
	ck_assert_uint_eq(r.corruptions, 0);
	assert_clean("a.qcow2");
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x11 0 128k' -c 'read -P 0x33 192k 64k' "
			    "-c 'read -P 0x22 1M 64k' a.qcow2"), 0);
	/* the image still takes writes and stays clean */
	ck_assert_int_eq(sh("qemu-io -c 'write -P 0x77 2M 1M' a.qcow2"), 0);
	assert_clean("a.qcow2");
}
END_TEST

START_TEST(check_refcount_low)
{
	struct qcow2_check_result r;

	make_data_image("a.qcow2");
	ck_assert_int_eq(sh("qemu-img snapshot -c s a.qcow2"), 0);
	/* the L2 table is shared by the snapshot: refcount 2, make it 1 */
	{
		uint64_t l2, data;

		locate("a.qcow2", &l2, &data);
		poke_refcount("a.qcow2", l2 >> 16, 1);
	}
	compare_with_qemu("a.qcow2", 2);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r), 0);
	ck_assert_uint_ge(r.corruptions_fixed, 1);
	assert_clean("a.qcow2");
}
END_TEST

START_TEST(check_copied)
{
	struct qcow2_check_result r;
	uint64_t l2, data;
	int fd;

	make_data_image("a.qcow2");
	locate("a.qcow2", &l2, &data);
	fd = open(p("a.qcow2"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	wr64(fd, l2, data); /* COPIED cleared */
	close(fd);
	compare_with_qemu("a.qcow2", 2);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r), 0);
	ck_assert_uint_eq(r.corruptions_fixed, 1);
	ck_assert_uint_eq(r.corruptions, 0);
	assert_clean("a.qcow2");
}
END_TEST

/*
 * The refcount table's first entry pointing somewhere wrong (where: past the
 * end of the file, or into a data cluster): the whole structure is rebuilt.
 */
static void rebuild_case(bool into_data)
{
	struct qcow2_check_result r;
	uint64_t l2, data;
	int fd;

	make_data_image("a.qcow2");
	ck_assert_int_eq(sh("qemu-img snapshot -c s a.qcow2 && "
			    "qemu-io -c 'write -P 0x44 0 64k' a.qcow2"), 0);
	to_raw("a.qcow2", "a.raw");
	locate("a.qcow2", &l2, &data);
	fd = open(p("a.qcow2"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	wr64(fd, rd64(fd, 48), into_data ? data : 1ull << 30);
	close(fd);
	ck_assert_int_eq(sh("qemu-img check a.qcow2"), 2);
	ck_assert_int_eq(run_check("a.qcow2", 0, &r), 0);
	ck_assert_uint_gt(r.corruptions, 0);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS, &r), -EIO);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r), 0);
	ck_assert_uint_gt(r.corruptions_fixed, 0);
	ck_assert_uint_eq(r.corruptions, 0);
	ck_assert_uint_eq(r.leaks, 0);
	assert_clean("a.qcow2");
	ck_assert_int_eq(run_check("a.qcow2", 0, &r), 0);
	ck_assert_uint_eq(r.corruptions + r.leaks, 0);
	ck_assert_int_eq(sh("qemu-img compare -f qcow2 -F raw a.qcow2 a.raw"), 0);
	ck_assert_int_eq(sh("qemu-img snapshot -d s a.qcow2 && qemu-io -c 'write 0 2M' a.qcow2"), 0);
	assert_clean("a.qcow2");
}

START_TEST(check_rebuild_outside)
{
	rebuild_case(false);
}
END_TEST

START_TEST(check_rebuild_shared)
{
	rebuild_case(true);
}
END_TEST

/* A lazy-refcounts image left dirty by a crash: opening it read-write repairs it. */
START_TEST(check_dirty_open)
{
	struct image *i;
	const char *j;

	ck_assert_int_eq(sh("qemu-img create -f qcow2 -o lazy_refcounts=on a.qcow2 16M"), 0);
	sh("qemu-io -c 'write -P 0x33 0 4M' -c abort a.qcow2");
	j = out("qemu-img check -U --output=json a.qcow2 2>/dev/null");
	ck_assert_int_gt(jnum(j, "corruptions"), 0);
	i = open_rw("a.qcow2");
	image_close(i);
	j = out("qemu-img check -U --output=json a.qcow2 2>/dev/null");
	ck_assert_int_eq(jnum(j, "corruptions"), 0);
	ck_assert_int_eq(jnum(j, "leaks"), 0);
	ck_assert_str_eq(jv(out("qemu-img info -U --output=json a.qcow2"), "dirty-flag"), "false");
	ck_assert_int_eq(sh("qemu-io -c 'read -P 0x33 0 4M' a.qcow2"), 0);
}
END_TEST

static void set_incompat(const char *img, uint64_t bits)
{
	int fd = open(p(img), O_RDWR);

	ck_assert_int_ge(fd, 0);
	wr64(fd, 72, bits);
	close(fd);
}

/*
 * CORRUPT set: a normal read-write open is refused; check's open
 * (IMAGE_NO_REPAIR) gets read-write for the repair but nothing else may
 * write; a repair that leaves the image consistent clears the bit.
 */
START_TEST(check_corrupt_bit)
{
	struct qcow2_check_result r;
	struct image *i;
	char err[256], buf[512] = { 0 };

	make_data_image("a.qcow2");
	set_incompat("a.qcow2", QCOW2_INCOMPAT_CORRUPT);
	ck_assert_int_eq(image_open(p("a.qcow2"), IMAGE_FORMAT_QCOW2, IMAGE_RDWR, &i, err,
				    sizeof(err)), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "check -r all"));
	ck_assert_int_eq(image_open(p("a.qcow2"), IMAGE_FORMAT_QCOW2,
				    IMAGE_RDWR | IMAGE_NO_REPAIR | IMAGE_NO_BACKING, &i, err,
				    sizeof(err)), 0);
	ck_assert_int_eq(qcow2_pwrite(i->qcow2, buf, sizeof(buf), 0), -EACCES);
	ck_assert_int_eq(qcow2_write_zeroes(i->qcow2, 0, 65536, true), -EACCES);
	ck_assert_int_eq(qcow2_discard(i->qcow2, 0, 65536, false), -EACCES);
	ck_assert_int_eq(qcow2_resize(i->qcow2, 8 << 20, false, err, sizeof(err)), -EACCES);
	ck_assert_int_eq(qcow2_snapshot_create(i->qcow2, "s", err, sizeof(err)), -EACCES);
	ck_assert_int_eq(qcow2_set_backing(i->qcow2, "x", NULL), -EACCES);
	ck_assert_int_eq(qcow2_check(i->qcow2, QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r, NULL, NULL),
			 0);
	ck_assert_uint_eq(i->qcow2->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT, 0);
	image_close(i);
	ck_assert_str_eq(jv(out("qemu-img info --output=json a.qcow2"), "corrupt"), "false");
	assert_clean("a.qcow2");
	i = open_rw("a.qcow2");
	ck_assert_int_eq(qcow2_pwrite(i->qcow2, buf, sizeof(buf), 0), 0);
	image_close(i);
	assert_clean("a.qcow2");
}
END_TEST

/*
 * One fixable problem (an L2 entry without COPIED) and one the repair
 * cannot fix (an L2 entry that is not cluster-aligned). res.corruptions
 * counts what is left after a repair, so that alone decides: the
 * corrupt bit stays, and a dirty image is not opened read-write (the old
 * rule, corruptions > corruptions_fixed, let 1 fixed hide 1 left).
 */
static void make_half_fixable(const char *img, uint64_t bits)
{
	uint64_t l2, data;
	int fd;

	make_data_image(img);
	locate(img, &l2, &data);
	fd = open(p(img), O_RDWR);
	ck_assert_int_ge(fd, 0);
	wr64(fd, l2, data); /* COPIED cleared: fixable */
	wr64(fd, l2 + 3 * 8, (rd64(fd, l2 + 3 * 8) | QCOW2_OFLAG_COPIED) + 512); /* not fixable */
	close(fd);
	set_incompat(img, bits);
}

START_TEST(check_unfixable_keeps_bits)
{
	struct qcow2_check_result r;
	struct image *i;
	char err[256];

	make_half_fixable("a.qcow2", QCOW2_INCOMPAT_CORRUPT);
	ck_assert_int_eq(run_check("a.qcow2", QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS, &r), 0);
	ck_assert_uint_ge(r.corruptions_fixed, 1);
	ck_assert_uint_ge(r.corruptions, 1);
	ck_assert_str_eq(jv(out("qemu-img info -U --output=json a.qcow2"), "corrupt"), "true");

	make_half_fixable("b.qcow2", QCOW2_INCOMPAT_DIRTY);
	ck_assert_int_eq(run_check("b.qcow2", 0, &r), 0);
	ck_assert_int_lt(image_open(p("b.qcow2"), IMAGE_FORMAT_QCOW2, IMAGE_RDWR, &i, err,
				    sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "cannot repair"));
	ck_assert_str_eq(jv(out("qemu-img info -U --output=json b.qcow2"), "dirty-flag"), "true");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2_meta");
	TCase *tc = tcase_create("create");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, create_matrix);
	tcase_add_test(tc, create_backing);
	tcase_add_test(tc, create_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("snapshot");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, snapshot_v3);
	tcase_add_test(tc, snapshot_v2_small_clusters);
	tcase_add_test(tc, snapshot_listing);
	tcase_add_test(tc, snapshot_compressed);
	tcase_add_test(tc, snapshot_refusals);
	tcase_add_test(tc, snapshot_table_bad);
	tcase_add_test(tc, resize);
	tcase_add_test(tc, resize_small_clusters);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, check_clean);
	tcase_add_test(tc, check_leak);
	tcase_add_test(tc, check_leak_only);
	tcase_add_test(tc, check_refcount_zero);
	tcase_add_test(tc, check_refcount_low);
	tcase_add_test(tc, check_copied);
	tcase_add_test(tc, check_rebuild_outside);
	tcase_add_test(tc, check_rebuild_shared);
	tcase_add_test(tc, check_dirty_open);
	tcase_add_test(tc, check_corrupt_bit);
	tcase_add_test(tc, check_unfixable_keeps_bits);
	suite_add_tcase(s, tc);

	return unit_run(s);
}
