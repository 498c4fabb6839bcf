// SPDX-License-Identifier: MIT
/*
 * Messages go to stderr, one line each, prefixed with the program name, so a
 * user can tell minivm's words from the guest's console output on stdout.
 * The console may have the terminal in raw mode, where "\n" does not return
 * the carriage; "\r\n" reads right in both modes.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"

int log_verbose;
const char *log_prog = "minivm";

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = 0;

	n = snprintf(buf, sizeof(buf), "%s: %s", log_prog, level);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > (int)sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	buf[n++] = isatty(STDERR_FILENO) ? '\r' : '\n';
	if (buf[n - 1] == '\r')
		buf[n++] = '\n';
	/* One write() keeps lines from several threads whole. */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

void pr_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void pr_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void pr_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void pr_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}
