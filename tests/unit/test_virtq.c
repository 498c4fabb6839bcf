// SPDX-License-Identifier: MIT
/*
 * Split virtqueue, device side: rings are built in real guest memory by a
 * small test "driver" below, then popped and pushed as a device would. Most
 * tests are about malformed rings: each must break the queue with -errno,
 * and the queue must stay broken.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "virtio/virtqueue.h"
#include "vmm/memory.h"
#include "tests/unit/unit.h"

#define RAM_SIZE (16ULL << 20)
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x30000ULL
#define USED_GPA 0x40000ULL
#define INDIR_GPA 0x80000ULL
#define INDIR2_GPA 0x90000ULL
#define BUF_GPA 0x100000ULL

static struct guest_mem mem;
static struct virtq q;
static struct virtq_chain chain;
static uint16_t drv_avail_idx; /* the driver's own copy of avail->idx */

static void setup(void)
{
	ck_assert_int_eq(guest_mem_init(&mem, RAM_SIZE), 0);
}

static void teardown(void)
{
	guest_mem_destroy(&mem);
}

/* ---- the test driver: writes rings the way a guest would ---- */

static void *gp(uint64_t gpa, uint64_t len)
{
	void *p = guest_ptr(&mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	ck_assert_int_eq(guest_write(&mem, gpa, &v, sizeof(v)), 0);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	ck_assert_int_eq(guest_read(&mem, gpa, &v, sizeof(v)), 0);
	return le16toh(v);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	ck_assert_int_eq(guest_read(&mem, gpa, &v, sizeof(v)), 0);
	return le32toh(v);
}

static void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc d = {
		.addr = htole64(addr),
		.len = htole32(len),
		.flags = htole16(flags),
		.next = htole16(next),
	};

	ck_assert_int_eq(guest_write(&mem, table + sizeof(d) * i, &d, sizeof(d)), 0);
}

/* Makes the chain starting at head available and publishes avail->idx. */
static void offer(uint16_t head)
{
	put16(AVAIL_GPA + 4 + 2 * (drv_avail_idx & (q.size - 1)), head);
	drv_avail_idx++;
	put16(AVAIL_GPA + 2, drv_avail_idx);
}

static uint64_t used_event_gpa(void)
{
	return AVAIL_GPA + 4 + 2ULL * q.size;
}

static uint64_t avail_event_gpa(void)
{
	return USED_GPA + 4 + 8ULL * q.size;
}

static void queue_setup(uint16_t size, bool event_idx, bool indirect)
{
	memset(&q, 0, sizeof(q));
	q.mem = &mem;
	q.size = size;
	q.desc_gpa = DESC_GPA;
	q.avail_gpa = AVAIL_GPA;
	q.used_gpa = USED_GPA;
	q.event_idx = event_idx;
	q.indirect = indirect;
	ck_assert_int_eq(virtq_init(&q), 0);
	drv_avail_idx = 0;
}

static void assert_iov(unsigned int i, uint64_t gpa, uint64_t len)
{
	ck_assert_ptr_eq(chain.iov[i].iov_base, gp(gpa, len));
	ck_assert_uint_eq(chain.iov[i].iov_len, len);
}

/* The first pop fails with err; from then on everything fails. */
static void assert_breaks(int err)
{
	ck_assert_int_eq(virtq_pop(&q, &chain), err);
	ck_assert_int_eq(virtq_pop(&q, &chain), err);
	ck_assert_int_eq(virtq_push(&q, 0, 0), err);
	ck_assert(!virtq_has_work(&q));
	ck_assert(!virtq_needs_interrupt(&q));
}

/* ---- well-formed rings ---- */

START_TEST(test_empty)
{
	queue_setup(8, false, false);
	ck_assert(!virtq_has_work(&q));
	ck_assert_int_eq(virtq_pop(&q, &chain), 0);
	ck_assert(!virtq_needs_interrupt(&q));
}
END_TEST

START_TEST(test_out_only)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 3, BUF_GPA, 100, 0, 0);
	offer(3);
	ck_assert(virtq_has_work(&q));
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.head, 3);
	ck_assert_uint_eq(chain.n_out, 1);
	ck_assert_uint_eq(chain.n_in, 0);
	ck_assert_uint_eq(chain.out_len, 100);
	ck_assert_uint_eq(chain.in_len, 0);
	assert_iov(0, BUF_GPA, 100);
	ck_assert(!virtq_has_work(&q));
	ck_assert_int_eq(virtq_pop(&q, &chain), 0);
}
END_TEST

