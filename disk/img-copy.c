// SPDX-License-Identifier: MIT
/*
 * The minivm-img commands that move data: convert, compare, commit and
 * rebase. All of them walk images by extent (image_block_status()), so
 * that holes and zero clusters cost nothing, and move data IMG_BUF_SIZE
 * bytes at a time: an image is never read whole into memory.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk/img.h"
#include "disk/qcow2.h"
#include "vmm/log.h"

/* ---- convert ---- */

/* The sources of convert, one after the other in one address space. */
struct sources {
	struct image **img;
	uint64_t *start;
	int n;
	uint64_t total;
};

static int src_index(const struct sources *s, uint64_t off)
{
	int i = 0;

	while (i < s->n - 1 && off >= s->start[i + 1])
		i++;
	return i;
}

/* Block status in the joined address space; extents stop at a source's end. */
static int src_status(const struct sources *s, uint64_t off, uint64_t len, bool with_backing,
		      struct image_extent *e)
{
	int i = src_index(s, off);
	uint64_t end = s->start[i] + s->img[i]->size;
	int ret;

	ret = image_block_status(s->img[i], off - s->start[i], MIN(len, end - off), with_backing, e);
	if (ret < 0)
		return ret;
	if (e->length == 0)
		return -EIO;
	e->offset += s->start[i];
	return 0;
}

