// SPDX-License-Identifier: MIT
/*
 * The minivm-img commands that look at an image and print: info, map,
 * check and snapshot. Human output copies qemu-img 7.2's layout line for
 * line, and JSON output has its keys and its pretty-printing (four-space
 * indents), so scripts written against qemu-img keep working.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "disk/img.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

/* ---- a small JSON printer in QEMU's pretty style ---- */

struct json {
	int depth;
	bool first;   /* nothing printed yet inside the innermost container */
};

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Starts a member: the separator, the indent and the key (none in arrays). */
static void json_member(struct json *j, const char *key)
{
	if (j->depth > 0) {
		fputs(j->first ? "\n" : ",\n", stdout);
		printf("%*s", 4 * j->depth, "");
	}
	if (key) {
		json_string(key);
		fputs(": ", stdout);
	}
	j->first = false;
}

static void json_open(struct json *j, const char *key, char bracket)
{
	json_member(j, key);
	putchar(bracket);
	j->depth++;
	j->first = true;
}

static void json_close(struct json *j, char bracket)
{
	j->depth--;
	if (!j->first)
		printf("\n%*s", 4 * j->depth, "");
	putchar(bracket);
	j->first = false;
	if (j->depth == 0)
		putchar('\n');
}

static void json_str(struct json *j, const char *key, const char *v)
{
	json_member(j, key);
	json_string(v);
}

static void json_int(struct json *j, const char *key, int64_t v)
{
	json_member(j, key);
	printf("%lld", (long long)v);
}

static void json_bool(struct json *j, const char *key, bool v)
{
	json_member(j, key);
	fputs(v ? "true" : "false", stdout);
}

/* ---- info ---- */

/* What info prints of one image of the chain. */
struct info {
	struct image *img;
	const char *filename;
	char *full_backing;       /* the backing file resolved against filename */
};

static int64_t snapshot_icount(const struct qcow2_snapshot *sn)
{
	const uint8_t *p = sn->extra_data;
	uint64_t v = 0;

	/* Extra data: vm_state_size (8), disk_size (8), icount (8), big-endian. */
	if (sn->extra_data_size < 24 || !p)
		return -1;
	for (int i = 16; i < 24; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void snapshot_header(void)
{
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
	       "ICOUNT");
}

static void snapshot_row(const struct qcow2_snapshot *sn)
{
	char date[32] = "", clock[40], size[32], icount[32] = "";
	uint64_t secs = sn->vm_clock_nsec / 1000000000u;
	time_t t = sn->date_sec;
	int64_t ic = snapshot_icount(sn);
	struct tm tm;

	if (localtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof(clock), "%02llu:%02u:%02u.%03u",
		 (unsigned long long)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
		 (unsigned)(sn->vm_clock_nsec / 1000000 % 1000));
	img_size_str(sn->vm_state_size, size, sizeof(size));
	if (ic >= 0)
		snprintf(icount, sizeof(icount), "%lld", (long long)ic);
	printf("%-9s %-16s %8s%20s%13s%11s\n", sn->id_str ? sn->id_str : "", sn->name ? sn->name : "",
	       size, date, clock, icount);
}

static void snapshot_table(const struct qcow2 *q)
{
	if (!q || !q->nb_snapshots)
		return;
	printf("Snapshot list:\n");
	snapshot_header();
	for (unsigned i = 0; i < q->nb_snapshots; i++)
		snapshot_row(&q->snapshots[i]);
}

static void info_human(const struct info *in)
{
	const struct image *img = in->img;
	const struct qcow2 *q = img->qcow2;
	char vsize[32], dsize[32] = "unavailable";
	int64_t actual = image_allocated_bytes(img);

	img_size_str(img->size, vsize, sizeof(vsize));
	if (actual >= 0)
		img_size_str((uint64_t)actual, dsize, sizeof(dsize));
	printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
	       in->filename, image_format_name(img->format), vsize, (unsigned long long)img->size,
	       dsize);
	if (!q)
		return;
	printf("cluster_size: %llu\n", (unsigned long long)q->cluster_size);
	if (q->h.incompatible_features & QCOW2_INCOMPAT_DIRTY)
		printf("cleanly shut down: no\n");
	if (q->backing_file) {
		printf("backing file: %s", q->backing_file);
		if (strcmp(q->backing_file, in->full_backing))
			printf(" (actual path: %s)", in->full_backing);
		putchar('\n');
		if (q->backing_format)
			printf("backing file format: %s\n", q->backing_format);
	}
	snapshot_table(q);
	printf("Format specific information:\n    compat: %s\n    compression type: %s\n",
	       q->h.version >= 3 ? "1.1" : "0.10", q->h.compression_type ? "zstd" : "zlib");
	if (q->h.version >= 3)
		printf("    lazy refcounts: %s\n",
		       q->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS ? "true" : "false");
	printf("    refcount bits: %u\n", q->refcount_bits);
	if (q->h.version >= 3)
		printf("    corrupt: %s\n    extended l2: %s\n",
		       q->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT ? "true" : "false",
		       q->h.incompatible_features & QCOW2_INCOMPAT_EXTL2 ? "true" : "false");
}

