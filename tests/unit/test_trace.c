// SPDX-License-Identifier: MIT
/*
 * Tracing without a VM: --trace parsing and its errors, the line format,
 * the filters, buffering, and whole lines from several threads at once.
 * Output goes to a temporary file that the tests read back.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/stats.h"
#include "vmm/trace.h"
#include "tests/unit/unit.h"

#define ARGV(...) ((char *[]){ "minivm", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "minivm", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (cfg))

static int parse(const char *arg, struct trace_opts *o, char *err)
{
	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	return trace_parse(arg, o, err, 160);
}

START_TEST(parse_words_and_options)
{
	struct trace_opts o;
	char err[160];

	ck_assert_int_eq(parse("exits,io,irq,file=/tmp/t.log,from=0.5,to=2,dev=serial,"
			       "addr=0x3f8-0x3ff", &o, err), 0);
	ck_assert_uint_eq(o.what, TRACE_EXITS | TRACE_IO | TRACE_IRQ);
	ck_assert_str_eq(o.file, "/tmp/t.log");
	ck_assert_uint_eq(o.from_us, 500000);
	ck_assert_uint_eq(o.to_us, 2000000);
	ck_assert_str_eq(o.dev, "serial");
	ck_assert(o.addr_given);
	ck_assert_uint_eq(o.addr_lo, 0x3f8);
	ck_assert_uint_eq(o.addr_hi, 0x3ff);

	ck_assert_int_eq(parse("io", &o, err), 0);
	ck_assert_uint_eq(o.what, TRACE_IO);
	ck_assert_str_eq(o.file, "");
	ck_assert_uint_eq(o.to_us, 0);
	ck_assert(!o.addr_given);

	/* Options alone trace exits. */
	ck_assert_int_eq(parse("addr=128", &o, err), 0);
	ck_assert_uint_eq(o.what, TRACE_EXITS);
	ck_assert_uint_eq(o.addr_lo, 128);
	ck_assert_uint_eq(o.addr_hi, 128);

	/* Several --trace flags add up. */
	ck_assert_int_eq(parse("irq", &o, err), 0);
	ck_assert_int_eq(trace_parse("io,dev=rtc", &o, err, sizeof(err)), 0);
	ck_assert_uint_eq(o.what, TRACE_IO | TRACE_IRQ);
	ck_assert_str_eq(o.dev, "rtc");
}
END_TEST

START_TEST(parse_errors)
{
	static const char *const bad[][2] = {
		{ "bogus", "unknown trace word 'bogus'" },
		{ "exits,kvm_*", "unknown trace word 'kvm_*'" },
		{ "color=red", "unknown trace word 'color'" },
		{ "from=abc", "invalid value 'abc' for from=" },
		{ "from=-1", "invalid value '-1' for from=" },
		{ "from=nan", "invalid value 'nan' for from=" },
		{ "to=0", "invalid value '0' for to=" },
		{ "from=2,to=1", "to= must come after from=" },
		{ "addr=5-3", "invalid value '5-3' for addr=" },
		{ "addr=", "invalid value '' for addr=" },
		{ "addr=0x80-", "invalid value '0x80-' for addr=" },
		{ "addr=port80", "invalid value 'port80' for addr=" },
		{ "dev=", "invalid value '' for dev=" },
		{ "dev=a-name-much-longer-than-any-bus-region-has", "for dev=" },
		{ "file=", "invalid value '' for file=" },
	};
	struct trace_opts o;
	char err[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i][0], &o, err) == -EINVAL, "%s accepted", bad[i][0]);
		ck_assert_msg(strstr(err, bad[i][1]), "%s: '%s'", bad[i][0], err);
		ck_assert_ptr_null(strchr(err, '\n'));
	}
}
END_TEST

START_TEST(cli_flags)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k"), CLI_RUN);
	ck_assert(!c.stats_summary);
	ck_assert(!c.no_stats);
	ck_assert_uint_eq(c.trace.what, 0);

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "--stats", "--trace", "io,dev=serial",
			       "-trace", "irq"), CLI_RUN);
	ck_assert(c.stats_summary);
	ck_assert_uint_eq(c.trace.what, TRACE_IO | TRACE_IRQ);
	ck_assert_str_eq(c.trace.dev, "serial");

	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "--no-stats"), CLI_RUN);
	ck_assert(c.no_stats);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "--stats", "--no-stats"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "--trace", "nonsense"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "--trace"), -EINVAL);
}
END_TEST

