// SPDX-License-Identifier: MIT
/*
 * The user-mode backend (net/slirp.c) without a guest: the test plays the
 * guest's NIC, sending frames built by hand through ops->send and reading
 * slirp's answers from backend->fd, as virtio/net.c does. DHCP (RFC 2131,
 * RFC 2132 options) and ARP (RFC 826) against slirp's virtual gateway,
 * hostfwd= (a connection from the host comes out as a TCP SYN to the
 * guest), a host port in use, and garbage.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/netopts.h"
#include "net/slirp.h"
#include "tests/unit/unit.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define BOOTP_LEN 548 /* 236 fixed, then the 312-byte options field */
#define BOOTP_OPTS 236
#define FRAME_MAX (NET_HDR_LEN + 65536 + 4096) /* what virtio/net.c reads into */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static struct net_config nc; /* big: PATH_MAX strings */
static char err[NET_ERR_MAX + 64];
static uint8_t frame[FRAME_MAX];

static struct net_backend *open_user(const char *opts)
{
	struct net_backend *be = NULL;

	net_config_init(&nc);
	ck_assert_msg(!net_parse_netdev(&nc, opts, err, sizeof(err)), "%s: %s", opts, err);
	ck_assert_msg(!usernet_open(&nc.netdevs[0], &be, err, sizeof(err)), "%s: %s", opts, err);
	ck_assert_ptr_nonnull(be);
	ck_assert_int_ge(be->fd, 0);
	ck_assert_uint_eq(be->offloads, 0);
	return be;
}

/* A frame as the NIC sends it: an all-zero header, then the frame. */
static ssize_t send_frame(struct net_backend *be, const void *f, size_t len)
{
	static const uint8_t hdr[NET_HDR_LEN];
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)f, .iov_len = len },
	};

	return be->ops->send(be, iov, 2);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next frame from slirp within ms milliseconds, as the NIC reads it:
 * returns the frame (past the header, which must be all zero) and sets
 * *len, or NULL if none came.
 */
static const uint8_t *recv_frame(struct net_backend *be, int ms, size_t *len)
{
	static const uint8_t zero[NET_HDR_LEN];
	int64_t until = now_ms() + ms;
	struct pollfd p = { .fd = be->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		n = be->ops->recv(be, frame, sizeof(frame));
		if (n >= 0) {
			ck_assert_int_ge(n, NET_HDR_LEN + ETH_HLEN);
			ck_assert_mem_eq(frame, zero, NET_HDR_LEN);
			*len = n - NET_HDR_LEN;
			return frame + NET_HDR_LEN;
		}
		ck_assert_int_eq(n, -EAGAIN);
		if (now_ms() >= until || poll(&p, 1, (int)(until - now_ms())) <= 0)
			return NULL;
	}
}

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, type);
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i += 2)
		sum += get16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An IPv4 header with its checksum, for a UDP datagram of payload bytes. */
static void ipv4_udp(uint8_t *ip, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
		     size_t payload)
{
	uint8_t *udp = ip + 20;

	memset(ip, 0, 28);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(28 + payload));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, ip_csum(ip, 20));
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)(8 + payload));
	/* checksum 0: none, which IPv4 allows */
}

/* Ethernet, IPv4, UDP 68 -> 67, BOOTP with the magic cookie and option 53. */
static size_t dhcp_discover(uint8_t *f, uint32_t xid)
{
	uint8_t *bp = f + ETH_HLEN + 28;

	memset(f, 0, ETH_HLEN + 28 + BOOTP_LEN);
	eth_header(f, bcast, ETH_P_IP);
	ipv4_udp(f + ETH_HLEN, 0, 0xffffffff, 68, 67, BOOTP_LEN);
	bp[0] = 1;              /* BOOTREQUEST */
	bp[1] = 1;              /* Ethernet */
	bp[2] = 6;
	put32(bp + 4, xid);
	memcpy(bp + 28, guest_mac, 6);
	put32(bp + BOOTP_OPTS, 0x63825363);
	bp[BOOTP_OPTS + 4] = 53; /* DHCP message type: DISCOVER */
	bp[BOOTP_OPTS + 5] = 1;
	bp[BOOTP_OPTS + 6] = 1;
	bp[BOOTP_OPTS + 7] = 255;
	return ETH_HLEN + 28 + BOOTP_LEN;
}

