/* SPDX-License-Identifier: MIT */
/*
 * The network flags, spelled and meaning what they do in QEMU:
 *
 *   -netdev tap,id=n0[,ifname=tap0][,script=PATH|no][,downscript=PATH|no]
 *   -netdev bridge,id=n0[,br=br0]
 *   -device virtio-net-pci,netdev=n0[,mac=52:54:00:..][,id=..][,host_mtu=N]
 *   -nic tap|bridge[,...netdev keys][,model=virtio][,mac=..]  (both at once)
 *   -net nic[,model=virtio][,macaddr=..] + -net tap[,ifname=,script=,...]
 *   -net none
 *
 * A backend (netdev) is one host end; a NIC is one guest end; each NIC
 * names exactly one netdev. The old -net form pairs the n-th -net nic with
 * the n-th -net tap (QEMU puts them all on one hub; with one of each, as
 * everyone writes it, the two mean the same).
 *
 * Values follow -drive's rules (disk/drive.h): ",," is a literal comma, a
 * repeated key keeps its last value, unknown keys are refused by name.
 */
#ifndef MINIVM_NET_NETOPTS_H
#define MINIVM_NET_NETOPTS_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

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
};

struct netdev_opts {
	enum netdev_type type;
	char id[NET_ID_MAX + 1];
	char ifname[IFNAMSIZ];       /* "" : the kernel picks tapN */
	char script[PATH_MAX];       /* "" : none ("no") */
	char downscript[PATH_MAX];
	char br[IFNAMSIZ];           /* NETDEV_BRIDGE */
	bool used;                   /* a NIC names it */
	bool legacy;                 /* from -net tap: paired by position */
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
 * After all flags: pairs -net nic with -net tap, resolves each NIC's netdev
 * (unknown ids, a netdev used twice, a netdev nobody uses) and gives NICs
 * without mac= their default. 0, or -EINVAL with err set.
 */
int net_config_check(struct net_config *nc, char *err, size_t errlen);

/* "52:54:00:12:34:56" -> mac; 0 or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]);

#endif
