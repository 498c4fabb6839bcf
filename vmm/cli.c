// SPDX-License-Identifier: MIT
/*
 * Command-line parsing with QEMU's spelling. QEMU accepts both -flag and
 * --flag, and option values of the form key=value,key=value; minivm accepts
 * the keys that make sense for it and refuses the rest by name, so a
 * command line copied from QEMU either means the same here or fails loudly.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/log.h"

void cli_usage(void)
{
	printf("usage: minivm [options]\n"
	       "\n"
	       "Boot a Linux guest on KVM. Flags are spelled as in QEMU.\n"
	       "\n"
	       "  -kernel file         what to boot: a Linux bzImage, or a bare-metal ELF or flat binary\n"
	       "  -kernel-format fmt   linux, elf or flat: say what -kernel is instead of probing it\n"
	       "  -initrd file         an initial ramdisk\n"
	       "  -append cmdline      the kernel command line\n"
	       "  -m size              guest RAM: MiB, or with a K/M/G/T suffix (default 128M)\n"
	       "  -smp n               number of vCPUs (also cpus=n[,sockets=..,cores=..,threads=..])\n"
	       "  -nographic           no display; the serial port is on the terminal\n"
	       "  -serial dev          stdio (default), file:PATH, or none\n"
	       "  -drive opts          a virtio disk: file=PATH[,format=raw][,cache=writeback|none|\n"
	       "                       writethrough|directsync|unsafe][,readonly=on][,serial=S]\n"
	       "                       [,discard=unmap|ignore]; vda, vdb, ... in this order\n"
	       "  -netdev tap,id=ID[,ifname=IF][,script=PATH|no][,downscript=PATH|no]\n"
	       "  -netdev bridge,id=ID[,br=BRIDGE]   a network backend: a TAP (bridge: added to BRIDGE)\n"
	       "  -netdev user,id=ID[,net=10.0.2.0/24][,host=..][,dhcpstart=..][,dns=..][,hostname=..]\n"
	       "          [,restrict=on][,ipv6=off][,hostfwd=tcp|udp:[HOSTADDR]:PORT-[GUESTADDR]:PORT]\n"
	       "                       user-mode networking (libslirp): no privileges, NAT to the host\n"
	       "  -device virtio-net-pci,netdev=ID[,mac=52:54:00:..][,host_mtu=N]   a NIC on it\n"
	       "  -nic tap|bridge|user[,...]  both at once; -net nic[,macaddr=..] -net tap|user[,...];\n"
	       "                       -net none\n"
	       "  -no-reboot           exit instead of rebooting when the guest reboots\n"
	       "  -name name           a name for the VM (and its control socket)\n"
	       "  -monitor dev         the monitor: stdio (Ctrl-a c switches), unix:PATH,server,nowait\n"
	       "                       or none; minivm ctl NAME CMD talks to any VM by name\n"
	       "  -S                   start with the vCPUs stopped (the monitor's cont starts them)\n"
	       "  -daemonize           detach once the VM is set up (needs -serial file:PATH or none)\n"
	       "  -pidfile file        write minivm's pid there (removed at exit)\n"
	       "  -D file              once the VM is set up, minivm's messages go to file\n"
	       "                       (appended; with -daemonize they are lost otherwise)\n"
	       "  -shutdown-timeout s  on SIGTERM the guest gets a power button press and s seconds\n"
	       "                       to power off (default 10; 0: stop at once)\n"
	       "  --stats              print exit statistics on stderr when minivm exits\n"
	       "  --no-stats           do not count exits (on by default; to measure the cost)\n"
	       "  --trace what[,opt]   one line per exit on stderr; what: exits, io, irq;\n"
	       "                       opt: file=PATH, from=S, to=S (seconds since start),\n"
	       "                       dev=NAME, addr=A[-B] (see vmm/trace.h for the format)\n"
	       "  -enable-kvm, -accel kvm, -display none   accepted for QEMU compatibility\n"
	       "  -v                   verbose diagnostics\n"
	       "  -h, --help           this text\n"
	       "  --version            the version\n"
	       "\n"
	       "On the serial console: Ctrl-a x quits, Ctrl-a h lists the other keys.\n"
	       "\n"
	       "  minivm ctl NAME COMMAND...   runs a monitor command in the VM named NAME\n");
}

int cli_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t mult = 1ULL << 20; /* QEMU's -m counts in MiB by default */
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'B':
		mult = 1;
		break;
	case 'K':
		mult = 1ULL << 10;
		break;
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'G':
		mult = 1ULL << 30;
		break;
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		/* "256M" and "256MB" and "256MiB" are all fine */
		if (mult != 1 && (*end == 'i' || *end == 'I'))
			end++;
		if (mult != 1 && (*end == 'b' || *end == 'B'))
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*bytes = v * mult;
	return 0;
}

