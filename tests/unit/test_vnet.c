// SPDX-License-Identifier: MIT
/*
 * virtio-net. The whole device over real guest memory, driven through split
 * rings by a small test "driver", as test_vblk.c does, with two fakes:
 *  - the transport: this file defines the calls net.c makes into it
 *    (virtio_notify_queue, virtio_notify_config, virtio_set_needs_reset),
 *    so virtio/pci.c is never linked in;
 *  - the backend: a struct net_backend that records what is sent and
 *    hands out frames the test queued, behind an eventfd.
 * Last, a real TAP in a private network namespace (skipped without root
 * or /dev/net/tun): frames go out through the device's tx path and are seen
 * on the interface by a packet socket, and the other way round.
 */
#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "disk/iov.h"
#include "net/tap.h"
#include "virtio/net.h"
#include "vmm/log.h"
#include "vmm/memory.h"
#include "tests/unit/unit.h"

#define MiB (1ULL << 20)
#define RAM_SIZE (16 * MiB)
#define QSIZE 64
#define BUF_GPA 0x100000ULL   /* frames and buffers from here on */
#define ETHERTYPE_TEST 0x88b5 /* IEEE 802 local experimental */

static struct guest_mem mem;
static struct evloop loop;
static struct virtio_net net;

/* ---- the fake transport ---- */

static struct {
	unsigned int queue_irqs[3];
	unsigned int config_irqs;
	unsigned int needs_reset;
	const char *why;
} fake;

void virtio_notify_queue(struct virtio_dev *v, unsigned q)
{
	(void)v;
	if (q < 3)
		fake.queue_irqs[q]++;
}

void virtio_notify_config(struct virtio_dev *v)
{
	(void)v;
	fake.config_irqs++;
}

void virtio_set_needs_reset(struct virtio_dev *v, const char *why)
{
	(void)v;
	fake.needs_reset++;
	fake.why = why;
}

/* ---- the fake backend ---- */

#define FB_FRAMES 8

static struct fake_be {
	struct net_backend nb;
	unsigned int sends;
	uint8_t sent[VIRTIO_NET_MAX_FRAME];
	size_t sent_len;
	uint8_t frames[FB_FRAMES][4096];
	size_t frame_len[FB_FRAMES];
	unsigned int head, tail;
	unsigned int offloads_set;
} fb;

static ssize_t fb_send(struct net_backend *b, const struct iovec *iov, int cnt)
{
	size_t len = iov_total(iov, cnt);

	(void)b;
	ck_assert_uint_le(len, sizeof(fb.sent));
	iov_copy(iov, cnt, 0, fb.sent, len, false);
	fb.sent_len = len;
	fb.sends++;
	return len;
}

static ssize_t fb_recv(struct net_backend *b, void *buf, size_t len)
{
	unsigned int i = fb.head % FB_FRAMES;

	(void)b;
	if (fb.head == fb.tail)
		return -EAGAIN;
	ck_assert_uint_ge(len, fb.frame_len[i]);
	memcpy(buf, fb.frames[i], fb.frame_len[i]);
	fb.head++;
	return fb.frame_len[i];
}

static int fb_set_offloads(struct net_backend *b, unsigned int o)
{
	(void)b;
	fb.offloads_set = o;
	return 0;
}

static void fb_close(struct net_backend *b)
{
	(void)b;
}

static const struct net_backend_ops fb_ops = {
	.send = fb_send, .recv = fb_recv, .set_offloads = fb_set_offloads, .close = fb_close,
};

/* Queues a frame for the device to receive: a zero header, then the frame. */
static void fb_queue(const uint8_t *frame, size_t len)
{
	unsigned int i = fb.tail % FB_FRAMES;

	ck_assert_uint_lt(fb.tail - fb.head, FB_FRAMES);
	memset(fb.frames[i], 0, NET_HDR_LEN);
	memcpy(fb.frames[i] + NET_HDR_LEN, frame, len);
	fb.frame_len[i] = NET_HDR_LEN + len;
	fb.tail++;
}

/* ---- guest memory and the test driver ---- */

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = guest_ptr(&mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(gp(gpa, 2), &v, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(gpa, 2), 2);
	return le16toh(v);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(gpa, 4), 4);
	return le32toh(v);
}

/* Each queue's rings, 64 KiB apart from 0x10000. */
struct tq {
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx;
};

static struct tq tq[3];

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool w;
};

