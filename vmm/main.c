// SPDX-License-Identifier: MIT
/*
 * minivm: boot a Linux guest on KVM.
 *
 * main() is the boundary where errors are reported: it parses the command
 * line, sets up the console, then creates and runs VMs until the guest
 * powers off (a reboot creates the next one). Exit status: 0 when the guest
 * powered off, rebooted under -no-reboot, or the user quit; 1 on any error.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/console.h"
#include "vmm/log.h"
#include "vmm/vm.h"

static uint64_t host_ram(void)
{
	struct sysinfo si;

	if (sysinfo(&si) < 0)
		return UINT64_MAX;
	return ((uint64_t)si.totalram + si.totalswap) * si.mem_unit;
}

/*
 * SIGTERM, SIGINT and SIGHUP are read from a signalfd by the main thread,
 * so every thread blocks them and shutdown runs as ordinary code.
 */
static int signals_init(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	vcpu_signals_init();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1); /* only vCPU threads take the kick signal */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGUSR1);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

static int console_setup(struct console *con, const struct vm_config *cfg)
{
	int out_fd = STDOUT_FILENO, in_fd = -1;

	if (cfg->serial == SERIAL_FILE) {
		out_fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			pr_err("-serial file:%s: %s", cfg->serial_path, strerror(errno));
			return -errno;
		}
	} else if (cfg->serial == SERIAL_STDIO) {
		in_fd = STDIN_FILENO;
	}
	if (console_init(con, in_fd, out_fd)) {
		pr_err("cannot set up the console: %s", strerror(errno));
		return -EIO;
	}
	return console_start(con);
}

static void warn_pvm(void)
{
	if (kvm_is_pvm())
		pr_warn("/dev/kvm is PVM (kvm_pvm), a paravirtual KVM that cannot boot a "
			"standard Linux kernel; run minivm inside the test rig instead: "
			"tests/rig/run.sh -- minivm ...");
}

static int run_vms(const struct vm_config *cfg, struct console *con, int sig_fd)
{
	struct vm vm;
	enum vm_event ev;

	warn_pvm();
	for (;;) {
		if (vm_create(&vm, cfg, con)) {
			vm_destroy(&vm);
			return 1;
		}
		ev = vm_run(&vm, sig_fd);
		vm_destroy(&vm);
		switch (ev) {
		case VM_EVENT_RESET:
			if (cfg->no_reboot)
				return 0;
			pr_debug("guest reset: booting again");
			continue;
		case VM_EVENT_POWEROFF:
			return 0;
		default:
			return 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct console con;
	int sig_fd, ret;

	ret = cli_parse(argc, argv, &cfg);
	if (ret == CLI_EXIT)
		return 0;
	if (ret < 0)
		return 1;
	log_verbose = cfg.verbose;
	if (cli_check_host(&cfg, host_ram()))
		return 1;
	if (access(cfg.kernel, R_OK) < 0) {
		pr_err("-kernel %s: %s", cfg.kernel, strerror(errno));
		return 1;
	}
	if (cfg.initrd && access(cfg.initrd, R_OK) < 0) {
		pr_err("-initrd %s: %s", cfg.initrd, strerror(errno));
		return 1;
	}
	sig_fd = signals_init();
	if (sig_fd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		return 1;
	}
	if (console_setup(&con, &cfg))
		return 1;
	ret = run_vms(&cfg, &con, sig_fd);
	console_fini(&con);
	close(sig_fd);
	return ret;
}
