// SPDX-License-Identifier: MIT
/*
 * -drive option parsing, following QEMU's QemuOpts rules: items split as
 * vmm/opts.h splits them (',' between items, ",," an escaped comma inside a
 * value), a repeated key keeps its last value, and a boolean key alone
 * ("readonly") means on. Every key and value is checked here, so the block
 * layer only ever sees a valid drive_opts.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "disk/drive.h"
#include "vmm/log.h"
#include "vmm/opts.h"

#define DRIVE_KEY_MAX 31 /* longer than any key below */

struct name_val {
	const char *name;
	int val;
};

static const struct name_val if_names[] = {
	{ "virtio", DRIVE_IF_VIRTIO },
};

static const struct name_val format_names[] = {
	{ "raw", DRIVE_FORMAT_RAW },
	{ "qcow2", DRIVE_FORMAT_QCOW2 },
};

static const struct name_val cache_names[] = {
	{ "writeback", DRIVE_CACHE_WRITEBACK },
	{ "none", DRIVE_CACHE_NONE },
	{ "writethrough", DRIVE_CACHE_WRITETHROUGH },
	{ "directsync", DRIVE_CACHE_DIRECTSYNC },
	{ "unsafe", DRIVE_CACHE_UNSAFE },
};

static const struct name_val discard_names[] = {
	{ "ignore", DRIVE_DISCARD_IGNORE },
	{ "off", DRIVE_DISCARD_IGNORE }, /* QEMU's synonyms */
	{ "unmap", DRIVE_DISCARD_UNMAP },
	{ "on", DRIVE_DISCARD_UNMAP },
};

static const struct name_val aio_names[] = {
	{ "threads", DRIVE_AIO_THREADS },
	{ "io_uring", DRIVE_AIO_IO_URING },
	{ "native", DRIVE_AIO_NATIVE },
};

/* QEMU's spellings of a boolean (qapi_bool_parse). */
static const struct name_val bool_names[] = {
	{ "on", 1 },	{ "yes", 1 }, { "true", 1 },  { "y", 1 },
	{ "off", 0 },	{ "no", 0 },  { "false", 0 }, { "n", 0 },
};

static int fail(struct drive_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct drive_opts *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->err, sizeof(o->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Looks val up in a table; on failure the message lists the accepted
 * spellings, skipping synonyms that map to a value already listed.
 */
static int lookup(struct drive_opts *o, const char *key, const char *val,
		  const struct name_val *t, size_t n, int *out)
{
	char list[80] = "";
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(val, t[i].name)) {
			*out = t[i].val;
			return 0;
		}
	}
	for (size_t i = 0; i < n && len < sizeof(list); i++) {
		bool dup = false;

		for (size_t j = 0; j < i; j++)
			dup |= t[j].val == t[i].val;
		if (!dup)
			len += snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "",
					t[i].name);
	}
	return fail(o, "%s: unknown value '%s' (%s)", key, val, list);
}

static int set_file(struct drive_opts *o, const char *key, const char *val)
{
	if (!*val)
		return fail(o, "%s: empty file name", key);
	if (strlen(val) >= sizeof(o->file))
		return fail(o, "%s: file name too long", key);
	strcpy(o->file, val);
	return 0;
}

static int set_if(struct drive_opts *o, const char *key, const char *val)
{
	int v;

	/* QEMU knows ide, scsi, floppy, ...: say why they fail here. */
	if (lookup(o, key, val, if_names, ARRAY_SIZE(if_names), &v))
		return fail(o, "%s: '%s' is not supported (only virtio)", key, val);
	o->iface = v;
	return 0;
}

static int set_format(struct drive_opts *o, const char *key, const char *val)
{
	int v, ret;

	ret = lookup(o, key, val, format_names, ARRAY_SIZE(format_names), &v);
	if (ret)
		return ret;
	o->format = v;
	o->format_given = true;
	return 0;
}

static int set_cache(struct drive_opts *o, const char *key, const char *val)
{
	int v, ret;

	ret = lookup(o, key, val, cache_names, ARRAY_SIZE(cache_names), &v);
	if (ret)
		return ret;
	o->cache = v;
	return 0;
}

static int set_readonly(struct drive_opts *o, const char *key, const char *val)
{
	int v, ret;

	ret = lookup(o, key, val, bool_names, ARRAY_SIZE(bool_names), &v);
	if (ret)
		return ret;
	o->read_only = v;
	return 0;
}

static int set_serial(struct drive_opts *o, const char *key, const char *val)
{
	if (strlen(val) > DRIVE_SERIAL_MAX)
		return fail(o, "%s: '%s' is longer than %d bytes", key, val, DRIVE_SERIAL_MAX);
	strcpy(o->serial, val);
	return 0;
}

