// SPDX-License-Identifier: MIT
/*
 * Tracing: --trace parsing, the line format, filters and the buffered
 * output that vCPU threads and device threads share. The format and the
 * options are documented in trace.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/log.h"
#include "vmm/stats.h"
#include "vmm/trace.h"
#include "vmm/vm.h"

#define TRACE_LINE_MAX 256
/* After the time: cpu event dir address size value device */
#define TRACE_COLUMNS " %3s %-12s %-5s %-10s %4s %-10s %s\n"

/* ---- parsing ---- */

static int parse_seconds(const char *s, uint64_t *us)
{
	char *end;
	double v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9) /* !(v >= 0) also refuses NaN */
		return -EINVAL;
	*us = (uint64_t)(v * 1e6 + 0.5);
	return 0;
}

/* A number, decimal or 0x hex; *end is where it stops. */
static int parse_addr(const char *s, uint64_t *v, const char **end)
{
	char *e;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &e, 0);
	*end = e;
	return errno ? -EINVAL : 0;
}

/* A or A-B, inclusive. */
static int parse_range(const char *s, struct trace_opts *o)
{
	const char *end;

	if (parse_addr(s, &o->addr_lo, &end))
		return -EINVAL;
	o->addr_hi = o->addr_lo;
	if (*end == '-' && parse_addr(end + 1, &o->addr_hi, &end))
		return -EINVAL;
	if (*end || o->addr_hi < o->addr_lo)
		return -EINVAL;
	o->addr_given = true;
	return 0;
}

static int set_field(char *dst, size_t cap, const char *val)
{
	if (!*val || strlen(val) >= cap)
		return -EINVAL;
	strcpy(dst, val);
	return 0;
}

/* One item: a word (exits, io, irq) or key=value. */
static int trace_item(char *item, struct trace_opts *o, char *err, size_t errlen)
{
	char *val = strchr(item, '=');

	if (!val) {
		if (!strcmp(item, "exits"))
			o->what |= TRACE_EXITS;
		else if (!strcmp(item, "io"))
			o->what |= TRACE_IO;
		else if (!strcmp(item, "irq"))
			o->what |= TRACE_IRQ;
		else
			goto unknown;
		return 0;
	}
	*val++ = '\0';
	if (!strcmp(item, "file")) {
		if (set_field(o->file, sizeof(o->file), val))
			goto bad;
	} else if (!strcmp(item, "from")) {
		if (parse_seconds(val, &o->from_us))
			goto bad;
	} else if (!strcmp(item, "to")) {
		if (parse_seconds(val, &o->to_us) || o->to_us == 0)
			goto bad;
	} else if (!strcmp(item, "dev")) {
		if (set_field(o->dev, sizeof(o->dev), val))
			goto bad;
	} else if (!strcmp(item, "addr")) {
		if (parse_range(val, o))
			goto bad;
	} else {
		goto unknown;
	}
	return 0;
unknown:
	snprintf(err, errlen, "unknown trace word '%s' (expected exits, io, irq, file=, "
		 "from=, to=, dev=, addr=)", item);
	return -EINVAL;
bad:
	snprintf(err, errlen, "invalid value '%s' for %s=", val, item);
	return -EINVAL;
}

int trace_parse(const char *arg, struct trace_opts *o, char *err, size_t errlen)
{
	char *s = strdup(arg), *save = NULL;
	int ret = 0;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (char *item = strtok_r(s, ",", &save); item && !ret;
	     item = strtok_r(NULL, ",", &save))
		ret = trace_item(item, o, err, errlen);
	free(s);
	if (ret)
		return ret;
	if (o->to_us && o->to_us <= o->from_us) {
		snprintf(err, errlen, "to= must come after from=");
		return -EINVAL;
	}
	if (!o->what)
		o->what = TRACE_EXITS;
	return 0;
}

/* ---- output ---- */

