// SPDX-License-Identifier: MIT
/*
 * ACPI tables describing minivm's PC to the guest, as firmware would
 * (ACPI specification 6.x, chapter 5):
 *
 *   RSDP -> XSDT (and RSDT) -> FADT -> FACS
 *                                   -> DSDT   (AML: \_S5, PCI0 + _PRT, COM1)
 *                           -> MADT   (LAPICs, IOAPIC, ISA overrides)
 *
 * They live in the BIOS area BOOT_ACPI_ADDR..BOOT_ACPI_END, which e820
 * reserves, with the RSDP first so that a scan of that area finds it.
 *
 * The FADT describes a full (not hardware-reduced) ACPI PC: a hardware-
 * reduced FADT would tell Linux there is no legacy PIC and no ISA IRQs,
 * and the serial port would lose its interrupt. The fixed-hardware
 * registers it points at are devices/acpi_pm.c's.
 *
 * The DSDT is AML, assembled here by a small byte emitter; see the aml_*
 * helpers and ACPI 6.x chapter 20 (AML grammar) and 6.4 (resource data).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "vmm/log.h"

#define ACPI_OEM_ID "MINIVM"
#define ACPI_OEM_TABLE_ID "MINIVM  "
#define ACPI_CREATOR_ID "MNVM"
#define ACPI_MAX_CPUS 255 /* xAPIC IDs 0..254; 255 is the broadcast ID */

/* ------------------------------------------------------------------------
 * Table layouts
 */

