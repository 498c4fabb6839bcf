// SPDX-License-Identifier: MIT
/* The network flags: QEMU's spellings and meanings, everything else refused. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/netopts.h"
#include "vmm/cli.h"
#include "tests/unit/unit.h"

#define ARGV(...) ((char *[]){ "minivm", "-kernel", "k", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "minivm", "-kernel", "k", __VA_ARGS__ }) / \
			 sizeof(char *)))
#define PARSE(cfg, ...) cli_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (cfg))

static struct vm_config c; /* big: PATH_MAX strings */
static struct net_config nc;
static char err[NET_ERR_MAX];

START_TEST(netdev_and_device)
{
	const struct net_config *n = &c.net;

	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=n0,ifname=tap7,script=no,downscript=/x,,y",
			       "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:ab:cd:ef"), CLI_RUN);
	ck_assert_uint_eq(n->nr_netdevs, 1);
	ck_assert_uint_eq(n->nr_nics, 1);
	ck_assert_int_eq(n->netdevs[0].type, NETDEV_TAP);
	ck_assert_str_eq(n->netdevs[0].ifname, "tap7");
	ck_assert_str_eq(n->netdevs[0].script, "");
	ck_assert_str_eq(n->netdevs[0].downscript, "/x,y");
	ck_assert_uint_eq(n->nics[0].backend, 0);
	ck_assert_mem_eq(n->nics[0].mac, ((uint8_t[]){ 0x52, 0x54, 0, 0xab, 0xcd, 0xef }), 6);
	ck_assert_uint_eq(n->nics[0].mtu, 1500);
}
END_TEST

START_TEST(defaults_like_qemu)
{
	const struct net_config *n = &c.net;

	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device", "virtio-net-pci,netdev=a"),
			 CLI_RUN);
	ck_assert_str_eq(n->netdevs[0].script, "/etc/qemu-ifup");
	ck_assert_str_eq(n->netdevs[0].downscript, "/etc/qemu-ifdown");
	ck_assert_str_eq(n->netdevs[0].ifname, "");
	ck_assert_int_eq(PARSE(&c, "-netdev", "bridge,id=a", "-device", "virtio-net-pci,netdev=a"),
			 CLI_RUN);
	ck_assert_int_eq(n->netdevs[0].type, NETDEV_BRIDGE);
	ck_assert_str_eq(n->netdevs[0].br, "br0");
	/* no network flags: no NIC (QEMU would add one with user networking) */
	ck_assert_int_eq(PARSE(&c, "-m", "64"), CLI_RUN);
	ck_assert_uint_eq(c.net.nr_nics, 0);
}
END_TEST

/* Default MACs: QEMU's prefix, a different address per NIC and per run. */
START_TEST(default_macs_differ)
{
	struct net_config a, b;

	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-netdev", "tap,id=b",
			       "-device", "virtio-net-pci,netdev=a", "-device", "virtio-net-pci,netdev=b"),
			 CLI_RUN);
	a = c.net;
	ck_assert_mem_eq(a.nics[0].mac, ((uint8_t[]){ 0x52, 0x54, 0x00 }), 3);
	ck_assert_mem_ne(a.nics[0].mac, a.nics[1].mac, 6);
	ck_assert_mem_ne(a.nics[0].mac, ((uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }), 6);
	/* another VM (another run: a fresh seed) gets other addresses */
	for (int tries = 0; tries < 4; tries++) {
		ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-netdev", "tap,id=b",
				       "-device", "virtio-net-pci,netdev=a",
				       "-device", "virtio-net-pci,netdev=b"), CLI_RUN);
		b = c.net;
		if (memcmp(a.nics[0].mac, b.nics[0].mac, 6))
			break;
	}
	ck_assert_mem_ne(a.nics[0].mac, b.nics[0].mac, 6);
}
END_TEST