static void trace_flush_locked(struct trace *t)
{
	size_t off = 0;

	while (off < t->len && !t->err) {
		ssize_t n = write(t->fd, t->buf + off, t->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			t->err = n < 0 ? errno : EIO;
		else
			off += n;
	}
	t->len = 0;
}

void trace_flush(struct trace *t)
{
	if (!t || t->fd < 0)
		return;
	pthread_mutex_lock(&t->lock);
	trace_flush_locked(t);
	pthread_mutex_unlock(&t->lock);
}

static void trace_emit(struct trace *t, const char *line, size_t len)
{
	pthread_mutex_lock(&t->lock);
	if (t->err)
		goto out;
	if (t->len + len + 1 > sizeof(t->buf))
		trace_flush_locked(t);
	memcpy(t->buf + t->len, line, len);
	t->len += len;
	if (t->tty) {
		/* The console may have the terminal in raw mode: return the carriage. */
		t->buf[t->len - 1] = '\r';
		t->buf[t->len++] = '\n';
		trace_flush_locked(t);
	}
out:
	pthread_mutex_unlock(&t->lock);
}

size_t trace_format(char *buf, size_t len, uint64_t time_us, int vcpu, const char *event,
		    const char *dir, const char *addr, const char *size,
		    const char *value, const char *dev)
{
	char cpu[12] = "-";
	int n;

	if (vcpu >= 0)
		snprintf(cpu, sizeof(cpu), "%d", vcpu);
	n = snprintf(buf, len, "%11" PRIu64 TRACE_COLUMNS, time_us, cpu, event, dir,
		     addr, size, value, dev);
	if (n < 0)
		return 0;
	if ((size_t)n >= len) { /* cut, but still one line */
		buf[len - 2] = '\n';
		return len - 1;
	}
	return n;
}

/* The time of an event, or false if it falls outside from=..to=. */
static bool trace_when(const struct trace *t, uint64_t *us)
{
	*us = (stats_now_ns() - t->start_ns) / 1000;
	if (*us < t->opts.from_us)
		return false;
	return !t->opts.to_us || *us < t->opts.to_us;
}

static void trace_line(struct trace *t, uint64_t us, int vcpu, const char *event,
		       const char *dir, const char *addr, const char *size,
		       const char *value, const char *dev)
{
	char line[TRACE_LINE_MAX];
	size_t n;

	n = trace_format(line, sizeof(line), us, vcpu, event, dir, addr, size, value, dev);
	if (n)
		trace_emit(t, line, n);
}

static void exit_detail(char *buf, size_t len, unsigned reason, const struct kvm_run *run)
{
	static const char *const events[] = {
		[KVM_SYSTEM_EVENT_SHUTDOWN] = "shutdown",
		[KVM_SYSTEM_EVENT_RESET] = "reset",
		[KVM_SYSTEM_EVENT_CRASH] = "crash",
	};
	unsigned type;

	snprintf(buf, len, "-");
	if (!run)
		return;
	switch (reason) {
	case KVM_EXIT_SYSTEM_EVENT:
		type = run->system_event.type;
		if (type < ARRAY_SIZE(events) && events[type])
			snprintf(buf, len, "%s", events[type]);
		else
			snprintf(buf, len, "type=%u", type);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(buf, len, "hw_reason=0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(buf, len, "suberror=%u", run->internal.suberror);
		break;
	}
}

void trace_exit_slow(struct trace *t, unsigned vcpu, unsigned reason,
		     const struct kvm_run *run)
{
	char detail[32];
	uint64_t us;

	if (!trace_when(t, &us))
		return;
	exit_detail(detail, sizeof(detail), reason, run);
	trace_line(t, us, vcpu, stats_reason_name(reason), "-", "-", "-", "-", detail);
}

static bool trace_io_wanted(const struct trace *t, uint64_t addr, const char *dev)
{
	const struct trace_opts *o = &t->opts;

	if (o->addr_given && (addr < o->addr_lo || addr > o->addr_hi))
		return false;
	return !o->dev[0] || !strcmp(o->dev, dev);
}

void trace_io_slow(struct trace *t, unsigned vcpu, bool mmio, uint64_t addr,
		   unsigned size, bool write, const void *data, const char *dev)
{
	char a[24], sz[8], val[24];
	uint64_t us;

	if (!dev)
		dev = "unassigned";
	if (!trace_io_wanted(t, addr, dev) || !trace_when(t, &us))
		return;
	size = MIN(size, 8u);
	snprintf(a, sizeof(a), "0x%0*" PRIx64, mmio ? 8 : 4, addr);
	snprintf(sz, sizeof(sz), "%u", size);
	snprintf(val, sizeof(val), "0x%0*" PRIx64, (int)size * 2, bus_get(data, size));
	trace_line(t, us, vcpu, mmio ? "mmio" : "io",
		   mmio ? (write ? "write" : "read") : (write ? "out" : "in"),
		   a, sz, val, dev);
}

void trace_irq_slow(struct trace *t, unsigned gsi, int level)
{
	char g[12], v[12];
	uint64_t us;

	if (!trace_when(t, &us))
		return;
	snprintf(g, sizeof(g), "%u", gsi);
	snprintf(v, sizeof(v), "%d", level);
	trace_line(t, us, -1, "irq", "line", g, "-", v, "-");
}

void trace_msi_slow(struct trace *t, uint64_t addr, uint32_t data)
{
	char a[24], v[12];
	uint64_t us;

	if (!trace_when(t, &us))
		return;
	snprintf(a, sizeof(a), "0x%08" PRIx64, addr);
	snprintf(v, sizeof(v), "0x%08" PRIx32, data);
	trace_line(t, us, -1, "msi", "write", a, "4", v, "-");
}

/* ---- life cycle ---- */

int trace_open(struct trace *t, const struct trace_opts *o, uint64_t start_ns)
{
	char head[TRACE_LINE_MAX];
	int n;

	memset(t, 0, sizeof(*t));
	t->opts = *o;
	t->start_ns = start_ns;
	t->fd = STDERR_FILENO;
	if (o->file[0]) {
		t->fd = open(o->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (t->fd < 0)
			return -errno;
		t->close_fd = true;
	}
	t->tty = isatty(t->fd);
	pthread_mutex_init(&t->lock, NULL);
	n = snprintf(head, sizeof(head), "%-11s" TRACE_COLUMNS, "#   time_us", "cpu",
		     "event", "dir", "address", "size", "value", "device");
	trace_emit(t, head, n);
	return 0;
}

int trace_close(struct trace *t)
{
	int err;

	if (t->fd < 0)
		return 0;
	trace_flush(t);
	err = t->err;
	if (t->close_fd && close(t->fd) < 0 && !err)
		err = errno;
	pthread_mutex_destroy(&t->lock);
	t->fd = -1;
	return -err;
}

void trace_attach(struct trace *t, struct vm *vm)
{
	vm->trace = t;
}
