// SPDX-License-Identifier: MIT
/*
 * Parsing of -netdev, -device virtio-net-pci, -nic and -net (net/netopts.h).
 * Every key and value is checked here, so the VM only ever opens backends
 * a valid net_config describes. Items are split as QemuOpts splits them, by
 * vmm/opts.h as -drive is: key=value pairs separated by ',', ",," a literal
 * comma, and the first item may be a bare value (the type: "tap", "nic",
 * "virtio-net-pci").
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "net/netopts.h"
#include "vmm/log.h"
#include "vmm/opts.h"

#define NET_KEY_MAX 32 /* with the NUL */
#define NET_VAL_MAX PATH_MAX

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * The next item of *p (vmm/opts.h): 1 with an item, 0 at the end, -EINVAL
 * (err set) for a key or value too long to hold. A bare item has key "".
 */
static int next_item(const char **p, char key[NET_KEY_MAX], char val[NET_VAL_MAX], char *err,
		     size_t errlen)
{
	const char *item = *p;
	bool has_val;
	int ret;

	ret = opts_next(p, key, NET_KEY_MAX, val, NET_VAL_MAX, &has_val);
	if (ret == -ENAMETOOLONG)
		return fail(err, errlen, "key '%.*s' too long", (int)strcspn(item, "="), item);
	if (ret == -E2BIG)
		return fail(err, errlen, "%s: value too long", key);
	return ret;
}

static int set_str(char *dst, size_t size, const char *key, const char *val, char *err,
		   size_t errlen)
{
	if (strlen(val) >= size)
		return fail(err, errlen, "%s: '%s' is longer than %zu bytes", key, val, size - 1);
	strcpy(dst, val);
	return 0;
}

static int set_id(char *dst, const char *key, const char *val, char *err, size_t errlen)
{
	if (!opts_id_wellformed(val))
		return fail(err, errlen, "%s: '%s' is not an identifier (a letter, then letters, "
			    "digits, '-', '.', '_')", key, val);
	return set_str(dst, NET_ID_MAX + 1, key, val, err, errlen);
}

/* script=no means none, as in QEMU; an empty value is refused. */
static int set_script(char *dst, const char *key, const char *val, char *err, size_t errlen)
{
	if (!*val)
		return fail(err, errlen, "%s: empty (say %s=no for none)", key, key);
	if (!strcmp(val, "no"))
		val = "";
	return set_str(dst, PATH_MAX, key, val, err, errlen);
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	int n = -1;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &n) != 6 || n != 17 || s[n])
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		if (!isxdigit((unsigned char)s[3 * i]) || !isxdigit((unsigned char)s[3 * i + 1]))
			return -EINVAL;
		mac[i] = b[i];
	}
	return 0;
}

static int set_mac(struct nic_opts *o, const char *key, const char *val, char *err,
		   size_t errlen)
{
	if (net_parse_mac(val, o->mac))
		return fail(err, errlen, "%s: '%s' is not a MAC address (xx:xx:xx:xx:xx:xx)", key,
			    val);
	/* a multicast address cannot be a station's own (IEEE 802: bit 0 of byte 0) */
	if (o->mac[0] & 1)
		return fail(err, errlen, "%s: '%s' is a multicast address", key, val);
	o->mac_given = true;
	return 0;
}

static int set_mtu(struct nic_opts *o, const char *key, const char *val, char *err,
		   size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(val, &end, 10);
	/* 68: IPv4's minimum; 65535: what the 16-bit config field holds */
	if (!isdigit((unsigned char)*val) || *end || errno || v < 68 || v > 65535)
		return fail(err, errlen, "%s: '%s' is not an MTU (68 to 65535)", key, val);
	o->mtu = v;
	return 0;
}

/* virtio is all minivm has; QEMU's names for it. */
static int set_model(const char *key, const char *val, char *err, size_t errlen)
{
	if (strcmp(val, "virtio") && strcmp(val, "virtio-net-pci") && strcmp(val, "virtio-net"))
		return fail(err, errlen, "%s: '%s' is not supported (only virtio)", key, val);
	return 0;
}

