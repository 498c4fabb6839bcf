// SPDX-License-Identifier: MIT
/*
 * The x86 PC platform behind vmm/arch.h.
 *
 * KVM itself models the parts of a PC that are on the hot path: the local
 * APICs, the IOAPIC and the two 8259 PICs (KVM_CREATE_IRQCHIP) and the 8254
 * timer (KVM_CREATE_PIT2). minivm adds, in userspace, what a Linux guest
 * still needs: a 16550A UART, the CMOS RTC, an i8042 for reset, the ACPI
 * power-management registers and the PCI host bridge.
 *
 * Each vCPU gets its CPUID from KVM_GET_SUPPORTED_CPUID, with its own APIC ID
 * and a topology of one socket with one core per vCPU, and the hypervisor
 * bit that tells Linux to look for KVM's paravirtual clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "boot/bare.h"
#include "boot/boot.h"
#include "boot/layout.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/serial8250.h"
#include "vmm/arch.h"
#include "vmm/console.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define CPUID_MAX_ENTRIES 256
#define KVM_PIT_SPEAKER_DUMMY_FLAG 1 /* KVM_PIT_SPEAKER_DUMMY */

struct pc {
	struct serial8250 com1;
	struct rtc rtc;
	struct i8042 kbd;
	struct acpi_pm pm;
	struct pci_host pci;
	struct kvm_cpuid2 *cpuid; /* what KVM supports; each vCPU gets a copy */
	struct boot_state boot;
	bool devices_up;
};

static struct irq_line pc_irq(struct vm *vm, unsigned gsi)
{
	return (struct irq_line){ .set = kvm_irq_line, .ctx = vm, .gsi = gsi };
}

static int pc_create_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY_FLAG };

	/* Intel VMX needs these two pages for real-mode emulation; harmless on AMD. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, BOOT_TSS_ADDR) < 0) {
		pr_err("KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	uint64_t identity = BOOT_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) {
		pr_err("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

#define PC_NR_GSIS 24 /* the IOAPIC's pins */

/*
 * Interrupt routing as on a PC with an IOAPIC: ISA IRQ n reaches 8259 pin n
 * and IOAPIC pin n, except the timer, which firmware wires to IOAPIC pin 2
 * (the MADT's IRQ0 -> GSI 2 override says so). KVM's default table routes
 * GSI 0 to IOAPIC pin 0, so the in-kernel PIT's interrupts would be lost
 * on the IOAPIC path. GSI 2 itself (the 8259 cascade) goes nowhere.
 */