START_TEST(test_in_only)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 4096, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.n_out, 0);
	ck_assert_uint_eq(chain.n_in, 1);
	ck_assert_uint_eq(chain.in_len, 4096);
	assert_iov(0, BUF_GPA, 4096);
}
END_TEST

/* Out-of-order indices, a zero-length descriptor that is skipped. */
START_TEST(test_mixed)
{
	const uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE;

	queue_setup(8, false, false);
	put_desc(DESC_GPA, 5, BUF_GPA, 16, N, 2);
	put_desc(DESC_GPA, 2, 0xdead0000000ULL, 0, N, 7); /* skipped, never mapped */
	put_desc(DESC_GPA, 7, BUF_GPA + 0x1000, 512, N | W, 3);
	put_desc(DESC_GPA, 3, BUF_GPA + 0x2000, 1, W, 0);
	offer(5);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.head, 5);
	ck_assert_uint_eq(chain.n_out, 1);
	ck_assert_uint_eq(chain.n_in, 2);
	ck_assert_uint_eq(chain.out_len, 16);
	ck_assert_uint_eq(chain.in_len, 513);
	assert_iov(0, BUF_GPA, 16);
	assert_iov(1, BUF_GPA + 0x1000, 512);
	assert_iov(2, BUF_GPA + 0x2000, 1);
}
END_TEST

START_TEST(test_two_chains)
{
	queue_setup(4, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 10, 0, 0);
	put_desc(DESC_GPA, 1, BUF_GPA + 0x100, 20, VIRTQ_DESC_F_WRITE, 0);
	offer(1);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.head, 1);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.head, 0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 0);
}
END_TEST

START_TEST(test_indirect)
{
	const uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE;

	queue_setup(8, false, true);
	/* The indirect descriptor's own WRITE flag is to be ignored. */
	put_desc(DESC_GPA, 4, INDIR_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | W, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 64, N, 2);
	put_desc(INDIR_GPA, 2, BUF_GPA + 0x1000, 200, N | W, 1);
	put_desc(INDIR_GPA, 1, BUF_GPA + 0x2000, 8, W, 0);
	offer(4);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.head, 4);
	ck_assert_uint_eq(chain.n_out, 1);
	ck_assert_uint_eq(chain.n_in, 2);
	ck_assert_uint_eq(chain.out_len, 64);
	ck_assert_uint_eq(chain.in_len, 208);
	assert_iov(0, BUF_GPA, 64);
	assert_iov(1, BUF_GPA + 0x1000, 200);
	assert_iov(2, BUF_GPA + 0x2000, 8);
}
END_TEST

/* 2.7.5.3.2: direct descriptors followed by one indirect descriptor. */
START_TEST(test_direct_then_indirect)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 6);
	put_desc(DESC_GPA, 6, INDIR_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA + 0x1000, 32, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.n_out, 1);
	ck_assert_uint_eq(chain.n_in, 1);
	assert_iov(0, BUF_GPA, 16);
	assert_iov(1, BUF_GPA + 0x1000, 32);
}
END_TEST

/* The longest legal chain: exactly size descriptors, here all in a table. */
START_TEST(test_indirect_full_size)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, 8 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (int i = 0; i < 8; i++)
		put_desc(INDIR_GPA, i, BUF_GPA + i, 1, i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.n_out, 8);
}
END_TEST

START_TEST(test_push)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 6, BUF_GPA, 100, VIRTQ_DESC_F_WRITE, 0);
	offer(6);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_int_eq(virtq_push(&q, chain.head, 42), 0);
	ck_assert_uint_eq(get16(USED_GPA + 2), 1);
	ck_assert_uint_eq(get32(USED_GPA + 4), 6);
	ck_assert_uint_eq(get32(USED_GPA + 8), 42);
	ck_assert(virtq_needs_interrupt(&q));
	/* Nothing pushed since: no interrupt. */
	ck_assert(!virtq_needs_interrupt(&q));
	/* A device bug is refused but does not break the queue. */
	ck_assert_int_eq(virtq_push(&q, 8, 0), -EINVAL);
	ck_assert_int_eq(virtq_push(&q, 1, 7), 0);
	ck_assert_uint_eq(get16(USED_GPA + 2), 2);
	ck_assert_uint_eq(get32(USED_GPA + 12), 1);
	ck_assert_uint_eq(get32(USED_GPA + 16), 7);
}
END_TEST