/* Writes a chain into queue q's table and makes it available; returns its head. */
static uint16_t offer(unsigned int q, const struct buf *b, unsigned int n)
{
	struct tq *t = &tq[q];
	uint16_t head = t->next_desc % QSIZE;

	for (unsigned int i = 0; i < n; i++) {
		uint16_t d = t->next_desc++ % QSIZE;
		uint64_t g = t->desc + 16ULL * d;
		uint64_t addr = htole64(b[i].gpa);
		uint32_t len = htole32(b[i].len);

		memcpy(gp(g, 8), &addr, 8);
		memcpy(gp(g + 8, 4), &len, 4);
		put16(g + 12, (b[i].w ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		put16(g + 14, (d + 1) % QSIZE);
	}
	put16(t->avail + 4 + 2 * (t->avail_idx % QSIZE), head);
	t->avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(t->avail + 2, t->avail_idx);
	return head;
}

static uint16_t used_idx(unsigned int q)
{
	return get16(tq[q].used + 2);
}

/* Used element i of queue q: its head and length. */
static uint32_t used_id(unsigned int q, unsigned int i)
{
	return get32(tq[q].used + 4 + 8 * (i % QSIZE));
}

static uint32_t used_len(unsigned int q, unsigned int i)
{
	return get32(tq[q].used + 4 + 8 * (i % QSIZE) + 4);
}

static void kick(unsigned int q)
{
	net.vdev.ops->queue_notify(&net.vdev, q);
}

/* The event loop noticing that the backend has a frame. */
static void backend_ready(void)
{
	net.be_ev.fn(&net.be_ev, EPOLLIN);
}

/* ---- setup: what the transport does at FEATURES_OK, queue enable and DRIVER_OK ---- */

static void dev_open(unsigned int offloads)
{
	memset(&fb, 0, sizeof(fb));
	fb.nb.ops = &fb_ops;
	fb.nb.offloads = offloads;
	fb.nb.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(fb.nb.fd, 0);
	strcpy(fb.nb.ifname, "fake0");
	ck_assert_int_eq(virtio_net_init(&net, &fb.nb, &loop,
					 (const uint8_t[]){ 0x52, 0x54, 0, 1, 2, 3 }, 1500), 0);
}

static void dev_start(uint64_t features)
{
	ck_assert_msg(!(features & ~(net.vdev.features | VIRTIO_BIT(VIRTIO_F_VERSION_1) |
				     VIRTIO_BIT(VIRTIO_F_EVENT_IDX))),
		      "asking for features not offered");
	net.vdev.driver_features = features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	net.vdev.mem = &mem;
	for (unsigned int q = 0; q < 3; q++) {
		struct virtio_queue *vq = &net.vdev.queues[q];

		tq[q] = (struct tq){ .desc = 0x10000 + 0x10000ULL * q * 3,
				     .avail = 0x20000 + 0x10000ULL * q * 3,
				     .used = 0x30000 + 0x10000ULL * q * 3 };
		pthread_mutex_init(&vq->lock, NULL);
		vq->max_size = net.vdev.queue_size;
		vq->kick.fd = -1;
		vq->vq = (struct virtq){ .mem = &mem, .size = QSIZE, .desc_gpa = tq[q].desc,
					 .avail_gpa = tq[q].avail, .used_gpa = tq[q].used,
					 .event_idx = features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX) };
		ck_assert_int_eq(virtq_init(&vq->vq), 0);
		vq->enabled = true;
	}
	ck_assert_int_eq(net.vdev.ops->activate(&net.vdev), 0);
}

static void setup(void)
{
	ck_assert_int_eq(guest_mem_init(&mem, RAM_SIZE), 0);
	ck_assert_int_eq(evloop_init(&loop, "test"), 0);
	memset(&fake, 0, sizeof(fake));
	memset(&fb, 0, sizeof(fb));
	fb.nb.fd = -1;
}

static void teardown(void)
{
	if (net.chain) {
		net.vdev.ops->reset(&net.vdev);
		virtio_net_destroy(&net);
		close(fb.nb.fd);
	}
	evloop_destroy(&loop);
	guest_mem_destroy(&mem);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* An Ethernet frame to dst (NULL: the NIC's MAC) of len bytes in total. */
static void make_frame(uint8_t *f, size_t len, const uint8_t *dst, unsigned int seed)
{
	fill(f, len, seed);
	memcpy(f, dst ? dst : net.config.mac, 6);
	memcpy(f + 6, (const uint8_t[]){ 0x52, 0x54, 0, 9, 9, 9 }, 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
}

static void put_hdr(uint64_t gpa, uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
		    uint16_t csum_start, uint16_t csum_off)
{
	struct virtio_net_hdr h = {
		.flags = flags, .gso_type = gso, .hdr_len = htole16(hdr_len),
		.gso_size = htole16(gso_size), .csum_start = htole16(csum_start),
		.csum_offset = htole16(csum_off),
	};

	memcpy(gp(gpa, sizeof(h)), &h, sizeof(h));
}

/* ---- transmit ---- */

START_TEST(test_tx_plain)
{
	uint8_t *p = gp(BUF_GPA, NET_HDR_LEN + 60);
	struct virtio_net_stats st;

	dev_open(0);
	dev_start(0);
	put_hdr(BUF_GPA, 0, 0, 0, 0, 0, 0);
	make_frame(p + NET_HDR_LEN, 60, NULL, 1);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN + 60, false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fb.sends, 1);
	ck_assert_uint_eq(fb.sent_len, NET_HDR_LEN + 60);
	ck_assert_mem_eq(fb.sent, p, NET_HDR_LEN + 60);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_TXQ), 1);
	ck_assert_uint_eq(used_len(VIRTIO_NET_TXQ, 0), 0);
	ck_assert_uint_eq(fake.queue_irqs[VIRTIO_NET_TXQ], 1);
	virtio_net_get_stats(&net, &st);
	ck_assert_uint_eq(st.tx_frames, 1);
	ck_assert_uint_eq(st.tx_bytes, 60);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

/* Checksum and TSO fields pass through; the header is split 3 + 9 and shares a buffer. */
START_TEST(test_tx_csum_gso_split_header)
{
	enum { LEN = 3000 };
	uint8_t want[NET_HDR_LEN + LEN];
	uint64_t g = BUF_GPA;

	dev_open(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4));
	put_hdr(BUF_GPA + 0x1000, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448,
		34, 16);
	memcpy(want, gp(BUF_GPA + 0x1000, NET_HDR_LEN), NET_HDR_LEN);
	make_frame(want + NET_HDR_LEN, LEN, NULL, 2);
	/* 3 bytes | 9 bytes of header + 100 of frame | the rest */
	memcpy(gp(g, 3), want, 3);
	memcpy(gp(g + 0x1000 + 0x200, 109), want + 3, 109);
	memcpy(gp(g + 0x4000, sizeof(want) - 112), want + 112, sizeof(want) - 112);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { g, 3, false }, { g + 0x1200, 109, false },
					       { g + 0x4000, sizeof(want) - 112, false } }, 3);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fb.sends, 1);
	ck_assert_uint_eq(fb.sent_len, sizeof(want));
	ck_assert_mem_eq(fb.sent, want, sizeof(want));
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