static size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t *dst_mac, uint32_t spa,
			uint32_t tpa)
{
	uint8_t *a = f + ETH_HLEN;

	memset(f, 0, ETH_HLEN + 28);
	eth_header(f, dst_mac, ETH_P_ARP);
	put16(a, 1);
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, guest_mac, 6);
	put32(a + 14, spa);
	if (op == 2)
		memcpy(a + 18, dst_mac, 6);
	put32(a + 24, tpa);
	return ETH_HLEN + 28;
}

/* An option's value in a BOOTP reply's options, or NULL. */
static const uint8_t *dhcp_opt(const uint8_t *bp, size_t len, uint8_t code, uint8_t *olen)
{
	size_t i = BOOTP_OPTS + 4;

	while (i < len && bp[i] != 255) {
		if (bp[i] == 0) {
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + bp[i + 1] > len)
			return NULL;
		if (bp[i] == code) {
			*olen = bp[i + 1];
			return bp + i + 2;
		}
		i += 2 + bp[i + 1];
	}
	return NULL;
}

/* Waits for a BOOTP reply to xid; returns the BOOTP part. */
static const uint8_t *wait_bootp_reply(struct net_backend *be, uint32_t xid, size_t *bplen)
{
	const uint8_t *f;
	size_t len;

	while ((f = recv_frame(be, 3000, &len))) {
		const uint8_t *ip = f + ETH_HLEN, *bp = ip + 28;

		if (get16(f + 12) != ETH_P_IP || ip[9] != 17 || get16(ip + 22) != 68 ||
		    len < ETH_HLEN + 28 + BOOTP_OPTS + 4 || bp[0] != 2 || get32(bp + 4) != xid)
			continue;
		/* to us, or broadcast: we have no address yet (RFC 2131 §4.1) */
		ck_assert(!memcmp(f, guest_mac, 6) || !memcmp(f, bcast, 6));
		ck_assert_uint_eq(get32(bp + BOOTP_OPTS), 0x63825363);
		*bplen = len - ETH_HLEN - 28;
		return bp;
	}
	return NULL;
}

static void check_addr_opt(const uint8_t *bp, size_t len, uint8_t code, uint32_t want)
{
	const uint8_t *v;
	uint8_t olen = 0;

	v = dhcp_opt(bp, len, code, &olen);
	ck_assert_msg(v != NULL, "option %u missing", code);
	ck_assert_uint_ge(olen, 4);
	ck_assert_uint_eq(get32(v), want);
}

/* DISCOVER -> OFFER: the offer's BOOTP part and its length. */
static const uint8_t *dhcp_exchange(struct net_backend *be, uint32_t xid, size_t *len)
{
	uint8_t f[ETH_HLEN + 28 + BOOTP_LEN];
	const uint8_t *bp, *t;
	size_t n = dhcp_discover(f, xid);
	uint8_t olen;

	ck_assert_int_eq(send_frame(be, f, n), (ssize_t)(NET_HDR_LEN + n));
	bp = wait_bootp_reply(be, xid, len);
	ck_assert_msg(bp != NULL, "no DHCPOFFER");
	t = dhcp_opt(bp, *len, 53, &olen);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t[0], 2); /* DHCPOFFER */
	return bp;
}

START_TEST(dhcp_offer)
{
	struct net_backend *be = open_user("user,id=n0");
	const uint8_t *bp;
	size_t len;

	bp = dhcp_exchange(be, 0xcafe0001, &len);
	ck_assert_uint_eq(get32(bp + 16), 0x0a00020f); /* yiaddr 10.0.2.15 */
	check_addr_opt(bp, len, 54, 0x0a000202);       /* server id */
	check_addr_opt(bp, len, 3, 0x0a000202);        /* router */
	check_addr_opt(bp, len, 6, 0x0a000203);        /* DNS */
	check_addr_opt(bp, len, 1, 0xffffff00);        /* netmask */
	be->ops->close(be);
}
END_TEST

