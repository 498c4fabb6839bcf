// SPDX-License-Identifier: MIT
/*
 * vnet-attack: a bare-metal guest that attacks minivm's virtio-net device.
 * minivm's rule is that the guest is the attacker: whatever a driver
 * writes into its rings or the device's registers, the device must either
 * refuse the request (return it unused, drop the frame) or stop and set
 * DEVICE_NEEDS_RESET (virtio 1.x §2.1.2), never touch memory outside guest
 * RAM, never crash or hang minivm; and a reset by the driver (§3.1.1,
 * §4.1.4.3.2) must bring it back.
 *
 * After a correct initialization and one frame sent (vnet-driver.c), each
 * case breaks one rule of the specification, reports what the device did,
 * resets the device, initializes it again and sends a frame again:
 *
 *   vnet-attack: case 8 chain-loop: needs_reset; after reset: tx ok
 *
 * What the device can do about a request:
 *   needs_reset  device_status has NEEDS_RESET (0x40): it gave up on the
 *                queue until the driver resets it;
 *   used         the chain came back in the used ring;
 *   sent/dropped the chain came back, and the ARP request in it did or
 *                did not get a reply (it was or was not passed on);
 *   ignored      nothing happened, and the device still works untouched.
 *
 * "tx ok" means more than a used entry: the ARP request it sent got its
 * reply ("10.0.2.2 is at ..."), from slirp's gateway or from the host
 * side of a TAP, so the frame went all the way out and back.
 *
 * The attacks follow the spec's sections: descriptors and chains
 * (§2.7.5, §2.7.5.3 indirect), the available ring (§2.7.6), the network
 * header (§5.1.6.2), the rx buffers (§5.1.6.3), the control queue
 * (§5.1.6.5), queue setup and device status (§4.1.4.3), the doorbells
 * (§4.1.4.4), and junk in every register block of the BARs.
 */
#include "vnet.h"

void teach_main(void);

/* What every case starts from: a 1.x device with its MAC address. */
#define BASE (FBIT(F_VERSION_1) | FBIT(F_MAC))

/* ---- reporting ---- */

/* The outcome of a case, built up here (the line is printed in one go). */
static char out[160];
static unsigned int out_len;

static void out_reset(void)
{
	out_len = 0;
	out[0] = '\0';
}

static void out_add(const char *s)
{
	while (*s && out_len < sizeof(out) - 1)
		out[out_len++] = *s++;
	out[out_len] = '\0';
}

static void out_num(uint64_t v, bool hex)
{
	char buf[24];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[hex ? v & 15 : v % 10];
		v = hex ? v >> 4 : v / 10;
	} while (v);
	if (hex) {
		buf[--i] = 'x';
		buf[--i] = '0';
	}
	out_add(&buf[i]);
}

static const char *r_name(unsigned int r)
{
	switch (r) {
	case R_USED:
		return "used";
	case R_NEEDS_RESET:
		return "needs_reset";
	case R_USED | R_NEEDS_RESET:
		return "used+needs_reset";
	default:
		return "nothing within 2 s (neither used nor needs_reset)";
	}
}

/* ---- building requests ---- */

static void set_desc(unsigned int q, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	vnet.q[q].desc[i] = (struct vring_desc){
		.addr = addr, .len = len, .flags = flags, .next = next,
	};
}

/* Makes chain 0 available on q and waits for the verdict. */
static const char *kick(unsigned int q)
{
	vq_kick(q, 0);
	return r_name(vq_wait(q, WAIT_US, NULL));
}

/*
 * A tx request holding an ARP request: sent (a reply came) or dropped?
 * Rather than wait for a reply that may never come, send a correct ARP
 * request after it and wait for that one's reply: frames and replies keep
 * their order through the backend, so a reply to the first would have
 * come before it.
 */
static const char *frame_verdict(uint32_t sender)
{
	uint32_t s[2] = { sender };
	unsigned int r, seen;

	vq_kick(TXQ, 0);
	r = vq_wait(TXQ, WAIT_US, NULL);
	if (r != R_USED)
		return r_name(r);
	set_desc(TXQ, 0, MEM_TXBUF, build_arp((void *)MEM_TXBUF, &s[1]), 0, 0);
	vq_kick(TXQ, 0);
	if (vq_wait(TXQ, WAIT_US, NULL) != R_USED)
		return "used, but the next correct frame was not";
	seen = wait_arp_replies(s, 2, WAIT_US);
	if (!(seen & 2))
		return "used, but the next correct frame got no reply";
	return seen & 1 ? "sent" : "dropped";
}

/* Sends an ARP request behind the header *h, in one descriptor. */
static const char *tx_with_hdr(const struct net_hdr *h)
{
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender);

	memcpy((void *)MEM_TXBUF, h, sizeof(*h));
	set_desc(TXQ, 0, MEM_TXBUF, len, 0, 0);
	return frame_verdict(sender);
}

/* After a harmless-looking attack: device_status clean and a frame gets out? */
static const char *still_works(const char *what)
{
	const char *err;

	out_reset();
	out_add(what);
	if (vnet_status() & S_NEEDS_RESET) {
		out_add(", then needs_reset");
		return out;
	}
	err = tx_check();
	out_add(err ? ", then " : ", tx still ok");
	if (err)
		out_add(err);
	return out;
}

/* ---- descriptors (§2.7.5) ---- */

static const char *addr_past_ram(void)
{
	set_desc(TXQ, 0, RAM_END, 64, 0, 0);
	return kick(TXQ);
}

static const char *addr_in_mmio_bar(void)
{
	/* the device's own registers: DMA there must not reach them */
	set_desc(TXQ, 0, vnet.bar[0], 64, 0, 0);
	return kick(TXQ);
}