/* The 16-bit indices wrap from 65535 to 0; ring slots are idx mod size. */
START_TEST(test_wraparound)
{
	queue_setup(4, false, false);
	q.last_avail_idx = 65534;
	q.used_idx = 65534;
	q.signalled_used = 65534;
	drv_avail_idx = 65534;
	for (int i = 0; i < 4; i++)
		put_desc(DESC_GPA, i, BUF_GPA + 0x100 * i, 8, 0, 0);
	for (int i = 0; i < 4; i++)
		offer(3 - i);
	ck_assert_uint_eq(get16(AVAIL_GPA + 2), 2);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(virtq_pop(&q, &chain), 1);
		ck_assert_uint_eq(chain.head, 3 - i);
		assert_iov(0, BUF_GPA + 0x100 * (3 - i), 8);
		ck_assert_int_eq(virtq_push(&q, chain.head, i), 0);
	}
	ck_assert_int_eq(virtq_pop(&q, &chain), 0);
	ck_assert_uint_eq(q.last_avail_idx, 2);
	ck_assert_uint_eq(get16(USED_GPA + 2), 2);
	/* used idx 65534 is slot 2, 65535 slot 3, 0 slot 0, 1 slot 1. */
	ck_assert_uint_eq(get32(USED_GPA + 4 + 8 * 2), 3);
	ck_assert_uint_eq(get32(USED_GPA + 4 + 8 * 3), 2);
	ck_assert_uint_eq(get32(USED_GPA + 4 + 8 * 0), 1);
	ck_assert_uint_eq(get32(USED_GPA + 4 + 8 * 1), 0);
	ck_assert_uint_eq(get32(USED_GPA + 4 + 8 * 1 + 4), 3);
	/* A jump of more than size across the wrap is still caught. */
	put16(AVAIL_GPA + 2, 2 + 5);
	assert_breaks(-EINVAL);
}
END_TEST

static void push_n(int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(virtq_push(&q, 0, 0), 0);
}

START_TEST(test_event_idx_interrupt)
{
	queue_setup(8, true, false);
	put16(used_event_gpa(), 0);
	push_n(1); /* used 0 -> 1 passes event 0 */
	ck_assert(virtq_needs_interrupt(&q));
	put16(used_event_gpa(), 5);
	push_n(2); /* 1 -> 3: not yet */
	ck_assert(!virtq_needs_interrupt(&q));
	push_n(3); /* 3 -> 6 passes 5 */
	ck_assert(virtq_needs_interrupt(&q));
	push_n(1); /* 6 -> 7: 5 is behind us */
	ck_assert(!virtq_needs_interrupt(&q));
	/* With EVENT_IDX the flag is ignored. */
	put16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	put16(used_event_gpa(), 7);
	push_n(1);
	ck_assert(virtq_needs_interrupt(&q));
}
END_TEST

START_TEST(test_event_idx_wrap)
{
	queue_setup(8, true, false);
	q.used_idx = 65533;
	q.signalled_used = 65533;
	put16(used_event_gpa(), 65535);
	push_n(2); /* 65533 -> 65535: 65535 not used yet */
	ck_assert(!virtq_needs_interrupt(&q));
	push_n(2); /* 65535 -> 1 */
	ck_assert(virtq_needs_interrupt(&q));
}
END_TEST

START_TEST(test_no_interrupt_flag)
{
	queue_setup(8, false, false);
	put16(used_event_gpa(), 100); /* ignored without EVENT_IDX */
	push_n(1);
	ck_assert(virtq_needs_interrupt(&q));
	put16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	push_n(1);
	ck_assert(!virtq_needs_interrupt(&q));
	put16(AVAIL_GPA, 0);
	push_n(1);
	ck_assert(virtq_needs_interrupt(&q));
}
END_TEST

START_TEST(test_set_notify)
{
	queue_setup(8, false, false);
	put16(USED_GPA, 0xffff); /* init resets the device-owned fields */
	put16(avail_event_gpa(), 0xffff);
	ck_assert_int_eq(virtq_init(&q), 0);
	ck_assert_uint_eq(get16(USED_GPA), 0);
	ck_assert_uint_eq(get16(avail_event_gpa()), 0);
	virtq_set_notify(&q, false);
	ck_assert_uint_eq(get16(USED_GPA), VIRTQ_USED_F_NO_NOTIFY);
	virtq_set_notify(&q, true);
	ck_assert_uint_eq(get16(USED_GPA), 0);
	ck_assert_uint_eq(get16(avail_event_gpa()), 0);
}
END_TEST

