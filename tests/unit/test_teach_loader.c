// SPDX-License-Identifier: MIT
/*
 * The bare-metal loader (boot/bare.c, boot/elf.c) without KVM: format
 * probing, flat binaries at 0x7c00, ELF executables by their PT_LOAD
 * segments, and one clear error for each way an ELF file can be malformed
 * or hostile. Images are built here in memory, so each test names exactly
 * the field it breaks.
 */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "boot/bare.h"
#include "boot/elf.h"
#include "boot/layout.h"
#include "tests/unit/unit.h"

#define RAM (16ULL << 20)
#define FILE_MAX 8192
#define PAYLOAD_OFF 0x400 /* the segment's bytes in the file */

/* A synthetic ELF file: header, program headers, then one payload. */
struct elf_spec {
	bool is64;
	uint16_t machine, type, phentsize, phnum;
	uint64_t entry, phoff;
	unsigned nr;          /* program headers to write */
	struct {
		uint32_t type;
		uint64_t paddr, offset, filesz, memsz;
	} ph[4];
	size_t len;           /* the file's size */
};

static struct elf_spec good_elf(bool is64)
{
	struct elf_spec s = {
		.is64 = is64,
		.machine = is64 ? EM_X86_64 : EM_386,
		.type = ET_EXEC,
		.phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr),
		.phnum = 1,
		.entry = 0x7c00,
		.phoff = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr),
		.nr = 1,
		.len = PAYLOAD_OFF + 0x100,
	};

	s.ph[0].type = PT_LOAD;
	s.ph[0].paddr = 0x7c00;
	s.ph[0].offset = PAYLOAD_OFF;
	s.ph[0].filesz = 0x100;
	s.ph[0].memsz = 0x180; /* 0x80 bytes of .bss */
	return s;
}

static uint8_t file[FILE_MAX];

static void put_phdr(const struct elf_spec *s, unsigned i, uint8_t *at)
{
	if (s->is64) {
		Elf64_Phdr p = { .p_type = s->ph[i].type, .p_offset = s->ph[i].offset,
				 .p_vaddr = s->ph[i].paddr, .p_paddr = s->ph[i].paddr,
				 .p_filesz = s->ph[i].filesz, .p_memsz = s->ph[i].memsz };
		memcpy(at, &p, sizeof(p));
	} else {
		Elf32_Phdr p = { .p_type = s->ph[i].type, .p_offset = s->ph[i].offset,
				 .p_vaddr = s->ph[i].paddr, .p_paddr = s->ph[i].paddr,
				 .p_filesz = s->ph[i].filesz, .p_memsz = s->ph[i].memsz };
		memcpy(at, &p, sizeof(p));
	}
}

/* Writes the file into file[]; the payload bytes are i * 3 + 1. */
static size_t build_elf(const struct elf_spec *s)
{
	size_t ent = s->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);

	memset(file, 0, sizeof(file));
	for (size_t i = PAYLOAD_OFF; i < FILE_MAX; i++)
		file[i] = (uint8_t)(i * 3 + 1);
	if (s->is64) {
		Elf64_Ehdr h = { .e_type = s->type, .e_machine = s->machine,
				 .e_version = EV_CURRENT, .e_entry = s->entry,
				 .e_phoff = s->phoff, .e_ehsize = sizeof(h),
				 .e_phentsize = s->phentsize, .e_phnum = s->phnum };
		memcpy(file, &h, sizeof(h));
	} else {
		Elf32_Ehdr h = { .e_type = s->type, .e_machine = s->machine,
				 .e_version = EV_CURRENT, .e_entry = s->entry,
				 .e_phoff = s->phoff, .e_ehsize = sizeof(h),
				 .e_phentsize = s->phentsize, .e_phnum = s->phnum };
		memcpy(file, &h, sizeof(h));
	}
	memcpy(file, ELFMAG, SELFMAG);
	file[EI_CLASS] = s->is64 ? ELFCLASS64 : ELFCLASS32;
	file[EI_DATA] = ELFDATA2LSB;
	file[EI_VERSION] = EV_CURRENT;
	for (unsigned i = 0; i < s->nr; i++)
		put_phdr(s, i, file + s->phoff + i * ent);
	ck_assert_uint_le(s->len, FILE_MAX);
	return s->len;
}

static struct guest_mem mem;
static char err[256];
static struct bare_state st;

static void mem_setup(void)
{
	ck_assert_int_eq(guest_mem_init(&mem, RAM), 0);
	memset(guest_ptr(&mem, 0, 1 << 20), 0xaa, 1 << 20);
	err[0] = '\0';
}

static void mem_teardown(void)
{
	guest_mem_destroy(&mem);
}

static int load(enum kernel_format fmt, size_t len)
{
	return bare_load_image(&mem, fmt, file, len, &st, err, sizeof(err));
}

