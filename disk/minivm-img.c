// SPDX-License-Identifier: MIT
/*
 * minivm-img: qemu-img's commands, options, output and exit codes for raw
 * and qcow2 images, so that people who know qemu-img need to learn nothing
 * (QEMU 7.2's qemu-img is the reference). This file has main(), the
 * helpers the commands share (sizes with QEMU's suffixes, -o lists, error
 * lines), create and resize; img-info.c and img-copy.c have the rest.
 *
 * Where qemu-img prints a second line of advice ("Try 'qemu-img --help'"),
 * we print one line: every error is one "minivm-img: ..." line on stderr
 * and a non-zero exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/img.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

/* One "minivm-img: ..." line on stderr, after what stdout holds; tail ends it. */
static void verror(const char *tail, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("minivm-img: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(tail, stderr);
}

void img_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror("\n", fmt, ap);
	va_end(ap);
}

int img_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(" (see 'minivm-img --help')\n", fmt, ap);
	va_end(ap);
	return 1;
}

int img_bad_option(int c, char **argv)
{
	if (c == ':')
		return img_usage_error("option '%s' needs an argument", argv[optind - 1]);
	if (optopt)
		return img_usage_error("unrecognized option '-%c'", optopt);
	return img_usage_error("unrecognized option '%s'", argv[optind - 1]);
}

/*
 * QEMU's qemu_strtosz(): a decimal number, or 0x-prefixed hex, with an
 * optional fraction and an optional unit suffix (b, k, M, G, T, P, E, any
 * case, powers of 1024). A fraction must come out as whole bytes unless
 * there is a multiplying suffix, where it is rounded to the nearest byte.
 */
int img_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "bkmgtpe";
	unsigned long long whole;
	double frac = 0, v;
	const char *p, *u;
	char *end;
	int shift = 0;
	bool hex;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
	errno = 0;
	whole = strtoull(s, &end, hex ? 16 : 10);
	if (errno || end == s)
		return -EINVAL;
	p = end;
	if (*p == '.' && !hex) {
		frac = strtod(p, &end);
		if (end == p + 1 && !(p[1] >= '0' && p[1] <= '9'))
			return -EINVAL;
		p = end;
	}
	if (*p) {
		u = strchr(units, *p | 0x20);
		if (!u || p[1])
			return -EINVAL;
		shift = 10 * (int)(u - units);
	}
	if (shift >= 63 || whole > (uint64_t)INT64_MAX >> shift)
		return -ERANGE;
	v = frac * (double)(1ull << shift);
	if (shift == 0 && frac != 0)
		return -EINVAL;
	if ((whole << shift) + v >= 9223372036854775807.0)
		return -ERANGE;
	*out = (whole << shift) + (uint64_t)(v + 0.5);
	return 0;
}

int img_parse_output(const char *s, enum img_output *out)
{
	if (!strcmp(s, "human")) {
		*out = IMG_OUTPUT_HUMAN;
	} else if (!strcmp(s, "json")) {
		*out = IMG_OUTPUT_JSON;
	} else {
		img_usage_error("--output must be used with human or json as argument.");
		return -EINVAL;
	}
	return 0;
}

int img_parse_format(const char *name, int *format)
{
	enum image_format f;

	if (!name) {
		*format = -1;
		return 0;
	}
	if (image_format_parse(name, &f) < 0) {
		img_error("Unknown file format '%s'", name);
		return -EINVAL;
	}
	*format = f;
	return 0;
}

void img_size_str(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	unsigned i = 0;

	/* The unit goes up once the number would reach 1000 of the smaller one. */
	while (i < 6 && (double)v >= 1000.0 * (double)(1ull << (10 * i)))
		i++;
	snprintf(buf, len, "%0.3g %sB", (double)v / (double)(1ull << (10 * i)), units[i]);
}

struct image *img_open(const char *path, int format, unsigned flags)
{
	char err[IMG_ERR_MAX];
	struct image *img;

	if (image_open(path, format, flags, &img, err, sizeof(err)) < 0) {
		img_error("%s", err);
		return NULL;
	}
	return img;
}

