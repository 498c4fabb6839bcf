// SPDX-License-Identifier: MIT
/*
 * The TAP backend (net/tap.h), as Linux's tun driver documents it in
 * Documentation/networking/tuntap.rst:
 *
 *  - TUNSETIFF with IFF_TAP (Ethernet frames, not IP packets), IFF_NO_PI
 *    (no 4-byte packet-info prefix) and IFF_VNET_HDR (a virtio_net_hdr in
 *    front of each frame instead);
 *  - TUNSETVNETHDRSZ 12: the header is virtio 1.x's virtio_net_hdr_v1,
 *    num_buffers included, so a frame passes between the descriptor and the
 *    guest's buffers unchanged. The kernel leaves num_buffers alone on read
 *    and ignores it on write;
 *  - TUNSETOFFLOAD: which unfinished work (partial checksums, TSO, UFO)
 *    we accept in frames we read. What the kernel accepts is probed once at
 *    open, so that the NIC offers the guest nothing the host cannot do;
 *  - O_NONBLOCK: the event loop never waits on the descriptor.
 *
 * Setting the interface up is left to script= (QEMU's /etc/qemu-ifup,
 * called with the interface name), or done here for -netdev bridge: add to
 * the bridge (SIOCBRADDIF) and set IFF_UP, as qemu-bridge-helper does.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/tap.h"
#include "vmm/log.h"

_Static_assert(NET_OFFLOAD_CSUM == TUN_F_CSUM && NET_OFFLOAD_TSO4 == TUN_F_TSO4 &&
	       NET_OFFLOAD_TSO6 == TUN_F_TSO6 && NET_OFFLOAD_ECN == TUN_F_TSO_ECN &&
	       NET_OFFLOAD_UFO == TUN_F_UFO, "NET_OFFLOAD_* are TUN_F_*");

extern char **environ;

struct tap {
	struct net_backend nb;      /* first: the NIC holds &tap->nb */
	char downscript[PATH_MAX];  /* "" : none */
};

static ssize_t tap_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
	ssize_t n = writev(b->fd, iov, iovcnt);

	return n < 0 ? -errno : n;
}

static ssize_t tap_recv(struct net_backend *b, void *buf, size_t len)
{
	ssize_t n = read(b->fd, buf, len);

	return n < 0 ? -errno : n;
}

/* TSO and UFO only come with partial checksums: the kernel refuses them alone. */
static unsigned int tun_offload_flags(unsigned int offloads)
{
	return offloads & NET_OFFLOAD_CSUM ? offloads : 0;
}

static int tap_set_offloads(struct net_backend *b, unsigned int offloads)
{
	unsigned long flags = tun_offload_flags(offloads & b->offloads);

	return ioctl(b->fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static void tap_close(struct net_backend *b)
{
	struct tap *t = (struct tap *)b;
	char err[NET_ERR_MAX + PATH_MAX];

	if (b->fd >= 0)
		close(b->fd);
	/* after the close: a downscript may delete the interface */
	if (t->downscript[0] && b->ifname[0] &&
	    tap_run_script(t->downscript, b->ifname, err, sizeof(err)))
		pr_warn("%s", err);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.set_offloads = tap_set_offloads,
	.close = tap_close,
};

int tap_run_script(const char *script, const char *ifname, char *err, size_t errlen)
{
	char *argv[] = { (char *)script, (char *)ifname, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int ret, status;

	/* minivm blocks and ignores signals a script expects at their defaults */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	/* stdin, stdout and stderr only, as QEMU gives its scripts */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	ret = posix_spawn(&pid, script, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret) {
		snprintf(err, errlen, "script %s %s: %s", script, ifname, strerror(ret));
		return -ret;
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "script %s %s: %s", script, ifname, strerror(errno));
			return -errno;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(err, errlen, "script %s %s: exit status %d", script, ifname,
			 WEXITSTATUS(status));
	else
		snprintf(err, errlen, "script %s %s: killed by signal %d", script, ifname,
			 WTERMSIG(status));
	return -EIO;
}

/*
 * What the kernel accepts, one offload at a time. TUNSETOFFLOAD fails
 * with EINVAL for a flag it does not know, which is its way to probe.
 */
static unsigned int tap_probe_offloads(int fd)
{
	static const unsigned int extra[] = {
		NET_OFFLOAD_TSO4, NET_OFFLOAD_TSO6, NET_OFFLOAD_UFO,
	};
	unsigned int ok = 0;

	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) < 0)
		return 0;
	ok = NET_OFFLOAD_CSUM;
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++)
		if (!ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | extra[i])))
			ok |= extra[i];
	if ((ok & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)) &&
	    !ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN)))
		ok |= NET_OFFLOAD_ECN;
	/* until the guest negotiates, hand it only finished frames */
	ioctl(fd, TUNSETOFFLOAD, 0UL);
	return ok;
}

