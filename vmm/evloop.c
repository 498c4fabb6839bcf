// SPDX-License-Identifier: MIT
/*
 * epoll(7) on one thread. The epoll user data is the handler itself, so a
 * wakeup dispatches with no lookup. A private eventfd wakes the loop when
 * it must stop.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/evloop.h"
#include "vmm/log.h"

#define EVLOOP_BATCH 32

int evloop_init(struct evloop *l, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	memset(l, 0, sizeof(*l));
	l->name = name;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wake_fd < 0)
		goto fail;
	/* data.ptr NULL marks the wake eventfd */
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0)
		goto fail;
	return 0;
fail:
	ev.events = -errno;
	evloop_destroy(l);
	return (int)ev.events;
}

int evloop_add(struct evloop *l, struct ev_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	if (!h || !h->fn || h->fd < 0)
		return -EINVAL;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
		return -errno;
	return 0;
}

int evloop_del(struct evloop *l, struct ev_handler *h)
{
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL) < 0)
		return -errno;
	return 0;
}

static void *evloop_thread(void *arg)
{
	struct evloop *l = arg;
	struct epoll_event evs[EVLOOP_BATCH];

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(l->epfd, evs, EVLOOP_BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("%s: epoll_wait: %s", l->name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev_handler *h = evs[i].data.ptr;

			if (h)
				h->fn(h, evs[i].events);
		}
	}
	return NULL;
}

int evloop_start(struct evloop *l)
{
	int ret;

	l->stop = false;
	ret = pthread_create(&l->thread, NULL, evloop_thread, l);
	if (ret)
		return -ret;
	pthread_setname_np(l->thread, l->name);
	l->started = true;
	return 0;
}

void evloop_stop(struct evloop *l)
{
	uint64_t one = 1;

	if (!l->started)
		return;
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
	if (write(l->wake_fd, &one, sizeof(one)) < 0)
		pr_debug("%s: wake: %s", l->name, strerror(errno));
	pthread_join(l->thread, NULL);
	l->started = false;
}

void evloop_destroy(struct evloop *l)
{
	evloop_stop(l);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->epfd = l->wake_fd = -1;
}
