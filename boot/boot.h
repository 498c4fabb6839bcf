/* SPDX-License-Identifier: MIT */
/*
 * The x86 boot path: load a Linux bzImage with its initrd and command line,
 * describe memory (e820) and the platform (ACPI), and build the GDT and
 * page tables for the kernel's 64-bit entry point.
 */
#ifndef MINIVM_BOOT_H
#define MINIVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

struct boot_e820_entry;

struct boot_config {
	const char *kernel;  /* path to a bzImage */
	const char *initrd;  /* path or NULL */
	const char *cmdline; /* or NULL for an empty command line */
	unsigned ncpus;
};

/* What the BSP needs to start the kernel in long mode. */
struct boot_state {
	uint64_t entry;       /* RIP: 64-bit entry point */
	uint64_t boot_params; /* RSI: guest address of struct boot_params */
	uint64_t cr3;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint16_t code_sel, data_sel;
	uint64_t rsdp;
};

/*
 * Loads everything into guest memory and fills *bs. File and format errors
 * are printed here (one line naming the file and what is wrong) and returned
 * as -errno; the caller need not print again.
 */
int linux_boot_load(struct guest_mem *mem, const struct boot_config *cfg,
		    struct boot_state *bs);

/* Builds the e820 table for mem into table[max]; returns the entry count. */
int e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, int max);

/* GDT and identity-mapping page tables for the 64-bit entry. */
int x86_build_long_mode(struct guest_mem *mem, struct boot_state *bs);

/* RSDP, XSDT, FADT, FACS, DSDT, MADT at BOOT_ACPI_ADDR; *rsdp gets its address. */
int acpi_build(struct guest_mem *mem, unsigned ncpus, uint64_t *rsdp);

#endif
