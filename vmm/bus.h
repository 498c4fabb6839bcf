/* SPDX-License-Identifier: MIT */
/*
 * An address bus: devices register the port or MMIO ranges they decode, and
 * the vCPU loop hands every I/O exit to bus_read()/bus_write() without
 * knowing which device sits behind an address. x86 has two buses (port I/O
 * and MMIO); other architectures only the second.
 */
#ifndef MINIVM_BUS_H
#define MINIVM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the region's base; size is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned size);
};

struct bus_region {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
	uint64_t accesses; /* statistics, counted atomically by concurrent vCPUs */
};

struct bus {
	const char *name;
	pthread_rwlock_t lock;
	struct bus_region *regions; /* sorted by base, never overlapping */
	size_t nr, cap;
	uint64_t unhandled; /* accesses that hit no region */
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);
/* Returns 0, -EINVAL for an empty or wrapping range, -EEXIST on overlap. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name);
int bus_unregister(struct bus *bus, uint64_t base);
/*
 * Dispatch one access. Returns true if a device took it. An access nobody
 * decodes reads as all-ones (as on a real PC's floating bus) and is counted.
 */
bool bus_read(struct bus *bus, uint64_t addr, void *data, unsigned size);
bool bus_write(struct bus *bus, uint64_t addr, const void *data, unsigned size);
/*
 * The same by direction, for the vCPU loop: returns the name of the region
 * that decodes addr (for statistics and tracing), or NULL if none does.
 */
const char *bus_access(struct bus *bus, uint64_t addr, void *data, unsigned size,
		       bool is_write);
const struct bus_region *bus_find(struct bus *bus, uint64_t addr);

/* Little-endian helpers for devices that decode data of any size. */
static inline uint64_t bus_get(const void *data, unsigned size)
{
	const uint8_t *p = data;
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void bus_put(void *data, unsigned size, uint64_t v)
{
	uint8_t *p = data;

	for (unsigned i = 0; i < size; i++)
		p[i] = v >> (8 * i);
}

#endif
