// SPDX-License-Identifier: MIT
/*
 * The driver half of vnet-attack: a small, correct virtio-net driver in
 * freestanding 64-bit C, the kind a boot loader or a unikernel has. It
 * follows the virtio 1.x specification:
 *
 *   §4.1.2, §4.1.4  find the PCI function and its vendor capabilities,
 *                   which say where in which BAR the common configuration,
 *                   the doorbells, the ISR and the device's own
 *                   configuration are;
 *   §3.1.1          initialize it: reset, ACKNOWLEDGE, DRIVER, features,
 *                   FEATURES_OK, queues, DRIVER_OK;
 *   §2.7            split virtqueues: descriptor table, available ring,
 *                   used ring, all in guest RAM;
 *   §5.1.6          every frame behind a 12-byte virtio_net_hdr_v1.
 *
 * It uses no interrupts (the CPU runs with them off): it polls the used
 * rings, which costs no VM exit, and reads device_status through MMIO,
 * which costs one. Time comes from the TSC, measured once against the PIT.
 *
 * vnet-attack.c then breaks every rule of it on purpose.
 */
#include "teach.h"
#include "vnet.h"

struct vnet vnet;

/* ---- the machine ---- */

void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/*
 * MMIO: one mov of exactly the width asked for, each one VM exit. In
 * inline assembly so that nothing can merge, split or reorder them; the
 * "memory" clobber also orders them against the ring writes before them
 * (x86 keeps stores in order, so the device sees the ring first).
 */
uint8_t mmio_read8(uint64_t a)
{
	uint8_t v;

	asm volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory");
	return v;
}

