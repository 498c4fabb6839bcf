// SPDX-License-Identifier: MIT
/*
 * The monitor's commands, with QEMU's HMP names: what a running VM looks
 * like from the VMM's side (its vCPU threads and registers, what KVM
 * offers, the PCI devices, disks, address map and interrupt routes), and
 * the controls (stop, cont, system_reset, system_powerdown, quit).
 *
 * Every command answers as text or, with a leading -j, as one line of JSON
 * for scripts. Bad input of any kind gets an error answer, never a crash:
 * this is reachable by anyone who can open the control socket.
 *
 * A vCPU's registers can only be read while it is outside KVM_RUN, so
 * info cpus and info registers pause the VM for the moment it takes to
 * read them (unless it is stopped already).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "devices/pci.h"
#include "vmm/arch.h"
#include "vmm/log.h"
#include "vmm/monitor.h"
#include "vmm/stats.h"
#include "vmm/vm.h"
#include "virtio/net.h"

#define MON_MAX_ARGS 8

void mon_out_reset(struct mon_out *o)
{
	free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
	o->error = o->nomem = false;
}

static void mon_vprintf(struct mon_out *o, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, aq);
	va_end(aq);
	if (n < 0 || o->nomem)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = MAX(o->cap * 2, o->len + n + 256);
		char *b = realloc(o->buf, cap);

		if (!b) {
			o->nomem = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
		vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	}
	o->len += n;
}

void mon_printf(struct mon_out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mon_vprintf(o, fmt, ap);
	va_end(ap);
}

void mon_json_str(struct mon_out *o, const char *s)
{
	mon_printf(o, "\"");
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			mon_printf(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			mon_printf(o, "\\u%04x", c);
		else
			mon_printf(o, "%c", c);
	}
	mon_printf(o, "\"");
}

void mon_error(struct mon_out *o, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* An error replaces whatever the command had written so far. */
	o->len = 0;
	if (o->buf)
		o->buf[0] = '\0';
	o->error = true;
	if (o->json) {
		mon_printf(o, "{\"error\": ");
		mon_json_str(o, msg);
		mon_printf(o, "}\n");
	} else {
		mon_printf(o, "error: %s\n", msg);
	}
}

struct mon_ctx {
	struct monitor *m;
	struct vm *vm; /* NULL between boots */
	struct mon_out *o;
	int argc;
	char **argv;
	bool was_paused; /* stopped by the user, not just for reading */
	char why[160];   /* a failed pause, explained */
};

/*
 * Most commands need a VM. Before the first boot and between two boots
 * there is none for a moment: a command typed (or piped) in then waits for
 * it, up to vm_wait_ms.
 */
static bool need_vm(struct mon_ctx *c)
{
	struct monitor *m = c->m;
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += m->vm_wait_ms / 1000;
	until.tv_nsec += (m->vm_wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!m->vm && m->vm_wait_ms &&
	       pthread_cond_timedwait(&m->attached, &m->lock, &until) != ETIMEDOUT)
		;
	c->vm = m->vm;
	if (!c->vm)
		mon_error(c->o, "no VM is running right now (the guest is rebooting)");
	return c->vm != NULL;
}

/* A JSON answer that is a list: {"return": [ ... ]} */
static void json_list_begin(struct mon_ctx *c)
{
	if (c->o->json)
		mon_printf(c->o, "{\"return\": [");
}

static void json_list_end(struct mon_ctx *c)
{
	if (c->o->json && !c->o->error)
		mon_printf(c->o, "]}\n");
}

/* An empty success: nothing as text, {"return": {}} as JSON. */
static void ok(struct mon_ctx *c)
{
	if (c->o->json)
		mon_printf(c->o, "{\"return\": {}}\n");
}

/* --- info ... --- */

static void info_status(struct mon_ctx *c)
{
	bool paused;

	if (!need_vm(c))
		return;
	paused = vm_is_paused(c->vm);
	if (c->o->json)
		mon_printf(c->o, "{\"return\": {\"running\": %s, \"status\": \"%s\"}}\n",
			   paused ? "false" : "true", paused ? "paused" : "running");
	else
		mon_printf(c->o, "VM status: %s\n", paused ? "paused" : "running");
}

