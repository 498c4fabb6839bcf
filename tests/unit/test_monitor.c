// SPDX-License-Identifier: MIT
/*
 * The monitor without KVM: command parsing, errors for bad input, text and
 * JSON answers, stop/cont on a VM with no vCPUs, the address map from real
 * buses, the process-control flags, and the control socket (path, owner-only
 * permissions, a stale socket replaced, a live one refused, a round trip).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/console.h"
#include "vmm/monitor.h"
#include "vmm/vm.h"
#include "tests/unit/unit.h"

#define ARGV(...) ((char *[]){ "minivm", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "minivm", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (cfg))

static struct vm_config cfg;
static struct monitor mon;
static struct mon_out out;

static void setup(void)
{
	ck_assert_int_eq(PARSE(&cfg, "-kernel", "bz", "-serial", "none"), CLI_RUN);
	monitor_init(&mon, &cfg, NULL);
	mon.vm_wait_ms = 0; /* no VM will come */
	memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
	mon_out_reset(&out);
	monitor_fini(&mon);
}

/* Runs line; returns the answer (valid until the next run). */
static const char *run(const char *line)
{
	mon_out_reset(&out);
	monitor_exec(&mon, line, &out);
	return out.buf ? out.buf : "";
}

static void assert_error(const char *line, const char *what)
{
	const char *a = run(line);

	ck_assert_msg(out.error, "'%s' should fail, answered '%s'", line, a);
	ck_assert_msg(!strncmp(a, "error: ", 7), "'%s': '%s'", line, a);
	ck_assert_msg(strstr(a, what), "'%s': '%s' lacks '%s'", line, a, what);
	ck_assert_ptr_eq(strchr(a, '\n'), a + strlen(a) - 1); /* one line */
}

START_TEST(bad_commands_get_one_error_line)
{
	assert_error("bogus", "unknown command: 'bogus'");
	assert_error("info", "info: what?");
	assert_error("info nonsense", "info nonsense: unknown");
	assert_error("info status extra", "takes no arguments");
	assert_error("info registers -b", "usage: info registers [-a]");
	assert_error("stop now", "stop takes no arguments");
	assert_error("quit please", "takes no arguments");
	assert_error("help me", "no help for 'me'");
	assert_error("a b c d e f g h i", "too many words");
	assert_error("info\x01status", "control characters");
}
END_TEST

START_TEST(long_and_empty_lines)
{
	char *big = malloc(MON_LINE_MAX + 10);

	memset(big, 'x', MON_LINE_MAX + 9);
	big[MON_LINE_MAX + 9] = '\0';
	assert_error(big, "too long");
	free(big);
	ck_assert_str_eq(run(""), "");
	ck_assert(!out.error);
	ck_assert_str_eq(run("   \t "), "");
	ck_assert(!out.error);
}
END_TEST

START_TEST(no_vm_between_boots)
{
	assert_error("info status", "no VM is running");
	assert_error("stop", "no VM is running");
	assert_error("system_powerdown", "no VM is running");
	assert_error("set_link n0 off", "no VM is running");
	/* Usage is checked first: it needs no VM. */
	assert_error("set_link", "usage: set_link NAME on|off");
	assert_error("set_link n0", "usage: set_link NAME on|off");
	assert_error("set_link n0 up", "usage: set_link NAME on|off");
	assert_error("set_link n0 on extra", "usage: set_link NAME on|off");
	/* What the command line says needs no VM. */
	ck_assert_str_eq(run("info network"), "no network devices\n");
	ck_assert_str_eq(run("info block"), "no block devices\n");
}
END_TEST

START_TEST(help_lists_commands)
{
	const char *a = run("help");
	static const char *const want[] = { "help", "info WHAT", "stop", "cont", "system_reset",
					    "system_powerdown", "quit" };

	ck_assert(!out.error);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(a, want[i]), "help lacks %s", want[i]);
	a = run("help info");
	ck_assert(strstr(a, "info cpus"));
	ck_assert(strstr(a, "info registers [-a]"));
	ck_assert(strstr(a, "info mtree"));
	char *help = strdup(run("help"));

	ck_assert_str_eq(run("?"), help); /* alias */
	free(help);
}
END_TEST

START_TEST(json_answers)
{
	ck_assert_str_eq(run("-j info network"), "{\"return\": []}\n");
	ck_assert_str_eq(run("--json info status"),
			 "{\"error\": \"no VM is running right now (the guest is rebooting)\"}\n");
	ck_assert(out.error);
	ck_assert_str_eq(run("-j bogus\"x"), "{\"error\": \"unknown command: 'bogus\\\"x' (try help)\"}\n");
	ck_assert_str_eq(run("-j"), "{\"error\": \"-j: which command?\"}\n");
	ck_assert(!strncmp(run("-j help"), "{\"return\": [{\"command\": \"help\"", 30));
}
END_TEST

