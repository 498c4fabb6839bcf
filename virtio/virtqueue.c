// SPDX-License-Identifier: MIT
/*
 * Split virtqueue, device side, as in virtio 1.x section 2.7 "Split
 * Virtqueues": descriptor table (2.7.5), indirect descriptors (2.7.5.3),
 * available ring (2.7.6), used ring (2.7.8) and notification suppression
 * (2.7.7, 2.7.10). Transport-independent: virtio-pci sets the addresses.
 *
 * The ring lives in guest RAM and the guest can rewrite it while we read it,
 * from another vCPU. So:
 *  - each shared field is read exactly once into a local, and only the
 *    local is checked and used (no time-of-check/time-of-use gap);
 *  - every guest address goes through guest_ptr(), for its whole length;
 *  - anything malformed breaks the queue with -errno, never crashes or
 *    loops: a chain may have at most size descriptors (2.7.5.3.1).
 * Fields are little-endian on the wire (virtio 1.x has no legacy endianness
 * here), hence the le*toh() on every access.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "virtio/virtqueue.h"
#include "vmm/log.h"

/*
 * Accessors for the 16- and 32-bit ring fields. __atomic loads and stores
 * of naturally aligned fields (virtq_init() checks the alignment) compile
 * to single plain moves, but the compiler may neither split them nor read
 * them twice.
 */
