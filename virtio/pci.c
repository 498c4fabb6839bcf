// SPDX-License-Identifier: MIT
/*
 * The virtio 1.x PCI transport (virtio spec §4.1, "Virtio Over PCI Bus").
 *
 * A modern virtio-pci device is a PCI function with vendor 0x1af4 and
 * device 0x1040 + the virtio device ID. Vendor-specific capabilities in its
 * config space point the driver at register blocks inside a BAR:
 *
 *   BAR0 + 0x0000  common configuration: features, status, queue setup
 *   BAR0 + 0x1000  ISR status: why an INTx interrupt fired
 *   BAR0 + 0x2000  device-specific configuration (blk: capacity, ...)
 *   BAR0 + 0x3000  notifications: the driver writes here to kick queue n
 *                  (at 0x3000 + 4 * n)
 *   BAR1           the MSI-X table and pending-bit array
 *
 * The fast paths never reach this file: a kick is a write that KVM turns
 * into an eventfd signal (ioeventfd) for the VM's event loop, and an
 * interrupt is an eventfd write that KVM turns into an MSI (irqfd), so a
 * request costs the vCPU one exit into the kernel and none into minivm.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "virtio/pci.h"
#include "vmm/arch.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

#define VPCI_COMMON_OFF 0x0000
#define VPCI_COMMON_LEN 0x38
#define VPCI_ISR_OFF 0x1000
#define VPCI_ISR_LEN 0x4
#define VPCI_DEVICE_OFF 0x2000
#define VPCI_DEVICE_LEN 0x1000
#define VPCI_NOTIFY_OFF 0x3000
#define VPCI_NOTIFY_MULT 4
#define VPCI_BAR0_SIZE 0x4000
#define VPCI_MSIX_BAR 1
#define VPCI_MSIX_TABLE 0x0
#define VPCI_MSIX_PBA 0x800
#define VPCI_BAR1_SIZE 0x1000

/* virtio_pci_cap.cfg_type (§4.1.4) */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG 3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define PCI_CAP_ID_VNDR 0x09

/* The common configuration structure's fields (§4.1.4.3) */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_NUM_QUEUES 0x12
#define CC_STATUS 0x14
#define CC_CFG_GENERATION 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX_VECTOR 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

struct virtio_transport {
	struct vm *vm;
	struct virtio_dev *v;
	pthread_mutex_t lock; /* the common configuration and status */
	struct pci_device pci;
	struct msix msix;
	unsigned nvec;
	struct {
		int fd;  /* irqfd */
		int gsi;
	} vec[VIRTIO_MAX_QUEUES + 1];
	uint32_t dfselect, gfselect;
	uint64_t staged_features; /* written by the driver before FEATURES_OK */
	uint8_t status;
	uint8_t config_generation;
	uint16_t msix_config;
	uint16_t queue_select;
	bool activated;
	/*
	 * Set from completion threads, which must never wait for the lock: a
	 * reset holds it while it waits for those very completions to drain.
	 */
	bool needs_reset;
	uint8_t isr; /* bit 0: a queue; bit 1: config */
	uint64_t notify_addr; /* where the ioeventfds are registered */
};

static uint64_t offered_features(const struct virtio_dev *v)
{
	return v->features | VIRTIO_BIT(VIRTIO_F_VERSION_1) |
	       VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
}

bool virtio_has_feature(const struct virtio_dev *v, unsigned bit)
{
	return bit < 64 && (v->driver_features & VIRTIO_BIT(bit));
}

/* ---- interrupts ---- */

static void vpci_signal_vector(struct virtio_transport *t, uint16_t vec)
{
	struct msix_msg msg;
	uint64_t one = 1;

	if (vec >= t->nvec)
		return;
	if (msix_vector_get(&t->msix, vec, &msg) < 0 || msg.masked) {
		msix_notify(&t->msix, vec); /* sets the pending bit */
		return;
	}
	if (t->vec[vec].fd >= 0 && write(t->vec[vec].fd, &one, sizeof(one)) == sizeof(one))
		return;
	vm_signal_msi(t->vm, msg.addr, msg.data);
}

static void vpci_raise(struct virtio_transport *t, uint8_t isr_bit, uint16_t vec)
{
	if (msix_enabled(&t->msix)) {
		if (vec != VIRTIO_NO_VECTOR)
			vpci_signal_vector(t, vec);
		return;
	}
	__atomic_fetch_or(&t->isr, isr_bit, __ATOMIC_SEQ_CST);
	pci_device_set_intx(&t->pci, 1);
}

