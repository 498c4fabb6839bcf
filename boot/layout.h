/* SPDX-License-Identifier: MIT */
/*
 * Where minivm puts things in the guest's low memory before the kernel runs.
 * Everything below 1 MiB except these pages is left to the kernel; the
 * e820 map reserves the EBDA-like top of low memory and the BIOS area where
 * the ACPI tables live, as a PC's firmware would.
 */
#ifndef MINIVM_BOOT_LAYOUT_H
#define MINIVM_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x500
#define BOOT_PARAMS_ADDR 0x7000    /* struct boot_params, the "zero page" */
#define BOOT_PML4_ADDR 0x9000
#define BOOT_PDPT_ADDR 0xA000
#define BOOT_PD_ADDR 0xB000        /* 4 pages: identity-map 0..4 GiB with 2 MiB pages */
#define BOOT_CMDLINE_ADDR 0x20000
#define BOOT_CMDLINE_MAX 0x10000   /* kernels limit it further, see cmdline_size */
#define BOOT_EBDA_START 0x9fc00
#define BOOT_BIOS_START 0xe0000    /* reserved up to 1 MiB */
#define BOOT_ACPI_ADDR 0xe0000     /* RSDP first, so a scan of this area finds it */
#define BOOT_ACPI_END 0x100000
#define BOOT_KERNEL_ADDR 0x100000  /* the protected-mode kernel, at 1 MiB */

#define BOOT_TSS_ADDR 0xfffbd000   /* KVM_SET_TSS_ADDR: 3 pages, needed on Intel */
#define BOOT_IDENTITY_MAP_ADDR 0xfffbc000

#define IOAPIC_ADDR 0xfec00000
#define LAPIC_ADDR 0xfee00000

#endif