START_TEST(test_set_notify_event_idx)
{
	queue_setup(8, true, false);
	for (int i = 0; i < 4; i++)
		put_desc(DESC_GPA, i, BUF_GPA, 8, 0, 0);
	offer(0);
	offer(1);
	/* While kicks are wanted, each pop moves avail_event along. */
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(get16(avail_event_gpa()), 1);
	virtq_set_notify(&q, false);
	ck_assert_uint_eq(get16(USED_GPA), 0); /* the flag stays 0 */
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(get16(avail_event_gpa()), 1);
	virtq_set_notify(&q, true);
	ck_assert_uint_eq(get16(avail_event_gpa()), 2);
	ck_assert_uint_eq(get16(USED_GPA), 0);
	ck_assert(!virtq_has_work(&q));
	offer(2);
	ck_assert(virtq_has_work(&q));
}
END_TEST

/* ---- virtq_init refusals ---- */

static int init_with(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	memset(&q, 0, sizeof(q));
	q.mem = &mem;
	q.size = size;
	q.desc_gpa = desc;
	q.avail_gpa = avail;
	q.used_gpa = used;
	return virtq_init(&q);
}

START_TEST(test_init_size)
{
	ck_assert_int_eq(init_with(0, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	ck_assert_int_eq(init_with(3, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	ck_assert_int_eq(init_with(65535, DESC_GPA, AVAIL_GPA, USED_GPA), -EINVAL);
	ck_assert_int_eq(init_with(1, DESC_GPA, AVAIL_GPA, USED_GPA), 0);
	ck_assert_int_eq(init_with(32768, DESC_GPA, 0x100000, 0x200000), 0);
	memset(&q, 0, sizeof(q));
	q.size = 8;
	ck_assert_int_eq(virtq_init(&q), -EINVAL); /* no memory */
}
END_TEST

START_TEST(test_init_alignment)
{
	ck_assert_int_eq(init_with(8, DESC_GPA + 8, AVAIL_GPA, USED_GPA), -EINVAL);
	ck_assert_int_eq(init_with(8, DESC_GPA, AVAIL_GPA + 1, USED_GPA), -EINVAL);
	ck_assert_int_eq(init_with(8, DESC_GPA, AVAIL_GPA, USED_GPA + 2), -EINVAL);
	ck_assert_int_eq(init_with(8, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4), 0);
}
END_TEST

START_TEST(test_init_outside_ram)
{
	/* Each ring may end exactly at the end of RAM, not one byte later. */
	ck_assert_int_eq(init_with(8, RAM_SIZE - 128, AVAIL_GPA, USED_GPA), 0);
	ck_assert_int_eq(init_with(8, RAM_SIZE - 112, AVAIL_GPA, USED_GPA), -EFAULT);
	ck_assert_int_eq(init_with(8, DESC_GPA, RAM_SIZE - 22, USED_GPA), 0);
	ck_assert_int_eq(init_with(8, DESC_GPA, RAM_SIZE - 20, USED_GPA), -EFAULT);
	ck_assert_int_eq(init_with(8, DESC_GPA, AVAIL_GPA, RAM_SIZE - 68), -EFAULT);
	ck_assert_int_eq(init_with(8, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ULL), -EFAULT);
	ck_assert_int_eq(init_with(8, 1ULL << 40, AVAIL_GPA, USED_GPA), -EFAULT);
	/* A queue that failed init refuses everything. */
	ck_assert_int_eq(virtq_pop(&q, &chain), -EFAULT);
	ck_assert_int_eq(virtq_push(&q, 0, 0), -EFAULT);
	ck_assert(!virtq_has_work(&q));
	/* So does one that was never initialised. */
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(virtq_pop(&q, &chain), -EINVAL);
}
END_TEST

/* ---- malformed rings: each breaks the queue ---- */

START_TEST(test_bad_avail_idx)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	put16(AVAIL_GPA + 2, 9);
	ck_assert(virtq_has_work(&q));
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_bad_head)
{
	queue_setup(8, false, false);
	offer(8);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_bad_next)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 8);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_loop)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	assert_breaks(-ELOOP);
}
END_TEST

/* Zero-length descriptors map nothing but still count toward the length. */
START_TEST(test_loop_zero_len)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 0, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	assert_breaks(-ELOOP);
}
END_TEST

START_TEST(test_loop_indirect)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(INDIR_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	assert_breaks(-ELOOP);
}
END_TEST