/* Creates (or attaches to) the interface; ifname gets the kernel's choice. */
static int tap_create(const char *want, char ifname[IFNAMSIZ], char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	unsigned int features = 0;
	int fd, hdr = NET_HDR_LEN, le = 1;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "/dev/net/tun: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)) {
		snprintf(err, errlen, "/dev/net/tun: the kernel has no IFF_VNET_HDR");
		close(fd);
		return -EOPNOTSUPP;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", want[0] ? want : "tap%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;

		snprintf(err, errlen, "TAP %s: %s%s", ifr.ifr_name, strerror(e),
			 e == EPERM ? " (needs CAP_NET_ADMIN, or a TAP owned by this user)" :
			 e == EBUSY ? " (in use, or not a TAP with a vnet header)" : "");
		close(fd);
		return -e;
	}
	/* virtio 1.x headers are little-endian whatever the host is */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    (ioctl(fd, TUNSETVNETLE, &le) < 0 && errno != EINVAL)) {
		snprintf(err, errlen, "TAP %s: setting the vnet header: %s", ifr.ifr_name,
			 strerror(errno));
		close(fd);
		return -errno;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

/* -netdev bridge: what qemu-bridge-helper does, without the helper. */
static int tap_attach_bridge(const char *ifname, const char *br, char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int s, ret = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
	ifr.ifr_ifindex = if_nametoindex(ifname);
	if (!ifr.ifr_ifindex || ioctl(s, SIOCBRADDIF, &ifr) < 0) {
		ret = -errno;
		snprintf(err, errlen, "bridge %s: cannot add %s: %s", br, ifname, strerror(errno));
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto fail_up;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		goto fail_up;
	goto out;
fail_up:
	ret = -errno;
	snprintf(err, errlen, "%s: cannot bring it up: %s", ifname, strerror(errno));
out:
	close(s);
	return ret;
}

int tap_open(const struct netdev_opts *d, struct net_backend **out, char *err, size_t errlen)
{
	struct tap *t = calloc(1, sizeof(*t));
	int ret;

	if (!t) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	t->nb.ops = &tap_ops;
	t->nb.fd = tap_create(d->ifname, t->nb.ifname, err, errlen);
	if (t->nb.fd < 0) {
		ret = t->nb.fd;
		free(t);
		return ret;
	}
	t->nb.offloads = tap_probe_offloads(t->nb.fd);
	if (d->type == NETDEV_BRIDGE)
		ret = tap_attach_bridge(t->nb.ifname, d->br, err, errlen);
	else if (d->script[0])
		ret = tap_run_script(d->script, t->nb.ifname, err, errlen);
	else
		ret = 0;
	if (ret) {
		close(t->nb.fd);
		free(t);
		return ret;
	}
	if (d->type == NETDEV_TAP)
		snprintf(t->downscript, sizeof(t->downscript), "%s", d->downscript);
	*out = &t->nb;
	return 0;
}
