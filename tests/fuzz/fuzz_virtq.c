// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the fuzzer plays a hostile guest driver. Its input
 * becomes guest RAM, the ring addresses, the features and a short script of
 * device and driver actions (format in fuzz_virtq.h). Sanitizers catch bad
 * host accesses; the checks below catch logic errors: every iovec must lie
 * in one guest RAM region, a chain must respect the size limits, a broken
 * queue must stay broken, and nothing may loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_virtq.h"
#include "virtio/virtqueue.h"
#include "vmm/log.h"

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

#define MAX_INFLIGHT 256

struct fuzz {
	struct guest_mem mem;
	unsigned char *ram[2];
	struct virtq q;
	struct virtq_chain chain;
	int err;                   /* the error the queue broke with, or 0 */
	uint16_t inflight[MAX_INFLIGHT];
	unsigned int n_inflight;
};

static uint16_t le16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static void ram_setup(struct fuzz *f, const uint8_t *image, size_t len)
{
	for (int i = 0; i < 2; i++) {
		size_t off = (size_t)i * FUZZ_REGION;
		size_t n = len > off ? MIN(len - off, (size_t)FUZZ_REGION) : 0;

		f->ram[i] = calloc(1, FUZZ_REGION);
		CHECK(f->ram[i]);
		memcpy(f->ram[i], image + off, n);
		f->mem.regions[i] = (struct mem_region){
			.gpa = off, .size = FUZZ_REGION, .hva = f->ram[i],
		};
	}
	f->mem.nr = 2;
	f->mem.ram_size = FUZZ_RAM;
}

static bool in_one_region(const struct fuzz *f, const struct iovec *iov)
{
	for (int i = 0; i < 2; i++) {
		uintptr_t base = (uintptr_t)f->ram[i];
		uintptr_t p = (uintptr_t)iov->iov_base;

		if (p >= base && p - base < FUZZ_REGION &&
		    iov->iov_len <= FUZZ_REGION - (p - base))
			return true;
	}
	return false;
}

/*
 * What a device does with a chain: read the out buffers and, if write, fill
 * the in ones (which may well overlap the rings: the guest's business).
 */
static void use_chain(struct fuzz *f, bool write, uint8_t fill)
{
	const struct virtq_chain *c = &f->chain;
	uint64_t out = 0, in = 0;
	volatile uint8_t sink = 0;

	CHECK(c->head < f->q.size);
	CHECK(c->n_out + c->n_in <= VIRTQ_MAX_SEGS);
	CHECK(c->n_out + c->n_in <= f->q.size);
	for (unsigned int i = 0; i < c->n_out + c->n_in; i++) {
		const struct iovec *iov = &c->iov[i];
		uint8_t *p = iov->iov_base;

		CHECK(iov->iov_len > 0);
		CHECK(in_one_region(f, iov));
		if (i < c->n_out) {
			out += iov->iov_len;
			sink += p[0] + p[iov->iov_len - 1];
		} else {
			in += iov->iov_len;
			if (!write)
				continue;
			memset(p, fill, MIN(iov->iov_len, (size_t)256));
			p[iov->iov_len - 1] = fill;
		}
	}
	CHECK(out == c->out_len && in == c->in_len);
	CHECK(out + in <= UINT32_MAX);
	(void)sink;
}

static void check_broken(struct fuzz *f)
{
	CHECK(virtq_pop(&f->q, &f->chain) == f->err);
	CHECK(virtq_push(&f->q, 0, 0) == f->err);
	CHECK(!virtq_has_work(&f->q));
	CHECK(!virtq_needs_interrupt(&f->q));
}

static int do_pop(struct fuzz *f, bool write, uint8_t fill)
{
	int r = virtq_pop(&f->q, &f->chain);

	if (f->err) {
		CHECK(r == f->err);
		return r;
	}
	CHECK(r == 0 || r == 1 || r == -EINVAL || r == -EFAULT ||
	      r == -ELOOP || r == -E2BIG || r == -EOVERFLOW);
	if (r < 0) {
		f->err = r;
		check_broken(f);
	} else if (r == 1) {
		use_chain(f, write, fill);
		if (f->n_inflight < MAX_INFLIGHT)
			f->inflight[f->n_inflight++] = f->chain.head;
	}
	return r;
}