uint16_t mmio_read16(uint64_t a)
{
	uint16_t v;

	asm volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

uint32_t mmio_read32(uint64_t a)
{
	uint32_t v;

	asm volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

uint64_t mmio_read64(uint64_t a)
{
	uint64_t v;

	asm volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory");
	return v;
}

void mmio_write8(uint64_t a, uint8_t v)
{
	asm volatile("movb %0, (%1)" : : "q"(v), "r"(a) : "memory");
}

void mmio_write16(uint64_t a, uint16_t v)
{
	asm volatile("movw %0, (%1)" : : "r"(v), "r"(a) : "memory");
}

void mmio_write32(uint64_t a, uint32_t v)
{
	asm volatile("movl %0, (%1)" : : "r"(v), "r"(a) : "memory");
}

void mmio_write64(uint64_t a, uint64_t v)
{
	asm volatile("movq %0, (%1)" : : "r"(v), "r"(a) : "memory");
}

/*
 * The compiler may turn struct copies and zeroing loops into calls to
 * these even in freestanding code, so they must exist; string
 * instructions keep it from turning them into calls to themselves. Eight
 * bytes a step where it can: on PVM each step of a rep costs about as much
 * as an instruction, which is far from free (see README.md).
 */
void *memset(void *d, int c, size_t n)
{
	uint64_t v = (uint8_t)c * 0x0101010101010101ULL;
	size_t q = n / 8, r = n % 8;
	void *p = d;

	asm volatile("rep stosq" : "+D"(p), "+c"(q) : "a"(v) : "memory");
	asm volatile("rep stosb" : "+D"(p), "+c"(r) : "a"(v) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	size_t q = n / 8, r = n % 8;
	void *p = d;

	asm volatile("rep movsq" : "+D"(p), "+S"(s), "+c"(q) : : "memory");
	asm volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(r) : : "memory");
	return d;
}

/* Reads a field the device may change behind the compiler's back. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() asm volatile("" : : : "memory")

static inline void cpu_relax(void)
{
	asm volatile("pause");
}

/* ---- the serial console ---- */

static void con_putc(char c)
{
	while (!(inb(COM1_LSR) & LSR_THRE))
		;
	outb(COM1, c);
}

void con_puts(const char *s)
{
	while (*s)
		con_putc(*s++);
}

void put_dec(uint64_t v)
{
	char buf[21];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	con_puts(&buf[i]);
}

void put_hex(uint64_t v)
{
	char buf[19];
	int i = sizeof(buf) - 1;

	buf[i] = '\0';
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	con_puts(&buf[i]);
}

void put_mac(const uint8_t *mac)
{
	for (int i = 0; i < 6; i++) {
		con_putc("0123456789abcdef"[mac[i] >> 4]);
		con_putc("0123456789abcdef"[mac[i] & 15]);
		if (i < 5)
			con_putc(':');
	}
}

/* ---- time ---- */

#define PIT_HZ		1193182
#define PIT_CH2		0x42
#define PIT_CMD		0x43
#define PORT_B		0x61	/* bit 0: gate of channel 2; bit 5: its output */

static uint64_t tsc_per_us;

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/*
 * The PIT's channel 2 in mode 0 (interrupt on terminal count) counts 10 ms
 * down once; its output, readable in port 0x61, goes high at the end. The
 * PIT is inside KVM, so each poll is one port exit and no more.
 */
void clock_init(void)
{
	uint16_t count = PIT_HZ / 100;
	uint64_t t0, t1;
	uint32_t spins = 0;

	outb(PORT_B, (inb(PORT_B) & ~0x02) | 0x01); /* gate on, speaker off */
	outb(PIT_CMD, 0xb0);	/* channel 2, lobyte/hibyte, mode 0, binary */
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
	t0 = rdtsc();
	while (!(inb(PORT_B) & 0x20) && ++spins < 1000000)
		;
	t1 = rdtsc();
	tsc_per_us = (t1 - t0) / 10000;
	if (!tsc_per_us)
		tsc_per_us = 1000; /* no PIT? then guess 1 GHz rather than divide by 0 */
}

uint64_t now_us(void)
{
	return rdtsc() / tsc_per_us;
}

/* ---- paging ---- */

#define PG_P	0x001
#define PG_RW	0x002
#define PG_PWT	0x008
#define PG_PCD	0x010	/* no caching: device registers are not memory */
#define PG_PS	0x080
#define PG_ADDR	0x000ffffffffff000ULL

/*
 * The startup code (longmode.S) identity-maps the first GiB, enough for
 * RAM but not for the PCI BARs, which minivm places from 3 GiB up. One
 * more page directory of 2 MiB pages, hung into the fourth slot of the
 * page-directory-pointer table, maps 3-4 GiB the same way. The startup's
 * tables are found through CR3, as a kernel finds them.
 */
void map_mmio_window(void)
{
	uint64_t cr3, *pml4, *pdpt, *pd = (uint64_t *)MEM_PD_MMIO;

	asm volatile("mov %%cr3, %0" : "=r"(cr3));
	pml4 = (uint64_t *)(cr3 & PG_ADDR);
	pdpt = (uint64_t *)(pml4[0] & PG_ADDR);
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (3ULL << 30) + (i << 21) + (PG_P | PG_RW | PG_PS | PG_PWT | PG_PCD);
	pdpt[3] = MEM_PD_MMIO | PG_P | PG_RW;
	/* Reloading CR3 flushes the TLB: no stale "not present" stays. */
	asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

/* ---- PCI configuration space, mechanism #1 (ports 0xcf8/0xcfc) ---- */

#define PCI_ADDR	0xcf8
#define PCI_DATA	0xcfc

static void pci_select(uint8_t dev, uint8_t off)
{
	outl(PCI_ADDR, 0x80000000u | (uint32_t)dev << 11 | (off & 0xfc));
}

static uint32_t pci_read32(uint8_t dev, uint8_t off)
{
	pci_select(dev, off);
	return inl(PCI_DATA);
}

static uint8_t pci_read8(uint8_t dev, uint8_t off)
{
	return pci_read32(dev, off) >> (off & 3) * 8;
}

static void pci_write16(uint8_t dev, uint8_t off, uint16_t v)
{
	pci_select(dev, off);
	outw(PCI_DATA + (off & 2), v);
}

#define PCI_COMMAND	0x04
#define PCI_CMD_MEM	0x0002
#define PCI_CMD_MASTER	0x0004
#define PCI_CMD_INTX_OFF 0x0400	/* we poll: no interrupt line, please */
#define PCI_STATUS_CAPS	0x0010
#define PCI_CAP_PTR	0x34
#define PCI_CAP_VNDR	0x09

/* virtio_pci_cap.cfg_type (§4.1.4) */
#define VCAP_COMMON	1
#define VCAP_NOTIFY	2
#define VCAP_ISR	3
#define VCAP_DEVICE	4

static void read_bars(uint8_t dev)
{
	for (unsigned int i = 0; i < 6; i++) {
		uint32_t v = pci_read32(dev, 0x10 + 4 * i);

		vnet.bar[i] = 0;
		if (v & 1)
			continue; /* an I/O BAR: virtio 1.x structures are in memory */
		vnet.bar[i] = v & ~0xfULL;
		if ((v & 6) == 4 && i < 5) { /* 64-bit: the next BAR is the high half */
			vnet.bar[i] |= (uint64_t)pci_read32(dev, 0x10 + 4 * (i + 1)) << 32;
			vnet.bar[++i] = 0;
		}
	}
}

/*
 * Walks the capability list for the four virtio structures, each a
 * (BAR, offset) pair; the first of each type wins (§4.1.4.1). The list
 * is the device's, so its length is bounded here: 48 entries fill the
 * 192 bytes of capability space.
 */
static bool read_caps(uint8_t dev)
{
	uint8_t at = pci_read8(dev, PCI_CAP_PTR) & 0xfc;

	if (!(pci_read32(dev, PCI_COMMAND) >> 16 & PCI_STATUS_CAPS))
		return false;
	for (int n = 0; at && n < 48; n++, at = pci_read8(dev, at + 1) & 0xfc) {
		uint8_t type = pci_read8(dev, at + 3), bar = pci_read8(dev, at + 4);
		uint64_t addr;

		if (pci_read8(dev, at) != PCI_CAP_VNDR || bar > 5 || !vnet.bar[bar])
			continue;
		addr = vnet.bar[bar] + pci_read32(dev, at + 8);
		if (type == VCAP_COMMON && !vnet.common) {
			vnet.common = addr;
		} else if (type == VCAP_NOTIFY && !vnet.notify_base) {
			vnet.notify_base = addr;
			vnet.notify_mult = pci_read32(dev, at + 16);
		} else if (type == VCAP_ISR && !vnet.isr) {
			vnet.isr = addr;
		} else if (type == VCAP_DEVICE && !vnet.devcfg) {
			vnet.devcfg = addr;
		}
	}
	return vnet.common && vnet.notify_base && vnet.isr && vnet.devcfg;
}

static bool mapped(uint64_t a)
{
	return a >= 3ULL << 30 && a < 4ULL << 30;
}

bool vnet_probe(void)
{
	for (uint8_t dev = 0; dev < 32; dev++) {
		uint32_t id = pci_read32(dev, 0);
		uint16_t cmd;

		if ((id & 0xffff) != 0x1af4)
			continue;
		/* 0x1041: modern virtio-net; 0x1000: transitional, net by subsystem */
		if (id >> 16 != 0x1041 &&
		    !(id >> 16 == 0x1000 && pci_read32(dev, 0x2c) >> 16 == 1))
			continue;
		vnet.dev = dev;
		vnet.pci_id = id >> 16;
		read_bars(dev);
		if (!read_caps(dev))
			return false;
		if (!mapped(vnet.common) || !mapped(vnet.notify_base) || !mapped(vnet.isr) ||
		    !mapped(vnet.devcfg))
			return false;
		cmd = pci_read32(dev, PCI_COMMAND);
		pci_write16(dev, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
		return true;
	}
	return false;
}

/* ---- the device ---- */

uint8_t vnet_status(void)
{
	return mmio_read8(vnet.common + CC_STATUS);
}

void vnet_set_status(uint8_t s)
{
	mmio_write8(vnet.common + CC_STATUS, s);
}

/*
 * §4.1.4.3.2: after writing 0 the driver waits until it reads 0 back; the
 * reset may take the device a while. Bounded, like everything here.
 */
bool vnet_reset(void)
{
	vnet_set_status(0);
	for (int i = 0; i < 1000; i++)
		if (vnet_status() == 0)
			return true;
	return false;
}

static void cc_write64(unsigned int off, uint64_t v)
{
	/* Two 32-bit halves, low first, as §4.1.3.1 allows and Linux does. */
	mmio_write32(vnet.common + off, (uint32_t)v);
	mmio_write32(vnet.common + off + 4, v >> 32);
}

void vq_layout(unsigned int q, uint16_t size)
{
	struct vq *vq = &vnet.q[q];
	uint64_t base = MEM_RINGS + q * 0x10000;

	/*
	 * Descriptors 16-aligned, avail 2-, used 4-aligned (§2.7): pages
	 * here. Both rings start zeroed (no entries, no flags); the
	 * descriptors need not, the device reads only those offered.
	 */
	memset((void *)(base + 0x1000), 0, sizeof(struct vring_avail));
	memset((void *)(base + 0x2000), 0, sizeof(struct vring_used));
	vq->size = size;
	vq->avail_idx = 0;
	vq->last_used = 0;
	vq->desc = (struct vring_desc *)base;
	vq->avail = (struct vring_avail *)(base + 0x1000);
	vq->used = (struct vring_used *)(base + 0x2000);
}

const char *vq_setup(unsigned int q, uint16_t size)
{
	struct vq *vq = &vnet.q[q];
	uint16_t max;

	mmio_write16(vnet.common + CC_Q_SELECT, q);
	max = mmio_read16(vnet.common + CC_Q_SIZE);
	if (!max)
		return "queue not available (size 0)";
	if (size > max)
		size = max;
	if (size > QUEUE_MAX)
		size = QUEUE_MAX;
	vq_layout(q, size);
	mmio_write16(vnet.common + CC_Q_SIZE, size);
	cc_write64(CC_Q_DESC, (uint64_t)vq->desc);
	cc_write64(CC_Q_DRIVER, (uint64_t)vq->avail);
	cc_write64(CC_Q_DEVICE, (uint64_t)vq->used);
	vq->notify = vnet.notify_base +
		     (uint64_t)mmio_read16(vnet.common + CC_Q_NOTIFY_OFF) * vnet.notify_mult;
	mmio_write16(vnet.common + CC_Q_ENABLE, 1);
	if (mmio_read16(vnet.common + CC_Q_ENABLE) != 1) {
		vq->size = 0;
		return "queue_enable did not stick";
	}
	return 0;
}

void vq_notify(unsigned int q)
{
	/* Without NOTIFICATION_DATA the value written is the queue index. */
	mmio_write16(vnet.q[q].notify, q);
}

void vq_add(unsigned int q, uint16_t head)
{
	struct vq *vq = &vnet.q[q];

	WRITE_ONCE(vq->avail->ring[vq->avail_idx & (vq->size - 1)], head);
	barrier(); /* the entry before the index that hands it over */
	WRITE_ONCE(vq->avail->idx, ++vq->avail_idx);
}

void vq_kick(unsigned int q, uint16_t head)
{
	vq_add(q, head);
	vq_notify(q);
}

unsigned int vq_wait(unsigned int q, uint64_t timeout_us, uint32_t *len)
{
	struct vq *vq = &vnet.q[q];
	uint64_t deadline = now_us() + timeout_us;
	unsigned int r;

	for (;;) {
		/*
		 * Status first: a device that returns a chain and then gives up
		 * (rx breaking after the tx that caused the frame) must not look
		 * as if it had given up without returning it.
		 */
		r = vnet_status() & S_NEEDS_RESET ? R_NEEDS_RESET : 0;
		if (READ_ONCE(vq->used->idx) != vq->last_used)
			r |= R_USED;
		if (r & R_USED) {
			barrier(); /* the entry after the index (x86 keeps loads in order) */
			if (len)
				*len = READ_ONCE(vq->used->ring[vq->last_used & (vq->size - 1)].len);
			vq->last_used++;
		}
		if (r || now_us() > deadline)
			return r;
	}
}

const char *vnet_init(uint64_t want, unsigned int flags)
{
	const char *err;
	uint64_t f;

	if (!vnet_reset())
		return "reset: device_status did not read back 0";
	vnet_set_status(S_ACKNOWLEDGE);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER);
	mmio_write32(vnet.common + CC_DFSELECT, 0);
	vnet.offered = mmio_read32(vnet.common + CC_DF);
	mmio_write32(vnet.common + CC_DFSELECT, 1);
	vnet.offered |= (uint64_t)mmio_read32(vnet.common + CC_DF) << 32;
	if (!(vnet.offered & FBIT(F_VERSION_1)))
		return "the device does not offer VERSION_1";
	f = (want | FBIT(F_VERSION_1)) & vnet.offered;
	vnet.features = f;
	mmio_write32(vnet.common + CC_GFSELECT, 0);
	mmio_write32(vnet.common + CC_GF, (uint32_t)f);
	mmio_write32(vnet.common + CC_GFSELECT, 1);
	mmio_write32(vnet.common + CC_GF, f >> 32);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(vnet_status() & S_FEATURES_OK))
		return "the device refused our features";
	if (flags & INIT_VERBOSE) {
		con_puts("vnet-attack: reset, ACKNOWLEDGE, DRIVER; device features ");
		put_hex(vnet.offered);
		con_puts(", driver features ");
		put_hex(f);
		con_puts(": FEATURES_OK\r\n");
	}
	if (flags & INIT_FEATURES_ONLY)
		return 0;

	vnet.num_queues = mmio_read16(vnet.common + CC_NUM_QUEUES);
	vnet.q[CTRLQ].size = 0;
	err = vq_setup(RXQ, QUEUE_MAX);
	if (!err)
		err = vq_setup(TXQ, QUEUE_MAX);
	if (!err && (f & FBIT(F_CTRL_VQ)))
		err = vq_setup(CTRLQ, 64); /* less than offered: a driver may */
	if (err)
		return err;
	/* rx buffers, device-writable, one frame each (no MRG_RXBUF) */
	for (uint16_t i = 0; i < RX_BUFS && !(flags & INIT_NO_RXBUFS); i++) {
		vnet.q[RXQ].desc[i] = (struct vring_desc){
			.addr = MEM_RXBUF + i * RXBUF_LEN, .len = RXBUF_LEN, .flags = D_WRITE,
		};
		vq_add(RXQ, i);
	}
	for (int i = 0; i < 6; i++)
		vnet.mac[i] = mmio_read8(vnet.devcfg + i);
	vnet_set_status(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (vnet_status() != (S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return "DRIVER_OK: device_status is not what was written";
	vq_notify(RXQ);
	if (flags & INIT_VERBOSE) {
		con_puts("vnet-attack: queues: ");
		put_dec(vnet.num_queues);
		con_puts(", rx and tx of ");
		put_dec(vnet.q[RXQ].size);
		if (vnet.q[CTRLQ].size) {
			con_puts(", control of ");
			put_dec(vnet.q[CTRLQ].size);
		}
		con_puts("; DRIVER_OK; MAC ");
		put_mac(vnet.mac);
		con_puts("\r\n");
	}
	return 0;
}

/* ---- frames ---- */

/* The slirp gateway's address, and the host's in the test's namespace. */
static const uint8_t target_ip[4] = { 10, 0, 2, 2 };

uint32_t build_arp(void *buf, uint32_t *sender)
{
	uint8_t *p = buf, *f = p + NET_HDR_LEN;
	/* 10.0.2.20 .. 10.0.2.219, a new one each time */
	uint8_t spa[4] = { 10, 0, 2, 20 + vnet.arp_seq++ % 200 };

	memset(p, 0, NET_HDR_LEN + 60); /* no offloads; padded to 60 bytes */
	memset(f, 0xff, 6);		/* to everyone */
	memcpy(f + 6, vnet.mac, 6);
	f[12] = 0x08;			/* ethertype ARP */
	f[13] = 0x06;
	f[15] = 1;			/* Ethernet */
	f[16] = 0x08;			/* IPv4 */
	f[18] = 6;
	f[19] = 4;
	f[21] = 1;			/* request */
	memcpy(f + 22, vnet.mac, 6);
	memcpy(f + 28, spa, 4);
	memcpy(f + 38, target_ip, 4);	/* who has 10.0.2.2? */
	memcpy(sender, spa, 4);
	return NET_HDR_LEN + 60;
}

/* Is the frame in rx buffer id an ARP reply to sender? */
static bool is_reply(uint32_t id, uint32_t len, uint32_t sender)
{
	const uint8_t *f = (const uint8_t *)(MEM_RXBUF + (uint64_t)id * RXBUF_LEN) + NET_HDR_LEN;
	uint32_t tpa;

	if (id >= RX_BUFS || len < NET_HDR_LEN + 42)
		return false;
	memcpy(&tpa, f + 38, 4);
	return f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 && tpa == sender;
}

/*
 * Looks at every frame that comes in, gives each buffer straight back, and
 * returns once the reply to the last sender was among them. Polls memory
 * only: no VM exits while nothing comes, one doorbell for the buffers
 * given back.
 */
unsigned int wait_arp_replies(const uint32_t *senders, unsigned int n, uint64_t timeout_us)
{
	struct vq *vq = &vnet.q[RXQ];
	uint64_t deadline = now_us() + timeout_us;
	unsigned int seen = 0;
	bool posted = false;

	while (!(seen >> (n - 1) & 1) && now_us() <= deadline) {
		while (READ_ONCE(vq->used->idx) != vq->last_used) {
			uint32_t i = vq->last_used++ & (vq->size - 1);
			uint32_t id = READ_ONCE(vq->used->ring[i].id);
			uint32_t len = READ_ONCE(vq->used->ring[i].len);

			barrier();
			for (unsigned int k = 0; k < n; k++)
				if (is_reply(id, len, senders[k]))
					seen |= 1u << k;
			if (id < RX_BUFS) {
				vq_add(RXQ, id);
				posted = true;
			}
		}
		cpu_relax();
	}
	if (posted)
		vq_notify(RXQ);
	return seen;
}

const char *tx_check(void)
{
	struct vq *tx = &vnet.q[TXQ];
	uint32_t sender, len = build_arp((void *)MEM_TXBUF, &sender);
	unsigned int r;

	tx->desc[0] = (struct vring_desc){ .addr = MEM_TXBUF, .len = len };
	vq_kick(TXQ, 0);
	r = vq_wait(TXQ, WAIT_US, NULL);
	if (r & R_NEEDS_RESET)
		return "tx: the device wants a reset";
	if (!r)
		return "tx: the frame did not come back used";
	if (!wait_arp_replies(&sender, 1, WAIT_US))
		return "tx: used, but no ARP reply came";
	return 0;
}

int ctrl_cmd(uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	struct vq *vq = &vnet.q[CTRLQ];
	uint8_t *c = (uint8_t *)MEM_CTRL, *ack = (uint8_t *)(MEM_CTRL + 0x1000);
	unsigned int r;

	c[0] = cls;
	c[1] = cmd;
	memcpy(c + 2, data, len);
	*ack = 0xee; /* neither OK nor ERR: shows whether the device wrote it */
	vq->desc[0] = (struct vring_desc){
		.addr = MEM_CTRL, .len = 2 + len, .flags = D_NEXT, .next = 1,
	};
	vq->desc[1] = (struct vring_desc){ .addr = (uint64_t)ack, .len = 1, .flags = D_WRITE };
	vq_kick(CTRLQ, 0);
	r = vq_wait(CTRLQ, WAIT_US, NULL);
	if (r != R_USED)
		return -1;
	return READ_ONCE(*ack);
}