/* net=, dns=, dhcpstart= and hostname= reach what DHCP hands out. */
START_TEST(dhcp_custom_net)
{
	struct net_backend *be = open_user("user,id=n0,net=192.168.76.0/24,dhcpstart=192.168.76.9,"
					   "dns=192.168.76.53,hostname=testbox");
	const uint8_t *bp, *v;
	uint8_t olen = 0;
	size_t len;

	bp = dhcp_exchange(be, 7, &len);
	ck_assert_uint_eq(get32(bp + 16), 0xc0a84c09);
	check_addr_opt(bp, len, 3, 0xc0a84c02);
	check_addr_opt(bp, len, 6, 0xc0a84c35);
	v = dhcp_opt(bp, len, 12, &olen);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(olen, 7);
	ck_assert_mem_eq(v, "testbox", 7);
	be->ops->close(be);
}
END_TEST

START_TEST(arp_gateway)
{
	struct net_backend *be = open_user("user,id=n0");
	const uint8_t *f, *a;
	size_t len;

	ck_assert_int_gt(send_frame(be, frame, arp_frame(frame, 1, bcast, 0x0a00020f, 0x0a000202)),
			 0);
	while ((f = recv_frame(be, 3000, &len))) {
		if (get16(f + 12) == ETH_P_ARP)
			break;
	}
	ck_assert_msg(f != NULL, "no ARP reply");
	a = f + ETH_HLEN;
	ck_assert_uint_ge(len, ETH_HLEN + 28);
	ck_assert_mem_eq(f, guest_mac, 6);
	ck_assert_uint_eq(get16(a + 6), 2);            /* reply */
	ck_assert_uint_eq(get32(a + 14), 0x0a000202);  /* the gateway is at ... */
	ck_assert_mem_eq(a + 8, f + 6, 6);             /* ... the sender's MAC */
	ck_assert_mem_eq(a + 18, guest_mac, 6);
	ck_assert_uint_eq(get32(a + 24), 0x0a00020f);
	be->ops->close(be);
}
END_TEST

/* A port nobody listens on right now (the kernel's pick, given back). */
static uint16_t free_port(int type)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int s = socket(AF_INET, type, 0);

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	close(s);
	return ntohs(sa.sin_port);
}

/*
 * Waits for slirp to open a TCP connection to the guest: a SYN to
 * 10.0.2.15:port. slirp may first ask who has 10.0.2.15; the test answers.
 */
static bool wait_syn(struct net_backend *be, uint16_t port)
{
	uint8_t reply[ETH_HLEN + 28];
	const uint8_t *f, *ip, *tcp;
	size_t len;

	while ((f = recv_frame(be, 5000, &len))) {
		ip = f + ETH_HLEN;
		if (get16(f + 12) == ETH_P_ARP && get16(ip + 6) == 1 && get32(ip + 24) == 0x0a00020f) {
			arp_frame(reply, 2, ip + 8, 0x0a00020f, get32(ip + 14));
			ck_assert_int_gt(send_frame(be, reply, sizeof(reply)), 0);
			continue;
		}
		if (get16(f + 12) != ETH_P_IP || ip[9] != 6)
			continue;
		tcp = ip + (ip[0] & 0xf) * 4;
		ck_assert_mem_eq(f, guest_mac, 6);
		ck_assert_uint_eq(get32(ip + 16), 0x0a00020f);
		ck_assert_uint_eq(get16(tcp + 2), port);
		ck_assert_uint_eq(tcp[13] & 0x12, 0x02); /* SYN, no ACK */
		return true;
	}
	return false;
}

