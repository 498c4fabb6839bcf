// SPDX-License-Identifier: MIT
/*
 * How commands reach the monitor: unix sockets (the per-VM control socket
 * and -monitor unix:), the terminal (-monitor stdio), and the client side,
 * `minivm ctl NAME COMMAND...`.
 *
 * One thread polls every listening socket, every connection and, when the
 * terminal is the monitor's alone, standard input. When the serial console
 * shares the terminal, the console thread reads it and hands over what is
 * typed after Ctrl-a c (monitor_input).
 *
 * Sockets are created with owner-only permissions in a directory only the
 * owner can enter: the monitor can stop or reset the VM, so it is as
 * private as the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/log.h"
#include "vmm/monitor.h"

#define MON_BANNER "minivm " MINIVM_VERSION " monitor - type 'help' for more information\n"
#define MON_PROMPT "(minivm) "
#define MON_SEND_TIMEOUT_S 5

void monitor_init(struct monitor *m, const struct vm_config *cfg, struct console *con)
{
	pthread_condattr_t ca;

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->attached, &ca);
	pthread_condattr_destroy(&ca);
	m->vm_wait_ms = MON_VM_WAIT_MS;
	m->cfg = cfg;
	m->console = con;
	m->ctl_fd = m->unix_fd = m->wake_fd = -1;
	m->in.fd = -1;
	for (unsigned i = 0; i < MON_MAX_CLIENTS; i++)
		m->clients[i].fd = -1;
}

int monitor_ctl_path(const char *name, char *dir, size_t dir_len, char *path, size_t path_len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(dir, dir_len, "%s/minivm", xdg);
	else if (geteuid() == 0)
		n = snprintf(dir, dir_len, "/run/minivm");
	else
		n = snprintf(dir, dir_len, "/tmp/minivm-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= dir_len)
		return -ENAMETOOLONG;
	n = snprintf(path, path_len, "%s/%s.sock", dir, name);
	if (n < 0 || (size_t)n >= path_len)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * The runtime directory must be ours and private: in /tmp anyone could
 * have made it first, and put their own socket in it.
 */
static int private_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		pr_err("cannot create %s for the control socket: %s", dir, strerror(errno));
		return -errno;
	}
	if (lstat(dir, &st) < 0) {
		pr_err("%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		pr_err("%s is not a directory private to this user: refusing to put the control socket there",
		       dir);
		return -EPERM;
	}
	return 0;
}