struct acpi_rsdp {
	char signature[8];    /* "RSD PTR " */
	uint8_t checksum;     /* of the first 20 bytes (ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;     /* 2: ACPI 2.0+, has the XSDT */
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* of the whole structure */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_ACCESS_BYTE 1
#define ACPI_ACCESS_WORD 2
#define ACPI_ACCESS_DWORD 3

struct acpi_facs {
	char signature[4]; /* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
} __attribute__((packed));

struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved2;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

/* FADT flags */
#define FADT_WBINVD (1u << 0)
#define FADT_PROC_C1 (1u << 2)
#define FADT_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* FADT IA-PC boot architecture flags */
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042 (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)

struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define MADT_PCAT_COMPAT (1u << 0)

enum {
	MADT_LOCAL_APIC = 0,
	MADT_IO_APIC = 1,
	MADT_INT_SRC_OVERRIDE = 2,
	MADT_LOCAL_APIC_NMI = 4,
};

struct madt_local_apic {
	uint8_t type, length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

#define MADT_LAPIC_ENABLED (1u << 0)

struct madt_io_apic {
	uint8_t type, length;
	uint8_t io_apic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct madt_int_src_override {
	uint8_t type, length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

/* MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2 */
#define MPS_POLARITY_HIGH 0x1
#define MPS_TRIGGER_EDGE (0x1 << 2)
#define MPS_TRIGGER_LEVEL (0x3 << 2)

struct madt_local_apic_nmi {
	uint8_t type, length;
	uint8_t processor_uid; /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_header) == 36, "table header");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS");
_Static_assert(offsetof(struct acpi_fadt, sci_int) == 46, "FADT SCI_INT");
_Static_assert(offsetof(struct acpi_fadt, pm1a_evt_blk) == 56, "FADT PM1a_EVT_BLK");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT Flags");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT X_FIRMWARE_CTRL");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "FADT X_PM1a_EVT_BLK");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL_REG");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT");
_Static_assert(sizeof(struct madt_local_apic) == 8, "MADT LAPIC");
_Static_assert(sizeof(struct madt_io_apic) == 12, "MADT IOAPIC");
_Static_assert(sizeof(struct madt_int_src_override) == 10, "MADT ISO");
_Static_assert(sizeof(struct madt_local_apic_nmi) == 6, "MADT LAPIC NMI");

/* ------------------------------------------------------------------------
 * A byte buffer for the variable-sized tables (MADT, DSDT)
 */

#define ACPI_BUF_SIZE 8192

struct acpi_buf {
	uint8_t data[ACPI_BUF_SIZE];
	size_t len;
	bool overflow; /* set by any write that did not fit; checked once */
};

static void buf_put(struct acpi_buf *b, const void *p, size_t n)
{
	if (b->overflow || n > sizeof(b->data) - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void buf_put8(struct acpi_buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void buf_put16(struct acpi_buf *b, uint16_t v)
{
	buf_put8(b, v & 0xff);
	buf_put8(b, v >> 8);
}

static void buf_put32(struct acpi_buf *b, uint32_t v)
{
	buf_put16(b, v & 0xffff);
	buf_put16(b, v >> 16);
}

/* Inserts n bytes at offset at, moving what follows. */
static void buf_insert(struct acpi_buf *b, size_t at, const void *p, size_t n)
{
	if (b->overflow || n > sizeof(b->data) - b->len) {
		b->overflow = true;
		return;
	}
	memmove(b->data + at + n, b->data + at, b->len - at);
	memcpy(b->data + at, p, n);
	b->len += n;
}

/* ------------------------------------------------------------------------
 * AML emitter
 */

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_ROOT_CHAR '\\'
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */

/*
 * A NameString from ASL-like text: "\_SB.PCI0", "_HID", "\_S5". Segments
 * shorter than four characters are padded with '_', as ASL does.
 */
static void aml_name(struct acpi_buf *b, const char *name)
{
	const char *seg[8];
	size_t nseg = 0;

	if (*name == AML_ROOT_CHAR) {
		buf_put8(b, AML_ROOT_CHAR);
		name++;
	}
	while (*name && nseg < ARRAY_SIZE(seg)) {
		seg[nseg++] = name;
		while (*name && *name != '.')
			name++;
		if (*name == '.')
			name++;
	}
	if (nseg == 2) {
		buf_put8(b, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		buf_put8(b, AML_MULTI_NAME_PREFIX);
		buf_put8(b, nseg);
	}
	for (size_t i = 0; i < nseg; i++) {
		size_t n = strcspn(seg[i], ".");

		for (size_t j = 0; j < 4; j++)
			buf_put8(b, j < n ? seg[i][j] : '_');
	}
}

/* The smallest AML encoding of an integer constant. */
static void aml_integer(struct acpi_buf *b, uint64_t v)
{
	if (v == 0) {
		buf_put8(b, AML_ZERO_OP);
	} else if (v == 1) {
		buf_put8(b, AML_ONE_OP);
	} else if (v <= 0xff) {
		buf_put8(b, AML_BYTE_PREFIX);
		buf_put8(b, v);
	} else if (v <= 0xffff) {
		buf_put8(b, AML_WORD_PREFIX);
		buf_put16(b, v);
	} else if (v <= 0xffffffff) {
		buf_put8(b, AML_DWORD_PREFIX);
		buf_put32(b, v);
	} else {
		buf_put8(b, AML_QWORD_PREFIX);
		buf_put32(b, v & 0xffffffff);
		buf_put32(b, v >> 32);
	}
}

/*
 * EISAID("PNP0A03"): three letters of five bits each and four hex digits,
 * as a 32-bit integer stored most significant byte first.
 */
static void aml_eisaid(struct acpi_buf *b, const char *id)
{
	uint16_t vendor = (id[0] - '@') << 10 | (id[1] - '@') << 5 | (id[2] - '@');
	uint16_t product = 0;

	for (int i = 3; i < 7; i++) {
		char c = id[i];

		product = product << 4 | (c <= '9' ? c - '0' : c - 'A' + 10);
	}
	buf_put8(b, AML_DWORD_PREFIX);
	buf_put8(b, vendor >> 8);
	buf_put8(b, vendor & 0xff);
	buf_put8(b, product >> 8);
	buf_put8(b, product & 0xff);
}

/*
 * PkgLength: the length of a package, counting its own encoding, in 1 to 4
 * bytes. One byte holds up to 63; otherwise the first byte's bits 7:6 tell
 * how many bytes follow, its bits 3:0 are the low nibble and each following
 * byte the next eight bits.
 */
static size_t aml_pkglength(uint8_t out[4], size_t content)
{
	size_t n, total;

	if (content + 1 < 0x40) {
		out[0] = content + 1;
		return 1;
	}
	for (n = 2; n < 4 && content + n >= 1u << (4 + 8 * (n - 1)); n++)
		;
	total = content + n;
	out[0] = (n - 1) << 6 | (total & 0xf);
	for (size_t i = 1; i < n; i++)
		out[i] = total >> (4 + 8 * (i - 1));
	return n;
}

/*
 * Packages are written open-ended: aml_pkg_begin() remembers where the
 * contents start, aml_pkg_end() inserts the PkgLength there once their
 * size is known.
 */
static size_t aml_pkg_begin(struct acpi_buf *b)
{
	return b->len;
}

static void aml_pkg_end(struct acpi_buf *b, size_t start)
{
	uint8_t len[4];
	size_t n;

	if (b->overflow)
		return;
	n = aml_pkglength(len, b->len - start);
	buf_insert(b, start, len, n);
}

/* Name(name, <the object written next>) */
static void aml_name_decl(struct acpi_buf *b, const char *name)
{
	buf_put8(b, AML_NAME_OP);
	aml_name(b, name);
}

/* Scope(name) { ... }; returns the start for aml_pkg_end(). */
static size_t aml_scope_begin(struct acpi_buf *b, const char *name)
{
	size_t start;

	buf_put8(b, AML_SCOPE_OP);
	start = aml_pkg_begin(b);
	aml_name(b, name);
	return start;
}

/* Device(name) { ... } */
static size_t aml_device_begin(struct acpi_buf *b, const char *name)
{
	size_t start;

	buf_put8(b, AML_EXT_OP_PREFIX);
	buf_put8(b, AML_DEVICE_OP);
	start = aml_pkg_begin(b);
	aml_name(b, name);
	return start;
}

/* Package(count) { ... } with count elements written next. */
static size_t aml_package_begin(struct acpi_buf *b, uint8_t count)
{
	size_t start;

	buf_put8(b, AML_PACKAGE_OP);
	start = aml_pkg_begin(b);
	buf_put8(b, count);
	return start;
}

/* Buffer() { bytes }: a ResourceTemplate is one of these. */
static void aml_buffer(struct acpi_buf *b, const struct acpi_buf *bytes)
{
	size_t start;

	buf_put8(b, AML_BUFFER_OP);
	start = aml_pkg_begin(b);
	aml_integer(b, bytes->len);
	buf_put(b, bytes->data, bytes->len);
	aml_pkg_end(b, start);
}

/* ------------------------------------------------------------------------
 * Resource descriptors for _CRS (ACPI 6.x section 6.4)
 */

#define RES_IO_PORT 0x47          /* small item 0x08, 7 bytes */
#define RES_IRQ_NO_FLAGS 0x22     /* small item 0x04, 2 bytes */
#define RES_END_TAG 0x79          /* small item 0x0f, 1 byte */
#define RES_DWORD_ADDRESS 0x87    /* large items */
#define RES_WORD_ADDRESS 0x88

#define RES_TYPE_MEMORY 0
#define RES_TYPE_IO 1
#define RES_TYPE_BUS 2

/* General flags: a bridge producing a fixed, positively decoded range */
#define RES_MIN_FIXED (1 << 2)
#define RES_MAX_FIXED (1 << 3)
#define RES_PRODUCER_FIXED (RES_MIN_FIXED | RES_MAX_FIXED)

#define RES_IO_ENTIRE_RANGE 0x3     /* WordIO type flags: ISA and non-ISA */
#define RES_MEM_READ_WRITE 0x1      /* DWordMemory: non-cacheable, RW */

/* IO(Decode16, min, min, 1, len) */
static void res_io(struct acpi_buf *b, uint16_t min, uint8_t len)
{
	buf_put8(b, RES_IO_PORT);
	buf_put8(b, 1); /* decodes 16 bits */
	buf_put16(b, min);
	buf_put16(b, min);
	buf_put8(b, 1); /* alignment */
	buf_put8(b, len);
}

/* IRQNoFlags() { irq }: edge-triggered, active high */
static void res_irq(struct acpi_buf *b, unsigned irq)
{
	buf_put8(b, RES_IRQ_NO_FLAGS);
	buf_put16(b, 1u << irq);
}

/* WordBusNumber / WordIO: [min, max], no translation */
static void res_word_range(struct acpi_buf *b, uint8_t type, uint8_t type_flags,
			   uint16_t min, uint16_t max)
{
	buf_put8(b, RES_WORD_ADDRESS);
	buf_put16(b, 13); /* length of what follows */
	buf_put8(b, type);
	buf_put8(b, RES_PRODUCER_FIXED);
	buf_put8(b, type_flags);
	buf_put16(b, 0); /* granularity */
	buf_put16(b, min);
	buf_put16(b, max);
	buf_put16(b, 0); /* translation offset */
	buf_put16(b, max - min + 1);
}

/* DWordMemory: [min, max], no translation */
static void res_dword_memory(struct acpi_buf *b, uint32_t min, uint32_t max)
{
	buf_put8(b, RES_DWORD_ADDRESS);
	buf_put16(b, 23);
	buf_put8(b, RES_TYPE_MEMORY);
	buf_put8(b, RES_PRODUCER_FIXED);
	buf_put8(b, RES_MEM_READ_WRITE);
	buf_put32(b, 0);
	buf_put32(b, min);
	buf_put32(b, max);
	buf_put32(b, 0);
	buf_put32(b, max - min + 1);
}

static void res_end(struct acpi_buf *b)
{
	buf_put8(b, RES_END_TAG);
	buf_put8(b, 0); /* checksum 0: "the template is correct" */
}

/* ------------------------------------------------------------------------
 * The DSDT's contents
 */

/* Name(\_S5, Package() { SLP_TYPa, SLP_TYPb, 0, 0 }) */
static void dsdt_s5(struct acpi_buf *b)
{
	size_t pkg;

	aml_name_decl(b, "\\_S5");
	pkg = aml_package_begin(b, 4);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_pkg_end(b, pkg);
}

/*
 * Name(_PRT, Package() { Package() { 0xSSSSFFFF, pin, 0, gsi }, ... }): the
 * INTA#-INTD# (pin 0-3) of every slot but the host bridge's, wired straight
 * to a GSI: Source 0 means no link device, and Source Index is the GSI
 * (ACPI 6.x §6.2.13). The guest then takes the GSI as level-triggered,
 * active-low; devices/pci.c explains why the VMM still asserts with 1.
 * pci_intx_gsi() is the swizzle the host bridge itself uses.
 */
static void dsdt_prt(struct acpi_buf *b)
{
	size_t prt;

	aml_name_decl(b, "_PRT");
	prt = aml_package_begin(b, (PCI_MAX_SLOTS - 1) * 4);
	for (unsigned slot = 1; slot < PCI_MAX_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			size_t entry = aml_package_begin(b, 4);

			aml_integer(b, (uint64_t)slot << 16 | 0xffff); /* any function */
			aml_integer(b, pin);
			aml_integer(b, 0);
			aml_integer(b, pci_intx_gsi(slot, pin + PCI_INTX_PIN_A));
			aml_pkg_end(b, entry);
		}
	}
	aml_pkg_end(b, prt);
}

/* The host bridge: bus numbers, config ports, I/O and memory windows. */
static void dsdt_pci0(struct acpi_buf *b)
{
	struct acpi_buf crs = { .len = 0 };
	size_t dev;

	res_word_range(&crs, RES_TYPE_BUS, 0, 0x00, 0xff);
	res_io(&crs, PCI_CONFIG_ADDRESS, 8);
	res_word_range(&crs, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, 0x0000, 0x0cf7);
	res_word_range(&crs, RES_TYPE_IO, RES_IO_ENTIRE_RANGE, 0x0d00, 0xffff);
	res_dword_memory(&crs, PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END - 1);
	res_end(&crs);

	dev = aml_device_begin(b, "PCI0");
	aml_name_decl(b, "_HID");
	aml_eisaid(b, "PNP0A03");
	aml_name_decl(b, "_ADR");
	aml_integer(b, 0);
	aml_name_decl(b, "_UID");
	aml_integer(b, 0);
	aml_name_decl(b, "_CRS");
	aml_buffer(b, &crs);
	dsdt_prt(b);
	aml_pkg_end(b, dev);
	b->overflow |= crs.overflow;
}

/* The first 16550 UART, so that Linux's PNP layer knows its port and IRQ. */
static void dsdt_com1(struct acpi_buf *b)
{
	struct acpi_buf crs = { .len = 0 };
	size_t dev;

	res_io(&crs, 0x3f8, 8);
	res_irq(&crs, 4);
	res_end(&crs);

	dev = aml_device_begin(b, "COM1");
	aml_name_decl(b, "_HID");
	aml_eisaid(b, "PNP0501");
	aml_name_decl(b, "_UID");
	aml_integer(b, 1);
	aml_name_decl(b, "_CRS");
	aml_buffer(b, &crs);
	aml_pkg_end(b, dev);
	b->overflow |= crs.overflow;
}

static void dsdt_build(struct acpi_buf *b)
{
	size_t sb;

	dsdt_s5(b);
	sb = aml_scope_begin(b, "\\_SB");
	dsdt_pci0(b);
	dsdt_com1(b);
	aml_pkg_end(b, sb);
}

/* ------------------------------------------------------------------------
 * Building and placing the tables
 */

static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return -sum;
}

static void acpi_header_init(struct acpi_header *h, const char *sig, uint32_t len,
			     uint8_t revision)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = 1;
}

/* Hands out the space BOOT_ACPI_ADDR..BOOT_ACPI_END. */
struct acpi_space {
	struct guest_mem *mem;
	uint64_t next;
};

static int acpi_alloc(struct acpi_space *s, uint64_t size, uint64_t align, uint64_t *addr)
{
	uint64_t a = ALIGN_UP(s->next, align);

	if (a > BOOT_ACPI_END || size > BOOT_ACPI_END - a)
		return -ENOSPC;
	s->next = a + size;
	*addr = a;
	return 0;
}

/* Sets the checksum of a table with a standard header and writes it. */
static int acpi_put_table(struct acpi_space *s, void *table, uint64_t *addr)
{
	struct acpi_header *h = table;
	int ret;

	ret = acpi_alloc(s, h->length, 16, addr);
	if (ret)
		return ret;
	h->checksum = 0;
	h->checksum = acpi_checksum(table, h->length);
	return guest_write(s->mem, *addr, table, h->length);
}

static struct acpi_gas gas_io(uint16_t port, uint8_t len, uint8_t access)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = len * 8,
		.bit_offset = 0,
		.access_size = access,
		.address = port,
	};
}

