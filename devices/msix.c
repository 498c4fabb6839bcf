// SPDX-License-Identifier: MIT
/*
 * MSI-X, after PCI Local Bus 3.0 §6.8.2.
 *
 * The capability is 12 bytes: ID and next pointer, Message Control (Table
 * Size N - 1 read-only; Function Mask, bit 14, and MSI-X Enable, bit 15,
 * writable), then the table's and the PBA's offset in their BAR, each with
 * the BAR's number (BIR) in bits 2:0. The table has N 16-byte entries:
 * message address low (bits 1:0 read as zero) and high, message data, and
 * vector control (bit 0 masks the vector, the rest is reserved). The PBA
 * has one bit per vector, in qwords.
 *
 * A vector is masked while its own Mask bit or the Function Mask is set; a
 * notification for a masked vector sets its pending bit instead, and the
 * message goes out when the vector becomes unmasked. Vectors start masked
 * (§6.8.2.9). Everything here may be poked by a hostile guest: table and
 * PBA accesses that are not aligned dwords or qwords, the only kind the
 * spec defines, read as zero and write nothing.
 *
 * Callbacks run after the lock is dropped, so they may call back in; a
 * deliver() for a pending vector may race with the guest masking it again,
 * as a message in flight does on real hardware.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/msix.h"

#define MSIX_CAP_CONTROL 2 /* offsets in the capability */
#define MSIX_CAP_TABLE 4
#define MSIX_CAP_PBA 8
#define MSIX_CAP_BODY_LEN 10 /* after ID and next pointer */
#define MSIX_BIR_MASK 0x7u

static uint32_t msix_table_size(unsigned nvec)
{
	return nvec * MSIX_ENTRY_SIZE;
}

static uint32_t msix_pba_size(unsigned nvec)
{
	return (nvec + 63) / 64 * 8;
}

static bool msix_in(uint64_t offset, uint32_t base, uint32_t len)
{
	return offset >= base && offset - base < len;
}

int msix_init(struct msix *m, struct pci_device *d, unsigned nvec,
	      unsigned bar, uint32_t table_off, uint32_t pba_off)
{
	uint32_t table_len = msix_table_size(nvec), pba_len = msix_pba_size(nvec);
	uint8_t body[MSIX_CAP_BODY_LEN];
	uint64_t bar_size;
	int ret;

	if (nvec < 1 || nvec > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS)
		return -EINVAL;
	bar_size = d->bars[bar].size;
	if (!bar_size || d->bars[bar].flags & PCI_BAR_IO || d->msix)
		return -EINVAL;
	if (table_off & MSIX_BIR_MASK || pba_off & MSIX_BIR_MASK ||
	    table_off > bar_size || table_len > bar_size - table_off ||
	    pba_off > bar_size || pba_len > bar_size - pba_off ||
	    ((uint64_t)table_off < (uint64_t)pba_off + pba_len &&
	     (uint64_t)pba_off < (uint64_t)table_off + table_len))
		return -EINVAL;

	memset(m, 0, sizeof(*m));
	m->nvec = nvec;
	m->table = calloc(nvec, sizeof(*m->table));
	m->pba = calloc(msix_pba_size(m->nvec) / 8, sizeof(*m->pba));
	if (!m->table || !m->pba) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nvec; i++)
		m->table[i].ctrl = MSIX_ENTRY_CTRL_MASKED;

	bus_put(body, 2, nvec - 1);
	bus_put(body + 2, 4, table_off | bar);
	bus_put(body + 6, 4, pba_off | bar);
	ret = pci_add_capability(d, PCI_CAP_ID_MSIX, body, sizeof(body), &m->cap);
	if (ret)
		goto fail;
	pci_device_set_wmask(d, m->cap + MSIX_CAP_CONTROL, 2,
			     MSIX_CTRL_ENABLE | MSIX_CTRL_FUNCTION_MASK);
	pthread_mutex_init(&m->lock, NULL);
	m->dev = d;
	m->bar = bar;
	m->table_off = table_off;
	m->pba_off = pba_off;
	d->msix = m;
	return 0;
fail:
	free(m->table);
	free(m->pba);
	memset(m, 0, sizeof(*m));
	return ret;
}

void msix_destroy(struct msix *m)
{
	if (!m->table)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->table);
	free(m->pba);
	memset(m, 0, sizeof(*m));
}