struct image *img_open_operand(int argc, char **argv, const char *fmt, unsigned flags)
{
	int f;

	if (optind != argc - 1) {
		img_usage_error("Expecting one image file name");
		return NULL;
	}
	if (img_parse_format(fmt, &f) < 0)
		return NULL;
	return img_open(argv[optind], f, flags);
}

bool img_reported(const struct image *img)
{
	for (; img && img->qcow2; img = img->qcow2->backing)
		if (img->qcow2->reported)
			return true;
	return false;
}

char *img_backing_path(const char *overlay, const char *backing)
{
	const char *slash = strrchr(overlay, '/');
	char *p;

	if (backing[0] == '/' || !slash)
		return strdup(backing);
	if (asprintf(&p, "%.*s%s", (int)(slash - overlay + 1), overlay, backing) < 0)
		return NULL;
	return p;
}

bool img_buf_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* The first 16 bytes one by one, then the buffer against itself. */
	for (size_t i = 0; i < len && i < 16; i++)
		if (p[i])
			return false;
	return len <= 16 || !memcmp(p, p + 16, len - 16);
}

void img_progress_update(struct img_progress *p, uint64_t done, uint64_t total)
{
	double pct = total ? (double)done * 100.0 / (double)total : 100.0;

	if (!p->on || (pct - p->last < 1.0 && pct < 100.0 && p->last >= 0))
		return;
	p->last = pct;
	printf("    (%.2f/100%%)\r", pct);
	fflush(stdout);
}

void img_progress_end(struct img_progress *p)
{
	if (!p->on)
		return;
	printf("    (100.00/100%%)\r\n");
	fflush(stdout);
}

/* ---- create ---- */

static int parse_bool(const char *key, const char *v, bool *out)
{
	if (!strcmp(v, "on")) {
		*out = true;
	} else if (!strcmp(v, "off")) {
		*out = false;
	} else {
		img_error("Parameter '%s' expects 'on' or 'off'", key);
		return -EINVAL;
	}
	return 0;
}

