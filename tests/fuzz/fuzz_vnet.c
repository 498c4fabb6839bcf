// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the fuzzer plays a hostile virtio-net driver (and a
 * hostile network). Its input is:
 *
 *   8 bytes   the features the driver negotiates (masked to what is offered)
 *   1 byte    the backend's offloads (NET_OFFLOAD_*)
 *   3 bytes   log2 of each queue's size (rx, tx, ctrl), 0..6
 *   32 bytes  the script: one action per byte (below)
 *   the rest  guest RAM (64 KiB): rings, buffers, and the frames the
 *             backend hands over
 *
 * Rings sit at fixed places in RAM (the contents are the fuzzer's); the
 * script kicks queues, delivers frames, flips the link and resets the
 * device. Sanitizers catch bad host accesses; the checks below catch
 * frames that reach the backend from outside guest RAM or oversized.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net.h"
#include "vmm/log.h"

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

#define RAM (64 * 1024)
#define HDR 44

struct fuzz {
	struct net_backend nb;     /* first: the device holds &f->nb */
	uint8_t *ram;
	struct guest_mem mem;
	struct virtio_net net;
	uint64_t features;
	const uint8_t *frames;     /* the backend's frames: slices of the input */
	size_t frames_len, frames_off;
	unsigned int to_deliver;   /* frames recv() may still hand out now */
	bool needs_reset;
};

/* ---- the transport, as seen by the device ---- */

void virtio_notify_queue(struct virtio_dev *v, unsigned q)
{
	(void)v;
	(void)q;
}

void virtio_notify_config(struct virtio_dev *v)
{
	(void)v;
}

void virtio_set_needs_reset(struct virtio_dev *v, const char *why)
{
	struct fuzz *f = (struct fuzz *)((struct virtio_net *)v->priv)->be;

	(void)why;
	f->needs_reset = true;
}

/* ---- the backend ---- */

static ssize_t fb_send(struct net_backend *b, const struct iovec *iov, int cnt)
{
	struct fuzz *f = (struct fuzz *)b;
	size_t len = 0;

	/* the header is the device's own copy; the frame must be guest RAM */
	CHECK(cnt >= 1 && iov[0].iov_len == NET_HDR_LEN);
	for (int i = 1; i < cnt; i++) {
		const uint8_t *p = iov[i].iov_base;

		CHECK(p >= f->ram && iov[i].iov_len <= RAM && p - f->ram <= RAM - (long)iov[i].iov_len);
		len += iov[i].iov_len;
	}
	CHECK(len + NET_HDR_LEN <= VIRTIO_NET_MAX_FRAME);
	return len + NET_HDR_LEN;
}

static ssize_t fb_recv(struct net_backend *b, void *buf, size_t len)
{
	struct fuzz *f = (struct fuzz *)b;
	size_t n;

	if (!f->to_deliver || f->frames_off + 2 > f->frames_len)
		return -EAGAIN;
	f->to_deliver--;
	n = (f->frames[f->frames_off] | f->frames[f->frames_off + 1] << 8) % 4096;
	f->frames_off += 2;
	n = MIN(n, f->frames_len - f->frames_off);
	n = MIN(n, len);
	memcpy(buf, f->frames + f->frames_off, n);
	f->frames_off += n;
	return n;
}

static int fb_set_offloads(struct net_backend *b, unsigned int o)
{
	CHECK(!(o & ~b->offloads));
	return 0;
}

static void fb_close(struct net_backend *b)
{
	(void)b;
}

static const struct net_backend_ops fb_ops = {
	.send = fb_send, .recv = fb_recv, .set_offloads = fb_set_offloads, .close = fb_close,
};

/* ---- the driver ---- */

/* What the transport does at FEATURES_OK, queue enable and DRIVER_OK. */
static void start(struct fuzz *f, const uint8_t *qlog)
{
	struct virtio_dev *v = &f->net.vdev;

	v->driver_features = (f->features & v->features) | VIRTIO_BIT(VIRTIO_F_VERSION_1);
	for (unsigned int q = 0; q < 3; q++) {
		struct virtio_queue *vq = &v->queues[q];
		/* each queue its own 8 KiB: table 1 KiB, avail, used */
		uint64_t base = 0x2000ULL * q;

		vq->vq = (struct virtq){
			.mem = &f->mem, .size = 1 << (qlog[q] % 7), .desc_gpa = base,
			.avail_gpa = base + 0x400, .used_gpa = base + 0x800,
			.event_idx = f->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
			.indirect = f->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC),
		};
		vq->enabled = !virtq_init(&vq->vq);
	}
	v->ops->activate(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz *f;
	const uint8_t *script;

	if (size < HDR)
		return 0;
	f = calloc(1, sizeof(*f));
	CHECK(f);
	f->ram = calloc(1, RAM);
	CHECK(f->ram);
	memcpy(&f->features, data, 8);
	memcpy(f->ram, data + HDR, MIN(size - HDR, (size_t)RAM));
	f->mem.regions[0] = (struct mem_region){ .gpa = 0, .size = RAM, .hva = f->ram };
	f->mem.nr = 1;
	f->mem.ram_size = RAM;
	/* frames come from the upper half of RAM's image, as the input gave it */
	f->frames = data + HDR + RAM / 2;
	f->frames_len = size > HDR + RAM / 2 ? size - HDR - RAM / 2 : 0;

	f->nb = (struct net_backend){ .ops = &fb_ops, .fd = -1, .offloads = data[8] & 0x1f };
	CHECK(!virtio_net_init(&f->net, &f->nb, NULL, (const uint8_t[]){ 0x52, 0x54, 0, 1, 2, 3 },
			       1500));
	for (unsigned int q = 0; q < 3; q++)
		pthread_mutex_init(&f->net.vdev.queues[q].lock, NULL);
	f->net.vdev.mem = &f->mem;
	for (unsigned int q = 0; q < 3; q++)
		f->net.vdev.queues[q].kick.fd = -1;
	start(f, data + 9);

	script = data + 12;
	for (unsigned int i = 0; i < 32; i++) {
		uint8_t op = script[i];

		switch (op % 8) {
		case 0: case 1: case 2:
			f->net.vdev.ops->queue_notify(&f->net.vdev, op % 8);
			break;
		case 3: case 4:
			/* the backend has op / 8 % 4 + 1 frames for us */
			f->to_deliver = op / 8 % 4 + 1;
			f->net.be_ev.fn(&f->net.be_ev, 1);
			break;
		case 5:
			virtio_net_set_link(&f->net, op & 8);
			break;
		case 6:
			virtio_net_announce(&f->net);
			break;
		case 7:
			f->net.vdev.ops->reset(&f->net.vdev);
			f->needs_reset = false;
			start(f, data + 9);
			break;
		}
	}
	f->net.vdev.ops->reset(&f->net.vdev);
	virtio_net_destroy(&f->net);
	for (unsigned int q = 0; q < 3; q++)
		pthread_mutex_destroy(&f->net.vdev.queues[q].lock);
	free(f->ram);
	free(f);
	return 0;
}