/* vhost is a kernel data path minivm does not use: only vhost=off means the same. */
static int set_vhost(const char *key, const char *val, char *err, size_t errlen)
{
	if (strcmp(val, "off") && strcmp(val, "no") && strcmp(val, "false"))
		return fail(err, errlen, "%s: '%s' is not supported (only off)", key, val);
	return 0;
}

/* ---- -netdev user ---- */

const char *net_ip4_str(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}

/* Dotted quads only (inet_pton: no inet_aton "10.2" shorthands), to host order. */
static int parse_ip4(const char *s, uint32_t *a)
{
	struct in_addr in;

	if (inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	*a = ntohl(in.s_addr);
	return 0;
}

static int set_ip4(uint32_t *dst, const char *key, const char *val, char *err, size_t errlen)
{
	if (parse_ip4(val, dst))
		return fail(err, errlen, "%s: '%s' is not an IPv4 address", key, val);
	return 0;
}

/* QEMU's spellings of a boolean, with restrict='s older y and n. */
static int set_bool(bool *dst, const char *key, const char *val, char *err, size_t errlen)
{
	static const char *const on[] = { "on", "yes", "y", "true" };
	static const char *const off[] = { "off", "no", "n", "false" };

	for (size_t i = 0; i < ARRAY_SIZE(on); i++) {
		if (!strcmp(val, on[i]) || !strcmp(val, off[i])) {
			*dst = !strcmp(val, on[i]);
			return 0;
		}
	}
	return fail(err, errlen, "%s: '%s' is not on or off", key, val);
}

/*
 * net= without a mask: QEMU guesses from the address class, with the
 * private ranges' own sizes. (QEMU's test for class C looks at the top
 * three bits being 111, which is multicast; here class C is 110 and the
 * multicast and reserved ranges, which cannot be a network, get 0.)
 */
static uint32_t classful_mask(uint32_t a)
{
	if (!(a & 0x80000000))
		return 0xff000000;      /* class A: 0.0.0.0/1 */
	if ((a & 0xfff00000) == 0xac100000)
		return 0xfff00000;      /* 172.16.0.0/12 */
	if ((a & 0xc0000000) == 0x80000000)
		return 0xffff0000;      /* class B: 128.0.0.0/2 */
	if ((a & 0xffff0000) == 0xc0a80000)
		return 0xffff0000;      /* 192.168.0.0/16 */
	if ((a & 0xffff0000) == 0xc6120000)
		return 0xfffe0000;      /* 198.18.0.0/15, for benchmarks (RFC 2544) */
	if ((a & 0xe0000000) == 0xc0000000)
		return 0xffffff00;      /* class C: 192.0.0.0/3 */
	return 0;
}

/* A prefix length (4 to 32, as QEMU allows) or a dotted mask of as many ones. */
static int parse_mask(const char *s, uint32_t *mask)
{
	unsigned long bits;
	char *end;

	if (!strchr(s, '.')) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		errno = 0;
		bits = strtoul(s, &end, 10);
		if (*end || errno || bits < 4 || bits > 32)
			return -EINVAL;
		*mask = (uint32_t)(0xffffffffULL << (32 - bits));
		return 0;
	}
	if (parse_ip4(s, mask))
		return -EINVAL;
	/* ones then zeros: ~mask + 1 is a power of two (or 0 for /0) */
	if ((~*mask & (~*mask + 1)) || (*mask & 0xf0000000) != 0xf0000000)
		return -EINVAL;
	return 0;
}

/* net=ADDR[/PREFIX|/MASK]: the host part of ADDR is dropped, as in QEMU. */
static int set_net(struct netdev_user *u, const char *key, const char *val, char *err,
		   size_t errlen)
{
	size_t alen = strcspn(val, "/");
	char addr[INET_ADDRSTRLEN];
	uint32_t a, mask;

	if (alen >= sizeof(addr))
		goto bad;
	memcpy(addr, val, alen);
	addr[alen] = '\0';
	if (parse_ip4(addr, &a))
		goto bad;
	if (!val[alen])
		mask = classful_mask(a);
	else if (parse_mask(val + alen + 1, &mask))
		goto bad;
	if (!mask)
		goto bad;
	u->net = a & mask;
	u->mask = mask;
	return 0;
bad:
	return fail(err, errlen, "%s: '%s' is not a network (ADDR/PREFIX, a prefix of 4 to 32)",
		    key, val);
}