/* Headers the device must not pass on: dropped, the chain returned, no reset. */
START_TEST(test_tx_bad_headers_dropped)
{
	struct {
		uint8_t flags, gso;
		uint16_t cs, co, gso_size;
	} bad[] = {
		{ 0, VIRTIO_NET_HDR_GSO_TCPV6, 0, 0, 1448 },          /* TSO6 not negotiated */
		{ VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0 },           /* the device's flag */
		{ VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 50, 16, 0 },         /* checksum past the end */
		{ 0, 0x42, 0, 0, 0 },                                   /* unknown GSO type */
		{ 0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0 },                 /* ECN alone */
		{ VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 34, 16, 0 }, /* gso_size 0 */
	};
	struct virtio_net_stats st;

	dev_open(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t g = BUF_GPA + 0x1000 * i;

		put_hdr(g, bad[i].flags, bad[i].gso, 0, bad[i].gso_size, bad[i].cs, bad[i].co);
		make_frame(gp(g + NET_HDR_LEN, 60), 60, NULL, i);
		offer(VIRTIO_NET_TXQ, (struct buf[]){ { g, NET_HDR_LEN + 60, false } }, 1);
	}
	/* shorter than a header plus an Ethernet header; longer than any frame */
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN + 10, false } }, 1);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, 4 * MiB, false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fb.sends, 0);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_TXQ), ARRAY_SIZE(bad) + 2);
	virtio_net_get_stats(&net, &st);
	ck_assert_uint_eq(st.tx_dropped, ARRAY_SIZE(bad) + 2);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

START_TEST(test_tx_writable_buffer_breaks)
{
	dev_open(0);
	dev_start(0);
	put_hdr(BUF_GPA, 0, 0, 0, 0, 0, 0);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN, false },
					       { BUF_GPA + 0x100, 60, true } }, 2);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "device-writable buffer in a tx chain");
	ck_assert_uint_eq(fb.sends, 0);
	ck_assert(!net.polling);
	/* broken until reset: more kicks do nothing */
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN + 60, false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fb.sends, 0);
	ck_assert_uint_eq(fake.needs_reset, 1);
}
END_TEST

START_TEST(test_tx_outside_ram_breaks)
{
	dev_open(0);
	dev_start(0);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { RAM_SIZE - 8, 74, false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "malformed tx queue");
	ck_assert_uint_eq(fb.sends, 0);
}
END_TEST

/* ---- receive ---- */

START_TEST(test_rx_single_buffer)
{
	uint8_t f[100];
	struct virtio_net_hdr h;
	uint16_t head;

	dev_open(0);
	dev_start(0);
	make_frame(f, sizeof(f), NULL, 3);
	head = offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 2048, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 1);
	ck_assert_uint_eq(used_id(VIRTIO_NET_RXQ, 0), head);
	ck_assert_uint_eq(used_len(VIRTIO_NET_RXQ, 0), NET_HDR_LEN + sizeof(f));
	memcpy(&h, gp(BUF_GPA, sizeof(h)), sizeof(h));
	ck_assert_uint_eq(le16toh(h.num_buffers), 1);
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_mem_eq(gp(BUF_GPA + NET_HDR_LEN, sizeof(f)), f, sizeof(f));
	ck_assert_uint_eq(fake.queue_irqs[VIRTIO_NET_RXQ], 1);
	ck_assert(net.polling);
}
END_TEST