START_TEST(hostfwd_syn)
{
	uint16_t port = free_port(SOCK_STREAM);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct net_backend *be;
	char opts[96];
	size_t len;
	int s;

	snprintf(opts, sizeof(opts), "user,id=n0,hostfwd=tcp:127.0.0.1:%u-:22", port);
	be = open_user(opts);
	/* the offer is how slirp learns the guest's MAC */
	ck_assert_uint_eq(get32(dhcp_exchange(be, 1, &len) + 16), 0x0a00020f);
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	/* slirp's socket listens in the kernel: connect() completes before slirp sees it */
	ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_msg(wait_syn(be, 22), "no SYN towards 10.0.2.15:22");
	close(s);
	be->ops->close(be);
}
END_TEST

/* Without the DHCP exchange slirp has to ARP for the guest first. */
START_TEST(hostfwd_arps_for_guest)
{
	uint16_t port = free_port(SOCK_STREAM);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct net_backend *be;
	char opts[96];
	int s;

	snprintf(opts, sizeof(opts), "user,id=n0,hostfwd=:127.0.0.1:%u-10.0.2.15:2222", port);
	be = open_user(opts);
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_msg(wait_syn(be, 2222), "no SYN towards 10.0.2.15:2222");
	close(s);
	be->ops->close(be);
}
END_TEST

START_TEST(hostfwd_port_in_use)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct net_backend *be = NULL;
	char opts[128];
	int s = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s, 1), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	/* a good forward first: the failure must undo it too (ASan: no leak) */
	snprintf(opts, sizeof(opts), "user,id=n0,hostfwd=udp:127.0.0.1:%u-:53,"
		 "hostfwd=tcp:127.0.0.1:%u-:22", free_port(SOCK_DGRAM), ntohs(sa.sin_port));
	net_config_init(&nc);
	ck_assert_int_eq(net_parse_netdev(&nc, opts, err, sizeof(err)), 0);
	ck_assert_int_eq(usernet_open(&nc.netdevs[0], &be, err, sizeof(err)), -EADDRINUSE);
	ck_assert_ptr_null(be);
	snprintf(opts, sizeof(opts), "hostfwd=tcp:127.0.0.1:%u-10.0.2.15:22: cannot listen on "
		 "host port %u: Address already in use", ntohs(sa.sin_port), ntohs(sa.sin_port));
	ck_assert_str_eq(err, opts);
	close(s);
}
END_TEST

/* The NIC's side of send(): wrong sizes and offload headers are refused. */
START_TEST(send_refuses)
{
	struct net_backend *be = open_user("user,id=n0,ipv6=off");
	uint8_t hdr[NET_HDR_LEN] = { 0 };
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = frame, .iov_len = 60 },
	};

	memset(frame, 0, sizeof(frame));
	ck_assert_int_eq(be->ops->send(be, iov, 0), -EMSGSIZE);
	iov[1].iov_len = ETH_HLEN - 1;
	ck_assert_int_eq(be->ops->send(be, iov, 2), -EMSGSIZE);
	iov[1].iov_len = ETH_HLEN + 65536;
	ck_assert_int_eq(be->ops->send(be, iov, 2), -EMSGSIZE);
	iov[1].iov_len = 60;
	hdr[0] = 1; /* NEEDS_CSUM */
	ck_assert_int_eq(be->ops->send(be, iov, 2), -EINVAL);
	hdr[0] = 0;
	hdr[1] = 1; /* GSO_TCPV4 */
	ck_assert_int_eq(be->ops->send(be, iov, 2), -EINVAL);
	hdr[1] = 0;
	ck_assert_int_eq(be->ops->send(be, iov, 2), NET_HDR_LEN + 60);
	ck_assert_int_eq(be->ops->set_offloads(be, 0), 0);
	ck_assert_int_eq(be->ops->set_offloads(be, NET_OFFLOAD_CSUM), -EOPNOTSUPP);
	be->ops->close(be);
}
END_TEST

/* Drains whatever slirp sent, so that the socket never fills. */
static void drain(struct net_backend *be)
{
	while (be->ops->recv(be, frame, sizeof(frame)) > 0)
		;
}

