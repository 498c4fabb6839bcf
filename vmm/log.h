/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics. Following the kernel's habit, functions return -errno and the
 * error is printed once, at the boundary where it is handled: usually main()
 * or the vCPU loop. pr_err() is for those boundaries.
 */
#ifndef MINIVM_LOG_H
#define MINIVM_LOG_H

#include <stdarg.h>

extern int log_verbose;
/* The prefix of every message: "minivm", or "minivm-img" in that tool. */
extern const char *log_prog;

void pr_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pr_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))

#endif
