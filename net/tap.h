/* SPDX-License-Identifier: MIT */
/*
 * The TAP backend: a Linux TAP interface (Documentation/networking/tuntap.rst)
 * behind struct net_backend. Frames written to the file descriptor appear
 * on the host as received by the interface; frames the host sends out of
 * it are read from the descriptor. With IFF_VNET_HDR each frame carries a
 * virtio_net_hdr, so checksum and segmentation work can stay undone on
 * both sides (TUNSETOFFLOAD says which the reader accepts).
 */
#ifndef MINIVM_NET_TAP_H
#define MINIVM_NET_TAP_H

#include <stddef.h>

#include "net/backend.h"
#include "net/netopts.h"

/*
 * Opens the TAP that d describes: creates or attaches to ifname (or lets
 * the kernel pick tapN), runs d->script with the interface's name, or for
 * NETDEV_BRIDGE adds it to d->br and brings it up. Returns 0 with *out
 * set, or -errno with one line in err (the caller prints it).
 */
int tap_open(const struct netdev_opts *d, struct net_backend **out, char *err, size_t errlen);

/*
 * Runs script with ifname as its only argument and waits for it. 0, or
 * -errno with err set ("script /etc/qemu-ifup tap0: exit status 1").
 */
int tap_run_script(const char *script, const char *ifname, char *err, size_t errlen);

#endif