static const char *mp_state_name(unsigned s)
{
	switch (s) {
	case KVM_MP_STATE_RUNNABLE:
		return "runnable";
	case KVM_MP_STATE_UNINITIALIZED:
		return "uninitialized"; /* waiting for INIT-SIPI from the boot CPU */
	case KVM_MP_STATE_INIT_RECEIVED:
		return "init-received";
	case KVM_MP_STATE_HALTED:
		return "halted"; /* HLT, waiting in the kernel for an interrupt */
	case KVM_MP_STATE_SIPI_RECEIVED:
		return "sipi-received";
	default:
		return "other";
	}
}

/* Why vm_pause() failed, in words (the buffer lives in c). */
static const char *pause_error(struct mon_ctx *c, int ret)
{
	if (ret == -ESHUTDOWN)
		return "the VM is shutting down";
	if (ret != -ETIMEDOUT)
		return strerror(-ret);
	vm_pause_explain(c->vm, c->why, sizeof(c->why));
	return c->why;
}

/*
 * Runs fn with every vCPU out of KVM_RUN: pauses the VM for the moment if
 * it is running (without freezing the guest clock: the pause is short).
 */
static void with_vcpus_stopped(struct mon_ctx *c, void (*fn)(struct mon_ctx *c))
{
	int ret = vm_pause(c->vm, false);

	c->was_paused = ret == -EALREADY;
	if (ret && ret != -EALREADY) {
		mon_error(c->o, "cannot stop the vCPUs: %s", pause_error(c, ret));
		return;
	}
	fn(c);
	if (!ret)
		vm_resume(c->vm);
}

static const char *vcpu_state(struct mon_ctx *c, struct vcpu *v)
{
	if (!v->started || !v->tid)
		return "stopped"; /* not started yet, or ended */
	return c->was_paused ? "paused" : "running";
}

static void cpus_read(struct mon_ctx *c)
{
	struct vm *vm = c->vm;

	json_list_begin(c);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		struct arch_reg pc = { "pc", 0 };
		struct kvm_mp_state mp = { 0 };
		bool have_pc = arch_vcpu_regs(v, &pc, 1) == 1;
		bool have_mp = ioctl(v->fd, KVM_GET_MP_STATE, &mp) == 0;
		const char *state = vcpu_state(c, v);

		if (c->o->json) {
			mon_printf(c->o, "%s{\"cpu\": %u, \"thread_id\": %d, \"state\": \"%s\"",
				   i ? ", " : "", i, (int)v->tid, state);
			if (have_mp)
				mon_printf(c->o, ", \"mp_state\": \"%s\"", mp_state_name(mp.mp_state));
			if (have_pc)
				mon_printf(c->o, ", \"%s\": %llu", pc.name, pc.value);
			mon_printf(c->o, "}");
			continue;
		}
		mon_printf(c->o, "%c CPU #%u: thread_id=%d state=%s", i ? ' ' : '*', i,
			   (int)v->tid, state);
		if (have_mp)
			mon_printf(c->o, " mp_state=%s", mp_state_name(mp.mp_state));
		if (have_pc)
			mon_printf(c->o, " %s=0x%016llx", pc.name, pc.value);
		mon_printf(c->o, "\n");
	}
	json_list_end(c);
}

static void info_cpus(struct mon_ctx *c)
{
	if (need_vm(c))
		with_vcpus_stopped(c, cpus_read);
}

static void regs_one(struct mon_ctx *c, unsigned i, bool first)
{
	struct arch_reg r[ARCH_MAX_REGS];
	int n = arch_vcpu_regs(&c->vm->vcpus[i], r, ARCH_MAX_REGS);

	if (n < 0) {
		mon_error(c->o, "CPU #%u: cannot read the registers: %s", i, strerror(-n));
		return;
	}
	if (c->o->json) {
		mon_printf(c->o, "%s{\"cpu\": %u", first ? "" : ", ", i);
		for (int k = 0; k < n; k++)
			mon_printf(c->o, ", \"%s\": %llu", r[k].name, r[k].value);
		mon_printf(c->o, "}");
		return;
	}
	mon_printf(c->o, "CPU #%u:\n", i);
	for (int k = 0; k < n; k++) {
		mon_printf(c->o, "%s%9s=%016llx", k % 4 ? " " : "", r[k].name, r[k].value);
		if (k % 4 == 3 || k == n - 1)
			mon_printf(c->o, "\n");
	}
}

