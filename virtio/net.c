// SPDX-License-Identifier: MIT
/*
 * virtio-net, the device side of virtio 1.x §5.1 "Network Device": one
 * receive queue (0), one transmit queue (1) and the control queue (2), over
 * a struct net_backend (a TAP). No multiqueue, no VLAN filter.
 *
 * Every frame in either direction starts with the 12-byte virtio_net_hdr_v1
 * (§5.1.6): checksum and segmentation hints, and on receive num_buffers,
 * the number of rx buffers the frame was spread over (always 1 without
 * MRG_RXBUF). The backend speaks the same header, so frames pass through
 * unchanged apart from the checks below.
 *
 * Transmit: a tx chain is the header and the frame, device-readable, split
 * over descriptors any way the driver likes (§2.7.4: no framing
 * assumptions). The header is copied out and checked; the copy, not the
 * guest's buffer (which the guest may change under us), goes to the
 * backend in front of the frame, in one writev. A header asking for an
 * offload that was not negotiated, or pointing outside the frame, drops
 * the frame: the chain is returned and the guest carries on.
 *
 * Receive: a frame is read from the backend whole into rx.buf (the one
 * copy; the kernel's read needs a buffer as big as the largest frame,
 * which the guest's buffers need not be), then copied into as many rx
 * chains as it takes. When the ring runs dry the device stops watching the
 * backend's fd, so frames wait in the TAP's queue (and the kernel drops
 * them when that is full, as a real NIC would), and it asks the driver for
 * a kick; the kick brings it back.
 *
 * The guest is the attacker: chains come from virtq_pop(), which checks
 * every address against guest RAM. A chain in the wrong direction, an rx
 * buffer too small for the header, or a control command without an ack
 * byte breaks the protocol: DEVICE_NEEDS_RESET, as virtio-blk does.
 *
 * Threads: all queue work and backend reads run on the VM's event loop;
 * activate, reset and config reads on vCPU threads. n->lock serializes
 * them (lock order: transport lock -> n->lock -> queue lock).
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "disk/iov.h"
#include "virtio/net.h"
#include "vmm/log.h"

_Static_assert(sizeof(struct virtio_net_hdr) == NET_HDR_LEN, "virtio_net_hdr_v1");
_Static_assert(offsetof(struct virtio_net_hdr, num_buffers) == 10, "virtio_net_hdr_v1");
_Static_assert(sizeof(struct virtio_net_config) == 12, "virtio_net_config");

#define ETH_HLEN 14
/* Frames handled per wakeup, so that one busy NIC cannot starve the loop. */
#define VNET_BUDGET 256

static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static bool has(const struct virtio_net *n, unsigned int bit)
{
	return n->vdev.driver_features & VIRTIO_BIT(bit);
}

/* ---- queues ---- */

static int vnet_pop(struct virtio_net *n, unsigned int q)
{
	struct virtio_queue *vq = &n->vdev.queues[q];
	int ret;

	pthread_mutex_lock(&vq->lock);
	ret = virtq_pop(&vq->vq, n->chain);
	pthread_mutex_unlock(&vq->lock);
	return ret;
}

/* Returns cnt chains in one go and interrupts the driver if it wants that. */
static void vnet_push(struct virtio_net *n, unsigned int q, const struct virtq_used_elem *e,
		      unsigned int cnt)
{
	struct virtio_queue *vq = &n->vdev.queues[q];
	bool need;

	pthread_mutex_lock(&vq->lock);
	need = !virtq_push_n(&vq->vq, e, cnt) && virtq_needs_interrupt(&vq->vq);
	pthread_mutex_unlock(&vq->lock);
	if (need)
		virtio_notify_queue(&n->vdev, q);
}

static void vnet_set_notify(struct virtio_net *n, unsigned int q, bool on)
{
	struct virtio_queue *vq = &n->vdev.queues[q];

	pthread_mutex_lock(&vq->lock);
	virtq_set_notify(&vq->vq, on);
	pthread_mutex_unlock(&vq->lock);
}

static bool vnet_has_work(struct virtio_net *n, unsigned int q)
{
	struct virtio_queue *vq = &n->vdev.queues[q];
	bool work;

	pthread_mutex_lock(&vq->lock);
	work = virtq_has_work(&vq->vq);
	pthread_mutex_unlock(&vq->lock);
	return work;
}

