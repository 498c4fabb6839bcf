// SPDX-License-Identifier: MIT
/*
 * Writes a few well-formed and malformed seed inputs for fuzz_virtq into the
 * directory given as argv[1], so the fuzzer starts from real rings instead
 * of having to discover the layout. Format: tests/fuzz/fuzz_virtq.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/fuzz/fuzz_virtq.h"
#include "virtio/virtqueue.h"

#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define TABLE 0x4000
#define BUF 0x5000

struct seed {
	uint8_t hdr[FUZZ_HDR];
	uint8_t ops[255 * 4];
	unsigned int n_ops;
	uint8_t ram[FUZZ_RAM];
	size_t ram_len;
};

static void put(struct seed *s, uint64_t gpa, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		s->ram[gpa + i] = v >> (8 * i);
	if (gpa + bytes > s->ram_len)
		s->ram_len = gpa + bytes;
}

static void start_at(struct seed *s, int size_log2, int features,
		     uint16_t desc, uint16_t avail, uint16_t used)
{
	memset(s, 0, sizeof(*s));
	s->hdr[0] = size_log2;
	s->hdr[1] = features;
	s->hdr[4] = (desc / 2) & 0xff;
	s->hdr[5] = (desc / 2) >> 8;
	s->hdr[6] = (avail / 2) & 0xff;
	s->hdr[7] = (avail / 2) >> 8;
	s->hdr[8] = (used / 2) & 0xff;
	s->hdr[9] = (used / 2) >> 8;
}

static void start(struct seed *s, int size_log2, int features)
{
	start_at(s, size_log2, features, DESC, AVAIL, USED);
}

static void desc(struct seed *s, uint64_t table, int i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	put(s, table + 16 * i, addr, 8);
	put(s, table + 16 * i + 8, len, 4);
	put(s, table + 16 * i + 12, flags, 2);
	put(s, table + 16 * i + 14, next, 2);
}

/* Avail ring holding heads[0..n) from slot 0, avail->idx = n. */
static void avail(struct seed *s, int size, const uint16_t *heads, int n)
{
	for (int i = 0; i < n; i++)
		put(s, AVAIL + 4 + 2 * (i % size), heads[i], 2);
	put(s, AVAIL + 2, n, 2);
}

static void op(struct seed *s, int kind, int a, int b, int c)
{
	uint8_t *o = s->ops + 4 * s->n_ops++;

	o[0] = kind;
	o[1] = a;
	o[2] = b;
	o[3] = c;
}

/* Pop everything, push it back, ask about interrupts and notifications. */
static void device_ops(struct seed *s, int n)
{
	for (int i = 0; i < n; i++)
		op(s, FUZZ_OP_POP, 0, 0, 0x5a);
	for (int i = 0; i < n; i++)
		op(s, FUZZ_OP_PUSH, 0, 0, 1);
	op(s, FUZZ_OP_INTERRUPT, 0, 0, 0);
	op(s, FUZZ_OP_NOTIFY, 1, 0, 0);
	op(s, FUZZ_OP_PUBLISH, 1, 0, 0);
	op(s, FUZZ_OP_POP, 0, 0, 0);
}

/*
 * A 2048-entry queue (its table fills the second region) with one chain of
 * n one-byte readable descriptors: VIRTQ_MAX_SEGS is the limit.
 */