/* MRG_RXBUF: 3000 bytes over 1536-byte buffers, the header's num_buffers split too. */
START_TEST(test_rx_merged_buffers)
{
	uint8_t f[3000], got[NET_HDR_LEN + 3000];
	struct virtio_net_hdr h;

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	make_frame(f, sizeof(f), NULL, 4);
	/* the first buffer is 11 + 1525 bytes: num_buffers straddles the two */
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 11, true },
					       { BUF_GPA + 0x1000, 1525, true } }, 2);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x2000, 1536, true } }, 1);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x3000, 1536, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 2);
	ck_assert_uint_eq(used_len(VIRTIO_NET_RXQ, 0), 1536);
	ck_assert_uint_eq(used_len(VIRTIO_NET_RXQ, 1), NET_HDR_LEN + 3000 - 1536);
	memcpy(got, gp(BUF_GPA, 11), 11);
	memcpy(got + 11, gp(BUF_GPA + 0x1000, 1525), 1525);
	memcpy(got + 1536, gp(BUF_GPA + 0x2000, sizeof(got) - 1536), sizeof(got) - 1536);
	memcpy(&h, got, sizeof(h));
	ck_assert_uint_eq(le16toh(h.num_buffers), 2);
	ck_assert_mem_eq(got + NET_HDR_LEN, f, sizeof(f));
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

/* No buffers: the device stops watching the backend, and a kick brings it back. */
START_TEST(test_rx_waits_for_buffers)
{
	uint8_t f[200];

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	ck_assert(net.polling);
	make_frame(f, sizeof(f), NULL, 5);
	fb_queue(f, sizeof(f));
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert(!net.polling);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 0);
	ck_assert_uint_eq(get16(tq[VIRTIO_NET_RXQ].used) & VIRTQ_USED_F_NO_NOTIFY, 0);
	/* the event loop may still hold a wakeup from before: it does nothing */
	backend_ready();
	ck_assert_uint_eq(fb.head, 1);

	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 1536, true } }, 1);
	kick(VIRTIO_NET_RXQ);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 1);
	ck_assert_mem_eq(gp(BUF_GPA + NET_HDR_LEN, sizeof(f)), f, sizeof(f));
	/* the second frame read, and waiting again */
	ck_assert_uint_eq(fb.head, 2);
	ck_assert(!net.polling);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x1000, 1536, true } }, 1);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x2000, 1536, true } }, 1);
	kick(VIRTIO_NET_RXQ);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 2);
	ck_assert(net.polling);
}
END_TEST

/* The ring runs dry half way through a frame: nothing is published until it is whole. */
START_TEST(test_rx_dry_mid_frame)
{
	uint8_t f[2500];

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	make_frame(f, sizeof(f), NULL, 6);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 1536, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 0);
	ck_assert(!net.polling);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x1000, 1536, true } }, 1);
	kick(VIRTIO_NET_RXQ);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 2);
	ck_assert_uint_eq(get16(BUF_GPA + 10), 2);
	ck_assert_mem_eq(gp(BUF_GPA + NET_HDR_LEN, 1536 - NET_HDR_LEN), f, 1536 - NET_HDR_LEN);
	ck_assert_mem_eq(gp(BUF_GPA + 0x1000, sizeof(f) + NET_HDR_LEN - 1536),
			 f + 1536 - NET_HDR_LEN, sizeof(f) + NET_HDR_LEN - 1536);
}
END_TEST

START_TEST(test_rx_malformed_chains)
{
	uint8_t f[64];

	/* a device-readable buffer in an rx chain */
	dev_open(0);
	dev_start(0);
	make_frame(f, sizeof(f), NULL, 7);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 1536, false } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "device-readable buffer in an rx chain");
	/* broken: the backend is no longer watched, so its frames cannot spin the loop */
	ck_assert(!net.polling);

	/* after a reset: a buffer too small for the header */
	net.vdev.ops->reset(&net.vdev);
	dev_start(0);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 8, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(fake.needs_reset, 2);
	ck_assert_str_eq(fake.why, "rx buffer smaller than the header");

	/* and one outside guest RAM */
	net.vdev.ops->reset(&net.vdev);
	dev_start(0);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { RAM_SIZE - 100, 1536, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(fake.needs_reset, 3);
	ck_assert_str_eq(fake.why, "malformed rx queue");
}
END_TEST

/* Without MRG_RXBUF a frame larger than its buffer is cut short, not spread. */
START_TEST(test_rx_too_big_without_mrg)
{
	uint8_t f[1000];
	struct virtio_net_stats st;

	dev_open(0);
	dev_start(0);
	make_frame(f, sizeof(f), NULL, 8);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 512, true } }, 1);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x1000, 2048, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 1);
	ck_assert_uint_eq(used_len(VIRTIO_NET_RXQ, 0), 512);
	ck_assert_uint_eq(get16(BUF_GPA + 10), 1);
	virtio_net_get_stats(&net, &st);
	ck_assert_uint_eq(st.rx_dropped, 1);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

/* ---- control queue, config space, features ---- */