static void regs_read(struct mon_ctx *c)
{
	bool all = c->argc > 2 && !strcmp(c->argv[2], "-a");
	unsigned n = all ? c->vm->nr_vcpus : 1;

	json_list_begin(c);
	for (unsigned i = 0; i < n && !c->o->error; i++)
		regs_one(c, i, i == 0);
	json_list_end(c);
}

static void info_registers(struct mon_ctx *c)
{
	if (c->argc > 3 || (c->argc == 3 && strcmp(c->argv[2], "-a"))) {
		mon_error(c->o, "usage: info registers [-a]");
		return;
	}
	if (need_vm(c))
		with_vcpus_stopped(c, regs_read);
}

static long kvm_cap(struct vm *vm, long cap)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static void info_kvm(struct mon_ctx *c)
{
	struct vm *vm = c->vm;
	int api;

	if (!need_vm(c))
		return;
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (c->o->json) {
		mon_printf(c->o, "{\"return\": {\"enabled\": true, \"present\": true, "
			   "\"api_version\": %d, \"pvm\": %s, \"max_vcpus\": %d, "
			   "\"tsc_deadline_timer\": %s, \"xcrs\": %s, \"vcpu_mmap_size\": %zu}}\n",
			   api, kvm_is_pvm() ? "true" : "false", vm->caps.max_vcpus,
			   vm->caps.tsc_deadline ? "true" : "false",
			   vm->caps.xcrs ? "true" : "false", vm->run_size);
		return;
	}
	mon_printf(c->o, "kvm support: enabled\n");
	mon_printf(c->o, "KVM API version: %d\n", api);
	mon_printf(c->o, "/dev/kvm: %s\n", kvm_is_pvm() ? "PVM (kvm_pvm, paravirtual)" :
		   "hardware-assisted (VT-x or AMD-V)");
	mon_printf(c->o, "max vCPUs: %d\n", vm->caps.max_vcpus);
	mon_printf(c->o, "TSC deadline timer: %s\n", vm->caps.tsc_deadline ? "yes" : "no");
	mon_printf(c->o, "XCRs (KVM_SET_XCRS): %s\n", vm->caps.xcrs ? "yes" : "no");
	mon_printf(c->o, "ioeventfd, irqfd, MSI routing: %s\n",
		   kvm_cap(vm, KVM_CAP_IOEVENTFD) && kvm_cap(vm, KVM_CAP_IRQFD) &&
		   kvm_cap(vm, KVM_CAP_SIGNAL_MSI) ? "yes" : "no");
	mon_printf(c->o, "kvm_run page: %zu bytes\n", vm->run_size);
}

static void pci_one(struct mon_ctx *c, struct pci_device *d, bool first)
{
	const uint8_t *cf = d->config;
	unsigned vendor = cf[0] | cf[1] << 8, device = cf[2] | cf[3] << 8;
	unsigned class = cf[0xb] << 8 | cf[0xa];

	if (c->o->json) {
		mon_printf(c->o, "%s{\"bus\": %u, \"slot\": %u, \"function\": %u, "
			   "\"vendor\": %u, \"device\": %u, \"class\": %u, \"irq\": %u, \"bars\": [",
			   first ? "" : ", ", d->bus, d->dev, d->fn, vendor, device, class,
			   d->intx_gsi);
	} else {
		mon_printf(c->o, "  Bus %2u, device %2u, function %u:\n", d->bus, d->dev, d->fn);
		mon_printf(c->o, "    class %04x: PCI device %04x:%04x\n", class, vendor, device);
		if (d->intx_gsi)
			mon_printf(c->o, "    IRQ %u (GSI)\n", d->intx_gsi);
	}
	for (unsigned b = 0, n = 0; b < PCI_NUM_BARS; b++) {
		const struct pci_bar *bar = &d->bars[b];

		if (!bar->size)
			continue;
		if (c->o->json) {
			mon_printf(c->o, "%s{\"bar\": %u, \"type\": \"%s\", \"size\": %llu", n++ ? ", " : "",
				   b, bar->flags & PCI_BAR_IO ? "io" : "memory",
				   (unsigned long long)bar->size);
			if (bar->mapped)
				mon_printf(c->o, ", \"address\": %llu", (unsigned long long)bar->mapped_at);
			mon_printf(c->o, "}");
		} else if (bar->mapped) {
			mon_printf(c->o, "    BAR%u: %s at 0x%llx [0x%llx] %s\n", b,
				   bar->flags & PCI_BAR_IO ? "I/O" : "memory",
				   (unsigned long long)bar->mapped_at,
				   (unsigned long long)(bar->mapped_at + bar->size - 1), bar->name);
		} else {
			mon_printf(c->o, "    BAR%u: %s, %llu bytes, not mapped %s\n", b,
				   bar->flags & PCI_BAR_IO ? "I/O" : "memory",
				   (unsigned long long)bar->size, bar->name);
		}
	}
	if (c->o->json)
		mon_printf(c->o, "]}");
}