/* Splits a line into its whitespace-separated fields; returns how many. */
static int fields(const char *line, char f[][40], int max)
{
	char copy[256];
	char *save = NULL;
	int n = 0;

	snprintf(copy, sizeof(copy), "%.*s", (int)strcspn(line, "\n"), line);
	for (char *t = strtok_r(copy, " \n", &save); t && n < max; t = strtok_r(NULL, " \n", &save))
		snprintf(f[n++], 40, "%s", t);
	return n;
}

START_TEST(line_format)
{
	char line[256], f[10][40];
	size_t n;

	n = trace_format(line, sizeof(line), 1234567, 1, "io", "out", "0x0080", "1", "0x2a",
			 "unassigned");
	ck_assert_uint_eq(n, strlen(line));
	ck_assert_int_eq(line[n - 1], '\n');
	ck_assert_ptr_eq(strchr(line, '\n'), line + n - 1);
	ck_assert_int_eq(fields(line, f, 10), 8);
	ck_assert_str_eq(f[0], "1234567");
	ck_assert_str_eq(f[1], "1");
	ck_assert_str_eq(f[2], "io");
	ck_assert_str_eq(f[3], "out");
	ck_assert_str_eq(f[4], "0x0080");
	ck_assert_str_eq(f[5], "1");
	ck_assert_str_eq(f[6], "0x2a");
	ck_assert_str_eq(f[7], "unassigned");
	/* Columns line up: the time is right-aligned in 11 characters. */
	ck_assert_int_eq(line[10], '7');

	n = trace_format(line, sizeof(line), 5, -1, "irq", "line", "4", "-", "1", "-");
	ck_assert_int_eq(fields(line, f, 10), 8);
	ck_assert_str_eq(f[1], "-");

	/* Too long for the buffer: cut, but still one line. */
	n = trace_format(line, 40, 5, 0, "io", "out", "0x0080", "1", "0x2a",
			 "a-very-long-device-name-indeed");
	ck_assert_uint_eq(n, 39);
	ck_assert_int_eq(line[38], '\n');
}
END_TEST

/* A trace into a fresh temporary file; *path is for reading it back. */
static void open_trace(struct trace *t, struct trace_opts *o, char *path)
{
	int fd;

	strcpy(path, "/tmp/minivm-test-trace.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(o->file, sizeof(o->file), "%s", path);
	ck_assert_int_eq(trace_open(t, o, stats_now_ns()), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *buf;
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &st), 0);
	buf = calloc(1, st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, st.st_size, f);
	ck_assert_uint_eq(n, st.st_size);
	fclose(f);
	return buf;
}

/* The event lines of a trace (not the header) as fields, line by line. */
static int trace_rows(const char *text, char rows[][8][40], int max)
{
	int n = 0;

	for (const char *l = text; l && *l && n < max; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char f[10][40];

		if (*l == '#')
			continue;
		ck_assert_int_eq(fields(l, f, 10), 8);
		memcpy(rows[n++], f, sizeof(rows[0]));
	}
	return n;
}

START_TEST(io_lines_and_values)
{
	struct trace_opts o = { .what = TRACE_IO };
	struct trace t;
	char path[64], rows[8][8][40];
	uint8_t out = 0x2a, in[2] = { 0x34, 0x12 };
	uint32_t mmio = 0xdeadbeef;
	char *text;

	open_trace(&t, &o, path);
	trace_io(&t, 0, false, 0x80, 1, true, &out, NULL);
	trace_io(&t, 1, false, 0x71, 2, false, in, "rtc");
	trace_io(&t, 0, true, 0xfebf1000, 4, true, &mmio, "pci-00:01.0-bar4");
	trace_exit(&t, 0, KVM_EXIT_INTR, NULL); /* io only: no exit lines */
	trace_irq(&t, 4, 1);                    /* nor interrupts */
	ck_assert_int_eq(trace_close(&t), 0);

	text = slurp(path);
	ck_assert_int_eq(strncmp(text, "#   time_us cpu event", 21), 0);
	ck_assert_int_eq(trace_rows(text, rows, 8), 3);
	ck_assert_str_eq(rows[0][1], "0");
	ck_assert_str_eq(rows[0][2], "io");
	ck_assert_str_eq(rows[0][3], "out");
	ck_assert_str_eq(rows[0][4], "0x0080");
	ck_assert_str_eq(rows[0][6], "0x2a");
	ck_assert_str_eq(rows[0][7], "unassigned");
	ck_assert_str_eq(rows[1][1], "1");
	ck_assert_str_eq(rows[1][3], "in");
	ck_assert_str_eq(rows[1][5], "2");
	ck_assert_str_eq(rows[1][6], "0x1234"); /* little-endian, as the guest sees it */
	ck_assert_str_eq(rows[2][2], "mmio");
	ck_assert_str_eq(rows[2][3], "write");
	ck_assert_str_eq(rows[2][4], "0xfebf1000");
	ck_assert_str_eq(rows[2][6], "0xdeadbeef");
	ck_assert_uint_le(strtoull(rows[0][0], NULL, 10), strtoull(rows[2][0], NULL, 10));
	free(text);
	unlink(path);
}
END_TEST