/* Sends one command; returns the ack byte. */
static uint8_t ctrl(const void *cmd, uint32_t len)
{
	uint64_t g = BUF_GPA + 0x8000;
	uint8_t *ack = gp(g + 0x1000, 1);
	uint16_t before = used_idx(VIRTIO_NET_CTRLQ);

	memcpy(gp(g, len), cmd, len);
	*ack = 0xee;
	/* class and command in one buffer, the data in the next, as Linux sends them */
	if (len > 2)
		offer(VIRTIO_NET_CTRLQ, (struct buf[]){ { g, 2, false }, { g + 2, len - 2, false },
							 { g + 0x1000, 1, true } }, 3);
	else
		offer(VIRTIO_NET_CTRLQ, (struct buf[]){ { g, len, false },
							 { g + 0x1000, 1, true } }, 2);
	kick(VIRTIO_NET_CTRLQ);
	ck_assert_uint_eq(used_idx(VIRTIO_NET_CTRLQ), (uint16_t)(before + 1));
	return *ack;
}

/* Delivers a frame to dst and says whether the filter let it in. */
static bool rx_accepts(const uint8_t *dst)
{
	uint16_t before = used_idx(VIRTIO_NET_RXQ);
	uint8_t f[60];

	make_frame(f, sizeof(f), dst, 9);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 1536, true } }, 1);
	fb_queue(f, sizeof(f));
	backend_ready();
	return used_idx(VIRTIO_NET_RXQ) != before;
}

START_TEST(test_ctrl_rx_mode_and_mac_table)
{
	const uint8_t other[6] = { 0x52, 0x54, 0, 7, 7, 7 }, mcast[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	uint8_t table[2 + 4 + 6 + 4 + 6] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET,
					     1, 0, 0, 0 };

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
		  VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	/* promiscuous after reset, as QEMU is */
	ck_assert(rx_accepts(other));
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0 }, 3),
			  VIRTIO_NET_OK);
	ck_assert(!rx_accepts(other));
	ck_assert(!rx_accepts(mcast));
	ck_assert(rx_accepts(NULL));
	ck_assert(rx_accepts((const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }));
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, 1 }, 3),
			  VIRTIO_NET_OK);
	ck_assert(rx_accepts(mcast));
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, 0 }, 3),
			  VIRTIO_NET_OK);

	/* one unicast address, one multicast one */
	memcpy(table + 6, other, 6);
	table[12] = 1;
	memcpy(table + 16, mcast, 6);
	ck_assert_uint_eq(ctrl(table, sizeof(table)), VIRTIO_NET_OK);
	ck_assert(rx_accepts(other));
	ck_assert(rx_accepts(mcast));
	/* a table whose count runs past the command */
	table[2] = 200;
	ck_assert_uint_eq(ctrl(table, sizeof(table)), VIRTIO_NET_ERR);
	/* a command with no data, and an unknown class */
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC }, 2),
			  VIRTIO_NET_ERR);
	ck_assert_uint_eq(ctrl((uint8_t[]){ 9, 0, 0 }, 3), VIRTIO_NET_ERR);
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, 7, 1 }, 3), VIRTIO_NET_ERR);
	ck_assert_uint_eq(fake.needs_reset, 0);
}
END_TEST

START_TEST(test_ctrl_announce_and_mac_addr)
{
	const uint8_t mac[6] = { 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc };
	uint8_t cmd[8] = { VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET };
	uint8_t cfg[12];

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		  VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR));
	virtio_net_announce(&net);
	ck_assert_uint_eq(fake.config_irqs, 1);
	net.vdev.ops->config_read(&net.vdev, 6, cfg, 2);
	ck_assert_uint_eq(cfg[0], VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK },
			       2), VIRTIO_NET_OK);
	net.vdev.ops->config_read(&net.vdev, 6, cfg, 2);
	ck_assert_uint_eq(cfg[0], VIRTIO_NET_S_LINK_UP);

	memcpy(cmd + 2, mac, 6);
	ck_assert_uint_eq(ctrl(cmd, sizeof(cmd)), VIRTIO_NET_OK);
	net.vdev.ops->config_read(&net.vdev, 0, cfg, 6);
	ck_assert_mem_eq(cfg, mac, 6);
	/* CTRL_RX was not negotiated: its commands fail */
	ck_assert_uint_eq(ctrl((uint8_t[]){ VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 0 }, 3),
			  VIRTIO_NET_ERR);
}
END_TEST

START_TEST(test_ctrl_without_ack_breaks)
{
	uint64_t g = BUF_GPA + 0x8000;

	dev_open(0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ));
	memcpy(gp(g, 3), (uint8_t[]){ VIRTIO_NET_CTRL_RX, 0, 0 }, 3);
	offer(VIRTIO_NET_CTRLQ, (struct buf[]){ { g, 3, false } }, 1);
	kick(VIRTIO_NET_CTRLQ);
	ck_assert_uint_eq(fake.needs_reset, 1);
	ck_assert_str_eq(fake.why, "control command without an ack byte");
}
END_TEST

