// SPDX-License-Identifier: MIT
/*
 * ELF executables: the header (e_ident, e_type, e_phoff, e_phnum, ...) and
 * the program header table, whose PT_LOAD entries say which bytes of the
 * file go where in memory (System V ABI, "Program Loading"). Section
 * headers are for linkers and debuggers; a loader needs none of them.
 *
 * The file is an attacker's input. Headers are copied out of the buffer
 * with memcpy (no unaligned or out-of-bounds reads through casts), each
 * range is checked with "offset <= len && size <= len - offset", and the
 * number of program headers is bounded.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "boot/elf.h"

static int elf_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int elf_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -ENOEXEC;
}

/* Whether [off, off + size) lies inside a buffer of len bytes. */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

bool elf_is_elf(const void *buf, size_t len)
{
	return len >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG);
}

/* The fields of either header class that a loader needs, widened. */
struct elf_hdr {
	uint16_t type, machine, phentsize, phnum;
	uint64_t entry, phoff;
};

static int read_ehdr(const uint8_t *buf, size_t len, bool is64, struct elf_hdr *h,
		     char *err, size_t errlen)
{
	if (is64) {
		Elf64_Ehdr e;

		if (len < sizeof(e))
			return elf_fail(err, errlen, "truncated ELF header (%zu bytes, need %zu)",
					len, sizeof(e));
		memcpy(&e, buf, sizeof(e));
		*h = (struct elf_hdr){ e.e_type, e.e_machine, e.e_phentsize, e.e_phnum,
				       e.e_entry, e.e_phoff };
	} else {
		Elf32_Ehdr e;

		if (len < sizeof(e))
			return elf_fail(err, errlen, "truncated ELF header (%zu bytes, need %zu)",
					len, sizeof(e));
		memcpy(&e, buf, sizeof(e));
		*h = (struct elf_hdr){ e.e_type, e.e_machine, e.e_phentsize, e.e_phnum,
				       e.e_entry, e.e_phoff };
	}
	return 0;
}

/* Reads program header i (already bounds-checked) as a PT_LOAD or not. */
static bool read_phdr(const uint8_t *p, bool is64, struct elf_segment *s)
{
	if (is64) {
		Elf64_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_segment){ ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz };
		return ph.p_type == PT_LOAD;
	} else {
		Elf32_Phdr ph;

		memcpy(&ph, p, sizeof(ph));
		*s = (struct elf_segment){ ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz };
		return ph.p_type == PT_LOAD;
	}
}

static int check_segment(const struct elf_segment *s, unsigned i, size_t len,
			 char *err, size_t errlen)
{
	if (s->filesz > s->memsz)
		return elf_fail(err, errlen, "segment %u: file size %#llx exceeds memory size %#llx",
				i, (unsigned long long)s->filesz, (unsigned long long)s->memsz);
	if (!in_file(s->offset, s->filesz, len))
		return elf_fail(err, errlen,
				"segment %u: bytes %#llx+%#llx lie past the end of the file (%zu bytes)",
				i, (unsigned long long)s->offset,
				(unsigned long long)s->filesz, len);
	if (s->memsz && s->memsz - 1 > UINT64_MAX - s->paddr)
		return elf_fail(err, errlen, "segment %u: %#llx+%#llx wraps around the address space",
				i, (unsigned long long)s->paddr, (unsigned long long)s->memsz);
	return 0;
}

/* Two segments loading into the same memory: one would overwrite the other. */
static int check_overlaps(const struct elf_image *img, char *err, size_t errlen)
{
	for (unsigned i = 0; i < img->nr_segs; i++) {
		const struct elf_segment *a = &img->segs[i];

		for (unsigned j = i + 1; j < img->nr_segs; j++) {
			const struct elf_segment *b = &img->segs[j];

			if (a->paddr <= b->paddr + (b->memsz - 1) &&
			    b->paddr <= a->paddr + (a->memsz - 1))
				return elf_fail(err, errlen, "loadable segments %u and %u overlap", i, j);
		}
	}
	return 0;
}

static int read_phdrs(const uint8_t *buf, size_t len, const struct elf_hdr *h,
		      struct elf_image *img, char *err, size_t errlen)
{
	size_t entsize = img->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	struct elf_segment s;
	int ret;

	if (h->phnum == 0)
		return elf_fail(err, errlen, "no program headers");
	if (h->phnum > ELF_MAX_PHDRS) /* also PN_XNUM, which needs section 0 */
		return elf_fail(err, errlen, "too many program headers (%u, at most %d)",
				h->phnum, ELF_MAX_PHDRS);
	if (h->phentsize != entsize)
		return elf_fail(err, errlen, "program header size is %u, expected %zu",
				h->phentsize, entsize);
	if (!in_file(h->phoff, (uint64_t)h->phnum * entsize, len))
		return elf_fail(err, errlen, "program headers lie past the end of the file");

	for (unsigned i = 0; i < h->phnum; i++) {
		if (!read_phdr(buf + h->phoff + i * entsize, img->is64, &s))
			continue;
		ret = check_segment(&s, i, len, err, errlen);
		if (ret)
			return ret;
		if (s.memsz)
			img->segs[img->nr_segs++] = s;
	}
	if (!img->nr_segs)
		return elf_fail(err, errlen, "no loadable segments");
	return check_overlaps(img, err, errlen);
}

int elf_parse(const void *buf, size_t len, struct elf_image *img, char *err, size_t errlen)
{
	const uint8_t *b = buf;
	struct elf_hdr h = { 0 };
	int ret;

	memset(img, 0, sizeof(*img));
	if (!elf_is_elf(buf, len))
		return elf_fail(err, errlen, "not an ELF file");
	if (len < EI_NIDENT)
		return elf_fail(err, errlen, "truncated ELF header (%zu bytes)", len);
	if (b[EI_CLASS] != ELFCLASS32 && b[EI_CLASS] != ELFCLASS64)
		return elf_fail(err, errlen, "unknown ELF class %u", b[EI_CLASS]);
	if (b[EI_DATA] != ELFDATA2LSB)
		return elf_fail(err, errlen, "not a little-endian ELF file");
	img->is64 = b[EI_CLASS] == ELFCLASS64;
	ret = read_ehdr(b, len, img->is64, &h, err, errlen);
	if (ret)
		return ret;
	if (h.type != ET_EXEC)
		return elf_fail(err, errlen, "not an ELF executable (e_type %u; need ET_EXEC)",
				h.type);
	img->machine = h.machine;
	img->entry = h.entry;
	return read_phdrs(b, len, &h, img, err, errlen);
}