static void fadt_build(struct acpi_fadt *f, uint64_t facs, uint64_t dsdt)
{
	memset(f, 0, sizeof(*f));
	acpi_header_init(&f->header, "FACP", sizeof(*f), 6);
	f->minor_version = 0;
	/*
	 * The FACS is below 4 GiB, so only FIRMWARE_CTRL points at it: the
	 * spec wants X_FIRMWARE_CTRL zero then (with both, Linux lists the
	 * FACS twice). Both DSDT fields may be set; X_DSDT wins.
	 */
	f->firmware_ctrl = facs;
	f->x_firmware_ctrl = 0;
	f->dsdt = dsdt;
	f->x_dsdt = dsdt;

	/* SMI_CMD 0: there is no legacy mode, ACPI is always enabled. */
	f->sci_int = ACPI_SCI_IRQ;
	f->smi_cmd = 0;

	f->pm1a_evt_blk = ACPI_PM1A_EVT_BLK;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->x_pm1a_evt_blk = gas_io(ACPI_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN, ACPI_ACCESS_WORD);
	f->pm1a_cnt_blk = ACPI_PM1A_CNT_BLK;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f->x_pm1a_cnt_blk = gas_io(ACPI_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN, ACPI_ACCESS_WORD);
	f->pm_tmr_blk = ACPI_PM_TMR_BLK;
	f->pm_tmr_len = ACPI_PM_TMR_LEN;
	f->x_pm_tmr_blk = gas_io(ACPI_PM_TMR_BLK, ACPI_PM_TMR_LEN, ACPI_ACCESS_DWORD);

	/* No C2/C3: latencies above 100 and 1000 us say "not supported". */
	f->p_lvl2_lat = 101;
	f->p_lvl3_lat = 1001;

	f->iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_8042 | IAPC_VGA_NOT_PRESENT;
	f->flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	f->reset_reg = gas_io(ACPI_RESET_PORT, 1, ACPI_ACCESS_BYTE);
	f->reset_value = ACPI_RESET_VALUE;
}