START_TEST(json_strings_escaped)
{
	struct mon_out o = { 0 };

	mon_json_str(&o, "a\"b\\c\nd\x01");
	ck_assert_str_eq(o.buf, "\"a\\\"b\\\\c\\u000ad\\u0001\"");
	mon_out_reset(&o);
}
END_TEST

START_TEST(info_block_from_the_command_line)
{
	ck_assert_int_eq(PARSE(&cfg, "-kernel", "bz", "-drive", "file=/x/a.img,format=raw",
			       "-drive", "file=b.qcow2,readonly=on,cache=none"), CLI_RUN);
	ck_assert_str_eq(run("info block"), "vda: /x/a.img (raw, cache=writeback)\n"
					    "vdb: b.qcow2 (probed, cache=none, read-only)\n");
	ck_assert_str_eq(run("-j info block"),
			 "{\"return\": [{\"device\": \"vda\", \"file\": \"/x/a.img\", \"format\": \"raw\", "
			 "\"cache\": \"writeback\", \"read_only\": false}, {\"device\": \"vdb\", "
			 "\"file\": \"b.qcow2\", \"format\": \"probed\", \"cache\": \"none\", "
			 "\"read_only\": true}]}\n");
}
END_TEST

static void nop_rw(void *o, uint64_t off, void *d, unsigned s)
{
	(void)o, (void)off, (void)d, (void)s;
}

static const struct bus_ops nop_ops = { .read = nop_rw };

/* A VM as far as the monitor sees it without KVM: buses, no vCPUs. */
static void fake_vm(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = -1;
	vm_pause_init(&vm->pause);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->routing.lock, NULL);
	ck_assert_int_eq(bus_register(&vm->pio, 0x3f8, 8, &nop_ops, NULL, "serial8250"), 0);
	ck_assert_int_eq(bus_register(&vm->mmio, 0xfe000000, 0x1000, &nop_ops, NULL, "virtio"), 0);
	vm->mem.nr = 1;
	vm->mem.regions[0] = (struct mem_region){ .gpa = 0, .size = 128 << 20 };
}

static void fake_vm_free(struct vm *vm)
{
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	vm_pause_destroy(&vm->pause);
	pthread_mutex_destroy(&vm->routing.lock);
}

START_TEST(stop_and_cont)
{
	struct vm vm;

	fake_vm(&vm);
	monitor_attach(&mon, &vm);
	ck_assert_str_eq(run("info status"), "VM status: running\n");
	ck_assert_str_eq(run("stop"), "");
	ck_assert(!out.error);
	ck_assert(vm_is_paused(&vm));
	ck_assert_str_eq(run("info status"), "VM status: paused\n");
	ck_assert_str_eq(run("-j info status"),
			 "{\"return\": {\"running\": false, \"status\": \"paused\"}}\n");
	ck_assert_str_eq(run("stop"), ""); /* again: no error, as in QEMU */
	assert_error("system_powerdown", "cont first");
	ck_assert_str_eq(run("-j cont"), "{\"return\": {}}\n");
	ck_assert(!vm_is_paused(&vm));
	ck_assert_str_eq(run("c"), ""); /* alias; running already is fine */
	ck_assert_str_eq(run("info status"), "VM status: running\n");
	/* Once the VM is being stopped for good, stop must not park anyone. */
	vm_pause_release(&vm);
	assert_error("stop", "shutting down");
	monitor_detach(&mon);
	assert_error("info status", "no VM");
	fake_vm_free(&vm);
}
END_TEST

/*
 * A vCPU that never comes out of KVM_RUN (seen in the rig) must not hang
 * the monitor: stop fails, naming it, and the VM is left running.
 */
START_TEST(stop_fails_on_a_vcpu_that_will_not_park)
{
	struct kvm_run run_page = { .exit_reason = KVM_EXIT_HLT };
	struct vcpu v = { .id = 0, .run = &run_page, .in_run = true };
	struct vm vm;

	fake_vm(&vm);
	v.vm = &vm;
	vm.vcpus = &v;
	vm.nr_vcpus = 1;
	vm.pause.limit_ms = 300;
	run_page.immediate_exit = 1; /* as a kick leaves it */
	vcpu_pause_enter(&v); /* counted as running; never reaches a pause point */
	monitor_attach(&mon, &vm);
	assert_error("stop", "vCPU 0 did not leave KVM_RUN within 0.3 s");
	ck_assert(strstr(out.buf, "the last with reason 5") != NULL);
	ck_assert(!vm_is_paused(&vm));
	ck_assert_int_eq(run_page.immediate_exit, 0); /* the kick taken back */
	assert_error("info cpus", "cannot stop the vCPUs: vCPU 0");
	ck_assert_str_eq(run("info status"), "VM status: running\n");
	vcpu_pause_leave(&v);
	ck_assert_str_eq(run("stop"), ""); /* nobody left to wait for */
	ck_assert(vm_is_paused(&vm));
	monitor_detach(&mon);
	fake_vm_free(&vm);
}
END_TEST