static int parse_prealloc(const char *v, int *out)
{
	static const char *const names[] = {
		[QCOW2_PREALLOC_OFF] = "off",
		[QCOW2_PREALLOC_METADATA] = "metadata",
		[QCOW2_PREALLOC_FALLOC] = "falloc",
		[QCOW2_PREALLOC_FULL] = "full",
	};

	for (int i = 0; i < 4; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	img_error("invalid parameter value: %s", v);
	return -EINVAL;
}

static int parse_compat(const char *v, int *out)
{
	if (!strcmp(v, "0.10") || !strcmp(v, "v2")) {
		*out = 2;
	} else if (!strcmp(v, "1.1") || !strcmp(v, "v3")) {
		*out = 3;
	} else {
		img_error("Parameter 'compat' does not accept value '%s' (0.10, v2, 1.1 or v3)", v);
		return -EINVAL;
	}
	return 0;
}

/* One key=value of -o; value points into the caller's string. */
static int create_opt(struct img_create_opts *o, const char *key, const char *v,
		      const char *filename)
{
	bool qcow2 = o->format == IMAGE_FORMAT_QCOW2;
	uint64_t n;

	if (!v && strcmp(key, "help")) {
		img_error("%s: Parameter '%s' needs a value", filename, key);
		return -EINVAL;
	}
	if (!strcmp(key, "size")) {
		if (img_parse_size(v, &n) < 0) {
			img_error("%s: Parameter 'size' expects a size ('%s')", filename, v);
			return -EINVAL;
		}
		o->size = n;
		o->size_set = true;
	} else if (!strcmp(key, "preallocation")) {
		o->prealloc_str = v;
		return parse_prealloc(v, &o->prealloc);
	} else if (qcow2 && !strcmp(key, "cluster_size")) {
		if (img_parse_size(v, &n) < 0 || n > UINT32_MAX) {
			img_error("%s: Parameter 'cluster_size' expects a size ('%s')", filename, v);
			return -EINVAL;
		}
		o->cluster_size = (uint32_t)n;
	} else if (qcow2 && !strcmp(key, "compat")) {
		o->compat_str = v;
		return parse_compat(v, &o->compat);
	} else if (qcow2 && !strcmp(key, "lazy_refcounts")) {
		o->lazy_set = true;
		return parse_bool(key, v, &o->lazy_refcounts);
	} else if (qcow2 && !strcmp(key, "refcount_bits")) {
		char *end;
		unsigned long b;

		errno = 0;
		b = strtoul(v, &end, 10);
		if (errno || end == v || *end || b == 0 || b > 64) {
			img_error("%s: Refcount width must be a power of two and may not exceed 64 bits",
				  filename);
			return -EINVAL;
		}
		o->refcount_bits = (uint32_t)b;
	} else if (qcow2 && !strcmp(key, "backing_file")) {
		o->backing_file = v;
	} else if (qcow2 && !strcmp(key, "backing_fmt")) {
		o->backing_format = v;
	} else {
		img_error("%s: Invalid parameter '%s'", filename, key);
		return -EINVAL;
	}
	return 0;
}

int img_parse_create_opts(char *s, struct img_create_opts *o, const char *filename)
{
	char *p = s;

	while (*p) {
		char *item = p, *w = p, *eq;

		/* An item runs to the next single comma; ",," is a comma. */
		while (*p) {
			if (*p == ',' && p[1] == ',') {
				*w++ = ',';
				p += 2;
			} else if (*p == ',') {
				p++;
				break;
			} else {
				*w++ = *p++;
			}
		}
		*w = '\0';
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (eq)
			*eq++ = '\0';
		if (create_opt(o, item, eq, filename) < 0)
			return -EINVAL;
	}
	return 0;
}

void img_create_opts_help(enum image_format format)
{
	if (format == IMAGE_FORMAT_RAW) {
		printf("Supported raw options:\n"
		       "  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n"
		       "  size=<size>            - Virtual disk size\n");
		return;
	}
	printf("Supported qcow2 options:\n"
	       "  backing_file=<str>     - File name of a base image\n"
	       "  backing_fmt=<str>      - Image format of the base image\n"
	       "  cluster_size=<size>    - qcow2 cluster size\n"
	       "  compat=<str>           - Compatibility level (v2 [0.10] or v3 [1.1])\n"
	       "  lazy_refcounts=<bool (on/off)> - Postpone refcount updates\n"
	       "  preallocation=<str>    - Preallocation mode (allowed values: off, metadata, falloc, full)\n"
	       "  refcount_bits=<num>    - Width of a reference count entry in bits\n"
	       "  size=<size>            - Virtual disk size\n");
}

/* qemu-img's "Formatting ..." line: the options that were set, and the defaults it shows. */
static void print_formatting(const char *filename, const struct img_create_opts *o)
{
	printf("Formatting '%s', fmt=%s", filename, image_format_name(o->format));
	if (o->format == IMAGE_FORMAT_QCOW2) {
		printf(" cluster_size=%u extended_l2=off", o->cluster_size ? o->cluster_size : 65536);
		if (o->prealloc_str)
			printf(" preallocation=%s", o->prealloc_str);
		printf(" compression_type=zlib size=%llu", (unsigned long long)o->size);
		if (o->backing_file)
			printf(" backing_file=%s", o->backing_file);
		if (o->backing_format)
			printf(" backing_fmt=%s", o->backing_format);
		if (o->compat_str)
			printf(" compat=%s", o->compat_str);
		printf(" lazy_refcounts=%s refcount_bits=%u", o->lazy_refcounts ? "on" : "off",
		       o->refcount_bits ? o->refcount_bits : 16);
	} else {
		printf(" size=%llu", (unsigned long long)o->size);
		if (o->prealloc_str)
			printf(" preallocation=%s", o->prealloc_str);
	}
	putchar('\n');
	fflush(stdout);
}

/* What qcow2_create() would refuse too, in qemu-img's words, before anything is written. */
static int check_qcow2_opts(const char *filename, const struct img_create_opts *o)
{
	uint32_t cs = o->cluster_size, rb = o->refcount_bits;

	if (cs && (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))) {
		img_error("%s: Cluster size must be a power of two between 512 and 2048k", filename);
		return -EINVAL;
	}
	if (rb && (rb & (rb - 1))) {
		img_error("%s: Refcount width must be a power of two and may not exceed 64 bits",
			  filename);
		return -EINVAL;
	}
	if (o->compat == 2 && o->lazy_refcounts) {
		img_error("%s: Lazy refcounts only supported with compatibility level 1.1 and above (use compat=1.1 or greater)",
			  filename);
		return -EINVAL;
	}
	if (o->compat == 2 && rb && rb != 16) {
		img_error("%s: Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)",
			  filename);
		return -EINVAL;
	}
	if (o->backing_file && o->prealloc != QCOW2_PREALLOC_OFF) {
		img_error("%s: Backing file and preallocation cannot be used at the same time",
			  filename);
		return -EINVAL;
	}
	return 0;
}

