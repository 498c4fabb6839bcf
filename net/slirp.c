// SPDX-License-Identifier: MIT
/*
 * The user-mode backend (net/slirp.h): libslirp 4.7's API (libslirp.h,
 * SlirpConfig version 4) behind struct net_backend.
 *
 * libslirp is not thread-safe, and it wants to be driven by a poll loop:
 * slirp_pollfds_fill() names the sockets it waits on, slirp_pollfds_poll()
 * services them, and timers fire through slirp_handle_timer(). So each
 * backend has one thread of its own, "slirp", and it alone ever calls into
 * libslirp once the backend is open.
 *
 * Frames cross between the NIC (on the device event loop) and that thread
 * over an AF_UNIX SOCK_SEQPACKET socketpair: one frame a message, its
 * boundaries kept, and a full socket a plain EAGAIN. Both directions carry
 * the 12-byte virtio_net_hdr_v1 (virtio 1.x §5.1.6) in front, so that the
 * NIC's end speaks net/backend.h as it is and recv() is a single recv().
 * slirp does no offloads: the header is all zero towards the NIC, and
 * send() refuses one that asks for a checksum or segmentation.
 *
 * When the NIC does not read (its rx ring is full, or the driver is not up
 * yet) frames wait in the socket and, once it is full, slirp's are dropped,
 * as on a wire; TCP sends them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libslirp.h>

#include "disk/iov.h"
#include "net/slirp.h"
#include "vmm/log.h"

#if SLIRP_CONFIG_VERSION_MAX < 4
#error "libslirp 4.7 or later is needed (SlirpConfig version 4, timer_new_opaque)"
#endif

#define ETH_HLEN 14
/* The longest frame either way: an IPv4 or IPv6 packet's most, with its Ethernet header. */
#define USERNET_MAX_FRAME (ETH_HLEN + 65535)
/* virtio_net_hdr_v1: flags and gso_type, its first two bytes */
#define HDR_F_NEEDS_CSUM 1
#define HDR_GSO_NONE 0
/* Frames taken from the NIC per round, so that slirp's sockets get their turn. */
#define USERNET_BUDGET 64
/* Socket buffers: room for a few hundred full-size frames each way. */
#define USERNET_SOCKBUF (1 << 20)
/* The two descriptors every round polls, ahead of slirp's own. */
enum { PFD_WAKE, PFD_FRAMES, PFD_OWN };

struct usernet_timer {
	struct usernet_timer *next;
	SlirpTimerId id;
	void *cb_opaque;
	int64_t expire_ms;           /* on clock_get_ns()'s clock; -1: not armed */
};

struct usernet {
	struct net_backend nb;       /* first: the NIC holds &u->nb; nb.fd is its end */
	Slirp *slirp;
	int fd;                      /* the slirp thread's end of the socketpair */
	int wake_fd;                 /* eventfd: close() wakes the thread to stop */
	bool stop;
	bool started;
	pthread_t thread;
	struct pollfd *pfd;          /* this round's: PFD_OWN, then slirp's */
	unsigned int nr_pfd, cap_pfd;
	struct usernet_timer *timers;
	uint8_t buf[NET_HDR_LEN + USERNET_MAX_FRAME]; /* a frame from the NIC */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the NIC's side: any thread, the socketpair only ---- */

static ssize_t usernet_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	size_t len = iovcnt > 0 ? iov_total(iov, iovcnt) : 0;
	uint8_t hdr[NET_HDR_LEN];
	ssize_t n;

