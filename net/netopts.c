// SPDX-License-Identifier: MIT
/*
 * Parsing of -netdev, -device virtio-net-pci, -nic and -net (net/netopts.h).
 * Every key and value is checked here, so the VM only ever opens backends
 * a valid net_config describes. Items are split as QemuOpts splits them, by
 * vmm/opts.h as -drive is: key=value pairs separated by ',', ",," a literal
 * comma, and the first item may be a bare value (the type: "tap", "nic",
 * "virtio-net-pci").
 */
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
	else
		return fail(err, errlen, "'%s' is not supported (tap or bridge)", val);
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
 * The shared body of -netdev, -nic and -net tap: the first item is the
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
		return fail(err, errlen, "the type comes first (tap or bridge)");
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
	if (tlen == 3 && !strncmp(arg, "tap", 3)) {
		ret = parse_backend(nc, arg, NULL, &d, err, errlen);
		if (ret)
			return ret;
		if (d->id[0] && id_taken(nc, d->id))
			return fail(err, errlen, "id: '%s' is already a netdev", d->id);
		d->legacy = true;
		nc->nr_netdevs++;
		return 0;
	}
	return fail(err, errlen, "'%.*s' is not supported (nic, tap or none)", (int)tlen, arg);
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
			return fail(err, errlen, "-net nic: no -net tap for it to connect to");
		if (!nc->netdevs[t].id[0])
			snprintf(nc->netdevs[t].id, sizeof(nc->netdevs[t].id), "#net%u", t);
		strcpy(o->netdev, nc->netdevs[t].id);
		nc->netdevs[t].legacy = false;
		t++;
	}
	for (; t < nc->nr_netdevs; t++)
		if (nc->netdevs[t].legacy)
			return fail(err, errlen, "-net tap: no -net nic for it to connect to");
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