void msix_set_ops(struct msix *m, const struct msix_ops *ops, void *ctx)
{
	pthread_mutex_lock(&m->lock);
	m->ops = ops;
	m->ctx = ctx;
	pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(struct msix *m)
{
	bool on;

	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

/* lock held */
static bool msix_masked(const struct msix *m, unsigned vec)
{
	return !m->enabled || m->function_masked ||
	       m->table[vec].ctrl & MSIX_ENTRY_CTRL_MASKED;
}

static bool msix_pending(const struct msix *m, unsigned vec)
{
	return m->pba[vec / 64] >> (vec % 64) & 1;
}

static void msix_set_pending(struct msix *m, unsigned vec, bool on)
{
	uint64_t bit = 1ULL << (vec % 64);

	if (on)
		m->pba[vec / 64] |= bit;
	else
		m->pba[vec / 64] &= ~bit;
}

static uint64_t msix_addr(const struct msix_entry *e)
{
	return (uint64_t)e->addr_hi << 32 | e->addr_lo;
}

static int msix_deliver(const struct msix_ops *ops, void *ctx, uint64_t addr,
			uint32_t data)
{
	if (!ops || !ops->deliver)
		return -ENODEV;
	return ops->deliver(ctx, addr, data);
}

int msix_notify(struct msix *m, unsigned vec)
{
	const struct msix_ops *ops;
	uint64_t addr;
	uint32_t data;
	void *ctx;

	pthread_mutex_lock(&m->lock);
	if (vec >= m->nvec) {
		pthread_mutex_unlock(&m->lock);
		return -EINVAL;
	}
	if (!m->enabled) {
		pthread_mutex_unlock(&m->lock);
		return -EAGAIN;
	}
	if (msix_masked(m, vec)) {
		msix_set_pending(m, vec, true);
		pthread_mutex_unlock(&m->lock);
		return MSIX_PENDING;
	}
	addr = msix_addr(&m->table[vec]);
	data = m->table[vec].data;
	ops = m->ops;
	ctx = m->ctx;
	pthread_mutex_unlock(&m->lock);
	return msix_deliver(ops, ctx, addr, data);
}

int msix_vector_get(struct msix *m, unsigned vec, struct msix_msg *msg)
{
	pthread_mutex_lock(&m->lock);
	if (vec >= m->nvec) {
		pthread_mutex_unlock(&m->lock);
		return -EINVAL;
	}
	msg->addr = msix_addr(&m->table[vec]);
	msg->data = m->table[vec].data;
	msg->masked = msix_masked(m, vec);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/*
 * Sends the pending vectors in [first, last] that are no longer masked,
 * one at a time with the lock dropped around each deliver().
 */
static void msix_flush_pending(struct msix *m, unsigned first, unsigned last)
{
	for (unsigned vec = first; vec <= last; vec++) {
		const struct msix_ops *ops;
		uint64_t addr;
		uint32_t data;
		void *ctx;

		pthread_mutex_lock(&m->lock);
		while (vec <= last && (!msix_pending(m, vec) || msix_masked(m, vec)))
			vec++;
		if (vec > last) {
			pthread_mutex_unlock(&m->lock);
			return;
		}
		msix_set_pending(m, vec, false);
		addr = msix_addr(&m->table[vec]);
		data = m->table[vec].data;
		ops = m->ops;
		ctx = m->ctx;
		pthread_mutex_unlock(&m->lock);
		msix_deliver(ops, ctx, addr, data);
	}
}

static void msix_changed(struct msix *m, unsigned first, unsigned last)
{
	const struct msix_ops *ops;
	void *ctx;

	pthread_mutex_lock(&m->lock);
	ops = m->ops;
	ctx = m->ctx;
	pthread_mutex_unlock(&m->lock);
	if (!ops || !ops->vector_changed)
		return;
	for (unsigned vec = first; vec <= last; vec++)
		ops->vector_changed(ctx, vec);
}

void msix_config_write(struct msix *m, unsigned offset, unsigned size)
{
	unsigned reg = m->cap + MSIX_CAP_CONTROL;
	uint16_t ctrl;
	bool changed;

	if (!(offset < reg + 2 && reg < offset + size))
		return;
	ctrl = pci_config_get(m->dev, reg, 2);
	pthread_mutex_lock(&m->lock);
	changed = m->enabled != !!(ctrl & MSIX_CTRL_ENABLE) ||
		  m->function_masked != !!(ctrl & MSIX_CTRL_FUNCTION_MASK);
	m->enabled = ctrl & MSIX_CTRL_ENABLE;
	m->function_masked = ctrl & MSIX_CTRL_FUNCTION_MASK;
	pthread_mutex_unlock(&m->lock);
	if (!changed)
		return;
	msix_changed(m, 0, m->nvec - 1);
	msix_flush_pending(m, 0, m->nvec - 1);
}

/* The only accesses §6.8.2 defines: aligned dwords and qwords. */
static bool msix_access_ok(uint64_t rel, unsigned size)
{
	return (size == 4 || size == 8) && rel % size == 0;
}

static uint32_t msix_table_read32(const struct msix *m, uint32_t rel)
{
	const struct msix_entry *e = &m->table[rel / MSIX_ENTRY_SIZE];

	switch (rel % MSIX_ENTRY_SIZE) {
	case MSIX_ENTRY_ADDR_LO:
		return e->addr_lo;
	case MSIX_ENTRY_ADDR_HI:
		return e->addr_hi;
	case MSIX_ENTRY_DATA:
		return e->data;
	default:
		return e->ctrl;
	}
}

/* lock held; returns true if the vector's mask bit went from 1 to 0 */
static bool msix_table_write32(struct msix *m, uint32_t rel, uint32_t val,
			       bool *changed)
{
	struct msix_entry *e = &m->table[rel / MSIX_ENTRY_SIZE];
	uint32_t *field, old;

	switch (rel % MSIX_ENTRY_SIZE) {
	case MSIX_ENTRY_ADDR_LO:
		field = &e->addr_lo;
		val &= ~3u;
		break;
	case MSIX_ENTRY_ADDR_HI:
		field = &e->addr_hi;
		break;
	case MSIX_ENTRY_DATA:
		field = &e->data;
		break;
	default:
		field = &e->ctrl;
		val &= MSIX_ENTRY_CTRL_MASKED;
		break;
	}
	old = *field;
	*field = val;
	*changed |= old != val;
	return field == &e->ctrl && old & MSIX_ENTRY_CTRL_MASKED &&
	       !(val & MSIX_ENTRY_CTRL_MASKED);
}

bool msix_bar_read(struct msix *m, uint64_t offset, void *data, unsigned size)
{
	uint64_t v = 0;

	if (msix_in(offset, m->table_off, msix_table_size(m->nvec))) {
		uint32_t rel = offset - m->table_off;

		if (msix_access_ok(rel, size)) {
			pthread_mutex_lock(&m->lock);
			v = msix_table_read32(m, rel);
			if (size == 8)
				v |= (uint64_t)msix_table_read32(m, rel + 4) << 32;
			pthread_mutex_unlock(&m->lock);
		}
	} else if (msix_in(offset, m->pba_off, msix_pba_size(m->nvec))) {
		uint32_t rel = offset - m->pba_off;

		if (msix_access_ok(rel, size)) {
			pthread_mutex_lock(&m->lock);
			v = m->pba[rel / 8] >> (rel % 8 * 8);
			pthread_mutex_unlock(&m->lock);
		}
	} else {
		return false;
	}
	bus_put(data, size, v);
	return true;
}

bool msix_bar_write(struct msix *m, uint64_t offset, const void *data,
		    unsigned size)
{
	bool changed = false, unmasked = false;
	uint32_t rel;
	unsigned vec;
	uint64_t v;

	if (msix_in(offset, m->pba_off, msix_pba_size(m->nvec)))
		return true; /* read-only */
	if (!msix_in(offset, m->table_off, msix_table_size(m->nvec)))
		return false;
	rel = offset - m->table_off;
	if (!msix_access_ok(rel, size))
		return true;
	v = bus_get(data, size);
	vec = rel / MSIX_ENTRY_SIZE;
	pthread_mutex_lock(&m->lock);
	unmasked = msix_table_write32(m, rel, v, &changed);
	if (size == 8)
		unmasked |= msix_table_write32(m, rel + 4, v >> 32, &changed);
	pthread_mutex_unlock(&m->lock);
	if (changed)
		msix_changed(m, vec, vec);
	if (unmasked)
		msix_flush_pending(m, vec, vec);
	return true;
}
