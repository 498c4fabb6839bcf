// SPDX-License-Identifier: MIT
/*
 * The ACPI tables as a guest OS would read them: found from the RSDP,
 * parsed from raw bytes at the offsets the ACPI specification gives (not
 * with boot/acpi.c's structures, so that a layout mistake there shows).
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "tests/unit/unit.h"

#define MIB (1ULL << 20)

static struct guest_mem mem;
static uint64_t rsdp;

static const uint8_t *at(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = guest_ptr(&mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(gpa, BOOT_ACPI_ADDR);
	ck_assert_uint_le(gpa + len, BOOT_ACPI_END);
	return p;
}

static uint16_t u16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t u32(const uint8_t *p)
{
	return u16(p) | (uint32_t)u16(p + 2) << 16;
}

static uint64_t u64(const uint8_t *p)
{
	return u32(p) | (uint64_t)u32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* A table with a standard header: checks signature, length, checksum. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *h = at(gpa, 36);
	uint32_t len = u32(h + 4);

	ck_assert_mem_eq(h, sig, 4);
	ck_assert_uint_ge(len, 36);
	h = at(gpa, len);
	ck_assert_uint_eq(sum(h, len), 0);
	ck_assert_mem_eq(h + 10, "MINIVM", 6);
	return h;
}

static void build(unsigned ncpus)
{
	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(acpi_build(&mem, ncpus, &rsdp), 0);
}

/* Finds the table with signature sig through the XSDT. */
static const uint8_t *find(const char *sig)
{
	const uint8_t *r = at(rsdp, 36);
	const uint8_t *xsdt = table(u64(r + 24), "XSDT");
	uint32_t n = (u32(xsdt + 4) - 36) / 8;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *t = at(u64(xsdt + 36 + 8 * i), 36);

		if (!memcmp(t, sig, 4))
			return table(u64(xsdt + 36 + 8 * i), sig);
	}
	ck_abort_msg("no %s table", sig);
	return NULL;
}

START_TEST(rsdp_and_root_tables)
{
	const uint8_t *r, *xsdt, *rsdt;
	uint32_t n;

	build(1);
	ck_assert_uint_eq(rsdp, BOOT_ACPI_ADDR);
	ck_assert_uint_eq(rsdp % 16, 0);
	r = at(rsdp, 36);
	ck_assert_mem_eq(r, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(r, 20), 0);
	ck_assert_uint_eq(r[15], 2);
	ck_assert_uint_eq(u32(r + 20), 36);
	ck_assert_uint_eq(sum(r, 36), 0);
	ck_assert_mem_eq(r + 9, "MINIVM", 6);

	/* XSDT and RSDT list the same tables: the FADT and the MADT. */
	xsdt = table(u64(r + 24), "XSDT");
	rsdt = table(u32(r + 16), "RSDT");
	n = (u32(xsdt + 4) - 36) / 8;
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(u32(rsdt + 4), 36 + 4 * n);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = u64(xsdt + 36 + 8 * i);
		const uint8_t *t = at(a, 36);

		ck_assert_uint_eq(u32(rsdt + 36 + 4 * i), a);
		ck_assert(!memcmp(t, "FACP", 4) || !memcmp(t, "APIC", 4));
		table(a, (const char *)t);
	}
	find("FACP");
	find("APIC");
	guest_mem_destroy(&mem);
}
END_TEST

