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

#include "vmm/arch.h"
#include "vmm/cli.h"
#include "vmm/console.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/procctl.h"
#include "vmm/stats.h"
#include "vmm/trace.h"
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

static int console_setup(struct console *con, const struct vm_config *cfg,
			 struct monitor *mon)
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
	if (mon->stdio_muxed)
		console_set_monitor(con, monitor_input, monitor_focus, mon);
	return console_start(con);
}

/* Bare-metal guests (guests/teach/) do run on PVM: only Linux is warned. */
static void warn_pvm(const struct vm_config *cfg)
{
	if (cfg->kernel_format == KERNEL_LINUX && kvm_is_pvm())
		pr_warn("/dev/kvm is PVM (kvm_pvm), a paravirtual KVM that cannot boot a "
			"standard Linux kernel; run minivm inside the test rig instead: "
			"tests/rig/run.sh -- minivm ...");
}

/* -kernel-format, or a look at the file; only Linux takes -initrd and -append. */
static int kernel_format_resolve(struct vm_config *cfg)
{
	if (arch_kernel_probe(cfg->kernel, &cfg->kernel_format))
		return -EINVAL;
	if (cfg->kernel_format != KERNEL_LINUX && (cfg->initrd || cfg->append)) {
		pr_err("-%s: %s is a bare-metal %s image, not Linux; it takes no %s",
		       cfg->initrd ? "initrd" : "append", cfg->kernel,
		       kernel_format_name(cfg->kernel_format),
		       cfg->initrd ? "initrd" : "command line");
		return -EINVAL;
	}
	return 0;
}

/*
 * Exit statistics and the trace outlive each VM, so that a guest reboot
 * keeps counting and the --stats summary covers the whole run.
 */
struct observers {
	struct stats stats;
	struct trace trace;
	bool stats_on, trace_on;
};

static int observers_start(struct observers *o, const struct vm_config *cfg)
{
	int ret;

	if (!cfg->no_stats) {
		if (stats_init(&o->stats, cfg->ncpus)) {
			pr_err("cannot allocate exit statistics");
			return -ENOMEM;
		}
		o->stats_on = true;
	}
	if (cfg->trace.what) {
		ret = trace_open(&o->trace, &cfg->trace, o->stats_on ? o->stats.start_ns :
								      stats_now_ns());
		if (ret) {
			pr_err("--trace file=%s: %s", cfg->trace.file, strerror(-ret));
			return ret;
		}
		o->trace_on = true;
	}
	return 0;
}

static void observers_attach(struct observers *o, struct vm *vm)
{
	stats_attach(o->stats_on ? &o->stats : NULL, vm);
	trace_attach(o->trace_on ? &o->trace : NULL, vm);
}

/* Prints the --stats summary and closes the trace; returns main()'s status. */
static int observers_finish(struct observers *o, const struct vm_config *cfg, int ret)
{
	int err;

	if (o->stats_on && cfg->stats_summary)
		stats_print(stderr, &o->stats, false);
	if (o->stats_on)
		stats_destroy(&o->stats);
	if (o->trace_on) {
		err = trace_close(&o->trace);
		if (err) {
			pr_err("--trace: writing %s: %s",
			       cfg->trace.file[0] ? cfg->trace.file : "stderr", strerror(-err));
			ret = 1;
		}
	}
	return ret;
}

static int run_vms(const struct vm_config *cfg, struct console *con, int sig_fd,
		   struct monitor *mon, struct procctl *proc, struct observers *obs)
{
	struct vm_shutdown shutdown = { .timeout_s = cfg->shutdown_timeout };
	bool first = true;
	struct vm vm;
	enum vm_event ev;

	warn_pvm(cfg);
	for (;;) {
		if (vm_create(&vm, cfg, con)) {
			vm_destroy(&vm);
			return 1;
		}
		procctl_ready(proc); /* -daemonize: detach now that the VM is up */
		if (cfg->start_paused && first)
			vm_pause(&vm, true); /* -S: no vCPU thread exists yet, so at once */
		first = false;
		observers_attach(obs, &vm);
		monitor_attach(mon, &vm);
		ev = vm_run(&vm, sig_fd, &shutdown);
		trace_flush(vm.trace); /* the VM has stopped: the trace is complete */
		monitor_detach(mon);
		vm_destroy(&vm);
		switch (ev) {
		case VM_EVENT_RESET:
			/* A guest that reboots instead of powering off on SIGTERM stays off. */
			if (cfg->no_reboot || shutdown.requested)
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
	struct monitor mon;
	struct procctl proc;
	struct observers obs = { 0 };
	bool con_up = false;
	int sig_fd, ret;

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return monitor_ctl_main(argc - 1, argv + 1);
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
	if (kernel_format_resolve(&cfg))
		return 1;
	procctl_init(&proc);
	if (cfg.logfile && procctl_logfile(&proc, cfg.logfile))
		return 1;
	/* Before any thread exists: fork keeps only the calling one. */
	if (cfg.daemonize && procctl_daemonize(&proc))
		return 1;
	if (cfg.pidfile && procctl_pidfile(&proc, cfg.pidfile))
		return 1;
	sig_fd = signals_init();
	if (sig_fd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		procctl_fini(&proc);
		return 1;
	}
	monitor_init(&mon, &cfg, &con);
	ret = monitor_open(&mon);
	if (!ret) {
		ret = console_setup(&con, &cfg, &mon);
		con_up = !ret;
	}
	if (!ret)
		ret = monitor_start(&mon);
	if (!ret)
		ret = observers_start(&obs, &cfg);
	ret = ret ? 1 : run_vms(&cfg, &con, sig_fd, &mon, &proc, &obs);
	/* The console thread may be running a monitor command: it goes first. */
	if (con_up)
		console_fini(&con);
	monitor_fini(&mon);
	ret = observers_finish(&obs, &cfg, ret); /* on a terminal back to normal */
	procctl_fini(&proc);
	close(sig_fd);
	return ret;
}