/* The load fails with one message containing want, and writes nothing. */
static void expect_refused(const struct elf_spec *s, const char *want)
{
	size_t len = build_elf(s);
	uint8_t *ram = guest_ptr(&mem, 0x7c00, 1);

	ck_assert_int_ne(load(KERNEL_ELF, len), 0);
	ck_assert_msg(strstr(err, want), "error '%s' does not say '%s'", err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_uint_eq(ram[0], 0xaa);
}

START_TEST(probe_formats)
{
	uint8_t head[0x206] = { 0 };

	memcpy(head + 0x202, "HdrS", 4);
	ck_assert_int_eq(bare_probe(head, sizeof(head)), KERNEL_LINUX);
	ck_assert_int_eq(bare_probe(head, sizeof(head) - 1), KERNEL_AUTO); /* too short */
	memcpy(head, ELFMAG, SELFMAG);
	head[0x202] = 0;
	ck_assert_int_eq(bare_probe(head, sizeof(head)), KERNEL_ELF);
	ck_assert_int_eq(bare_probe(head, SELFMAG), KERNEL_ELF);
	ck_assert_int_eq(bare_probe(head, SELFMAG - 1), KERNEL_AUTO);
	/* Anything else runs only as a boot sector, 55 aa at byte 510 ... */
	memset(head, 0, sizeof(head));
	head[510] = 0x55;
	head[511] = 0xaa;
	ck_assert_int_eq(bare_probe(head, 512), KERNEL_FLAT);
	ck_assert_int_eq(bare_probe(head, 511), KERNEL_AUTO);
	head[511] = 0;
	ck_assert_int_eq(bare_probe(head, sizeof(head)), KERNEL_AUTO);
	/* ... and code, text or zeros are not taken for one. */
	ck_assert_int_eq(bare_probe("\xfa\x31\xc0", 3), KERNEL_AUTO);
	ck_assert_int_eq(bare_probe("", 0), KERNEL_AUTO);
}
END_TEST

START_TEST(flat_at_7c00)
{
	uint8_t *ram = guest_ptr(&mem, 0x7c00, 4);

	memcpy(file, "\xfa\xf4\xeb\xfd", 4);
	ck_assert_int_eq(load(KERNEL_FLAT, 4), 0);
	ck_assert_mem_eq(ram, "\xfa\xf4\xeb\xfd", 4);
	ck_assert_uint_eq(ram[4], 0xaa); /* nothing beyond the file */
	ck_assert_uint_eq(st.cs, 0);
	ck_assert_uint_eq(st.ip, 0x7c00);
}
END_TEST

START_TEST(flat_empty_or_too_big)
{
	static uint8_t big[BOOT_ACPI_ADDR - 0x7c00 + 1];

	ck_assert_int_eq(load(KERNEL_FLAT, 0), -ENOEXEC);
	ck_assert(strstr(err, "empty"));
	ck_assert_int_eq(bare_load_image(&mem, KERNEL_FLAT, big, sizeof(big), &st,
					 err, sizeof(err)), -EFBIG);
	ck_assert(strstr(err, "at most"));
	/* one byte less just fits below the ACPI tables */
	ck_assert_int_eq(bare_load_image(&mem, KERNEL_FLAT, big, sizeof(big) - 1, &st,
					 err, sizeof(err)), 0);
}
END_TEST

static void check_loaded(void)
{
	uint8_t *ram = guest_ptr(&mem, 0x7c00, 0x200);

	ck_assert_mem_eq(ram, file + PAYLOAD_OFF, 0x100);
	for (unsigned i = 0x100; i < 0x180; i++)
		ck_assert_uint_eq(ram[i], 0); /* memsz beyond filesz: zeroed */
	ck_assert_uint_eq(ram[0x180], 0xaa);
	ck_assert_uint_eq(st.cs, 0);
	ck_assert_uint_eq(st.ip, 0x7c00);
}

START_TEST(elf32_loads)
{
	struct elf_spec s = good_elf(false);

	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
	check_loaded();
}
END_TEST

START_TEST(elf64_loads)
{
	struct elf_spec s = good_elf(true);

	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
	check_loaded();
}
END_TEST

START_TEST(entry_gives_cs_ip)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].paddr = 0x12000;
	s.entry = 0x12345;
	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
	ck_assert_uint_eq(st.cs, 0x1000);
	ck_assert_uint_eq(st.ip, 0x2345);
	s.entry = 0xfffff; /* the last byte real mode reaches without the HMA */
	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
	ck_assert_uint_eq(st.cs, 0xf000);
	ck_assert_uint_eq(st.ip, 0xffff);
}
END_TEST