static int pc_set_irq_routing(struct vm *vm)
{
	int ret = 0;

	for (unsigned gsi = 0; gsi < PC_NR_GSIS && !ret; gsi++) {
		if (gsi == 2)
			continue;
		if (gsi < 16)
			ret = vm_route_irqchip(vm, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
							       : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
		if (!ret)
			ret = vm_route_irqchip(vm, gsi, KVM_IRQCHIP_IOAPIC, gsi == 0 ? 2 : gsi);
	}
	return ret ? ret : vm_route_commit(vm);
}

static int pc_get_cpuid(struct vm *vm, struct pc *pc)
{
	size_t sz = sizeof(*pc->cpuid) + CPUID_MAX_ENTRIES * sizeof(pc->cpuid->entries[0]);

	pc->cpuid = calloc(1, sz);
	if (!pc->cpuid)
		return -ENOMEM;
	pc->cpuid->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, pc->cpuid) < 0) {
		pr_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int pc_register_devices(struct vm *vm, struct pc *pc)
{
	struct event_sink ev = vm_event_sink(vm);
	int ret;

	serial8250_init(&pc->com1, pc_irq(vm, SERIAL_COM1_IRQ),
			(struct serial_out){ .write = console_write, .ctx = vm->console });
	rtc_init(&pc->rtc, pc_irq(vm, RTC_IRQ));
	i8042_init(&pc->kbd, ev, pc_irq(vm, 1), pc_irq(vm, 12));
	acpi_pm_init(&pc->pm, ev, pc_irq(vm, ACPI_SCI_IRQ));
	pci_host_init(&pc->pci);
	pci_host_set_mmio(&pc->pci, &vm->mmio);
	pci_host_set_irq(&pc->pci, kvm_irq_line, vm);
	pc->devices_up = true;

	if (vm->cfg->serial != SERIAL_NONE) {
		ret = serial8250_register(&pc->com1, &vm->pio, SERIAL_COM1_BASE);
		if (ret)
			return ret;
	}
	ret = rtc_register(&pc->rtc, &vm->pio);
	if (!ret)
		ret = i8042_register(&pc->kbd, &vm->pio);
	if (!ret)
		ret = acpi_pm_register(&pc->pm, &vm->pio);
	if (!ret)
		ret = pci_host_register(&pc->pci, &vm->pio);
	if (ret)
		pr_err("cannot register the platform devices: %s", strerror(-ret));
	return ret;
}

int arch_vm_init(struct vm *vm)
{
	struct pc *pc = calloc(1, sizeof(*pc));
	int ret;

	if (!pc)
		return -ENOMEM;
	vm->arch = pc;
	ret = pc_create_irqchip(vm);
	if (ret)
		return ret;
	ret = pc_set_irq_routing(vm);
	if (ret)
		return ret;
	ret = pc_get_cpuid(vm, pc);
	if (ret)
		return ret;
	return pc_register_devices(vm, pc);
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static unsigned order_base_2(unsigned n)
{
	unsigned o = 0;

	while ((1u << o) < n)
		o++;
	return o;
}

/*
 * The topology: one package, one core per vCPU, one thread per core, APIC ID
 * = vCPU index. Leaves 1, 4, 0xB and 0x1F (Intel) and 0x80000008 (AMD) tell
 * it; Linux reads whichever its vendor uses.
 */
static void cpuid_set_topology(struct kvm_cpuid2 *c, unsigned id, unsigned n)
{
	unsigned shift = order_base_2(n);
	struct kvm_cpuid_entry2 *e;

	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0xffff) | (id << 24) | ((1u << shift) << 16);
			if (n > 1)
				e->edx |= 1u << 28; /* HTT: the package has several logical CPUs */
			break;
		case 4:
			e->eax = (e->eax & 0x3ff) | (((1u << shift) - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8; /* level 0: SMT */
			} else if (e->index == 1) {
				e->eax = shift;
				e->ebx = n;
				e->ecx = (2u << 8) | 1; /* level 1: core */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000001:
			if (n > 1)
				e->ecx |= 1u << 1; /* CmpLegacy */
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xf0ffu) | (shift << 12) | (n - 1);
			break;
		case 0x8000001e:
			e->eax = id;
			e->ebx = id & 0xff; /* compute unit id, one thread per unit */
			e->ecx = 0;
			break;
		default:
			break;
		}
	}
}

static int vcpu_set_cpuid(struct vcpu *vcpu, struct pc *pc)
{
	struct vm *vm = vcpu->vm;
	size_t sz = sizeof(*pc->cpuid) + pc->cpuid->nent * sizeof(pc->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	struct kvm_cpuid_entry2 *e;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, pc->cpuid, sz);
	cpuid_set_topology(c, vcpu->id, vm->nr_vcpus);
	e = cpuid_find(c, 1, 0);
	if (e) {
		e->ecx |= 1u << 31; /* hypervisor: use kvm-clock, skip PIT calibration */
		if (vm->caps.tsc_deadline)
			e->ecx |= 1u << 24;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
		pr_err("vCPU %u: KVM_SET_CPUID2: %s", vcpu->id, strerror(errno));
		ret = -errno;
	}
	free(c);
	return ret;
}

/*
 * Without XCR0 set, the guest finds CPUID promising AVX state that XSAVE does
 * not hold, warns of an "XSAVE consistency problem" and disables XSAVE.
 */