static void info_json_snapshots(struct json *j, const struct qcow2 *q)
{
	json_open(j, "snapshots", '[');
	for (unsigned i = 0; i < q->nb_snapshots; i++) {
		const struct qcow2_snapshot *sn = &q->snapshots[i];
		int64_t ic = snapshot_icount(sn);

		json_open(j, NULL, '{');
		if (ic >= 0)
			json_int(j, "icount", ic);
		json_int(j, "vm-clock-nsec", (int64_t)(sn->vm_clock_nsec % 1000000000u));
		json_str(j, "name", sn->name ? sn->name : "");
		json_int(j, "date-sec", sn->date_sec);
		json_int(j, "date-nsec", sn->date_nsec);
		json_int(j, "vm-clock-sec", (int64_t)(sn->vm_clock_nsec / 1000000000u));
		json_str(j, "id", sn->id_str ? sn->id_str : "");
		json_int(j, "vm-state-size", (int64_t)sn->vm_state_size);
		json_close(j, '}');
	}
	json_close(j, ']');
}

/* The keys in the order qemu-img 7.2 happens to print them. */
static void info_json(struct json *j, const struct info *in)
{
	const struct image *img = in->img;
	const struct qcow2 *q = img->qcow2;
	int64_t actual = image_allocated_bytes(img);
	uint64_t incompat = q ? q->h.incompatible_features : 0;

	json_open(j, NULL, '{');
	if (q && q->backing_file && q->backing_format)
		json_str(j, "backing-filename-format", q->backing_format);
	if (q && q->nb_snapshots)
		info_json_snapshots(j, q);
	json_int(j, "virtual-size", (int64_t)img->size);
	json_str(j, "filename", in->filename);
	if (q)
		json_int(j, "cluster-size", (int64_t)q->cluster_size);
	json_str(j, "format", image_format_name(img->format));
	if (actual >= 0)
		json_int(j, "actual-size", actual);
	if (q) {
		json_open(j, "format-specific", '{');
		json_str(j, "type", "qcow2");
		json_open(j, "data", '{');
		json_str(j, "compat", q->h.version >= 3 ? "1.1" : "0.10");
		json_str(j, "compression-type", q->h.compression_type ? "zstd" : "zlib");
		if (q->h.version >= 3)
			json_bool(j, "lazy-refcounts",
				  q->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS);
		json_int(j, "refcount-bits", q->refcount_bits);
		if (q->h.version >= 3) {
			json_bool(j, "corrupt", incompat & QCOW2_INCOMPAT_CORRUPT);
			json_bool(j, "extended-l2", incompat & QCOW2_INCOMPAT_EXTL2);
		}
		json_close(j, '}');
		json_close(j, '}');
	}
	if (q && q->backing_file) {
		json_str(j, "full-backing-filename", in->full_backing);
		json_str(j, "backing-filename", q->backing_file);
	}
	json_bool(j, "dirty-flag", incompat & QCOW2_INCOMPAT_DIRTY);
	json_close(j, '}');
}