void virtio_notify_queue(struct virtio_dev *v, unsigned q)
{
	if (q < v->num_queues)
		vpci_raise(v->t, 1, v->queues[q].vector);
}

void virtio_notify_config(struct virtio_dev *v)
{
	vpci_raise(v->t, 2, v->t->msix_config);
}

int virtio_push_and_notify(struct virtio_dev *v, unsigned q, uint16_t head, uint32_t len)
{
	struct virtio_queue *vq = &v->queues[q];
	bool need;
	int ret;

	pthread_mutex_lock(&vq->lock);
	ret = virtq_push(&vq->vq, head, len);
	need = !ret && virtq_needs_interrupt(&vq->vq);
	pthread_mutex_unlock(&vq->lock);
	if (need)
		virtio_notify_queue(v, q);
	return ret;
}

void virtio_set_needs_reset(struct virtio_dev *v, const char *why)
{
	struct virtio_transport *t = v->t;

	/* Log once per reset of the device, however often the guest tries. */
	if (!__atomic_exchange_n(&t->needs_reset, true, __ATOMIC_SEQ_CST))
		pr_warn("virtio device %02x.0: %s; the device needs a reset", t->pci.dev, why);
	virtio_notify_config(v);
}

static int vpci_msix_deliver(void *ctx, uint64_t addr, uint32_t data)
{
	struct virtio_transport *t = ctx;

	return vm_signal_msi(t->vm, addr, data);
}

/* The guest reprogrammed a vector: point its irqfd's route at the new message. */
static void vpci_msix_changed(void *ctx, unsigned vec)
{
	struct virtio_transport *t = ctx;
	struct msix_msg msg;

	/* Only irqfds go through routes; KVM_SIGNAL_MSI carries its message. */
	if (vec >= t->nvec || t->vec[vec].fd < 0)
		return;
	if (msix_vector_get(&t->msix, vec, &msg) == 0 && !msg.masked)
		vm_msi_route_set(t->vm, t->vec[vec].gsi, msg.addr, msg.data);
}

static const struct msix_ops vpci_msix_ops = {
	.deliver = vpci_msix_deliver,
	.vector_changed = vpci_msix_changed,
};

/* ---- doorbells ---- */