static void do_push(struct fuzz *f, uint16_t raw_head, uint32_t written)
{
	uint16_t head = raw_head;
	int r;

	if (f->n_inflight) {
		head = f->inflight[0];
		memmove(f->inflight, f->inflight + 1,
			--f->n_inflight * sizeof(f->inflight[0]));
	}
	r = virtq_push(&f->q, head, written);
	if (f->err)
		CHECK(r == f->err);
	else
		CHECK(r == (head < f->q.size ? 0 : -EINVAL));
}

static void do_op(struct fuzz *f, const uint8_t *op)
{
	uint8_t a = op[1], b = op[2], c = op[3];
	uint16_t idx;

	switch (op[0] % FUZZ_NR_OPS) {
	case FUZZ_OP_POP:
	case FUZZ_OP_POP2:
		do_pop(f, true, c);
		break;
	case FUZZ_OP_PUSH:
		do_push(f, a | b << 8, c * 257u);
		break;
	case FUZZ_OP_INTERRUPT:
		CHECK(!virtq_needs_interrupt(&f->q) || !f->err);
		break;
	case FUZZ_OP_NOTIFY:
		virtq_set_notify(&f->q, a & 1);
		/* fall through */
	case FUZZ_OP_HAS_WORK:
		CHECK(!virtq_has_work(&f->q) || !f->err);
		break;
	case FUZZ_OP_POKE:
		CHECK(guest_write(&f->mem, a | b << 8, &c, 1) == 0);
		break;
	case FUZZ_OP_PUBLISH:
		if (guest_read(&f->mem, f->q.avail_gpa + 2, &idx, 2) == 0) {
			idx += a;
			guest_write(&f->mem, f->q.avail_gpa + 2, &idx, 2);
		}
		break;
	}
}

/*
 * At the end, the device drains the queue. avail->idx may be at most size
 * ahead, so this takes at most size pops before the ring is empty (0) or
 * found malformed. Nothing is written meanwhile (no fill, no push) so the
 * driver's avail->idx stays put; only avail_event may alias it, and pop
 * writes last_avail_idx there, which just empties the ring.
 */
static void drain(struct fuzz *f)
{
	for (unsigned int i = 0; i <= f->q.size; i++) {
		if (do_pop(f, false, 0) <= 0)
			return;
	}
	CHECK(!"drain did not end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz f; /* the chain is 16 KiB: not on the stack */
	size_t ops_len;
	const uint8_t *ops;
	int r;

	if (size < FUZZ_HDR)
		return 0;
	ops_len = MIN((size_t)data[2] * 4, (size - FUZZ_HDR) / 4 * 4);
	ops = data + FUZZ_HDR;

	memset(&f, 0, sizeof(f));
	ram_setup(&f, ops + ops_len, size - FUZZ_HDR - ops_len);
	f.q.mem = &f.mem;
	f.q.size = 1u << (data[0] % 16);
	f.q.event_idx = data[1] & 1;
	f.q.indirect = data[1] & 2;
	f.q.desc_gpa = 2ull * le16(data + 4);
	f.q.avail_gpa = 2ull * le16(data + 6);
	f.q.used_gpa = 2ull * le16(data + 8);

	r = virtq_init(&f.q);
	if (r) {
		CHECK(r == -EINVAL || r == -EFAULT);
		f.err = r;
		check_broken(&f);
		goto out;
	}
	f.q.last_avail_idx = le16(data + 10);
	f.q.used_idx = le16(data + 12);
	f.q.signalled_used = f.q.used_idx;

	for (size_t i = 0; i < ops_len; i += 4)
		do_op(&f, ops + i);
	drain(&f);
out:
	free(f.ram[0]);
	free(f.ram[1]);
	return 0;
}