static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static uint16_t load16_acquire(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static void store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * Copies descriptor i of a table to *d. Indirect tables need not be
 * aligned, so this is a memcpy rather than atomic loads. The compiler
 * barrier after it forbids the compiler to re-read the guest's copy later
 * instead of using ours: as far as it knows, memory has changed.
 */
static void read_desc(const void *table, uint32_t i, struct virtq_desc *d)
{
	struct virtq_desc raw;

	memcpy(&raw, (const char *)table + sizeof(raw) * i, sizeof(raw));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

/* Breaks the queue: every later call returns err. */
static int fail(struct virtq *q, int err, const char *why)
{
	q->error = err;
	pr_debug("virtqueue: %s; queue broken", why);
	return err;
}

static int usable(const struct virtq *q)
{
	if (q->error)
		return q->error;
	return q->ready ? 0 : -EINVAL;
}

static bool is_pow2(uint32_t n)
{
	return n && !(n & (n - 1));
}

/*
 * Checks size and alignment and turns the three ring addresses into host
 * pointers, each ring wholly inside one RAM region. Host RAM mappings are
 * page-aligned, so an aligned gpa gives an aligned host pointer, which the
 * atomic accessors need.
 */
static int map_rings(struct virtq *q)
{
	uint16_t n = q->size;

	if (!q->mem || !is_pow2(n) || n > VIRTQ_MAX_SIZE)
		return -EINVAL;
	if (q->desc_gpa % VIRTQ_DESC_ALIGN || q->avail_gpa % VIRTQ_AVAIL_ALIGN ||
	    q->used_gpa % VIRTQ_USED_ALIGN)
		return -EINVAL;
	q->desc = guest_ptr(q->mem, q->desc_gpa, VIRTQ_DESC_BYTES(n));
	q->avail = guest_ptr(q->mem, q->avail_gpa, VIRTQ_AVAIL_BYTES(n));
	q->used = guest_ptr(q->mem, q->used_gpa, VIRTQ_USED_BYTES(n));
	if (!q->desc || !q->avail || !q->used)
		return -EFAULT;
	q->used_event = &q->avail->ring[n];
	q->avail_event = (uint16_t *)&q->used->ring[n];
	return 0;
}

int virtq_init(struct virtq *q)
{
	int r = map_rings(q);

	/* Until an init succeeds, every call fails with its reason. */
	q->error = r;
	q->ready = !r;
	q->last_avail_idx = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->unsignalled = 0;
	q->notify = true;
	if (r)
		return r;
	/* The device owns these two; start with "kick me for everything". */
	store16(&q->used->flags, 0);
	store16(q->avail_event, 0);
	return 0;
}

/* Where a chain is being collected, and how many descriptors it may still use. */
struct walk {
	struct virtq *q;
	struct virtq_chain *c;
	unsigned int budget;
};

/* Appends one descriptor's buffer to the chain as an iovec. */
static int add_buffer(struct walk *w, const struct virtq_desc *d)
{
	struct virtq_chain *c = w->c;
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;
	struct iovec *iov;
	void *p;

	if (d->len == 0)
		return 0; /* legal, and there is nothing to map */
	/* 2.7.4.2: all device-writable buffers come after the readable ones. */
	if (!writable && c->n_in)
		return fail(w->q, -EINVAL, "readable descriptor after a writable one");
	if (c->n_out + c->n_in == VIRTQ_MAX_SEGS)
		return fail(w->q, -E2BIG, "too many segments");
	/* out_len + in_len <= UINT32_MAX holds before, so this cannot wrap. */
	if (d->len > UINT32_MAX - (c->out_len + c->in_len))
		return fail(w->q, -EOVERFLOW, "chain longer than 4 GiB");
	p = guest_ptr(w->q->mem, d->addr, d->len);
	if (!p)
		return fail(w->q, -EFAULT, "buffer outside guest RAM");

	iov = &c->iov[c->n_out + c->n_in];
	iov->iov_base = p;
	iov->iov_len = d->len;
	if (writable) {
		c->n_in++;
		c->in_len += d->len;
	} else {
		c->n_out++;
		c->out_len += d->len;
	}
	return 0;
}

static int walk_indirect(struct walk *w, const struct virtq_desc *d);

/*
 * Follows a chain through a table of n descriptors (the queue's own, or an
 * indirect one if nested), starting at index i. Every buffer descriptor
 * uses up one unit of budget, so a loop ends as a too-long chain.
 */
static int walk_table(struct walk *w, const void *table, uint32_t n,
		      uint16_t i, bool nested)
{
	struct virtq_desc d;
	int r;

	for (;;) {
		read_desc(table, i, &d);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (nested)
				return fail(w->q, -EINVAL, "nested indirect table");
			return walk_indirect(w, &d);
		}
		if (w->budget == 0)
			return fail(w->q, -ELOOP, "chain longer than the queue (a loop?)");
		w->budget--;
		r = add_buffer(w, &d);
		if (r)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return fail(w->q, -EINVAL, "next index out of range");
		i = d.next;
	}
}

/*
 * 2.7.5.3: a descriptor with INDIRECT points at a table of len / 16
 * descriptors holding the rest of the chain, starting at its entry 0. It
 * ends the chain in the main table (no NEXT); its own WRITE flag means
 * nothing and is ignored, as the spec requires.
 */
static int walk_indirect(struct walk *w, const struct virtq_desc *d)
{
	struct virtq *q = w->q;
	const void *table;

	if (!q->indirect)
		return fail(q, -EINVAL, "indirect descriptor not negotiated");
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return fail(q, -EINVAL, "indirect descriptor with NEXT");
	if (d->len == 0 || d->len % sizeof(struct virtq_desc))
		return fail(q, -EINVAL, "indirect table length not a multiple of 16");
	if (d->len / sizeof(struct virtq_desc) > q->size)
		return fail(q, -E2BIG, "indirect table larger than the queue");
	table = guest_ptr(q->mem, d->addr, d->len);
	if (!table)
		return fail(q, -EFAULT, "indirect table outside guest RAM");
	return walk_table(w, table, d->len / sizeof(struct virtq_desc), 0, true);
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	struct walk w = { .q = q, .c = c, .budget = q->size };
	uint16_t avail_idx, pending, head;
	int r;

	r = usable(q);
	if (r)
		return r;
	/*
	 * Acquire: the driver fills ring entries and descriptors before it
	 * publishes avail->idx (with a release barrier), so once we see the
	 * new idx we must also see those, not stale ones from before.
	 */
	avail_idx = load16_acquire(&q->avail->idx);
	pending = avail_idx - q->last_avail_idx;
	if (pending == 0)
		return 0;
	if (pending > q->size)
		return fail(q, -EINVAL, "avail->idx moved by more than the queue size");

	head = load16(&q->avail->ring[q->last_avail_idx & (q->size - 1)]);
	if (head >= q->size)
		return fail(q, -EINVAL, "head index out of range");
	c->head = head;
	c->n_out = 0;
	c->n_in = 0;
	c->out_len = 0;
	c->in_len = 0;
	r = walk_table(&w, q->desc, q->size, head, false);
	if (r)
		return r;

	q->last_avail_idx++;
	/* Keep the driver kicking for each new buffer while we want kicks. */
	if (q->event_idx && q->notify)
		store16(q->avail_event, q->last_avail_idx);
	return 1;
}

int virtq_push_n(struct virtq *q, const struct virtq_used_elem *elems, unsigned int n)
{
	struct virtq_used_elem *e;
	int r;

	r = usable(q);
	if (r)
		return r;
	/* A device bug rather than the guest's doing: don't break the queue. */
	if (n > q->size)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		if (elems[i].id >= q->size)
			return -EINVAL;

	for (unsigned int i = 0; i < n; i++) {
		e = &q->used->ring[(uint16_t)(q->used_idx + i) & (q->size - 1)];
		store32(&e->id, elems[i].id);
		store32(&e->len, elems[i].len);
	}
	q->used_idx += n;
	/*
	 * Release: the elements must be visible before the index that hands
	 * them over, or the driver could read a stale id/len.
	 */
	__atomic_store_n(&q->used->idx, htole16(q->used_idx), __ATOMIC_RELEASE);
	q->unsignalled = MIN(q->unsignalled + n, 65536U);
	return 0;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	struct virtq_used_elem e = { .id = head, .len = written };

	return virtq_push_n(q, &e, 1);
}

/*
 * 2.7.10 (vring_need_event): the driver asked, through used_event, for an
 * interrupt once the entry at index event is used. The entries just pushed
 * are [old, new); interrupt if event lies among them. Computed modulo 2^16
 * so it works across the wrap of the indices.
 */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_needs_interrupt(struct virtq *q)
{
	uint16_t old = q->signalled_used;
	uint32_t pushed = q->unsignalled;

	if (usable(q))
		return false;
	q->signalled_used = q->used_idx;
	q->unsignalled = 0;
	if (!pushed)
		return false;
	/*
	 * Full barrier, the classic lost-wakeup guard (a Dekker pattern). We
	 * stored used->idx and now load the driver's flags/used_event; the
	 * driver stores used_event/flags and then loads used->idx. If either
	 * side's load could pass its own earlier store (a CPU store buffer
	 * allows exactly that, even on x86), both could read old values: we
	 * skip the interrupt and the driver goes to sleep waiting for it.
	 * Acquire/release do not order a store before a load; only a full
	 * fence does.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(load16(&q->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	/* After 2^16 pushes old == new tells nothing: be safe. */
	if (pushed >= 65536)
		return true;
	return need_event(load16(q->used_event), q->used_idx, old);
}

void virtq_set_notify(struct virtq *q, bool enable)
{
	if (usable(q))
		return;
	q->notify = enable;
	if (q->event_idx) {
		/*
		 * Kick me when you add the entry at last_avail_idx. To disable,
		 * we just stop moving avail_event: the driver kicks at most
		 * once more, when it passes the old value.
		 */
		if (enable)
			store16(q->avail_event, q->last_avail_idx);
	} else {
		store16(&q->used->flags, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	}
	/*
	 * Same pattern as in virtq_needs_interrupt(), the other way round:
	 * our store (notifications on) must be globally visible before the
	 * caller's virtq_has_work() loads avail->idx, or a driver that added
	 * a buffer and still saw notifications off would not kick, and we
	 * would not see its buffer either.
	 */
	if (enable)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool virtq_has_work(struct virtq *q)
{
	if (usable(q))
		return false;
	return load16_acquire(&q->avail->idx) != q->last_avail_idx;
}