static void vpci_kick(struct ev_handler *h, uint32_t events)
{
	struct virtio_dev *v = h->ctx;
	/* the handler is embedded in v->queues[q]: its address gives q */
	unsigned q = ((char *)h - (char *)&v->queues[0].kick) / sizeof(v->queues[0]);
	uint64_t cnt;

	(void)events;
	if (read(h->fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		return;
	if (q < v->num_queues && v->queues[q].enabled)
		v->ops->queue_notify(v, q);
}

static void vpci_detach_doorbells(struct virtio_transport *t)
{
	struct virtio_dev *v = t->v;

	for (unsigned q = 0; q < v->num_queues; q++) {
		struct virtio_queue *vq = &v->queues[q];

		if (vq->ioeventfd)
			vm_ioeventfd(t->vm, t->notify_addr + q * VPCI_NOTIFY_MULT, 2,
				     vq->kick.fd, false);
		if (vq->kick_registered)
			evloop_del(&t->vm->evloop, &vq->kick);
		vq->ioeventfd = vq->kick_registered = false;
	}
}

static int vpci_attach_doorbells(struct virtio_transport *t)
{
	struct virtio_dev *v = t->v;
	int ret;

	t->notify_addr = pci_device_bar_address(&t->pci, 0) + VPCI_NOTIFY_OFF;
	for (unsigned q = 0; q < v->num_queues; q++) {
		struct virtio_queue *vq = &v->queues[q];

		if (!vq->enabled)
			continue;
		ret = evloop_add(&t->vm->evloop, &vq->kick, EPOLLIN);
		if (ret)
			return ret;
		vq->kick_registered = true;
		/*
		 * Linux kicks with a 16-bit write of the queue index. Without an
		 * ioeventfd the write exits to vpci_bar_write(), which signals
		 * the same eventfd: slower, same result.
		 */
		vq->ioeventfd = !vm_ioeventfd(t->vm, t->notify_addr + q * VPCI_NOTIFY_MULT, 2,
					      vq->kick.fd, true);
	}
	return 0;
}

/* ---- device status ---- */

static void vpci_reset_locked(struct virtio_transport *t)
{
	struct virtio_dev *v = t->v;

	if (t->activated && v->ops->reset)
		v->ops->reset(v);
	t->activated = false;
	vpci_detach_doorbells(t);
	for (unsigned q = 0; q < v->num_queues; q++) {
		struct virtio_queue *vq = &v->queues[q];

		/* Under the queue's lock: the event loop may still be popping. */
		pthread_mutex_lock(&vq->lock);
		memset(&vq->vq, 0, sizeof(vq->vq));
		vq->vq.mem = v->mem;
		vq->vq.size = vq->max_size;
		vq->enabled = false;
		vq->vector = VIRTIO_NO_VECTOR;
		pthread_mutex_unlock(&vq->lock);
	}
	t->status = 0;
	t->staged_features = 0;
	v->driver_features = 0;
	t->dfselect = t->gfselect = 0;
	t->msix_config = VIRTIO_NO_VECTOR;
	t->queue_select = 0;
	__atomic_store_n(&t->isr, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->needs_reset, false, __ATOMIC_SEQ_CST);
	pci_device_set_intx(&t->pci, 0);
}

static void vpci_features_ok(struct virtio_transport *t, uint8_t *status)
{
	uint64_t offered = offered_features(t->v);

	/* A driver that asks for what we did not offer, or is not 1.x, fails. */
	if ((t->staged_features & ~offered) ||
	    !(t->staged_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		*status &= ~VIRTIO_STATUS_FEATURES_OK;
		return;
	}
	t->v->driver_features = t->staged_features;
}

static void vpci_driver_ok(struct virtio_transport *t)
{
	struct virtio_dev *v = t->v;
	int ret;

	ret = vpci_attach_doorbells(t);
	if (!ret && v->ops->activate)
		ret = v->ops->activate(v);
	if (ret) {
		pr_warn("virtio device %02x.0: cannot start: %s", t->pci.dev, strerror(-ret));
		__atomic_store_n(&t->needs_reset, true, __ATOMIC_SEQ_CST);
		return;
	}
	t->activated = true;
}

static void vpci_write_status(struct virtio_transport *t, uint8_t status)
{
	uint8_t old = t->status;

	if (status == 0) {
		vpci_reset_locked(t);
		return;
	}
	/*
	 * A driver must not clear a status bit (virtio 1.x §2.1); one that
	 * tries does not get to renegotiate features under a running device
	 * or start it twice: bits stay on until the reset.
	 */
	status |= old;
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK))
		vpci_features_ok(t, &status);
	/* NEEDS_RESET is the device's to set (t->needs_reset), not the driver's. */
	status &= ~VIRTIO_STATUS_NEEDS_RESET;
	t->status = status;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    (status & VIRTIO_STATUS_FEATURES_OK))
		vpci_driver_ok(t);
}

/* ---- the common configuration structure ---- */

static struct virtio_queue *selected_queue(struct virtio_transport *t)
{
	return t->queue_select < t->v->num_queues ? &t->v->queues[t->queue_select] : NULL;
}

/*
 * The structure as the driver would read it now. Reads copy bytes out of
 * it and writes are merged into it, so any access width works the same.
 */
static void cc_image(struct virtio_transport *t, uint8_t img[VPCI_COMMON_LEN])
{
	struct virtio_queue *vq = selected_queue(t);
	uint64_t df = t->dfselect < 2 ? offered_features(t->v) >> (32 * t->dfselect) : 0;
	uint64_t gf = t->gfselect < 2 ? t->staged_features >> (32 * t->gfselect) : 0;

	memset(img, 0, VPCI_COMMON_LEN);
	bus_put(img + CC_DFSELECT, 4, t->dfselect);
	bus_put(img + CC_DF, 4, (uint32_t)df);
	bus_put(img + CC_GFSELECT, 4, t->gfselect);
	bus_put(img + CC_GF, 4, (uint32_t)gf);
	bus_put(img + CC_MSIX_CONFIG, 2, t->msix_config);
	bus_put(img + CC_NUM_QUEUES, 2, t->v->num_queues);
	img[CC_STATUS] = t->status |
			 (__atomic_load_n(&t->needs_reset, __ATOMIC_SEQ_CST) ? VIRTIO_STATUS_NEEDS_RESET : 0);
	img[CC_CFG_GENERATION] = t->config_generation;
	bus_put(img + CC_Q_SELECT, 2, t->queue_select);
	if (!vq)
		return; /* a queue that does not exist reads as size 0 */
	bus_put(img + CC_Q_SIZE, 2, vq->vq.size);
	bus_put(img + CC_Q_MSIX_VECTOR, 2, vq->vector);
	bus_put(img + CC_Q_ENABLE, 2, vq->enabled);
	bus_put(img + CC_Q_NOTIFY_OFF, 2, t->queue_select);
	bus_put(img + CC_Q_DESC, 8, vq->vq.desc_gpa);
	bus_put(img + CC_Q_DRIVER, 8, vq->vq.avail_gpa);
	bus_put(img + CC_Q_DEVICE, 8, vq->vq.used_gpa);
}

