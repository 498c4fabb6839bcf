/* SPDX-License-Identifier: MIT */
/*
 * An event loop on its own thread: devices hand it file descriptors (a
 * queue's ioeventfd, a disk's completion eventfd, a TAP device) and a
 * callback, so their work runs off the vCPU threads. A vCPU that writes a
 * doorbell only signals an eventfd inside KVM and goes back to the guest.
 */
#ifndef MINIVM_EVLOOP_H
#define MINIVM_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ev_handler {
	int fd;
	void (*fn)(struct ev_handler *h, uint32_t events);
	void *ctx; /* the owner's; the loop never touches it */
};

struct evloop {
	int epfd;
	int wake_fd;
	bool stop;
	bool started;
	pthread_t thread;
	const char *name;
};

int evloop_init(struct evloop *l, const char *name);
/*
 * Handlers are owned by the caller and must stay valid until removed.
 * evloop_del() may be called from a handler (on the loop thread) or while
 * the loop is stopped; anywhere else a handler may still be running.
 */
int evloop_add(struct evloop *l, struct ev_handler *h, uint32_t events);
int evloop_del(struct evloop *l, struct ev_handler *h);
int evloop_start(struct evloop *l);
/* Stops and joins the thread; handlers stay registered. */
void evloop_stop(struct evloop *l);
void evloop_destroy(struct evloop *l);

#endif