/* The text up to sep into out; the rest after sep, or NULL without sep. */
static const char *field(const char *s, int sep, char *out, size_t size)
{
	const char *end = strchr(s, sep);

	if (!end || (size_t)(end - s) >= size)
		return NULL;
	memcpy(out, s, end - s);
	out[end - s] = '\0';
	return end + 1;
}

static int parse_port(const char *s, unsigned long min, uint16_t *port)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v < min || v > 65535)
		return -EINVAL;
	*port = v;
	return 0;
}

/*
 * [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport, as QEMU reads it:
 * no protocol is tcp, no host address is any, no guest address is
 * dhcpstart (filled in by user_finish()), host port 0 lets the kernel pick.
 */
static int parse_hostfwd(const char *s, struct net_hostfwd *f)
{
	char proto[4], haddr[INET_ADDRSTRLEN], hport[6], gaddr[INET_ADDRSTRLEN];

	memset(f, 0, sizeof(*f));
	s = field(s, ':', proto, sizeof(proto));
	if (!s || (proto[0] && strcmp(proto, "tcp") && strcmp(proto, "udp")))
		return -EINVAL;
	f->udp = !strcmp(proto, "udp");
	s = field(s, ':', haddr, sizeof(haddr));
	if (!s || (haddr[0] && parse_ip4(haddr, &f->host_addr)))
		return -EINVAL;
	s = field(s, '-', hport, sizeof(hport));
	if (!s || parse_port(hport, 0, &f->host_port))
		return -EINVAL;
	s = field(s, ':', gaddr, sizeof(gaddr));
	if (!s || (gaddr[0] && parse_ip4(gaddr, &f->guest_addr)))
		return -EINVAL;
	return parse_port(s, 1, &f->guest_port);
}

static int add_hostfwd(struct netdev_user *u, const char *key, const char *val, char *err,
		       size_t errlen)
{
	if (u->nr_fwd == NET_MAX_HOSTFWD)
		return fail(err, errlen, "%s: at most %d", key, NET_MAX_HOSTFWD);
	if (parse_hostfwd(val, &u->fwd[u->nr_fwd]))
		return fail(err, errlen, "%s: '%s' is not [tcp|udp]:[hostaddr]:hostport-"
			    "[guestaddr]:guestport", key, val);
	u->nr_fwd++;
	return 0;
}

void net_hostfwd_str(const struct net_hostfwd *f, char *buf, size_t len)
{
	char h[16], g[16];

	snprintf(buf, len, "%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp",
		 f->host_addr ? net_ip4_str(f->host_addr, h) : "", f->host_port,
		 net_ip4_str(f->guest_addr, g), f->guest_port);
}

void net_user_str(const struct netdev_user *u, char *buf, size_t len)
{
	char n[16], h[16], d[16], s[16], fwd[48];
	size_t o;

	o = snprintf(buf, len, "net=%s/%d,host=%s,dns=%s,dhcpstart=%s,restrict=%s,ipv6=%s",
		     net_ip4_str(u->net, n), __builtin_popcount(u->mask), net_ip4_str(u->host, h),
		     net_ip4_str(u->dns, d), net_ip4_str(u->dhcp_start, s),
		     u->restricted ? "on" : "off", u->ipv6 ? "on" : "off");
	if (u->hostname[0] && o < len)
		o += snprintf(buf + o, len - o, ",hostname=%s", u->hostname);
	for (unsigned int i = 0; i < u->nr_fwd && o < len; i++) {
		net_hostfwd_str(&u->fwd[i], fwd, sizeof(fwd));
		o += snprintf(buf + o, len - o, ",hostfwd=%s", fwd);
	}
}

/* One key of -netdev user; 1 if it is not one. */
static int user_key(struct netdev_user *u, const char *key, const char *val, char *err,
		    size_t errlen)
{
	if (!strcmp(key, "net"))
		return set_net(u, key, val, err, errlen);
	if (!strcmp(key, "host"))
		return set_ip4(&u->host, key, val, err, errlen);
	if (!strcmp(key, "dhcpstart"))
		return set_ip4(&u->dhcp_start, key, val, err, errlen);
	if (!strcmp(key, "dns"))
		return set_ip4(&u->dns, key, val, err, errlen);
	if (!strcmp(key, "hostname"))
		return set_str(u->hostname, sizeof(u->hostname), key, val, err, errlen);
	if (!strcmp(key, "restrict"))
		return set_bool(&u->restricted, key, val, err, errlen);
	if (!strcmp(key, "ipv6"))
		return set_bool(&u->ipv6, key, val, err, errlen);
	if (!strcmp(key, "hostfwd"))
		return add_hostfwd(u, key, val, err, errlen);
	return 1;
}