START_TEST(exit_and_irq_lines)
{
	struct trace_opts o = { .what = TRACE_EXITS | TRACE_IRQ };
	struct trace t;
	struct kvm_run run = { 0 };
	char path[64], rows[8][8][40];
	uint8_t v = 1;
	char *text;

	open_trace(&t, &o, path);
	trace_exit(&t, 2, KVM_EXIT_INTR, NULL);
	run.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	trace_exit(&t, 0, KVM_EXIT_SYSTEM_EVENT, &run);
	trace_io(&t, 0, false, 0x3f8, 1, true, &v, "serial"); /* exits include io */
	trace_irq(&t, 4, 1);
	trace_msi(&t, 0xfee00000, 0x4021);
	ck_assert_int_eq(trace_close(&t), 0);

	text = slurp(path);
	ck_assert_int_eq(trace_rows(text, rows, 8), 5);
	ck_assert_str_eq(rows[0][1], "2");
	ck_assert_str_eq(rows[0][2], "intr");
	ck_assert_str_eq(rows[0][7], "-");
	ck_assert_str_eq(rows[1][2], "system_event");
	ck_assert_str_eq(rows[1][7], "shutdown");
	ck_assert_str_eq(rows[2][2], "io");
	ck_assert_str_eq(rows[2][7], "serial");
	ck_assert_str_eq(rows[3][1], "-");
	ck_assert_str_eq(rows[3][2], "irq");
	ck_assert_str_eq(rows[3][3], "line");
	ck_assert_str_eq(rows[3][4], "4");
	ck_assert_str_eq(rows[3][6], "1");
	ck_assert_str_eq(rows[4][2], "msi");
	ck_assert_str_eq(rows[4][4], "0xfee00000");
	ck_assert_str_eq(rows[4][6], "0x00004021");
	free(text);
	unlink(path);
}
END_TEST

START_TEST(filters)
{
	struct trace_opts o;
	struct trace t;
	char path[64], err[160], rows[16][8][40];
	uint8_t v = 0;
	char *text;

	/* dev= keeps that device's accesses, and exits without an access. */
	ck_assert_int_eq(parse("exits,dev=serial", &o, err), 0);
	open_trace(&t, &o, path);
	trace_io(&t, 0, false, 0x80, 1, true, &v, NULL);
	trace_io(&t, 0, false, 0x3f8, 1, true, &v, "serial");
	trace_io(&t, 0, false, 0x70, 1, true, &v, "rtc");
	trace_exit(&t, 0, KVM_EXIT_INTR, NULL);
	trace_close(&t);
	text = slurp(path);
	ck_assert_int_eq(trace_rows(text, rows, 16), 2);
	ck_assert_str_eq(rows[0][7], "serial");
	ck_assert_str_eq(rows[1][2], "intr");
	free(text);

	/* addr=, inclusive at both ends; "unassigned" accesses count too. */
	ck_assert_int_eq(parse("io,addr=0x80-0x81", &o, err), 0);
	open_trace(&t, &o, path);
	for (unsigned port = 0x7f; port <= 0x82; port++)
		trace_io(&t, 0, false, port, 1, true, &v, NULL);
	trace_close(&t);
	text = slurp(path);
	ck_assert_int_eq(trace_rows(text, rows, 16), 2);
	ck_assert_str_eq(rows[0][4], "0x0080");
	ck_assert_str_eq(rows[1][4], "0x0081");
	free(text);

	/* A window that has not begun yet: nothing but the header. */
	ck_assert_int_eq(parse("exits,irq,from=1000", &o, err), 0);
	open_trace(&t, &o, path);
	trace_io(&t, 0, false, 0x80, 1, true, &v, NULL);
	trace_exit(&t, 0, KVM_EXIT_INTR, NULL);
	trace_irq(&t, 4, 1);
	trace_close(&t);
	text = slurp(path);
	ck_assert_int_eq(trace_rows(text, rows, 16), 0);
	free(text);

	/* One that has ended: the trace started 10 s ago, to=5. */
	ck_assert_int_eq(parse("exits,to=5", &o, err), 0);
	snprintf(o.file, sizeof(o.file), "%s", path);
	ck_assert_int_eq(trace_open(&t, &o, stats_now_ns() - 10000000000ull), 0);
	trace_io(&t, 0, false, 0x80, 1, true, &v, NULL);
	trace_close(&t);
	text = slurp(path);
	ck_assert_int_eq(trace_rows(text, rows, 16), 0);
	free(text);
	unlink(path);
}
END_TEST