/* Parses a decimal unsigned int without trailing garbage. */
static int parse_uint(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xffffffffUL)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * QEMU's option syntax: an optional leading value, then key=value pairs,
 * comma-separated. Calls fn for each item; key is NULL for a bare value.
 */
static int for_each_opt(char *s, int (*fn)(void *ctx, const char *key, const char *val),
			void *ctx)
{
	char *save = NULL;

	for (char *item = strtok_r(s, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int ret;

		if (eq) {
			*eq = '\0';
			ret = fn(ctx, item, eq + 1);
		} else {
			ret = fn(ctx, NULL, item);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static int mem_opt(void *ctx, const char *key, const char *val)
{
	struct vm_config *cfg = ctx;

	if (key && strcmp(key, "size"))
		return -EINVAL;
	return cli_parse_size(val, &cfg->ram_size);
}

struct smp_opts {
	unsigned cpus, sockets, cores, threads;
	bool cpus_given;
};

static int smp_opt(void *ctx, const char *key, const char *val)
{
	struct smp_opts *o = ctx;

	if (!key || !strcmp(key, "cpus")) {
		o->cpus_given = true;
		return parse_uint(val, &o->cpus);
	}
	if (!strcmp(key, "sockets"))
		return parse_uint(val, &o->sockets);
	if (!strcmp(key, "cores"))
		return parse_uint(val, &o->cores);
	if (!strcmp(key, "threads"))
		return parse_uint(val, &o->threads);
	if (!strcmp(key, "maxcpus") || !strcmp(key, "dies"))
		return 0;
	return -EINVAL;
}

static int parse_smp(const char *arg, struct vm_config *cfg)
{
	struct smp_opts o = { 0 };
	char *s = strdup(arg);
	int ret;

	if (!s)
		return -ENOMEM;
	ret = for_each_opt(s, smp_opt, &o);
	free(s);
	if (ret)
		return ret;
	if (!o.cpus_given) {
		/* QEMU derives cpus from the topology when only that is given. */
		o.cpus = (o.sockets ? o.sockets : 1) * (o.cores ? o.cores : 1) *
			 (o.threads ? o.threads : 1);
		if (!o.sockets && !o.cores && !o.threads)
			return -EINVAL;
	}
	cfg->ncpus = o.cpus;
	return 0;
}

static int parse_serial(const char *arg, struct vm_config *cfg)
{
	if (!strcmp(arg, "stdio") || !strcmp(arg, "mon:stdio")) {
		cfg->serial = SERIAL_STDIO;
	} else if (!strcmp(arg, "none") || !strcmp(arg, "null")) {
		cfg->serial = SERIAL_NONE;
	} else if (!strncmp(arg, "file:", 5) && arg[5]) {
		cfg->serial = SERIAL_FILE;
		cfg->serial_path = arg + 5;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int parse_name(const char *arg, struct vm_config *cfg)
{
	/* "-name guest=NAME,..." or plain "-name NAME" */
	if (!strncmp(arg, "guest=", 6))
		arg += 6;
	if (!*arg)
		return -EINVAL;
	cfg->name = arg;
	cfg->name_set = true;
	return 0;
}

static bool monitor_opt_ok(const char *opt, size_t n)
{
	static const char *const ok[] = { "server", "nowait", "server=on", "wait=off" };

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (strlen(ok[i]) == n && !strncmp(opt, ok[i], n))
			return true;
	return false;
}

/*
 * QEMU's chardev spellings that mean something here. minivm only listens
 * on a socket, never connects out, so "server,nowait" is all it takes.
 */
static int parse_monitor(const char *arg, struct vm_config *cfg)
{
	size_t len;

	cfg->monitor_stdio = false;
	cfg->monitor_path = NULL;
	if (!strcmp(arg, "none"))
		return 0;
	if (!strcmp(arg, "stdio"))
		return (cfg->monitor_stdio = true, 0);
	if (strncmp(arg, "unix:", 5))
		return -EINVAL;
	arg += 5;
	len = strcspn(arg, ",");
	if (!len || len >= sizeof(cfg->monitor_path_buf))
		return -EINVAL;
	for (const char *o = arg + len; *o; o += 1 + strcspn(o + 1, ","))
		if (!monitor_opt_ok(o + 1, strcspn(o + 1, ",")))
			return -EINVAL;
	memcpy(cfg->monitor_path_buf, arg, len);
	cfg->monitor_path_buf[len] = '\0';
	cfg->monitor_path = cfg->monitor_path_buf;
	return 0;
}

static int parse_pidfile(const char *arg, struct vm_config *cfg)
{
	if (!*arg)
		return -EINVAL;
	cfg->pidfile = arg;
	return 0;
}

static int parse_logfile(const char *arg, struct vm_config *cfg)
{
	if (!*arg)
		return -EINVAL;
	cfg->logfile = arg;
	return 0;
}

static int parse_shutdown_timeout(const char *arg, struct vm_config *cfg)
{
	return parse_uint(arg, &cfg->shutdown_timeout);
}

static int parse_accel(const char *arg, struct vm_config *cfg)
{
	(void)cfg;
	return strncmp(arg, "kvm", 3) ? -EINVAL : 0;
}

static int parse_display(const char *arg, struct vm_config *cfg)
{
	(void)cfg;
	return strcmp(arg, "none") ? -EINVAL : 0;
}

static int parse_mem(const char *arg, struct vm_config *cfg)
{
	char *s = strdup(arg);
	int ret;

	if (!s)
		return -ENOMEM;
	ret = for_each_opt(s, mem_opt, cfg);
	free(s);
	return ret;
}

static int parse_drive(const char *arg, struct vm_config *cfg)
{
	struct drive_opts *o;

	if (cfg->nr_drives == CLI_MAX_DRIVES) {
		pr_err("-drive %s: at most %d drives", arg, CLI_MAX_DRIVES);
		return -ENOSPC;
	}
	o = &cfg->drives[cfg->nr_drives];
	drive_opts_init(o);
	if (drive_parse(arg, o)) {
		pr_err("-drive %s: %s", arg, o->err);
		return -EINVAL;
	}
	cfg->nr_drives++;
	return 0;
}

static int parse_trace(const char *arg, struct vm_config *cfg)
{
	char err[160];

	if (trace_parse(arg, &cfg->trace, err, sizeof(err))) {
		pr_err("--trace %s: %s", arg, err);
		return -EINVAL;
	}
	return 0;
}

/* The network flags share one shape: net/netopts.c parses, we print. */
static int parse_net_flag(const char *flag, const char *arg, struct vm_config *cfg,
			  int (*fn)(struct net_config *, const char *, char *, size_t))
{
	char err[NET_ERR_MAX + PATH_MAX];

	if (fn(&cfg->net, arg, err, sizeof(err))) {
		pr_err("-%s %s: %s", flag, arg, err);
		return -EINVAL;
	}
	return 0;
}

static int parse_netdev(const char *arg, struct vm_config *cfg)
{
	return parse_net_flag("netdev", arg, cfg, net_parse_netdev);
}

static int parse_device(const char *arg, struct vm_config *cfg)
{
	return parse_net_flag("device", arg, cfg, net_parse_device);
}

static int parse_nic(const char *arg, struct vm_config *cfg)
{
	return parse_net_flag("nic", arg, cfg, net_parse_nic);
}

static int parse_net(const char *arg, struct vm_config *cfg)
{
	return parse_net_flag("net", arg, cfg, net_parse_net);
}

static int set_string(const char **dst, const char *arg)
{
	if (!*arg)
		return -EINVAL;
	*dst = arg;
	return 0;
}

static int set_kernel(const char *a, struct vm_config *c) { return set_string(&c->kernel, a); }

static const char *const kernel_formats[] = {
	[KERNEL_AUTO] = "auto", [KERNEL_LINUX] = "linux",
	[KERNEL_ELF] = "elf", [KERNEL_FLAT] = "flat",
};

const char *kernel_format_name(enum kernel_format fmt)
{
	return (unsigned)fmt < ARRAY_SIZE(kernel_formats) ? kernel_formats[fmt] : "?";
}

static int parse_kernel_format(const char *arg, struct vm_config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(kernel_formats); i++) {
		if (!strcmp(arg, kernel_formats[i])) {
			cfg->kernel_format = i;
			return 0;
		}
	}
	return -EINVAL;
}
static int set_initrd(const char *a, struct vm_config *c) { return set_string(&c->initrd, a); }
static int set_append(const char *a, struct vm_config *c) { c->append = a; return 0; }

struct cli_flag {
	const char *name;
	int (*parse)(const char *arg, struct vm_config *cfg); /* NULL: takes no argument */
	const char *what; /* for errors: what a valid argument looks like */
};

static const struct cli_flag cli_flags[] = {
	{ "kernel", set_kernel, "a file name" },
	{ "kernel-format", parse_kernel_format, "linux, elf, flat or auto" },
	{ "initrd", set_initrd, "a file name" },
	{ "append", set_append, "a command line" },
	{ "m", parse_mem, "a size such as 256, 256M or 2G" },
	{ "smp", parse_smp, "a number of vCPUs such as 2 or cpus=2" },
	{ "serial", parse_serial, "stdio, file:PATH or none" },
	{ "drive", parse_drive, NULL }, /* prints its own errors */
	{ "name", parse_name, "a name" },
	{ "monitor", parse_monitor, "stdio, unix:PATH,server,nowait or none" },
	{ "pidfile", parse_pidfile, "a file name" },
	{ "D", parse_logfile, "a file name" },
	{ "shutdown-timeout", parse_shutdown_timeout, "a number of seconds" },
	{ "daemonize", NULL, NULL },
	{ "S", NULL, NULL },
	{ "trace", parse_trace, NULL }, /* prints its own errors */
	{ "netdev", parse_netdev, NULL }, /* the network flags too */
	{ "device", parse_device, NULL },
	{ "nic", parse_nic, NULL },
	{ "net", parse_net, NULL },
	{ "stats", NULL, NULL },
	{ "no-stats", NULL, NULL },
	{ "accel", parse_accel, "kvm" },
	{ "display", parse_display, "none" },
	{ "nographic", NULL, NULL },
	{ "no-reboot", NULL, NULL },
	{ "enable-kvm", NULL, NULL },
	{ "v", NULL, NULL },
	{ "help", NULL, NULL },
	{ "h", NULL, NULL },
	{ "version", NULL, NULL },
};

static const struct cli_flag *find_flag(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cli_flags); i++)
		if (!strcmp(cli_flags[i].name, name))
			return &cli_flags[i];
	return NULL;
}

static int apply_switch(const char *name, struct vm_config *cfg)
{
	if (!strcmp(name, "nographic"))
		cfg->nographic = true;
	else if (!strcmp(name, "no-reboot"))
		cfg->no_reboot = true;
	else if (!strcmp(name, "v"))
		cfg->verbose++;
	else if (!strcmp(name, "daemonize"))
		cfg->daemonize = true;
	else if (!strcmp(name, "S"))
		cfg->start_paused = true;
	else if (!strcmp(name, "stats"))
		cfg->stats_summary = true;
	else if (!strcmp(name, "no-stats"))
		cfg->no_stats = true;
	else if (!strcmp(name, "help") || !strcmp(name, "h"))
		return (cli_usage(), CLI_EXIT);
	else if (!strcmp(name, "version"))
		return (printf("minivm %s\n", MINIVM_VERSION), CLI_EXIT);
	return CLI_RUN;
}

static void config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ram_size = CLI_DEFAULT_RAM;
	cfg->ncpus = 1;
	cfg->serial = SERIAL_STDIO;
	cfg->name = "minivm";
	cfg->shutdown_timeout = CLI_DEFAULT_SHUTDOWN_TIMEOUT;
	net_config_init(&cfg->net);
}

/* Pairs NICs with their backends and gives them their MACs. */
static int check_net(struct vm_config *cfg)
{
	char err[NET_ERR_MAX + PATH_MAX];

	if (net_config_check(&cfg->net, err, sizeof(err))) {
		pr_err("%s", err);
		return -EINVAL;
	}
	return 0;
}

static int check_config(const struct vm_config *cfg)
{
	if (cfg->ram_size < (1ULL << 20)) {
		pr_err("-m: guest memory must be at least 1M");
		return -EINVAL;
	}
	if (cfg->ram_size & 0xfff) {
		pr_err("-m: guest memory must be a multiple of 4K");
		return -EINVAL;
	}
	if (cfg->ncpus == 0 || cfg->ncpus > CLI_MAX_VCPUS) {
		pr_err("-smp: the number of vCPUs must be between 1 and %d", CLI_MAX_VCPUS);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		pr_err("no kernel given: use -kernel bzImage");
		return -EINVAL;
	}
	if (cfg->daemonize && (cfg->serial == SERIAL_STDIO || cfg->monitor_stdio)) {
		pr_err("-daemonize: %s cannot be on stdio once minivm detaches (use %s)",
		       cfg->monitor_stdio ? "the monitor" : "the serial console",
		       cfg->monitor_stdio ? "-monitor unix:PATH,server,nowait" :
					    "-serial file:PATH or -serial none");
		return -EINVAL;
	}
	if (strchr(cfg->name, '/') || cfg->name[0] == '.') {
		pr_err("-name %s: a name for the control socket cannot contain '/' or start with '.'",
		       cfg->name);
		return -EINVAL;
	}
	if (cfg->stats_summary && cfg->no_stats) {
		pr_err("--stats: cannot print statistics that --no-stats turns off");
		return -EINVAL;
	}
	if (cfg->initrd && !cfg->kernel) {
		pr_err("-initrd needs -kernel");
		return -EINVAL;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct vm_config *cfg)
{
	config_defaults(cfg);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const struct cli_flag *f;
		int ret;

		if (arg[0] != '-' || !arg[1]) {
			pr_err("%s: unexpected argument (flags start with -)", arg);
			return -EINVAL;
		}
		/* QEMU treats --flag like -flag */
		f = find_flag(arg + 1 + (arg[1] == '-'));
		if (!f) {
			pr_err("%s: unknown option (see --help)", arg);
			return -EINVAL;
		}
		if (!f->parse) {
			ret = apply_switch(f->name, cfg);
			if (ret != CLI_RUN)
				return ret;
			continue;
		}
		if (i + 1 >= argc) {
			pr_err("%s: missing argument (%s)", arg, f->what ? f->what : "options");
			return -EINVAL;
		}
		ret = f->parse(argv[++i], cfg);
		if (ret) {
			if (f->what)
				pr_err("%s %s: invalid argument (expected %s)", arg, argv[i], f->what);
			return -EINVAL;
		}
	}
	if (check_config(cfg))
		return -EINVAL;
	return check_net(cfg);
}

int cli_check_host(const struct vm_config *cfg, uint64_t host_ram)
{
	if (cfg->ram_size > host_ram) {
		pr_err("-m: the guest asks for %" PRIu64 " MiB but the host has only %" PRIu64
		       " MiB of memory", cfg->ram_size >> 20, host_ram >> 20);
		return -ENOMEM;
	}
	return 0;
}