/*
 * Queues a kick of our own, as if the driver had written the doorbell, so
 * that the rest of the queue is served on a later turn of the event loop.
 */
static void vnet_kick_again(struct virtio_net *n, unsigned int q)
{
	uint64_t one = 1;
	int fd = n->vdev.queues[q].kick.fd;

	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		pr_debug("virtio-net: kick: %s", strerror(errno));
}

/* ---- transmit ---- */

/* Is the driver's header one we may pass on for a frame of len bytes? */
static bool tx_hdr_ok(const struct virtio_net *n, const struct virtio_net_hdr *h, uint64_t len)
{
	unsigned int gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	/* DATA_VALID and RSC_INFO are the device's to set (§5.1.6.2.1) */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint32_t end = (uint32_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2;

		if (!has(n, VIRTIO_NET_F_CSUM) || end > len)
			return false;
	}
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN && !has(n, VIRTIO_NET_F_HOST_ECN))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return !(h->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return has(n, VIRTIO_NET_F_HOST_TSO4) && h->gso_size;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return has(n, VIRTIO_NET_F_HOST_TSO6) && h->gso_size;
	case VIRTIO_NET_HDR_GSO_UDP:
		return has(n, VIRTIO_NET_F_HOST_UFO) && h->gso_size;
	default:
		return false;
	}
}

/* Sends the frame in n->chain; false if it was dropped. */
static bool vnet_tx_one(struct virtio_net *n)
{
	struct virtq_chain *c = n->chain;
	struct iovec iov[VIRTQ_MAX_SEGS + 1];
	struct virtio_net_hdr h;
	size_t skip = NET_HDR_LEN;
	unsigned int i, cnt = 1;
	ssize_t ret;

	if (c->out_len < NET_HDR_LEN + ETH_HLEN || c->out_len > VIRTIO_NET_MAX_FRAME)
		return false;
	iov_copy(c->iov, c->n_out, 0, &h, sizeof(h), false);
	if (!tx_hdr_ok(n, &h, c->out_len - NET_HDR_LEN))
		return false;
	if (!(le16toh(n->config.status) & VIRTIO_NET_S_LINK_UP))
		return false; /* the cable is out */
	h.num_buffers = 0;
	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
	/* the frame: the chain past the header, which may end mid-buffer */
	for (i = 0; i < c->n_out && skip >= c->iov[i].iov_len; i++)
		skip -= c->iov[i].iov_len;
	for (; i < c->n_out; i++, skip = 0) {
		iov[cnt].iov_base = (uint8_t *)c->iov[i].iov_base + skip;
		iov[cnt++].iov_len = c->iov[i].iov_len - skip;
	}
	if (cnt > IOV_MAX)
		return false;
	ret = n->be->ops->send(n->be, iov, cnt);
	if (ret < 0)
		return false;
	n->stats.tx_frames++;
	n->stats.tx_bytes += c->out_len - NET_HDR_LEN;
	return true;
}

static const char *vnet_tx(struct virtio_net *n)
{
	unsigned int budget = VNET_BUDGET;
	bool more;
	int ret = 0;

	if (!n->vdev.queues[VIRTIO_NET_TXQ].enabled)
		return NULL;
	do {
		vnet_set_notify(n, VIRTIO_NET_TXQ, false);
		while (budget && (ret = vnet_pop(n, VIRTIO_NET_TXQ)) > 0) {
			struct virtq_used_elem e = { .id = n->chain->head, .len = 0 };

			if (n->chain->n_in)
				return "device-writable buffer in a tx chain";
			if (!vnet_tx_one(n))
				n->stats.tx_dropped++;
			vnet_push(n, VIRTIO_NET_TXQ, &e, 1);
			budget--;
		}
		if (ret < 0)
			return "malformed tx queue";
		if (!budget) {
			/* more to send: come back through the loop, not in one go */
			vnet_kick_again(n, VIRTIO_NET_TXQ);
			return NULL;
		}
		vnet_set_notify(n, VIRTIO_NET_TXQ, true);
		more = vnet_has_work(n, VIRTIO_NET_TXQ);
	} while (more);
	return NULL;
}