static void long_chain(struct seed *s, int n)
{
	start_at(s, 11, 0, FUZZ_REGION, AVAIL, USED);
	for (int i = 0; i < n; i++)
		desc(s, FUZZ_REGION, i, BUF + i, 1,
		     i + 1 < n ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	put(s, AVAIL + 2, 1, 2);
	device_ops(s, 1);
}

static int save(const char *dir, const char *name, struct seed *s)
{
	char path[4096];
	FILE *f;

	s->hdr[2] = s->n_ops;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return 1;
	fwrite(s->hdr, 1, FUZZ_HDR, f);
	fwrite(s->ops, 1, 4 * s->n_ops, f);
	fwrite(s->ram, 1, s->ram_len, f);
	return fclose(f) != 0;
}

int main(int argc, char **argv)
{
	static struct seed s;
	const uint16_t heads[] = { 0, 3, 5, 1 };
	const uint16_t N = VIRTQ_DESC_F_NEXT, W = VIRTQ_DESC_F_WRITE;
	const uint16_t I = VIRTQ_DESC_F_INDIRECT;
	const char *dir = argv[1];
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}

	/* Direct chains: out only, out + in, in only, zero-length in the middle. */
	start(&s, 3, 0);
	desc(&s, DESC, 0, BUF, 64, 0, 0);
	desc(&s, DESC, 3, BUF + 0x100, 16, N, 4);
	desc(&s, DESC, 4, BUF + 0x200, 0, N, 6);
	desc(&s, DESC, 6, BUF + 0x300, 512, W, 0);
	desc(&s, DESC, 5, BUF + 0x800, 8, W, 0);
	desc(&s, DESC, 1, BUF + 0x900, 8, N, 2);
	desc(&s, DESC, 2, 0x7ff8, 8, W | N, 7);
	desc(&s, DESC, 7, 0x8000, 8, W, 0);
	avail(&s, 8, heads, 4);
	device_ops(&s, 4);
	err |= save(dir, "direct", &s);

	/* The same with EVENT_IDX, ring indices about to wrap. */
	s.hdr[1] = 1;
	s.hdr[10] = s.hdr[12] = 0xfe; /* 0xfffe */
	s.hdr[11] = s.hdr[13] = 0xff;
	put(&s, AVAIL + 2, 2, 2);
	for (int i = 0; i < 4; i++)
		put(&s, AVAIL + 4 + 2 * ((0xfffe + i) % 8), heads[i], 2);
	err |= save(dir, "wrap-event-idx", &s);

	/* Indirect tables, one after a direct descriptor. */
	start(&s, 4, 3);
	desc(&s, DESC, 0, TABLE, 3 * 16, I, 0);
	desc(&s, TABLE, 0, BUF, 32, N, 1);
	desc(&s, TABLE, 1, BUF + 0x100, 32, N | W, 2);
	desc(&s, TABLE, 2, BUF + 0x200, 32, W, 0);
	desc(&s, DESC, 5, BUF + 0x300, 8, N, 9);
	desc(&s, DESC, 9, TABLE + 0x100, 16, I, 0);
	desc(&s, TABLE + 0x100, 0, BUF + 0x400, 100, W, 0);
	avail(&s, 16, (const uint16_t[]){ 0, 5 }, 2);
	device_ops(&s, 2);
	err |= save(dir, "indirect", &s);

	/* Malformed: a loop, then nested indirect (needs the first to be fixed). */
	start(&s, 3, 2);
	desc(&s, DESC, 0, BUF, 8, N, 1);
	desc(&s, DESC, 1, BUF, 8, N, 0);
	avail(&s, 8, heads, 1);
	device_ops(&s, 1);
	err |= save(dir, "loop", &s);

	start(&s, 3, 2);
	desc(&s, DESC, 0, TABLE, 32, I, 0);
	desc(&s, TABLE, 0, BUF, 8, N, 1);
	desc(&s, TABLE, 1, TABLE, 32, I, 0);
	avail(&s, 8, heads, 1);
	device_ops(&s, 1);
	err |= save(dir, "nested-indirect", &s);

	/* A buffer across the two regions, and one past the end of RAM. */
	start(&s, 3, 0);
	desc(&s, DESC, 0, 0x7ff0, 32, 0, 0);
	desc(&s, DESC, 3, FUZZ_RAM - 1, 2, W, 0);
	avail(&s, 8, (const uint16_t[]){ 3, 0 }, 2);
	device_ops(&s, 2);
	err |= save(dir, "outside", &s);

	long_chain(&s, VIRTQ_MAX_SEGS);
	err |= save(dir, "max-segs", &s);
	long_chain(&s, VIRTQ_MAX_SEGS + 1);
	err |= save(dir, "too-many-segs", &s);

	return err;
}
