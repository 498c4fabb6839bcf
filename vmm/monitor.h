/* SPDX-License-Identifier: MIT */
/*
 * The monitor: QEMU's human monitor (HMP) commands for a running VM (help,
 * info ..., stop, cont, system_reset, system_powerdown, quit), answered as
 * text, or as one line of JSON when the command starts with -j (or --json),
 * for scripts.
 *
 * It is reached over three transports, all served by one monitor thread:
 * - the control socket every VM has, named after -name, that
 *   `minivm ctl NAME COMMAND...` talks to;
 * - -monitor unix:PATH,server,nowait, the same protocol on a path you pick;
 * - -monitor stdio, on the terminal; when the serial console is there too,
 *   Ctrl-a c switches between the two, as in QEMU.
 *
 * The socket protocol is a line per command and its answer; a text answer
 * that is an error is one line starting with "error: ", a JSON one is
 * {"error": "..."}, otherwise {"return": ...}.
 *
 * The monitor outlives the VMs: a guest reboot detaches the old VM and
 * attaches the new one, and commands that come in between get an error.
 */
#ifndef MINIVM_MONITOR_H
#define MINIVM_MONITOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console;
struct vm;
struct vm_config;

#define MON_MAX_CLIENTS 8
#define MON_LINE_MAX 1024
#define MON_PATH_MAX 108 /* sun_path */
#define MON_VM_WAIT_MS 10000

/* An answer being built: text or JSON, and whether it is an error. */
struct mon_out {
	char *buf;
	size_t len, cap;
	bool json;
	bool error;
	bool nomem;
};

struct mon_client {
	int fd;          /* -1: free slot */
	char line[MON_LINE_MAX];
	size_t len;
	bool overflow;   /* the line is too long: drop it up to its newline */
};

struct monitor {
	pthread_mutex_t lock;         /* one command at a time; guards vm */
	pthread_cond_t attached;      /* signalled when a VM is attached */
	struct vm *vm;                /* NULL before the first boot and between boots */
	unsigned vm_wait_ms;          /* how long a command waits for one */
	const struct vm_config *cfg;
	struct console *console;      /* for -monitor stdio shared with the serial console */

	int ctl_fd;                   /* listening: the per-VM control socket */
	char ctl_path[MON_PATH_MAX];
	int unix_fd;                  /* listening: -monitor unix:PATH */
	struct mon_client clients[MON_MAX_CLIENTS];

	bool stdio;                   /* -monitor stdio */
	bool stdio_muxed;             /* ... with the console: input comes via Ctrl-a c */
	bool stdio_raw;               /* the terminal is raw: echo and \r\n ourselves */
	struct mon_client in;         /* the stdio line being typed */

	int wake_fd;                  /* eventfd: stop the thread */
	bool stop;
	bool started;
	pthread_t thread;
};

/* monitor.c: commands */

/* Runs one command line; the answer is in out (free out->buf). */
void monitor_exec(struct monitor *m, const char *line, struct mon_out *out);
void mon_printf(struct mon_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, escaped. */
void mon_json_str(struct mon_out *o, const char *s);
/* Errors: "error: MSG\n" as text, {"error": "MSG"} as JSON. */
void mon_error(struct mon_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mon_out_reset(struct mon_out *o);

/* monitor-chan.c: transports and the thread */

void monitor_init(struct monitor *m, const struct vm_config *cfg, struct console *con);
/* Creates the sockets; prints an error and returns -errno on failure. */
int monitor_open(struct monitor *m);
int monitor_start(struct monitor *m);
/* Closes everything and removes the sockets. */
void monitor_fini(struct monitor *m);
void monitor_attach(struct monitor *m, struct vm *vm);
void monitor_detach(struct monitor *m);
/* Bytes typed at the monitor (Ctrl-a c), from the console thread. */
void monitor_input(void *m, const uint8_t *buf, size_t len);
/* The console switched to the monitor (true) or back to the guest. */
void monitor_focus(void *m, bool on);

/*
 * The control socket's path for a VM name: $XDG_RUNTIME_DIR/minivm/NAME.sock,
 * /run/minivm/NAME.sock for root, else /tmp/minivm-UID/NAME.sock. dir gets
 * the directory. Returns -ENAMETOOLONG if it does not fit.
 */
int monitor_ctl_path(const char *name, char *dir, size_t dir_len, char *path, size_t path_len);
/* `minivm ctl NAME COMMAND...`: argv[0] is "ctl". Returns the exit status. */
int monitor_ctl_main(int argc, char **argv);

#endif