static int vcpu_set_xcr0(struct vcpu *vcpu, struct pc *pc)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(pc->cpuid, 0xd, 0);
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };

	if (!vcpu->vm->caps.xcrs || !e)
		return 0;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = ((uint64_t)e->edx << 32 | e->eax) & 0x207;
	xcrs.xcrs[0].value |= 1; /* x87 state is architecturally always on */
	if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) < 0) {
		pr_err("vCPU %u: KVM_SET_XCRS: %s", vcpu->id, strerror(errno));
		return -errno;
	}
	return 0;
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_EXTINT 0x700
#define APIC_MODE_NMI 0x400

/*
 * As a PC's firmware does: LINT0 takes the 8259's ExtINT, LINT1 takes NMIs.
 * KVM leaves both masked on the secondary CPUs.
 */
static int vcpu_set_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0) {
		pr_err("vCPU %u: KVM_GET_LAPIC: %s", vcpu->id, strerror(errno));
		return -errno;
	}
	*lvt0 = (*lvt0 & ~0x1ffffu) | APIC_MODE_EXTINT;
	*lvt1 = (*lvt1 & ~0x1ffffu) | APIC_MODE_NMI;
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0) {
		pr_err("vCPU %u: KVM_SET_LAPIC: %s", vcpu->id, strerror(errno));
		return -errno;
	}
	return 0;
}

int arch_vcpu_init(struct vcpu *vcpu)
{
	struct pc *pc = vcpu->vm->arch;
	int ret;

	ret = vcpu_set_cpuid(vcpu, pc);
	if (!ret)
		ret = vcpu_set_xcr0(vcpu, pc);
	if (!ret)
		ret = vcpu_set_lapic(vcpu);
	return ret;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .s = 1, .g = 1, .l = code, .db = !code,
	};
}

/* The state Linux's 64-bit boot protocol asks for (Documentation/arch/x86/boot.rst). */
static int bsp_enter_long_mode(struct vcpu *vcpu, const struct boot_state *bs)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	seg_flat(&sregs.cs, bs->code_sel, 0xb, true);
	seg_flat(&sregs.ds, bs->data_sel, 0x3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = bs->gdt_base;
	sregs.gdt.limit = bs->gdt_limit;
	sregs.cr3 = bs->cr3;
	sregs.cr4 = 0x20;          /* PAE */
	sregs.cr0 = 0x80000011;    /* PG | ET | PE */
	sregs.efer = 0x500;        /* LMA | LME */
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	regs.rip = bs->entry;
	regs.rsi = bs->boot_params;
	regs.rflags = 0x2;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/*
 * A bare-metal guest starts as a PC starts after its BIOS: 16-bit real mode,
 * at the CS:IP the loader chose, every other segment 0, interrupts off.
 * KVM's vCPU reset state is real mode already (CS f000, IP fff0); only CS
 * and IP change.
 */
static int bsp_enter_real_mode(struct vcpu *vcpu, const struct bare_state *bs)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = bs->ip, .rflags = 0x2 };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs.selector = bs->cs;
	sregs.cs.base = (uint64_t)bs->cs << 4;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static int pc_load_bare(struct vm *vm)
{
	struct bare_state bs;
	int ret;

	ret = bare_boot_load(&vm->mem, vm->cfg->kernel, vm->cfg->kernel_format,
			     vm->nr_vcpus, &bs);
	if (ret)
		return ret;
	ret = bsp_enter_real_mode(&vm->vcpus[0], &bs);
	if (ret)
		pr_err("cannot set the boot vCPU's registers: %s", strerror(-ret));
	return ret;
}

int arch_kernel_probe(const char *path, enum kernel_format *fmt)
{
	if (*fmt != KERNEL_AUTO)
		return 0;
	return bare_probe_file(path, fmt);
}