static struct image *backing_of(const struct image *img)
{
	return img->qcow2 ? img->qcow2->backing : NULL;
}

int img_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, IMG_OPT_OUTPUT },
		{ "backing-chain", no_argument, NULL, IMG_OPT_BACKING_CHAIN },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	enum img_output out = IMG_OUTPUT_HUMAN;
	unsigned flags = IMAGE_NO_BACKING;
	const char *fmt = NULL;
	struct info in[IMAGE_MAX_CHAIN + 1];
	struct json j = { 0 };
	struct image *top, *img;
	bool chain = false;
	int c, n = 0;

	while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case IMG_OPT_OUTPUT:
			if (img_parse_output(optarg, &out) < 0)
				return 1;
			break;
		case IMG_OPT_BACKING_CHAIN:
			chain = true;
			break;
		case 'h':
			return img_cmd_help("info");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (chain)
		flags &= ~IMAGE_NO_BACKING;
	top = img_open_operand(argc, argv, fmt, flags);
	if (!top)
		return 1;
	for (img = top; img && n <= IMAGE_MAX_CHAIN; img = chain ? backing_of(img) : NULL, n++) {
		in[n].img = img;
		in[n].filename = n ? in[n - 1].full_backing : argv[optind];
		in[n].full_backing = NULL;
		if (img->qcow2 && img->qcow2->backing_file)
			in[n].full_backing = img_backing_path(in[n].filename,
							      img->qcow2->backing_file);
		if (img->qcow2 && img->qcow2->backing_file && !in[n].full_backing) {
			n++;
			break;
		}
	}
	if (chain && out == IMG_OUTPUT_JSON)
		json_open(&j, NULL, '[');
	for (int i = 0; i < n; i++) {
		if (out == IMG_OUTPUT_JSON) {
			info_json(&j, &in[i]);
		} else {
			if (i)
				putchar('\n');
			info_human(&in[i]);
		}
	}
	if (chain && out == IMG_OUTPUT_JSON)
		json_close(&j, ']');
	for (int i = 0; i < n; i++)
		free(in[i].full_backing);
	image_close(top);
	return 0;
}

/* ---- map ---- */

struct map_entry {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

/*
 * The depth qemu-img map gives a range no image defines: the image whose
 * backing file ends before the range (reads there are zeros by that
 * image's own rule), else the bottom of the chain.
 */
static int undefined_depth(const struct image *img, uint64_t offset)
{
	const struct image *b;
	int d = 0;

	while ((b = backing_of(img)) && offset < b->size) {
		img = b;
		d++;
	}
	return d;
}

static bool map_mergeable(const struct map_entry *a, const struct map_entry *b)
{
	return a->start + a->length == b->start && a->depth == b->depth &&
	       a->present == b->present && a->zero == b->zero && a->data == b->data &&
	       a->has_offset == b->has_offset &&
	       (!a->has_offset || a->offset + a->length == b->offset) &&
	       (a->file == b->file || (a->file && b->file && !strcmp(a->file, b->file)));
}

static void map_print(const struct map_entry *e, enum img_output out, bool first)
{
	if (out == IMG_OUTPUT_HUMAN) {
		if (e->data && !e->zero && e->has_offset)
			printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
			       (unsigned long long)e->length, (unsigned long long)e->offset,
			       e->file ? e->file : "");
		return;
	}
	if (!first)
		printf(",\n");
	printf("{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, \"zero\": %s, \"data\": %s",
	       (unsigned long long)e->start, (unsigned long long)e->length, e->depth,
	       e->present ? "true" : "false", e->zero ? "true" : "false",
	       e->data ? "true" : "false");
	if (e->has_offset)
		printf(", \"offset\": %llu", (unsigned long long)e->offset);
	putchar('}');
}

