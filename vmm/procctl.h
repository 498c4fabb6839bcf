/* SPDX-License-Identifier: MIT */
/*
 * Process control, as QEMU does it: -daemonize detaches minivm from the
 * terminal once the VM is set up, and -pidfile says where it runs.
 */
#ifndef MINIVM_PROCCTL_H
#define MINIVM_PROCCTL_H

#include <stdbool.h>

struct procctl {
	int ready_fd;        /* -daemonize: the pipe the parent waits on, or -1 */
	const char *pidfile; /* written by us, removed at exit */
};

void procctl_init(struct procctl *p);
/*
 * Forks. The parent waits until the child says the VM is set up (exit 0)
 * or fails (exit 1, the child having printed why) and never returns; the
 * child returns 0 in a session of its own. Call before any thread starts.
 */
int procctl_daemonize(struct procctl *p);
/* Writes our pid to path (after daemonizing: the child's pid). */
int procctl_pidfile(struct procctl *p, const char *path);
/* The VM is set up: the parent may exit, and the child lets go of the terminal. */
void procctl_ready(struct procctl *p);
/* Removes the pid file. */
void procctl_fini(struct procctl *p);

#endif
