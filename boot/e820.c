// SPDX-License-Identifier: MIT
/*
 * The e820 memory map, as a PC BIOS would report it through INT 15h/E820h,
 * handed to Linux in boot_params.e820_table.
 *
 *   0       .. 0x9fc00   RAM (conventional memory)
 *   0x9fc00 .. 0xa0000   reserved (where a BIOS keeps its EBDA)
 *   0xa0000 .. 0xe0000   not listed: VGA window and option ROMs
 *   0xe0000 .. 1 MiB     reserved (BIOS area: the ACPI tables live here)
 *   1 MiB   .. low end   RAM
 *   low end .. 4 GiB     not listed: the PCI hole, IOAPIC and LAPIC
 *   4 GiB   .. + high    RAM, if the guest has more than MEM_HOLE_START
 *
 * Leaving the PCI hole out of the map (rather than marking it reserved)
 * lets Linux allocate MMIO resources there. Linux knows where the IOAPIC
 * and LAPIC are from the MADT, so they are not listed either.
 */
#include <errno.h>
#include <asm/bootparam.h>
#include <asm/e820.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/log.h"

#define MIB (1ULL << 20)

struct e820_builder {
	struct boot_e820_entry *table;
	int max;
	int nr;
};

/* Appends [start, end) unless it is empty; -ENOSPC if the table is full. */
static int e820_add(struct e820_builder *b, uint64_t start, uint64_t end, uint32_t type)
{
	if (end <= start)
		return 0;
	if (b->nr >= b->max)
		return -ENOSPC;
	b->table[b->nr].addr = start;
	b->table[b->nr].size = end - start;
	b->table[b->nr].type = type;
	b->nr++;
	return 0;
}

int e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, int max)
{
	struct e820_builder b = { .table = table, .max = max, .nr = 0 };
	uint64_t low_end = guest_mem_low_end(mem);
	int ret;

	if (max < 0)
		return -EINVAL;

	/* Each range is clipped to the RAM that exists below the hole. */
	ret = e820_add(&b, 0, MIN(low_end, BOOT_EBDA_START), E820_RAM);
	if (!ret)
		ret = e820_add(&b, BOOT_EBDA_START, MIN(low_end, 0xa0000), E820_RESERVED);
	if (!ret)
		ret = e820_add(&b, BOOT_BIOS_START, MIN(low_end, MIB), E820_RESERVED);
	if (!ret)
		ret = e820_add(&b, MIB, low_end, E820_RAM);
	for (int i = 0; !ret && i < mem->nr; i++) {
		const struct mem_region *r = &mem->regions[i];

		/* Everything that is not the low region: RAM above 4 GiB. */
		if (r->gpa >= MEM_HOLE_END)
			ret = e820_add(&b, r->gpa, r->gpa + r->size, E820_RAM);
	}
	return ret ? ret : b.nr;
}
