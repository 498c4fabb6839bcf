/* SPDX-License-Identifier: MIT */
/*
 * minivm-img's insides, shared by its files: minivm-img.c (main, option
 * and size parsing, create, resize), img-info.c (info, map, check,
 * snapshot: the commands that mostly print) and img-copy.c (convert,
 * compare, commit, rebase: the commands that move data).
 *
 * Each command is a function taking main()'s argc/argv from the command
 * name on and returning the process's exit status. Errors are printed
 * once, by the command, as one "minivm-img: ..." line.
 */
#ifndef MINIVM_DISK_IMG_H
#define MINIVM_DISK_IMG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "disk/image.h"

/* The transfer unit of convert, compare, commit and rebase. */
#define IMG_BUF_SIZE (2u << 20)
/* Convert's -S default: runs of this many zero bytes are not written. */
#define IMG_SPARSE_SIZE 4096u
#define IMG_ERR_MAX 512

enum img_output {
	IMG_OUTPUT_HUMAN,
	IMG_OUTPUT_JSON,
};

/* Long options every command shares the numbering of. */
enum {
	IMG_OPT_OUTPUT = 256,
	IMG_OPT_BACKING_CHAIN,
	IMG_OPT_SHRINK,
	IMG_OPT_HELP,
};

void img_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An unknown option or a missing argument: the error and exit status 1. */
int img_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* -h of a command: its usage line on stdout; returns 0. */
int img_cmd_help(const char *name);
/* The getopt_long() failure cases of a command, reported; always 1. */
int img_bad_option(int c, char **argv);

int img_parse_size(const char *s, uint64_t *out);
int img_parse_output(const char *s, enum img_output *out);
/* -f/-F: NULL or a known format name; -1 for NULL (probe). */
int img_parse_format(const char *name, int *format);

/* QEMU's size_to_str(): "1 GiB", "1.5 MiB", "196 KiB", "0 B". */
void img_size_str(uint64_t v, char *buf, size_t len);

/* image_open() with the error printed; NULL on failure. */
struct image *img_open(const char *path, int format, unsigned flags);
/*
 * The one image file name left after the options (argv[optind]), opened
 * as -f fmt says; NULL with the error printed (a usage error if there is
 * not exactly one name).
 */
struct image *img_open_operand(int argc, char **argv, const char *fmt, unsigned flags);

/*
 * Whether the qcow2 driver already printed its one line about corruption
 * somewhere in img's chain: then an I/O error it caused is not reported twice.
 */
bool img_reported(const struct image *img);

/* A backing file name as recorded, resolved against its overlay's directory. */
char *img_backing_path(const char *overlay, const char *backing);

/* The progress line of -p, QEMU's "    (12.34/100%)". */
struct img_progress {
	bool on;
	double last;
};
void img_progress_update(struct img_progress *p, uint64_t done, uint64_t total);
void img_progress_end(struct img_progress *p);

/* Whether an extent from image_block_status() reads as zeros. */
static inline bool img_extent_is_zero(const struct image_extent *e)
{
	return (e->flags & IMAGE_EXT_ZERO) || !(e->flags & (IMAGE_EXT_DATA | IMAGE_EXT_ALLOCATED));
}

bool img_buf_is_zero(const void *buf, size_t len);

/* The commands. */
int img_create(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_check(int argc, char **argv);
int img_snapshot(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_rebase(int argc, char **argv);

/* create's -o options, and the creation itself (convert creates too). */
struct img_create_opts {
	enum image_format format;
	uint64_t size;
	bool size_set;
	uint32_t cluster_size;
	int compat;                 /* 0: default */
	const char *compat_str;
	uint32_t refcount_bits;
	int prealloc;               /* QCOW2_PREALLOC_*, also for raw */
	const char *prealloc_str;
	bool lazy_refcounts;
	bool lazy_set;
	const char *backing_file;
	const char *backing_format;
};

/* Parses one -o string (comma-separated key=value, ",," a comma) into o. */
int img_parse_create_opts(char *s, struct img_create_opts *o, const char *filename);
/* Lists the -o options of a format ("-o help"). */
void img_create_opts_help(enum image_format format);
/* Creates filename. quiet: no "Formatting ..." line. 0 or 1 (error printed). */
int img_do_create(const char *filename, struct img_create_opts *o, bool quiet);

#endif
