// SPDX-License-Identifier: MIT
/*
 * Loading bare-metal guests (see bare.h): recognising what -kernel holds,
 * and putting a flat binary or an ELF executable into guest memory.
 *
 * Why a flat binary goes to 0x7c00: it is where a PC BIOS loads a boot
 * sector and jumps, so a boot sector (or any code written for that address)
 * runs unchanged, and it leaves the real-mode interrupt vector table
 * (0-0x3ff) and the BIOS data area (0x400-0x4ff) free below it. Anything
 * that is neither a bzImage nor an ELF file is taken for a flat binary;
 * -kernel-format flat forces it for a file that only looks like the others.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/bare.h"
#include "boot/boot.h"
#include "boot/elf.h"
#include "boot/layout.h"
#include "vmm/log.h"

#define LINUX_HDR_MAGIC_OFF 0x202
#define LINUX_HDR_MAGIC "HdrS"
#define PROBE_LEN (LINUX_HDR_MAGIC_OFF + 4)
#define BOOT_SIG_OFF 510 /* a boot sector's last two bytes: 55 aa */

/* A bare-metal guest larger than this is a mistake, not a teaching guest. */
#define BARE_FILE_MAX (64ULL << 20)

/* The flat binary must end below the area minivm keeps for ACPI. */
#define BARE_FLAT_MAX (BOOT_ACPI_ADDR - BARE_FLAT_ADDR)

enum kernel_format bare_probe(const void *head, size_t len)
{
	const uint8_t *b = head;

	if (len >= PROBE_LEN && !memcmp(b + LINUX_HDR_MAGIC_OFF, LINUX_HDR_MAGIC, 4))
		return KERNEL_LINUX;
	if (elf_is_elf(head, len))
		return KERNEL_ELF;
	/* A BIOS boots a sector only if it ends in 55 aa; so do we. */
	if (len >= BOOT_SIG_OFF + 2 && b[BOOT_SIG_OFF] == 0x55 && b[BOOT_SIG_OFF + 1] == 0xaa)
		return KERNEL_FLAT;
	return KERNEL_AUTO;
}

/* Reads up to len bytes from the start; returns how many, or -errno. */
static ssize_t read_head(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

/* Opens a regular file; prints and returns -errno. */
static int open_regular(const char *path, uint64_t *size)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("-kernel %s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		pr_err("-kernel %s: not a regular file", path);
		return -EINVAL;
	}
	*size = st.st_size;
	return fd;
}

int bare_probe_file(const char *path, enum kernel_format *fmt)
{
	uint8_t head[PROBE_LEN];
	uint64_t size;
	ssize_t n;
	int fd;

	fd = open_regular(path, &size);
	if (fd < 0)
		return fd;
	n = read_head(fd, head, sizeof(head));
	close(fd);
	if (n < 0) {
		pr_err("-kernel %s: %s", path, strerror(-n));
		return n;
	}
	*fmt = bare_probe(head, n);
	if (*fmt == KERNEL_AUTO) {
		pr_err("-kernel %s: not a Linux bzImage, an ELF file or a boot sector "
		       "(55 aa at byte 510); -kernel-format flat runs it as a flat binary", path);
		return -ENOEXEC;
	}
	return 0;
}

static int bare_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bare_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

/* CS:IP for a linear entry address below 1 MiB. */
static void set_entry(struct bare_state *st, uint64_t entry)
{
	st->cs = (entry >> 4) & 0xf000;
	st->ip = entry & 0xffff;
}

static int load_flat(struct guest_mem *mem, const void *buf, size_t len,
		     struct bare_state *st, char *err, size_t errlen)
{
	void *dst;

	if (len == 0)
		return bare_fail(err, errlen, -ENOEXEC, "empty flat binary");
	if (len > BARE_FLAT_MAX)
		return bare_fail(err, errlen, -EFBIG,
				 "flat binary is %zu bytes; at %#x it may take at most %#x",
				 len, BARE_FLAT_ADDR, BARE_FLAT_MAX);
	dst = guest_ptr(mem, BARE_FLAT_ADDR, len);
	if (!dst)
		return bare_fail(err, errlen, -ENOMEM, "guest RAM is too small for the flat binary");
	memcpy(dst, buf, len);
	set_entry(st, BARE_FLAT_ADDR);
	return 0;
}

