// SPDX-License-Identifier: MIT
/*
 * Loads a Linux bzImage with the x86 boot protocol's 64-bit entry
 * (Documentation/arch/x86/boot.rst in the kernel tree):
 *
 *   file:  [ boot sector + setup code: (setup_sects + 1) * 512 bytes ]
 *          [ protected-mode kernel: the compressed kernel and its stub ]
 *
 * The setup code is real-mode code that the 64-bit entry skips; only its
 * setup header (at 0x1f1) is needed, copied into a zeroed boot_params
 * ("zero page") and completed with what a boot loader tells the kernel:
 * command line, initrd, memory map, RSDP. The protected-mode kernel goes to
 * 1 MiB and is entered at its start + 0x200 (startup_64), in long mode,
 * with RSI pointing at boot_params.
 *
 * The kernel is relocatable: its decompressor moves itself to pref_address
 * (16 MiB on x86_64) and needs init_size bytes from there, so that much RAM
 * must exist below the PCI hole. The initrd goes as high as allowed, above
 * all of that.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asm/bootparam.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/log.h"

_Static_assert(sizeof(struct boot_params) == 4096, "boot_params is one page");
_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(offsetof(struct boot_params, hdr.init_size) == 0x260, "init_size");

#define MIB (1ULL << 20)
#define PAGE_SIZE 4096ULL

/* Offsets in the image file (= in boot_params, which mirrors the sector). */
#define SETUP_HDR_START 0x1f1
#define BOOT_FLAG_OFF 0x1fe
#define JUMP_LEN_OFF 0x201   /* the jump over the header: its end - 0x202 */
#define HDR_MAGIC_OFF 0x202
#define SETUP_HDR_SPACE_END 0x290 /* where boot_params has other fields */
#define SETUP_HDR_MIN_END 0x264   /* through init_size: protocol 2.10 */

#define BOOT_FLAG_MAGIC 0xaa55
#define HDR_MAGIC 0x53726448 /* "HdrS" */
#define PROTOCOL_MIN 0x206
#define PROTOCOL_64BIT 0x20c /* xloadflags, so XLF_KERNEL_64 */
#define SETUP_SECTS_DEFAULT 4
#define SECTOR_SIZE 512

#define LOADER_TYPE_UNDEFINED 0xff
#define HEAP_END_PTR 0xfe00
#define STARTUP_64_OFFSET 0x200
#define INITRD_ADDR_MAX_DEFAULT 0x37ffffff /* before protocol 2.03 */

/* Anything larger is not a kernel (and not an initrd for a 3 GiB hole). */
#define KERNEL_FILE_MAX (1ULL << 30)
#define INITRD_FILE_MAX MEM_HOLE_START

