/* SPDX-License-Identifier: MIT */
/*
 * Input format of the virtqueue fuzz target, shared by the target and the
 * seed generator. All multi-byte fields are little-endian.
 *
 *   header, FUZZ_HDR bytes:
 *     [0]       queue size = 1 << (byte % 16); big ones fail init, on purpose
 *     [1]       bit 0: VIRTIO_F_EVENT_IDX, bit 1: VIRTIO_F_INDIRECT_DESC
 *     [2]       number of 4-byte operations after the header
 *     [3]       unused
 *     [4..5]    descriptor table gpa / 2
 *     [6..7]    available ring gpa / 2
 *     [8..9]    used ring gpa / 2
 *     [10..11]  last_avail_idx to start from (index wraparound)
 *     [12..13]  used_idx to start from
 *     [14..15]  unused
 *   operations, 4 bytes each: kind, a, b, c (see FUZZ_OP_*)
 *   the rest: guest RAM contents from gpa 0 (RAM is zero beyond it)
 *
 * Guest RAM is FUZZ_RAM bytes in two regions, adjacent in guest-physical
 * space but in two separate host allocations, so AddressSanitizer sees any
 * host access that strays out of a region.
 */
#ifndef MINIVM_FUZZ_VIRTQ_H
#define MINIVM_FUZZ_VIRTQ_H

#define FUZZ_HDR 16
#define FUZZ_REGION (32 * 1024)
#define FUZZ_RAM (2 * FUZZ_REGION)

enum {
	FUZZ_OP_POP,        /* pop one chain and use its buffers */
	FUZZ_OP_POP2,       /* same: pops are the interesting part */
	FUZZ_OP_PUSH,       /* push the oldest popped head, or head a | b << 8 */
	FUZZ_OP_INTERRUPT,  /* virtq_needs_interrupt() */
	FUZZ_OP_NOTIFY,     /* virtq_set_notify(a & 1), then virtq_has_work() */
	FUZZ_OP_HAS_WORK,   /* virtq_has_work() */
	FUZZ_OP_POKE,       /* driver writes byte c at gpa a | b << 8 */
	FUZZ_OP_PUBLISH,    /* driver adds a to avail->idx */
	FUZZ_NR_OPS,
};

#endif