static const char *buf_straddles_ram_end(void)
{
	set_desc(TXQ, 0, RAM_END - 32, 64, 0, 0);
	return kick(TXQ);
}

static const char *addr_len_wraps(void)
{
	set_desc(TXQ, 0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	return kick(TXQ);
}

static const char *len_zero(void)
{
	/* zero bytes are nothing to map, wherever they are */
	set_desc(TXQ, 0, 0xdead00000000ULL, 0, 0, 0);
	return kick(TXQ);
}

static const char *len_zero_in_chain(void)
{
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender);

	set_desc(TXQ, 0, MEM_TXBUF, len, D_NEXT, 1);
	set_desc(TXQ, 1, 0xdead00000000ULL, 0, 0, 0); /* legal: an empty buffer */
	return frame_verdict(sender);
}

static const char *len_4gib(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 0xffffffff, 0, 0);
	return kick(TXQ);
}

static const char *chain_over_4gib(void)
{
	/* 65 x 64 MiB, every one inside RAM (the same 64 MiB): 4.06 GiB */
	for (unsigned int i = 0; i < 65; i++)
		set_desc(TXQ, i, 0, 64 << 20, i < 64 ? D_NEXT : 0, i + 1);
	return kick(TXQ);
}

static const char *chain_loop(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 8, D_NEXT, 1);
	set_desc(TXQ, 1, MEM_TXBUF + 8, 8, D_NEXT, 0);
	return kick(TXQ);
}

static const char *self_loop(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 8, D_NEXT, 0);
	return kick(TXQ);
}

static const char *next_out_of_range(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 8, D_NEXT, vnet.q[TXQ].size);
	return kick(TXQ);
}

static const char *next_ffff(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 8, D_NEXT, 0xffff);
	return kick(TXQ);
}

static const char *write_desc_on_tx(void)
{
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender);

	set_desc(TXQ, 0, MEM_TXBUF, len, D_WRITE, 0);
	return kick(TXQ);
}

static const char *readable_after_writable(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, NET_HDR_LEN, D_WRITE | D_NEXT, 1);
	set_desc(TXQ, 1, MEM_TXBUF + NET_HDR_LEN, 60, 0, 0);
	return kick(TXQ);
}

/* ---- the available ring (§2.7.6) ---- */

static const char *head_out_of_range(void)
{
	vq_kick(TXQ, 300);
	return r_name(vq_wait(TXQ, WAIT_US, NULL));
}

static const char *avail_idx_jump(void)
{
	struct vq *vq = &vnet.q[TXQ];
	uint32_t sender;

	set_desc(TXQ, 0, MEM_TXBUF, build_arp((void *)MEM_TXBUF, &sender), 0, 0);
	/* size + 1 new entries at once: more than the ring can hold */
	vq->avail_idx += vq->size + 1;
	*(volatile uint16_t *)&vq->avail->idx = vq->avail_idx;
	vq_notify(TXQ);
	return r_name(vq_wait(TXQ, WAIT_US, NULL));
}

/* ---- indirect descriptors (§2.7.5.3) ---- */

#define TABLE ((struct vring_desc *)MEM_INDIRECT)
#define TABLE2 ((struct vring_desc *)(MEM_INDIRECT + 0x2000))

static void set_entry(struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	t[i] = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static const char *indirect_ok(void)
{
	/* the control: a correct indirect request, header and frame apart */
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender);

	set_entry(TABLE, 0, MEM_TXBUF, NET_HDR_LEN, D_NEXT, 1);
	set_entry(TABLE, 1, MEM_TXBUF + NET_HDR_LEN, len - NET_HDR_LEN, 0, 0);
	set_desc(TXQ, 0, MEM_INDIRECT, 2 * 16, D_INDIRECT, 0);
	return frame_verdict(sender);
}

static const char *chain_longer_than_queue(void)
{
	/* 200 direct descriptors, then an indirect table of 100 more */
	for (unsigned int i = 0; i < 200; i++)
		set_desc(TXQ, i, MEM_TXBUF, 1, D_NEXT, i + 1);
	set_desc(TXQ, 200, MEM_INDIRECT, 100 * 16, D_INDIRECT, 0);
	for (unsigned int i = 0; i < 100; i++)
		set_entry(TABLE, i, MEM_TXBUF, 1, i < 99 ? D_NEXT : 0, i + 1);
	return kick(TXQ);
}

static const char *indirect_bigger_than_queue(void)
{
	unsigned int n = vnet.q[TXQ].size + 1;

	for (unsigned int i = 0; i < n; i++)
		set_entry(TABLE, i, MEM_TXBUF, 1, i < n - 1 ? D_NEXT : 0, i + 1);
	set_desc(TXQ, 0, MEM_INDIRECT, n * 16, D_INDIRECT, 0);
	return kick(TXQ);
}

static const char *indirect_outside_ram(void)
{
	set_desc(TXQ, 0, RAM_END, 4 * 16, D_INDIRECT, 0);
	return kick(TXQ);
}

static const char *indirect_bad_len(void)
{
	set_entry(TABLE, 0, MEM_TXBUF, 72, 0, 0);
	set_desc(TXQ, 0, MEM_INDIRECT, 24, D_INDIRECT, 0);
	return kick(TXQ);
}

static const char *indirect_nested(void)
{
	set_entry(TABLE2, 0, MEM_TXBUF, 72, 0, 0);
	set_entry(TABLE, 0, (uint64_t)TABLE2, 16, D_INDIRECT, 0);
	set_desc(TXQ, 0, MEM_INDIRECT, 16, D_INDIRECT, 0);
	return kick(TXQ);
}