/* ---- receive ---- */

static bool in_table(const uint8_t (*t)[6], unsigned int nr, const uint8_t *mac)
{
	for (unsigned int i = 0; i < nr; i++)
		if (!memcmp(t[i], mac, 6))
			return true;
	return false;
}

/* The receive filter (§5.1.6.5.1-2), on the destination address. */
static bool filter_accepts(const struct virtio_net *n, const uint8_t *dst)
{
	const struct virtio_net_filter *f = &n->filter;

	if (f->promisc)
		return true;
	if (dst[0] & 1) {
		if (!memcmp(dst, broadcast, 6) || f->allmulti || f->multi_overflow)
			return true;
		return in_table(f->multi, f->nr_multi, dst);
	}
	if (!memcmp(dst, n->config.mac, 6) || f->uni_overflow)
		return true;
	return in_table(f->uni, f->nr_uni, dst);
}

/* Host pointer to byte off of a chain's writable part (off < in_len). */
static uint8_t *in_byte(const struct virtq_chain *c, uint64_t off)
{
	for (unsigned int i = c->n_out; i < c->n_out + c->n_in; i++) {
		if (off < c->iov[i].iov_len)
			return (uint8_t *)c->iov[i].iov_base + off;
		off -= c->iov[i].iov_len;
	}
	return NULL;
}

/*
 * Checks and fixes up the header of the frame just read: what the guest
 * did not negotiate it must not see (§5.1.6.4.1: no DATA_VALID without
 * GUEST_CSUM). False: drop the frame.
 */
static bool rx_hdr_fixup(struct virtio_net *n, struct virtio_net_hdr *h)
{
	unsigned int gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (!has(n, VIRTIO_NET_F_GUEST_CSUM))
		h->flags = 0;
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	h->num_buffers = htole16(1);
	if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN && !has(n, VIRTIO_NET_F_GUEST_ECN))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return has(n, VIRTIO_NET_F_GUEST_TSO4);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return has(n, VIRTIO_NET_F_GUEST_TSO6);
	case VIRTIO_NET_HDR_GSO_UDP:
		return has(n, VIRTIO_NET_F_GUEST_UFO);
	default:
		return false;
	}
}

/*
 * Reads the next frame into rx.buf. 1: a frame to deliver; 0: nothing
 * waiting (or only frames to drop, for now); -errno: the backend failed.
 */
static int rx_read(struct virtio_net *n)
{
	struct virtio_net_rx *rx = &n->rx;
	ssize_t len;

	/* frames dropped count against the budget too: come back for more */
	for (unsigned int budget = VNET_BUDGET; budget; budget--) {
		len = n->be->ops->recv(n->be, rx->buf, VIRTIO_NET_MAX_FRAME);
		if (len == -EAGAIN)
			return 0;
		if (len < 0)
			return (int)len;
		if (len < NET_HDR_LEN + ETH_HLEN ||
		    !(le16toh(n->config.status) & VIRTIO_NET_S_LINK_UP) ||
		    !filter_accepts(n, rx->buf + NET_HDR_LEN) ||
		    !rx_hdr_fixup(n, (struct virtio_net_hdr *)rx->buf)) {
			n->stats.rx_dropped++;
			continue;
		}
		rx->len = len;
		rx->done = 0;
		rx->nr_used = 0;
		return 1;
	}
	return 0;
}

/* The frame is complete in the guest: publish all its buffers at once. */
static void rx_finish(struct virtio_net *n)
{
	struct virtio_net_rx *rx = &n->rx;

	/* num_buffers: little-endian, maybe split over two buffers */
	*rx->num_buffers = rx->nr_used & 0xff;
	*rx->num_buffers_hi = rx->nr_used >> 8;
	vnet_push(n, VIRTIO_NET_RXQ, rx->used, rx->nr_used);
	n->stats.rx_frames++;
	n->stats.rx_bytes += rx->len - NET_HDR_LEN;
	rx->len = 0;
}

/*
 * Copies the frame in rx.buf into rx chains. 1: delivered (or dropped);
 * 0: the ring ran dry, come back after a kick; -1: *why broke the protocol.
 */