static void info_pci(struct mon_ctx *c)
{
	struct pci_host *h;
	bool first = true;

	if (!need_vm(c))
		return;
	h = arch_pci_host(c->vm);
	json_list_begin(c);
	pthread_mutex_lock(&h->lock);
	pci_one(c, &h->bridge, true);
	first = false;
	for (unsigned i = 0; i < ARRAY_SIZE(h->devices); i++)
		if (h->devices[i] && h->devices[i] != &h->bridge)
			pci_one(c, h->devices[i], first);
	pthread_mutex_unlock(&h->lock);
	json_list_end(c);
}

static void info_block(struct mon_ctx *c)
{
	const struct vm_config *cfg = c->m->cfg;

	json_list_begin(c);
	if (!c->o->json && !cfg->nr_drives)
		mon_printf(c->o, "no block devices\n");
	for (unsigned i = 0; i < cfg->nr_drives; i++) {
		const struct drive_opts *d = &cfg->drives[i];
		const char *fmt = d->format_given ? drive_format_name(d->format) : "probed";

		if (c->o->json) {
			mon_printf(c->o, "%s{\"device\": \"vd%c\", \"file\": ", i ? ", " : "", 'a' + i);
			mon_json_str(c->o, d->file);
			mon_printf(c->o, ", \"format\": \"%s\", \"cache\": \"%s\", \"read_only\": %s}",
				   fmt, drive_cache_name(d->cache), d->read_only ? "true" : "false");
		} else {
			mon_printf(c->o, "vd%c: %s (%s, cache=%s%s)\n", 'a' + i, d->file, fmt,
				   drive_cache_name(d->cache), d->read_only ? ", read-only" : "");
		}
	}
	json_list_end(c);
}

/* What the user called a NIC's backend: its -netdev id, or the flag that made it. */
static const char *netdev_name(const struct netdev_opts *d)
{
	if (netdev_named(d))
		return d->id;
	return netdev_from_nic(d) ? "-nic" : "-net";
}