static const char *indirect_with_next(void)
{
	set_entry(TABLE, 0, MEM_TXBUF, 72, 0, 0);
	set_desc(TXQ, 0, MEM_INDIRECT, 16, D_INDIRECT | D_NEXT, 1);
	set_desc(TXQ, 1, MEM_TXBUF, 8, 0, 0);
	return kick(TXQ);
}

static const char *indirect_loop(void)
{
	set_entry(TABLE, 0, MEM_TXBUF, 8, D_NEXT, 1);
	set_entry(TABLE, 1, MEM_TXBUF, 8, D_NEXT, 0);
	set_desc(TXQ, 0, MEM_INDIRECT, 2 * 16, D_INDIRECT, 0);
	return kick(TXQ);
}

static const char *indirect_next_out_of_table(void)
{
	/* next 5 is a valid index of the queue, not of this 2-entry table */
	set_entry(TABLE, 0, MEM_TXBUF, 8, D_NEXT, 5);
	set_desc(TXQ, 0, MEM_INDIRECT, 2 * 16, D_INDIRECT, 0);
	return kick(TXQ);
}

/* ---- the network header (§5.1.6.2) ---- */

static const char *hdr_short(void)
{
	set_desc(TXQ, 0, MEM_TXBUF, 8, 0, 0);
	return kick(TXQ);
}

static const char *hdr_csum_beyond(void)
{
	struct net_hdr h = { .flags = HDR_F_NEEDS_CSUM, .csum_start = 1000, .csum_offset = 6 };

	return tx_with_hdr(&h);
}

static const char *hdr_csum_just_beyond(void)
{
	/* the 2-byte checksum at 58 + 1 ends one byte past the 60-byte frame */
	struct net_hdr h = { .flags = HDR_F_NEEDS_CSUM, .csum_start = 58, .csum_offset = 1 };

	return tx_with_hdr(&h);
}

static const char *hdr_gso_size_zero(void)
{
	struct net_hdr h = { .gso_type = GSO_TCPV4, .gso_size = 0, .hdr_len = 1000 };

	return tx_with_hdr(&h);
}

static const char *hdr_gso_hdr_len_huge(void)
{
	/* passed on if HOST_TSO4 was negotiated: the backend's kernel judges */
	struct net_hdr h = {
		.flags = HDR_F_NEEDS_CSUM, .gso_type = GSO_TCPV4, .gso_size = 1,
		.hdr_len = 0xffff, .csum_start = 14, .csum_offset = 16,
	};

	return tx_with_hdr(&h);
}

static const char *hdr_bad_gso_type(void)
{
	struct net_hdr h = { .gso_type = 0x7f, .gso_size = 100 };

	return tx_with_hdr(&h);
}

static const char *hdr_device_flags(void)
{
	/* DATA_VALID and RSC_INFO are the device's to set, on rx */
	struct net_hdr h = { .flags = 0x06 };

	return tx_with_hdr(&h);
}

/* Frame bytes at MEM_TXBUF + NET_HDR_LEN, behind a zero header; its length. */
static uint32_t big_frame(uint32_t frame_len)
{
	uint8_t *p = (uint8_t *)MEM_TXBUF;

	memset(p, 0, NET_HDR_LEN + frame_len);
	memset(p + NET_HDR_LEN, 0xff, 6);
	memcpy(p + NET_HDR_LEN + 6, vnet.mac, 6);
	p[NET_HDR_LEN + 12] = 0x88; /* ethertype 0x88b5: local experimental */
	p[NET_HDR_LEN + 13] = 0xb5;
	return NET_HDR_LEN + frame_len;
}

static const char *frame_64k(void)
{
	/* no bigger than the device takes; the backend decides */
	set_desc(TXQ, 0, MEM_TXBUF, big_frame(65536 + 14), 0, 0);
	return kick(TXQ);
}

static const char *frame_too_big(void)
{
	/* 64 KiB of payload + 4 KiB of headers is the most (as QEMU) */
	set_desc(TXQ, 0, MEM_TXBUF, big_frame(65536 + 4096 + 1), 0, 0);
	return kick(TXQ);
}

static uint16_t ip_csum(const uint8_t *h, unsigned int len)
{
	uint32_t sum = 0;

	for (unsigned int i = 0; i < len; i += 2)
		sum += h[i] << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static const char *ipv4_last_fragment_first(void)
{
	/*
	 * Not the device's business but its backend's: a UDP datagram's last
	 * fragment (MF clear, offset 800 bytes), with no fragment before it.
	 * libslirp 4.7 crashes on that; minivm's user networking must not
	 * pass it on (net/slirp.c).
	 */
	uint8_t *f = (uint8_t *)MEM_TXBUF + NET_HDR_LEN, *ip = f + 14;
	uint32_t len = big_frame(14 + 20 + 8 + 32);
	uint16_t sum;

	f[12] = 0x08;
	f[13] = 0x00;
	ip[0] = 0x45;
	ip[3] = 20 + 8 + 32;	/* total length */
	ip[4] = 0x12;		/* identification */
	ip[7] = 100;		/* fragment offset 100 x 8 bytes, MF clear */
	ip[8] = 64;		/* TTL */
	ip[9] = 17;		/* UDP */
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 2, 15 }, 4);
	memcpy(ip + 16, (uint8_t[]){ 10, 0, 2, 2 }, 4);
	sum = ip_csum(ip, 20);
	ip[10] = sum >> 8;
	ip[11] = sum & 0xff;
	set_desc(TXQ, 0, MEM_TXBUF, len, 0, 0);
	return kick(TXQ);
}

