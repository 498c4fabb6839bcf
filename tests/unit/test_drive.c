// SPDX-License-Identifier: MIT
/* -drive parsing: QEMU's syntax, every key, defaults, and each refusal. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk/drive.h"
#include "tests/unit/unit.h"

static struct drive_opts o;

START_TEST(defaults)
{
	ck_assert_int_eq(drive_parse("file=disk.img", &o), 0);
	ck_assert_str_eq(o.file, "disk.img");
	ck_assert_int_eq(o.iface, DRIVE_IF_VIRTIO);
	ck_assert_int_eq(o.format, DRIVE_FORMAT_RAW);
	ck_assert(!o.format_given);
	ck_assert_int_eq(o.cache, DRIVE_CACHE_WRITEBACK);
	ck_assert(!o.read_only);
	ck_assert_str_eq(o.serial, "");
	ck_assert_str_eq(o.id, "");
	ck_assert_int_eq(o.discard, DRIVE_DISCARD_IGNORE); /* as QEMU */
	ck_assert_int_eq(o.aio, DRIVE_AIO_THREADS);
	ck_assert_uint_eq(o.workers, 0);
}
END_TEST

START_TEST(every_key)
{
	ck_assert_int_eq(drive_parse("file=/var/lib/a.img,if=virtio,format=qcow2,cache=none,"
				     "readonly=on,serial=SN-0001,id=disk0,media=disk,"
				     "discard=unmap,aio=io_uring",
				     &o),
			 0);
	ck_assert_str_eq(o.file, "/var/lib/a.img");
	ck_assert_int_eq(o.iface, DRIVE_IF_VIRTIO);
	ck_assert_int_eq(o.format, DRIVE_FORMAT_QCOW2);
	ck_assert(o.format_given);
	ck_assert_int_eq(o.cache, DRIVE_CACHE_NONE);
	ck_assert(o.read_only);
	ck_assert_str_eq(o.serial, "SN-0001");
	ck_assert_str_eq(o.id, "disk0");
	ck_assert_int_eq(o.discard, DRIVE_DISCARD_UNMAP);
	ck_assert_int_eq(o.aio, DRIVE_AIO_IO_URING);

	ck_assert_int_eq(drive_parse("format=raw,aio=native,discard=ignore,file=x", &o), 0);
	ck_assert_int_eq(o.format, DRIVE_FORMAT_RAW);
	ck_assert(o.format_given);
	ck_assert_int_eq(o.aio, DRIVE_AIO_NATIVE);
	ck_assert_int_eq(o.discard, DRIVE_DISCARD_IGNORE);
	ck_assert_int_eq(drive_parse("file=x,discard=on,aio=threads", &o), 0);
	ck_assert_int_eq(o.discard, DRIVE_DISCARD_UNMAP);
	ck_assert_int_eq(drive_parse("file=x,discard=off", &o), 0);
	ck_assert_int_eq(o.discard, DRIVE_DISCARD_IGNORE);
}
END_TEST

START_TEST(cache_modes)
{
	static const struct {
		const char *s;
		enum drive_cache_mode m;
	} t[] = {
		{ "writeback", DRIVE_CACHE_WRITEBACK },	      { "none", DRIVE_CACHE_NONE },
		{ "writethrough", DRIVE_CACHE_WRITETHROUGH }, { "directsync", DRIVE_CACHE_DIRECTSYNC },
		{ "unsafe", DRIVE_CACHE_UNSAFE },
	};
	char arg[64];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(arg, sizeof(arg), "file=x,cache=%s", t[i].s);
		ck_assert_int_eq(drive_parse(arg, &o), 0);
		ck_assert_int_eq(o.cache, t[i].m);
		ck_assert_str_eq(drive_cache_name(t[i].m), t[i].s);
	}
}
END_TEST

START_TEST(cache_flags_table)
{
	struct drive_cache c;

	c = drive_cache_flags(DRIVE_CACHE_WRITEBACK);
	ck_assert(!c.direct && !c.writethrough && !c.no_flush);
	c = drive_cache_flags(DRIVE_CACHE_NONE);
	ck_assert(c.direct && !c.writethrough && !c.no_flush);
	c = drive_cache_flags(DRIVE_CACHE_WRITETHROUGH);
	ck_assert(!c.direct && c.writethrough && !c.no_flush);
	c = drive_cache_flags(DRIVE_CACHE_DIRECTSYNC);
	ck_assert(c.direct && c.writethrough && !c.no_flush);
	c = drive_cache_flags(DRIVE_CACHE_UNSAFE);
	ck_assert(!c.direct && !c.writethrough && c.no_flush);
}
END_TEST