static bool in_net(const struct netdev_user *u, uint32_t a)
{
	return (a & u->mask) == u->net;
}

/*
 * After all keys, whatever their order, QEMU's defaults and checks: host,
 * dns and dhcpstart are .2, .3 and .15 (0x202, 0x203 and 0x20f within the
 * host part, so that 10.0.0.0/8 gets 10.0.2.2); host and dhcpstart must be
 * in the network, dns too under restrict=on; no two may be the same.
 */
static int user_finish(struct netdev_user *u, char *err, size_t errlen)
{
	char a[16], n[16];

	if (!u->mask) {
		u->net = 0x0a000200;
		u->mask = 0xffffff00;
	}
	if (!u->host)
		u->host = u->net | (0x202 & ~u->mask);
	if (!u->dns)
		u->dns = u->net | (0x203 & ~u->mask);
	if (!u->dhcp_start)
		u->dhcp_start = u->net | (0x20f & ~u->mask);
	net_ip4_str(u->net, n);
	if (!in_net(u, u->host))
		return fail(err, errlen, "host: %s is not in net %s/%d", net_ip4_str(u->host, a),
			    n, __builtin_popcount(u->mask));
	if (u->restricted && !in_net(u, u->dns))
		return fail(err, errlen, "dns: %s is not in net %s/%d (restrict=on)",
			    net_ip4_str(u->dns, a), n, __builtin_popcount(u->mask));
	if (u->dns == u->host)
		return fail(err, errlen, "dns: %s is the host address too",
			    net_ip4_str(u->dns, a));
	if (!in_net(u, u->dhcp_start))
		return fail(err, errlen, "dhcpstart: %s is not in net %s/%d",
			    net_ip4_str(u->dhcp_start, a), n, __builtin_popcount(u->mask));
	if (u->dhcp_start == u->host || u->dhcp_start == u->dns)
		return fail(err, errlen, "dhcpstart: %s is the host or the DNS address",
			    net_ip4_str(u->dhcp_start, a));
	for (unsigned int i = 0; i < u->nr_fwd; i++)
		if (!u->fwd[i].guest_addr)
			u->fwd[i].guest_addr = u->dhcp_start;
	return 0;
}

static struct netdev_opts *new_netdev(struct net_config *nc, enum netdev_type type, char *err,
				      size_t errlen)
{
	struct netdev_opts *d;

	if (nc->nr_netdevs == NET_MAX_NICS) {
		fail(err, errlen, "at most %d network backends", NET_MAX_NICS);
		return NULL;
	}
	d = &nc->netdevs[nc->nr_netdevs];
	memset(d, 0, sizeof(*d));
	d->type = type;
	if (type == NETDEV_TAP) {
		strcpy(d->script, NET_DEFAULT_SCRIPT);
		strcpy(d->downscript, NET_DEFAULT_DOWNSCRIPT);
	}
	strcpy(d->br, NET_DEFAULT_BRIDGE);
	d->user.ipv6 = true; /* QEMU's default */
	return d;
}

static struct nic_opts *new_nic(struct net_config *nc, char *err, size_t errlen)
{
	struct nic_opts *o;

	if (nc->nr_nics == NET_MAX_NICS) {
		fail(err, errlen, "at most %d network cards", NET_MAX_NICS);
		return NULL;
	}
	o = &nc->nics[nc->nr_nics];
	memset(o, 0, sizeof(*o));
	o->mtu = NET_DEFAULT_MTU;
	return o;
}