static int rx_fill(struct virtio_net *n, const char **why)
{
	struct virtio_net_rx *rx = &n->rx;
	bool mrg = has(n, VIRTIO_NET_F_MRG_RXBUF);
	struct virtq_chain *c = n->chain;
	uint32_t len;
	int ret;

	while (rx->done < rx->len) {
		/*
		 * Without MRG_RXBUF a frame gets one buffer; with it, at most
		 * the whole ring. A frame larger than that is cut short (and
		 * counted as dropped): the guest's stack discards it.
		 */
		if (rx->nr_used == n->vdev.queues[VIRTIO_NET_RXQ].vq.size ||
		    (rx->nr_used && !mrg)) {
			n->stats.rx_dropped++;
			break;
		}
		ret = vnet_pop(n, VIRTIO_NET_RXQ);
		if (ret <= 0) {
			*why = ret ? "malformed rx queue" : NULL;
			return ret ? -1 : 0;
		}
		if (c->n_out) {
			*why = "device-readable buffer in an rx chain";
			return -1;
		}
		if (!rx->nr_used) {
			/* §5.1.6.3.1: every rx buffer holds at least the header */
			if (c->in_len < NET_HDR_LEN) {
				*why = "rx buffer smaller than the header";
				return -1;
			}
			rx->num_buffers = in_byte(c, offsetof(struct virtio_net_hdr, num_buffers));
			rx->num_buffers_hi = in_byte(c, offsetof(struct virtio_net_hdr, num_buffers) + 1);
		}
		len = MIN(c->in_len, rx->len - rx->done);
		iov_copy(&c->iov[c->n_out], c->n_in, 0, rx->buf + rx->done, len, true);
		rx->used[rx->nr_used].id = c->head;
		rx->used[rx->nr_used++].len = len;
		rx->done += len;
	}
	rx_finish(n);
	return 1;
}

static void poll_backend(struct virtio_net *n, bool on)
{
	if (on == n->polling || n->be->fd < 0)
		return;
	if (on) {
		n->polling = !evloop_add(n->loop, &n->be_ev, EPOLLIN);
	} else {
		evloop_del(n->loop, &n->be_ev);
		n->polling = false;
	}
}

/*
 * Moves frames from the backend into the guest until the backend has none
 * (keep watching it), the ring runs dry (stop watching, ask for a kick),
 * or the budget is spent (the still-readable fd brings us back).
 */
static const char *vnet_rx(struct virtio_net *n)
{
	const char *why = NULL;
	int ret;

	if (!n->vdev.queues[VIRTIO_NET_RXQ].enabled)
		return NULL;
	for (unsigned int budget = VNET_BUDGET; budget; budget--) {
		if (!n->rx.len) {
			ret = rx_read(n);
			if (ret < 0) {
				pr_warn("network backend %s: %s; no more frames from it",
					n->be->ifname, strerror(-ret));
				poll_backend(n, false);
				return NULL;
			}
			if (!ret)
				break;
		}
		ret = rx_fill(n, &why);
		if (ret < 0)
			return why;
		if (ret)
			continue;
		/* dry: kicks back on, then look again so that none is lost */
		vnet_set_notify(n, VIRTIO_NET_RXQ, true);
		if (vnet_has_work(n, VIRTIO_NET_RXQ))
			continue;
		poll_backend(n, false);
		return NULL;
	}
	vnet_set_notify(n, VIRTIO_NET_RXQ, false); /* we have buffers: no kicks needed */
	poll_backend(n, true);
	return NULL;
}

/*
 * The guest broke the protocol: leave everything alone until it resets
 * the device. The backend's fd goes off the loop too, or its frames,
 * which nobody reads any more, would wake the loop forever.
 */
static void vnet_break(struct virtio_net *n)
{
	n->broken = true;
	poll_backend(n, false);
}

/* Event loop: the backend has a frame. */
static void vnet_backend_ready(struct ev_handler *h, uint32_t events)
{
	struct virtio_net *n = h->ctx;
	const char *why = NULL;

	(void)events;
	pthread_mutex_lock(&n->lock);
	if (n->active && !n->broken && n->polling)
		why = vnet_rx(n);
	if (why)
		vnet_break(n);
	pthread_mutex_unlock(&n->lock);
	if (why)
		virtio_set_needs_reset(&n->vdev, why);
}