START_TEST(escaped_commas)
{
	ck_assert_int_eq(drive_parse("file=a,,b.img,format=raw", &o), 0);
	ck_assert_str_eq(o.file, "a,b.img");
	ck_assert_int_eq(drive_parse("file=,,,,lead,,,,trail,,", &o), 0);
	ck_assert_str_eq(o.file, ",,lead,,trail,");
	ck_assert_int_eq(drive_parse("serial=x,,y,file=d", &o), 0);
	ck_assert_str_eq(o.serial, "x,y");
	ck_assert_str_eq(o.file, "d");
	/* '=' inside a value is just a character */
	ck_assert_int_eq(drive_parse("file=k=v.img", &o), 0);
	ck_assert_str_eq(o.file, "k=v.img");
	/* a trailing comma is allowed, as in QEMU */
	ck_assert_int_eq(drive_parse("file=d,", &o), 0);
	ck_assert_str_eq(o.file, "d");
}
END_TEST

START_TEST(readonly_spellings)
{
	const char *on[] = { "file=x,readonly=on", "file=x,read-only=on", "file=x,readonly",
			     "file=x,read-only", "file=x,readonly=yes", "file=x,readonly=true" };
	const char *off[] = { "file=x,readonly=off", "file=x,read-only=no",
			      "file=x,readonly=on,readonly=off" };

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		ck_assert_int_eq(drive_parse(on[i], &o), 0);
		ck_assert_msg(o.read_only, "%s", on[i]);
	}
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		ck_assert_int_eq(drive_parse(off[i], &o), 0);
		ck_assert_msg(!o.read_only, "%s", off[i]);
	}
	ck_assert_int_eq(drive_parse("file=x,readonly=maybe", &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(o.err, "readonly"));
}
END_TEST

START_TEST(last_value_wins)
{
	ck_assert_int_eq(drive_parse("file=a,cache=none,file=b,cache=unsafe", &o), 0);
	ck_assert_str_eq(o.file, "b");
	ck_assert_int_eq(o.cache, DRIVE_CACHE_UNSAFE);
}
END_TEST

START_TEST(serial_length)
{
	ck_assert_int_eq(drive_parse("file=x,serial=12345678901234567890", &o), 0);
	ck_assert_str_eq(o.serial, "12345678901234567890");
	ck_assert_int_eq(drive_parse("file=x,serial=123456789012345678901", &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(o.err, "serial"));
	ck_assert_ptr_nonnull(strstr(o.err, "20"));
	/* ",," counts as one byte */
	ck_assert_int_eq(drive_parse("file=x,serial=1234567890123456789,,", &o), 0);
	ck_assert_str_eq(o.serial, "1234567890123456789,");
}
END_TEST

/* Each refusal: -EINVAL, and a message naming the key. */
static void refused(const char *arg, const char *in_msg)
{
	memset(&o, 0x55, sizeof(o));
	ck_assert_int_eq(drive_parse(arg, &o), -EINVAL);
	ck_assert_msg(strstr(o.err, in_msg), "'%s' gave '%s', want '%s' in it", arg, o.err,
		      in_msg);
	ck_assert_uint_lt(strlen(o.err), sizeof(o.err));
}

START_TEST(errors)
{
	refused("file=x,bogus=1", "unknown key 'bogus'");
	refused("file=x,index=0", "unknown key 'index'");
	refused("file=x,cache=bogus", "cache: unknown value 'bogus'");
	refused("file=x,cache=bogus", "writeback, none, writethrough, directsync, unsafe");
	refused("cache=none", "file");
	refused("", "file");
	refused("file=", "file");
	refused("if=virtio", "file= is required");
	refused("file=x,if=ide", "if: 'ide' is not supported");
	refused("file=x,if=scsi", "if:");
	refused("file=x,format=vmdk", "format: unknown value 'vmdk' (raw, qcow2)");
	refused("file=x,format=", "format:");
	refused("file=x,media=cdrom", "media:");
	refused("file=x,discard=maybe", "discard:");
	refused("file=x,aio=posix", "aio:");
	refused("file=x,id=0abc", "id:");
	refused("file=x,id=a b", "id:");
	refused("file=x,id=abcdefghijabcdefghijabcdefghijabc", "id:");
	refused("file=x,cache", "cache: needs a value");
	refused("file", "file: needs a value");
	refused(",file=x", "empty item");
	refused("=x,file=x", "empty key");
	refused("file=x,averyveryveryveryveryveryverylongkeyname=1", "unknown key");
}
END_TEST

START_TEST(long_values)
{
	char *arg = malloc(PATH_MAX + 32);

	strcpy(arg, "file=");
	memset(arg + 5, 'a', PATH_MAX - 1);
	arg[5 + PATH_MAX - 1] = '\0';
	ck_assert_int_eq(drive_parse(arg, &o), 0);
	ck_assert_uint_eq(strlen(o.file), PATH_MAX - 1);
	strcat(arg, "a");
	ck_assert_int_eq(drive_parse(arg, &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(o.err, "file"));
	strcat(arg, "aaaaaaaaaaa,cache=none");
	ck_assert_int_eq(drive_parse(arg, &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(o.err, "file"));
	free(arg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("drive");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, every_key);
	tcase_add_test(tc, cache_modes);
	tcase_add_test(tc, cache_flags_table);
	tcase_add_test(tc, escaped_commas);
	tcase_add_test(tc, readonly_spellings);
	tcase_add_test(tc, last_value_wins);
	tcase_add_test(tc, serial_length);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, long_values);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
