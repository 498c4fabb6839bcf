// SPDX-License-Identifier: MIT
/*
 * The boot path without KVM: load synthetic bzImages (and the real guest
 * kernel, when the kit has been built) into guest memory and check what a
 * kernel would find there: boot_params, command line, initrd, e820 map,
 * GDT and page tables.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <asm/bootparam.h>
#include <asm/e820.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "tests/unit/unit.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* ------------------------------------------------------------------------
 * Synthetic images
 */

struct image_spec {
	uint16_t version;
	uint8_t setup_sects;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t jump_len;        /* header ends at 0x202 + jump_len */
	uint32_t init_size;
	uint64_t pref_address;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	size_t payload;          /* size of the protected-mode kernel */
	bool no_boot_flag, no_hdrs;
};

static struct image_spec good_spec(void)
{
	return (struct image_spec){
		.version = 0x20f,
		.setup_sects = 1,
		.loadflags = LOADED_HIGH,
		.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
		.jump_len = 0x66, /* header through 0x268, as protocol 2.15 */
		.init_size = 4 * MIB,
		.pref_address = 16 * MIB,
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff,
		.payload = 64 * 1024,
	};
}

static uint8_t payload_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

static size_t setup_size(const struct image_spec *s)
{
	return ((s->setup_sects ? s->setup_sects : 4) + 1) * 512;
}

/* Builds the image in memory; *len gets its size. */
static uint8_t *build_image(const struct image_spec *s, size_t *len)
{
	size_t setup = setup_size(s);
	uint8_t *img = calloc(1, setup + s->payload);
	struct setup_header *h = (void *)(img + 0x1f1);

	ck_assert_ptr_nonnull(img);
	/* The setup code after the header: must not be copied as header. */
	memset(img + 0x202 + s->jump_len, 0xcc, setup - 0x202 - s->jump_len);
	h->setup_sects = s->setup_sects;
	h->root_dev = 0x0801; /* a marker, copied unchanged */
	h->boot_flag = s->no_boot_flag ? 0 : 0xaa55;
	h->jump = 0xeb | s->jump_len << 8;
	h->header = s->no_hdrs ? 0x12345678 : 0x53726448;
	h->version = s->version;
	h->loadflags = s->loadflags;
	h->code32_start = 0x100000;
	h->initrd_addr_max = s->initrd_addr_max;
	h->kernel_alignment = 2 * MIB;
	h->relocatable_kernel = 1;
	h->xloadflags = s->xloadflags;
	h->cmdline_size = s->cmdline_size;
	h->pref_address = s->pref_address;
	h->init_size = s->init_size;
	for (size_t i = 0; i < s->payload; i++)
		img[setup + i] = payload_byte(i);
	*len = setup + s->payload;
	return img;
}