static int write_zeros(int fd, uint64_t size)
{
	char *buf = calloc(1, IMG_BUF_SIZE);
	uint64_t off = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t n = (size_t)MIN(size - off, IMG_BUF_SIZE);
		ssize_t r = pwrite(fd, buf, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		off += (uint64_t)r;
	}
	free(buf);
	return 0;
}

static int create_raw(const char *filename, const struct img_create_opts *o)
{
	uint64_t size = (o->size + 511) & ~511ull;
	int fd, ret = 0;

	if (o->prealloc == QCOW2_PREALLOC_METADATA) {
		img_error("%s: Unsupported preallocation mode: metadata", filename);
		return -EINVAL;
	}
	fd = open(filename, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		img_error("%s: Could not create '%s': %s", filename, filename, strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		if (ret == -EFBIG || ret == -EINVAL)
			img_error("%s: The image size is too large for file format 'raw'", filename);
		else
			img_error("%s: Could not resize file: %s", filename, strerror(-ret));
		goto out;
	}
	if (o->prealloc == QCOW2_PREALLOC_FALLOC && size) {
		ret = -posix_fallocate(fd, 0, (off_t)size);
		if (ret)
			img_error("%s: Could not preallocate data for the new file: %s", filename,
				  strerror(-ret));
	} else if (o->prealloc == QCOW2_PREALLOC_FULL) {
		ret = write_zeros(fd, size);
		if (ret)
			img_error("%s: Could not write zeros for preallocation: %s", filename,
				  strerror(-ret));
	}
	if (!ret && fsync(fd) < 0) {
		ret = -errno;
		img_error("%s: Could not flush: %s", filename, strerror(-ret));
	}
out:
	close(fd);
	return ret;
}

/*
 * The backing file of a new image must open, with the format given for it
 * (qemu-img 7.2 insists on -F: probing the format of a file that a guest
 * may have written to is how guests get to read host files). With no
 * size given, the backing file's is taken.
 */
static int check_backing(const char *filename, struct img_create_opts *o, bool unsafe)
{
	char err[IMG_ERR_MAX];
	enum image_format probed;
	struct image *b;
	char *path;
	int fmt, ret;

	if (o->format != IMAGE_FORMAT_QCOW2) {
		img_error("%s: Backing file not supported for file format '%s'", filename,
			  image_format_name(o->format));
		return -ENOTSUP;
	}
	path = img_backing_path(filename, o->backing_file);
	if (!path)
		return -ENOMEM;
	if (!o->backing_format) {
		if (!unsafe && image_probe(path, &probed, err, sizeof(err)) == 0)
			img_error("%s: Backing file specified without backing format (detected format of %s: use -F %s)",
				  filename, image_format_name(probed), image_format_name(probed));
		else
			img_error("%s: Backing file specified without backing format", filename);
		free(path);
		return -EINVAL;
	}
	ret = img_parse_format(o->backing_format, &fmt);
	if (ret < 0 || unsafe) {
		free(path);
		return ret;
	}
	ret = image_open(path, fmt, IMAGE_NO_BACKING | IMAGE_NO_LOCK, &b, err, sizeof(err));
	free(path);
	if (ret < 0) {
		img_error("%s: Could not open backing image: %s", filename, err);
		return ret;
	}
	if (!o->size_set) {
		o->size = b->size;
		o->size_set = true;
	}
	image_close(b);
	return 0;
}

int img_do_create(const char *filename, struct img_create_opts *o, bool quiet)
{
	char err[IMG_ERR_MAX];
	struct qcow2_create_opts q;

	if (!o->size_set) {
		img_error("%s: Image creation needs a size parameter", filename);
		return 1;
	}
	if (o->size > (uint64_t)INT64_MAX) {
		img_error("Invalid image size specified. Must be between 0 and 9223372036854775807.");
		return 1;
	}
	if (o->format == IMAGE_FORMAT_QCOW2 && check_qcow2_opts(filename, o) < 0)
		return 1;
	if (!quiet)
		print_formatting(filename, o);
	if (o->format == IMAGE_FORMAT_RAW)
		return create_raw(filename, o) < 0;

	q = (struct qcow2_create_opts){
		.size = o->size,
		.cluster_size = o->cluster_size,
		.compat = o->compat ? o->compat : 3,
		.refcount_bits = o->refcount_bits,
		.prealloc = o->prealloc,
		.lazy_refcounts = o->lazy_refcounts,
		.backing_file = o->backing_file,
		.backing_format = o->backing_format,
	};
	if (qcow2_create(filename, &q, err, sizeof(err)) < 0) {
		img_error("%s: %s", filename, err);
		return 1;
	}
	return 0;
}

int img_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct img_create_opts o = { .format = IMAGE_FORMAT_RAW };
	const char *fmt = "raw", *backing = NULL, *backing_fmt = NULL, *filename;
	char *optstr[16];
	unsigned nopt = 0;
	bool unsafe = false, quiet = false;
	int c, f;

	while ((c = getopt_long(argc, argv, ":f:o:b:F:uqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (nopt == ARRAY_SIZE(optstr))
				return img_usage_error("too many -o options");
			optstr[nopt++] = optarg;
			break;
		case 'b':
			backing = optarg;
			break;
		case 'F':
			backing_fmt = optarg;
			break;
		case 'u':
			unsafe = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			return img_cmd_help("create");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (img_parse_format(fmt, &f) < 0)
		return 1;
	o.format = f;
	for (unsigned i = 0; i < nopt; i++) {
		if (!strcmp(optstr[i], "help") || !strcmp(optstr[i], "?")) {
			img_create_opts_help(o.format);
			return 0;
		}
	}
	if (optind >= argc)
		return img_usage_error("Expecting image file name");
	filename = argv[optind++];
	for (unsigned i = 0; i < nopt; i++)
		if (img_parse_create_opts(optstr[i], &o, filename) < 0)
			return 1;
	if (optind < argc) {
		if (img_parse_size(argv[optind], &o.size) < 0) {
			img_error("Invalid image size specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
			return 1;
		}
		o.size_set = true;
		optind++;
	}
	if (optind < argc)
		return img_usage_error("Unexpected argument '%s'", argv[optind]);
	if (backing)
		o.backing_file = backing;
	if (backing_fmt)
		o.backing_format = backing_fmt;
	if (o.backing_file && !*o.backing_file)
		o.backing_file = NULL;
	if (o.backing_file && check_backing(filename, &o, unsafe) < 0)
		return 1;
	return img_do_create(filename, &o, quiet);
}

/* ---- resize ---- */

static int resize_raw(struct image *img, uint64_t size)
{
	if (ftruncate(img->fd, (off_t)size) < 0 || fsync(img->fd) < 0)
		return -errno;
	img->size = size;
	return 0;
}

int img_resize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "shrink", no_argument, NULL, IMG_OPT_SHRINK },
		{ NULL, 0, NULL, 0 },
	};
	const char *fmt = NULL, *sizearg, *filename;
	char err[IMG_ERR_MAX];
	bool shrink = false, quiet = false;
	struct image *img;
	uint64_t n, size;
	int c, f, ret, sign = 0;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return img_cmd_help("resize");
	/* The size may be "-1G": take it off the end before getopt sees it as an option. */
	if (argc < 3)
		return img_usage_error("Not enough arguments");
	sizearg = argv[--argc];
	while ((c = getopt_long(argc, argv, ":f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case IMG_OPT_SHRINK:
			shrink = true;
			break;
		case 'h':
			return img_cmd_help("resize");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	filename = argv[optind];
	if (img_parse_format(fmt, &f) < 0)
		return 1;
	if (*sizearg == '+' || *sizearg == '-')
		sign = *sizearg++ == '+' ? 1 : -1;
	if (img_parse_size(sizearg, &n) < 0) {
		img_error("Invalid image size specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
		return 1;
	}
	img = img_open(filename, f, IMAGE_RDWR | IMAGE_NO_BACKING);
	if (!img)
		return 1;
	ret = 1;
	if (sign < 0 && n >= img->size) {
		img_error("New image size must be positive");
		goto out;
	}
	size = sign > 0 ? img->size + n : sign < 0 ? img->size - n : n;
	if (sign > 0 && (size < n || size > (uint64_t)INT64_MAX)) {
		img_error("Image size too large");
		goto out;
	}
	if (size == 0) {
		img_error("New image size must be positive");
		goto out;
	}
	if (size < img->size && !shrink) {
		img_error("Use the --shrink option to perform a shrink operation.");
		goto out;
	}
	if (size < img->size)
		fprintf(stderr, "minivm-img: warning: Shrinking an image will delete all data beyond the shrunken image's end. Before performing such an operation, make sure there is no important data there.\n");
	if (img->format == IMAGE_FORMAT_QCOW2) {
		err[0] = '\0';
		if (qcow2_resize(img->qcow2, size, shrink, err, sizeof(err)) < 0) {
			img_error("%s", err[0] ? err : "Error resizing image");
			goto out;
		}
	} else {
		size = (size + 511) & ~511ull;
		c = resize_raw(img, size);
		if (c < 0) {
			img_error("Error resizing image: %s", strerror(-c));
			goto out;
		}
	}
	if (image_flush(img) < 0) {
		img_error("%s: flush failed", filename);
		goto out;
	}
	ret = 0;
	if (!quiet)
		printf("Image resized.\n");
out:
	image_close(img);
	return ret;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
} commands[] = {
	{ "check", img_check, "check [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-U] filename" },
	{ "commit", img_commit, "commit [-q] [-f fmt] [-d] [-p] filename" },
	{ "compare", img_compare, "compare [-f fmt] [-F fmt] [-p] [-q] [-s] [-U] filename1 filename2" },
	{ "convert", img_convert, "convert [-U] [-c] [-p] [-q] [-n] [-f fmt] [-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] filename [filename2 [...]] output_filename" },
	{ "create", img_create, "create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]" },
	{ "info", img_info, "info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename" },
	{ "map", img_map, "map [-f fmt] [--output=ofmt] [-U] filename" },
	{ "snapshot", img_snapshot, "snapshot [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename" },
	{ "rebase", img_rebase, "rebase [-U] [-q] [-f fmt] [-p] [-u] -b backing_file [-F backing_fmt] filename" },
	{ "resize", img_resize, "resize [-f fmt] [-q] [--shrink] filename [+ | -]size" },
};

int img_cmd_help(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].name, name))
			printf("usage: minivm-img %s\n", commands[i].usage);
	return 0;
}

static void help(void)
{
	printf("minivm-img version %s\n"
	       "usage: minivm-img [-h | -V] command [command options]\n"
	       "minivm's disk image utility: qemu-img's commands for raw and qcow2 images\n\n"
	       "Command syntax:\n", MINIVM_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		printf("  %s\n", commands[i].usage);
	printf("\nSizes take the suffixes k, M, G, T, P and E (powers of 1024).\n"
	       "Formats: raw, qcow2. Output formats (--output): human, json.\n");
}

int main(int argc, char **argv)
{
	log_prog = "minivm-img";
	if (argc < 2)
		return img_usage_error("Not enough arguments");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		help();
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("minivm-img version %s\n", MINIVM_VERSION);
		return 0;
	}
	if (argv[1][0] == '-')
		return img_usage_error("unrecognized option '%s'", argv[1]);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			/* Our own messages, not getopt's. */
			opterr = 0;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	return img_usage_error("Command not found: %s", argv[1]);
}