static void nic_one(struct mon_ctx *c, unsigned int i, bool first)
{
	const struct nic_opts *o = &c->m->cfg->net.nics[i];
	const struct netdev_opts *d = &c->m->cfg->net.netdevs[o->backend];
	struct virtio_net *n = vm_nic(c->vm, i);
	struct virtio_net_stats st;
	char mac[18], user[1024];
	bool up;

	if (!n)
		return;
	if (d->type == NETDEV_USER) /* slirp's addresses and forwards, as parsed */
		net_user_str(&d->user, user, sizeof(user));
	virtio_net_get_stats(n, &st);
	up = virtio_net_link_up(n);
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 o->mac[0], o->mac[1], o->mac[2], o->mac[3], o->mac[4], o->mac[5]);
	if (c->o->json) {
		mon_printf(c->o, "%s{\"nic\": \"net%u\", \"id\": ", first ? "" : ", ", i);
		mon_json_str(c->o, o->id);
		mon_printf(c->o, ", \"mac\": \"%s\", \"netdev\": ", mac);
		mon_json_str(c->o, netdev_name(d));
		mon_printf(c->o, ", \"backend\": \"%s\", \"ifname\": ", netdev_type_name(d->type));
		mon_json_str(c->o, n->be->ifname);
		if (d->type == NETDEV_USER) {
			mon_printf(c->o, ", \"user\": ");
			mon_json_str(c->o, user);
		}
		mon_printf(c->o, ", \"link\": %s, \"rx_frames\": %llu, \"rx_bytes\": %llu, "
			   "\"rx_dropped\": %llu, \"tx_frames\": %llu, \"tx_bytes\": %llu, "
			   "\"tx_dropped\": %llu}", up ? "true" : "false",
			   (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bytes,
			   (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_frames,
			   (unsigned long long)st.tx_bytes, (unsigned long long)st.tx_dropped);
		return;
	}
	mon_printf(c->o, "net%u%s%s: virtio-net-pci macaddr=%s link=%s, netdev %s: %s%s%s\n",
		   i, o->id[0] ? " id=" : "", o->id, mac, up ? "up" : "down", netdev_name(d),
		   netdev_type_name(d->type), n->be->ifname[0] ? " ifname=" : "", n->be->ifname);
	mon_printf(c->o, "  rx %llu frames %llu bytes %llu dropped; tx %llu frames %llu bytes %llu dropped\n",
		   (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bytes,
		   (unsigned long long)st.rx_dropped, (unsigned long long)st.tx_frames,
		   (unsigned long long)st.tx_bytes, (unsigned long long)st.tx_dropped);
	if (d->type == NETDEV_USER)
		mon_printf(c->o, "  user %s\n", user);
}

static void info_network(struct mon_ctx *c)
{
	unsigned int nr = c->m->cfg->net.nr_nics;

	if (nr && !need_vm(c))
		return;
	json_list_begin(c);
	if (!c->o->json && !nr)
		mon_printf(c->o, "no network devices\n");
	for (unsigned int i = 0; i < nr; i++)
		nic_one(c, i, i == 0);
	json_list_end(c);
}

static void mtree_bus(struct mon_ctx *c, struct bus *bus, bool *first)
{
	pthread_rwlock_rdlock(&bus->lock);
	if (!c->o->json)
		mon_printf(c->o, "%s (%zu regions; %llu accesses decoded by nothing):\n",
			   bus->name, bus->nr, (unsigned long long)bus->unhandled);
	for (size_t i = 0; i < bus->nr; i++) {
		const struct bus_region *r = &bus->regions[i];
		unsigned long long acc = __atomic_load_n(&r->accesses, __ATOMIC_RELAXED);

		if (c->o->json) {
			mon_printf(c->o, "%s{\"space\": \"%s\", \"base\": %llu, \"size\": %llu, "
				   "\"name\": ", *first ? "" : ", ", bus->name,
				   (unsigned long long)r->base, (unsigned long long)r->len);
			mon_json_str(c->o, r->name ? r->name : "");
			mon_printf(c->o, ", \"accesses\": %llu}", acc);
			*first = false;
		} else {
			mon_printf(c->o, "  %016llx-%016llx %-24s accesses %llu\n",
				   (unsigned long long)r->base,
				   (unsigned long long)(r->base + r->len - 1),
				   r->name ? r->name : "?", acc);
		}
	}
	pthread_rwlock_unlock(&bus->lock);
}

static void info_mtree(struct mon_ctx *c)
{
	struct guest_mem *mem;
	bool first = true;

	if (!need_vm(c))
		return;
	mem = &c->vm->mem;
	json_list_begin(c);
	if (!c->o->json)
		mon_printf(c->o, "ram (KVM memory slots: guest accesses never exit):\n");
	for (int i = 0; i < mem->nr; i++) {
		const struct mem_region *r = &mem->regions[i];

		if (c->o->json)
			mon_printf(c->o, "%s{\"space\": \"ram\", \"base\": %llu, \"size\": %llu}",
				   first ? "" : ", ", (unsigned long long)r->gpa,
				   (unsigned long long)r->size);
		else
			mon_printf(c->o, "  %016llx-%016llx ram slot %d\n",
				   (unsigned long long)r->gpa,
				   (unsigned long long)(r->gpa + r->size - 1), i);
		first = false;
	}
	mtree_bus(c, &c->vm->pio, &first);
	mtree_bus(c, &c->vm->mmio, &first);
	json_list_end(c);
}

static const char *irqchip_name(unsigned chip)
{
	switch (chip) {
	case KVM_IRQCHIP_PIC_MASTER:
		return "pic-master";
	case KVM_IRQCHIP_PIC_SLAVE:
		return "pic-slave";
	case KVM_IRQCHIP_IOAPIC:
		return "ioapic";
	default:
		return "?";
	}
}

static void irq_route(struct mon_ctx *c, const struct kvm_irq_routing_entry *e, bool first)
{
	if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
		if (c->o->json)
			mon_printf(c->o, "%s{\"gsi\": %u, \"type\": \"irqchip\", \"chip\": \"%s\", \"pin\": %u}",
				   first ? "" : ", ", e->gsi, irqchip_name(e->u.irqchip.irqchip),
				   e->u.irqchip.pin);
		else
			mon_printf(c->o, "  GSI %3u -> %s pin %u\n", e->gsi,
				   irqchip_name(e->u.irqchip.irqchip), e->u.irqchip.pin);
	} else if (e->type == KVM_IRQ_ROUTING_MSI) {
		unsigned long long addr = (unsigned long long)e->u.msi.address_hi << 32 |
					  e->u.msi.address_lo;

		if (c->o->json)
			mon_printf(c->o, "%s{\"gsi\": %u, \"type\": \"msi\", \"address\": %llu, \"data\": %u}",
				   first ? "" : ", ", e->gsi, addr, e->u.msi.data);
		else
			mon_printf(c->o, "  GSI %3u -> MSI address 0x%llx data 0x%x\n", e->gsi, addr,
				   e->u.msi.data);
	}
}

static void info_irq(struct mon_ctx *c)
{
	struct irq_routing *rt;

	if (!need_vm(c))
		return;
	rt = &c->vm->routing;
	json_list_begin(c);
	if (!c->o->json)
		mon_printf(c->o, "KVM GSI routes (each GSI drives irqchip pins or sends an MSI):\n");
	pthread_mutex_lock(&rt->lock);
	for (unsigned i = 0; rt->table && i < rt->table->nr; i++)
		irq_route(c, &rt->table->entries[i], i == 0);
	pthread_mutex_unlock(&rt->lock);
	json_list_end(c);
}

static void info_stats(struct mon_ctx *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	if (!need_vm(c))
		return;
	if (!c->vm->stats) {
		mon_error(c->o, "statistics not available (counting is off)");
		return;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		mon_error(c->o, "out of memory");
		return;
	}
	ret = stats_print(f, c->vm->stats, c->o->json);
	if (fclose(f) || ret) {
		mon_error(c->o, "cannot render the statistics");
	} else if (c->o->json) {
		while (len && text[len - 1] == '\n')
			len--;
		mon_printf(c->o, "{\"return\": %.*s}\n", (int)len, text);
	} else {
		mon_printf(c->o, "%s", text);
	}
	free(text);
}

static void cmd_info(struct mon_ctx *c);
static void cmd_help(struct mon_ctx *c);

struct mon_cmd {
	const char *name;
	const char *alias;
	const char *args;
	void (*fn)(struct mon_ctx *c);
	const char *help;
};

static const struct mon_cmd info_cmds[] = {
	{ "status", NULL, "", info_status, "whether the vCPUs run or are stopped" },
	{ "cpus", NULL, "", info_cpus, "each vCPU: thread id, state, program counter" },
	{ "registers", NULL, "[-a]", info_registers, "the first vCPU's registers (-a: all vCPUs)" },
	{ "kvm", NULL, "", info_kvm, "what /dev/kvm offers" },
	{ "pci", NULL, "", info_pci, "the PCI devices and their BARs" },
	{ "block", NULL, "", info_block, "the disks" },
	{ "network", NULL, "", info_network, "the network devices" },
	{ "mtree", NULL, "", info_mtree, "the address map: RAM, port and MMIO regions" },
	{ "irq", NULL, "", info_irq, "interrupt routing: GSIs to irqchip pins and MSIs" },
	{ "stats", NULL, "", info_stats, "exit statistics" },
};

static void cmd_stop(struct mon_ctx *c)
{
	int ret;

	if (!need_vm(c))
		return;
	ret = vm_pause(c->vm, true);
	if (ret == -EALREADY)
		ret = 0; /* as in QEMU: stopping a stopped VM is no error */
	if (ret)
		mon_error(c->o, "cannot stop the VM: %s", pause_error(c, ret));
	else
		ok(c);
}

static void cmd_cont(struct mon_ctx *c)
{
	if (!need_vm(c))
		return;
	vm_resume(c->vm); /* -EALREADY: running already, fine */
	ok(c);
}

static void cmd_system_reset(struct mon_ctx *c)
{
	if (!need_vm(c))
		return;
	vm_fire_event(c->vm, VM_EVENT_RESET);
	ok(c);
}

static void cmd_system_powerdown(struct mon_ctx *c)
{
	if (!need_vm(c))
		return;
	if (vm_is_paused(c->vm)) {
		mon_error(c->o, "the VM is stopped and cannot see the power button: cont first");
		return;
	}
	arch_power_button(c->vm);
	ok(c);
}

/*
 * set_link NAME on|off, as in QEMU: NAME is a NIC's id=, its netdev's id,
 * or netN (the N-th NIC). The guest sees the carrier change through
 * VIRTIO_NET_S_LINK_UP and a config interrupt; frames stop both ways.
 */
static int find_nic(struct mon_ctx *c, const char *name)
{
	const struct net_config *nc = &c->m->cfg->net;
	char slot[16];

	for (unsigned int i = 0; i < nc->nr_nics; i++) {
		const struct nic_opts *o = &nc->nics[i];

		snprintf(slot, sizeof(slot), "net%u", i);
		if (!strcmp(name, slot) || (o->id[0] && !strcmp(name, o->id)) ||
		    !strcmp(name, nc->netdevs[o->backend].id))
			return (int)i;
	}
	return -1;
}

static void cmd_set_link(struct mon_ctx *c)
{
	struct virtio_net *n;
	bool up;
	int i;

	if (c->argc != 3 || (strcmp(c->argv[2], "on") && strcmp(c->argv[2], "off"))) {
		mon_error(c->o, "usage: set_link NAME on|off");
		return;
	}
	up = !strcmp(c->argv[2], "on");
	if (!need_vm(c))
		return;
	i = find_nic(c, c->argv[1]);
	n = i < 0 ? NULL : vm_nic(c->vm, (unsigned int)i);
	if (!n) {
		mon_error(c->o, "set_link: no NIC or netdev named '%s' (info network lists them)",
			  c->argv[1]);
		return;
	}
	virtio_net_set_link(n, up);
	ok(c);
}

static void cmd_quit(struct mon_ctx *c)
{
	if (!need_vm(c))
		return;
	vm_fire_event(c->vm, VM_EVENT_POWEROFF);
	ok(c);
}

static const struct mon_cmd mon_cmds[] = {
	{ "help", "?", "[info]", cmd_help, "list the commands (help info: the info commands)" },
	{ "info", "i", "WHAT", cmd_info, "show something about the VM (help info lists what)" },
	{ "stop", NULL, "", cmd_stop, "stop the vCPUs and the guest's clock" },
	{ "cont", "c", "", cmd_cont, "resume the vCPUs after stop" },
	{ "system_reset", NULL, "", cmd_system_reset, "reset the machine (a fresh boot)" },
	{ "system_powerdown", NULL, "", cmd_system_powerdown,
	  "press the ACPI power button: the guest shuts down" },
	{ "set_link", NULL, "NAME on|off", cmd_set_link, "a NIC's link up or down (info network: names)" },
	{ "quit", "q", "", cmd_quit, "stop the VM and exit minivm" },
};

static const struct mon_cmd *find_cmd(const struct mon_cmd *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name) || (t[i].alias && !strcmp(t[i].alias, name)))
			return &t[i];
	return NULL;
}