/* A temp file with these bytes; returns its malloc'd path. */
static char *write_temp(const void *data, size_t len)
{
	char *path = strdup("/tmp/minivm-test-boot-XXXXXX");
	int fd;

	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static char *write_image(const struct image_spec *s)
{
	size_t len;
	uint8_t *img = build_image(s, &len);
	char *path = write_temp(img, len);

	free(img);
	return path;
}

static void remove_temp(char *path)
{
	unlink(path);
	free(path);
}

static struct boot_params *params(struct guest_mem *mem)
{
	struct boot_params *bp = guest_ptr(mem, BOOT_PARAMS_ADDR, sizeof(*bp));

	ck_assert_ptr_nonnull(bp);
	return bp;
}

/* Loads an image built from spec into a fresh guest of ram bytes. */
static int load_spec(const struct image_spec *s, uint64_t ram, const char *cmdline,
		     const char *initrd, struct guest_mem *mem, struct boot_state *bs)
{
	char *path = write_image(s);
	struct boot_config cfg = {
		.kernel = path, .initrd = initrd, .cmdline = cmdline, .ncpus = 1,
	};
	int ret;

	ck_assert_int_eq(guest_mem_init(mem, ram), 0);
	ret = linux_boot_load(mem, &cfg, bs);
	remove_temp(path);
	return ret;
}

/* ------------------------------------------------------------------------
 * Loading
 */

START_TEST(valid_image_loads)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;
	struct boot_params *bp;
	const uint8_t *k, *raw;
	const char *cl;

	ck_assert_int_eq(load_spec(&s, 128 * MIB, "console=ttyS0 quiet", NULL, &mem, &bs), 0);
	ck_assert_uint_eq(bs.entry, BOOT_KERNEL_ADDR + 0x200);
	ck_assert_uint_eq(bs.boot_params, BOOT_PARAMS_ADDR);
	ck_assert_uint_eq(bs.cr3, BOOT_PML4_ADDR);
	ck_assert_uint_eq(bs.code_sel, 0x10);
	ck_assert_uint_eq(bs.data_sel, 0x18);
	ck_assert_uint_eq(bs.gdt_base, BOOT_GDT_ADDR);
	ck_assert_uint_eq(bs.gdt_limit, 31);
	ck_assert_uint_eq(bs.rsdp, BOOT_ACPI_ADDR);

	/* The protected-mode kernel, byte for byte, at 1 MiB. */
	k = guest_ptr(&mem, BOOT_KERNEL_ADDR, s.payload);
	ck_assert_ptr_nonnull(k);
	for (size_t i = 0; i < s.payload; i++)
		ck_assert_uint_eq(k[i], payload_byte(i));

	/* The setup header, copied up to its end and no further. */
	bp = params(&mem);
	raw = (const uint8_t *)bp;
	ck_assert_uint_eq(bp->hdr.setup_sects, 1);
	ck_assert_uint_eq(bp->hdr.root_dev, 0x0801);
	ck_assert_uint_eq(bp->hdr.boot_flag, 0xaa55);
	ck_assert_uint_eq(bp->hdr.header, 0x53726448);
	ck_assert_uint_eq(bp->hdr.version, 0x20f);
	ck_assert_uint_eq(bp->hdr.init_size, 4 * MIB);
	ck_assert_uint_eq(bp->hdr.pref_address, 16 * MIB);
	ck_assert_uint_eq(bp->hdr.kernel_alignment, 2 * MIB);
	ck_assert_uint_eq(bp->hdr.xloadflags, s.xloadflags);
	for (size_t off = 0x202 + s.jump_len; off < 0x290; off++)
		ck_assert_uint_eq(raw[off], 0);
	for (size_t off = 0; off < 0x1f1; off++)
		if (off < 0x70 || off >= 0x78) /* acpi_rsdp_addr */
			if (off != 0x1e8) /* e820_entries */
				ck_assert_uint_eq(raw[off], 0);

	/* What the loader fills in. */
	ck_assert_uint_eq(bp->hdr.type_of_loader, 0xff);
	ck_assert_uint_eq(bp->hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
	ck_assert_uint_eq(bp->hdr.heap_end_ptr, 0xfe00);
	ck_assert_uint_eq(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(bp->ext_cmd_line_ptr, 0);
	cl = guest_ptr(&mem, BOOT_CMDLINE_ADDR, 64);
	ck_assert_str_eq(cl, "console=ttyS0 quiet");
	ck_assert_uint_eq(bp->hdr.ramdisk_image, 0);
	ck_assert_uint_eq(bp->hdr.ramdisk_size, 0);
	ck_assert_uint_eq(bp->acpi_rsdp_addr, BOOT_ACPI_ADDR);
	ck_assert_uint_eq(bp->e820_entries, 4);
	ck_assert_uint_eq(bp->e820_table[3].addr + bp->e820_table[3].size, 128 * MIB);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(setup_sects_zero_means_four)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;
	const uint8_t *k;

	s.setup_sects = 0;
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, NULL, &mem, &bs), 0);
	k = guest_ptr(&mem, BOOT_KERNEL_ADDR, s.payload);
	for (size_t i = 0; i < s.payload; i++)
		ck_assert_uint_eq(k[i], payload_byte(i));
	/* No command line is an empty one. */
	ck_assert_uint_eq(params(&mem)->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	ck_assert_str_eq((const char *)guest_ptr(&mem, BOOT_CMDLINE_ADDR, 1), "");
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(cmdline_limit)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;

	s.cmdline_size = 16;
	ck_assert_int_eq(load_spec(&s, 128 * MIB, "0123456789abcdef", NULL, &mem, &bs), 0);
	ck_assert_str_eq((const char *)guest_ptr(&mem, BOOT_CMDLINE_ADDR, 17),
			 "0123456789abcdef");
	guest_mem_destroy(&mem);

	ck_assert_int_eq(load_spec(&s, 128 * MIB, "0123456789abcdefg", NULL, &mem, &bs),
			 -E2BIG);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(initrd_placed_high)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;
	struct boot_params *bp;
	size_t len = 10000;
	uint8_t *data = malloc(len);
	const uint8_t *p;
	char *initrd;

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	initrd = write_temp(data, len);

	/* Limited by RAM: at the top of a 128 MiB guest. */
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, initrd, &mem, &bs), 0);
	bp = params(&mem);
	ck_assert_uint_eq(bp->hdr.ramdisk_size, len);
	ck_assert_uint_eq(bp->hdr.ramdisk_image, (128 * MIB - len) & ~0xfffULL);
	ck_assert_uint_eq(bp->ext_ramdisk_image, 0);
	ck_assert_uint_eq(bp->ext_ramdisk_size, 0);
	p = guest_ptr(&mem, bp->hdr.ramdisk_image, len);
	ck_assert_mem_eq(p, data, len);
	guest_mem_destroy(&mem);

	/* Limited by initrd_addr_max in a big guest. */
	s.initrd_addr_max = 0x37ffffff;
	ck_assert_int_eq(load_spec(&s, 3584 * MIB, NULL, initrd, &mem, &bs), 0);
	bp = params(&mem);
	ck_assert_uint_eq(bp->hdr.ramdisk_image % 4096, 0);
	ck_assert_uint_le((uint64_t)bp->hdr.ramdisk_image + len, 0x38000000);
	ck_assert_uint_ge((uint64_t)bp->hdr.ramdisk_image + len, 0x38000000 - 4096);
	p = guest_ptr(&mem, bp->hdr.ramdisk_image, len);
	ck_assert_mem_eq(p, data, len);
	guest_mem_destroy(&mem);

	remove_temp(initrd);
	free(data);
}
END_TEST