static int set_id(struct drive_opts *o, const char *key, const char *val)
{
	if (!opts_id_wellformed(val))
		return fail(o, "%s: '%s' is not an identifier (a letter, then letters, digits, '-', '.', '_')",
			    key, val);
	if (strlen(val) > DRIVE_ID_MAX)
		return fail(o, "%s: longer than %d bytes", key, DRIVE_ID_MAX);
	strcpy(o->id, val);
	return 0;
}

static int set_media(struct drive_opts *o, const char *key, const char *val)
{
	if (strcmp(val, "disk"))
		return fail(o, "%s: '%s' is not supported (only disk)", key, val);
	return 0;
}

static int set_discard(struct drive_opts *o, const char *key, const char *val)
{
	int v, ret;

	ret = lookup(o, key, val, discard_names, ARRAY_SIZE(discard_names), &v);
	if (ret)
		return ret;
	o->discard = v;
	return 0;
}

static int set_aio(struct drive_opts *o, const char *key, const char *val)
{
	int v, ret;

	ret = lookup(o, key, val, aio_names, ARRAY_SIZE(aio_names), &v);
	if (ret)
		return ret;
	o->aio = v;
	return 0;
}

static const struct drive_key {
	const char *name;
	int (*set)(struct drive_opts *o, const char *key, const char *val);
	bool is_bool; /* may be given alone, meaning on */
} drive_keys[] = {
	{ "file", set_file, false },
	{ "if", set_if, false },
	{ "format", set_format, false },
	{ "cache", set_cache, false },
	{ "readonly", set_readonly, true },
	{ "read-only", set_readonly, true },
	{ "serial", set_serial, false },
	{ "id", set_id, false },
	{ "media", set_media, false },
	{ "discard", set_discard, false },
	{ "aio", set_aio, false },
};

void drive_opts_init(struct drive_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->iface = DRIVE_IF_VIRTIO;
	o->format = DRIVE_FORMAT_RAW;
	o->cache = DRIVE_CACHE_WRITEBACK;
	o->discard = DRIVE_DISCARD_IGNORE;
	o->aio = DRIVE_AIO_THREADS;
}

static const struct drive_key *find_key(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(drive_keys); i++) {
		if (!strcmp(drive_keys[i].name, name))
			return &drive_keys[i];
	}
	return NULL;
}

int drive_parse(const char *arg, struct drive_opts *o)
{
	char val[PATH_MAX + 1]; /* one more than any value we can store */
	char key[DRIVE_KEY_MAX + 1];
	const char *p = arg;
	bool has_val;
	int ret;

	drive_opts_init(o);
	while ((ret = opts_next(&p, key, sizeof(key), val, sizeof(val), &has_val))) {
		/* an item without '=' is a flag ("readonly"): its name is in val */
		const char *name = has_val ? key : val;
		const struct drive_key *k = NULL;

		if (!*name)
			return fail(o, has_val ? "empty key before '='" : "empty item (stray ',')");
		if (ret != -ENAMETOOLONG)
			k = find_key(name);
		if (!k)
			return fail(o, "unknown key '%.*s'", DRIVE_KEY_MAX, name);
		if (ret == -E2BIG)
			return fail(o, "%s: value too long", k->name);
		if (!has_val && !k->is_bool)
			return fail(o, "%s: needs a value (%s=...)", k->name, k->name);
		ret = k->set(o, k->name, has_val ? val : "on");
		if (ret)
			return ret;
	}
	if (!o->file[0])
		return fail(o, "file: missing (file= is required)");
	return 0;
}

struct drive_cache drive_cache_flags(enum drive_cache_mode mode)
{
	struct drive_cache c = { 0 };

	switch (mode) {
	case DRIVE_CACHE_WRITEBACK:
		break;
	case DRIVE_CACHE_NONE:
		c.direct = true;
		break;
	case DRIVE_CACHE_WRITETHROUGH:
		c.writethrough = true;
		break;
	case DRIVE_CACHE_DIRECTSYNC:
		c.direct = true;
		c.writethrough = true;
		break;
	case DRIVE_CACHE_UNSAFE:
		c.no_flush = true;
		break;
	}
	return c;
}

static const char *name_of(const struct name_val *t, size_t n, int v)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i].val == v)
			return t[i].name;
	}
	return "?";
}

const char *drive_cache_name(enum drive_cache_mode mode)
{
	return name_of(cache_names, ARRAY_SIZE(cache_names), mode);
}

const char *drive_format_name(enum drive_format format)
{
	return name_of(format_names, ARRAY_SIZE(format_names), format);
}
