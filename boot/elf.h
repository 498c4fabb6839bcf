/* SPDX-License-Identifier: MIT */
/*
 * A parser for ELF executables (the System V ABI's "ELF" chapter, and
 * <elf.h>), 32- and 64-bit, little-endian: enough to find the loadable
 * segments and the entry point of a bare-metal guest. It reads from a
 * buffer holding the whole file and trusts nothing in it: every offset and
 * size is checked against the buffer before use, with no sum that can
 * overflow. It knows nothing of any architecture or of guest memory; the
 * caller (boot/bare.c) judges machine, addresses and entry point.
 */
#ifndef MINIVM_BOOT_ELF_H
#define MINIVM_BOOT_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* More program headers than this is not a small guest, or is hostile. */
#define ELF_MAX_PHDRS 64

struct elf_segment {
	uint64_t paddr;  /* p_paddr: where in guest-physical memory */
	uint64_t offset; /* p_offset: where in the file */
	uint64_t filesz; /* bytes from the file ... */
	uint64_t memsz;  /* ... and zeroes up to this size */
};

struct elf_image {
	bool is64;
	uint16_t machine; /* e_machine: EM_386, EM_X86_64, EM_AARCH64, ... */
	uint64_t entry;
	unsigned nr_segs; /* PT_LOAD segments with a non-zero memsz */
	struct elf_segment segs[ELF_MAX_PHDRS];
};

/* Whether buf starts with the ELF magic number. */
bool elf_is_elf(const void *buf, size_t len);

/*
 * Parses the ELF executable buf[0..len). Returns 0, or -ENOEXEC with a
 * short description of the first problem in err (no file name: the caller
 * adds it).
 */
int elf_parse(const void *buf, size_t len, struct elf_image *img, char *err, size_t errlen);

#endif
