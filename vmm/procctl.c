// SPDX-License-Identifier: MIT
/*
 * -daemonize, -pidfile and -D.
 *
 * Daemonizing forks before any thread exists (fork copies only the calling
 * thread). The parent stays until the child has created the VM, so that
 * errors (a bad kernel, a disk in use, a name taken) still reach the user's
 * terminal and the exit status says whether the VM came up; scripts can
 * rely on the pid file and the control socket existing once the parent
 * has exited 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/procctl.h"

void procctl_init(struct procctl *p)
{
	p->ready_fd = -1;
	p->pidfile = NULL;
	p->log_fd = -1;
}

int procctl_logfile(struct procctl *p, const char *path)
{
	p->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (p->log_fd < 0) {
		pr_err("-D %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

static void parent_wait(int fd)
{
	char c = 0;
	ssize_t n;

	do {
		n = read(fd, &c, 1);
	} while (n < 0 && errno == EINTR);
	/* No byte: the child failed (and said why) or died. */
	_exit(n == 1 && c == 'k' ? 0 : 1);
}

int procctl_daemonize(struct procctl *p)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		pr_err("-daemonize: pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		pr_err("-daemonize: fork: %s", strerror(errno));
		return -errno;
	}
	if (pid > 0) {
		close(fds[1]);
		parent_wait(fds[0]);
	}
	close(fds[0]);
	p->ready_fd = fds[1];
	if (setsid() < 0)
		pr_warn("-daemonize: setsid: %s", strerror(errno));
	return 0;
}

int procctl_pidfile(struct procctl *p, const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
		pr_err("-pidfile %s: %s", path, strerror(errno));
		return -errno;
	}
	p->pidfile = path;
	return 0;
}

/* -daemonize: the parent may go, and the terminal is let go of. */
static void detach(struct procctl *p)
{
	int null;

	if (write(p->ready_fd, "k", 1) != 1)
		pr_debug("-daemonize: the parent is gone");
	close(p->ready_fd);
	p->ready_fd = -1;
	/* Nothing may write to the terminal we left. */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	if (null > STDERR_FILENO)
		close(null);
}

void procctl_ready(struct procctl *p)
{
	if (p->ready_fd >= 0)
		detach(p);
	if (p->log_fd >= 0) {
		dup2(p->log_fd, STDERR_FILENO);
		close(p->log_fd);
		p->log_fd = -1;
	}
}

void procctl_fini(struct procctl *p)
{
	if (p->pidfile)
		unlink(p->pidfile);
	p->pidfile = NULL;
	if (p->ready_fd >= 0)
		close(p->ready_fd);
	p->ready_fd = -1;
	if (p->log_fd >= 0)
		close(p->log_fd);
	p->log_fd = -1;
}