static bool touched(uint64_t off, unsigned size, unsigned field, unsigned flen)
{
	return off < field + flen && field < off + size;
}

static uint16_t valid_vector(struct virtio_transport *t, uint16_t vec)
{
	return vec < t->nvec ? vec : VIRTIO_NO_VECTOR;
}

static void vpci_queue_enable(struct virtio_transport *t, struct virtio_queue *vq)
{
	struct virtio_dev *v = t->v;
	int ret;

	if (vq->enabled)
		return;
	vq->vq.mem = v->mem;
	vq->vq.event_idx = virtio_has_feature(v, VIRTIO_F_EVENT_IDX);
	vq->vq.indirect = virtio_has_feature(v, VIRTIO_F_INDIRECT_DESC);
	if (vq->vq.size > vq->max_size)
		ret = -EINVAL;
	else
		ret = virtq_init(&vq->vq);
	if (ret) {
		/* Set up wrongly by the guest: the queue stays off. */
		pthread_mutex_unlock(&t->lock);
		virtio_set_needs_reset(v, "queue set up outside guest RAM or with a bad size");
		pthread_mutex_lock(&t->lock);
		return;
	}
	vq->enabled = true;
}

/* Fields the driver may only change while the queue is off. */
static void cc_write_queue(struct virtio_transport *t, const uint8_t *img, uint64_t off,
			   unsigned size)
{
	struct virtio_queue *vq = selected_queue(t);

	if (!vq)
		return;
	if (touched(off, size, CC_Q_MSIX_VECTOR, 2))
		vq->vector = valid_vector(t, bus_get(img + CC_Q_MSIX_VECTOR, 2));
	if (vq->enabled)
		return;
	if (touched(off, size, CC_Q_SIZE, 2))
		vq->vq.size = bus_get(img + CC_Q_SIZE, 2);
	if (touched(off, size, CC_Q_DESC, 8))
		vq->vq.desc_gpa = bus_get(img + CC_Q_DESC, 8);
	if (touched(off, size, CC_Q_DRIVER, 8))
		vq->vq.avail_gpa = bus_get(img + CC_Q_DRIVER, 8);
	if (touched(off, size, CC_Q_DEVICE, 8))
		vq->vq.used_gpa = bus_get(img + CC_Q_DEVICE, 8);
	if (touched(off, size, CC_Q_ENABLE, 2) && bus_get(img + CC_Q_ENABLE, 2) == 1)
		vpci_queue_enable(t, vq);
}