START_TEST(test_config_and_link)
{
	uint8_t cfg[16];
	struct virtio_net_stats st;

	dev_open(0);
	net.vdev.ops->config_read(&net.vdev, 0, cfg, 12);
	ck_assert_mem_eq(cfg, ((uint8_t[]){ 0x52, 0x54, 0, 1, 2, 3 }), 6);
	ck_assert_uint_eq(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(cfg[8] | cfg[9] << 8, 1);     /* max_virtqueue_pairs */
	ck_assert_uint_eq(cfg[10] | cfg[11] << 8, 1500); /* mtu */
	ck_assert_uint_eq(net.vdev.config_size, 12);
	/* guest writes change nothing */
	net.vdev.ops->config_write(&net.vdev, 0, (uint8_t[]){ 1, 2, 3, 4, 5, 6 }, 6);
	net.vdev.ops->config_read(&net.vdev, 0, cfg, 6);
	ck_assert_uint_eq(cfg[0], 0x52);

	dev_start(VIRTIO_BIT(VIRTIO_NET_F_STATUS));
	virtio_net_set_link(&net, false);
	ck_assert_uint_eq(fake.config_irqs, 1);
	net.vdev.ops->config_read(&net.vdev, 6, cfg, 2);
	ck_assert_uint_eq(cfg[0] & VIRTIO_NET_S_LINK_UP, 0);
	/* the cable is out: frames go nowhere, either way */
	put_hdr(BUF_GPA, 0, 0, 0, 0, 0, 0);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN + 60, false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_uint_eq(fb.sends, 0);
	ck_assert(!rx_accepts(NULL));
	virtio_net_set_link(&net, true);
	ck_assert_uint_eq(fake.config_irqs, 2);
	ck_assert(rx_accepts(NULL));
	virtio_net_get_stats(&net, &st);
	ck_assert_uint_eq(st.tx_dropped, 1);
	ck_assert_uint_eq(st.rx_dropped, 1);
}
END_TEST

START_TEST(test_features_follow_backend)
{
	const uint64_t offloads = VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
		VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) |
		VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |
		VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO);
	const uint64_t always = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
		VIRTIO_BIT(VIRTIO_NET_F_MTU);

	dev_open(0);
	ck_assert_uint_eq(net.vdev.features & offloads, 0);
	ck_assert_uint_eq(net.vdev.features & always, always);
	/* bit numbers, not masks: MAC is bit 5, i.e. 0x20 (the seeds' pitfall) */
	ck_assert_uint_eq(net.vdev.features & 0xff, 0x20 | 0x08);
	virtio_net_destroy(&net);
	close(fb.nb.fd);

	dev_open(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	ck_assert_uint_eq(net.vdev.features & offloads,
			  VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
			  VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4));
	ck_assert_uint_eq(net.vdev.device_id, VIRTIO_ID_NET);
	ck_assert_uint_eq(net.vdev.num_queues, 3);
	/* what the guest negotiated goes to the backend; a reset takes it back */
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4));
	ck_assert_uint_eq(fb.offloads_set, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	net.vdev.ops->reset(&net.vdev);
	ck_assert_uint_eq(fb.offloads_set, 0);
	ck_assert(!net.polling);
}
END_TEST

/* rx headers from the backend: DATA_VALID only with GUEST_CSUM, GSO only if negotiated */
START_TEST(test_rx_header_checks)
{
	uint8_t f[80];
	struct virtio_net_hdr h;
	unsigned int i;

	dev_open(NET_OFFLOAD_CSUM);
	dev_start(0);
	make_frame(f, sizeof(f), NULL, 10);
	offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA, 1536, true } }, 1);
	i = fb.tail;
	fb_queue(f, sizeof(f));
	fb_queue(f, sizeof(f));
	fb.frames[i % FB_FRAMES][0] = VIRTIO_NET_HDR_F_DATA_VALID;
	fb.frames[(i + 1) % FB_FRAMES][1] = VIRTIO_NET_HDR_GSO_TCPV4;
	backend_ready();
	ck_assert_uint_eq(used_idx(VIRTIO_NET_RXQ), 1);
	memcpy(&h, gp(BUF_GPA, sizeof(h)), sizeof(h));
	ck_assert_uint_eq(h.flags, 0);
	ck_assert_uint_eq(fb.head, 2); /* the GSO frame was read and dropped */
}
END_TEST

/* ---- the guest as the attacker: random rings ---- */

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	/* xorshift32: the same garbage on every run */
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Fills queue q's table with random descriptors and offers random heads. */
static void garbage(unsigned int q)
{
	struct tq *t = &tq[q];

	for (unsigned int d = 0; d < QSIZE; d++) {
		uint64_t g = t->desc + 16ULL * d;
		/* mostly inside RAM, sometimes across its end or far outside */
		uint64_t addr = rnd() % 8 ? BUF_GPA + rnd() % (8 * MiB) : RAM_SIZE - rnd() % 4096;
		uint32_t len = rnd() % 4 ? rnd() % 2048 : rnd() % (VIRTIO_NET_MAX_FRAME + 4096);

		if (!(rnd() % 64))
			addr = (uint64_t)rnd() << 32 | rnd();
		addr = htole64(addr);
		len = htole32(len);
		memcpy(gp(g, 8), &addr, 8);
		memcpy(gp(g + 8, 4), &len, 4);
		put16(g + 12, rnd() % 8);
		put16(g + 14, rnd() % (QSIZE + 2));
	}
	for (unsigned int i = 0, n = 1 + rnd() % 4; i < n; i++) {
		put16(t->avail + 4 + 2 * (t->avail_idx % QSIZE), rnd() % QSIZE);
		t->avail_idx++;
	}
	put16(t->avail + 2, t->avail_idx);
}