static int sockaddr_for(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* A socket file nobody listens on is left over from a minivm that was killed. */
static bool socket_alive(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool alive;

	if (fd < 0)
		return false;
	alive = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return alive;
}

/* Listens on path, 0600. what names the socket in errors. */
static int listen_unix(const char *path, const char *what, int *out)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, ret;

	if (sockaddr_for(path, &sa)) {
		pr_err("%s %s: the path is too long for a unix socket", what, path);
		return -ENAMETOOLONG;
	}
	if (socket_alive(&sa)) {
		pr_err("%s %s: already in use by another running minivm", what, path);
		return -EADDRINUSE;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	/* Owner-only from the start: no window in which others could connect. */
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || chmod(path, 0600) < 0 || listen(fd, MON_MAX_CLIENTS) < 0)
		goto fail;
	*out = fd;
	return 0;
fail:
	ret = -errno;
	pr_err("%s %s: %s", what, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

static int open_ctl_socket(struct monitor *m)
{
	char dir[MON_PATH_MAX], name[64], what[160];
	const char *n = m->cfg->name;
	int ret;

	/* Unnamed VMs get their pid, so that any number of them can run. */
	if (!m->cfg->name_set) {
		snprintf(name, sizeof(name), "minivm-%d", (int)getpid());
		n = name;
	}
	ret = monitor_ctl_path(n, dir, sizeof(dir), m->ctl_path, sizeof(m->ctl_path));
	if (ret) {
		pr_err("-name %s: the control socket's path would be too long", n);
		return ret;
	}
	snprintf(what, sizeof(what), "-name %s: control socket", n);
	ret = private_dir(dir);
	if (!ret)
		ret = listen_unix(m->ctl_path, what, &m->ctl_fd);
	if (!ret)
		return 0;
	m->ctl_path[0] = '\0'; /* not ours to remove */
	/*
	 * A name in use is the user's mistake; a runtime directory we cannot
	 * use should not stop the VM, which only loses `minivm ctl`.
	 */
	if (ret == -EADDRINUSE)
		return ret;
	pr_warn("running without a control socket (minivm ctl %s will not reach this VM)", n);
	return 0;
}

int monitor_open(struct monitor *m)
{
	int ret;

	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		return -errno;
	}
	ret = open_ctl_socket(m);
	if (!ret && m->cfg->monitor_path)
		ret = listen_unix(m->cfg->monitor_path, "-monitor unix:", &m->unix_fd);
	if (ret)
		return ret;
	if (m->cfg->monitor_stdio) {
		m->stdio = true;
		m->stdio_muxed = m->cfg->serial == SERIAL_STDIO;
		m->stdio_raw = m->stdio_muxed && isatty(STDIN_FILENO);
		m->in.fd = m->stdio_muxed || fcntl(STDIN_FILENO, F_GETFD) < 0 ? -1 : STDIN_FILENO;
	}
	return 0;
}

/* Writes all of buf; false if the peer is gone or stuck. */
static bool write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= n;
	}
	return true;
}

/* On a raw terminal, \n alone would not return the carriage. */
static void stdio_write(struct monitor *m, const char *s, size_t len)
{
	size_t start = 0;

	if (!m->stdio_raw) {
		write_all(STDOUT_FILENO, s, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\n')
			continue;
		write_all(STDOUT_FILENO, s + start, i - start);
		write_all(STDOUT_FILENO, "\r\n", 2);
		start = i + 1;
	}
	write_all(STDOUT_FILENO, s + start, len - start);
}

static void stdio_puts(struct monitor *m, const char *s)
{
	stdio_write(m, s, strlen(s));
}

/* Runs one line from cl; returns false if the answer could not be sent. */
static bool client_line(struct monitor *m, struct mon_client *cl, bool stdio)
{
	struct mon_out o = { 0 };
	bool sent = true;

	cl->line[cl->len] = '\0';
	if (cl->overflow)
		mon_error(&o, "command too long (at most %d bytes)", MON_LINE_MAX - 1);
	else
		monitor_exec(m, cl->line, &o);
	if (o.nomem) {
		mon_out_reset(&o);
		mon_error(&o, "out of memory");
	}
	if (stdio) {
		stdio_write(m, o.buf ? o.buf : "", o.len);
		stdio_puts(m, MON_PROMPT);
	} else if (o.len) {
		sent = write_all(cl->fd, o.buf, o.len);
	}
	mon_out_reset(&o);
	cl->len = 0;
	cl->overflow = false;
	return sent;
}

/* Line editing for the terminal when it is raw: echo, backspace. */
static void stdio_edit(struct monitor *m, uint8_t ch)
{
	struct mon_client *cl = &m->in;

	if ((ch == 0x7f || ch == '\b') && cl->len) {
		cl->len--;
		stdio_puts(m, "\b \b");
	} else if (ch >= 0x20 && ch < 0x7f) {
		if (cl->len + 1 < sizeof(cl->line))
			stdio_write(m, (const char *)&ch, 1);
	}
}

/*
 * Feeds bytes into cl's line; each complete line is run. Returns false
 * when the connection should be closed.
 */
static bool client_feed(struct monitor *m, struct mon_client *cl, const uint8_t *buf,
			size_t len, bool stdio)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = buf[i];

		if (ch == '\n' || ch == '\r') {
			if (stdio && m->stdio_raw)
				stdio_puts(m, "\n");
			/* \r\n from a terminal or telnet-like client is one line end */
			if (ch == '\n' && i && buf[i - 1] == '\r')
				continue;
			if (!client_line(m, cl, stdio))
				return false;
			continue;
		}
		if (stdio && m->stdio_raw) {
			stdio_edit(m, ch);
			if (ch < 0x20 || ch == 0x7f)
				continue;
		}
		if (cl->len + 1 < sizeof(cl->line))
			cl->line[cl->len++] = ch;
		else
			cl->overflow = true;
	}
	return true;
}