static void help_table(struct mon_ctx *c, const char *prefix, const struct mon_cmd *t, size_t n)
{
	char usage[64];

	for (size_t i = 0; i < n; i++) {
		if (c->o->json) {
			mon_printf(c->o, "%s{\"command\": \"%s%s\", \"args\": \"%s\", \"help\": ",
				   i ? ", " : "", prefix, t[i].name, t[i].args);
			mon_json_str(c->o, t[i].help);
			mon_printf(c->o, "}");
			continue;
		}
		snprintf(usage, sizeof(usage), "%s%s%s%s", prefix, t[i].name,
			 *t[i].args ? " " : "", t[i].args);
		mon_printf(c->o, "%-24s -- %s\n", usage, t[i].help);
	}
}

static void cmd_help(struct mon_ctx *c)
{
	const struct mon_cmd *what = c->argc > 1 ?
		find_cmd(mon_cmds, ARRAY_SIZE(mon_cmds), c->argv[1]) : NULL;
	bool info = what && what->fn == cmd_info;

	if (c->argc > 1 && !info) {
		mon_error(c->o, "help: no help for '%s' (try help or help info)", c->argv[1]);
		return;
	}
	json_list_begin(c);
	if (info) {
		help_table(c, "info ", info_cmds, ARRAY_SIZE(info_cmds));
	} else {
		help_table(c, "", mon_cmds, ARRAY_SIZE(mon_cmds));
		if (!c->o->json)
			mon_printf(c->o, "Start a command with -j for a JSON answer.\n");
	}
	json_list_end(c);
}