/* What a driver does after NEEDS_RESET: reset, set the rings up again. */
static void restart(uint64_t features)
{
	net.vdev.ops->reset(&net.vdev);
	for (unsigned int q = 0; q < 3; q++) {
		memset(gp(tq[q].avail, 0x10000), 0, 0x10000);
		memset(gp(tq[q].used, 0x10000), 0, 0x10000);
		tq[q].next_desc = tq[q].avail_idx = 0;
		ck_assert_int_eq(virtq_init(&net.vdev.queues[q].vq), 0);
	}
	net.vdev.driver_features = features | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	ck_assert_int_eq(net.vdev.ops->activate(&net.vdev), 0);
}

START_TEST(test_random_rings)
{
	const uint64_t feats[] = {
		0, VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
		   VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) | VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
		   VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
	};
	struct virtio_net_stats st;
	uint8_t f[1500];
	unsigned int resets = 0;

	dev_open(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	dev_start(feats[1]);
	for (unsigned int i = 0; i < 3000; i++) {
		unsigned int q = rnd() % 4;

		if (q < 3)
			garbage(q);
		make_frame(f, 14 + rnd() % (sizeof(f) - 14), rnd() % 2 ? NULL : (uint8_t *)f + 20,
			   i);
		if (fb.tail - fb.head < FB_FRAMES)
			fb_queue(f, 14 + rnd() % (sizeof(f) - 14));
		if (q < 3)
			kick(q);
		else
			backend_ready();
		if (fake.needs_reset) {
			resets++;
			fake.needs_reset = 0;
			restart(feats[rnd() % 2]);
		}
	}
	/* the garbage does break the device, and it comes back every time */
	ck_assert_uint_gt(resets, 10);
	/* and some frames do get through both ways */
	virtio_net_get_stats(&net, &st);
	ck_assert_uint_gt(st.rx_frames, 0);
	ck_assert_uint_gt(st.tx_frames, 0);
	fprintf(stderr, "random rings: %u resets; rx %llu frames, %llu dropped; "
		"tx %llu frames, %llu dropped\n", resets, (unsigned long long)st.rx_frames, (unsigned long long)st.rx_dropped,
		(unsigned long long)st.tx_frames, (unsigned long long)st.tx_dropped);
}
END_TEST

/* ---- a real TAP, in a network namespace of our own ---- */

static bool can_tap(void)
{
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		fprintf(stderr, "test_vnet: TAP test skipped (needs root and /dev/net/tun)\n");
		return false;
	}
	/* CK_FORK: this test runs in a child, so the namespace dies with it */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "test_vnet: TAP test skipped (unshare: %s)\n", strerror(errno));
		return false;
	}
	return true;
}

static int packet_socket(const char *ifname)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct ifreq ifr = { 0 };

	ck_assert_int_ge(s, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	a.sll_ifindex = if_nametoindex(ifname);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	return s;
}

/* Reads frames from s until one of our test type arrives; its length. */
static ssize_t packet_recv(int s, uint8_t *buf, size_t len)
{
	for (int tries = 0; tries < 50; tries++) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		ck_assert_int_eq(poll(&p, 1, 2000), 1);
		n = recv(s, buf, len, 0);
		ck_assert_int_ge(n, 14);
		if (buf[12] == ETHERTYPE_TEST >> 8 && buf[13] == (ETHERTYPE_TEST & 0xff))
			return n;
	}
	ck_abort_msg("no test frame on the interface");
	return -1;
}

