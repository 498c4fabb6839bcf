// SPDX-License-Identifier: MIT
/*
 * The bus keeps its regions sorted so a lookup is a binary search. Lookups
 * take the lock for reading: vCPUs dispatch in parallel, and only
 * (re)registration, such as a guest moving a PCI BAR, takes it for writing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	free(bus->regions);
	pthread_rwlock_destroy(&bus->lock);
	memset(bus, 0, sizeof(*bus));
}

/* Index of the first region whose end lies above addr. */
static size_t bus_lower_bound(const struct bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct bus_region *r = &bus->regions[mid];

		if (r->base + (r->len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name)
{
	uint64_t last = base + len - 1;
	size_t i;
	int ret = 0;

	if (len == 0 || last < base || !ops)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus_lower_bound(bus, base);
	if (i < bus->nr && bus->regions[i].base <= last) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->nr == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_region *n = realloc(bus->regions, cap * sizeof(*n));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		bus->regions = n;
		bus->cap = cap;
	}
	memmove(&bus->regions[i + 1], &bus->regions[i],
		(bus->nr - i) * sizeof(bus->regions[0]));
	bus->regions[i] = (struct bus_region){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
	bus->nr++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	size_t i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = bus_lower_bound(bus, base);
	if (i < bus->nr && bus->regions[i].base == base) {
		memmove(&bus->regions[i], &bus->regions[i + 1],
			(bus->nr - i - 1) * sizeof(bus->regions[0]));
		bus->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

static struct bus_region *bus_lookup(struct bus *bus, uint64_t addr)
{
	size_t i = bus_lower_bound(bus, addr);

	if (i < bus->nr && bus->regions[i].base <= addr)
		return &bus->regions[i];
	return NULL;
}

const struct bus_region *bus_find(struct bus *bus, uint64_t addr)
{
	const struct bus_region *r;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus_lookup(bus, addr);
	pthread_rwlock_unlock(&bus->lock);
	return r;
}

/*
 * An access that straddles the end of a region goes to that region anyway,
 * with the offset of its first byte: devices see sizes they may not expect
 * and must bound their own register decoding.
 */
const char *bus_access(struct bus *bus, uint64_t addr, void *data, unsigned size,
		       bool is_write)
{
	struct bus_region *r;
	const char *name = NULL;

	pthread_rwlock_rdlock(&bus->lock);
	r = bus_lookup(bus, addr);
	if (r && (is_write ? r->ops->write != NULL : r->ops->read != NULL)) {
		__atomic_fetch_add(&r->accesses, 1, __ATOMIC_RELAXED);
		if (is_write)
			r->ops->write(r->opaque, addr - r->base, data, size);
		else
			r->ops->read(r->opaque, addr - r->base, data, size);
	} else {
		if (!is_write)
			memset(data, 0xff, size);
		__atomic_fetch_add(&bus->unhandled, 1, __ATOMIC_RELAXED);
	}
	/* Names belong to their devices, which outlive this access. */
	if (r)
		name = r->name ? r->name : "(unnamed)";
	pthread_rwlock_unlock(&bus->lock);
	return name;
}

bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned size)
{
	return bus_access(bus, addr, data, size, false) != NULL;
}

bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned size)
{
	/* A write only reads data; the cast serves the shared signature. */
	return bus_access(bus, addr, (void *)data, size, true) != NULL;
}