static void map_fill(struct map_entry *e, const struct image_extent *x, const struct image *top)
{
	const struct image *file = x->file;

	*e = (struct map_entry){
		.start = x->offset,
		.length = x->length,
		.depth = file ? x->depth : undefined_depth(top, x->offset),
		.present = file != NULL,
		.zero = img_extent_is_zero(x),
		.data = (x->flags & IMAGE_EXT_DATA) != 0,
		.file = file ? file->path : NULL,
	};
	if ((x->flags & IMAGE_EXT_DATA) && !(x->flags & IMAGE_EXT_COMPRESSED)) {
		e->has_offset = true;
		e->offset = x->host_offset;
	} else if (file && file->format == IMAGE_FORMAT_RAW) {
		/* A raw file maps every byte, holes too. */
		e->has_offset = true;
		e->offset = x->offset;
	}
}

/*
 * qemu-img looks through a qcow2 data cluster into the host file, and
 * calls holes there zeros, only in images it takes for preallocated
 * (preallocation=metadata): where more clusters have a refcount than the
 * file has blocks for, by a margin of a ninth (or two clusters).
 */
static bool looks_preallocated(const struct image *img)
{
	const struct qcow2 *q = img->qcow2;
	uint64_t real, threshold, n, rc;
	struct stat st;

	if (!q || fstat(img->fd, &st) < 0)
		return false;
	real = (uint64_t)st.st_blocks * 512 / q->cluster_size;
	threshold = MAX(real * 10 / 9, real + 2);
	n = ((uint64_t)st.st_size + q->cluster_size - 1) / q->cluster_size;
	for (uint64_t i = 0; i < n && threshold; i++)
		if (qcow2_get_refcount(img->qcow2, i, &rc) == 0 && rc > 0)
			threshold--;
	return threshold == 0;
}

struct prealloc_memo {
	const struct image *img[IMAGE_MAX_CHAIN + 1];
	bool prealloc[IMAGE_MAX_CHAIN + 1];
	int n;
};

static bool memo_preallocated(struct prealloc_memo *m, const struct image *img)
{
	for (int i = 0; i < m->n; i++)
		if (m->img[i] == img)
			return m->prealloc[i];
	if (m->n == IMAGE_MAX_CHAIN + 1)
		return false;
	m->img[m->n] = img;
	m->prealloc[m->n] = looks_preallocated(img);
	return m->prealloc[m->n++];
}

/* The host file's holes under a data extent of a preallocated image read as zeros. */
static void map_host_zeros(struct map_entry *e, const struct image *file, struct prealloc_memo *m)
{
	off_t d, h, host = (off_t)e->offset;

	if (!e->data || !e->has_offset || !file->qcow2 || !memo_preallocated(m, file))
		return;
	d = lseek(file->fd, host, SEEK_DATA);
	if (d < 0 || d > host) {
		/* A hole (or the end of the file) first: zeros up to the data. */
		e->zero = true;
		if (d > host && (uint64_t)(d - host) < e->length)
			e->length = (uint64_t)(d - host);
		return;
	}
	h = lseek(file->fd, host, SEEK_HOLE);
	if (h > host && (uint64_t)(h - host) < e->length)
		e->length = (uint64_t)(h - host);
}

int img_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, IMG_OPT_OUTPUT },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	enum img_output out = IMG_OUTPUT_HUMAN;
	struct map_entry cur = { 0 }, next;
	struct prealloc_memo memo = { .n = 0 };
	struct image_extent x;
	const char *fmt = NULL;
	unsigned flags = 0;
	struct image *img;
	uint64_t off = 0;
	bool have = false, first = true;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case IMG_OPT_OUTPUT:
			if (img_parse_output(optarg, &out) < 0)
				return 1;
			break;
		case 'h':
			return img_cmd_help("map");
		default:
			return img_bad_option(c, argv);
		}
	}
	img = img_open_operand(argc, argv, fmt, flags);
	if (!img)
		return 1;
	if (out == IMG_OUTPUT_HUMAN)
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	else
		putchar('[');
	while (off < img->size) {
		ret = image_block_status(img, off, img->size - off, true, &x);
		if (ret < 0 || x.length == 0 || x.offset != off) {
			fflush(stdout);
			if (!img_reported(img))
				img_error("Could not read file metadata: %s",
					  strerror(ret < 0 ? -ret : EIO));
			ret = 1;
			goto out;
		}
		map_fill(&next, &x, img);
		map_host_zeros(&next, x.file, &memo);
		if (have && map_mergeable(&cur, &next)) {
			cur.length += next.length;
		} else {
			if (have)
				map_print(&cur, out, first);
			first = first && !have;
			cur = next;
			have = true;
		}
		off += next.length;
	}
	if (have)
		map_print(&cur, out, first);
	if (out == IMG_OUTPUT_JSON)
		printf("]\n");
