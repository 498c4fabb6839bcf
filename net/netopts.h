/* SPDX-License-Identifier: MIT */
/*
 * The network flags, spelled and meaning what they do in QEMU:
 *
 *   -netdev tap,id=n0[,ifname=tap0][,script=PATH|no][,downscript=PATH|no]
 *   -netdev bridge,id=n0[,br=br0]
 *   -netdev user,id=n0[,net=10.0.2.0/24][,host=10.0.2.2][,dhcpstart=10.0.2.15]
 *          [,dns=10.0.2.3][,hostname=NAME][,restrict=on|off][,ipv6=on|off]
 *          [,hostfwd=tcp|udp:[hostaddr]:hostport-[guestaddr]:guestport]...
 *   -device virtio-net-pci,netdev=n0[,mac=52:54:00:..][,id=..][,host_mtu=N]
 *   -nic tap|bridge|user[,...netdev keys][,model=virtio][,mac=..]  (both at once)
 *   -net nic[,model=virtio][,macaddr=..] + -net tap[,ifname=,script=,...] or -net user[,...]
 *   -net none
 *
 * A backend (netdev) is one host end; a NIC is one guest end; each NIC
 * names exactly one netdev. The old -net form pairs the n-th -net nic with
 * the n-th -net tap or -net user (QEMU puts them all on one hub; with one
 * of each, as everyone writes it, the two mean the same).
 *
 * Values follow -drive's rules (disk/drive.h): ",," is a literal comma, a
 * repeated key keeps its last value (each hostfwd= adds one, as in QEMU),
 * unknown keys are refused by name.
 */
#ifndef MINIVM_NET_NETOPTS_H
#define MINIVM_NET_NETOPTS_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define NET_MAX_NICS 8
#define NET_ID_MAX 31
#define NET_ERR_MAX 160
#define NET_DEFAULT_MTU 1500
#define NET_DEFAULT_SCRIPT "/etc/qemu-ifup"
#define NET_DEFAULT_DOWNSCRIPT "/etc/qemu-ifdown"
#define NET_DEFAULT_BRIDGE "br0"

enum netdev_type {
	NETDEV_TAP,
	NETDEV_BRIDGE, /* a TAP that minivm attaches to br= itself */
	NETDEV_USER,   /* user-mode networking: libslirp (net/slirp.h) */
};

#define NET_MAX_HOSTFWD 16
#define NET_HOSTNAME_MAX 32 /* what libslirp keeps of hostname= */

/* One hostfwd=. IPv4 addresses in host byte order. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;          /* 0: any (INADDR_ANY) */
	uint16_t host_port;
	uint32_t guest_addr;         /* "" in the option: dhcpstart */
	uint16_t guest_port;
};

/*
 * -netdev user. After parsing every address is set, QEMU's defaults
 * derived from net= as QEMU derives them: host .2, dns .3, dhcpstart .15.
 */
struct netdev_user {
	uint32_t net, mask;          /* 10.0.2.0, 255.255.255.0 */
	uint32_t host;               /* the gateway: the host, as the guest sees it */
	uint32_t dhcp_start;         /* the first address DHCP hands out */
	uint32_t dns;                /* slirp's DNS forwarder */
	char hostname[NET_HOSTNAME_MAX + 1]; /* DHCP option 12; "" none */
	bool restricted;             /* restrict=on: only hostfwd, no way out */
	bool ipv6;                   /* on by default: fec0::/64 as in QEMU */
	struct net_hostfwd fwd[NET_MAX_HOSTFWD];
	unsigned int nr_fwd;
};

struct netdev_opts {
	enum netdev_type type;
	char id[NET_ID_MAX + 1];
	char ifname[IFNAMSIZ];       /* "" : the kernel picks tapN */
	char script[PATH_MAX];       /* "" : none ("no") */
	char downscript[PATH_MAX];
	char br[IFNAMSIZ];           /* NETDEV_BRIDGE */
	struct netdev_user user;     /* NETDEV_USER */
	bool used;                   /* a NIC names it */
	bool legacy;                 /* from -net tap|user: paired by position */
};

struct nic_opts {
	char netdev[NET_ID_MAX + 1]; /* the netdev's id */
	unsigned int backend;        /* index in net_config.netdevs, once checked */
	uint8_t mac[6];
	bool mac_given;
	char id[NET_ID_MAX + 1];
	unsigned int mtu;            /* offered with VIRTIO_NET_F_MTU */
	bool legacy;                 /* from -net nic: paired by position */
};

struct net_config {
	struct netdev_opts netdevs[NET_MAX_NICS];
	unsigned int nr_netdevs;
	struct nic_opts nics[NET_MAX_NICS]; /* in command-line order: PCI slots */
	unsigned int nr_nics;
	bool none;                   /* -net none */
	uint32_t mac_seed;           /* default MACs: 52:54:00 + seed + NIC index */
};

/*
 * Who named netdev d. The netdevs of -nic and -net get private ids, "#nic0"
 * and "#net1" ('#' cannot start a user's id), so the id tells which flag
 * made a netdev: these two read it, so that nothing else need know.
 */
static inline bool netdev_named(const struct netdev_opts *d)
{
	return d->id[0] != '#';
}

static inline bool netdev_from_nic(const struct netdev_opts *d)
{
	return !strncmp(d->id, "#nic", 4);
}

/* "tap", "bridge", ...: the -netdev type's name, for messages and the monitor. */
const char *netdev_type_name(enum netdev_type t);

/* Sets up an empty config with a fresh per-run MAC seed. */
void net_config_init(struct net_config *nc);

/*
 * Each parses one flag's argument into nc. 0, or -EINVAL (or -ENOSPC) with
 * one line in err naming the key; the caller prints it after the flag.
 */
int net_parse_netdev(struct net_config *nc, const char *arg, char *err, size_t errlen);
int net_parse_device(struct net_config *nc, const char *arg, char *err, size_t errlen);
int net_parse_nic(struct net_config *nc, const char *arg, char *err, size_t errlen);
int net_parse_net(struct net_config *nc, const char *arg, char *err, size_t errlen);

/*
 * After all flags: pairs -net nic with -net tap|user, resolves each NIC's netdev
 * (unknown ids, a netdev used twice, a netdev nobody uses) and gives NICs
 * without mac= their default. 0, or -EINVAL with err set.
 */
int net_config_check(struct net_config *nc, char *err, size_t errlen);

/* "52:54:00:12:34:56" -> mac; 0 or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]);

/* A host-order IPv4 address as dotted decimal, into buf (16 bytes). */
const char *net_ip4_str(uint32_t addr, char buf[16]);

/* "tcp:127.0.0.1:2222-10.0.2.15:22": a hostfwd= as it is set up (48 bytes hold any). */
void net_hostfwd_str(const struct net_hostfwd *f, char *buf, size_t len);

/*
 * A parsed -netdev user as its keys, every default filled in, for the
 * monitor: "net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=...".
 */
void net_user_str(const struct netdev_user *u, char *buf, size_t len);

#endif