/* ---- the rx queue (§5.1.6.3): the device writes, so a frame must come ---- */

/* Posts chain 0 on rx, then makes a frame come: the reply to an ARP request. */
static const char *rx_verdict(void)
{
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender), rlen = 0;
	unsigned int r;

	vq_kick(RXQ, 0);
	set_desc(TXQ, 0, MEM_TXBUF, len, 0, 0);
	vq_kick(TXQ, 0);
	/* (the reply may break rx, and so the device, before we look) */
	if (!(vq_wait(TXQ, WAIT_US, NULL) & R_USED))
		return "the ARP request was not sent";
	r = vq_wait(RXQ, WAIT_US, &rlen);
	if (r != R_USED)
		return r_name(r);
	out_reset();
	out_add("used, ");
	out_num(rlen, false);
	out_add(" bytes");
	return out;
}

static const char *rx_readable(void)
{
	set_desc(RXQ, 0, MEM_RXBUF, RXBUF_LEN, 0, 0);
	return rx_verdict();
}

static const char *rx_smaller_than_hdr(void)
{
	set_desc(RXQ, 0, MEM_RXBUF, 4, D_WRITE, 0);
	return rx_verdict();
}

static const char *rx_outside_ram(void)
{
	set_desc(RXQ, 0, RAM_END, RXBUF_LEN, D_WRITE, 0);
	return rx_verdict();
}

static const char *rx_too_small_for_frame(void)
{
	/* legal: the frame is cut to the 20 bytes, counted as dropped */
	set_desc(RXQ, 0, MEM_RXBUF, 20, D_WRITE, 0);
	return rx_verdict();
}

/*
 * With MRG_RXBUF a frame may take several rx chains (§5.1.6.4), and the
 * header says how many in num_buffers. Small buffers make a frame take
 * many; the device publishes them all at once.
 */
#define SMALL(i) (MEM_RXBUF + 0x2000 + (i) * 0x100)

/* Chains from .. to - 1 of one 8-byte buffer each, made available. */
static void rx_small(unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		set_desc(RXQ, i, SMALL(i), 8, D_WRITE, 0);
		vq_add(RXQ, i);
	}
}

/* Sends an ARP request, for a reply to come; true once it is used. */
static bool make_frame_come(void)
{
	uint32_t sender;

	set_desc(TXQ, 0, MEM_TXBUF, build_arp((void *)MEM_TXBUF, &sender), 0, 0);
	vq_kick(TXQ, 0);
	return vq_wait(TXQ, WAIT_US, NULL) & R_USED;
}

/*
 * Chain 0 holds the 12-byte header (its last byte maybe in a second
 * descriptor), chains 2, 3, ... 8 bytes of frame each. Is the first frame
 * in the used ring what its num_buffers says?
 */
static const char *mrg_check(const uint8_t *nb_hi)
{
	struct vq *vq = &vnet.q[RXQ];
	const uint8_t *h = (const uint8_t *)MEM_RXBUF;
	uint16_t idx = *(volatile uint16_t *)&vq->used->idx;
	uint32_t nb = h[10] | *nb_hi << 8, bytes = 0;

	if (nb < 2 || idx < nb || vq->used->ring[0].id != 0 || vq->used->ring[0].len != 12)
		goto wrong;
	for (uint32_t k = 1; k < nb; k++) {
		uint32_t len = vq->used->ring[k].len;

		if (vq->used->ring[k].id != k + 1 || !len || len > 8 || (len < 8 && k < nb - 1))
			goto wrong;
		bytes += len;
	}
	if (bytes >= 42) /* an ARP reply, at least */
		return "used, num_buffers right";
wrong:
	out_reset();
	out_add("num_buffers ");
	out_num(nb, false);
	out_add(" does not fit the used ring (");
	out_num(idx, false);
	out_add(" entries)");
	return out;
}

static const char *rx_mrg_split_header(void)
{
	/* num_buffers' two bytes in two buffers: 11 bytes, then 1 */
	memset((void *)MEM_RXBUF, 0xee, 0x2000);
	set_desc(RXQ, 0, MEM_RXBUF, 11, D_WRITE | D_NEXT, 1);
	set_desc(RXQ, 1, MEM_RXBUF + 0x1000, 1, D_WRITE, 0);
	vq_add(RXQ, 0);
	rx_small(2, 22);
	vq_notify(RXQ);
	if (!make_frame_come())
		return "the ARP request was not sent";
	if (vq_wait(RXQ, WAIT_US, NULL) != R_USED)
		return "no frame came";
	return mrg_check((const uint8_t *)(MEM_RXBUF + 0x1000));
}

/* The header's chain and one 8-byte one: too little for any frame. */
static bool rx_too_few(void)
{
	set_desc(RXQ, 0, MEM_RXBUF, 12, D_WRITE, 0);
	vq_add(RXQ, 0);
	rx_small(2, 3);
	vq_notify(RXQ);
	return make_frame_come();
}

static const char *rx_mrg_dry_then_refill(void)
{
	/* the ring runs dry half way: the device waits for a kick */
	if (!rx_too_few())
		return "the ARP request was not sent";
	if (vq_wait(RXQ, IDLE_US, NULL))
		return "used before the frame fitted";
	rx_small(3, 22);
	vq_notify(RXQ);
	if (vq_wait(RXQ, WAIT_US, NULL) != R_USED)
		return "nothing after the refill";
	return mrg_check((const uint8_t *)(MEM_RXBUF + 11));
}

static const char *rx_mrg_reset_mid_frame(void)
{
	/* the same, and the reset comes instead of more buffers */
	if (!rx_too_few())
		return "the ARP request was not sent";
	if (vq_wait(RXQ, IDLE_US, NULL))
		return "used before the frame fitted";
	return "waiting for buffers";
}