/* One key of a netdev; 1 if key is not a netdev key. */
static int netdev_key(struct netdev_opts *d, const char *key, const char *val, char *err,
		      size_t errlen)
{
	if (!strcmp(key, "id") || !strcmp(key, "name"))
		return set_id(d->id, key, val, err, errlen);
	if (d->type == NETDEV_USER)
		return user_key(&d->user, key, val, err, errlen);
	if (d->type == NETDEV_TAP && !strcmp(key, "ifname"))
		return set_str(d->ifname, sizeof(d->ifname), key, val, err, errlen);
	if (d->type == NETDEV_TAP && !strcmp(key, "script"))
		return set_script(d->script, key, val, err, errlen);
	if (d->type == NETDEV_TAP && !strcmp(key, "downscript"))
		return set_script(d->downscript, key, val, err, errlen);
	if (d->type == NETDEV_TAP && !strcmp(key, "vhost"))
		return set_vhost(key, val, err, errlen);
	if (d->type == NETDEV_BRIDGE && !strcmp(key, "br"))
		return set_str(d->br, sizeof(d->br), key, val, err, errlen);
	return 1;
}

static int netdev_type(const char *val, enum netdev_type *type, char *err, size_t errlen)
{
	if (!strcmp(val, "tap"))
		*type = NETDEV_TAP;
	else if (!strcmp(val, "bridge"))
		*type = NETDEV_BRIDGE;
	else if (!strcmp(val, "user"))
		*type = NETDEV_USER;
	else
		return fail(err, errlen, "'%s' is not supported (tap, bridge or user)", val);
	return 0;
}

/* ifname=, br=: the kernel's rules for an interface name */
static int check_names(const struct netdev_opts *d, char *err, size_t errlen)
{
	if (d->ifname[0] && (strchr(d->ifname, '/') || strchr(d->ifname, ' ')))
		return fail(err, errlen, "ifname: '%s' is not an interface name", d->ifname);
	if (d->type == NETDEV_BRIDGE && !d->br[0])
		return fail(err, errlen, "br: empty");
	return 0;
}

/*
 * The shared body of -netdev, -nic and -net tap|user: the first item is the
 * type; for -nic (nic != NULL) the NIC's keys are accepted too.
 */
static int parse_backend(struct net_config *nc, const char *arg, struct nic_opts *nic,
			 struct netdev_opts **out, char *err, size_t errlen)
{
	char val[NET_VAL_MAX];
	struct netdev_opts *d;
	enum netdev_type type = NETDEV_TAP;
	const char *p = arg;
	char key[NET_KEY_MAX];
	int ret;

	ret = next_item(&p, key, val, err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 0 || key[0])
		return fail(err, errlen, "the type comes first (tap, bridge or user)");
	ret = netdev_type(val, &type, err, errlen);
	if (ret)
		return ret;
	d = new_netdev(nc, type, err, errlen);
	if (!d)
		return -ENOSPC;
	while ((ret = next_item(&p, key, val, err, errlen)) > 0) {
		if (!key[0])
			return fail(err, errlen, "'%s': expected key=value", val);
		ret = netdev_key(d, key, val, err, errlen);
		if (ret == 1 && nic) {
			if (!strcmp(key, "model"))
				ret = set_model(key, val, err, errlen);
			else if (!strcmp(key, "mac"))
				ret = set_mac(nic, key, val, err, errlen);
			else if (!strcmp(key, "host_mtu"))
				ret = set_mtu(nic, key, val, err, errlen);
		}
		if (ret == 1)
			return fail(err, errlen, "unknown key '%s'", key);
		if (ret)
			return ret;
	}
	if (ret < 0)
		return ret;
	ret = check_names(d, err, errlen);
	if (!ret && d->type == NETDEV_USER)
		ret = user_finish(&d->user, err, errlen);
	if (ret)
		return ret;
	*out = d;
	return 0;
}

static bool id_taken(const struct net_config *nc, const char *id)
{
	for (unsigned int i = 0; i < nc->nr_netdevs; i++)
		if (!strcmp(nc->netdevs[i].id, id))
			return true;
	return false;
}

int net_parse_netdev(struct net_config *nc, const char *arg, char *err, size_t errlen)
{
	struct netdev_opts *d;
	int ret;

	ret = parse_backend(nc, arg, NULL, &d, err, errlen);
	if (ret)
		return ret;
	if (!d->id[0])
		return fail(err, errlen, "id: missing (id= is required)");
	if (id_taken(nc, d->id))
		return fail(err, errlen, "id: '%s' is already a netdev", d->id);
	nc->nr_netdevs++;
	return 0;
}