static int madt_build(struct acpi_buf *b, unsigned ncpus)
{
	struct acpi_madt madt;
	struct madt_io_apic ioapic = {
		.type = MADT_IO_APIC, .length = sizeof(ioapic),
		.io_apic_id = ncpus, /* after the LAPIC IDs 0..ncpus-1 */
		.address = IOAPIC_ADDR, .gsi_base = 0,
	};
	struct madt_int_src_override timer = {
		.type = MADT_INT_SRC_OVERRIDE, .length = sizeof(timer),
		.bus = 0, .source = 0, .gsi = 2,
		.flags = MPS_POLARITY_HIGH | MPS_TRIGGER_EDGE,
	};
	struct madt_int_src_override sci = {
		.type = MADT_INT_SRC_OVERRIDE, .length = sizeof(sci),
		.bus = 0, .source = ACPI_SCI_IRQ, .gsi = ACPI_SCI_IRQ,
		.flags = MPS_POLARITY_HIGH | MPS_TRIGGER_LEVEL,
	};
	struct madt_local_apic_nmi nmi = {
		.type = MADT_LOCAL_APIC_NMI, .length = sizeof(nmi),
		.processor_uid = 0xff, .flags = 0, .lint = 1,
	};

	memset(&madt, 0, sizeof(madt));
	madt.lapic_address = LAPIC_ADDR;
	madt.flags = MADT_PCAT_COMPAT;
	buf_put(b, &madt, sizeof(madt)); /* the header is completed below */

	for (unsigned i = 0; i < ncpus; i++) {
		struct madt_local_apic lapic = {
			.type = MADT_LOCAL_APIC, .length = sizeof(lapic),
			.processor_uid = i, .apic_id = i,
			.flags = MADT_LAPIC_ENABLED,
		};

		buf_put(b, &lapic, sizeof(lapic));
	}
	buf_put(b, &ioapic, sizeof(ioapic));
	buf_put(b, &timer, sizeof(timer));
	buf_put(b, &sci, sizeof(sci));
	buf_put(b, &nmi, sizeof(nmi));
	if (b->overflow)
		return -ENOSPC;

	acpi_header_init((struct acpi_header *)b->data, "APIC", b->len, 5);
	return 0;
}