START_TEST(legacy_net_pairs)
{
	const struct net_config *n = &c.net;

	ck_assert_int_eq(PARSE(&c, "-net", "nic,model=virtio,macaddr=52:54:00:00:00:01",
			       "-net", "tap,ifname=tap0,script=no,downscript=no",
			       "-net", "nic", "-net", "tap,ifname=tap1,script=/s"), CLI_RUN);
	ck_assert_uint_eq(n->nr_nics, 2);
	ck_assert_str_eq(n->netdevs[n->nics[0].backend].ifname, "tap0");
	ck_assert_str_eq(n->netdevs[n->nics[1].backend].ifname, "tap1");
	ck_assert_str_eq(n->netdevs[n->nics[1].backend].script, "/s");
	ck_assert_uint_eq(n->nics[0].mac[5], 1);
	ck_assert_int_eq(PARSE(&c, "-net", "none"), CLI_RUN);
	ck_assert(c.net.none);
	ck_assert_uint_eq(c.net.nr_nics, 0);
}
END_TEST

START_TEST(nic_shorthand)
{
	const struct net_config *n = &c.net;

	ck_assert_int_eq(PARSE(&c, "-nic", "tap,ifname=tap3,script=no,model=virtio-net-pci,"
			       "mac=52:54:00:00:00:09", "-nic", "bridge,br=lan"), CLI_RUN);
	ck_assert_uint_eq(n->nr_nics, 2);
	ck_assert_str_eq(n->netdevs[n->nics[0].backend].ifname, "tap3");
	ck_assert_uint_eq(n->nics[0].mac[5], 9);
	ck_assert_int_eq(n->netdevs[n->nics[1].backend].type, NETDEV_BRIDGE);
	ck_assert_str_eq(n->netdevs[n->nics[1].backend].br, "lan");
}
END_TEST

START_TEST(errors)
{
	/* unknown keys, types, models, values */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a,bogus=1"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "socket,id=a"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap"), -EINVAL);          /* no id */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=1a"), -EINVAL);    /* not an id */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a,br=x"), -EINVAL); /* a bridge key */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a,vhost=on"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a,script="), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a,ifname=waytoolongforaninterface"),
			 -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-device", "e1000,netdev=a"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-device", "virtio-net-pci"), -EINVAL); /* no netdev */
	ck_assert_int_eq(PARSE(&c, "-net", "nic,model=e1000", "-net", "tap"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-net", "socket"), -EINVAL);
	/* MACs: malformed, multicast */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device",
			       "virtio-net-pci,netdev=a,mac=52:54:00:12:34"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device",
			       "virtio-net-pci,netdev=a,mac=53:54:00:12:34:56"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device",
			       "virtio-net-pci,netdev=a,mac=52:54:00:12:34:5g"), -EINVAL);
	/* ids: unknown, used twice, defined twice, unused */
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device", "virtio-net-pci,netdev=b"),
			 -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-device", "virtio-net-pci,netdev=a",
			       "-device", "virtio-net-pci,netdev=a"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a", "-netdev", "bridge,id=a"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-netdev", "tap,id=a"), -EINVAL);
	/* -net halves without their other half; -net none with a NIC */
	ck_assert_int_eq(PARSE(&c, "-net", "nic"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-net", "tap"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-net", "none", "-nic", "tap"), -EINVAL);
}
END_TEST