START_TEST(initrd_above_kernel_or_refused)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;
	char *initrd = write_temp("x", 1);

	/* The kernel runs at 16 MiB and needs 100 MiB: to 116 MiB. */
	s.init_size = 100 * MIB;
	ck_assert_int_eq(truncate(initrd, 11 * MIB), 0);
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, initrd, &mem, &bs), 0);
	ck_assert_uint_ge(params(&mem)->hdr.ramdisk_image, 116 * MIB);
	guest_mem_destroy(&mem);

	ck_assert_int_eq(truncate(initrd, 13 * MIB), 0);
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, initrd, &mem, &bs), -ENOMEM);
	guest_mem_destroy(&mem);
	remove_temp(initrd);
}
END_TEST

START_TEST(initrd_missing)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;

	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, "/nonexistent/initrd.img", &mem, &bs),
			 -ENOENT);
	guest_mem_destroy(&mem);
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, "/tmp", &mem, &bs), -EISDIR);
	guest_mem_destroy(&mem);
}
END_TEST

static int load_file(const void *data, size_t len)
{
	char *path = write_temp(data, len);
	struct boot_config cfg = { .kernel = path, .ncpus = 1 };
	struct guest_mem mem;
	struct boot_state bs;
	int ret;

	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ret = linux_boot_load(&mem, &cfg, &bs);
	guest_mem_destroy(&mem);
	remove_temp(path);
	return ret;
}