/* Lines wait in the buffer until it fills, the VM stops, or minivm exits. */
START_TEST(buffered_until_flushed)
{
	struct trace_opts o = { .what = TRACE_IO };
	struct trace t;
	struct stat st;
	char path[64];
	uint8_t v = 0;
	int lines = 0;

	open_trace(&t, &o, path);
	for (int i = 0; i < 100; i++)
		trace_io(&t, 0, false, 0x80, 1, true, &v, NULL);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	trace_flush(&t);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt(st.st_size, 100 * 20);

	/* A full buffer is written out as it fills, whole lines at a time. */
	while (stat(path, &st) == 0 && (size_t)st.st_size < 2 * sizeof(t.buf)) {
		trace_io(&t, 0, false, 0x80, 1, true, &v, NULL);
		ck_assert_int_lt(++lines, 100000);
	}
	ck_assert_int_eq(trace_close(&t), 0);
	unlink(path);
}
END_TEST

struct writer {
	struct trace *t;
	unsigned vcpu;
};

#define WRITER_LINES 20000

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	for (uint32_t i = 0; i < WRITER_LINES; i++)
		trace_io(w->t, w->vcpu, true, 0x1000 * w->vcpu, 4, true, &i, "dev");
	return NULL;
}

/* Four vCPUs at once: every line whole, none lost, each vCPU's in order. */
START_TEST(threads_do_not_interleave)
{
	struct trace_opts o = { .what = TRACE_IO };
	struct trace t;
	struct writer w[4];
	pthread_t th[4];
	uint32_t next[4] = { 0 };
	char path[64];
	char *text;
	int n = 0;

	open_trace(&t, &o, path);
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct writer){ .t = &t, .vcpu = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(trace_close(&t), 0);

	text = slurp(path);
	for (char *l = text, *end; *l; l = end + 1) {
		char f[10][40];
		unsigned cpu;

		end = strchr(l, '\n');
		ck_assert_ptr_nonnull(end);
		*end = '\0';
		if (*l == '#')
			continue;
		ck_assert_int_eq(fields(l, f, 10), 8);
		cpu = strtoul(f[1], NULL, 10);
		ck_assert_uint_lt(cpu, 4);
		ck_assert_uint_eq(strtoull(f[4], NULL, 16), 0x1000 * cpu);
		ck_assert_uint_eq(strtoul(f[6], NULL, 16), next[cpu]++);
		n++;
	}
	ck_assert_int_eq(n, 4 * WRITER_LINES);
	free(text);
	unlink(path);
}
END_TEST

START_TEST(bad_file)
{
	struct trace_opts o = { .what = TRACE_EXITS };
	struct trace t;

	snprintf(o.file, sizeof(o.file), "/nonexistent-dir/trace.log");
	ck_assert_int_eq(trace_open(&t, &o, 0), -ENOENT);
	ck_assert_int_eq(trace_close(&t), 0);
	ck_assert(!trace_wants(NULL, TRACE_EXITS));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trace");
	TCase *tc = tcase_create("trace");

	tcase_add_test(tc, parse_words_and_options);
	tcase_add_test(tc, parse_errors);
	tcase_add_test(tc, cli_flags);
	tcase_add_test(tc, line_format);
	tcase_add_test(tc, io_lines_and_values);
	tcase_add_test(tc, exit_and_irq_lines);
	tcase_add_test(tc, filters);
	tcase_add_test(tc, buffered_until_flushed);
	tcase_add_test(tc, threads_do_not_interleave);
	tcase_add_test(tc, bad_file);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