START_TEST(mtree_shows_the_buses)
{
	struct vm vm;
	const char *a;

	fake_vm(&vm);
	monitor_attach(&mon, &vm);
	a = run("info mtree");
	ck_assert_msg(strstr(a, "0000000000000000-0000000007ffffff ram slot 0"), "%s", a);
	ck_assert_msg(strstr(a, "00000000000003f8-00000000000003ff serial8250"), "%s", a);
	ck_assert_msg(strstr(a, "00000000fe000000-00000000fe000fff virtio"), "%s", a);
	ck_assert(strstr(a, "pio (1 regions") < strstr(a, "mmio (1 regions"));
	a = run("-j info mtree");
	ck_assert_msg(strstr(a, "{\"space\": \"pio\", \"base\": 1016, \"size\": 8, \"name\": "
				"\"serial8250\", \"accesses\": 0}"), "%s", a);
	ck_assert_str_eq(run("-j info irq"), "{\"return\": []}\n");
	monitor_detach(&mon);
	fake_vm_free(&vm);
}
END_TEST

START_TEST(process_control_flags)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "unix:/tmp/m.sock,server,nowait",
			       "-pidfile", "/tmp/p", "-shutdown-timeout", "3", "-S", "-name", "vm1",
			       "-daemonize", "-serial", "none"), CLI_RUN);
	ck_assert_str_eq(c.monitor_path, "/tmp/m.sock");
	ck_assert(!c.monitor_stdio && c.daemonize && c.start_paused && c.name_set);
	ck_assert_str_eq(c.pidfile, "/tmp/p");
	ck_assert_uint_eq(c.shutdown_timeout, 3);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "stdio"), CLI_RUN);
	ck_assert(c.monitor_stdio && !c.name_set);
	ck_assert_uint_eq(c.shutdown_timeout, CLI_DEFAULT_SHUTDOWN_TIMEOUT);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "unix:/x,server=on,wait=off"),
			 CLI_RUN);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "unix:/x,client"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "unix:"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-monitor", "tcp:1:2"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-shutdown-timeout", "-1"), -EINVAL);
	/* As in QEMU: a daemon cannot keep the terminal. */
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-daemonize"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-daemonize", "-serial", "file:/x",
			       "-monitor", "stdio"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-name", "a/b"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-name", ".x"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-D", "/tmp/log"), CLI_RUN);
	ck_assert_str_eq(c.logfile, "/tmp/log");
	ck_assert_int_eq(PARSE(&c, "-kernel", "bz", "-D", ""), -EINVAL);
}
END_TEST

static char rundir[64];