void monitor_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct monitor *m = opaque;

	client_feed(m, &m->in, buf, len, true);
}

void monitor_focus(void *opaque, bool on)
{
	struct monitor *m = opaque;

	if (on) {
		stdio_puts(m, "\n" MON_BANNER MON_PROMPT);
	} else {
		m->in.len = 0;
		stdio_puts(m, "\n");
	}
}

static void client_close(struct mon_client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
	cl->overflow = false;
}

static void client_accept(int lfd, struct monitor *m)
{
	static const char busy[] = "error: too many monitor connections\n";
	struct timeval tv = { .tv_sec = MON_SEND_TIMEOUT_S };
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* A client that does not read its answers must not stall the monitor. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (unsigned i = 0; i < MON_MAX_CLIENTS; i++) {
		if (m->clients[i].fd < 0) {
			m->clients[i].fd = fd;
			return;
		}
	}
	write_all(fd, busy, sizeof(busy) - 1);
	close(fd);
}

static void client_read(struct monitor *m, struct mon_client *cl, bool stdio)
{
	uint8_t buf[512];
	ssize_t n = read(cl->fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n > 0 && client_feed(m, cl, buf, n, stdio))
		return;
	if (stdio) {
		cl->fd = -1; /* end of input: the VM goes on */
		return;
	}
	if (n == 0 && cl->len)
		client_line(m, cl, false); /* a last line without a newline */
	client_close(cl);
}

enum { POLL_WAKE, POLL_CTL, POLL_UNIX, POLL_STDIN, POLL_CLIENTS };

static void *monitor_thread(void *arg)
{
	struct monitor *m = arg;
	struct pollfd fds[POLL_CLIENTS + MON_MAX_CLIENTS];

	if (m->stdio && !m->stdio_muxed)
		stdio_puts(m, MON_BANNER MON_PROMPT);
	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		fds[POLL_WAKE] = (struct pollfd){ .fd = m->wake_fd, .events = POLLIN };
		fds[POLL_CTL] = (struct pollfd){ .fd = m->ctl_fd, .events = POLLIN };
		fds[POLL_UNIX] = (struct pollfd){ .fd = m->unix_fd, .events = POLLIN };
		fds[POLL_STDIN] = (struct pollfd){ .fd = m->in.fd, .events = POLLIN };
		for (unsigned i = 0; i < MON_MAX_CLIENTS; i++)
			fds[POLL_CLIENTS + i] = (struct pollfd){ .fd = m->clients[i].fd,
								 .events = POLLIN };
		if (poll(fds, ARRAY_SIZE(fds), -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("monitor: poll: %s", strerror(errno));
			break;
		}
		if (fds[POLL_CTL].revents)
			client_accept(m->ctl_fd, m);
		if (fds[POLL_UNIX].revents)
			client_accept(m->unix_fd, m);
		if (fds[POLL_STDIN].revents)
			client_read(m, &m->in, true);
		for (unsigned i = 0; i < MON_MAX_CLIENTS; i++)
			if (fds[POLL_CLIENTS + i].revents && m->clients[i].fd >= 0)
				client_read(m, &m->clients[i], false);
	}
	return NULL;
}

int monitor_start(struct monitor *m)
{
	int ret = pthread_create(&m->thread, NULL, monitor_thread, m);

	if (ret) {
		pr_err("cannot start the monitor thread: %s", strerror(ret));
		return -ret;
	}
	pthread_setname_np(m->thread, "monitor");
	m->started = true;
	return 0;
}