START_TEST(not_a_bzimage)
{
	struct image_spec s = good_spec();
	struct boot_config cfg = { .kernel = "/nonexistent/vmlinuz", .ncpus = 1 };
	uint8_t junk[8192];
	struct guest_mem mem;
	struct boot_state bs;
	uint8_t *img;
	size_t len;

	srand(42);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = rand();
	ck_assert_int_eq(load_file(junk, sizeof(junk)), -ENOEXEC);
	ck_assert_int_eq(load_file("", 0), -ENOEXEC);
	ck_assert_int_eq(load_file(junk, 100), -ENOEXEC);

	img = build_image(&s, &len);
	/* Cut inside the header, after the setup code, just past the entry. */
	ck_assert_int_eq(load_file(img, 0x204), -ENOEXEC);
	ck_assert_int_eq(load_file(img, 0x240), -ENOEXEC);
	ck_assert_int_eq(load_file(img, 1024), -ENOEXEC);
	ck_assert_int_eq(load_file(img, 1024 + 0x200), -ENOEXEC);
	ck_assert_int_eq(load_file(img, 1024 + 0x201), 0);
	free(img);

	s.no_boot_flag = true;
	img = build_image(&s, &len);
	ck_assert_int_eq(load_file(img, len), -ENOEXEC);
	free(img);
	s = good_spec();
	s.no_hdrs = true;
	img = build_image(&s, &len);
	ck_assert_int_eq(load_file(img, len), -ENOEXEC);
	free(img);
	s = good_spec();
	s.jump_len = 0x20; /* a header too short to hold init_size */
	img = build_image(&s, &len);
	ck_assert_int_eq(load_file(img, len), -ENOEXEC);
	free(img);

	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(linux_boot_load(&mem, &cfg, &bs), -ENOENT);
	cfg.kernel = "/tmp";
	ck_assert_int_eq(linux_boot_load(&mem, &cfg, &bs), -EISDIR);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(old_or_32bit_kernels_refused)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;

	s.version = 0x204;
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, NULL, &mem, &bs), -ENOEXEC);
	guest_mem_destroy(&mem);

	s = good_spec();
	s.xloadflags = 0;
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, NULL, &mem, &bs), -ENOEXEC);
	guest_mem_destroy(&mem);

	s = good_spec();
	s.version = 0x20b; /* before xloadflags */
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, NULL, &mem, &bs), -ENOEXEC);
	guest_mem_destroy(&mem);

	s = good_spec();
	s.loadflags = 0; /* a zImage */
	ck_assert_int_eq(load_spec(&s, 128 * MIB, NULL, NULL, &mem, &bs), -ENOEXEC);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(init_size_beyond_ram)
{
	struct image_spec s = good_spec();
	struct guest_mem mem;
	struct boot_state bs;

	/* The Debian kernel's init_size: 16 MiB + 51.5 MiB. */
	s.init_size = 0x3378000;
	ck_assert_int_eq(load_spec(&s, 64 * MIB, NULL, NULL, &mem, &bs), -ENOMEM);
	guest_mem_destroy(&mem);
	ck_assert_int_eq(load_spec(&s, 68 * MIB, NULL, NULL, &mem, &bs), 0);
	guest_mem_destroy(&mem);

	/* A guest too small to hold even boot_params and the tables. */
	s = good_spec();
	ck_assert_int_eq(load_spec(&s, 16 * 1024, NULL, NULL, &mem, &bs), -ENOMEM);
	guest_mem_destroy(&mem);
}
END_TEST