static void use_rundir(void)
{
	strcpy(rundir, "/tmp/minivm-unit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(rundir));
	setenv("XDG_RUNTIME_DIR", rundir, 1);
}

static void rm_rundir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", rundir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(ctl_path)
{
	char dir[MON_PATH_MAX], path[MON_PATH_MAX], big[200];

	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	ck_assert_int_eq(monitor_ctl_path("vm1", dir, sizeof(dir), path, sizeof(path)), 0);
	ck_assert_str_eq(dir, "/run/user/7/minivm");
	ck_assert_str_eq(path, "/run/user/7/minivm/vm1.sock");
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(monitor_ctl_path("vm1", dir, sizeof(dir), path, sizeof(path)), 0);
	ck_assert_str_eq(path, geteuid() ? path : "/run/minivm/vm1.sock");
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(monitor_ctl_path(big, dir, sizeof(dir), path, sizeof(path)), -ENAMETOOLONG);
}
END_TEST

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

START_TEST(control_socket)
{
	struct monitor second;
	struct stat st;
	char path[MON_PATH_MAX + 16], buf[1024];
	ssize_t n, got = 0;
	int fd;

	use_rundir();
	ck_assert_int_eq(PARSE(&cfg, "-kernel", "bz", "-serial", "none", "-name", "unit"), CLI_RUN);
	/* A socket left by a killed minivm is replaced. */
	snprintf(path, sizeof(path), "%s/minivm", rundir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/minivm/unit.sock", rundir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd); /* bound, never listening: stale */
	}
	ck_assert_int_eq(monitor_open(&mon), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/minivm", rundir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);

	/* A second VM with the same name is refused. */
	monitor_init(&second, &cfg, NULL);
	ck_assert_int_eq(monitor_open(&second), -EADDRINUSE);
	monitor_fini(&second);

	ck_assert_int_eq(monitor_start(&mon), 0);
	snprintf(path, sizeof(path), "%s/minivm/unit.sock", rundir);
	fd = connect_to(path);
	ck_assert_int_ge(fd, 0);
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(write(fd, "bogus\r\n-j info network\n", 24), 24);
	for (int i = 0; i < 3; i++) /* a line of 3000 bytes */
		ck_assert_int_eq(write(fd, buf, 1000), 1000);
	ck_assert_int_eq(write(fd, "\ninfo network", 13), 13); /* the last line, no \n */
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	ck_assert_str_eq(buf, "error: unknown command: 'bogus' (try help)\n{\"return\": []}\n"
			      "error: command too long (at most 1023 bytes)\nno network devices\n");

	monitor_fini(&mon);
	monitor_init(&mon, &cfg, NULL); /* for teardown */
	ck_assert_int_eq(access(path, F_OK), -1); /* removed at exit */
	rm_rundir();
}
END_TEST

START_TEST(runtime_dir_must_be_private)
{
	char path[MON_PATH_MAX + 16];

	use_rundir();
	ck_assert_int_eq(PARSE(&cfg, "-kernel", "bz", "-serial", "none", "-name", "unit"), CLI_RUN);
	snprintf(path, sizeof(path), "%s/minivm", rundir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(chmod(path, 0755), 0);
	/* Refused, but the VM may run without its control socket. */
	ck_assert_int_eq(monitor_open(&mon), 0);
	ck_assert_int_eq(mon.ctl_fd, -1);
	snprintf(path, sizeof(path), "%s/minivm/unit.sock", rundir);
	ck_assert_int_eq(access(path, F_OK), -1);
	rm_rundir();
}
END_TEST

struct mux_rec {
	char typed[64];
	size_t len;
	int focus_on, focus_off;
};

static void mux_input(void *ctx, const uint8_t *buf, size_t len)
{
	struct mux_rec *r = ctx;

	memcpy(r->typed + r->len, buf, len);
	r->len += len;
}

static void mux_focus(void *ctx, bool on)
{
	struct mux_rec *r = ctx;

	if (on)
		r->focus_on++;
	else
		r->focus_off++;
}

/* -monitor stdio next to the console: Ctrl-a c hands the keys over and back. */
START_TEST(ctrl_a_c_switches)
{
	static const uint8_t in[] = "ab\x01" "cinfo\n\x01" "c\x01\x01z";
	struct console con;
	struct mux_rec r = { 0 };
	uint8_t out[64];
	size_t n;

	ck_assert_int_eq(console_init(&con, -1, open("/dev/null", O_WRONLY | O_CLOEXEC)), 0);
	console_set_monitor(&con, mux_input, mux_focus, &r);
	n = console_filter(&con, in, sizeof(in) - 1, out);
	ck_assert_uint_eq(n, 4);
	ck_assert(!memcmp(out, "ab\x01z", 4)); /* C-a C-a is one C-a for the guest */
	ck_assert_uint_eq(r.len, 5);
	ck_assert(!memcmp(r.typed, "info\n", 5));
	ck_assert_int_eq(r.focus_on, 1);
	ck_assert_int_eq(r.focus_off, 1);
	close(con.out_fd);
	console_fini(&con);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("monitor");
	TCase *tc = tcase_create("commands");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, bad_commands_get_one_error_line);
	tcase_add_test(tc, long_and_empty_lines);
	tcase_add_test(tc, no_vm_between_boots);
	tcase_add_test(tc, help_lists_commands);
	tcase_add_test(tc, json_answers);
	tcase_add_test(tc, json_strings_escaped);
	tcase_add_test(tc, info_block_from_the_command_line);
	tcase_add_test(tc, stop_and_cont);
	tcase_add_test(tc, stop_fails_on_a_vcpu_that_will_not_park);
	tcase_add_test(tc, mtree_shows_the_buses);
	tcase_add_test(tc, process_control_flags);
	tcase_add_test(tc, ctl_path);
	tcase_add_test(tc, control_socket);
	tcase_add_test(tc, runtime_dir_must_be_private);
	tcase_add_test(tc, ctrl_a_c_switches);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