out:
	image_close(img);
	return ret;
}

/* ---- check ---- */

static void check_report(void *opaque, const char *line)
{
	(void)opaque;
	fprintf(stderr, "%s\n", line);
}

static void check_human(const struct qcow2_check_result *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (r->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Data may be corrupted, or further writes to the image may corrupt it.\n",
			       (unsigned long long)r->corruptions);
		if (r->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "This means waste of disk space, but no harm to data.\n",
			       (unsigned long long)r->leaks);
		if (r->check_errors)
			printf("\n%llu internal errors have occurred during the check.\n",
			       (unsigned long long)r->check_errors);
	}
	if (r->total_clusters && r->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       (unsigned long long)r->allocated_clusters,
		       (unsigned long long)r->total_clusters,
		       (double)r->allocated_clusters * 100.0 / (double)r->total_clusters,
		       (double)r->fragmented_clusters * 100.0 / (double)r->allocated_clusters,
		       (double)r->compressed_clusters * 100.0 / (double)r->allocated_clusters);
	if (r->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

/* qemu-img leaves out the counts that are zero (check-errors excepted). */
static void check_json(const struct qcow2_check_result *r, const char *filename)
{
	struct json j = { 0 };

	json_open(&j, NULL, '{');
	if (r->image_end_offset)
		json_int(&j, "image-end-offset", (int64_t)r->image_end_offset);
	if (r->total_clusters)
		json_int(&j, "total-clusters", (int64_t)r->total_clusters);
	if (r->corruptions)
		json_int(&j, "corruptions", (int64_t)r->corruptions);
	if (r->corruptions_fixed)
		json_int(&j, "corruptions-fixed", (int64_t)r->corruptions_fixed);
	json_int(&j, "check-errors", (int64_t)r->check_errors);
	if (r->leaks)
		json_int(&j, "leaks", (int64_t)r->leaks);
	if (r->leaks_fixed)
		json_int(&j, "leaks-fixed", (int64_t)r->leaks_fixed);
	if (r->allocated_clusters)
		json_int(&j, "allocated-clusters", (int64_t)r->allocated_clusters);
	if (r->fragmented_clusters)
		json_int(&j, "fragmented-clusters", (int64_t)r->fragmented_clusters);
	if (r->compressed_clusters)
		json_int(&j, "compressed-clusters", (int64_t)r->compressed_clusters);
	json_str(&j, "filename", filename);
	json_str(&j, "format", "qcow2");
	json_close(&j, '}');
}

int img_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "output", required_argument, NULL, IMG_OPT_OUTPUT },
		{ "repair", required_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	enum img_output out = IMG_OUTPUT_HUMAN;
	struct qcow2_check_result r = { 0 };
	unsigned flags = IMAGE_NO_BACKING | IMAGE_NO_REPAIR, fix = 0;
	const char *fmt = NULL, *filename;
	uint64_t leaks_fixed, corruptions_fixed;
	bool quiet = false;
	struct image *img;
	int c, f, ret;

	while ((c = getopt_long(argc, argv, ":f:r:hqU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "leaks"))
				fix = QCOW2_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = QCOW2_FIX_LEAKS | QCOW2_FIX_ERRORS;
			else
				return img_usage_error("Unknown option value for -r (expecting 'leaks' or 'all'): %s",
						       optarg);
			break;
		case 'q':
			quiet = true;
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case IMG_OPT_OUTPUT:
			if (img_parse_output(optarg, &out) < 0)
				return 1;
			break;
		case 'h':
			return img_cmd_help("check");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	filename = argv[optind];
	if (img_parse_format(fmt, &f) < 0)
		return 1;
	if (fix && (flags & IMAGE_NO_LOCK))
		return img_usage_error("option -r is not compatible with -U");
	if (fix)
		flags |= IMAGE_RDWR;
	img = img_open(filename, f, flags);
	if (!img)
		return 1;
	if (img->format != IMAGE_FORMAT_QCOW2) {
		image_close(img);
		img_error("This image format does not support checks");
		return 63;
	}
	ret = qcow2_check(img->qcow2, fix, &r, check_report, NULL);
	if (ret == 0 && (r.leaks_fixed || r.corruptions_fixed)) {
		leaks_fixed = r.leaks_fixed;
		corruptions_fixed = r.corruptions_fixed;
		if (out == IMG_OUTPUT_HUMAN && !quiet)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %llu leaked clusters\n    %llu corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       (unsigned long long)leaks_fixed, (unsigned long long)corruptions_fixed);
		memset(&r, 0, sizeof(r));
		ret = qcow2_check(img->qcow2, 0, &r, check_report, NULL);
		r.leaks_fixed = leaks_fixed;
		r.corruptions_fixed = corruptions_fixed;
	}
	if (ret == 0 && !quiet) {
		if (out == IMG_OUTPUT_HUMAN)
			check_human(&r);
		else
			check_json(&r, filename);
	}
	if (image_flush(img) < 0 && ret == 0 && fix)
		ret = -EIO;
	image_close(img);
	if (ret < 0 || r.check_errors) {
		if (ret < 0)
			img_error("Check failed: %s", strerror(-ret));
		else
			img_error("Check failed");
		return 1;
	}
	if (r.corruptions)
		return 2;
	return r.leaks ? 3 : 0;
}

/* ---- snapshot ---- */

int img_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const verbs[] = { ['c'] = "create", ['a'] = "apply", ['d'] = "delete" };
	char err[IMG_ERR_MAX] = "";
	const char *name = NULL;
	unsigned flags = IMAGE_NO_BACKING;
	struct image *img;
	int c, action = 0, ret;

	while ((c = getopt_long(argc, argv, ":la:c:d:hqU", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
		case 'a':
		case 'c':
		case 'd':
			if (action)
				return img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
			action = c;
			name = c == 'l' ? NULL : optarg;
			break;
		case 'q':
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case 'h':
			return img_cmd_help("snapshot");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	if (!action)
		action = 'l';
	if (action != 'l' && (flags & IMAGE_NO_LOCK))
		return img_usage_error("option -U can only be used with -l");
	if (action != 'l')
		flags |= IMAGE_RDWR;
	img = img_open(argv[optind], -1, flags);
	if (!img)
		return 1;
	if (action == 'l') {
		snapshot_table(img->qcow2);
		image_close(img);
		return 0;
	}
	if (img->format != IMAGE_FORMAT_QCOW2) {
		ret = -ENOTSUP;
	} else if (action == 'c') {
		ret = qcow2_snapshot_create(img->qcow2, name, err, sizeof(err));
	} else if (action == 'a') {
		ret = qcow2_snapshot_apply(img->qcow2, name, err, sizeof(err));
	} else {
		ret = qcow2_snapshot_delete(img->qcow2, name, err, sizeof(err));
	}
	if (ret == 0 && image_flush(img) < 0) {
		ret = -EIO;
		snprintf(err, sizeof(err), "flush failed");
	}
	image_close(img);
	if (ret < 0) {
		/* The snapshot code's line names the snapshot and the action already. */
		if (err[0])
			img_error("%s", err);
		else
			img_error("Could not %s snapshot '%s': %s", verbs[action], name,
				  strerror(-ret));
		return 1;
	}
	return 0;
}
