/* SPDX-License-Identifier: MIT */
/*
 * vnet-attack's driver half (vnet-driver.c), as the attack half
 * (vnet-attack.c) uses it: port and MMIO access, the serial console, a
 * clock, PCI configuration space, and a small but correct virtio 1.x
 * driver for virtio-net over the modern PCI transport: device
 * initialization (virtio 1.x §3.1.1), the PCI capabilities (§4.1.4),
 * split virtqueues (§2.7) and the network header (§5.1.6).
 *
 * Everything lives at fixed physical addresses in the first 128 MiB,
 * which the long-mode startup identity-maps; the driver's rings and
 * buffers start at 1 MiB, well clear of the guest's own image at 0x7c00.
 */
#ifndef VNET_H
#define VNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Guest RAM as the test starts minivm (-m 128): addresses from here up
 * are not RAM. The PCI MMIO window, where minivm puts the BARs, starts at
 * 3 GiB (devices/pci.h).
 */
#define RAM_END		0x08000000ULL

/* Where the driver keeps its rings and buffers. */
#define MEM_PD_MMIO	0x00100000ULL	/* page directory for 3-4 GiB */
#define MEM_RINGS	0x00110000ULL	/* queue q's rings at + q * 0x10000 */
#define MEM_INDIRECT	0x00140000ULL	/* indirect tables, 0x2000 apart */
#define MEM_CTRL	0x00180000ULL	/* control queue command and ack */
#define MEM_RXBUF	0x00200000ULL	/* rx buffers, RXBUF_LEN apart */
#define MEM_TXBUF	0x00300000ULL	/* tx frames */
#define RXBUF_LEN	2048
#define RX_BUFS		32
#define QUEUE_MAX	256		/* most entries a ring here may have */

/* virtio status bits (§2.1) */
#define S_ACKNOWLEDGE	0x01
#define S_DRIVER	0x02
#define S_DRIVER_OK	0x04
#define S_FEATURES_OK	0x08
#define S_NEEDS_RESET	0x40
#define S_FAILED	0x80

/* Feature bits: the transport's (§6) and virtio-net's (§5.1.3) */
#define F_CSUM		0
#define F_MAC		5
#define F_HOST_TSO4	11
#define F_MRG_RXBUF	15
#define F_CTRL_VQ	17
#define F_CTRL_RX	18
#define F_INDIRECT	28
#define F_VERSION_1	32
#define FBIT(n)		(1ULL << (n))

/* Descriptor flags (§2.7.5) */
#define D_NEXT		1
#define D_WRITE		2
#define D_INDIRECT	4

/* The common configuration structure's registers (§4.1.4.3) */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF	0x1e
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30
#define CC_LEN		0x38

/* virtio-net's queues and its header, virtio_net_hdr_v1 (§5.1.6) */
#define RXQ		0
#define TXQ		1
#define CTRLQ		2
#define NET_HDR_LEN	12
#define HDR_F_NEEDS_CSUM 1
#define GSO_TCPV4	1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QUEUE_MAX];
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct {
		uint32_t id;
		uint32_t len;
	} ring[QUEUE_MAX];
};

struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