/* Reads exactly len bytes at off; -EIO if the file ends first. */
static int read_at(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Opens a regular file and gets its size; prints and returns -errno. */
static int open_file(const char *path, const char *what, uint64_t max, uint64_t *size)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("%s: cannot open %s: %s", path, what, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("%s: cannot stat %s: %s", path, what, strerror(-ret));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		pr_err("%s: %s is not a regular file", path, what);
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		pr_err("%s: %s is too large (%llu MiB)", path, what,
		       (unsigned long long)st.st_size / MIB);
		goto fail;
	}
	*size = st.st_size;
	return fd;
fail:
	close(fd);
	return ret;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* What linux_boot_load learns from the image before touching the guest. */
struct kernel_image {
	uint8_t sector[1024];   /* the file's start: boot sector + header */
	size_t hdr_end;         /* end of the setup header in the file */
	uint64_t file_size;
	uint64_t setup_size;    /* where the protected-mode kernel starts */
	uint64_t kernel_size;   /* its size */
	uint64_t run_start;     /* where the decompressor runs */
	uint64_t end;           /* first byte after everything the kernel uses */
};

/* Reads and validates the header; prints and returns -errno. */
static int parse_header(int fd, const char *path, struct kernel_image *k)
{
	const struct setup_header *h =
		(const void *)(k->sector + SETUP_HDR_START);
	size_t got = MIN(k->file_size, sizeof(k->sector));
	unsigned setup_sects;
	uint16_t version;
	int ret;

	memset(k->sector, 0, sizeof(k->sector));
	ret = read_at(fd, k->sector, got, 0);
	if (ret) {
		pr_err("%s: cannot read kernel: %s", path, strerror(-ret));
		return ret;
	}
	if (got < SECTOR_SIZE || get16(k->sector + BOOT_FLAG_OFF) != BOOT_FLAG_MAGIC) {
		pr_err("%s: not a Linux bzImage (no boot sector signature)", path);
		return -ENOEXEC;
	}
	if (got < HDR_MAGIC_OFF + 4 || get32(k->sector + HDR_MAGIC_OFF) != HDR_MAGIC) {
		pr_err("%s: not a Linux bzImage (no HdrS signature)", path);
		return -ENOEXEC;
	}
	version = h->version;
	if (version < PROTOCOL_MIN) {
		pr_err("%s: boot protocol %u.%02u is too old (need %u.%02u)", path,
		       version >> 8, version & 0xff, PROTOCOL_MIN >> 8, PROTOCOL_MIN & 0xff);
		return -ENOEXEC;
	}
	if (version < PROTOCOL_64BIT || !(h->xloadflags & XLF_KERNEL_64)) {
		pr_err("%s: kernel has no 64-bit entry point (needs XLF_KERNEL_64)", path);
		return -ENOEXEC;
	}
	k->hdr_end = HDR_MAGIC_OFF + k->sector[JUMP_LEN_OFF];
	if (k->hdr_end < SETUP_HDR_MIN_END || k->hdr_end > got) {
		pr_err("%s: not a Linux bzImage (setup header truncated)", path);
		return -ENOEXEC;
	}
	if (!(h->loadflags & LOADED_HIGH)) {
		pr_err("%s: kernel does not load high (a zImage, not a bzImage)", path);
		return -ENOEXEC;
	}

	setup_sects = h->setup_sects ? h->setup_sects : SETUP_SECTS_DEFAULT;
	k->setup_size = (uint64_t)(setup_sects + 1) * SECTOR_SIZE;
	if (k->file_size <= k->setup_size + STARTUP_64_OFFSET) {
		pr_err("%s: not a Linux bzImage (truncated: no kernel after the %llu-byte setup)",
		       path, (unsigned long long)k->setup_size);
		return -ENOEXEC;
	}
	k->kernel_size = k->file_size - k->setup_size;

	/*
	 * A relocatable kernel runs at its load address rounded up to
	 * kernel_alignment, but never below pref_address; one that is not
	 * relocatable runs at pref_address.
	 */
	k->run_start = BOOT_KERNEL_ADDR;
	if (h->relocatable_kernel && h->kernel_alignment &&
	    !(h->kernel_alignment & (h->kernel_alignment - 1)))
		k->run_start = ALIGN_UP(k->run_start, (uint64_t)h->kernel_alignment);
	k->run_start = MAX(k->run_start, h->pref_address);
	k->end = MAX(BOOT_KERNEL_ADDR + k->kernel_size, k->run_start + h->init_size);
	k->end = ALIGN_UP(k->end, PAGE_SIZE);
	return 0;
}

static int load_kernel(struct guest_mem *mem, const char *path, struct kernel_image *k)
{
	uint64_t low_end = guest_mem_low_end(mem);
	void *dst;
	int fd, ret;

	fd = open_file(path, "kernel", KERNEL_FILE_MAX, &k->file_size);
	if (fd < 0)
		return fd;
	ret = parse_header(fd, path, k);
	if (ret)
		goto out;

	if (k->end > low_end) {
		pr_err("%s: kernel needs %llu MiB of RAM (init_size) but the guest has %llu MiB",
		       path, (unsigned long long)((k->end + MIB - 1) / MIB),
		       (unsigned long long)(low_end / MIB));
		ret = -ENOMEM;
		goto out;
	}
	dst = guest_ptr(mem, BOOT_KERNEL_ADDR, k->kernel_size);
	if (!dst) { /* cannot happen after the check above */
		ret = -ENOMEM;
		goto out;
	}
	ret = read_at(fd, dst, k->kernel_size, k->setup_size);
	if (ret)
		pr_err("%s: cannot read kernel: %s", path, strerror(-ret));
out:
	close(fd);
	return ret;
}

/* Puts the initrd as high as the kernel allows, above the kernel's memory. */
static int load_initrd(struct guest_mem *mem, const char *path,
		       const struct kernel_image *k, struct boot_params *bp)
{
	uint64_t size, limit, addr;
	void *dst;
	int fd, ret;

	fd = open_file(path, "initrd", INITRD_FILE_MAX, &size);
	if (fd < 0)
		return fd;

	limit = bp->hdr.initrd_addr_max ? bp->hdr.initrd_addr_max : INITRD_ADDR_MAX_DEFAULT;
	limit = MIN(limit + 1, guest_mem_low_end(mem));
	if (size > limit || ALIGN_DOWN(limit - size, PAGE_SIZE) < k->end) {
		pr_err("%s: initrd (%llu MiB) does not fit in guest RAM between the kernel (%llu MiB) and %llu MiB",
		       path, (unsigned long long)((size + MIB - 1) / MIB),
		       (unsigned long long)(k->end / MIB),
		       (unsigned long long)(limit / MIB));
		ret = -ENOMEM;
		goto out;
	}
	addr = ALIGN_DOWN(limit - size, PAGE_SIZE);
	dst = guest_ptr(mem, addr, size);
	if (!dst) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_at(fd, dst, size, 0);
	if (ret) {
		pr_err("%s: cannot read initrd: %s", path, strerror(-ret));
		goto out;
	}
	bp->hdr.ramdisk_image = (uint32_t)addr;
	bp->hdr.ramdisk_size = (uint32_t)size;
	bp->ext_ramdisk_image = (uint32_t)(addr >> 32);
	bp->ext_ramdisk_size = (uint32_t)(size >> 32);
out:
	close(fd);
	return ret;
}

static int load_cmdline(struct guest_mem *mem, const char *kernel, const char *cmdline,
			struct boot_params *bp)
{
	size_t len = cmdline ? strlen(cmdline) : 0;
	uint64_t max = MIN((uint64_t)bp->hdr.cmdline_size, BOOT_CMDLINE_MAX - 1);
	char *dst;

	if (len > max) {
		pr_err("%s: command line is %zu bytes, the kernel takes at most %llu",
		       kernel, len, (unsigned long long)max);
		return -E2BIG;
	}
	dst = guest_ptr(mem, BOOT_CMDLINE_ADDR, len + 1);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, cmdline ? cmdline : "", len);
	dst[len] = '\0';
	bp->hdr.cmd_line_ptr = BOOT_CMDLINE_ADDR;
	bp->ext_cmd_line_ptr = 0;
	return 0;
}

