// SPDX-License-Identifier: MIT
/*
 * The serial console on the user's terminal. The terminal goes into raw
 * mode so that every key (Ctrl-C included) reaches the guest, and QEMU's
 * escape key, Ctrl-a, gives the user a way out: Ctrl-a x quits, Ctrl-a h
 * lists the keys, Ctrl-a Ctrl-a sends a Ctrl-a.
 *
 * A thread reads the terminal and feeds the guest's UART. The UART has a
 * 16-byte FIFO; when it is full the thread keeps the rest and waits until
 * the UART says the guest has read some (console_kick). Nothing typed or
 * piped in is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/console.h"
#include "vmm/log.h"

/*
 * The terminal is process-wide state, and atexit() handlers take no
 * argument, so the saved settings live here rather than in struct console.
 */
static struct termios saved_termios;
static int saved_termios_fd = -1;

void console_restore_terminal(void)
{
	if (saved_termios_fd >= 0) {
		tcsetattr(saved_termios_fd, TCSADRAIN, &saved_termios);
		saved_termios_fd = -1;
	}
}

static int console_make_raw(struct console *c)
{
	struct termios t;

	if (c->in_fd < 0 || !isatty(c->in_fd))
		return 0;
	if (tcgetattr(c->in_fd, &saved_termios) < 0)
		return -errno;
	saved_termios_fd = c->in_fd;
	atexit(console_restore_terminal);
	t = saved_termios;
	cfmakeraw(&t);
	/* Keep output post-processing off too: the guest sends its own \r\n. */
	if (tcsetattr(c->in_fd, TCSADRAIN, &t) < 0)
		return -errno;
	c->raw = true;
	return 0;
}

int console_init(struct console *c, int in_fd, int out_fd)
{
	int ret;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	/* A closed stdin is not an error: the console is then output-only. */
	if (in_fd >= 0 && fcntl(in_fd, F_GETFD) < 0)
		in_fd = -1;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0 || c->quit_fd < 0)
		return -errno;
	ret = console_make_raw(c);
	if (ret)
		pr_warn("cannot put the terminal in raw mode: %s", strerror(-ret));
	return 0;
}

static void console_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("eventfd: %s", strerror(errno));
}

void console_kick(void *opaque)
{
	console_signal(((struct console *)opaque)->wake_fd);
}

void console_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *c = opaque;

	while (len) {
		ssize_t n = write(c->out_fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = c->out_fd, .events = POLLOUT };

			poll(&p, 1, 100);
			continue;
		}
		if (n <= 0)
			return; /* the reader went away: drop output, keep running */
		buf += n;
		len -= n;
	}
}

static void console_help(struct console *c)
{
	static const char help[] =
		"\r\nC-a h    print this help\r\n"
		"C-a x    exit minivm\r\n"
		"C-a C-a  send C-a to the guest\r\n";
	static const char mon[] = "C-a c    switch between console and monitor\r\n";

	console_write(c, (const uint8_t *)help, sizeof(help) - 1);
	if (c->mon_input)
		console_write(c, (const uint8_t *)mon, sizeof(mon) - 1);
}

void console_set_monitor(struct console *c,
			 void (*input)(void *ctx, const uint8_t *buf, size_t len),
			 void (*focus)(void *ctx, bool on), void *ctx)
{
	c->mon_input = input;
	c->mon_focus = focus;
	c->mon_ctx = ctx;
}

/* A byte that is no escape: for the guest, or for the monitor after C-a c. */
static void console_route(struct console *c, uint8_t ch, uint8_t *out, size_t *n)
{
	if (c->to_monitor)
		c->mon_input(c->mon_ctx, &ch, 1);
	else
		out[(*n)++] = ch;
}

size_t console_filter(struct console *c, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t ch = in[i];

		if (!c->escape) {
			if (ch == CONSOLE_ESCAPE)
				c->escape = true;
			else
				console_route(c, ch, out, &n);
			continue;
		}
		c->escape = false;
		switch (ch) {
		case 'x':
		case 'X':
			console_write(c, (const uint8_t *)"\r\nminivm: terminating\r\n", 23);
			console_signal(c->quit_fd);
			break;
		case 'h':
		case 'H':
		case '?':
			console_help(c);
			break;
		case 'c':
		case 'C':
			if (c->mon_input) {
				c->to_monitor = !c->to_monitor;
				c->mon_focus(c->mon_ctx, c->to_monitor);
			}
			break;
		case CONSOLE_ESCAPE:
			console_route(c, ch, out, &n);
			break;
		default:
			break; /* unknown escapes are swallowed, as in QEMU */
		}
	}
	return n;
}

/* Reads what the terminal has, if there is room to keep it. */
static void console_read_input(struct console *c)
{
	uint8_t buf[sizeof(c->pending)];
	size_t room = sizeof(c->pending) - c->pending_len;
	ssize_t n;

	n = read(c->in_fd, buf, room);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* End of input (or an error): the guest keeps running. */
		c->in_fd = -1;
		return;
	}
	c->pending_len += console_filter(c, buf, n, c->pending + c->pending_len);
}

static void console_deliver(struct console *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	if (c->input && c->pending_len) {
		n = c->input(c->input_ctx, c->pending, c->pending_len);
		memmove(c->pending, c->pending + n, c->pending_len - n);
		c->pending_len -= n;
	}
	pthread_mutex_unlock(&c->lock);
}

static void *console_thread(void *arg)
{
	struct console *c = arg;
	uint64_t v;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd fds[2] = {
			{ .fd = c->wake_fd, .events = POLLIN },
			{ .fd = c->in_fd, .events = POLLIN },
		};
		bool want_input = c->in_fd >= 0 && c->pending_len < sizeof(c->pending);

		if (poll(fds, want_input ? 2 : 1, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents & POLLIN && read(c->wake_fd, &v, sizeof(v)) < 0)
			pr_debug("console wake: %s", strerror(errno));
		if (want_input && fds[1].revents)
			console_read_input(c);
		console_deliver(c);
	}
	return NULL;
}

int console_start(struct console *c)
{
	int ret = pthread_create(&c->thread, NULL, console_thread, c);

	if (ret)
		return -ret;
	pthread_setname_np(c->thread, "console");
	c->thread_started = true;
	return 0;
}

void console_attach(struct console *c,
		    size_t (*input)(void *ctx, const uint8_t *buf, size_t len), void *ctx)
{
	pthread_mutex_lock(&c->lock);
	c->input = input;
	c->input_ctx = ctx;
	pthread_mutex_unlock(&c->lock);
	console_kick(c); /* deliver what was typed while no guest listened */
}

void console_detach(struct console *c)
{
	pthread_mutex_lock(&c->lock);
	c->input = NULL;
	c->input_ctx = NULL;
	pthread_mutex_unlock(&c->lock);
}

void console_fini(struct console *c)
{
	if (c->thread_started) {
		__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
		console_kick(c);
		pthread_join(c->thread, NULL);
	}
	if (c->raw)
		console_restore_terminal();
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->quit_fd >= 0)
		close(c->quit_fd);
	pthread_mutex_destroy(&c->lock);
}