/* One virtqueue as the driver sees it. */
struct vq {
	uint16_t size;		/* 0: not set up */
	uint16_t avail_idx;	/* the driver's next avail->idx */
	uint16_t last_used;	/* the used->idx it has seen */
	uint64_t notify;	/* the doorbell's address */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

/* The device, found once; the queues, set up again by every vnet_init(). */
struct vnet {
	uint8_t dev;		/* PCI slot on bus 0 */
	uint16_t pci_id;	/* PCI device ID */
	uint64_t bar[6];	/* memory BAR addresses (0: none) */
	uint64_t common, isr, devcfg, notify_base;
	uint32_t notify_mult;
	uint64_t offered;	/* device features */
	uint64_t features;	/* negotiated by the last vnet_init() */
	uint16_t num_queues;
	uint8_t mac[6];
	struct vq q[3];
	uint32_t arp_seq;	/* makes each ARP request's sender address new */
};

extern struct vnet vnet;

/* ---- the machine ---- */
void outb(uint16_t port, uint8_t v);
uint8_t inb(uint16_t port);
uint8_t mmio_read8(uint64_t a);
uint16_t mmio_read16(uint64_t a);
uint32_t mmio_read32(uint64_t a);
uint64_t mmio_read64(uint64_t a);
void mmio_write8(uint64_t a, uint8_t v);
void mmio_write16(uint64_t a, uint16_t v);
void mmio_write32(uint64_t a, uint32_t v);
void mmio_write64(uint64_t a, uint64_t v);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

void con_puts(const char *s);
void put_dec(uint64_t v);
void put_hex(uint64_t v);
void put_mac(const uint8_t *mac);

/* Measures the TSC against the PIT; then now_us() counts microseconds. */
void clock_init(void);
uint64_t now_us(void);

/* Maps 3-4 GiB, the PCI MMIO window, uncached, next to the startup's 1 GiB. */
void map_mmio_window(void);

/* ---- the device ---- */
/* Finds virtio-net on bus 0, turns on decoding, reads its capabilities. */
bool vnet_probe(void);
uint8_t vnet_status(void);
void vnet_set_status(uint8_t s);
/* Writes 0 to device_status and waits (bounded) to read 0 back. */
bool vnet_reset(void);
/*
 * A complete correct initialization (§3.1.1): reset, ACKNOWLEDGE, DRIVER,
 * features (want & offered, always VERSION_1), FEATURES_OK, rx, tx and
 * (with CTRL_VQ) control queue, rx buffers, DRIVER_OK. NULL, or what went
 * wrong. flags: INIT_*.
 */
#define INIT_VERBOSE		1	/* print each step */
#define INIT_FEATURES_ONLY	2	/* stop after FEATURES_OK */
#define INIT_NO_RXBUFS		4	/* leave the rx ring empty */
const char *vnet_init(uint64_t want, unsigned int flags);
/* Queue setup only (select, size, addresses, enable): NULL, or what failed. */
const char *vq_setup(unsigned int q, uint16_t size);
/* Queue q's rings at their usual place, avail and used zeroed, for size. */
void vq_layout(unsigned int q, uint16_t size);

/* Makes chain head available on q; vq_kick also rings q's doorbell. */
void vq_add(unsigned int q, uint16_t head);
void vq_kick(unsigned int q, uint16_t head);
void vq_notify(unsigned int q);

/* How long to wait for what must happen, and for what must not. */
#define WAIT_US		2000000
#define IDLE_US		30000

/* What the device did about a request. */
#define R_USED		1
#define R_NEEDS_RESET	2
/*
 * Waits up to timeout_us for q's used ring to move or NEEDS_RESET to show;
 * R_* bits, 0 on timeout. A used entry is consumed: *len gets its length.
 */
unsigned int vq_wait(unsigned int q, uint64_t timeout_us, uint32_t *len);

/*
 * Writes a 12-byte zero header and an ARP request ("who has 10.0.2.2?")
 * at buf; returns its length. *sender gets the request's sender address,
 * new each time, to tell replies apart.
 */
uint32_t build_arp(void *buf, uint32_t *sender);
/*
 * Waits up to timeout_us for the ARP replies to senders[0 .. n), n <= 32,
 * until the one to the last has come. Returns bit k set for each reply
 * seen to senders[k].
 */
unsigned int wait_arp_replies(const uint32_t *senders, unsigned int n, uint64_t timeout_us);
/*
 * The proof that the device works: an ARP request on tx, which must come
 * back used, and the reply on rx. NULL, or what failed.
 */
const char *tx_check(void);

/* A control queue command: class, command, data; returns the ack or -1. */
int ctrl_cmd(uint8_t cls, uint8_t cmd, const void *data, uint32_t len);

#endif