int linux_boot_load(struct guest_mem *mem, const struct boot_config *cfg,
		    struct boot_state *bs)
{
	struct kernel_image k;
	struct boot_params *bp;
	uint64_t rsdp;
	int ret, n;

	memset(bs, 0, sizeof(*bs));
	if (!cfg->kernel) {
		pr_err("no kernel to boot");
		return -EINVAL;
	}
	bp = guest_ptr(mem, BOOT_PARAMS_ADDR, sizeof(*bp));
	if (!bp) {
		pr_err("%s: guest RAM (%llu KiB) is too small to boot Linux", cfg->kernel,
		       (unsigned long long)mem->ram_size / 1024);
		return -ENOMEM;
	}

	ret = load_kernel(mem, cfg->kernel, &k);
	if (ret)
		return ret;

	/* The zero page: the kernel's own header, then what we add. */
	memset(bp, 0, sizeof(*bp));
	memcpy((uint8_t *)bp + SETUP_HDR_START, k.sector + SETUP_HDR_START,
	       MIN(k.hdr_end, SETUP_HDR_SPACE_END) - SETUP_HDR_START);
	bp->hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
	bp->hdr.loadflags |= CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = HEAP_END_PTR;
	bp->hdr.code32_start = BOOT_KERNEL_ADDR;
	bp->hdr.hardware_subarch = X86_SUBARCH_PC;

	ret = load_cmdline(mem, cfg->kernel, cfg->cmdline, bp);
	if (ret)
		return ret;

	if (cfg->initrd) {
		ret = load_initrd(mem, cfg->initrd, &k, bp);
		if (ret)
			return ret;
	}

	n = e820_build(mem, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (n < 0) {
		pr_err("cannot build the e820 memory map: %s", strerror(-n));
		return n;
	}
	bp->e820_entries = n;

	ret = acpi_build(mem, cfg->ncpus, &rsdp);
	if (ret) {
		pr_err("cannot build the ACPI tables for %u vCPUs: %s", cfg->ncpus,
		       strerror(-ret));
		return ret;
	}
	bp->acpi_rsdp_addr = rsdp;

	ret = x86_build_long_mode(mem, bs);
	if (ret) {
		pr_err("cannot build the boot page tables: %s", strerror(-ret));
		return ret;
	}
	bs->entry = BOOT_KERNEL_ADDR + STARTUP_64_OFFSET;
	bs->boot_params = BOOT_PARAMS_ADDR;
	bs->rsdp = rsdp;

	pr_debug("kernel %s: protocol %u.%02u, %llu KiB at %#x, runs at %#llx, needs RAM to %llu MiB",
		 cfg->kernel, bp->hdr.version >> 8, bp->hdr.version & 0xff,
		 (unsigned long long)k.kernel_size / 1024, BOOT_KERNEL_ADDR,
		 (unsigned long long)k.run_start, (unsigned long long)(k.end / MIB));
	if (bp->hdr.ramdisk_size)
		pr_debug("initrd %s: %u KiB at %#x", cfg->initrd,
			 bp->hdr.ramdisk_size / 1024, bp->hdr.ramdisk_image);
	return 0;
}