static int src_read(const struct sources *s, void *buf, uint64_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		int i = src_index(s, off);
		uint64_t n = MIN(len, s->start[i] + s->img[i]->size - off);
		int ret = image_pread(s->img[i], p, n, off - s->start[i]);

		if (ret < 0)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

struct convert {
	struct sources src;
	struct image *out;
	bool compress;
	bool target_zero;         /* the target reads as zeros where we write nothing */
	bool top_only;            /* -B: copy what the sources' top images allocate */
	uint64_t sparse;          /* -S: zero runs this long (aligned) are not written */
	uint64_t cluster;         /* -c: the target's cluster size */
	char *buf;
	struct img_progress progress;
};

/* Writes buf, leaving out aligned all-zero runs of c->sparse bytes when the target is zero. */
static int write_sparse(struct convert *c, const char *buf, uint64_t len, uint64_t off)
{
	uint64_t pos = 0;

	if (!c->target_zero || !c->sparse)
		return image_pwrite(c->out, buf, len, off);
	while (pos < len) {
		uint64_t g = MIN(len - pos, c->sparse - (off + pos) % c->sparse);
		uint64_t run = pos;
		bool zero = img_buf_is_zero(buf + pos, g);

		/* Extend the run while granules keep the same zero-ness. */
		pos += g;
		while (pos < len) {
			uint64_t g2 = MIN(len - pos, c->sparse);

			if (img_buf_is_zero(buf + pos, g2) != zero)
				break;
			pos += g2;
		}
		if (!zero) {
			int ret = image_pwrite(c->out, buf + run, pos - run, off + run);

			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int write_compressed(struct convert *c, const char *buf, uint64_t len, uint64_t off)
{
	for (uint64_t pos = 0; pos < len; pos += c->cluster) {
		uint64_t n = MIN(len - pos, c->cluster);
		int ret;

		if (img_buf_is_zero(buf + pos, n)) {
			if (c->target_zero)
				continue;
			ret = image_write_zeroes(c->out, off + pos, n, false);
		} else if (n == c->cluster) {
			ret = qcow2_pwrite_compressed(c->out->qcow2, buf + pos, off + pos);
		} else {
			/* The image's last cluster is partial: it stays uncompressed. */
			ret = image_pwrite(c->out, buf + pos, n, off + pos);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* One extent of the sources, at most IMG_BUF_SIZE long. 0, or -errno with *what set. */
static int convert_step(struct convert *c, uint64_t off, uint64_t *done, const char **what)
{
	struct image_extent e;
	uint64_t len = MIN(c->src.total - off, IMG_BUF_SIZE);
	int ret;

	/* -c writes whole clusters: take whole ones, or the tail of the image. */
	if (c->compress && len == IMG_BUF_SIZE)
		len -= (off + len) % c->cluster;
	*what = "reading";
	ret = src_status(&c->src, off, len, !c->top_only, &e);
	if (ret < 0)
		return ret;
	len = e.length;
	if (c->compress && len < c->cluster && off + len < c->src.total) {
		/* An extent boundary inside a cluster: that cluster goes whole, read as it is. */
		len = MIN(c->cluster - off % c->cluster, c->src.total - off);
		e.flags = IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED;
	} else if (c->compress && off + len < c->src.total && len % c->cluster) {
		len -= len % c->cluster;
	}
	*done = len;
	if (c->top_only && !(e.flags & IMAGE_EXT_ALLOCATED))
		return 0; /* the target's backing file has it */
	/* -S 0 asks for a fully allocated output: zeros are written like data. */
	if (img_extent_is_zero(&e) && c->sparse) {
		*what = "writing";
		return c->target_zero ? 0 : image_write_zeroes(c->out, off, len, false);
	}
	ret = src_read(&c->src, c->buf, len, off);
	if (ret < 0)
		return ret;
	*what = "writing";
	if (c->compress)
		return write_compressed(c, c->buf, len, off);
	return write_sparse(c, c->buf, len, off);
}

static bool convert_reported(const struct convert *c)
{
	for (int i = 0; i < c->src.n; i++)
		if (img_reported(c->src.img[i]))
			return true;
	return img_reported(c->out);
}

static int convert_copy(struct convert *c)
{
	uint64_t off = 0, done;
	const char *what;
	int ret;

	img_progress_update(&c->progress, 0, c->src.total);
	while (off < c->src.total) {
		ret = convert_step(c, off, &done, &what);
		if (ret < 0) {
			if (!convert_reported(c))
				img_error("error while %s at byte %llu: %s", what,
					  (unsigned long long)off, strerror(-ret));
			return ret;
		}
		off += done;
		img_progress_update(&c->progress, off, c->src.total);
	}
	ret = image_flush(c->out);
	if (ret < 0)
		img_error("error while flushing the output: %s", strerror(-ret));
	else
		img_progress_end(&c->progress);
	return ret;
}

static int open_sources(struct sources *s, char **paths, int n, int fmt, unsigned flags)
{
	s->img = calloc((size_t)n, sizeof(*s->img));
	s->start = calloc((size_t)n, sizeof(*s->start));
	if (!s->img || !s->start) {
		img_error("out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		s->img[i] = img_open(paths[i], fmt, flags);
		if (!s->img[i])
			return -EIO;
		s->n = i + 1;
		s->start[i] = s->total;
		s->total += s->img[i]->size;
	}
	return 0;
}

static void close_sources(struct sources *s)
{
	for (int i = 0; i < s->n; i++)
		image_close(s->img[i]);
	free(s->img);
	free(s->start);
}

struct convert_args {
	const char *fmt, *out_fmt, *backing, *backing_fmt;
	char *optstr[16];
	unsigned nopt;
	bool no_create, quiet;
	unsigned flags;
};

static int convert_target(struct convert *c, struct convert_args *a, const char *filename)
{
	struct img_create_opts o = { 0 };
	int f;

	if (img_parse_format(a->out_fmt, &f) < 0)
		return -EINVAL;
	o.format = f;
	if (c->compress && o.format != IMAGE_FORMAT_QCOW2) {
		img_error("Compression not supported for this file format");
		return -ENOTSUP;
	}
	if (!a->no_create) {
		for (unsigned i = 0; i < a->nopt; i++)
			if (img_parse_create_opts(a->optstr[i], &o, filename) < 0)
				return -EINVAL;
		o.size = c->src.total;
		o.size_set = true;
		if (a->backing) {
			o.backing_file = a->backing;
			o.backing_format = a->backing_fmt;
		}
		if (o.backing_file && o.format != IMAGE_FORMAT_QCOW2) {
			img_error("%s: Backing file not supported for file format '%s'", filename,
				  image_format_name(o.format));
			return -ENOTSUP;
		}
		if (img_do_create(filename, &o, true))
			return -EIO;
	}
	c->out = img_open(filename, f, IMAGE_RDWR | (a->flags & IMAGE_NO_LOCK));
	if (!c->out)
		return -EIO;
	if (c->out->size < c->src.total) {
		img_error("%s: the output image is smaller (%llu bytes) than the input (%llu bytes)",
			  filename, (unsigned long long)c->out->size,
			  (unsigned long long)c->src.total);
		return -ENOSPC;
	}
	c->top_only = a->backing != NULL || o.backing_file != NULL;
	c->target_zero = !a->no_create && !c->top_only;
	if (c->compress)
		c->cluster = c->out->qcow2->cluster_size;
	return 0;
}

int img_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct convert_args a = { .out_fmt = "raw" };
	struct convert c = { .sparse = IMG_SPARSE_SIZE, .progress = { .last = -1 } };
	int f, ch, ret = 1;
	uint64_t n;

	while ((ch = getopt_long(argc, argv, ":f:O:o:B:F:S:cpqnhU", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			a.fmt = optarg;
			break;
		case 'O':
			a.out_fmt = optarg;
			break;
		case 'o':
			if (a.nopt == ARRAY_SIZE(a.optstr))
				return img_usage_error("too many -o options");
			a.optstr[a.nopt++] = optarg;
			break;
		case 'B':
			a.backing = optarg;
			break;
		case 'F':
			a.backing_fmt = optarg;
			break;
		case 'S':
			if (img_parse_size(optarg, &n) < 0 || n % 512 || n > IMG_BUF_SIZE) {
				img_error("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to %u.",
					  IMG_BUF_SIZE);
				return 1;
			}
			c.sparse = n;
			break;
		case 'c':
			c.compress = true;
			break;
		case 'p':
			c.progress.on = true;
			break;
		case 'q':
			a.quiet = true;
			break;
		case 'n':
			a.no_create = true;
			break;
		case 'U':
			a.flags |= IMAGE_NO_LOCK;
			break;
		case 'h':
			return img_cmd_help("convert");
		default:
			return img_bad_option(ch, argv);
		}
	}
	if (a.quiet)
		c.progress.on = false;
	if (argc - optind < 2)
		return img_usage_error("Must specify image file name");
	if (a.no_create && (a.backing || a.nopt))
		return img_usage_error("-n cannot be used with -B or -o");
	for (unsigned i = 0; i < a.nopt; i++) {
		if (!strcmp(a.optstr[i], "help") || !strcmp(a.optstr[i], "?")) {
			enum image_format of;

			if (image_format_parse(a.out_fmt, &of) < 0) {
				img_error("Unknown file format '%s'", a.out_fmt);
				return 1;
			}
			img_create_opts_help(of);
			return 0;
		}
	}
	if (img_parse_format(a.fmt, &f) < 0)
		return 1;
	c.buf = malloc(IMG_BUF_SIZE);
	if (!c.buf) {
		img_error("out of memory");
		return 1;
	}
	if (open_sources(&c.src, argv + optind, argc - optind - 1, f, a.flags) < 0)
		goto out;
	if (convert_target(&c, &a, argv[argc - 1]) < 0)
		goto out;
	if (convert_copy(&c) < 0)
		goto out;
	ret = 0;
out:
	image_close(c.out);
	close_sources(&c.src);
	free(c.buf);
	return ret;
}

/* ---- compare ---- */

/* compare's exit codes, qemu-img's. */
enum {
	CMP_SAME = 0,
	CMP_DIFFERENT = 1,
	CMP_OPEN_ERROR = 2,
	CMP_STATUS_ERROR = 3,
	CMP_READ_ERROR = 4,
};

/* The first differing 512-byte sector of two buffers, or len when they are equal. */
static uint64_t first_diff(const char *a, const char *b, uint64_t len)
{
	for (uint64_t i = 0; i < len; i += 512) {
		uint64_t n = MIN(len - i, 512);

		if (b ? memcmp(a + i, b + i, n) : !img_buf_is_zero(a + i, n))
			return i;
	}
	return len;
}

struct compare {
	struct image *img[2];
	const char *name[2];
	char *buf[2];
	bool strict, quiet;
	struct img_progress progress;
};

static bool ext_present(const struct image_extent *e)
{
	return e->file != NULL || (e->flags & IMAGE_EXT_ALLOCATED);
}

/* The range [off, end) of both images. Returns an exit code; *mismatch_at on CMP_DIFFERENT. */
static int compare_common(struct compare *c, uint64_t end, uint64_t *mismatch_at)
{
	struct image_extent e[2];
	uint64_t off = 0, n, d;

	while (off < end) {
		for (int i = 0; i < 2; i++) {
			if (image_block_status(c->img[i], off, MIN(end - off, IMG_BUF_SIZE), true,
					       &e[i]) < 0 || !e[i].length) {
				if (!img_reported(c->img[i]))
					img_error("error while reading block status at offset %llu of %s",
						  (unsigned long long)off, c->name[i]);
				return CMP_STATUS_ERROR;
			}
		}
		n = MIN(e[0].length, e[1].length);
		if (c->strict && (img_extent_is_zero(&e[0]) != img_extent_is_zero(&e[1]) ||
				  ext_present(&e[0]) != ext_present(&e[1]))) {
			printf("Strict mode: Offset %llu block status mismatch!\n",
			       (unsigned long long)off);
			*mismatch_at = UINT64_MAX; /* said already */
			return CMP_DIFFERENT;
		}
		if (!img_extent_is_zero(&e[0]) || !img_extent_is_zero(&e[1])) {
			for (int i = 0; i < 2; i++) {
				if (img_extent_is_zero(&e[i])) {
					memset(c->buf[i], 0, n);
				} else if (image_pread(c->img[i], c->buf[i], n, off) < 0) {
					if (!img_reported(c->img[i]))
						img_error("error while reading offset %llu of %s",
							  (unsigned long long)off, c->name[i]);
					return CMP_READ_ERROR;
				}
			}
			d = first_diff(c->buf[0], c->buf[1], n);
			if (d < n) {
				*mismatch_at = off + d;
				return CMP_DIFFERENT;
			}
		}
		off += n;
		img_progress_update(&c->progress, off, end);
	}
	return CMP_SAME;
}

/* The part of the longer image beyond the shorter one's end must read as zeros. */
static int compare_tail(struct compare *c, int i, uint64_t off, uint64_t *mismatch_at)
{
	struct image *img = c->img[i];
	struct image_extent e;
	uint64_t d;

	while (off < img->size) {
		if (image_block_status(img, off, MIN(img->size - off, IMG_BUF_SIZE), true, &e) < 0 ||
		    !e.length) {
			if (!img_reported(img))
				img_error("error while reading block status at offset %llu of %s",
					  (unsigned long long)off, c->name[i]);
			return CMP_STATUS_ERROR;
		}
		if (!img_extent_is_zero(&e)) {
			if (image_pread(img, c->buf[0], e.length, off) < 0) {
				if (!img_reported(img))
					img_error("error while reading offset %llu of %s",
						  (unsigned long long)off, c->name[i]);
				return CMP_READ_ERROR;
			}
			d = first_diff(c->buf[0], NULL, e.length);
			if (d < e.length) {
				*mismatch_at = off + d;
				return CMP_DIFFERENT;
			}
		}
		off += e.length;
	}
	return CMP_SAME;
}

static int compare_images(struct compare *c)
{
	uint64_t s0 = c->img[0]->size, s1 = c->img[1]->size, at = 0;
	int ret;

	if (s0 != s1) {
		if (c->strict) {
			printf("Strict mode: Image size mismatch!\n");
			return CMP_DIFFERENT;
		}
		if (!c->quiet)
			printf("Warning: Image size mismatch!\n");
	}
	ret = compare_common(c, MIN(s0, s1), &at);
	if (ret == CMP_SAME && s0 != s1)
		ret = compare_tail(c, s0 > s1 ? 0 : 1, MIN(s0, s1), &at);
	img_progress_end(&c->progress);
	if (ret == CMP_DIFFERENT && at != UINT64_MAX)
		printf("Content mismatch at offset %llu!\n", (unsigned long long)at);
	else if (ret == CMP_SAME && !c->quiet)
		printf("Images are identical.\n");
	return ret;
}

int img_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct compare c = { .progress = { .last = -1 } };
	const char *fmt[2] = { NULL, NULL };
	unsigned flags = 0;
	int ch, f[2], ret = CMP_OPEN_ERROR;

	while ((ch = getopt_long(argc, argv, ":f:F:spqhU", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			fmt[0] = optarg;
			break;
		case 'F':
			fmt[1] = optarg;
			break;
		case 's':
			c.strict = true;
			break;
		case 'p':
			c.progress.on = true;
			break;
		case 'q':
			c.quiet = true;
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case 'h':
			return img_cmd_help("compare");
		default:
			img_bad_option(ch, argv);
			return CMP_OPEN_ERROR;
		}
	}
	if (c.quiet)
		c.progress.on = false;
	if (argc - optind != 2) {
		img_usage_error("Expecting two image file names");
		return CMP_OPEN_ERROR;
	}
	if (!fmt[1])
		fmt[1] = fmt[0];
	for (int i = 0; i < 2; i++) {
		c.name[i] = argv[optind + i];
		if (img_parse_format(fmt[i], &f[i]) < 0)
			goto out;
	}
	for (int i = 0; i < 2; i++) {
		c.img[i] = img_open(c.name[i], f[i], flags);
		c.buf[i] = malloc(IMG_BUF_SIZE);
		if (!c.img[i] || !c.buf[i])
			goto out;
	}
	ret = compare_images(&c);
out:
	for (int i = 0; i < 2; i++) {
		image_close(c.img[i]);
		free(c.buf[i]);
	}
	return ret;
}

/* ---- commit ---- */

static int grow_image(struct image *img, uint64_t size)
{
	char err[IMG_ERR_MAX] = "";
	int ret;

	if (img->format == IMAGE_FORMAT_QCOW2) {
		ret = qcow2_resize(img->qcow2, size, false, err, sizeof(err));
		if (ret < 0)
			img_error("%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	if (ftruncate(img->fd, (off_t)size) < 0) {
		ret = -errno;
		img_error("%s: %s", img->path, strerror(-ret));
		return ret;
	}
	img->size = size;
	return 0;
}

/* Every extent the overlay itself defines goes down into base. */
static int commit_extents(struct image *top, struct image *base, char *buf,
			  struct img_progress *p)
{
	struct image_extent e;
	uint64_t off = 0;
	int ret;

	while (off < top->size) {
		ret = image_block_status(top, off, MIN(top->size - off, IMG_BUF_SIZE), false, &e);
		if (ret == 0 && !e.length)
			ret = -EIO;
		if (ret < 0)
			goto fail;
		if (!(e.flags & IMAGE_EXT_ALLOCATED)) {
			/* The backing file has it already. */
		} else if (e.flags & IMAGE_EXT_ZERO) {
			ret = image_write_zeroes(base, off, e.length, false);
		} else {
			ret = image_pread(top, buf, e.length, off);
			if (ret == 0)
				ret = image_pwrite(base, buf, e.length, off);
		}
		if (ret < 0)
			goto fail;
		off += e.length;
		img_progress_update(p, off, top->size);
	}
	return 0;
fail:
	if (!img_reported(top) && !img_reported(base))
		img_error("error while committing at byte %llu: %s", (unsigned long long)off,
			  strerror(-ret));
	return ret;
}

static int commit(struct image *top, const char *filename, bool drop, struct img_progress *p)
{
	struct qcow2 *q = top->qcow2;
	struct image *base = NULL;
	char *path = NULL, *buf = NULL;
	int fmt = -1, ret = -EINVAL;

	if (!q || !q->backing_file) {
		img_error("Image does not have a backing file");
		return -EINVAL;
	}
	path = img_backing_path(filename, q->backing_file);
	buf = malloc(IMG_BUF_SIZE);
	if (!path || !buf) {
		img_error("out of memory");
		ret = -ENOMEM;
		goto out;
	}
	if (q->backing_format && img_parse_format(q->backing_format, &fmt) < 0)
		goto out;
	base = img_open(path, fmt, IMAGE_RDWR);
	if (!base)
		goto out;
	if (base->size < top->size && (ret = grow_image(base, top->size)) < 0)
		goto out;
	ret = commit_extents(top, base, buf, p);
	if (ret < 0)
		goto out;
	ret = image_flush(base);
	if (ret < 0) {
		img_error("%s: flush failed: %s", path, strerror(-ret));
		goto out;
	}
	if (!drop) {
		/* The backing file holds it all now: the overlay goes back to empty. */
		ret = qcow2_discard(q, 0, top->size, true);
		if (ret == 0)
			ret = image_flush(top);
		if (ret < 0)
			img_error("%s: could not empty the image: %s", filename, strerror(-ret));
	}
out:
	image_close(base);
	free(path);
	free(buf);
	return ret;
}

int img_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct img_progress p = { .last = -1 };
	const char *fmt = NULL;
	bool drop = false, quiet = false;
	struct image *top;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":f:dpqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'd':
			drop = true;
			break;
		case 'p':
			p.on = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			return img_cmd_help("commit");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (quiet)
		p.on = false;
	top = img_open_operand(argc, argv, fmt, IMAGE_RDWR | IMAGE_NO_BACKING);
	if (!top)
		return 1;
	ret = commit(top, argv[optind], drop, &p);
	image_close(top);
	if (ret < 0)
		return 1;
	img_progress_end(&p);
	if (!quiet)
		printf("Image committed.\n");
	return 0;
}

/* ---- rebase ---- */

/*
 * Safe rebase: wherever the overlay does not define a cluster and the old
 * chain and the new backing file differ, the overlay gets the old chain's
 * content, so that the guest sees the same disk over the new backing file.
 */
static int rebase_copy(struct image *top, struct image *newb, char *old, char *new,
		       struct img_progress *p)
{
	uint64_t g = top->qcow2->cluster_size, off = 0;
	struct image_extent e;
	int ret;

	while (off < top->size) {
		uint64_t n = MIN(top->size - off, IMG_BUF_SIZE);

		ret = image_block_status(top, off, n, false, &e);
		if (ret == 0 && !e.length)
			ret = -EIO;
		if (ret < 0)
			goto fail;
		n = e.length;
		if (!(e.flags & IMAGE_EXT_ALLOCATED)) {
			uint64_t nn = newb && off < newb->size ? MIN(n, newb->size - off) : 0;

			ret = image_pread(top, old, n, off);
			memset(new + nn, 0, n - nn);
			if (ret == 0 && nn)
				ret = image_pread(newb, new, nn, off);
			if (ret < 0)
				goto fail;
			/* Compared and copied by whole clusters of the overlay. */
			for (uint64_t pos = 0; pos < n;) {
				uint64_t len = MIN(n - pos, g - (off + pos) % g);

				if (memcmp(old + pos, new + pos, len) &&
				    (ret = image_pwrite(top, old + pos, len, off + pos)) < 0)
					goto fail;
				pos += len;
			}
		}
		off += n;
		img_progress_update(p, off, top->size);
	}
	return 0;
fail:
	if (!img_reported(top) && !img_reported(newb))
		img_error("error while rebasing at byte %llu: %s", (unsigned long long)off,
			  strerror(-ret));
	return ret;
}

static int rebase_safe(struct image *top, const char *filename, const char *backing,
		       int backing_fmt, struct img_progress *p)
{
	struct image *newb = NULL;
	char *old = malloc(IMG_BUF_SIZE), *new = malloc(IMG_BUF_SIZE), *path = NULL;
	int ret = -ENOMEM;

	if (!old || !new) {
		img_error("out of memory");
		goto out;
	}
	if (*backing) {
		path = img_backing_path(filename, backing);
		if (!path)
			goto out;
		newb = img_open(path, backing_fmt, 0);
		ret = -EIO;
		if (!newb)
			goto out;
	}
	ret = rebase_copy(top, newb, old, new, p);
out:
	image_close(newb);
	free(path);
	free(old);
	free(new);
	return ret;
}

int img_rebase(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	struct img_progress p = { .last = -1 };
	const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL, *filename;
	unsigned flags = IMAGE_RDWR;
	bool unsafe = false, quiet = false;
	struct image *top;
	int c, f, bf, ret;

	while ((c = getopt_long(argc, argv, ":f:b:F:upqhU", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
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
		case 'p':
			p.on = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'U':
			flags |= IMAGE_NO_LOCK;
			break;
		case 'h':
			return img_cmd_help("rebase");
		default:
			return img_bad_option(c, argv);
		}
	}
	if (quiet)
		p.on = false;
	if (optind != argc - 1)
		return img_usage_error("Expecting one image file name");
	filename = argv[optind];
	if (!backing)
		return img_usage_error("Must specify backing file (-b)");
	if (img_parse_format(fmt, &f) < 0 || img_parse_format(backing_fmt, &bf) < 0)
		return 1;
	if (*backing && !backing_fmt) {
		img_error("Could not change the backing file to '%s': backing format must be specified",
			  backing);
		return 1;
	}
	if (unsafe)
		flags |= IMAGE_NO_BACKING;
	top = img_open(filename, f, flags);
	if (!top)
		return 1;
	ret = -ENOTSUP;
	if (top->format != IMAGE_FORMAT_QCOW2) {
		img_error("Could not change the backing file to '%s': Operation not supported",
			  backing);
		goto out;
	}
	if (!unsafe) {
		ret = rebase_safe(top, filename, backing, bf, &p);
		if (ret < 0)
			goto out;
	}
	ret = qcow2_set_backing(top->qcow2, *backing ? backing : NULL,
				*backing ? backing_fmt : NULL);
	if (ret == 0)
		ret = image_flush(top);
	if (ret < 0)
		img_error("Could not change the backing file to '%s': %s", backing, strerror(-ret));
	else
		img_progress_end(&p);
out:
	image_close(top);
	return ret < 0;
}