START_TEST(test_tap_both_ways)
{
	struct netdev_opts d = { .type = NETDEV_TAP, .ifname = "mvtest%d" };
	struct net_backend *be;
	uint8_t f[300], got[2048];
	char err[256];
	bool found = false;
	int s, ret;

	if (!can_tap())
		return;
	ret = tap_open(&d, &be, err, sizeof(err));
	ck_assert_msg(ret == 0, "tap_open: %s", err);
	ck_assert_str_eq(be->ifname, "mvtest0");
	ck_assert_uint_eq(be->offloads & NET_OFFLOAD_CSUM, NET_OFFLOAD_CSUM);
	s = packet_socket(be->ifname);

	ck_assert_int_eq(virtio_net_init(&net, be, &loop, (const uint8_t[]){ 0x52, 0x54, 0, 1, 2, 3 },
					 1500), 0);
	dev_start(VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
		  VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM));

	/* guest -> host */
	put_hdr(BUF_GPA, 0, 0, 0, 0, 0, 0);
	make_frame(gp(BUF_GPA + NET_HDR_LEN, sizeof(f)), sizeof(f),
		   (const uint8_t[]){ 0x52, 0x54, 0, 4, 5, 6 }, 11);
	offer(VIRTIO_NET_TXQ, (struct buf[]){ { BUF_GPA, NET_HDR_LEN + sizeof(f), false } }, 1);
	kick(VIRTIO_NET_TXQ);
	ck_assert_int_eq(packet_recv(s, got, sizeof(got)), sizeof(f));
	ck_assert_mem_eq(got, gp(BUF_GPA + NET_HDR_LEN, sizeof(f)), sizeof(f));

	/*
	 * host -> guest, to the NIC's own address. The kernel may send frames
	 * of its own out of a fresh interface (IPv6 solicitations): the test
	 * frame is the one with our EtherType.
	 */
	make_frame(f, sizeof(f), NULL, 12);
	for (unsigned int i = 0; i < 16; i++)
		offer(VIRTIO_NET_RXQ, (struct buf[]){ { BUF_GPA + 0x10000 + 0x1000 * i, 1536, true } },
		      1);
	ck_assert_int_eq(send(s, f, sizeof(f), 0), sizeof(f));
	for (int tries = 0; tries < 200 && !found; tries++) {
		struct pollfd p = { .fd = be->fd, .events = POLLIN };

		poll(&p, 1, 10);
		backend_ready();
		for (unsigned int i = 0; i < used_idx(VIRTIO_NET_RXQ); i++) {
			uint64_t g = BUF_GPA + 0x10000 + 0x1000 * used_id(VIRTIO_NET_RXQ, i);

			if (get16(g + NET_HDR_LEN + 12) != htole16(htons(ETHERTYPE_TEST)))
				continue;
			ck_assert_uint_eq(used_len(VIRTIO_NET_RXQ, i), NET_HDR_LEN + sizeof(f));
			ck_assert_uint_eq(get16(g + 10), 1);
			ck_assert_mem_eq(gp(g + NET_HDR_LEN, sizeof(f)), f, sizeof(f));
			found = true;
		}
	}
	ck_assert_msg(found, "the frame sent on the interface never reached the guest");
	ck_assert_uint_eq(fake.needs_reset, 0);

	net.vdev.ops->reset(&net.vdev);
	virtio_net_destroy(&net);
	be->ops->close(be);
	close(s);
}
END_TEST

START_TEST(test_tap_script_failure)
{
	struct netdev_opts d = { .type = NETDEV_TAP, .script = "/bin/false" };
	struct netdev_opts b = { .type = NETDEV_BRIDGE, .br = "nosuchbr0" };
	struct net_backend *be;
	char err[256];

	if (!can_tap())
		return;
	ck_assert_int_eq(tap_open(&d, &be, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "/bin/false") && strstr(err, "exit status 1"), "%s", err);
	ck_assert_ptr_null(strchr(err, '\n'));
	strcpy(d.script, "/nonexistent/ifup");
	ck_assert_int_lt(tap_open(&d, &be, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "/nonexistent/ifup"), "%s", err);
	ck_assert_int_lt(tap_open(&b, &be, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "nosuchbr0"), "%s", err);
}
END_TEST

static Suite *vnet_suite(void)
{
	Suite *s = suite_create("virtio-net");
	TCase *tx = tcase_create("tx");
	TCase *rx = tcase_create("rx");
	TCase *ctl = tcase_create("control");
	TCase *rnd_tc = tcase_create("random");
	TCase *tap = tcase_create("tap");

	tcase_add_checked_fixture(tx, setup, teardown);
	tcase_add_test(tx, test_tx_plain);
	tcase_add_test(tx, test_tx_csum_gso_split_header);
	tcase_add_test(tx, test_tx_bad_headers_dropped);
	tcase_add_test(tx, test_tx_writable_buffer_breaks);
	tcase_add_test(tx, test_tx_outside_ram_breaks);
	suite_add_tcase(s, tx);

	tcase_add_checked_fixture(rx, setup, teardown);
	tcase_add_test(rx, test_rx_single_buffer);
	tcase_add_test(rx, test_rx_merged_buffers);
	tcase_add_test(rx, test_rx_waits_for_buffers);
	tcase_add_test(rx, test_rx_dry_mid_frame);
	tcase_add_test(rx, test_rx_malformed_chains);
	tcase_add_test(rx, test_rx_too_big_without_mrg);
	tcase_add_test(rx, test_rx_header_checks);
	suite_add_tcase(s, rx);

	tcase_add_checked_fixture(ctl, setup, teardown);
	tcase_add_test(ctl, test_ctrl_rx_mode_and_mac_table);
	tcase_add_test(ctl, test_ctrl_announce_and_mac_addr);
	tcase_add_test(ctl, test_ctrl_without_ack_breaks);
	tcase_add_test(ctl, test_config_and_link);
	tcase_add_test(ctl, test_features_follow_backend);
	suite_add_tcase(s, ctl);

	tcase_add_checked_fixture(rnd_tc, setup, teardown);
	tcase_set_timeout(rnd_tc, 60);
	tcase_add_test(rnd_tc, test_random_rings);
	suite_add_tcase(s, rnd_tc);

	tcase_add_checked_fixture(tap, setup, teardown);
	tcase_set_timeout(tap, 30);
	tcase_add_test(tap, test_tap_both_ways);
	tcase_add_test(tap, test_tap_script_failure);
	suite_add_tcase(s, tap);
	return s;
}

int main(void)
{
	return unit_run(vnet_suite());
}