void monitor_fini(struct monitor *m)
{
	uint64_t one = 1;

	if (m->started) {
		__atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
		if (write(m->wake_fd, &one, sizeof(one)) < 0)
			pr_debug("monitor wake: %s", strerror(errno));
		pthread_join(m->thread, NULL);
		m->started = false;
	}
	for (unsigned i = 0; i < MON_MAX_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			client_close(&m->clients[i]);
	if (m->ctl_fd >= 0) {
		close(m->ctl_fd);
		unlink(m->ctl_path);
	}
	if (m->unix_fd >= 0) {
		close(m->unix_fd);
		unlink(m->cfg->monitor_path);
	}
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	m->ctl_fd = m->unix_fd = m->wake_fd = -1;
	pthread_cond_destroy(&m->attached);
	pthread_mutex_destroy(&m->lock);
}

void monitor_attach(struct monitor *m, struct vm *vm)
{
	pthread_mutex_lock(&m->lock);
	m->vm = vm;
	pthread_cond_broadcast(&m->attached);
	pthread_mutex_unlock(&m->lock);
}

void monitor_detach(struct monitor *m)
{
	/* Waits for a command in progress: it may be using the VM. */
	pthread_mutex_lock(&m->lock);
	m->vm = NULL;
	pthread_mutex_unlock(&m->lock);
}

/* --- the client: minivm ctl NAME COMMAND... --- */

static int ctl_connect(const char *name)
{
	char dir[MON_PATH_MAX], path[MON_PATH_MAX];
	struct sockaddr_un sa;
	int fd;

	/* A name with a slash is a socket path: -monitor unix:PATH works too. */
	if (strchr(name, '/')) {
		if (strlen(name) >= sizeof(path)) {
			pr_err("ctl: %s: the path is too long for a unix socket", name);
			return -1;
		}
		strcpy(path, name);
	} else if (monitor_ctl_path(name, dir, sizeof(dir), path, sizeof(path))) {
		pr_err("ctl: %s: the name is too long", name);
		return -1;
	}
	sockaddr_for(path, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pr_err("ctl: no VM named %s is running (%s: %s)", name, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int ctl_usage(void)
{
	pr_err("usage: minivm ctl NAME|SOCKET COMMAND... (try: minivm ctl NAME help)");
	return 1;
}

int monitor_ctl_main(int argc, char **argv)
{
	char cmd[MON_LINE_MAX], buf[4096];
	size_t len = 0;
	bool first = true, failed = false;
	ssize_t n;
	int fd;

	if (argc < 3)
		return ctl_usage();
	for (int i = 2; i < argc; i++) {
		int w = snprintf(cmd + len, sizeof(cmd) - len, "%s%s", i > 2 ? " " : "", argv[i]);

		if (w < 0 || (size_t)w >= sizeof(cmd) - len - 1) {
			pr_err("ctl: the command is too long");
			return 1;
		}
		len += w;
	}
	if (strchr(cmd, '\n')) {
		pr_err("ctl: one command at a time (no newlines)");
		return 1;
	}
	cmd[len++] = '\n';
	fd = ctl_connect(argv[1]);
	if (fd < 0)
		return 1;
	if (!write_all(fd, cmd, len) || shutdown(fd, SHUT_WR) < 0) {
		pr_err("ctl: %s: %s", argv[1], strerror(errno));
		close(fd);
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (first)
			failed = !strncmp(buf, "error: ", MIN((size_t)n, 7)) ||
				 !strncmp(buf, "{\"error\"", MIN((size_t)n, 8));
		first = false;
		if (!write_all(STDOUT_FILENO, buf, n))
			break;
	}
	close(fd);
	return failed ? 1 : 0; /* stop, cont, ... answer nothing when all is well */
}
