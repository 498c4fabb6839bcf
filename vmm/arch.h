/* SPDX-License-Identifier: MIT */
/*
 * Everything architecture-specific sits behind these few calls: the
 * platform's interrupt controllers and timers, its devices, CPU identity,
 * how a kernel is loaded and entered, and how registers are shown. vm.c and
 * vcpu.c stay free of x86; an arm64 port implements this file again.
 */
#ifndef MINIVM_ARCH_H
#define MINIVM_ARCH_H

#include "vmm/cli.h" /* enum kernel_format */

struct pci_host;
struct vm;
struct vcpu;

/* After KVM_CREATE_VM, before any vCPU: irqchip, timers, platform devices. */
int arch_vm_init(struct vm *vm);
/* Per vCPU, after KVM_CREATE_VCPU: CPUID, interrupt controller setup. */
int arch_vcpu_init(struct vcpu *vcpu);
/*
 * What -kernel holds when -kernel-format did not say (*fmt == KERNEL_AUTO):
 * this platform's Linux image, an ELF file, or a flat binary. Prints and
 * returns -errno when the file cannot be read.
 */
int arch_kernel_probe(const char *path, enum kernel_format *fmt);
/* Loads the kernel and firmware tables, and sets the boot vCPU's registers. */
int arch_load_kernel(struct vm *vm);
/* Connects the console to the platform's serial port (and back). */
void arch_console_attach(struct vm *vm);
void arch_vm_destroy(struct vm *vm);
/* The PCI host bridge that virtio devices plug into. */
struct pci_host *arch_pci_host(struct vm *vm);
/* GSIs below this are the interrupt controller's pins. */
unsigned arch_first_msi_gsi(void);
/*
 * A vCPU's registers as name/value pairs, for the monitor; the first is the
 * program counter. The vCPU must not be in KVM_RUN (pause it first).
 * Returns the number filled in, or -errno.
 */
struct arch_reg {
	const char *name;
	unsigned long long value;
};
#define ARCH_MAX_REGS 40
int arch_vcpu_regs(struct vcpu *vcpu, struct arch_reg *regs, unsigned max);
/* Presses the power button (ACPI on a PC): the guest's request to shut down. */
void arch_power_button(struct vm *vm);
/* Prints a vCPU's registers, for fatal errors. */
void arch_dump_vcpu(struct vcpu *vcpu);

#endif
