/* SPDX-License-Identifier: MIT */
/*
 * The host side of the serial console: the user's terminal (or a pipe, in
 * tests). It outlives any one VM, so a guest reboot keeps the terminal.
 */
#ifndef MINIVM_CONSOLE_H
#define MINIVM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-a, as in QEMU */

struct console {
	pthread_mutex_t lock;
	int in_fd;   /* -1: no input (closed stdin, or serial not on stdio) */
	int out_fd;
	int wake_fd; /* eventfd: room in the guest's receiver, or stop */
	int quit_fd; /* eventfd: the user pressed Ctrl-a x */
	bool raw;    /* we changed the terminal and must restore it */
	bool stop;
	bool escape; /* the last byte was Ctrl-a */
	bool thread_started;
	pthread_t thread;
	uint8_t pending[1024];
	size_t pending_len;
	/* The guest side: a UART's receive function, or NULL between boots. */
	size_t (*input)(void *ctx, const uint8_t *buf, size_t len);
	void *input_ctx;
	/* -monitor stdio on the same terminal: Ctrl-a c switches to it and back. */
	void (*mon_input)(void *ctx, const uint8_t *buf, size_t len);
	void (*mon_focus)(void *ctx, bool on);
	void *mon_ctx;
	bool to_monitor; /* keys go to the monitor, not the guest */
};

/* in_fd may be -1. Puts a terminal in raw mode; console_fini restores it. */
int console_init(struct console *c, int in_fd, int out_fd);
int console_start(struct console *c);
void console_fini(struct console *c);
void console_attach(struct console *c,
		    size_t (*input)(void *ctx, const uint8_t *buf, size_t len), void *ctx);
void console_detach(struct console *c);
/* Shares the terminal with the monitor (before console_start). */
void console_set_monitor(struct console *c,
			 void (*input)(void *ctx, const uint8_t *buf, size_t len),
			 void (*focus)(void *ctx, bool on), void *ctx);
/* For the UART: output to the user, and "there is room for more input". */
void console_write(void *c, const uint8_t *buf, size_t len);
void console_kick(void *c);
/* Escape processing, exposed for unit tests: returns bytes left in out. */
size_t console_filter(struct console *c, const uint8_t *in, size_t len, uint8_t *out);
/* Restores the terminal; safe to call at any exit (atexit). */
void console_restore_terminal(void);

#endif