/* Checks one segment against guest RAM and what minivm itself puts there. */
static int check_placement(const struct guest_mem *mem, const struct elf_segment *s,
			   unsigned i, char *err, size_t errlen)
{
	uint64_t last = s->paddr + (s->memsz - 1); /* elf_parse ruled out wrapping */

	if (!guest_ptr(mem, s->paddr, s->memsz))
		return bare_fail(err, errlen, -ENOMEM,
				 "segment %u (%#llx-%#llx) lies outside guest RAM (%llu MiB)",
				 i, (unsigned long long)s->paddr, (unsigned long long)last,
				 (unsigned long long)(mem->ram_size >> 20));
	if (s->paddr < BOOT_ACPI_END && last >= BOOT_ACPI_ADDR)
		return bare_fail(err, errlen, -EBUSY,
				 "segment %u (%#llx-%#llx) overlaps the ACPI tables at %#x-%#x",
				 i, (unsigned long long)s->paddr, (unsigned long long)last,
				 BOOT_ACPI_ADDR, BOOT_ACPI_END - 1);
	return 0;
}

static int load_elf(struct guest_mem *mem, const uint8_t *buf, size_t len,
		    struct bare_state *st, char *err, size_t errlen)
{
	struct elf_image *img = malloc(sizeof(*img));
	int ret;

	if (!img)
		return bare_fail(err, errlen, -ENOMEM, "out of memory");
	ret = elf_parse(buf, len, img, err, errlen);
	if (ret)
		goto out;
	if (img->machine != EM_386 && img->machine != EM_X86_64) {
		ret = bare_fail(err, errlen, -ENOEXEC, "ELF file for machine %u, not x86",
				img->machine);
		goto out;
	}
	if (img->entry >= BARE_ENTRY_LIMIT) {
		ret = bare_fail(err, errlen, -ENOEXEC,
				"entry point %#llx is not below 1 MiB (the guest starts in real mode)",
				(unsigned long long)img->entry);
		goto out;
	}
	for (unsigned i = 0; i < img->nr_segs && !ret; i++)
		ret = check_placement(mem, &img->segs[i], i, err, errlen);
	if (ret)
		goto out;
	for (unsigned i = 0; i < img->nr_segs; i++) {
		const struct elf_segment *s = &img->segs[i];
		uint8_t *dst = guest_ptr(mem, s->paddr, s->memsz);

		memcpy(dst, buf + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz); /* .bss */
	}
	set_entry(st, img->entry);
out:
	free(img);
	return ret;
}

int bare_load_image(struct guest_mem *mem, enum kernel_format fmt, const void *buf,
		    size_t len, struct bare_state *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	switch (fmt) {
	case KERNEL_FLAT:
		return load_flat(mem, buf, len, st, err, errlen);
	case KERNEL_ELF:
		return load_elf(mem, buf, len, st, err, errlen);
	default:
		return bare_fail(err, errlen, -EINVAL, "not a bare-metal image format");
	}
}

/* Reads the whole file into a new buffer; prints and returns -errno. */
static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	uint64_t size;
	ssize_t n;
	int fd, ret = 0;

	fd = open_regular(path, &size);
	if (fd < 0)
		return fd;
	if (size > BARE_FILE_MAX) {
		pr_err("-kernel %s: too large for a bare-metal guest (%llu MiB, at most %llu)",
		       path, (unsigned long long)(size >> 20),
		       (unsigned long long)(BARE_FILE_MAX >> 20));
		ret = -EFBIG;
		goto out;
	}
	*buf = malloc(size ? size : 1);
	if (!*buf) {
		ret = -ENOMEM;
		pr_err("-kernel %s: out of memory", path);
		goto out;
	}
	n = read_head(fd, *buf, size);
	if (n < 0 || (uint64_t)n != size) {
		ret = n < 0 ? n : -EIO;
		pr_err("-kernel %s: cannot read: %s", path, strerror(-ret));
		free(*buf);
		goto out;
	}
	*len = size;
out:
	close(fd);
	return ret;
}

int bare_boot_load(struct guest_mem *mem, const char *path, enum kernel_format fmt,
		   unsigned ncpus, struct bare_state *st)
{
	char err[160];
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	ret = read_file(path, &buf, &len);
	if (ret)
		return ret;
	ret = bare_load_image(mem, fmt, buf, len, st, err, sizeof(err));
	free(buf);
	if (ret) {
		pr_err("-kernel %s: %s", path, err);
		return ret;
	}
	ret = acpi_build(mem, ncpus, &st->rsdp);
	if (ret) {
		pr_err("cannot build the ACPI tables for %u vCPUs: %s", ncpus, strerror(-ret));
		return ret;
	}
	pr_debug("bare-metal %s image %s: starting at %04x:%04x in real mode",
		 kernel_format_name(fmt), path, st->cs, st->ip);
	return 0;
}