/* ---- the control queue ---- */

/* One MAC table (§5.1.6.5.2): le32 entries, then entries * 6 bytes. */
static int mac_table(const uint8_t *p, size_t len, uint8_t (*t)[6], unsigned int *nr,
		     bool *overflow)
{
	uint32_t entries;

	if (len < 4)
		return -1;
	memcpy(&entries, p, 4);
	entries = le32toh(entries);
	if (entries > (len - 4) / 6)
		return -1;
	*overflow = entries > VIRTIO_NET_MAC_TABLE;
	*nr = *overflow ? 0 : entries;
	if (*nr)
		memcpy(t, p + 4, *nr * 6);
	return 4 + entries * 6;
}

static uint8_t ctrl_mac_table_set(struct virtio_net *n, const uint8_t *d, size_t len)
{
	struct virtio_net_filter *f = &n->filter;
	struct virtio_net_filter nf = *f;
	int used, used2;

	used = mac_table(d, len, nf.uni, &nf.nr_uni, &nf.uni_overflow);
	if (used < 0)
		return VIRTIO_NET_ERR;
	used2 = mac_table(d + used, len - used, nf.multi, &nf.nr_multi, &nf.multi_overflow);
	if (used2 < 0 || (size_t)(used + used2) != len)
		return VIRTIO_NET_ERR;
	*f = nf;
	return VIRTIO_NET_OK;
}

static uint8_t vnet_ctrl_cmd(struct virtio_net *n, uint8_t cls, uint8_t cmd, const uint8_t *d,
			     size_t len)
{
	switch (cls) {
	case VIRTIO_NET_CTRL_RX:
		if (!has(n, VIRTIO_NET_F_CTRL_RX) || len != 1)
			return VIRTIO_NET_ERR;
		if (cmd == VIRTIO_NET_CTRL_RX_PROMISC)
			n->filter.promisc = d[0];
		else if (cmd == VIRTIO_NET_CTRL_RX_ALLMULTI)
			n->filter.allmulti = d[0];
		else
			return VIRTIO_NET_ERR;
		return VIRTIO_NET_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET && has(n, VIRTIO_NET_F_CTRL_RX))
			return ctrl_mac_table_set(n, d, len);
		if (cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET && has(n, VIRTIO_NET_F_CTRL_MAC_ADDR) &&
		    len == 6 && !(d[0] & 1)) {
			memcpy(n->config.mac, d, 6);
			return VIRTIO_NET_OK;
		}
		return VIRTIO_NET_ERR;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (!has(n, VIRTIO_NET_F_GUEST_ANNOUNCE) || cmd != VIRTIO_NET_CTRL_ANNOUNCE_ACK ||
		    len)
			return VIRTIO_NET_ERR;
		n->config.status &= ~htole16(VIRTIO_NET_S_ANNOUNCE);
		return VIRTIO_NET_OK;
	default:
		return VIRTIO_NET_ERR;
	}
}

/* Command: class, command, data (device-readable); ack: the last writable byte. */
static const char *vnet_ctrl(struct virtio_net *n)
{
	/* the largest command: a MAC table set with both tables just full */
	uint8_t cmd[2 + 2 * (4 + 6 * (VIRTIO_NET_MAC_TABLE + 1))];
	struct virtq_chain *c = n->chain;
	struct virtq_used_elem e;
	uint8_t ack;
	int ret;

	if (!n->vdev.queues[VIRTIO_NET_CTRLQ].enabled)
		return NULL;
	while ((ret = vnet_pop(n, VIRTIO_NET_CTRLQ)) > 0) {
		if (!c->n_in)
			return "control command without an ack byte";
		ack = VIRTIO_NET_ERR;
		if (c->out_len >= 2 && c->out_len <= sizeof(cmd)) {
			iov_copy(c->iov, c->n_out, 0, cmd, c->out_len, false);
			ack = vnet_ctrl_cmd(n, cmd[0], cmd[1], cmd + 2, c->out_len - 2);
		}
		*in_byte(c, c->in_len - 1) = ack;
		e = (struct virtq_used_elem){ .id = c->head, .len = 1 };
		vnet_push(n, VIRTIO_NET_CTRLQ, &e, 1);
	}
	return ret < 0 ? "malformed control queue" : NULL;
}