START_TEST(fadt_fields)
{
	const uint8_t *f, *facs;
	uint32_t flags;

	build(1);
	f = find("FACP");
	ck_assert_uint_eq(u32(f + 4), 276);
	ck_assert_uint_eq(f[8], 6);                 /* revision */
	ck_assert_uint_eq(u16(f + 46), ACPI_SCI_IRQ);
	ck_assert_uint_eq(u32(f + 48), 0);          /* SMI_CMD: always in ACPI mode */
	ck_assert_uint_eq(u32(f + 56), ACPI_PM1A_EVT_BLK);
	ck_assert_uint_eq(u32(f + 64), ACPI_PM1A_CNT_BLK);
	ck_assert_uint_eq(u32(f + 76), ACPI_PM_TMR_BLK);
	ck_assert_uint_eq(f[88], 4);
	ck_assert_uint_eq(f[89], 2);
	ck_assert_uint_eq(f[91], 4);
	ck_assert_uint_eq(u16(f + 109) & 3, 3);    /* legacy devices, 8042 */

	flags = u32(f + 112);
	ck_assert(!(flags & (1u << 20)));           /* not HW_REDUCED_ACPI */
	ck_assert(flags & (1u << 10));              /* RESET_REG_SUP */
	ck_assert(flags & (1u << 0));               /* WBINVD */
	ck_assert(!(flags & (1u << 4)));            /* a fixed power button */

	/* RESET_REG: SystemIO, 8 bits at the reset port. */
	ck_assert_uint_eq(f[116], 1);
	ck_assert_uint_eq(f[117], 8);
	ck_assert_uint_eq(u64(f + 120), ACPI_RESET_PORT);
	ck_assert_uint_eq(f[128], ACPI_RESET_VALUE);

	/* The 64-bit forms agree with the 32-bit ones; X_FIRMWARE_CTRL must
	 * be zero when FIRMWARE_CTRL is set. */
	ck_assert_uint_ne(u32(f + 36), 0);
	ck_assert_uint_eq(u64(f + 132), 0);
	ck_assert_uint_eq(u64(f + 140), u32(f + 40));
	ck_assert_uint_eq(f[148], 1);
	ck_assert_uint_eq(f[149], 32);
	ck_assert_uint_eq(u64(f + 152), ACPI_PM1A_EVT_BLK);
	ck_assert_uint_eq(f[172], 1);
	ck_assert_uint_eq(f[173], 16);
	ck_assert_uint_eq(u64(f + 176), ACPI_PM1A_CNT_BLK);
	ck_assert_uint_eq(f[208], 1);
	ck_assert_uint_eq(f[209], 32);
	ck_assert_uint_eq(u64(f + 212), ACPI_PM_TMR_BLK);

	/* The FACS: 64-byte aligned, no header checksum. */
	ck_assert_uint_eq(u32(f + 36) % 64, 0);
	facs = at(u32(f + 36), 64);
	ck_assert_mem_eq(facs, "FACS", 4);
	ck_assert_uint_eq(u32(facs + 4), 64);
	table(u32(f + 40), "DSDT");
	guest_mem_destroy(&mem);
}
END_TEST

