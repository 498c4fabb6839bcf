// SPDX-License-Identifier: MIT
/*
 * What exit statistics add to one exit, without KVM: the calls the vCPU
 * loop makes for a port write (stats_run_enter, stats_run_exit, stats_io),
 * N times over, against the same loop with counting off (NULL stats).
 * Prints nanoseconds per exit for both; bench/exits.sh builds and runs it.
 */
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vmm/stats.h"

/* CPU time, not wall time: being descheduled on a busy machine is not cost. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static double loop(struct vcpu_stats *vs, long n)
{
	static const char *const devs[] = { "serial8250", "rtc", "acpi-pm1-cnt", NULL };
	uint64_t t0 = cpu_ns();

	for (long i = 0; i < n; i++) {
		stats_run_enter(vs);
		stats_run_exit(vs, KVM_EXIT_IO);
		/* A few devices and addresses, as a guest's port traffic has. */
		stats_io(vs, STATS_PIO, devs[i & 3], 0x70 + (i & 7), i & 1);
	}
	return (double)(cpu_ns() - t0) / n;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	struct stats s;
	double off = 1e9, on = 1e9;

	if (n <= 0 || stats_init(&s, 1))
		return 1;
	/* The best of five: the least disturbed by other work on the machine. */
	for (int r = 0; r < 5; r++) {
		double a = loop(NULL, n), b = loop(&s.vcpu[0], n);

		off = a < off ? a : off;
		on = b < on ? b : on;
	}
	printf("stats hot path: %.1f ns of CPU per exit counted, %.1f ns with counting off"
	       " (best of 5 x %ld)\n", on, off, n);
	stats_destroy(&s);
	return 0;
}