	if (len < NET_HDR_LEN + ETH_HLEN || len > NET_HDR_LEN + USERNET_MAX_FRAME)
		return -EMSGSIZE;
	iov_copy(iov, iovcnt, 0, hdr, sizeof(hdr), false);
	/* slirp takes finished frames only, and we offered the NIC no offloads */
	if ((hdr[0] & HDR_F_NEEDS_CSUM) || hdr[1] != HDR_GSO_NONE)
		return -EINVAL;
	n = sendmsg(b->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

static ssize_t usernet_recv(struct net_backend *b, void *buf, size_t len)
{
	ssize_t n;

	for (;;) {
		/* MSG_TRUNC: the frame's real length, to notice one cut short */
		n = recv(b->fd, buf, len, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE; /* the thread's end is gone */
		if ((size_t)n <= len)
			return n;
	}
}

static int usernet_set_offloads(struct net_backend *b, unsigned int offloads)
{
	(void)b;
	return offloads ? -EOPNOTSUPP : 0;
}

/* ---- libslirp's callbacks: the slirp thread (or usernet_open(), before it) ---- */

static ssize_t usernet_send_packet(const void *buf, size_t len, void *opaque)
{
	static const uint8_t hdr[NET_HDR_LEN]; /* no offloads: all zero */
	struct usernet *u = opaque;
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)buf, .iov_len = len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	/*
	 * A full socket drops the frame, as a wire would. The full length is
	 * returned all the same: slirp logs anything less as an error.
	 */
	sendmsg(u->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	return len;
}

static void usernet_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	pr_debug("-netdev user: the guest sent something slirp cannot take: %s", msg);
}

static int64_t usernet_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *usernet_timer_new(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct usernet *u = opaque;
	struct usernet_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->id = id;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = u->timers;
	u->timers = t;
	return t;
}

static void usernet_timer_free(void *timer, void *opaque)
{
	struct usernet *u = opaque;
	struct usernet_timer **p;

	for (p = &u->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void usernet_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct usernet_timer *t = timer;

	(void)opaque;
	if (t)
		t->expire_ms = expire_ms < 0 ? 0 : expire_ms;
}

/* Every round polls afresh what slirp_pollfds_fill() names: nothing to keep. */
static void usernet_register_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void usernet_unregister_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

/*
 * slirp calls this when a guestfwd socket may take data again; minivm has
 * no guestfwd, and the call comes from the slirp thread, which is awake.
 */
static void usernet_notify(void *opaque)
{
	(void)opaque;
}

static const SlirpCb usernet_cb = {
	.send_packet = usernet_send_packet,
	.guest_error = usernet_guest_error,
	.clock_get_ns = usernet_clock_get_ns,
	.timer_free = usernet_timer_free,
	.timer_mod = usernet_timer_mod,
	.register_poll_fd = usernet_register_poll_fd,
	.unregister_poll_fd = usernet_unregister_poll_fd,
	.notify = usernet_notify,
	.timer_new_opaque = usernet_timer_new,
};

/* ---- the slirp thread ---- */

static int usernet_add_poll(int fd, int events, void *opaque)
{
	struct usernet *u = opaque;
	struct pollfd *p;

	if (u->nr_pfd == u->cap_pfd) {
		p = realloc(u->pfd, 2 * u->cap_pfd * sizeof(*p));
		if (!p)
			return -1; /* this round without it; get_revents says nothing */
		u->pfd = p;
		u->cap_pfd *= 2;
	}
	p = &u->pfd[u->nr_pfd];
	p->fd = fd;
	p->events = (events & SLIRP_POLL_IN ? POLLIN : 0) |
		    (events & SLIRP_POLL_OUT ? POLLOUT : 0) |
		    (events & SLIRP_POLL_PRI ? POLLPRI : 0);
	p->revents = 0;
	return (int)u->nr_pfd++;
}

static int usernet_get_revents(int idx, void *opaque)
{
	struct usernet *u = opaque;
	short r;

	if (idx < PFD_OWN || (unsigned int)idx >= u->nr_pfd)
		return 0;
	r = u->pfd[idx].revents;
	return (r & POLLIN ? SLIRP_POLL_IN : 0) | (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
	       (r & POLLPRI ? SLIRP_POLL_PRI : 0) | (r & (POLLERR | POLLNVAL) ? SLIRP_POLL_ERR : 0) |
	       (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

/* Milliseconds until the nearest armed timer; UINT32_MAX: none is. */
static uint32_t usernet_next_timer(const struct usernet *u)
{
	int64_t now = now_ns() / 1000000, next = INT64_MAX;

	for (const struct usernet_timer *t = u->timers; t; t = t->next)
		if (t->expire_ms >= 0 && t->expire_ms < next)
			next = t->expire_ms;
	if (next == INT64_MAX)
		return UINT32_MAX;
	return next <= now ? 0 : (uint32_t)MIN(next - now, (int64_t)UINT32_MAX - 1);
}

/*
 * Fires the expired timers one at a time, looking again from the top after
 * each: a handler may re-arm or free timers. The budget stops a timer that
 * keeps re-arming itself in the past from holding the thread.
 */
static void usernet_run_timers(struct usernet *u)
{
	int64_t now = now_ns() / 1000000;
	struct usernet_timer *t;

	for (unsigned int budget = 16; budget; budget--) {
		for (t = u->timers; t; t = t->next)
			if (t->expire_ms >= 0 && t->expire_ms <= now)
				break;
		if (!t)
			return;
		t->expire_ms = -1;
		slirp_handle_timer(u->slirp, t->id, t->cb_opaque);
	}
}

/*
 * An IPv4 fragment (RFC 791: MF set or a non-zero offset). libslirp 4.7.0
 * as Debian 12 builds it crashes on a fragment with MF clear and a
 * non-zero offset that comes before any other fragment of its datagram:
 * it writes through a pointer taken from the packet's payload. The guest
 * must not be able to do that to minivm, so no IPv4 fragment reaches
 * slirp. TCP does not fragment (slirp's MSS fits the MTU): what is lost
 * is UDP and ICMP datagrams longer than the guest's MTU.
 */
static bool ipv4_fragment(const uint8_t *f, size_t len)
{
	if (len < ETH_HLEN + 20 || f[12] != 0x08 || f[13] != 0x00)
		return false;
	return ((f[ETH_HLEN + 6] << 8 | f[ETH_HLEN + 7]) & 0x3fff) != 0;
}

/* Frames from the NIC: send() checked them; the header goes, slirp gets the rest. */
static void usernet_from_nic(struct usernet *u)
{
	const uint8_t *f = u->buf + NET_HDR_LEN;
	ssize_t n;

	for (unsigned int budget = USERNET_BUDGET; budget; budget--) {
		n = recv(u->fd, u->buf, sizeof(u->buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n <= 0)
			return; /* EAGAIN: all taken */
		if (n < NET_HDR_LEN + ETH_HLEN || (size_t)n > sizeof(u->buf) ||
		    ipv4_fragment(f, n - NET_HDR_LEN))
			continue;
		slirp_input(u->slirp, f, (int)(n - NET_HDR_LEN));
	}
}

static void usernet_round(struct usernet *u)
{
	uint32_t timeout = usernet_next_timer(u);
	uint64_t v;
	ssize_t r;
	int n;

	u->nr_pfd = PFD_OWN;
	/* slirp shortens the timeout for its own TCP timers */
	slirp_pollfds_fill(u->slirp, &timeout, usernet_add_poll, u);
	n = poll(u->pfd, u->nr_pfd, timeout == UINT32_MAX ? -1 : (int)MIN(timeout, INT_MAX));
	slirp_pollfds_poll(u->slirp, n < 0, usernet_get_revents, u);
	if (n > 0 && u->pfd[PFD_FRAMES].revents)
		usernet_from_nic(u);
	if (n > 0 && u->pfd[PFD_WAKE].revents) {
		r = read(u->wake_fd, &v, sizeof(v)); /* only stop matters, set before */
		(void)r;
	}
	usernet_run_timers(u);
}

static void *usernet_thread(void *arg)
{
	struct usernet *u = arg;

	while (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE))
		usernet_round(u);
	return NULL;
}

/* ---- open and close ---- */

static void usernet_free(struct usernet *u)
{
	if (u->started) {
		uint64_t one = 1;

		__atomic_store_n(&u->stop, true, __ATOMIC_RELEASE);
		if (write(u->wake_fd, &one, sizeof(one)) < 0)
			pr_warn("-netdev user: cannot wake the slirp thread: %s", strerror(errno));
		pthread_join(u->thread, NULL);
	}
	/* after the join: the thread was slirp's only other user */
	if (u->slirp)
		slirp_cleanup(u->slirp);
	while (u->timers)
		usernet_timer_free(u->timers, u);
	if (u->nb.fd >= 0)
		close(u->nb.fd);
	if (u->fd >= 0)
		close(u->fd);
	if (u->wake_fd >= 0)
		close(u->wake_fd);
	free(u->pfd);
	free(u);
}

static void usernet_close(struct net_backend *b)
{
	usernet_free((struct usernet *)b);
}

static const struct net_backend_ops usernet_ops = {
	.send = usernet_send,
	.recv = usernet_recv,
	.set_offloads = usernet_set_offloads,
	.close = usernet_close,
};

/* The socketpair, the wakeup eventfd and the first poll entries. */
static int usernet_channel(struct usernet *u, char *err, size_t errlen)
{
	int sv[2], size = USERNET_SOCKBUF;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	u->nb.fd = sv[0];
	u->fd = sv[1];
	/* best effort: the kernel caps it at net.core.wmem_max */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	u->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	u->cap_pfd = 16;
	u->pfd = calloc(u->cap_pfd, sizeof(*u->pfd));
	if (!u->pfd) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	u->pfd[PFD_WAKE] = (struct pollfd){ .fd = u->wake_fd, .events = POLLIN };
	u->pfd[PFD_FRAMES] = (struct pollfd){ .fd = u->fd, .events = POLLIN };
	return 0;
}

static struct in_addr in4(uint32_t host_order)
{
	return (struct in_addr){ .s_addr = htonl(host_order) };
}

/* QEMU's IPv6 defaults: the site-local fec0::/64, host ::2, DNS ::3. */
static struct in6_addr fec0(uint8_t last)
{
	struct in6_addr a = { .s6_addr = { 0xfe, 0xc0 } };

	a.s6_addr[15] = last;
	return a;
}

static int usernet_slirp(struct usernet *u, const struct netdev_user *o, char *err,
			 size_t errlen)
{
	SlirpConfig cfg = {
		.version = 4,
		.restricted = o->restricted,
		.in_enabled = true,
		.vnetwork = in4(o->net),
		.vnetmask = in4(o->mask),
		.vhost = in4(o->host),
		.in6_enabled = o->ipv6,
		.vprefix_addr6 = fec0(0),
		.vprefix_len = 64,
		.vhost6 = fec0(2),
		.vhostname = o->hostname[0] ? o->hostname : NULL,
		.vdhcp_start = in4(o->dhcp_start),
		.vnameserver = in4(o->dns),
		.vnameserver6 = fec0(3),
	};

	u->slirp = slirp_new(&cfg, &usernet_cb, u);
	if (!u->slirp) {
		snprintf(err, errlen, "libslirp would not start");
		return -ENOMEM;
	}
	return 0;
}

static int usernet_hostfwd(struct usernet *u, const struct netdev_user *o, char *err,
			   size_t errlen)
{
	char what[48];
	int e;

	for (unsigned int i = 0; i < o->nr_fwd; i++) {
		const struct net_hostfwd *f = &o->fwd[i];

		errno = 0;
		if (!slirp_add_hostfwd(u->slirp, f->udp, in4(f->host_addr), f->host_port,
				       in4(f->guest_addr), f->guest_port))
			continue;
		/* slirp keeps bind()'s errno for us */
		e = errno ? errno : EADDRINUSE;
		net_hostfwd_str(f, what, sizeof(what));
		snprintf(err, errlen, "hostfwd=%s: cannot listen on host port %u: %s", what,
			 f->host_port, strerror(e));
		return -e;
	}
	return 0;
}

static int usernet_start(struct usernet *u, char *err, size_t errlen)
{
	int ret = pthread_create(&u->thread, NULL, usernet_thread, u);

	if (ret) {
		snprintf(err, errlen, "cannot start the slirp thread: %s", strerror(ret));
		return -ret;
	}
	pthread_setname_np(u->thread, "slirp");
	u->started = true;
	return 0;
}

int usernet_open(const struct netdev_opts *d, struct net_backend **out, char *err,
		 size_t errlen)
{
	struct usernet *u = calloc(1, sizeof(*u));
	int ret;

	if (!u) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	u->nb.ops = &usernet_ops;
	u->nb.fd = u->fd = u->wake_fd = -1;
	u->nb.offloads = 0; /* slirp wants whole frames with their checksums */
	ret = usernet_channel(u, err, errlen);
	if (ret)
		goto fail;
	ret = usernet_slirp(u, &d->user, err, errlen);
	if (ret)
		goto fail;
	ret = usernet_hostfwd(u, &d->user, err, errlen);
	if (ret)
		goto fail;
	ret = usernet_start(u, err, errlen);
	if (ret)
		goto fail;
	*out = &u->nb;
	return 0;
fail:
	usernet_free(u);
	return ret;
}