/* The guest kernel from the kit, if another build has made it. */
START_TEST(real_kernel)
{
	const char *cache = getenv("MINIVM_CACHE");
	char path[4096], initrd[4096];
	struct boot_config cfg = { .cmdline = "console=ttyS0", .ncpus = 2 };
	struct guest_mem mem;
	struct boot_state bs;
	struct boot_params *bp;

	if (!cache || !*cache)
		cache = "/var/cache/minivm";
	snprintf(path, sizeof(path), "%s/kit/vmlinuz", cache);
	snprintf(initrd, sizeof(initrd), "%s/kit/initrd.img", cache);
	if (access(path, R_OK) != 0)
		return; /* not built here: nothing to check */
	cfg.kernel = path;
	if (access(initrd, R_OK) == 0)
		cfg.initrd = initrd;
	ck_assert_int_eq(guest_mem_init(&mem, 512 * MIB), 0);
	ck_assert_int_eq(linux_boot_load(&mem, &cfg, &bs), 0);
	bp = params(&mem);
	ck_assert_uint_ge(bp->hdr.version, 0x20c);
	ck_assert(bp->hdr.xloadflags & XLF_KERNEL_64);
	ck_assert_uint_eq(bs.entry, BOOT_KERNEL_ADDR + 0x200);
	ck_assert_uint_eq(bp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(bp->hdr.type_of_loader, 0xff);
	if (cfg.initrd) {
		ck_assert_uint_ne(bp->hdr.ramdisk_size, 0);
		ck_assert_uint_ge(bp->hdr.ramdisk_image,
				  bp->hdr.pref_address + bp->hdr.init_size);
	}
	guest_mem_destroy(&mem);

	/* Any real kernel needs more than 32 MiB: 16 MiB + init_size. */
	ck_assert_int_eq(guest_mem_init(&mem, 32 * MIB), 0);
	ck_assert_int_eq(linux_boot_load(&mem, &cfg, &bs), -ENOMEM);
	guest_mem_destroy(&mem);
}
END_TEST

/* ------------------------------------------------------------------------
 * e820
 */

START_TEST(e820_small_guest)
{
	struct boot_e820_entry t[16];
	struct guest_mem mem;

	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(e820_build(&mem, t, 16), 4);
	ck_assert_uint_eq(t[0].addr, 0);
	ck_assert_uint_eq(t[0].size, 0x9fc00);
	ck_assert_uint_eq(t[0].type, E820_RAM);
	ck_assert_uint_eq(t[1].addr, 0x9fc00);
	ck_assert_uint_eq(t[1].size, 0x400);
	ck_assert_uint_eq(t[1].type, E820_RESERVED);
	ck_assert_uint_eq(t[2].addr, 0xe0000);
	ck_assert_uint_eq(t[2].size, 0x20000);
	ck_assert_uint_eq(t[2].type, E820_RESERVED);
	ck_assert_uint_eq(t[3].addr, MIB);
	ck_assert_uint_eq(t[3].size, 127 * MIB);
	ck_assert_uint_eq(t[3].type, E820_RAM);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(e820_big_guest)
{
	struct boot_e820_entry t[16];
	struct guest_mem mem;
	uint64_t listed = 0;
	int n;

	ck_assert_int_eq(guest_mem_init(&mem, 3584 * MIB), 0);
	n = e820_build(&mem, t, 16);
	ck_assert_int_eq(n, 5);
	ck_assert_uint_eq(t[3].addr, MIB);
	ck_assert_uint_eq(t[3].addr + t[3].size, 3 * GIB);
	ck_assert_uint_eq(t[4].addr, 4 * GIB);
	ck_assert_uint_eq(t[4].size, 512 * MIB);
	ck_assert_uint_eq(t[4].type, E820_RAM);
	for (int i = 0; i < n; i++) {
		/* Sorted, not overlapping, nothing in the PCI hole. */
		if (i)
			ck_assert_uint_ge(t[i].addr, t[i - 1].addr + t[i - 1].size);
		ck_assert(t[i].addr + t[i].size <= 3 * GIB || t[i].addr >= 4 * GIB);
		listed += t[i].size;
	}
	/* All RAM is listed, except the VGA/ROM gap 0xa0000..0xe0000. */
	ck_assert_uint_eq(listed + 0x40000, 3584 * MIB);
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(e820_table_too_small)
{
	struct boot_e820_entry t[16];
	struct guest_mem mem;

	ck_assert_int_eq(guest_mem_init(&mem, 3584 * MIB), 0);
	ck_assert_int_eq(e820_build(&mem, t, 4), -ENOSPC);
	ck_assert_int_eq(e820_build(&mem, t, 0), -ENOSPC);
	ck_assert_int_eq(e820_build(&mem, t, 5), 5);
	guest_mem_destroy(&mem);
}
END_TEST

/* ------------------------------------------------------------------------
 * GDT and page tables
 */

#define PTE_P 0x1ULL
#define PTE_W 0x2ULL
#define PTE_PS 0x80ULL
#define PTE_ADDR 0x000ffffffffff000ULL

static uint64_t read_u64(struct guest_mem *mem, uint64_t gpa)
{
	uint64_t v;

	ck_assert_int_eq(guest_read(mem, gpa, &v, sizeof(v)), 0);
	return v;
}

/* Walks the 4-level tables at cr3; returns false if va is not mapped. */
static bool translate(struct guest_mem *mem, uint64_t cr3, uint64_t va, uint64_t *pa)
{
	uint64_t e;

	e = read_u64(mem, cr3 + ((va >> 39) & 511) * 8);
	if (!(e & PTE_P))
		return false;
	ck_assert(e & PTE_W);
	e = read_u64(mem, (e & PTE_ADDR) + ((va >> 30) & 511) * 8);
	if (!(e & PTE_P))
		return false;
	ck_assert(!(e & PTE_PS)); /* no 1 GiB pages */
	e = read_u64(mem, (e & PTE_ADDR) + ((va >> 21) & 511) * 8);
	if (!(e & PTE_P))
		return false;
	ck_assert(e & PTE_PS);
	ck_assert(e & PTE_W);
	*pa = (e & PTE_ADDR & ~0x1fffffULL) + (va & 0x1fffff);
	return true;
}

START_TEST(page_tables_identity_map_4g)
{
	static const uint64_t addrs[] = {
		0, 0x7000, 0x100200, 0x1234567, 0x40000123, 0xbfffffff,
		0xc0000000, 0xfec00000, 0xfee00300, 0xffffffff,
	};
	struct guest_mem mem;
	struct boot_state bs = { 0 };
	uint64_t pa;

	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(x86_build_long_mode(&mem, &bs), 0);
	ck_assert_uint_eq(bs.cr3, BOOT_PML4_ADDR);
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		ck_assert(translate(&mem, bs.cr3, addrs[i], &pa));
		ck_assert_uint_eq(pa, addrs[i]);
	}
	/* Every 2 MiB page of the first 4 GiB. */
	for (uint64_t va = 0; va < 4 * GIB; va += 2 * MIB) {
		ck_assert(translate(&mem, bs.cr3, va + 0x1000, &pa));
		ck_assert_uint_eq(pa, va + 0x1000);
	}
	ck_assert(!translate(&mem, bs.cr3, 4 * GIB, &pa));
	ck_assert(!translate(&mem, bs.cr3, 1ULL << 39, &pa));
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(gdt_descriptors)
{
	struct guest_mem mem;
	struct boot_state bs = { 0 };
	uint64_t cs, ds;

	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(x86_build_long_mode(&mem, &bs), 0);
	ck_assert_uint_eq(bs.gdt_base, BOOT_GDT_ADDR);
	ck_assert_uint_eq(bs.gdt_limit, 4 * 8 - 1);
	ck_assert_uint_eq(bs.code_sel, 0x10);
	ck_assert_uint_eq(bs.data_sel, 0x18);
	ck_assert_uint_eq(read_u64(&mem, BOOT_GDT_ADDR), 0);

	cs = read_u64(&mem, BOOT_GDT_ADDR + bs.code_sel);
	ds = read_u64(&mem, BOOT_GDT_ADDR + bs.data_sel);
	ck_assert_uint_eq((cs >> 40) & 0xf, 0xb);  /* execute/read */
	ck_assert_uint_eq((ds >> 40) & 0xf, 0x3);  /* read/write */
	for (int i = 0; i < 2; i++) {
		uint64_t d = i ? ds : cs;

		ck_assert(d & (1ULL << 44));          /* S: code/data */
		ck_assert_uint_eq((d >> 45) & 3, 0);   /* DPL 0 */
		ck_assert(d & (1ULL << 47));          /* present */
		ck_assert(d & (1ULL << 55));          /* 4 KiB granularity */
		ck_assert_uint_eq((d & 0xffff) | ((d >> 32) & 0xf0000), 0xfffff);
		ck_assert_uint_eq(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000), 0);
	}
	ck_assert(cs & (1ULL << 53));   /* L: 64-bit code */
	ck_assert(!(cs & (1ULL << 54))); /* D must be 0 when L is 1 */
	ck_assert(!(ds & (1ULL << 53)));
	ck_assert(ds & (1ULL << 54));   /* B: 32-bit stack */
	guest_mem_destroy(&mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("boot");
	TCase *load = tcase_create("linux");
	TCase *e820 = tcase_create("e820");
	TCase *lm = tcase_create("long_mode");

	tcase_set_timeout(load, 30);
	tcase_add_test(load, valid_image_loads);
	tcase_add_test(load, setup_sects_zero_means_four);
	tcase_add_test(load, cmdline_limit);
	tcase_add_test(load, initrd_placed_high);
	tcase_add_test(load, initrd_above_kernel_or_refused);
	tcase_add_test(load, initrd_missing);
	tcase_add_test(load, not_a_bzimage);
	tcase_add_test(load, old_or_32bit_kernels_refused);
	tcase_add_test(load, init_size_beyond_ram);
	tcase_add_test(load, real_kernel);
	suite_add_tcase(s, load);
	tcase_add_test(e820, e820_small_guest);
	tcase_add_test(e820, e820_big_guest);
	tcase_add_test(e820, e820_table_too_small);
	suite_add_tcase(s, e820);
	tcase_set_timeout(lm, 30);
	tcase_add_test(lm, page_tables_identity_map_4g);
	tcase_add_test(lm, gdt_descriptors);
	suite_add_tcase(s, lm);
	return unit_run(s);
}