/* The Internet checksum of a pseudo-header sum plus len bytes at p (RFC 1071). */
static uint16_t l4_csum(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void random_bytes(uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		p[k] = random();
}

/* A valid IPv4 header to 10.0.2.x, a random protocol, a checksummed TCP or UDP body. */
static size_t garbage_ipv4(uint8_t *f)
{
	static const uint8_t protos[] = { 1, 6, 17, 2, 47 };
	size_t n = ETH_HLEN + 40 + random() % 1400, l4 = n - ETH_HLEN - 20;
	uint8_t *ip = f + ETH_HLEN, *p = ip + 20;
	uint32_t sum;

	eth_header(f, bcast, ETH_P_IP);
	ipv4_udp(ip, 0x0a00020f, 0x0a000200 | (random() % 4 ? 2 + random() % 2 : random() & 0xff),
		 random(), random(), l4 - 8);
	random_bytes(p + 4, l4 - 4);
	ip[9] = protos[random() % sizeof(protos)];
	ip[6] = random() % 4 ? 0x40 : random(); /* DF, or fragments of any kind */
	ip[7] = random() % 4 ? 0 : random();
	put16(ip + 10, 0);
	put16(ip + 10, ip_csum(ip, 20));
	if (ip[9] == 6)
		p[12] = 0x50; /* a 20-byte TCP header, random flags */
	if (ip[9] == 6 || ip[9] == 17) {
		put16(p + (ip[9] == 6 ? 16 : 6), 0);
		sum = get16(ip + 12) + get16(ip + 14) + get16(ip + 16) + get16(ip + 18) + ip[9] + l4;
		put16(p + (ip[9] == 6 ? 16 : 6), l4_csum(sum, p, l4));
	}
	return n;
}

/* IPv6 to slirp's fec0::2 (or ::3): ICMPv6 (NDP among it), UDP, TCP or extension headers. */
static size_t garbage_ipv6(uint8_t *f)
{
	static const uint8_t next[] = { 58, 58, 17, 6, 0, 43, 44, 60 };
	size_t l4 = 8 + random() % 1200;
	uint8_t *ip = f + ETH_HLEN, *p = ip + 40;
	uint32_t sum = 0;

	eth_header(f, bcast, 0x86dd);
	memset(ip, 0, 40);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)l4);
	ip[6] = next[random() % sizeof(next)];
	ip[7] = 255;
	ip[8] = 0xfe;
	ip[9] = 0xc0;
	ip[23] = 0x0f;
	ip[24] = 0xfe;
	ip[25] = 0xc0;
	ip[39] = 2 + random() % 2;
	random_bytes(p, l4);
	if (ip[6] == 58)
		p[0] = 128 + random() % 10; /* echo, router and neighbor discovery */
	if (ip[6] == 58 || ip[6] == 17) {
		put16(p + (ip[6] == 58 ? 2 : 6), 0);
		for (int i = 8; i < 40; i += 2)
			sum += get16(ip + i);
		sum += l4 + ip[6];
		put16(p + (ip[6] == 58 ? 2 : 6), l4_csum(sum, p, l4));
	}
	return ETH_HLEN + 40 + l4;
}

/* One frame of garbage of kind k. */
static size_t garbage_frame(uint8_t *f, size_t size, int k)
{
	size_t n;

	switch (k) {
	case 0: /* anything at all */
		n = random() % size;
		random_bytes(f, n);
		return n;
	case 1: /* DHCP with a scrambled BOOTP body, cut anywhere */
		n = dhcp_discover(f, random());
		for (int i = 0; i < 40; i++)
			f[ETH_HLEN + 28 + random() % BOOTP_LEN] = random();
		n -= random() % (BOOTP_LEN - 1);
		put16(f + ETH_HLEN + 2, (uint16_t)(n - ETH_HLEN));
		put16(f + ETH_HLEN + 10, 0);
		put16(f + ETH_HLEN + 10, ip_csum(f + ETH_HLEN, 20));
		put16(f + ETH_HLEN + 24, (uint16_t)(n - ETH_HLEN - 20));
		return n;
	case 2: /* ARP with random fields */
		n = arp_frame(f, random() % 4, bcast, random(), random());
		for (int i = 0; i < 6; i++)
			f[ETH_HLEN + random() % 28] = random();
		return n;
	case 3:
		return garbage_ipv4(f);
	default:
		return garbage_ipv6(f);
	}
}