START_TEST(segments_above_1m_and_non_load_ignored)
{
	struct elf_spec s = good_elf(_i);

	s.nr = s.phnum = 3;
	s.ph[1] = s.ph[0];
	s.ph[1].paddr = 0x200000;
	s.ph[2] = s.ph[0];
	s.ph[2].type = PT_NOTE;
	s.ph[2].paddr = 0xe0000; /* would overlap ACPI, but is not loaded */
	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
	ck_assert_mem_eq(guest_ptr(&mem, 0x200000, 0x100), file + PAYLOAD_OFF, 0x100);
}
END_TEST

START_TEST(not_elf_or_truncated_header)
{
	struct elf_spec s = good_elf(_i);
	size_t ehdr = _i ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);

	build_elf(&s);
	ck_assert_int_eq(load(KERNEL_ELF, 3), -ENOEXEC);
	ck_assert(strstr(err, "not an ELF file"));
	ck_assert_int_eq(load(KERNEL_ELF, 10), -ENOEXEC);
	ck_assert(strstr(err, "truncated ELF header"));
	ck_assert_int_eq(load(KERNEL_ELF, ehdr - 1), -ENOEXEC);
	ck_assert(strstr(err, "truncated ELF header"));
}
END_TEST

START_TEST(bad_ident)
{
	struct elf_spec s = good_elf(_i);
	size_t len = build_elf(&s);

	file[EI_CLASS] = 3;
	ck_assert_int_eq(load(KERNEL_ELF, len), -ENOEXEC);
	ck_assert(strstr(err, "unknown ELF class 3"));
	len = build_elf(&s);
	file[EI_DATA] = ELFDATA2MSB;
	ck_assert_int_eq(load(KERNEL_ELF, len), -ENOEXEC);
	ck_assert(strstr(err, "little-endian"));
}
END_TEST

START_TEST(not_executable)
{
	struct elf_spec s = good_elf(_i);

	s.type = ET_DYN;
	expect_refused(&s, "not an ELF executable");
}
END_TEST

START_TEST(wrong_machine)
{
	struct elf_spec s = good_elf(_i);

	s.machine = EM_AARCH64;
	expect_refused(&s, "not x86");
}
END_TEST

START_TEST(program_header_table)
{
	struct elf_spec s = good_elf(_i);

	s.phnum = 0;
	expect_refused(&s, "no program headers");
	s = good_elf(_i);
	s.phnum = ELF_MAX_PHDRS + 1;
	expect_refused(&s, "too many program headers");
	s.phnum = 0xffff; /* PN_XNUM */
	expect_refused(&s, "too many program headers");
	s = good_elf(_i);
	s.phentsize = 16;
	expect_refused(&s, "program header size");
	s = good_elf(_i);
	s.phnum = 2;
	s.phoff = s.len - s.phentsize; /* the second one runs past the end */
	s.nr = 1;
	expect_refused(&s, "program headers lie past the end");
	s = good_elf(_i);
	s.phoff = _i ? UINT64_MAX - 8 : UINT32_MAX - 8;
	s.nr = 0;
	expect_refused(&s, "program headers lie past the end");
}
END_TEST

START_TEST(segment_past_file)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].filesz = s.len - PAYLOAD_OFF + 1;
	s.ph[0].memsz = s.ph[0].filesz;
	expect_refused(&s, "past the end of the file");
	s = good_elf(_i);
	s.ph[0].offset = _i ? UINT64_MAX - 0x10 : UINT32_MAX - 0x10; /* offset + size wraps */
	expect_refused(&s, "past the end of the file");
}
END_TEST

START_TEST(filesz_above_memsz)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].memsz = s.ph[0].filesz - 1;
	expect_refused(&s, "exceeds memory size");
}
END_TEST

START_TEST(segment_wraps)
{
	struct elf_spec s = good_elf(true);

	s.ph[0].paddr = UINT64_MAX - 0x10;
	expect_refused(&s, "wraps around");
}
END_TEST

START_TEST(segment_past_ram)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].paddr = RAM - 0x100; /* starts in RAM, ends beyond it */
	expect_refused(&s, "outside guest RAM");
	s.ph[0].paddr = 0xfee00000; /* the LAPIC, not RAM */
	expect_refused(&s, "outside guest RAM");
}
END_TEST

START_TEST(segment_over_acpi_tables)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].paddr = BOOT_ACPI_ADDR - 0x100; /* last 0x80 bytes of .bss in it */
	expect_refused(&s, "overlaps the ACPI tables");
	s.ph[0].paddr = BOOT_ACPI_END - 1;
	expect_refused(&s, "overlaps the ACPI tables");
}
END_TEST