/* The one-line messages name the key. */
START_TEST(messages)
{
	net_config_init(&nc);
	ck_assert_int_eq(net_parse_netdev(&nc, "tap,id=a,colour=red", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "unknown key 'colour'");
	ck_assert_int_eq(net_parse_device(&nc, "rtl8139,netdev=a", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "'rtl8139' is not supported (only virtio-net-pci)");
	ck_assert_int_eq(net_parse_net(&nc, "nic,model=e1000", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "model: 'e1000' is not supported (only virtio)");
	net_config_init(&nc);
	ck_assert_int_eq(net_parse_device(&nc, "virtio-net-pci,netdev=zz", err, sizeof(err)), 0);
	ck_assert_int_eq(net_config_check(&nc, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "-device netdev=zz: no -netdev with that id");
}
END_TEST

/* -netdev user: QEMU's defaults, derived from net= as QEMU derives them. */
START_TEST(user_defaults)
{
	const struct netdev_user *u = &c.net.netdevs[0].user;

	ck_assert_int_eq(PARSE(&c, "-netdev", "user,id=u", "-device", "virtio-net-pci,netdev=u"),
			 CLI_RUN);
	ck_assert_int_eq(c.net.netdevs[0].type, NETDEV_USER);
	ck_assert_uint_eq(u->net, 0x0a000200);
	ck_assert_uint_eq(u->mask, 0xffffff00);
	ck_assert_uint_eq(u->host, 0x0a000202);
	ck_assert_uint_eq(u->dns, 0x0a000203);
	ck_assert_uint_eq(u->dhcp_start, 0x0a00020f);
	ck_assert(u->ipv6);
	ck_assert(!u->restricted);
	ck_assert_str_eq(u->hostname, "");
	ck_assert_uint_eq(u->nr_fwd, 0);
	/* a wider net keeps .2.2, .2.3, .2.15 in its host part, as in QEMU */
	ck_assert_int_eq(PARSE(&c, "-netdev", "user,id=u,net=10.0.0.0/8", "-device",
			       "virtio-net-pci,netdev=u"), CLI_RUN);
	ck_assert_uint_eq(u->host, 0x0a000202);
	ck_assert_uint_eq(u->dhcp_start, 0x0a00020f);
	/* the host part of net= goes; a dotted mask; no mask: the class's */
	ck_assert_int_eq(PARSE(&c, "-netdev", "user,id=u,net=192.168.7.99/255.255.255.0",
			       "-device", "virtio-net-pci,netdev=u"), CLI_RUN);
	ck_assert_uint_eq(u->net, 0xc0a80700);
	ck_assert_uint_eq(u->host, 0xc0a80702);
	ck_assert_uint_eq(u->dns, 0xc0a80703);
	ck_assert_int_eq(PARSE(&c, "-netdev", "user,id=u,net=172.20.0.0", "-device",
			       "virtio-net-pci,netdev=u"), CLI_RUN);
	ck_assert_uint_eq(u->mask, 0xfff00000);
	ck_assert_uint_eq(u->net, 0xac100000);
}
END_TEST

START_TEST(user_keys)
{
	const struct net_config *n = &c.net;
	const struct netdev_user *u;

	/* keys in any order: dhcpstart= before the net= it must lie in */
	ck_assert_int_eq(PARSE(&c, "-nic", "user,dhcpstart=10.9.0.50,net=10.9.0.0/16,host=10.9.0.1,"
			       "dns=8.8.8.8,hostname=box,restrict=n,ipv6=off,"
			       "hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-10.9.1.1:53,"
			       "hostfwd=::8080-:80,mac=52:54:00:00:00:07"), CLI_RUN);
	u = &n->netdevs[n->nics[0].backend].user;
	ck_assert_uint_eq(u->net, 0x0a090000);
	ck_assert_uint_eq(u->host, 0x0a090001);
	ck_assert_uint_eq(u->dns, 0x08080808); /* outside net: fine without restrict=on */
	ck_assert(!u->restricted);
	ck_assert_str_eq(u->hostname, "box");
	ck_assert(!u->ipv6);
	ck_assert_uint_eq(u->nr_fwd, 3);
	ck_assert(!u->fwd[0].udp);
	ck_assert_uint_eq(u->fwd[0].host_addr, 0x7f000001);
	ck_assert_uint_eq(u->fwd[0].host_port, 2222);
	ck_assert_uint_eq(u->fwd[0].guest_addr, 0x0a090032); /* dhcpstart */
	ck_assert_uint_eq(u->fwd[0].guest_port, 22);
	ck_assert(u->fwd[1].udp);
	ck_assert_uint_eq(u->fwd[1].host_addr, 0);
	ck_assert_uint_eq(u->fwd[1].guest_addr, 0x0a090101);
	ck_assert(!u->fwd[2].udp); /* no protocol: tcp */
	ck_assert_uint_eq(u->fwd[2].host_port, 8080);
	ck_assert_uint_eq(n->nics[0].mac[5], 7);
	/* -net user pairs with -net nic as -net tap does */
	ck_assert_int_eq(PARSE(&c, "-net", "nic", "-net", "user,hostname=old,restrict=on"),
			 CLI_RUN);
	u = &n->netdevs[n->nics[0].backend].user;
	ck_assert_int_eq(n->netdevs[n->nics[0].backend].type, NETDEV_USER);
	ck_assert_str_eq(u->hostname, "old");
	ck_assert(u->restricted);
}
END_TEST

/* Bad values: one line, naming the key. */
START_TEST(user_errors)
{
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{ "user,id=a,net=10.0.2.0/33", "net: '10.0.2.0/33' is not a network (ADDR/PREFIX, a "
		  "prefix of 4 to 32)" },
		{ "user,id=a,net=10.0.2/24", NULL },
		{ "user,id=a,net=10.0.2.0/255.0.255.0", NULL },
		{ "user,id=a,net=224.0.0.0", NULL },
		{ "user,id=a,host=10.0.3.2", "host: 10.0.3.2 is not in net 10.0.2.0/24" },
		{ "user,id=a,host=10.0.2.256", "host: '10.0.2.256' is not an IPv4 address" },
		{ "user,id=a,dns=10.0.2.2", "dns: 10.0.2.2 is the host address too" },
		{ "user,id=a,dns=1.1.1.1,restrict=on", "dns: 1.1.1.1 is not in net 10.0.2.0/24 "
		  "(restrict=on)" },
		{ "user,id=a,dhcpstart=10.0.2.3", "dhcpstart: 10.0.2.3 is the host or the DNS address" },
		/* /30: .15 & 3 is .3, the DNS address (QEMU derives it the same way) */
		{ "user,id=a,net=10.0.2.0/30", "dhcpstart: 10.0.2.3 is the host or the DNS address" },
		{ "user,id=a,net=10.0.2.0/30,dhcpstart=10.0.2.15",
		  "dhcpstart: 10.0.2.15 is not in net 10.0.2.0/30" },
		{ "user,id=a,restrict=maybe", "restrict: 'maybe' is not on or off" },
		{ "user,id=a,ipv6=", "ipv6: '' is not on or off" },
		{ "user,id=a,hostname=a-name-that-is-longer-than-32-bytes", NULL },
		{ "user,id=a,hostfwd=tcp:127.0.0.1:2222:22", "hostfwd: 'tcp:127.0.0.1:2222:22' is not "
		  "[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport" },
		{ "user,id=a,hostfwd=sctp::1-:2", NULL },
		{ "user,id=a,hostfwd=tcp::65536-:22", NULL },
		{ "user,id=a,hostfwd=tcp::22-:0", NULL },
		{ "user,id=a,hostfwd=tcp::22-:x", NULL },
		{ "user,id=a,hostfwd=tcp:localhost:22-:22", NULL },
		{ "user,id=a,hostfwd=tcp::22-10.0.2:22", NULL },
		{ "user,id=a,hostfwd=tcp::-:22", NULL },
		{ "user,id=a,ifname=tap0", "unknown key 'ifname'" },
		{ "user,id=a,script=no", "unknown key 'script'" },
		{ "user,id=a,tftp=/srv", "unknown key 'tftp'" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		net_config_init(&nc);
		err[0] = '\0';
		ck_assert_msg(net_parse_netdev(&nc, bad[i].arg, err, sizeof(err)) == -EINVAL,
			      "%s was taken", bad[i].arg);
		ck_assert_msg(err[0] && !strchr(err, '\n'), "%s: '%s'", bad[i].arg, err);
		if (bad[i].msg)
			ck_assert_str_eq(err, bad[i].msg);
	}
	net_config_init(&nc);
	for (int i = 0; i < NET_MAX_HOSTFWD; i++) {
		snprintf(err, sizeof(err), "user,id=a,hostfwd=tcp::%d-:22", 1000 + i);
		ck_assert_int_eq(net_parse_netdev(&nc, err, err, sizeof(err)), 0);
		nc.nr_netdevs = 0;
	}
	/* the 17th in one netdev */
	{
		char arg[NET_MAX_HOSTFWD * 24 + 32];
		size_t o = snprintf(arg, sizeof(arg), "user,id=a");

		for (int i = 0; i <= NET_MAX_HOSTFWD; i++)
			o += snprintf(arg + o, sizeof(arg) - o, ",hostfwd=::%d-:22", 1000 + i);
		ck_assert_int_eq(net_parse_netdev(&nc, arg, err, sizeof(err)), -EINVAL);
		ck_assert_str_eq(err, "hostfwd: at most 16");
	}
	ck_assert_int_eq(PARSE(&c, "-net", "user"), -EINVAL);
	ck_assert_int_eq(net_parse_net(&nc, "user", err, sizeof(err)), 0);
	ck_assert_int_eq(net_config_check(&nc, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "-net user: no -net nic for it to connect to");
}
END_TEST

START_TEST(mac_parser)
{
	uint8_t m[6];

	ck_assert_int_eq(net_parse_mac("52:54:00:AB:cd:0f", m), 0);
	ck_assert_mem_eq(m, ((uint8_t[]){ 0x52, 0x54, 0, 0xab, 0xcd, 0x0f }), 6);
	ck_assert_int_eq(net_parse_mac("52:54:00:ab:cd:0f:", m), -EINVAL);
	ck_assert_int_eq(net_parse_mac("52:54:0:ab:cd:0f", m), -EINVAL);
	ck_assert_int_eq(net_parse_mac("52-54-00-ab-cd-0f", m), -EINVAL);
	ck_assert_int_eq(net_parse_mac(" 52:54:00:ab:cd:0f", m), -EINVAL);
	ck_assert_int_eq(net_parse_mac("", m), -EINVAL);
}
END_TEST

START_TEST(limits)
{
	char arg[64];

	net_config_init(&nc);
	for (int i = 0; i < NET_MAX_NICS; i++) {
		snprintf(arg, sizeof(arg), "tap,id=n%d", i);
		ck_assert_int_eq(net_parse_netdev(&nc, arg, err, sizeof(err)), 0);
	}
	ck_assert_int_eq(net_parse_netdev(&nc, "tap,id=more", err, sizeof(err)), -ENOSPC);
	ck_assert_int_eq(PARSE(&c, "-device", "virtio-net-pci,netdev=a,host_mtu=9000",
			       "-netdev", "tap,id=a"), CLI_RUN);
	ck_assert_uint_eq(c.net.nics[0].mtu, 9000);
	ck_assert_int_eq(PARSE(&c, "-device", "virtio-net-pci,netdev=a,host_mtu=10",
			       "-netdev", "tap,id=a"), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("netopts");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, netdev_and_device);
	tcase_add_test(tc, defaults_like_qemu);
	tcase_add_test(tc, default_macs_differ);
	tcase_add_test(tc, legacy_net_pairs);
	tcase_add_test(tc, nic_shorthand);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, messages);
	tcase_add_test(tc, user_defaults);
	tcase_add_test(tc, user_keys);
	tcase_add_test(tc, user_errors);
	tcase_add_test(tc, mac_parser);
	tcase_add_test(tc, limits);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