static void check_madt(unsigned ncpus)
{
	const uint8_t *m, *e, *end;
	bool seen_id[256] = { false };
	unsigned lapics = 0, ioapics = 0, nmis = 0;
	bool irq0 = false, irq9 = false;
	unsigned ioapic_id = 0;

	build(ncpus);
	m = find("APIC");
	ck_assert_uint_eq(u32(m + 36), LAPIC_ADDR);
	ck_assert_uint_eq(u32(m + 40) & 1, 1); /* PCAT_COMPAT */
	end = m + u32(m + 4);
	for (e = m + 44; e < end; e += e[1]) {
		ck_assert_uint_ge(e[1], 2);
		ck_assert(e + e[1] <= end);
		switch (e[0]) {
		case 0: /* Processor Local APIC */
			ck_assert_uint_eq(e[1], 8);
			ck_assert_uint_eq(e[2], lapics); /* UID */
			ck_assert_uint_eq(e[3], lapics); /* APIC ID */
			ck_assert(!seen_id[e[3]]);
			seen_id[e[3]] = true;
			ck_assert_uint_eq(u32(e + 4) & 1, 1); /* enabled */
			lapics++;
			break;
		case 1: /* I/O APIC */
			ck_assert_uint_eq(e[1], 12);
			ioapic_id = e[2];
			ck_assert_uint_eq(u32(e + 4), IOAPIC_ADDR);
			ck_assert_uint_eq(u32(e + 8), 0);
			ioapics++;
			break;
		case 2: /* Interrupt Source Override */
			ck_assert_uint_eq(e[1], 10);
			ck_assert_uint_eq(e[2], 0); /* ISA */
			if (e[3] == 0) {
				ck_assert_uint_eq(u32(e + 4), 2);
				ck_assert_uint_eq(u16(e + 8), 0x5); /* edge, high */
				irq0 = true;
			} else if (e[3] == ACPI_SCI_IRQ) {
				ck_assert_uint_eq(u32(e + 4), ACPI_SCI_IRQ);
				ck_assert_uint_eq(u16(e + 8), 0xd); /* level, high */
				irq9 = true;
			}
			break;
		case 4: /* Local APIC NMI */
			ck_assert_uint_eq(e[1], 6);
			ck_assert_uint_eq(e[2], 0xff);
			ck_assert_uint_eq(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			ck_abort_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	ck_assert(e == end);
	ck_assert_uint_eq(lapics, ncpus);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert(!seen_id[ioapic_id]);
	ck_assert(irq0);
	ck_assert(irq9);
	ck_assert_uint_eq(nmis, 1);
	guest_mem_destroy(&mem);
}

START_TEST(madt_cpus)
{
	static const unsigned counts[] = { 1, 2, 4, 255 };

	check_madt(counts[_i]);
}
END_TEST

START_TEST(bad_cpu_counts)
{
	ck_assert_int_eq(guest_mem_init(&mem, 128 * MIB), 0);
	ck_assert_int_eq(acpi_build(&mem, 0, &rsdp), -EINVAL);
	ck_assert_int_eq(acpi_build(&mem, 256, &rsdp), -EINVAL);
	guest_mem_destroy(&mem);

	/* No RAM where the tables go. */
	ck_assert_int_eq(guest_mem_init(&mem, 512 * 1024), 0);
	ck_assert_int_lt(acpi_build(&mem, 1, &rsdp), 0);
	guest_mem_destroy(&mem);
}
END_TEST

static const uint8_t *memfind(const uint8_t *hay, size_t len, const void *needle, size_t n)
{
	for (size_t i = 0; i + n <= len; i++)
		if (!memcmp(hay + i, needle, n))
			return hay + i;
	return NULL;
}

/* Decodes a PkgLength at p; *size gets its encoding's length. */
static size_t pkglength(const uint8_t *p, size_t *size)
{
	size_t follow = p[0] >> 6, len;

	if (!follow) {
		*size = 1;
		return p[0] & 0x3f;
	}
	len = p[0] & 0xf;
	for (size_t i = 0; i < follow; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	*size = 1 + follow;
	return len;
}

START_TEST(dsdt_contents)
{
	static const uint8_t s5[] = {
		0x08, '\\', '_', 'S', '5', '_',     /* Name(\_S5, */
		0x12, 0x08, 0x04,                   /* Package(4) {, PkgLength 8 */
		0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00,
	};
	static const uint8_t pnp0a03[] = { 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };
	static const uint8_t pci0[] = { 0x5b, 0x82 };
	const uint8_t *f, *d, *p, *aml, *end;
	size_t len, n;

	build(2);
	f = find("FACP");
	d = table(u64(f + 140), "DSDT");
	ck_assert_uint_eq(d[8], 2); /* 64-bit AML integers */
	len = u32(d + 4);
	aml = d + 36;
	end = d + len;

	/* \_S5 first, then Scope(\_SB) reaching exactly to the end. */
	ck_assert_mem_eq(aml, s5, sizeof(s5));
	p = aml + sizeof(s5);
	ck_assert_uint_eq(p[0], 0x10);
	ck_assert_uint_eq(pkglength(p + 1, &n), (size_t)(end - (p + 1)));
	ck_assert_uint_eq(n, 2); /* longer than 63 bytes */
	ck_assert_mem_eq(p + 1 + n, "\\_SB_", 5);

	/* Device(PCI0) { _HID, _ADR, _UID, _CRS } and Device(COM1). */
	p = memfind(aml, end - aml, pci0, sizeof(pci0));
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(pkglength(p + 2, &n) + 2, (size_t)(memfind(p + 2, end - p - 2, pci0,
								      2) - p));
	ck_assert_mem_eq(p + 2 + n, "PCI0", 4);
	ck_assert_ptr_nonnull(memfind(aml, end - aml, "COM1", 4));
	ck_assert_ptr_nonnull(memfind(aml, end - aml, "_HID", 4));
	ck_assert_ptr_nonnull(memfind(aml, end - aml, pnp0a03, sizeof(pnp0a03)));
	ck_assert_ptr_nonnull(memfind(aml, end - aml, pnp0501, sizeof(pnp0501)));

	/* The PCI0 _CRS memory window: DWordMemory with min, max, length. */
	p = memfind(aml, end - aml, "\x87\x17\x00\x00", 4);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(u32(p + 10), PCI_MMIO_WINDOW_BASE);
	ck_assert_uint_eq(u32(p + 14), PCI_MMIO_WINDOW_END - 1);
	ck_assert_uint_eq(u32(p + 22), PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE);
	guest_mem_destroy(&mem);
}
END_TEST

/* Decodes the AML integer at *p (ACPI 6.x §20.2.3) and steps past it. */
static uint64_t aml_int(const uint8_t **p)
{
	const uint8_t *q = *p;
	unsigned n;

	switch (q[0]) {
	case 0x00: /* ZeroOp */
	case 0x01: /* OneOp */
		*p = q + 1;
		return q[0];
	case 0x0a: /* BytePrefix */
		n = 1;
		break;
	case 0x0b: /* WordPrefix */
		n = 2;
		break;
	case 0x0c: /* DWordPrefix */
		n = 4;
		break;
	case 0x0e: /* QWordPrefix */
		n = 8;
		break;
	default:
		ck_abort_msg("not an AML integer: 0x%02x", q[0]);
		return 0;
	}
	*p = q + 1 + n;
	return n == 1 ? q[1] : n == 2 ? u16(q + 1) : n == 4 ? u32(q + 1) : u64(q + 1);
}

/*
 * \_SB.PCI0._PRT: for slots 1-31, pins 0-3 (INTA#-INTD#), a package
 * { 0xSSSSFFFF, pin, 0, GSI } with GSI = 16 + (slot + pin) % 4, parsed
 * from the AML bytes.
 */
START_TEST(dsdt_prt)
{
	static const uint8_t pci0[] = { 0x5b, 0x82 };
	static const struct {
		unsigned slot, pin, gsi;
	} spot[] = {
		{ 1, 0, 17 }, { 1, 3, 16 }, { 2, 3, 17 }, { 3, 1, 16 },
		{ 4, 0, 16 }, { 31, 3, 18 }, { 31, 0, 19 },
	};
	const uint8_t *f, *d, *aml, *end, *dev, *dev_end, *p, *pkg_end;
	bool seen[32][4] = { { false } };
	unsigned gsi_of[32][4] = { { 0 } };
	size_t len, n, count;

	build(1);
	f = find("FACP");
	d = table(u64(f + 140), "DSDT");
	aml = d + 36;
	end = d + u32(d + 4);

	/* Inside Device(PCI0) { ... } */
	dev = memfind(aml, end - aml, pci0, sizeof(pci0));
	ck_assert_ptr_nonnull(dev);
	dev_end = dev + 2 + pkglength(dev + 2, &n);
	ck_assert_mem_eq(dev + 2 + n, "PCI0", 4);
	p = memfind(dev, dev_end - dev, "\x08_PRT", 5);
	ck_assert_ptr_nonnull(p);
	p += 5;

	ck_assert_uint_eq(p[0], 0x12); /* PackageOp */
	len = pkglength(p + 1, &n);
	pkg_end = p + 1 + len;
	ck_assert(pkg_end <= dev_end);
	count = p[1 + n];
	ck_assert_uint_eq(count, 31 * 4);
	p += 2 + n;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e_end;
		uint64_t addr, pin, source, gsi;
		unsigned slot;

		ck_assert(p < pkg_end);
		ck_assert_uint_eq(p[0], 0x12);
		e_end = p + 1 + pkglength(p + 1, &n);
		ck_assert_uint_eq(p[1 + n], 4);
		p += 2 + n;
		addr = aml_int(&p);
		pin = aml_int(&p);
		source = aml_int(&p);
		gsi = aml_int(&p);
		ck_assert(p == e_end);

		ck_assert_uint_eq(addr & 0xffff, 0xffff); /* any function */
		slot = addr >> 16;
		ck_assert_uint_ge(slot, 1);
		ck_assert_uint_le(slot, 31);
		ck_assert_uint_le(pin, 3);
		ck_assert(!seen[slot][pin]);
		seen[slot][pin] = true;
		ck_assert_uint_eq(source, 0); /* a GSI, no link device */
		ck_assert_uint_eq(gsi, 16 + (slot + pin) % 4);
		ck_assert_uint_eq(gsi, pci_intx_gsi(slot, pin + 1));
		gsi_of[slot][pin] = gsi;
	}
	ck_assert(p == pkg_end);
	for (size_t i = 0; i < sizeof(spot) / sizeof(spot[0]); i++)
		ck_assert_uint_eq(gsi_of[spot[i].slot][spot[i].pin], spot[i].gsi);
	guest_mem_destroy(&mem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("tables");

	tcase_add_test(tc, rsdp_and_root_tables);
	tcase_add_test(tc, fadt_fields);
	tcase_add_loop_test(tc, madt_cpus, 0, 4);
	tcase_add_test(tc, bad_cpu_counts);
	tcase_add_test(tc, dsdt_contents);
	tcase_add_test(tc, dsdt_prt);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