static void cc_write(struct virtio_transport *t, uint64_t off, const void *data, unsigned size)
{
	uint8_t img[VPCI_COMMON_LEN];

	if (off >= VPCI_COMMON_LEN || size > VPCI_COMMON_LEN - off)
		return;
	cc_image(t, img);
	memcpy(img + off, data, size);

	if (touched(off, size, CC_DFSELECT, 4))
		t->dfselect = bus_get(img + CC_DFSELECT, 4);
	if (touched(off, size, CC_GFSELECT, 4))
		t->gfselect = bus_get(img + CC_GFSELECT, 4);
	if (touched(off, size, CC_GF, 4) && t->gfselect < 2 &&
	    !(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		unsigned shift = 32 * t->gfselect;

		t->staged_features &= ~(0xffffffffULL << shift);
		t->staged_features |= (uint64_t)bus_get(img + CC_GF, 4) << shift;
	}
	if (touched(off, size, CC_MSIX_CONFIG, 2))
		t->msix_config = valid_vector(t, bus_get(img + CC_MSIX_CONFIG, 2));
	if (touched(off, size, CC_Q_SELECT, 2))
		t->queue_select = bus_get(img + CC_Q_SELECT, 2);
	if (touched(off, size, CC_Q_SIZE, CC_Q_DEVICE + 8 - CC_Q_SIZE))
		cc_write_queue(t, img, off, size);
	if (touched(off, size, CC_STATUS, 1))
		vpci_write_status(t, img[CC_STATUS]);
}

/* ---- BAR0 ---- */

static void vpci_bar_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct virtio_transport *t = opaque;
	uint8_t img[VPCI_COMMON_LEN];

	memset(data, 0, size);
	if (off < VPCI_COMMON_OFF + VPCI_COMMON_LEN) {
		if (size > VPCI_COMMON_LEN - off)
			return;
		pthread_mutex_lock(&t->lock);
		cc_image(t, img);
		pthread_mutex_unlock(&t->lock);
		memcpy(data, img + off, size);
	} else if (off >= VPCI_ISR_OFF && off < VPCI_ISR_OFF + VPCI_ISR_LEN) {
		/* Reading the ISR acknowledges it and lowers INTx (§4.1.4.5). */
		if (off != VPCI_ISR_OFF)
			return;
		*(uint8_t *)data = __atomic_exchange_n(&t->isr, 0, __ATOMIC_SEQ_CST);
		pci_device_set_intx(&t->pci, 0);
	} else if (off >= VPCI_DEVICE_OFF && off - VPCI_DEVICE_OFF < t->v->config_size &&
		   size <= t->v->config_size - (off - VPCI_DEVICE_OFF)) {
		if (t->v->ops->config_read)
			t->v->ops->config_read(t->v, off - VPCI_DEVICE_OFF, data, size);
	}
}

static void vpci_bar_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct virtio_transport *t = opaque;
	uint64_t one = 1;

	if (off < VPCI_COMMON_OFF + VPCI_COMMON_LEN) {
		pthread_mutex_lock(&t->lock);
		cc_write(t, off, data, size);
		pthread_mutex_unlock(&t->lock);
	} else if (off >= VPCI_DEVICE_OFF && off - VPCI_DEVICE_OFF < t->v->config_size &&
		   size <= t->v->config_size - (off - VPCI_DEVICE_OFF)) {
		if (t->v->ops->config_write)
			t->v->ops->config_write(t->v, off - VPCI_DEVICE_OFF, data, size);
	} else if (off >= VPCI_NOTIFY_OFF) {
		/*
		 * A kick that KVM did not catch with an ioeventfd (the BAR moved,
		 * or an odd access width): hand it to the event loop the same way.
		 */
		unsigned q = (off - VPCI_NOTIFY_OFF) / VPCI_NOTIFY_MULT;

		if (q < t->v->num_queues && t->v->queues[q].kick_registered &&
		    write(t->v->queues[q].kick.fd, &one, sizeof(one)) < 0)
			pr_debug("kick: %s", strerror(errno));
	}
}

static const struct bus_ops vpci_bar_ops = {
	.read = vpci_bar_read,
	.write = vpci_bar_write,
};

/* ---- setup ---- */

static int vpci_add_cap(struct pci_device *d, uint8_t type, uint32_t off, uint32_t len,
			uint32_t notify_mult)
{
	/* struct virtio_pci_cap after cap_vndr and cap_next (§4.1.4) */
	uint8_t body[18] = { 0 };
	size_t n = notify_mult ? 18 : 14;

	body[0] = n + 2; /* cap_len */
	body[1] = type;
	body[2] = 0;     /* bar */
	bus_put(body + 6, 4, off);
	bus_put(body + 10, 4, len);
	if (notify_mult)
		bus_put(body + 14, 4, notify_mult);
	return pci_add_capability(d, PCI_CAP_ID_VNDR, body, n, NULL);
}