/* -nic TYPE,...: a netdev and a NIC naming it, under a private id. */
int net_parse_nic(struct net_config *nc, const char *arg, char *err, size_t errlen)
{
	struct netdev_opts *d;
	struct nic_opts *o;
	int ret;

	if (!strcmp(arg, "none"))
		return 0; /* QEMU: no NIC from this flag */
	o = new_nic(nc, err, errlen);
	if (!o)
		return -ENOSPC;
	ret = parse_backend(nc, arg, o, &d, err, errlen);
	if (ret)
		return ret;
	if (d->id[0] && id_taken(nc, d->id))
		return fail(err, errlen, "id: '%s' is already a netdev", d->id);
	/* '#' cannot start a user's id: no clash */
	if (!d->id[0])
		snprintf(d->id, sizeof(d->id), "#nic%u", nc->nr_nics);
	strcpy(o->netdev, d->id);
	nc->nr_netdevs++;
	nc->nr_nics++;
	return 0;
}

int net_parse_device(struct net_config *nc, const char *arg, char *err, size_t errlen)
{
	char val[NET_VAL_MAX];
	const char *p = arg;
	struct nic_opts *o;
	char key[NET_KEY_MAX];
	int ret;

	ret = next_item(&p, key, val, err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 0 || key[0])
		return fail(err, errlen, "the device type comes first (virtio-net-pci)");
	if (strcmp(val, "virtio-net-pci") && strcmp(val, "virtio-net"))
		return fail(err, errlen, "'%s' is not supported (only virtio-net-pci)", val);
	o = new_nic(nc, err, errlen);
	if (!o)
		return -ENOSPC;
	while ((ret = next_item(&p, key, val, err, errlen)) > 0) {
		if (!strcmp(key, "netdev"))
			ret = set_str(o->netdev, sizeof(o->netdev), key, val, err, errlen);
		else if (!strcmp(key, "mac"))
			ret = set_mac(o, key, val, err, errlen);
		else if (!strcmp(key, "id"))
			ret = set_id(o->id, key, val, err, errlen);
		else if (!strcmp(key, "host_mtu"))
			ret = set_mtu(o, key, val, err, errlen);
		else if (!key[0])
			ret = fail(err, errlen, "'%s': expected key=value", val);
		else
			ret = fail(err, errlen, "unknown key '%s'", key);
		if (ret)
			return ret;
	}
	if (ret < 0)
		return ret;
	if (!o->netdev[0])
		return fail(err, errlen, "netdev: missing (netdev= names a -netdev id)");
	nc->nr_nics++;
	return 0;
}

/* -net nic[,model=][,macaddr=][,netdev=][,name=|id=] */
static int parse_net_nic(struct net_config *nc, const char *p, char *err, size_t errlen)
{
	char val[NET_VAL_MAX];
	struct nic_opts *o = new_nic(nc, err, errlen);
	char key[NET_KEY_MAX];
	int ret;

	if (!o)
		return -ENOSPC;
	o->legacy = true;
	while ((ret = next_item(&p, key, val, err, errlen)) > 0) {
		if (!strcmp(key, "model"))
			ret = set_model(key, val, err, errlen);
		else if (!strcmp(key, "macaddr"))
			ret = set_mac(o, key, val, err, errlen);
		else if (!strcmp(key, "netdev"))
			ret = set_str(o->netdev, sizeof(o->netdev), key, val, err, errlen);
		else if (!strcmp(key, "name") || !strcmp(key, "id"))
			ret = set_id(o->id, key, val, err, errlen);
		else if (!key[0])
			ret = fail(err, errlen, "'%s': expected key=value", val);
		else
			ret = fail(err, errlen, "unknown key '%s'", key);
		if (ret)
			return ret;
	}
	if (ret < 0)
		return ret;
	o->legacy = !o->netdev[0];
	nc->nr_nics++;
	return 0;
}