/* ---- struct virtio_dev_ops ---- */

/* Event loop thread. */
static void vnet_queue_notify(struct virtio_dev *v, unsigned q)
{
	struct virtio_net *n = v->priv;
	const char *why = NULL;

	pthread_mutex_lock(&n->lock);
	if (!n->active || n->broken)
		goto out;
	if (q == VIRTIO_NET_TXQ)
		why = vnet_tx(n);
	else if (q == VIRTIO_NET_RXQ)
		why = vnet_rx(n); /* buffers came: deliver what waits, watch the backend again */
	else if (q == VIRTIO_NET_CTRLQ)
		why = vnet_ctrl(n);
	if (why)
		vnet_break(n);
out:
	pthread_mutex_unlock(&n->lock);
	if (why)
		virtio_set_needs_reset(v, why);
}

static void vnet_config_read(struct virtio_dev *v, uint64_t off, void *data, unsigned size)
{
	struct virtio_net *n = v->priv;
	const uint8_t *cfg = (const uint8_t *)&n->config;
	uint8_t *out = data;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < size; i++)
		out[i] = off < sizeof(n->config) && i < sizeof(n->config) - off ? cfg[off + i] : 0;
	pthread_mutex_unlock(&n->lock);
}

static void vnet_config_write(struct virtio_dev *v, uint64_t off, const void *data,
			      unsigned size)
{
	/* Read-only for a 1.x driver: the MAC changes through the control queue. */
	(void)v;
	(void)off;
	(void)data;
	(void)size;
}

/* What the guest accepts on receive, as backend offloads. */
static unsigned int guest_offloads(const struct virtio_net *n)
{
	unsigned int o = 0;

	if (has(n, VIRTIO_NET_F_GUEST_CSUM))
		o |= NET_OFFLOAD_CSUM;
	if (has(n, VIRTIO_NET_F_GUEST_TSO4))
		o |= NET_OFFLOAD_TSO4;
	if (has(n, VIRTIO_NET_F_GUEST_TSO6))
		o |= NET_OFFLOAD_TSO6;
	if (has(n, VIRTIO_NET_F_GUEST_ECN))
		o |= NET_OFFLOAD_ECN;
	if (has(n, VIRTIO_NET_F_GUEST_UFO))
		o |= NET_OFFLOAD_UFO;
	return o;
}

static void vnet_filter_reset(struct virtio_net *n)
{
	memset(&n->filter, 0, sizeof(n->filter));
	/*
	 * Promiscuous until the driver says otherwise, as in QEMU: a driver
	 * without CTRL_RX never says, and must see every frame.
	 */
	n->filter.promisc = true;
}

static int vnet_activate(struct virtio_dev *v)
{
	struct virtio_net *n = v->priv;
	int ret;

	pthread_mutex_lock(&n->lock);
	ret = n->be->ops->set_offloads(n->be, guest_offloads(n));
	if (ret)
		pr_debug("network backend %s: offloads: %s", n->be->ifname, strerror(-ret));
	n->broken = false;
	n->rx.len = 0;
	n->active = true;
	if (v->queues[VIRTIO_NET_RXQ].enabled)
		poll_backend(n, true);
	/*
	 * A kick that came between the doorbells going live and now found
	 * the device inactive: have the event loop look at every queue once.
	 */
	for (unsigned int q = 0; q < v->num_queues; q++)
		if (v->queues[q].enabled)
			vnet_kick_again(n, q);
	pthread_mutex_unlock(&n->lock);
	return 0;
}

static void vnet_reset(struct virtio_dev *v)
{
	struct virtio_net *n = v->priv;

	pthread_mutex_lock(&n->lock);
	n->active = false;
	n->broken = false;
	poll_backend(n, false);
	n->rx.len = 0; /* a frame half delivered is lost with the rings */
	vnet_filter_reset(n);
	n->config.status &= ~htole16(VIRTIO_NET_S_ANNOUNCE);
	n->be->ops->set_offloads(n->be, 0);
	pthread_mutex_unlock(&n->lock);
}