/*
 * 2000 frames of garbage: random bytes, and frames well-formed up to some
 * layer (DHCP, ARP, IPv4 with TCP/UDP/ICMP and fragments, IPv6 with NDP)
 * with random bytes past it. slirp must survive them (under ASan without
 * a complaint) and still answer ARP. restrict=on: nothing the garbage asks
 * for may leave the host.
 */
START_TEST(garbage)
{
	struct net_backend *be = open_user("user,id=n0,restrict=on");
	uint8_t f[2048];
	const uint8_t *r;
	size_t len;

	srandom(1);
	for (int i = 0; i < 2000; i++) {
		/* too short is refused by send(); anything else goes */
		send_frame(be, f, garbage_frame(f, sizeof(f), i % 6));
		if (i % 50 == 0)
			drain(be);
	}
	drain(be);
	ck_assert_int_gt(send_frame(be, f, arp_frame(f, 1, bcast, 0x0a00020f, 0x0a000202)), 0);
	while ((r = recv_frame(be, 3000, &len)))
		if (get16(r + 12) == ETH_P_ARP && get16(r + ETH_HLEN + 6) == 2)
			break;
	ck_assert_msg(r != NULL, "no ARP reply after the garbage");
	be->ops->close(be);
}
END_TEST

/*
 * libslirp 4.7.0 (Debian 12) writes through a pointer from the payload
 * when a last fragment (MF clear, offset not 0) opens a reassembly; the
 * backend keeps IPv4 fragments away from it.
 */
START_TEST(lone_last_fragment)
{
	struct net_backend *be = open_user("user,id=n0");
	uint8_t f[ETH_HLEN + 28 + 64];
	const uint8_t *r;
	size_t len;

	eth_header(f, bcast, ETH_P_IP);
	ipv4_udp(f + ETH_HLEN, 0x0a00020f, 0x0a000202, 1234, 5678, 64);
	memset(f + ETH_HLEN + 20, 0x41, 8 + 64); /* a "pointer" of 0x4141... */
	put16(f + ETH_HLEN + 6, 0x000d);         /* offset 104, MF clear */
	put16(f + ETH_HLEN + 10, 0);
	put16(f + ETH_HLEN + 10, ip_csum(f + ETH_HLEN, 20));
	ck_assert_int_gt(send_frame(be, f, sizeof(f)), 0);
	ck_assert_int_gt(send_frame(be, f, arp_frame(f, 1, bcast, 0x0a00020f, 0x0a000202)), 0);
	while ((r = recv_frame(be, 3000, &len)))
		if (get16(r + 12) == ETH_P_ARP)
			break;
	ck_assert_msg(r != NULL, "no ARP reply after the fragment");
	be->ops->close(be);
}
END_TEST

/* Open and close in a row: the thread, its sockets and timers all go. */
START_TEST(open_close)
{
	for (int i = 0; i < 20; i++) {
		struct net_backend *be = open_user(i % 2 ? "user,id=n0" : "user,id=n0,ipv6=off");

		if (i % 3 == 0)
			send_frame(be, frame, arp_frame(frame, 1, bcast, 0x0a00020f, 0x0a000202));
		be->ops->close(be);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("slirp");
	TCase *tc = tcase_create("core");

	signal(SIGPIPE, SIG_IGN); /* as minivm does: slirp writes to sockets */
	tcase_add_test(tc, dhcp_offer);
	tcase_add_test(tc, dhcp_custom_net);
	tcase_add_test(tc, arp_gateway);
	tcase_add_test(tc, hostfwd_syn);
	tcase_add_test(tc, hostfwd_arps_for_guest);
	tcase_add_test(tc, hostfwd_port_in_use);
	tcase_add_test(tc, send_refuses);
	tcase_add_test(tc, garbage);
	tcase_add_test(tc, lone_last_fragment);
	tcase_add_test(tc, open_close);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
