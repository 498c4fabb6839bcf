// SPDX-License-Identifier: MIT
/* The event loop runs handlers on its thread, and stops cleanly. */
#include <check.h>
#include <errno.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/evloop.h"
#include "tests/unit/unit.h"

struct counter {
	struct ev_handler h;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t total;
	pthread_t thread;
};

static void on_event(struct ev_handler *h, uint32_t events)
{
	struct counter *c = h->ctx;
	uint64_t v;

	(void)events;
	if (read(h->fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&c->lock);
	c->total += v;
	c->thread = pthread_self();
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

START_TEST(dispatches_on_loop_thread)
{
	struct evloop l;
	struct counter c = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	uint64_t three = 3;

	ck_assert_int_eq(evloop_init(&l, "test"), 0);
	c.h = (struct ev_handler){ .fd = eventfd(0, EFD_NONBLOCK), .fn = on_event, .ctx = &c };
	ck_assert_int_eq(evloop_add(&l, &c.h, EPOLLIN), 0);
	ck_assert_int_eq(evloop_start(&l), 0);
	ck_assert_int_eq(write(c.h.fd, &three, 8), 8);
	ck_assert_int_eq(write(c.h.fd, &three, 8), 8);
	pthread_mutex_lock(&c.lock);
	while (c.total < 6)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	ck_assert(!pthread_equal(c.thread, pthread_self()));
	evloop_stop(&l);
	ck_assert_int_eq(evloop_del(&l, &c.h), 0);
	ck_assert_int_eq(evloop_del(&l, &c.h), -ENOENT);
	evloop_destroy(&l);
	close(c.h.fd);
}
END_TEST

START_TEST(rejects_bad_handlers)
{
	struct evloop l;
	struct ev_handler h = { .fd = -1, .fn = NULL };

	ck_assert_int_eq(evloop_init(&l, "test"), 0);
	ck_assert_int_eq(evloop_add(&l, &h, EPOLLIN), -EINVAL);
	ck_assert_int_eq(evloop_add(&l, NULL, EPOLLIN), -EINVAL);
	evloop_destroy(&l);
	/* stop without start, destroy twice: harmless */
	evloop_destroy(&l);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("evloop");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, dispatches_on_loop_thread);
	tcase_add_test(tc, rejects_bad_handlers);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
