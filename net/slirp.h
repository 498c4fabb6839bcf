/* SPDX-License-Identifier: MIT */
/*
 * The user-mode backend, -netdev user: a guest network that exists only
 * inside minivm, run by libslirp (https://gitlab.freedesktop.org/slirp/libslirp).
 * The guest gets an address, a gateway and a DNS server by DHCP; its TCP
 * and UDP flows become ordinary sockets of the minivm process, and each
 * hostfwd= listens on a host port and passes connections in. No TAP, no
 * privileges, and nothing the guest does is seen on the host's network as
 * anything but minivm's own traffic.
 */
#ifndef MINIVM_NET_SLIRP_H
#define MINIVM_NET_SLIRP_H

#include <stddef.h>

#include "net/backend.h"
#include "net/netopts.h"

/*
 * Opens the user-mode network d->user describes and starts its thread.
 * Returns 0 with *out set, or -errno with one line in err (the caller
 * prints it): a hostfwd= whose host port cannot be bound, for one.
 */
int usernet_open(const struct netdev_opts *d, struct net_backend **out, char *err,
		 size_t errlen);

#endif
