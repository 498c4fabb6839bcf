/* SPDX-License-Identifier: MIT */
/*
 * Guest physical memory. RAM is host anonymous memory, mapped into the guest
 * with KVM_SET_USER_MEMORY_REGION. On x86, RAM beyond MEM_HOLE_START is moved
 * above 4 GiB so that the range below 4 GiB stays free for PCI BARs, the
 * IOAPIC and the LAPIC, as on real PCs.
 *
 * Every guest-supplied address goes through guest_ptr(), which checks that
 * the whole range lies inside one RAM region. Nothing else turns a guest
 * address into a host pointer.
 */
#ifndef MINIVM_MEMORY_H
#define MINIVM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_MAX_REGIONS 4
#define MEM_HOLE_START 0xC0000000ULL /* 3 GiB: the 32-bit PCI/MMIO window starts here */
#define MEM_HOLE_END 0x100000000ULL  /* 4 GiB */

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;
};

struct guest_mem {
	uint64_t ram_size; /* total RAM, what -m asked for */
	struct mem_region regions[MEM_MAX_REGIONS];
	int nr;
	void *base; /* the one host mapping all regions live in */
	size_t map_size;
};

/* Lays out and maps ram_size bytes. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *mem, uint64_t ram_size);
void guest_mem_destroy(struct guest_mem *mem);

/*
 * Host pointer for [gpa, gpa + len) or NULL if any byte of it is outside RAM
 * (or the range wraps). len 0 is treated as 1.
 */
void *guest_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Copy helpers that fail with -EFAULT instead of touching host memory. */
int guest_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);

/* The end of the RAM that lies below 4 GiB. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
