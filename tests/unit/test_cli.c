// SPDX-License-Identifier: MIT
/* Command-line parsing: QEMU spellings accepted, everything else refused. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/console.h"
#include "tests/unit/unit.h"

#define ARGV(...) ((char *[]){ "minivm", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "minivm", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (cfg))

START_TEST(full_command_line)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-initrd", "rd", "-append", "console=ttyS0",
			       "-m", "256", "-smp", "2", "-nographic", "-no-reboot",
			       "-name", "guest1", "-serial", "stdio"), CLI_RUN);
	ck_assert_str_eq(c.kernel, "bz");
	ck_assert_str_eq(c.initrd, "rd");
	ck_assert_str_eq(c.append, "console=ttyS0");
	ck_assert_uint_eq(c.ram_size, 256ULL << 20);
	ck_assert_uint_eq(c.ncpus, 2);
	ck_assert(c.nographic);
	ck_assert(c.no_reboot);
	ck_assert_str_eq(c.name, "guest1");
	ck_assert_int_eq(c.serial, SERIAL_STDIO);
}
END_TEST

START_TEST(defaults_like_qemu)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "bz"), CLI_RUN);
	ck_assert_uint_eq(c.ram_size, 128ULL << 20);
	ck_assert_uint_eq(c.ncpus, 1);
	ck_assert(!c.no_reboot);
	ck_assert_ptr_null(c.initrd);
}
END_TEST

START_TEST(sizes)
{
	uint64_t v;

	ck_assert_int_eq(cli_parse_size("256", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(cli_parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256ULL << 20);
	ck_assert_int_eq(cli_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(cli_parse_size("3584m", &v), 0);
	ck_assert_uint_eq(v, 3584ULL << 20);
	ck_assert_int_eq(cli_parse_size("1GiB", &v), 0);
	ck_assert_uint_eq(v, 1ULL << 30);
	ck_assert_int_eq(cli_parse_size("524288K", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(cli_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("12Q", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("1G2", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("99999999999999999999", &v), -EINVAL);
	ck_assert_int_eq(cli_parse_size("99999999999T", &v), -ERANGE);
}
END_TEST

START_TEST(mem_and_smp_forms)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-m", "size=1G", "-smp", "cpus=4"), CLI_RUN);
	ck_assert_uint_eq(c.ram_size, 1ULL << 30);
	ck_assert_uint_eq(c.ncpus, 4);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-smp", "sockets=1,cores=2,threads=2"), CLI_RUN);
	ck_assert_uint_eq(c.ncpus, 4);
	ck_assert_int_eq(PARSE(&c, "--kernel", "k", "--m", "2G"), CLI_RUN);
	ck_assert_uint_eq(c.ram_size, 2ULL << 30);
}
END_TEST

START_TEST(serial_forms)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-serial", "file:/tmp/x"), CLI_RUN);
	ck_assert_int_eq(c.serial, SERIAL_FILE);
	ck_assert_str_eq(c.serial_path, "/tmp/x");
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-serial", "none"), CLI_RUN);
	ck_assert_int_eq(c.serial, SERIAL_NONE);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-serial", "tcp:1234"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-serial", "file:"), -EINVAL);
}
END_TEST

START_TEST(errors)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-m", "0"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-smp", "0"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-smp", "255"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-smp", "two"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-smp", "cpus=2,bogus=1"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-m", "lots"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-m", "1000000000T"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-frobnicate"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "stray"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-m", "256"), -EINVAL); /* no kernel */
	ck_assert_int_eq(PARSE(&c, "-kernel", ""), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-accel", "tcg"), -EINVAL);
}
END_TEST

START_TEST(help_and_version_exit)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "--help"), CLI_EXIT);
	ck_assert_int_eq(PARSE(&c, "-h"), CLI_EXIT);
	ck_assert_int_eq(PARSE(&c, "--version"), CLI_EXIT);
	ck_assert_int_eq(PARSE(&c, "-version"), CLI_EXIT);
}
END_TEST

START_TEST(host_memory_check)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-m", "4G"), CLI_RUN);
	ck_assert_int_eq(cli_check_host(&c, 8ULL << 30), 0);
	ck_assert_int_eq(cli_check_host(&c, 2ULL << 30), -ENOMEM);
}
END_TEST

/* Ctrl-a handling on the console: QEMU's escape keys. */
START_TEST(console_escapes)
{
	struct console con;
	uint8_t out[16];
	const uint8_t in1[] = { 'a', 0x01, 0x01, 'b', 0x01, 'z', 'c' };
	uint64_t v;

	ck_assert_int_eq(console_init(&con, -1, -1), 0);
	ck_assert_uint_eq(console_filter(&con, in1, sizeof(in1), out), 4);
	ck_assert_mem_eq(out, "a\x01" "bc", 4);
	/* An escape split across two reads still works. */
	ck_assert_uint_eq(console_filter(&con, (const uint8_t *)"\x01", 1, out), 0);
	ck_assert_uint_eq(console_filter(&con, (const uint8_t *)"x", 1, out), 0);
	ck_assert_int_eq(read(con.quit_fd, &v, sizeof(v)), sizeof(v));
	console_fini(&con);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, full_command_line);
	tcase_add_test(tc, defaults_like_qemu);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, mem_and_smp_forms);
	tcase_add_test(tc, serial_forms);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, help_and_version_exit);
	tcase_add_test(tc, host_memory_check);
	tcase_add_test(tc, console_escapes);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