static int vpci_setup_pci(struct virtio_transport *t, unsigned slot)
{
	struct virtio_dev *v = t->v;
	struct pci_device *d = &t->pci;
	int ret;

	pci_device_init(d, slot, 0, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + v->device_id,
			v->pci_class);
	d->config[PCI_REVISION_ID] = 1; /* modern-only devices have revision >= 1 */
	bus_put(&d->config[PCI_SUBSYSTEM_VENDOR_ID], 2, VIRTIO_PCI_VENDOR);
	bus_put(&d->config[PCI_SUBSYSTEM_ID], 2, VIRTIO_PCI_DEVICE_BASE + v->device_id);
	ret = pci_device_set_bar(d, 0, VPCI_BAR0_SIZE, 0);
	if (!ret)
		ret = pci_device_set_bar_ops(d, 0, &vpci_bar_ops, t);
	if (!ret)
		ret = pci_device_set_bar(d, VPCI_MSIX_BAR, VPCI_BAR1_SIZE, 0);
	if (!ret)
		ret = pci_device_set_intx_pin(d, 1);
	if (!ret)
		ret = vpci_add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VPCI_COMMON_OFF, VPCI_COMMON_LEN, 0);
	if (!ret)
		ret = vpci_add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VPCI_ISR_OFF, VPCI_ISR_LEN, 0);
	if (!ret && v->config_size)
		ret = vpci_add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VPCI_DEVICE_OFF,
				   v->config_size, 0);
	if (!ret)
		ret = vpci_add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VPCI_NOTIFY_OFF,
				   v->num_queues * VPCI_NOTIFY_MULT, VPCI_NOTIFY_MULT);
	if (!ret)
		ret = msix_init(&t->msix, d, t->nvec, VPCI_MSIX_BAR, VPCI_MSIX_TABLE, VPCI_MSIX_PBA);
	if (ret)
		return ret;
	msix_set_ops(&t->msix, &vpci_msix_ops, t);
	return 0;
}

/*
 * One irqfd per MSI-X vector, each with its own GSI and MSI route. Where
 * KVM refuses an irqfd, that vector falls back to KVM_SIGNAL_MSI.
 */
static int vpci_setup_irqfds(struct virtio_transport *t)
{
	bool any = false;

	for (unsigned i = 0; i < t->nvec; i++) {
		int gsi = vm_msi_route_alloc(t->vm, arch_first_msi_gsi());

		if (gsi < 0)
			return gsi;
		t->vec[i].gsi = gsi;
		t->vec[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->vec[i].fd < 0)
			return -errno;
		if (vm_irqfd(t->vm, t->vec[i].fd, gsi, true) < 0) {
			close(t->vec[i].fd);
			t->vec[i].fd = -1;
		} else {
			any = true;
		}
	}
	return any ? vm_route_commit(t->vm) : 0;
}

int virtio_pci_init(struct virtio_dev *v, struct vm *vm, struct pci_host *host, unsigned slot)
{
	struct virtio_transport *t;
	int ret;

	if (!v->num_queues || v->num_queues > VIRTIO_MAX_QUEUES || !v->ops ||
	    !v->ops->queue_notify || v->config_size > VPCI_DEVICE_LEN)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->vm = vm;
	t->v = v;
	t->nvec = v->num_queues + 1; /* one per queue, one for config changes */
	for (unsigned i = 0; i <= VIRTIO_MAX_QUEUES; i++)
		t->vec[i].fd = t->vec[i].gsi = -1;
	v->t = t;
	v->mem = &vm->mem;
	for (unsigned q = 0; q < v->num_queues; q++)
		v->queues[q].kick.fd = -1;
	for (unsigned q = 0; q < v->num_queues; q++) {
		struct virtio_queue *vq = &v->queues[q];

		pthread_mutex_init(&vq->lock, NULL);
		vq->max_size = v->queue_size;
		vq->kick = (struct ev_handler){ .fn = vpci_kick, .ctx = v };
		vq->kick.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vq->kick.fd < 0)
			return -errno;
	}
	vpci_reset_locked(t);
	ret = vpci_setup_pci(t, slot);
	if (!ret)
		ret = vpci_setup_irqfds(t);
	if (!ret)
		ret = pci_host_add(host, &t->pci);
	return ret;
}

void virtio_pci_stop(struct virtio_dev *v)
{
	struct virtio_transport *t = v->t;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	vpci_reset_locked(t);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->nvec; i++) {
		if (t->vec[i].fd >= 0) {
			vm_irqfd(t->vm, t->vec[i].fd, t->vec[i].gsi, false);
			close(t->vec[i].fd);
			t->vec[i].fd = -1;
		}
	}
}

void virtio_pci_free(struct virtio_dev *v)
{
	struct virtio_transport *t = v->t;

	if (!t)
		return;
	msix_destroy(&t->msix);
	for (unsigned q = 0; q < v->num_queues; q++) {
		if (v->queues[q].kick.fd >= 0)
			close(v->queues[q].kick.fd);
		pthread_mutex_destroy(&v->queues[q].lock);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
	v->t = NULL;
}