/* ---- the control queue (§5.1.6.5) ---- */

#define CTRL_RX		0
#define CTRL_MAC	1
#define MAC_TABLE_SET	0

static const char *ack_name(int ack)
{
	out_reset();
	if (ack == -1)
		return vnet_status() & S_NEEDS_RESET ? "needs_reset" : "nothing within 2 s";
	out_add("used, ack ");
	out_add(ack == 0 ? "OK" : ack == 1 ? "ERR" : "not written");
	return out;
}

static const char *ctrl_garbage(void)
{
	return ack_name(ctrl_cmd(0xee, 0x77, "junk!", 5));
}

static const char *ctrl_mac_table_overflow(void)
{
	/* 0xffffffff entries announced, one address given, no second table */
	static const uint8_t d[10] = { 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1 };

	return ack_name(ctrl_cmd(CTRL_MAC, MAC_TABLE_SET, d, sizeof(d)));
}

static const char *ctrl_mac_table_past_end(void)
{
	/* 2 unicast entries, then a multicast table claiming 1000 */
	uint8_t d[4 + 12 + 4 + 6] = { 2, 0, 0, 0 };

	d[16] = 1000 & 0xff;
	d[17] = 1000 >> 8;
	return ack_name(ctrl_cmd(CTRL_MAC, MAC_TABLE_SET, d, sizeof(d)));
}

static const char *ctrl_mac_table_65(void)
{
	/* legal: one more address than the device's table, so it takes all */
	uint8_t *d = (uint8_t *)(MEM_CTRL + 0x2000);
	uint32_t len = 4 + 65 * 6 + 4;

	memset(d, 0, len);
	d[0] = 65;
	for (unsigned int i = 0; i < 65; i++) {
		d[4 + i * 6] = 2; /* locally administered unicast */
		d[4 + i * 6 + 5] = i;
	}
	return ack_name(ctrl_cmd(CTRL_MAC, MAC_TABLE_SET, d, len));
}

static const char *ctrl_too_long(void)
{
	return ack_name(ctrl_cmd(CTRL_RX, 0, (void *)MEM_TXBUF, 4000));
}

static const char *ctrl_one_byte(void)
{
	uint8_t *ack = (uint8_t *)(MEM_CTRL + 0x1000);

	*(uint8_t *)MEM_CTRL = CTRL_RX;
	*ack = 0xee;
	set_desc(CTRLQ, 0, MEM_CTRL, 1, D_NEXT, 1);
	set_desc(CTRLQ, 1, (uint64_t)ack, 1, D_WRITE, 0);
	vq_kick(CTRLQ, 0);
	return ack_name(vq_wait(CTRLQ, WAIT_US, NULL) == R_USED ? *(volatile uint8_t *)ack : -1);
}

static const char *ctrl_no_ack(void)
{
	set_desc(CTRLQ, 0, MEM_CTRL, 8, 0, 0);
	return kick(CTRLQ);
}

/* ---- queue setup (§4.1.4.3) ---- */

static void cc_write64(unsigned int off, uint64_t v)
{
	mmio_write32(vnet.common + off, (uint32_t)v);
	mmio_write32(vnet.common + off + 4, v >> 32);
}

/* Sets up the tx queue with the given size and rings; what did the device say? */
static const char *bad_queue(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	const char *err = vnet_init(BASE, INIT_FEATURES_ONLY);
	uint16_t size_rb, enabled;
	uint8_t st;

	if (err)
		return err;
	mmio_write16(vnet.common + CC_Q_SELECT, TXQ);
	mmio_write16(vnet.common + CC_Q_SIZE, size);
	cc_write64(CC_Q_DESC, desc);
	cc_write64(CC_Q_DRIVER, avail);
	cc_write64(CC_Q_DEVICE, used);
	mmio_write16(vnet.common + CC_Q_ENABLE, 1);
	size_rb = mmio_read16(vnet.common + CC_Q_SIZE);
	enabled = mmio_read16(vnet.common + CC_Q_ENABLE);
	st = vnet_status();
	if (!(st & S_NEEDS_RESET) && enabled) {
		/* accepted: DRIVER_OK must not bring it to life either */
		vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
		st = vnet_status();
	}
	out_reset();
	out_add(st & S_NEEDS_RESET ? "needs_reset" : enabled ? "accepted" : "refused");
	out_add(" (queue_size reads ");
	out_num(size_rb, false);
	out_add(", queue_enable ");
	out_num(enabled, false);
	out_add(")");
	return out;
}

#define RINGS(q) (MEM_RINGS + (q) * 0x10000)

