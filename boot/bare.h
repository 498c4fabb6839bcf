/* SPDX-License-Identifier: MIT */
/*
 * Bare-metal guests on x86: programs that are not Linux, such as the
 * teaching guests in guests/teach/. minivm gives them what a PC gives a
 * boot sector, minus the BIOS: RAM, the platform devices, ACPI tables at
 * 0xe0000, and a CPU in 16-bit real mode.
 *
 *   - A flat binary is copied to 0x7c00 and started at 0000:7c00.
 *   - An ELF executable (32- or 64-bit) is loaded by its PT_LOAD segments
 *     at their physical addresses (p_paddr) and started at e_entry, which
 *     must lie below 1 MiB: CS is the 64 KiB-aligned segment holding it,
 *     IP the rest (0x7c00 -> 0000:7c00, 0x12345 -> 1000:2345).
 *
 * Nothing is loaded over the ACPI tables, and with no boot_params there is
 * no command line or initrd.
 */
#ifndef MINIVM_BOOT_BARE_H
#define MINIVM_BOOT_BARE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/cli.h"
#include "vmm/memory.h"

#define BARE_FLAT_ADDR 0x7c00
#define BARE_ENTRY_LIMIT 0x100000 /* real mode reaches 1 MiB (plus the HMA) */

/* The boot vCPU's real-mode start. */
struct bare_state {
	uint16_t cs, ip;
	uint64_t rsdp;
};

/*
 * What the first bytes of a -kernel file say it is: LINUX, ELF, FLAT for a
 * boot sector (55 aa at byte 510), or AUTO when they say nothing: such a
 * file runs only with -kernel-format flat.
 */
enum kernel_format bare_probe(const void *head, size_t len);

/* Reads the start of path and probes it; prints and returns -errno. */
int bare_probe_file(const char *path, enum kernel_format *fmt);

/*
 * Loads the image buf[0..len) of format fmt (KERNEL_ELF or KERNEL_FLAT) into
 * guest memory and fills *st. Returns 0, or -errno with a one-line
 * description in err.
 */
int bare_load_image(struct guest_mem *mem, enum kernel_format fmt, const void *buf,
		    size_t len, struct bare_state *st, char *err, size_t errlen);

/* The whole load from a file, ACPI tables included; prints and returns -errno. */
int bare_boot_load(struct guest_mem *mem, const char *path, enum kernel_format fmt,
		   unsigned ncpus, struct bare_state *st);

#endif
