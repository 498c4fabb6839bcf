// SPDX-License-Identifier: MIT
/*
 * Guest RAM: one anonymous host mapping, cut into at most two guest regions
 * around the PCI hole. MAP_NORESERVE lets a large guest start quickly; pages
 * are only backed when the guest touches them.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/memory.h"

int guest_mem_init(struct guest_mem *mem, uint64_t ram_size)
{
	uint64_t low, high;
	void *p;

	memset(mem, 0, sizeof(*mem));
	if (ram_size == 0 || ram_size & 0xfff)
		return -EINVAL;
	low = ram_size < MEM_HOLE_START ? ram_size : MEM_HOLE_START;
	high = ram_size - low;

	p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Transparent huge pages cut the guest's TLB misses under EPT/NPT. */
	madvise(p, ram_size, MADV_HUGEPAGE);
	mem->base = p;
	mem->map_size = ram_size;
	mem->ram_size = ram_size;

	mem->regions[0] = (struct mem_region){ .gpa = 0, .size = low, .hva = p };
	mem->nr = 1;
	if (high) {
		mem->regions[1] = (struct mem_region){
			.gpa = MEM_HOLE_END, .size = high, .hva = (char *)p + low,
		};
		mem->nr = 2;
	}
	return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->base)
		munmap(mem->base, mem->map_size);
	memset(mem, 0, sizeof(*mem));
}

void *guest_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (int i = 0; i < mem->nr; i++) {
		const struct mem_region *r = &mem->regions[i];

		/* Written so that no sum can overflow. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size &&
		    len <= r->size - (gpa - r->gpa))
			return (char *)r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int guest_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->nr ? mem->regions[0].gpa + mem->regions[0].size : 0;
}