static int dsdt_table(struct acpi_buf *b)
{
	struct acpi_header h;

	memset(&h, 0, sizeof(h));
	buf_put(b, &h, sizeof(h));
	dsdt_build(b);
	if (b->overflow)
		return -ENOSPC;
	/* Revision 2: integers in the AML are 64 bits wide. */
	acpi_header_init((struct acpi_header *)b->data, "DSDT", b->len, 2);
	return 0;
}

/* XSDT (64-bit entries) or RSDT (32-bit entries) listing the tables. */
static int sdt_put(struct acpi_space *s, const char *sig, size_t entry_size,
		   const uint64_t *tables, size_t n, uint64_t *addr)
{
	struct {
		struct acpi_header h;
		uint8_t entries[8 * 4];
	} __attribute__((packed)) t;

	if (n * entry_size > sizeof(t.entries))
		return -ENOSPC;
	memset(&t, 0, sizeof(t));
	acpi_header_init(&t.h, sig, sizeof(t.h) + n * entry_size, 1);
	for (size_t i = 0; i < n; i++)
		memcpy(t.entries + i * entry_size, &tables[i], entry_size); /* LE */
	return acpi_put_table(s, &t, addr);
}

int acpi_build(struct guest_mem *mem, unsigned ncpus, uint64_t *rsdp_addr)
{
	struct acpi_space s = { .mem = mem, .next = BOOT_ACPI_ADDR };
	struct acpi_buf *buf;
	struct acpi_rsdp rsdp;
	struct acpi_facs facs;
	struct acpi_fadt fadt;
	uint64_t rsdp_at, facs_at, dsdt_at, tables[2], xsdt_at, rsdt_at;
	void *area;
	int ret;

	if (ncpus == 0 || ncpus > ACPI_MAX_CPUS)
		return -EINVAL;
	area = guest_ptr(mem, BOOT_ACPI_ADDR, BOOT_ACPI_END - BOOT_ACPI_ADDR);
	if (!area)
		return -EFAULT;
	memset(area, 0, BOOT_ACPI_END - BOOT_ACPI_ADDR);

	/* The RSDP first, on a 16-byte boundary, then the FACS 64-aligned. */
	ret = acpi_alloc(&s, sizeof(rsdp), 16, &rsdp_at);
	if (!ret)
		ret = acpi_alloc(&s, sizeof(facs), 64, &facs_at);
	if (ret)
		return ret;
	memset(&facs, 0, sizeof(facs));
	memcpy(facs.signature, "FACS", 4);
	facs.length = sizeof(facs);
	facs.version = 2;
	ret = guest_write(mem, facs_at, &facs, sizeof(facs));
	if (ret)
		return ret;

	/* Big enough for 255 LAPICs; kept off the stack. */
	buf = calloc(1, sizeof(*buf));
	if (!buf)
		return -ENOMEM;

	ret = dsdt_table(buf);
	if (!ret)
		ret = acpi_put_table(&s, buf->data, &dsdt_at);
	if (ret)
		goto out;

	fadt_build(&fadt, facs_at, dsdt_at);
	ret = acpi_put_table(&s, &fadt, &tables[0]);
	if (ret)
		goto out;

	memset(buf, 0, sizeof(*buf));
	ret = madt_build(buf, ncpus);
	if (!ret)
		ret = acpi_put_table(&s, buf->data, &tables[1]);
	if (ret)
		goto out;

	ret = sdt_put(&s, "XSDT", 8, tables, ARRAY_SIZE(tables), &xsdt_at);
	if (!ret)
		ret = sdt_put(&s, "RSDT", 4, tables, ARRAY_SIZE(tables), &rsdt_at);
	if (ret)
		goto out;

	memset(&rsdp, 0, sizeof(rsdp));
	memcpy(rsdp.signature, "RSD PTR ", 8);
	memcpy(rsdp.oem_id, ACPI_OEM_ID, sizeof(rsdp.oem_id));
	rsdp.revision = 2;
	rsdp.rsdt_address = rsdt_at;
	rsdp.length = sizeof(rsdp);
	rsdp.xsdt_address = xsdt_at;
	rsdp.checksum = acpi_checksum(&rsdp, offsetof(struct acpi_rsdp, length));
	rsdp.extended_checksum = acpi_checksum(&rsdp, sizeof(rsdp));
	ret = guest_write(mem, rsdp_at, &rsdp, sizeof(rsdp));
	if (!ret)
		*rsdp_addr = rsdp_at;
out:
	free(buf);
	return ret;
}
