/* SPDX-License-Identifier: MIT */
/*
 * Process control, as QEMU does it: -daemonize detaches minivm from the
 * terminal once the VM is set up, -pidfile says where it runs, and -D
 * keeps what it says after that (errors, warnings, --stats) in a file.
 */
#ifndef MINIVM_PROCCTL_H
#define MINIVM_PROCCTL_H

#include <stdbool.h>

struct procctl {
	int ready_fd;        /* -daemonize: the pipe the parent waits on, or -1 */
	const char *pidfile; /* written by us, removed at exit */
	int log_fd;          /* -D: becomes stderr once the VM is set up, or -1 */
};

void procctl_init(struct procctl *p);
/*
 * Forks. The parent waits until the child says the VM is set up (exit 0)
 * or fails (exit 1, the child having printed why) and never returns; the
 * child returns 0 in a session of its own. Call before any thread starts.
 */
int procctl_daemonize(struct procctl *p);
/* Opens the -D log (appending); call before daemonizing, so that a bad
 * path is reported on the terminal. */
int procctl_logfile(struct procctl *p, const char *path);
/* Writes our pid to path (after daemonizing: the child's pid). */
int procctl_pidfile(struct procctl *p, const char *path);
/*
 * The VM is set up: the parent may exit, the child lets go of the
 * terminal, and stderr becomes the -D log if there is one.
 */
void procctl_ready(struct procctl *p);
/* Removes the pid file. */
void procctl_fini(struct procctl *p);

#endif