static void cmd_info(struct mon_ctx *c)
{
	const struct mon_cmd *sub;

	if (c->argc < 2) {
		mon_error(c->o, "info: what? (help info lists the choices)");
		return;
	}
	sub = find_cmd(info_cmds, ARRAY_SIZE(info_cmds), c->argv[1]);
	if (!sub) {
		mon_error(c->o, "info %s: unknown (help info lists the choices)", c->argv[1]);
		return;
	}
	if (c->argc > 2 && sub->fn != info_registers) {
		mon_error(c->o, "info %s takes no arguments", sub->name);
		return;
	}
	sub->fn(c);
}

/* Splits line into at most MON_MAX_ARGS words; returns how many, or -E2BIG. */
static int split_words(char *line, char **argv)
{
	int argc = 0;

	for (char *p = line;;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			return argc;
		if (argc == MON_MAX_ARGS)
			return -E2BIG;
		argv[argc++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p)
			*p++ = '\0';
	}
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

static void run_words(struct monitor *m, struct mon_out *o, int argc, char **argv)
{
	struct mon_ctx c = { .m = m, .o = o, .argc = argc, .argv = argv };
	const struct mon_cmd *cmd;

	cmd = find_cmd(mon_cmds, ARRAY_SIZE(mon_cmds), argv[0]);
	if (!cmd) {
		mon_error(o, "unknown command: '%.64s' (try help)", argv[0]);
		return;
	}
	if (!cmd->args[0] && argc > 1) { /* the others check their own */
		mon_error(o, "%s takes no arguments", cmd->name);
		return;
	}
	pthread_mutex_lock(&m->lock);
	c.vm = m->vm;
	cmd->fn(&c);
	pthread_mutex_unlock(&m->lock);
}

void monitor_exec(struct monitor *m, const char *line, struct mon_out *o)
{
	char buf[MON_LINE_MAX];
	char *argv[MON_MAX_ARGS];
	int argc;

	o->len = 0;
	o->error = false;
	o->json = false;
	if (strlen(line) >= sizeof(buf)) {
		mon_error(o, "command too long (at most %d bytes)", MON_LINE_MAX - 1);
		return;
	}
	strcpy(buf, line);
	argc = split_words(buf, argv);
	if (argc > 0 && (!strcmp(argv[0], "-j") || !strcmp(argv[0], "--json"))) {
		o->json = true;
		argc--;
		memmove(argv, argv + 1, argc * sizeof(argv[0]));
	}
	if (!printable(line))
		mon_error(o, "control characters in the command");
	else if (argc < 0)
		mon_error(o, "too many words in the command");
	else if (argc == 0 && o->json)
		mon_error(o, "-j: which command?");
	else if (argc > 0)
		run_words(m, o, argc, argv);
}
