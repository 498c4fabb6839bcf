/* SPDX-License-Identifier: MIT */
/*
 * Small helpers for struct iovec arrays, shared by the format drivers: the
 * guest hands requests over as scatter lists, and drivers that cannot pass
 * them straight to preadv/pwritev (O_DIRECT bounces, qcow2 clusters) copy
 * through flat buffers.
 */
#ifndef MINIVM_DISK_IOV_H
#define MINIVM_DISK_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

static inline size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/*
 * Copies len bytes between buf and the iovec starting skip bytes in:
 * to_iov selects the direction.
 */
static inline void iov_copy(const struct iovec *iov, int iovcnt, size_t skip, void *buf,
			    size_t len, bool to_iov)
{
	uint8_t *b = buf;

	for (int i = 0; i < iovcnt && len; i++) {
		size_t n;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - skip;
		if (n > len)
			n = len;
		if (to_iov)
			memcpy((uint8_t *)iov[i].iov_base + skip, b, n);
		else
			memcpy(b, (uint8_t *)iov[i].iov_base + skip, n);
		b += n;
		len -= n;
		skip = 0;
	}
}

#endif
