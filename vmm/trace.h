/* SPDX-License-Identifier: MIT */
/*
 * Tracing: one line per event, so a learner can watch a guest through the
 * VMM's eyes. --trace WHAT[,OPTION...] picks what to see:
 *
 *   exits      every exit to userspace (port and MMIO accesses with their
 *              details, and every other reason: intr, hlt, system_event, ...)
 *   io         only the port and MMIO accesses
 *   irq        interrupts minivm injects from userspace: KVM_IRQ_LINE (a GSI
 *              of the in-kernel irqchip) and KVM_SIGNAL_MSI. Interrupts that
 *              devices raise through irqfds go straight into the kernel and
 *              are not seen here.
 *   file=PATH  write to PATH instead of stderr
 *   from=S, to=S   only events at or after S seconds since minivm started,
 *              and before; S may have a fraction (0.5)
 *   dev=NAME   only port/MMIO accesses taken by the bus region NAME (as in
 *              the --stats device table: serial, rtc, unassigned, ...)
 *   addr=A[-B] only port/MMIO accesses at address A, or from A to B
 *              (inclusive); decimal or 0x hex
 * dev= and addr= narrow the port/MMIO lines only. Without exits, io or irq,
 * --trace means exits.
 *
 * The line format, eight fields separated by spaces (a header line starting
 * with # names them at the top of the output):
 *
 *   time_us cpu event dir address size value device
 *
 *   time_us  microseconds since minivm started
 *   cpu      the vCPU; "-" for interrupts (any thread may inject them)
 *   event    io (port), mmio, irq, msi, or the exit reason (intr, hlt, ...)
 *   dir      in/out for ports, read/write for MMIO and MSI, line for irq
 *   address  port or physical address in hex (0x3f8); the GSI for irq
 *   size     bytes accessed
 *   value    hex, size*2 digits: what the guest wrote, or for in/read what
 *            the device returned; the level (0 or 1) for irq; MSI data
 *   device   the bus region that took the access ("unassigned" if none);
 *            for system_event its type (shutdown, reset, crash), for
 *            fail_entry and internal_error KVM's reason code
 * A field that does not apply is "-". A string instruction (rep outsb) that
 * moves n items in one exit gives n lines.
 *
 * Lines are collected in a buffer and written in large pieces: when it is
 * full, when the VM stops (trace_flush) and at exit. Several vCPUs trace at
 * once; a mutex keeps each line whole and in order. On a terminal each line
 * is written at once, since someone is watching.
 */
#ifndef MINIVM_TRACE_H
#define MINIVM_TRACE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_PATH_MAX 4096
#define TRACE_DEV_MAX 32
#define TRACE_BUF_SIZE (64 * 1024)

enum trace_what {
	TRACE_EXITS = 1 << 0,
	TRACE_IO = 1 << 1,
	TRACE_IRQ = 1 << 2,
};

/* --trace, parsed. All zero: no tracing. */
struct trace_opts {
	unsigned what;               /* enum trace_what bits */
	char file[TRACE_PATH_MAX];   /* "": stderr */
	uint64_t from_us, to_us;     /* to_us 0: no end */
	char dev[TRACE_DEV_MAX];     /* "": any device */
	bool addr_given;
	uint64_t addr_lo, addr_hi;
};

struct trace {
	struct trace_opts opts;
	int fd;
	bool close_fd;
	bool tty;                    /* flush each line, end it with \r\n */
	uint64_t start_ns;
	pthread_mutex_t lock;        /* guards what follows */
	char buf[TRACE_BUF_SIZE];
	size_t len;
	int err;                     /* the first write error: tracing stops */
};

/*
 * Adds the words and options of one --trace argument to o (several --trace
 * flags add up). Returns 0, or -EINVAL with a message in err.
 */
int trace_parse(const char *arg, struct trace_opts *o, char *err, size_t errlen);

/* Opens the output (fd 2 unless file=) and writes the header. -errno. */
int trace_open(struct trace *t, const struct trace_opts *o, uint64_t start_ns);
/* Flushes and closes; returns the first write error as -errno, or 0. */
int trace_close(struct trace *t);
/* Writes out what is buffered: when the VM stops or pauses. */
void trace_flush(struct trace *t);

struct vm;
/* Points a freshly created VM at t (NULL: no tracing). */
void trace_attach(struct trace *t, struct vm *vm);

static inline bool trace_wants(const struct trace *t, unsigned what)
{
	return t && (t->opts.what & what);
}

/*
 * The hooks. t may be NULL. trace_exit() is for exits other than port and
 * MMIO, which trace_io() shows one access at a time (after the device ran,
 * so a read shows the value it returned).
 */
void trace_exit_slow(struct trace *t, unsigned vcpu, unsigned reason,
		     const struct kvm_run *run);
void trace_io_slow(struct trace *t, unsigned vcpu, bool mmio, uint64_t addr,
		   unsigned size, bool write, const void *data, const char *dev);
void trace_irq_slow(struct trace *t, unsigned gsi, int level);
void trace_msi_slow(struct trace *t, uint64_t addr, uint32_t data);

static inline void trace_exit(struct trace *t, unsigned vcpu, unsigned reason,
			      const struct kvm_run *run)
{
	if (trace_wants(t, TRACE_EXITS))
		trace_exit_slow(t, vcpu, reason, run);
}

static inline void trace_io(struct trace *t, unsigned vcpu, bool mmio, uint64_t addr,
			    unsigned size, bool write, const void *data, const char *dev)
{
	if (trace_wants(t, TRACE_EXITS | TRACE_IO))
		trace_io_slow(t, vcpu, mmio, addr, size, write, data, dev);
}

static inline void trace_irq(struct trace *t, unsigned gsi, int level)
{
	if (trace_wants(t, TRACE_IRQ))
		trace_irq_slow(t, gsi, level);
}

static inline void trace_msi(struct trace *t, uint64_t addr, uint32_t data)
{
	if (trace_wants(t, TRACE_IRQ))
		trace_msi_slow(t, addr, data);
}

/*
 * Formats one line (with "\n") into buf; returns its length. Exposed for
 * the unit tests, which check the format without a VM.
 */
size_t trace_format(char *buf, size_t len, uint64_t time_us, int vcpu, const char *event,
		    const char *dir, const char *addr, const char *size,
		    const char *value, const char *dev);

#endif
