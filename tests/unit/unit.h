/* SPDX-License-Identifier: MIT */
/*
 * What the Check unit tests share: the runner every test_*.c ends with, and
 * a recorder that stands in for the interrupt lines and the machine-event
 * sink a device is wired to, so a test can count what the device raised.
 */
#ifndef MINIVM_TESTS_UNIT_H
#define MINIVM_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

#include "vmm/events.h"

#define RECORDER_GSIS 32

struct recorder {
	int level[RECORDER_GSIS];  /* the line's current level */
	int edges[RECORDER_GSIS];  /* 0 -> 1 transitions */
	int sets[RECORDER_GSIS];   /* calls, whatever the level */
	int events[VM_EVENT_ERROR + 1];
};

static inline void recorder_irq(void *ctx, unsigned gsi, int level)
{
	struct recorder *r = ctx;

	ck_assert_uint_lt(gsi, RECORDER_GSIS);
	if (level && !r->level[gsi])
		r->edges[gsi]++;
	r->level[gsi] = level;
	r->sets[gsi]++;
}

static inline void recorder_event(void *ctx, enum vm_event ev)
{
	struct recorder *r = ctx;

	ck_assert_int_le(ev, VM_EVENT_ERROR);
	r->events[ev]++;
}

/* Events of any kind but ev. */
static inline int recorder_events_except(const struct recorder *r, enum vm_event ev)
{
	int n = 0;

	for (int i = 0; i <= VM_EVENT_ERROR; i++)
		n += i == (int)ev ? 0 : r->events[i];
	return n;
}

/* Interrupt-line calls on any GSI but gsi. */
static inline int recorder_sets_except(const struct recorder *r, unsigned gsi)
{
	int n = 0;

	for (unsigned i = 0; i < RECORDER_GSIS; i++)
		n += i == gsi ? 0 : r->sets[i];
	return n;
}

/*
 * Runs the suite (CK_FORK and CK_VERBOSITY from the environment, as CTest
 * sets them) and gives main()'s exit status.
 */
static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