/* Direct and indirect descriptors together exceed the queue size. */
START_TEST(test_too_long_direct_plus_indirect)
{
	queue_setup(4, false, true);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, INDIR_GPA, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (int i = 0; i < 4; i++)
		put_desc(INDIR_GPA, i, BUF_GPA, 8, i < 3 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
	assert_breaks(-ELOOP);
}
END_TEST

START_TEST(test_indirect_not_negotiated)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, INDIR_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

static void indirect_table_len(uint32_t len, int err)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, len, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	assert_breaks(err);
}

START_TEST(test_indirect_len_zero)
{
	indirect_table_len(0, -EINVAL);
}
END_TEST

START_TEST(test_indirect_len_not_multiple)
{
	indirect_table_len(24, -EINVAL);
}
END_TEST

START_TEST(test_indirect_len_too_big)
{
	indirect_table_len(9 * 16, -E2BIG);
}
END_TEST

START_TEST(test_indirect_len_huge)
{
	indirect_table_len(0xfffffff0, -E2BIG);
}
END_TEST

START_TEST(test_indirect_outside_ram)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	assert_breaks(-EFAULT);
}
END_TEST

START_TEST(test_indirect_nested)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(INDIR_GPA, 1, INDIR2_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR2_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_indirect_with_next)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, 0, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_indirect_bad_next)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, INDIR_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	/* 2 is inside the queue but outside this 2-entry table. */
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_readable_after_writable)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

START_TEST(test_readable_after_writable_indirect)
{
	queue_setup(8, false, true);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, INDIR_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(INDIR_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	assert_breaks(-EINVAL);
}
END_TEST

static void buffer_at(uint64_t gpa, uint32_t len, int want)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	if (want == 1)
		ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	else
		assert_breaks(want);
}

START_TEST(test_buffer_outside_ram)
{
	buffer_at(RAM_SIZE, 1, -EFAULT);
	buffer_at(1ULL << 40, 4096, -EFAULT);
	buffer_at(0xfffffffffffffff0ULL, 0x20, -EFAULT); /* wraps */
	buffer_at(RAM_SIZE - 4096, 4097, -EFAULT);
}
END_TEST

START_TEST(test_buffer_last_byte)
{
	buffer_at(RAM_SIZE - 1, 1, 1);
	assert_iov(0, RAM_SIZE - 1, 1);
	buffer_at(RAM_SIZE - 1, 2, -EFAULT);
}
END_TEST

/*
 * Two RAM regions adjacent in guest-physical space but not on the host: a
 * buffer across the boundary would make a host iovec run off the first one.
 */
START_TEST(test_buffer_spans_regions)
{
	struct guest_mem split = {
		.ram_size = 12 << 20,
		.nr = 2,
		.regions = {
			{ .gpa = 0, .size = 8 << 20, .hva = mem.base },
			{ .gpa = 8 << 20, .size = 4 << 20,
			  .hva = (char *)mem.base + (12 << 20) },
		},
	};

	queue_setup(8, false, false);
	q.mem = &split;
	ck_assert_int_eq(virtq_init(&q), 0);
	put_desc(DESC_GPA, 0, (8 << 20) - 8, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, 8 << 20, 8, 0, 0);
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_ptr_eq(chain.iov[1].iov_base, (char *)mem.base + (12 << 20));
	put_desc(DESC_GPA, 2, (8 << 20) - 8, 16, 0, 0);
	offer(2);
	assert_breaks(-EFAULT);
}
END_TEST

/* A chain of n one-byte readable descriptors in a queue of the given size. */
static void long_chain(uint16_t size, unsigned int n)
{
	queue_setup(size, false, false);
	for (unsigned int i = 0; i < n; i++)
		put_desc(DESC_GPA, i, BUF_GPA + i, 1, i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(0);
}

START_TEST(test_max_segs)
{
	long_chain(2048, VIRTQ_MAX_SEGS);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.n_out, VIRTQ_MAX_SEGS);
	ck_assert_uint_eq(chain.out_len, VIRTQ_MAX_SEGS);
	assert_iov(VIRTQ_MAX_SEGS - 1, BUF_GPA + VIRTQ_MAX_SEGS - 1, 1);
}
END_TEST

START_TEST(test_too_many_segs)
{
	long_chain(2048, VIRTQ_MAX_SEGS + 1);
	assert_breaks(-E2BIG);
}
END_TEST