static const char *qsize_not_pow2(void)
{
	return bad_queue(100, RINGS(1), RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qsize_too_big(void)
{
	return bad_queue(512, RINGS(1), RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qsize_zero(void)
{
	return bad_queue(0, RINGS(1), RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qdesc_outside_ram(void)
{
	return bad_queue(256, RAM_END, RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qused_in_mmio(void)
{
	return bad_queue(256, RINGS(1), RINGS(1) + 0x1000, vnet.bar[0]);
}

static const char *qring_straddles_ram_end(void)
{
	/* 256 descriptors from 2 KiB below the end of RAM */
	return bad_queue(256, RAM_END - 0x800, RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qdesc_misaligned(void)
{
	return bad_queue(256, RINGS(1) + 8, RINGS(1) + 0x1000, RINGS(1) + 0x2000);
}

static const char *qchange_while_enabled(void)
{
	uint64_t lo;

	mmio_write16(vnet.common + CC_Q_SELECT, TXQ);
	cc_write64(CC_Q_DESC, RAM_END);
	mmio_write16(vnet.common + CC_Q_SIZE, 2);
	lo = mmio_read32(vnet.common + CC_Q_DESC);
	return still_works(lo == (uint32_t)RINGS(1) ? "ignored (queue_desc unchanged)"
						      : "queue_desc changed");
}

static const char *qenable_after_driver_ok(void)
{
	/* the control queue, not negotiated, enabled late, then kicked */
	uint8_t *ack = (uint8_t *)(MEM_CTRL + 0x1000);
	unsigned int r;

	if (vq_setup(CTRLQ, 64))
		return still_works("refused");
	*(uint8_t *)MEM_CTRL = CTRL_RX;
	*ack = 0xee;
	set_desc(CTRLQ, 0, MEM_CTRL, 3, D_NEXT, 1);
	set_desc(CTRLQ, 1, (uint64_t)ack, 1, D_WRITE, 0);
	vq_kick(CTRLQ, 0);
	r = vq_wait(CTRLQ, IDLE_US, NULL);
	return still_works(r ? r_name(r) : "ignored (enabled, but the kick went nowhere)");
}

/* ---- features and device status (§2.2, §3.1.1) ---- */

static const char *features_ok_verdict(uint64_t f)
{
	/* from a fresh reset: FEATURES_OK once set cannot be taken back */
	if (!vnet_reset())
		return "reset failed";
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER);
	mmio_write32(vnet.common + CC_GFSELECT, 0);
	mmio_write32(vnet.common + CC_GF, (uint32_t)f);
	mmio_write32(vnet.common + CC_GFSELECT, 1);
	mmio_write32(vnet.common + CC_GF, f >> 32);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	return vnet_status() & S_FEATURES_OK ? "accepted" : "refused (FEATURES_OK does not stick)";
}

static const char *features_not_offered(void)
{
	return features_ok_verdict(BASE | FBIT(63) | FBIT(40));
}

static const char *features_without_v1(void)
{
	return features_ok_verdict(FBIT(F_MAC));
}

static const char *driver_ok_without_features_ok(void)
{
	uint32_t sender, len;
	unsigned int r;

	if (!vnet_reset())
		return "reset failed";
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER);
	if (vq_setup(RXQ, QUEUE_MAX) || vq_setup(TXQ, QUEUE_MAX))
		return "refused (queues)";
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_DRIVER_OK);
	len = build_arp((void *)MEM_TXBUF, &sender);
	set_desc(TXQ, 0, MEM_TXBUF, len, 0, 0);
	vq_kick(TXQ, 0);
	r = vq_wait(TXQ, IDLE_US, NULL);
	return r ? r_name(r) : "ignored (the device did not start)";
}

static const char *features_after_driver_ok(void)
{
	/* FEATURES_OK taken back while running, other features, set again */
	uint64_t f = vnet.features | (vnet.offered & FBIT(F_INDIRECT));

	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_DRIVER_OK);
	mmio_write32(vnet.common + CC_GFSELECT, 0);
	mmio_write32(vnet.common + CC_GF, (uint32_t)f);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (vnet_status() & S_NEEDS_RESET)
		return "needs_reset";
	return still_works(vnet_status() & S_FEATURES_OK ? "accepted" : "refused");
}

static const char *driver_ok_twice(void)
{
	/* DRIVER_OK taken back without a reset, then set again */
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (vnet_status() & S_NEEDS_RESET)
		return "needs_reset";
	return still_works("ignored");
}

static const char *driver_sets_needs_reset(void)
{
	/* NEEDS_RESET is the device's to set, not the driver's */
	vnet_set_status(vnet_status() | S_NEEDS_RESET);
	return still_works(vnet_status() & S_NEEDS_RESET ? "needs_reset stuck" : "ignored");
}

static const char *reset_during_tx(void)
{
	/*
	 * Reset with a frame in flight, 10 times: a race, on purpose. (Each
	 * reset and DRIVER_OK costs minivm some ms: it takes its doorbells
	 * off KVM and puts them back.)
	 */
	for (int i = 0; i < 10; i++) {
		uint32_t sender;
		const char *err;

		set_desc(TXQ, 0, MEM_TXBUF, build_arp((void *)MEM_TXBUF, &sender), 0, 0);
		vq_kick(TXQ, 0);
		if (!vnet_reset())
			return "reset failed";
		err = vnet_init(BASE, 0);
		if (err)
			return err;
	}
	return still_works("survived");
}

/* ---- doorbells (§4.1.4.4) ---- */

static const char *notify_q7(void)
{
	mmio_write16(vnet.notify_base + 7 * vnet.notify_mult, 7);
	return still_works("ignored");
}

static const char *notify_qffff(void)
{
	/* queue 0xffff's doorbell lies far past BAR0; and 0xffff as the value */
	mmio_write16(vnet.notify_base + 0xffffULL * vnet.notify_mult, 0xffff);
	mmio_write16(vnet.q[TXQ].notify, 0xffff);
	mmio_write16(vnet.q[RXQ].notify, 0xffff);
	return still_works("ignored");
}

static const char *notify_odd_widths(void)
{
	for (uint64_t off = 0; off < 16; off++) {
		mmio_write8(vnet.notify_base + off, 0xff);
		mmio_write16(vnet.notify_base + off, 0xffff);
		mmio_write32(vnet.notify_base + off, 0xffffffff);
		mmio_write64(vnet.notify_base + off, ~0ULL);
		(void)mmio_read64(vnet.notify_base + off);
	}
	return still_works("ignored");
}

/* ---- junk in the registers ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t junk(void)
{
	/* xorshift64: the same junk every run */
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Every width at every offset in [from, to): writes of junk, and reads. */
static void junk_range(uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a++) {
		mmio_write8(a, junk());
		mmio_write16(a, junk());
		mmio_write32(a, junk());
		mmio_write64(a, junk());
		(void)mmio_read8(a);
		(void)mmio_read16(a);
		(void)mmio_read32(a);
		(void)mmio_read64(a);
	}
}

static const char *junk_common(void)
{
	uint8_t st;

	/* beyond the structure's 0x38 bytes, too */
	junk_range(vnet.common, vnet.common + CC_LEN + 8);
	st = vnet_status();
	out_reset();
	out_add("survived, device_status ");
	out_num(st, true);
	return out;
}

static const char *junk_devcfg(void)
{
	uint8_t mac[6];
	bool same = true;

	junk_range(vnet.devcfg, vnet.devcfg + 0x20);
	for (int i = 0; i < 6; i++) {
		mac[i] = mmio_read8(vnet.devcfg + i);
		same &= mac[i] == vnet.mac[i];
	}
	return still_works(same ? "ignored (MAC unchanged)" : "the MAC changed");
}

static const char *junk_bar0_rest(void)
{
	uint64_t b = vnet.bar[0];

	/* the gaps between the blocks, the ISR, the end of the BAR */
	junk_range(b + 0x38, b + 0x80);
	junk_range(vnet.isr, vnet.isr + 0x10);
	junk_range(vnet.devcfg + 0x20, vnet.devcfg + 0x40);
	junk_range(vnet.notify_base + 0x40, vnet.notify_base + 0x60);
	junk_range(b + 0x3ff0, b + 0x4000); /* the last 8-byte ones cross into BAR1 */
	return still_works("survived");
}

static const char *junk_msix(void)
{
	/* the MSI-X table and PBA (MSI-X stays disabled: no message goes out) */
	if (!vnet.bar[1])
		return "no BAR1";
	junk_range(vnet.bar[1], vnet.bar[1] + 0x40);
	junk_range(vnet.bar[1] + 0x800, vnet.bar[1] + 0x810);
	return still_works("survived");
}

/* ---- the cases ---- */

struct attack {
	const char *name;
	uint64_t features;	/* beyond BASE; with init, set up before the case */
	unsigned int init;	/* INIT_* for that set-up */
	const char *(*run)(void);
};

#define IND FBIT(F_INDIRECT)
#define CTRL (FBIT(F_CTRL_VQ) | FBIT(F_CTRL_RX))
#define OFFL (FBIT(F_CSUM) | FBIT(F_HOST_TSO4))
#define MRG FBIT(F_MRG_RXBUF)

static const struct attack attacks[] = {
	{ "addr-past-ram-end", 0, 0, addr_past_ram },
	{ "addr-in-mmio-bar", 0, 0, addr_in_mmio_bar },
	{ "buffer-straddles-ram-end", 0, 0, buf_straddles_ram_end },
	{ "addr-len-wraps-2^64", 0, 0, addr_len_wraps },
	{ "len-zero", 0, 0, len_zero },
	{ "len-zero-in-chain", 0, 0, len_zero_in_chain },
	{ "len-4gib", 0, 0, len_4gib },
	{ "chain-over-4gib", 0, 0, chain_over_4gib },
	{ "chain-loop", 0, 0, chain_loop },
	{ "self-loop", 0, 0, self_loop },
	{ "next-out-of-range", 0, 0, next_out_of_range },
	{ "next-0xffff", 0, 0, next_ffff },
	{ "tx-device-writable", 0, 0, write_desc_on_tx },
	{ "tx-readable-after-writable", 0, 0, readable_after_writable },
	{ "head-out-of-range", 0, 0, head_out_of_range },
	{ "avail-idx-jump", 0, 0, avail_idx_jump },
	{ "indirect-ok", IND, 0, indirect_ok },
	{ "chain-longer-than-queue", IND, 0, chain_longer_than_queue },
	{ "indirect-bigger-than-queue", IND, 0, indirect_bigger_than_queue },
	{ "indirect-outside-ram", IND, 0, indirect_outside_ram },
	{ "indirect-len-not-16x", IND, 0, indirect_bad_len },
	{ "indirect-nested", IND, 0, indirect_nested },
	{ "indirect-with-next", IND, 0, indirect_with_next },
	{ "indirect-loop", IND, 0, indirect_loop },
	{ "indirect-next-out-of-table", IND, 0, indirect_next_out_of_table },
	{ "indirect-not-negotiated", 0, 0, indirect_ok },
	{ "hdr-shorter-than-header", 0, 0, hdr_short },
	{ "hdr-csum-beyond-frame", OFFL, 0, hdr_csum_beyond },
	{ "hdr-csum-just-beyond-frame", OFFL, 0, hdr_csum_just_beyond },
	{ "hdr-gso-size-zero", OFFL, 0, hdr_gso_size_zero },
	{ "hdr-gso-hdr-len-huge", OFFL, 0, hdr_gso_hdr_len_huge },
	{ "hdr-bad-gso-type", OFFL, 0, hdr_bad_gso_type },
	{ "hdr-device-only-flags", OFFL, 0, hdr_device_flags },
	{ "tx-frame-64k", 0, 0, frame_64k },
	{ "tx-frame-too-big", 0, 0, frame_too_big },
	{ "tx-ipv4-last-fragment-first", 0, 0, ipv4_last_fragment_first },
	{ "rx-device-readable", 0, INIT_NO_RXBUFS, rx_readable },
	{ "rx-smaller-than-header", 0, INIT_NO_RXBUFS, rx_smaller_than_hdr },
	{ "rx-outside-ram", 0, INIT_NO_RXBUFS, rx_outside_ram },
	{ "rx-too-small-for-frame", 0, INIT_NO_RXBUFS, rx_too_small_for_frame },
	{ "rx-mrg-split-header", MRG, INIT_NO_RXBUFS, rx_mrg_split_header },
	{ "rx-mrg-dry-then-refill", MRG, INIT_NO_RXBUFS, rx_mrg_dry_then_refill },
	{ "rx-mrg-reset-mid-frame", MRG, INIT_NO_RXBUFS, rx_mrg_reset_mid_frame },
	{ "ctrl-garbage-class", CTRL, 0, ctrl_garbage },
	{ "ctrl-mac-table-overflow", CTRL, 0, ctrl_mac_table_overflow },
	{ "ctrl-mac-table-past-end", CTRL, 0, ctrl_mac_table_past_end },
	{ "ctrl-mac-table-65", CTRL, 0, ctrl_mac_table_65 },
	{ "ctrl-too-long", CTRL, 0, ctrl_too_long },
	{ "ctrl-one-byte", CTRL, 0, ctrl_one_byte },
	{ "ctrl-no-ack-byte", CTRL, 0, ctrl_no_ack },
	{ "queue-size-not-pow2", 0, 0, qsize_not_pow2 },
	{ "queue-size-too-big", 0, 0, qsize_too_big },
	{ "queue-size-zero", 0, 0, qsize_zero },
	{ "queue-desc-outside-ram", 0, 0, qdesc_outside_ram },
	{ "queue-used-in-mmio", 0, 0, qused_in_mmio },
	{ "queue-ring-straddles-ram-end", 0, 0, qring_straddles_ram_end },
	{ "queue-desc-misaligned", 0, 0, qdesc_misaligned },
	{ "queue-change-while-enabled", 0, 0, qchange_while_enabled },
	{ "queue-enable-after-driver-ok", 0, 0, qenable_after_driver_ok },
	{ "features-not-offered", 0, 0, features_not_offered },
	{ "features-without-version-1", 0, 0, features_without_v1 },
	{ "driver-ok-without-features-ok", 0, 0, driver_ok_without_features_ok },
	{ "features-after-driver-ok", 0, 0, features_after_driver_ok },
	{ "driver-ok-twice", 0, 0, driver_ok_twice },
	{ "driver-sets-needs-reset", 0, 0, driver_sets_needs_reset },
	{ "reset-during-tx", 0, 0, reset_during_tx },
	{ "notify-queue-7", 0, 0, notify_q7 },
	{ "notify-queue-0xffff", 0, 0, notify_qffff },
	{ "notify-odd-widths", 0, 0, notify_odd_widths },
	{ "junk-common-cfg", 0, 0, junk_common },
	{ "junk-device-cfg", 0, 0, junk_devcfg },
	{ "junk-bar0-gaps-isr-end", 0, 0, junk_bar0_rest },
	{ "junk-msix-table", 0, 0, junk_msix },
};

#define NR_ATTACKS (sizeof(attacks) / sizeof(attacks[0]))

static void say(const char *a, const char *b)
{
	con_puts("vnet-attack: ");
	con_puts(a);
	con_puts(b);
	con_puts("\r\n");
}

void teach_main(void)
{
	bool failed = false;
	const char *err;

	memset(&vnet, 0, sizeof(vnet)); /* .bss: a flat binary brings none */
	clock_init();
	map_mmio_window();
	say("mapped 3-4 GiB, the PCI MMIO window, with 2 MiB pages", "");
	if (!vnet_probe()) {
		say("no usable virtio-net device on PCI bus 0", "");
		return;
	}
	con_puts("vnet-attack: virtio-net in PCI slot ");
	put_dec(vnet.dev);
	con_puts(", device ");
	put_hex(vnet.pci_id);
	con_puts(", BAR0 ");
	put_hex(vnet.bar[0]);
	con_puts(": common ");
	put_hex(vnet.common);
	con_puts(", notify ");
	put_hex(vnet.notify_base);
	con_puts(" (x");
	put_dec(vnet.notify_mult);
	con_puts("), ISR ");
	put_hex(vnet.isr);
	con_puts(", device ");
	put_hex(vnet.devcfg);
	con_puts("\r\n");

	err = vnet_init(BASE, INIT_VERBOSE);
	if (!err)
		err = tx_check();
	if (err) {
		say("the correct driver failed: ", err);
		return;
	}
	say("tx ok: the ARP request came back used, and 10.0.2.2 replied", "");

	for (unsigned int i = 0; i < NR_ATTACKS; i++) {
		const struct attack *a = &attacks[i];
		const char *what;

		err = 0;
		if (a->features || a->init)
			err = vnet_init(BASE | a->features, a->init);
		what = err ? err : a->run();
		con_puts("vnet-attack: case ");
		put_dec(i + 1);
		con_puts(" ");
		con_puts(a->name);
		con_puts(": ");
		con_puts(what);
		/* whatever happened: reset, start again, send a frame */
		err = vnet_init(BASE, 0);
		if (!err)
			err = tx_check();
		con_puts("; after reset: ");
		con_puts(err ? err : "tx ok");
		con_puts("\r\n");
		if (err) {
			/* the cases after it would only wait for a dead device */
			failed = true;
			say("stopping: the device did not come back", "");
			break;
		}
	}
	if (!failed) {
		con_puts("vnet-attack: ");
		put_dec(NR_ATTACKS);
		con_puts(" cases, 0 without recovery\r\n");
	}
	say("done, minivm still running", "");
}