int arch_load_kernel(struct vm *vm)
{
	struct pc *pc = vm->arch;
	struct boot_config bc = {
		.kernel = vm->cfg->kernel,
		.initrd = vm->cfg->initrd,
		.cmdline = vm->cfg->append,
		.ncpus = vm->nr_vcpus,
	};
	int ret;

	if (vm->cfg->kernel_format == KERNEL_ELF || vm->cfg->kernel_format == KERNEL_FLAT)
		return pc_load_bare(vm);
	ret = linux_boot_load(&vm->mem, &bc, &pc->boot);
	if (ret)
		return ret;
	ret = bsp_enter_long_mode(&vm->vcpus[0], &pc->boot);
	if (ret)
		pr_err("cannot set the boot vCPU's registers: %s", strerror(-ret));
	return ret;
}

static size_t pc_console_input(void *ctx, const uint8_t *buf, size_t len)
{
	return serial8250_receive(ctx, buf, len);
}

void arch_console_attach(struct vm *vm)
{
	struct pc *pc = vm->arch;

	if (!vm->console || vm->cfg->serial != SERIAL_STDIO)
		return;
	serial8250_set_rx_notify(&pc->com1, console_kick, vm->console);
	console_attach(vm->console, pc_console_input, &pc->com1);
}

struct pci_host *arch_pci_host(struct vm *vm)
{
	return &((struct pc *)vm->arch)->pci;
}

unsigned arch_first_msi_gsi(void)
{
	return PC_NR_GSIS;
}

void arch_vm_destroy(struct vm *vm)
{
	struct pc *pc = vm->arch;

	if (!pc)
		return;
	if (pc->devices_up) {
		serial8250_destroy(&pc->com1);
		rtc_destroy(&pc->rtc);
		i8042_destroy(&pc->kbd);
		acpi_pm_destroy(&pc->pm);
		pci_host_destroy(&pc->pci);
	}
	free(pc->cpuid);
	free(pc);
	vm->arch = NULL;
}

int arch_vcpu_regs(struct vcpu *vcpu, struct arch_reg *regs, unsigned max)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	const struct arch_reg all[] = {
		{ "rip", r.rip }, { "rflags", r.rflags },
		{ "rax", r.rax }, { "rbx", r.rbx }, { "rcx", r.rcx }, { "rdx", r.rdx },
		{ "rsi", r.rsi }, { "rdi", r.rdi }, { "rbp", r.rbp }, { "rsp", r.rsp },
		{ "r8", r.r8 }, { "r9", r.r9 }, { "r10", r.r10 }, { "r11", r.r11 },
		{ "r12", r.r12 }, { "r13", r.r13 }, { "r14", r.r14 }, { "r15", r.r15 },
		{ "cs", s.cs.selector }, { "ds", s.ds.selector }, { "es", s.es.selector },
		{ "fs", s.fs.selector }, { "gs", s.gs.selector }, { "ss", s.ss.selector },
		{ "fs_base", s.fs.base }, { "gs_base", s.gs.base },
		{ "gdt_base", s.gdt.base }, { "idt_base", s.idt.base },
		{ "cr0", s.cr0 }, { "cr2", s.cr2 }, { "cr3", s.cr3 }, { "cr4", s.cr4 },
		{ "cr8", s.cr8 }, { "efer", s.efer }, { "apic_base", s.apic_base },
	};
	unsigned n = MIN(max, ARRAY_SIZE(all));

	memcpy(regs, all, n * sizeof(all[0]));
	return n;
}

void arch_power_button(struct vm *vm)
{
	struct pc *pc = vm->arch;

	if (pc && pc->devices_up)
		acpi_pm_power_button(&pc->pm);
}

void arch_dump_vcpu(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		pr_err("vCPU %u: cannot read registers: %s", vcpu->id, strerror(errno));
		return;
	}
	pr_err("  rip %016llx rsp %016llx rflags %08llx", r.rip, r.rsp, r.rflags);
	pr_err("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", r.rax, r.rbx, r.rcx, r.rdx);
	pr_err("  rsi %016llx rdi %016llx rbp %016llx", r.rsi, r.rdi, r.rbp);
	pr_err("  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx",
	       s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	pr_err("  cs %04x base %llx l %u db %u  ss %04x", s.cs.selector, s.cs.base,
	       s.cs.l, s.cs.db, s.ss.selector);
}
