// SPDX-License-Identifier: MIT
/*
 * What the Linux 64-bit boot protocol asks of the loader: long mode with
 * paging on, the kernel, boot_params and the command line identity-mapped,
 * and a GDT with flat 4 GiB segments at __BOOT_CS (0x10) and __BOOT_DS
 * (0x18). The kernel builds its own GDT and page tables soon after.
 *
 * The page tables identity-map the whole first 4 GiB with 2 MiB pages:
 * one PML4 entry -> one PDPT with four entries -> four page directories
 * of 512 entries each.
 */
#include <errno.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"

#define PAGE_SIZE 4096
#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITABLE (1ULL << 1)
#define PTE_PS (1ULL << 7) /* in a PD entry: this maps a 2 MiB page */
#define PD_COUNT 4
#define PD_ENTRIES 512
#define HUGE_PAGE_SIZE (2ULL << 20)

#define GDT_ENTRIES 4
#define BOOT_CS 0x10
#define BOOT_DS 0x18

/* Segment descriptor type and flag bits, in the descriptor's bit numbers. */
#define SEG_TYPE_CODE_XR 0xb /* execute/read, accessed */
#define SEG_TYPE_DATA_RW 0x3 /* read/write, accessed */
#define SEG_S (1ULL << 44)   /* code or data, not a system segment */
#define SEG_P (1ULL << 47)
#define SEG_L (1ULL << 53)   /* 64-bit code */
#define SEG_DB (1ULL << 54)  /* 32-bit default operand size / big stack */
#define SEG_G (1ULL << 55)   /* limit counts 4 KiB pages */

/* A segment descriptor with the given base, 20-bit limit, type and flags. */
static uint64_t gdt_entry(uint32_t base, uint32_t limit, uint64_t type, uint64_t flags)
{
	uint64_t d = 0;

	d |= limit & 0xffffULL;                     /* limit 15:0 */
	d |= (uint64_t)(base & 0xffffff) << 16;     /* base 23:0 */
	d |= (type & 0xf) << 40;
	d |= (uint64_t)((limit >> 16) & 0xf) << 48; /* limit 19:16 */
	d |= (uint64_t)(base >> 24) << 56;          /* base 31:24 */
	return d | flags;
}

static int build_gdt(struct guest_mem *mem, struct boot_state *bs)
{
	uint64_t gdt[GDT_ENTRIES] = {
		[0] = 0, /* the null descriptor */
		[1] = 0, /* unused: Linux's __BOOT_CS is entry 2 */
		[BOOT_CS / 8] = gdt_entry(0, 0xfffff, SEG_TYPE_CODE_XR,
					  SEG_S | SEG_P | SEG_L | SEG_G),
		[BOOT_DS / 8] = gdt_entry(0, 0xfffff, SEG_TYPE_DATA_RW,
					  SEG_S | SEG_P | SEG_DB | SEG_G),
	};
	int ret;

	ret = guest_write(mem, BOOT_GDT_ADDR, gdt, sizeof(gdt));
	if (ret)
		return ret;
	bs->gdt_base = BOOT_GDT_ADDR;
	bs->gdt_limit = sizeof(gdt) - 1;
	bs->code_sel = BOOT_CS;
	bs->data_sel = BOOT_DS;
	return 0;
}

static int build_page_tables(struct guest_mem *mem, struct boot_state *bs)
{
	uint64_t *pml4, *pdpt, *pd;

	pml4 = guest_ptr(mem, BOOT_PML4_ADDR, PAGE_SIZE);
	pdpt = guest_ptr(mem, BOOT_PDPT_ADDR, PAGE_SIZE);
	pd = guest_ptr(mem, BOOT_PD_ADDR, PD_COUNT * PAGE_SIZE);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);

	pml4[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE;
	for (int i = 0; i < PD_COUNT; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE;
	/* The four PDs are consecutive, so entry n maps n * 2 MiB. */
	for (uint64_t n = 0; n < PD_COUNT * PD_ENTRIES; n++)
		pd[n] = n * HUGE_PAGE_SIZE | PTE_PRESENT | PTE_WRITABLE | PTE_PS;

	bs->cr3 = BOOT_PML4_ADDR;
	return 0;
}

int x86_build_long_mode(struct guest_mem *mem, struct boot_state *bs)
{
	int ret;

	ret = build_gdt(mem, bs);
	if (ret)
		return ret;
	return build_page_tables(mem, bs);
}