START_TEST(segments_overlap_each_other)
{
	struct elf_spec s = good_elf(_i);

	s.nr = s.phnum = 2;
	s.ph[1] = s.ph[0];
	s.ph[1].paddr = s.ph[0].paddr + s.ph[0].memsz - 1;
	expect_refused(&s, "segments 0 and 1 overlap");
	s.ph[1].paddr = s.ph[0].paddr + s.ph[0].memsz; /* adjacent is fine */
	ck_assert_int_eq(load(KERNEL_ELF, build_elf(&s)), 0);
}
END_TEST

START_TEST(no_loadable_segment)
{
	struct elf_spec s = good_elf(_i);

	s.ph[0].type = PT_NOTE;
	expect_refused(&s, "no loadable segments");
	s = good_elf(_i);
	s.ph[0].filesz = s.ph[0].memsz = 0;
	expect_refused(&s, "no loadable segments");
}
END_TEST

START_TEST(entry_at_or_above_1m)
{
	struct elf_spec s = good_elf(_i);

	s.entry = 0x100000;
	expect_refused(&s, "not below 1 MiB");
	s.entry = _i ? 0xffffffff00007c00ULL : 0x80007c00;
	expect_refused(&s, "not below 1 MiB");
}
END_TEST

#define PARSE(cfg, ...) cli_parse(sizeof((char *[]){ "minivm", __VA_ARGS__ }) / sizeof(char *), \
				(char *[]){ "minivm", __VA_ARGS__, NULL }, (cfg))

START_TEST(kernel_format_flag)
{
	struct vm_config c;

	ck_assert_int_eq(PARSE(&c, "-kernel", "k"), CLI_RUN);
	ck_assert_int_eq(c.kernel_format, KERNEL_AUTO);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-kernel-format", "linux"), CLI_RUN);
	ck_assert_int_eq(c.kernel_format, KERNEL_LINUX);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-kernel-format", "elf"), CLI_RUN);
	ck_assert_int_eq(c.kernel_format, KERNEL_ELF);
	ck_assert_int_eq(PARSE(&c, "-kernel-format", "flat", "-kernel", "k"), CLI_RUN);
	ck_assert_int_eq(c.kernel_format, KERNEL_FLAT);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-kernel-format", "auto"), CLI_RUN);
	ck_assert_int_eq(c.kernel_format, KERNEL_AUTO);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-kernel-format", "ELF"), -EINVAL);
	ck_assert_int_eq(PARSE(&c, "-kernel", "k", "-kernel-format", ""), -EINVAL);
	ck_assert_str_eq(kernel_format_name(KERNEL_FLAT), "flat");
	ck_assert_str_eq(kernel_format_name((enum kernel_format)42), "?");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("teach_loader");
	TCase *probe = tcase_create("probe");
	TCase *flat = tcase_create("flat");
	TCase *elf = tcase_create("elf");
	TCase *bad = tcase_create("malformed_elf");

	tcase_add_test(probe, probe_formats);
	tcase_add_test(probe, kernel_format_flag);
	suite_add_tcase(s, probe);
	tcase_add_checked_fixture(flat, mem_setup, mem_teardown);
	tcase_add_test(flat, flat_at_7c00);
	tcase_add_test(flat, flat_empty_or_too_big);
	suite_add_tcase(s, flat);
	tcase_add_checked_fixture(elf, mem_setup, mem_teardown);
	tcase_add_test(elf, elf32_loads);
	tcase_add_test(elf, elf64_loads);
	/* _i: 0 for ELF32, 1 for ELF64 */
	tcase_add_loop_test(elf, entry_gives_cs_ip, 0, 2);
	tcase_add_loop_test(elf, segments_above_1m_and_non_load_ignored, 0, 2);
	suite_add_tcase(s, elf);
	tcase_add_checked_fixture(bad, mem_setup, mem_teardown);
	tcase_add_loop_test(bad, not_elf_or_truncated_header, 0, 2);
	tcase_add_loop_test(bad, bad_ident, 0, 2);
	tcase_add_loop_test(bad, not_executable, 0, 2);
	tcase_add_loop_test(bad, wrong_machine, 0, 2);
	tcase_add_loop_test(bad, program_header_table, 0, 2);
	tcase_add_loop_test(bad, segment_past_file, 0, 2);
	tcase_add_loop_test(bad, filesz_above_memsz, 0, 2);
	tcase_add_test(bad, segment_wraps);
	tcase_add_loop_test(bad, segment_past_ram, 0, 2);
	tcase_add_loop_test(bad, segment_over_acpi_tables, 0, 2);
	tcase_add_loop_test(bad, segments_overlap_each_other, 0, 2);
	tcase_add_loop_test(bad, no_loadable_segment, 0, 2);
	tcase_add_loop_test(bad, entry_at_or_above_1m, 0, 2);
	suite_add_tcase(s, bad);
	return unit_run(s);
}