static const struct virtio_dev_ops virtio_net_ops = {
	.config_read = vnet_config_read,
	.config_write = vnet_config_write,
	.activate = vnet_activate,
	.reset = vnet_reset,
	.queue_notify = vnet_queue_notify,
};

/* ---- setup and control ---- */

static uint64_t offered(const struct net_backend *be)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
		     VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_MTU) |
		     VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_RX) |
		     VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
		     VIRTIO_BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);

	/* each offload both ways, and only what the backend can do */
	if (!(be->offloads & NET_OFFLOAD_CSUM))
		return f;
	f |= VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
	if (be->offloads & NET_OFFLOAD_TSO4)
		f |= VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
	if (be->offloads & NET_OFFLOAD_TSO6)
		f |= VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
	if (be->offloads & NET_OFFLOAD_ECN)
		f |= VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN);
	if (be->offloads & NET_OFFLOAD_UFO)
		f |= VIRTIO_BIT(VIRTIO_NET_F_HOST_UFO) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_UFO);
	return f;
}

int virtio_net_init(struct virtio_net *n, struct net_backend *be, struct evloop *loop,
		    const uint8_t mac[6], unsigned int mtu)
{
	memset(n, 0, sizeof(*n));
	n->be = be;
	n->loop = loop;
	n->be_ev = (struct ev_handler){ .fd = be->fd, .fn = vnet_backend_ready, .ctx = n };
	memcpy(n->config.mac, mac, 6);
	n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	n->config.max_virtqueue_pairs = htole16(1);
	n->config.mtu = htole16(mtu);
	vnet_filter_reset(n);

	n->vdev.ops = &virtio_net_ops;
	n->vdev.device_id = VIRTIO_ID_NET;
	n->vdev.pci_class = 0x020000; /* network, Ethernet */
	n->vdev.num_queues = 3;
	n->vdev.queue_size = VIRTIO_NET_QUEUE_SIZE;
	n->vdev.config_size = sizeof(n->config);
	n->vdev.features = offered(be);
	n->vdev.priv = n;

	n->chain = malloc(sizeof(*n->chain));
	n->rx.buf = malloc(VIRTIO_NET_MAX_FRAME);
	if (!n->chain || !n->rx.buf) {
		free(n->chain);
		free(n->rx.buf);
		n->chain = NULL;
		n->rx.buf = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n->chain)
		return;
	pthread_mutex_lock(&n->lock);
	poll_backend(n, false);
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_destroy(&n->lock);
	free(n->chain);
	free(n->rx.buf);
	n->chain = NULL;
	n->rx.buf = NULL;
}

void virtio_net_set_link(struct virtio_net *n, bool up)
{
	bool tell;

	pthread_mutex_lock(&n->lock);
	if (up)
		n->config.status |= htole16(VIRTIO_NET_S_LINK_UP);
	else
		n->config.status &= ~htole16(VIRTIO_NET_S_LINK_UP);
	tell = n->active && has(n, VIRTIO_NET_F_STATUS);
	pthread_mutex_unlock(&n->lock);
	if (tell)
		virtio_notify_config(&n->vdev);
}

void virtio_net_announce(struct virtio_net *n)
{
	bool tell;

	pthread_mutex_lock(&n->lock);
	tell = n->active && has(n, VIRTIO_NET_F_GUEST_ANNOUNCE) && has(n, VIRTIO_NET_F_STATUS);
	if (tell)
		n->config.status |= htole16(VIRTIO_NET_S_ANNOUNCE);
	pthread_mutex_unlock(&n->lock);
	if (tell)
		virtio_notify_config(&n->vdev);
}

void virtio_net_get_stats(struct virtio_net *n, struct virtio_net_stats *s)
{
	pthread_mutex_lock(&n->lock);
	*s = n->stats;
	pthread_mutex_unlock(&n->lock);
}

bool virtio_net_link_up(struct virtio_net *n)
{
	bool up;

	pthread_mutex_lock(&n->lock);
	up = n->config.status & htole16(VIRTIO_NET_S_LINK_UP);
	pthread_mutex_unlock(&n->lock);
	return up;
}