/* n whole-RAM descriptors plus one of last bytes, all readable. */
static void big_chain(unsigned int n, uint32_t last)
{
	queue_setup(512, false, false);
	for (unsigned int i = 0; i < n; i++)
		put_desc(DESC_GPA, i, 0, RAM_SIZE, VIRTQ_DESC_F_NEXT, i + 1);
	put_desc(DESC_GPA, n, 0, last, 0, 0);
	offer(0);
}

START_TEST(test_total_len_max)
{
	big_chain(255, RAM_SIZE - 1); /* 256 * 16 MiB - 1 = UINT32_MAX */
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_uint_eq(chain.out_len, UINT32_MAX);
}
END_TEST

START_TEST(test_total_len_overflow)
{
	big_chain(255, RAM_SIZE);
	assert_breaks(-EOVERFLOW);
}
END_TEST

/* Broken stays broken even after the guest fixes the ring; init recovers. */
START_TEST(test_broken_is_sticky)
{
	queue_setup(8, false, false);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	offer(9);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
	ck_assert_int_eq(virtq_pop(&q, &chain), -EINVAL);
	put16(AVAIL_GPA + 4 + 2, 0);
	ck_assert_int_eq(virtq_pop(&q, &chain), -EINVAL);
	virtq_set_notify(&q, false);
	ck_assert_uint_eq(get16(USED_GPA), 0);
	ck_assert_int_eq(virtq_init(&q), 0);
	drv_avail_idx = 0;
	offer(0);
	ck_assert_int_eq(virtq_pop(&q, &chain), 1);
}
END_TEST

static Suite *virtq_suite(void)
{
	Suite *s = suite_create("virtq");
	TCase *ok = tcase_create("wellformed");
	TCase *init = tcase_create("init");
	TCase *bad = tcase_create("malformed");

	tcase_add_checked_fixture(ok, setup, teardown);
	tcase_add_test(ok, test_empty);
	tcase_add_test(ok, test_out_only);
	tcase_add_test(ok, test_in_only);
	tcase_add_test(ok, test_mixed);
	tcase_add_test(ok, test_two_chains);
	tcase_add_test(ok, test_indirect);
	tcase_add_test(ok, test_direct_then_indirect);
	tcase_add_test(ok, test_indirect_full_size);
	tcase_add_test(ok, test_push);
	tcase_add_test(ok, test_wraparound);
	tcase_add_test(ok, test_event_idx_interrupt);
	tcase_add_test(ok, test_event_idx_wrap);
	tcase_add_test(ok, test_no_interrupt_flag);
	tcase_add_test(ok, test_set_notify);
	tcase_add_test(ok, test_set_notify_event_idx);
	tcase_add_test(ok, test_max_segs);
	tcase_add_test(ok, test_total_len_max);
	suite_add_tcase(s, ok);

	tcase_add_checked_fixture(init, setup, teardown);
	tcase_add_test(init, test_init_size);
	tcase_add_test(init, test_init_alignment);
	tcase_add_test(init, test_init_outside_ram);
	suite_add_tcase(s, init);

	tcase_add_checked_fixture(bad, setup, teardown);
	tcase_add_test(bad, test_bad_avail_idx);
	tcase_add_test(bad, test_bad_head);
	tcase_add_test(bad, test_bad_next);
	tcase_add_test(bad, test_loop);
	tcase_add_test(bad, test_loop_zero_len);
	tcase_add_test(bad, test_loop_indirect);
	tcase_add_test(bad, test_too_long_direct_plus_indirect);
	tcase_add_test(bad, test_indirect_not_negotiated);
	tcase_add_test(bad, test_indirect_len_zero);
	tcase_add_test(bad, test_indirect_len_not_multiple);
	tcase_add_test(bad, test_indirect_len_too_big);
	tcase_add_test(bad, test_indirect_len_huge);
	tcase_add_test(bad, test_indirect_outside_ram);
	tcase_add_test(bad, test_indirect_nested);
	tcase_add_test(bad, test_indirect_with_next);
	tcase_add_test(bad, test_indirect_bad_next);
	tcase_add_test(bad, test_readable_after_writable);
	tcase_add_test(bad, test_readable_after_writable_indirect);
	tcase_add_test(bad, test_buffer_outside_ram);
	tcase_add_test(bad, test_buffer_last_byte);
	tcase_add_test(bad, test_buffer_spans_regions);
	tcase_add_test(bad, test_too_many_segs);
	tcase_add_test(bad, test_total_len_overflow);
	tcase_add_test(bad, test_broken_is_sticky);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	return unit_run(virtq_suite());
}
