/* SPDX-License-Identifier: MIT */
/*
 * The command line, spelled as QEMU spells it, so that a user's qemu-kvm
 * habits carry over: -kernel, -initrd, -append, -m, -smp, -nographic, ...
 */
#ifndef MINIVM_CLI_H
#define MINIVM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "disk/drive.h"
#include "net/netopts.h"
#include "vmm/trace.h"

#define CLI_MAX_VCPUS 254 /* xAPIC IDs are 8 bits and the IOAPIC takes one */
#define CLI_DEFAULT_RAM (128ULL << 20) /* QEMU's default */
#define CLI_MAX_DRIVES 16

enum serial_mode {
	SERIAL_STDIO,
	SERIAL_FILE,
	SERIAL_NONE,
};

/* What -kernel holds: -kernel-format says so, or minivm looks (KERNEL_AUTO). */
enum kernel_format {
	KERNEL_AUTO,
	KERNEL_LINUX, /* a bzImage, booted by Linux's boot protocol */
	KERNEL_ELF,   /* a bare-metal ELF executable, started in real mode */
	KERNEL_FLAT,  /* a bare-metal flat binary, at 0x7c00 like a boot sector */
};

struct vm_config {
	const char *kernel;
	enum kernel_format kernel_format;
	const char *initrd;
	const char *append;
	const char *name;
	uint64_t ram_size;
	unsigned ncpus;
	bool nographic;
	bool no_reboot;
	enum serial_mode serial;
	const char *serial_path;
	int verbose;
	struct drive_opts drives[CLI_MAX_DRIVES]; /* in command-line order: vda, vdb, ... */
	unsigned nr_drives;
	bool name_set;            /* -name given: the control socket is named after it */
	bool monitor_stdio;       /* -monitor stdio */
	const char *monitor_path; /* -monitor unix:PATH,server,nowait */
	char monitor_path_buf[108]; /* (sun_path's size) */
	bool start_paused;        /* -S: vCPUs stopped until the monitor's cont */
	bool daemonize;
	const char *pidfile;
	const char *logfile; /* -D: minivm's messages, once the VM is set up */
	unsigned shutdown_timeout; /* SIGTERM: seconds the guest has to power off */
	bool stats_summary;       /* --stats: print exit statistics at exit */
	bool no_stats;            /* --no-stats: do not count exits at all */
	struct trace_opts trace;  /* --trace; trace.what 0: off */
	struct net_config net;    /* -netdev, -device, -nic, -net: NICs after the drives */
};

#define CLI_DEFAULT_SHUTDOWN_TIMEOUT 10

enum cli_result {
	CLI_RUN = 0,  /* start a VM */
	CLI_EXIT = 1, /* --help or --version was printed */
};

/*
 * Fills cfg from argv. Returns CLI_RUN, CLI_EXIT, or -EINVAL after printing a
 * one-line error naming the flag.
 */
int cli_parse(int argc, char **argv, struct vm_config *cfg);
/* -m's syntax: a number of MiB, or a number with a K/M/G/T suffix. */
int cli_parse_size(const char *s, uint64_t *bytes);
/* Checks cfg against what this host has; prints and returns -errno. */
int cli_check_host(const struct vm_config *cfg, uint64_t host_ram);
void cli_usage(void);
/* "linux", "elf", "flat" (or "auto"), as -kernel-format spells them. */
const char *kernel_format_name(enum kernel_format fmt);

#endif