int net_parse_net(struct net_config *nc, const char *arg, char *err, size_t errlen)
{
	struct netdev_opts *d;
	size_t tlen = strcspn(arg, ",");
	int ret;

	if (!strcmp(arg, "none")) {
		nc->none = true;
		return 0;
	}
	if (tlen == 3 && !strncmp(arg, "nic", 3))
		return parse_net_nic(nc, arg + tlen + (arg[tlen] == ','), err, errlen);
	if ((tlen == 3 && !strncmp(arg, "tap", 3)) || (tlen == 4 && !strncmp(arg, "user", 4))) {
		ret = parse_backend(nc, arg, NULL, &d, err, errlen);
		if (ret)
			return ret;
		if (d->id[0] && id_taken(nc, d->id))
			return fail(err, errlen, "id: '%s' is already a netdev", d->id);
		d->legacy = true;
		nc->nr_netdevs++;
		return 0;
	}
	return fail(err, errlen, "'%.*s' is not supported (nic, tap, user or none)", (int)tlen,
		    arg);
}

/* The n-th legacy NIC takes the n-th legacy netdev, under a private id. */
static int pair_legacy(struct net_config *nc, char *err, size_t errlen)
{
	unsigned int t = 0;

	for (unsigned int i = 0; i < nc->nr_nics; i++) {
		struct nic_opts *o = &nc->nics[i];

		if (!o->legacy)
			continue;
		while (t < nc->nr_netdevs && !nc->netdevs[t].legacy)
			t++;
		if (t == nc->nr_netdevs)
			return fail(err, errlen, "-net nic: no -net tap or user for it to connect to");
		if (!nc->netdevs[t].id[0])
			snprintf(nc->netdevs[t].id, sizeof(nc->netdevs[t].id), "#net%u", t);
		strcpy(o->netdev, nc->netdevs[t].id);
		nc->netdevs[t].legacy = false;
		t++;
	}
	for (; t < nc->nr_netdevs; t++)
		if (nc->netdevs[t].legacy)
			return fail(err, errlen, "-net %s: no -net nic for it to connect to",
				    netdev_type_name(nc->netdevs[t].type));
	return 0;
}

static void default_mac(const struct net_config *nc, unsigned int index, uint8_t mac[6])
{
	/* QEMU's locally administered prefix; the rest differs per run and per NIC */
	uint32_t v = nc->mac_seed + index;

	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = v >> 16;
	mac[4] = v >> 8;
	mac[5] = v;
}

int net_config_check(struct net_config *nc, char *err, size_t errlen)
{
	int ret;

	if (nc->none && (nc->nr_nics || nc->nr_netdevs))
		return fail(err, errlen, "-net none: but network devices are given too");
	ret = pair_legacy(nc, err, errlen);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < nc->nr_nics; i++) {
		struct nic_opts *o = &nc->nics[i];
		unsigned int t;

		for (t = 0; t < nc->nr_netdevs; t++)
			if (!strcmp(nc->netdevs[t].id, o->netdev))
				break;
		if (t == nc->nr_netdevs)
			return fail(err, errlen, "-device netdev=%s: no -netdev with that id",
				    o->netdev);
		if (nc->netdevs[t].used)
			return fail(err, errlen, "-device netdev=%s: already used by another NIC",
				    o->netdev);
		nc->netdevs[t].used = true;
		o->backend = t;
		if (!o->mac_given)
			default_mac(nc, i, o->mac);
	}
	for (unsigned int t = 0; t < nc->nr_netdevs; t++)
		if (!nc->netdevs[t].used)
			return fail(err, errlen, "-netdev id=%s: no NIC uses it (-device "
				    "virtio-net-pci,netdev=%s)", nc->netdevs[t].id, nc->netdevs[t].id);
	return 0;
}

void net_config_init(struct net_config *nc)
{
	uint32_t seed;

	memset(nc, 0, sizeof(*nc));
	/*
	 * QEMU gives every VM 52:54:00:12:34:56, and two VMs on one bridge then
	 * fight over one address. A random seed per run, plus the NIC's index,
	 * differs per VM and per NIC; it stays the same across guest reboots.
	 */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint32_t)getpid() * 2654435761U ^ (uint32_t)time(NULL);
	/* leave room for the NIC indices so they never wrap into each other */
	nc->mac_seed = (seed & 0xffffff) % (0x1000000 - NET_MAX_NICS);
}

const char *netdev_type_name(enum netdev_type t)
{
	switch (t) {
	case NETDEV_TAP:
		return "tap";
	case NETDEV_BRIDGE:
		return "bridge";
	case NETDEV_USER:
		return "user";
	default:
		return "?";
	}
}
