// SPDX-License-Identifier: MIT
/*
 * The UART driven through the port I/O bus the way the Linux 8250 driver
 * drives it, with fakes recording what reaches the console and the IRQ line.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "devices/serial8250.h"
#include "tests/unit/unit.h"

#define BASE SERIAL_COM1_BASE
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct fake {
	pthread_mutex_t lock;	/* the threaded test calls in concurrently */
	uint8_t out[512];
	size_t out_len;		/* bytes written; only the first 512 are kept */
	int level;		/* last level set, -1 before any */
	int edges;		/* 0 -> 1 transitions since forget_irqs() */
	size_t nr_sets;
	unsigned gsi;
	int notified;
};

static struct fake fk;
static struct bus pio;
static struct serial8250 uart;

static void fake_write(void *ctx, const uint8_t *buf, size_t len)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < len; i++, f->out_len++) {
		if (f->out_len < sizeof(f->out))
			f->out[f->out_len] = buf[i];
	}
	pthread_mutex_unlock(&f->lock);
}

static void fake_irq(void *ctx, unsigned gsi, int level)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->edges += f->level == 0 && level == 1;
	f->level = level;
	f->nr_sets++;
	f->gsi = gsi;
	pthread_mutex_unlock(&f->lock);
}

static void fake_notify(void *ctx)
{
	__atomic_fetch_add(&((struct fake *)ctx)->notified, 1, __ATOMIC_RELAXED);
}

static void setup(void)
{
	struct irq_line irq = { .set = fake_irq, .ctx = &fk, .gsi = SERIAL_COM1_IRQ };
	struct serial_out out = { .write = fake_write, .ctx = &fk };

	memset(&fk, 0, sizeof(fk));
	pthread_mutex_init(&fk.lock, NULL);
	fk.level = -1;
	bus_init(&pio, "pio");
	serial8250_init(&uart, irq, out);
	serial8250_set_rx_notify(&uart, fake_notify, &fk);
	ck_assert_int_eq(serial8250_register(&uart, &pio, BASE), 0);
}

static void teardown(void)
{
	bus_destroy(&pio);
	serial8250_destroy(&uart);
}

static uint8_t in8(unsigned reg)
{
	uint8_t v = 0;

	ck_assert(bus_read(&pio, BASE + reg, &v, 1));
	return v;
}

static void out8(unsigned reg, uint8_t v)
{
	ck_assert(bus_write(&pio, BASE + reg, &v, 1));
}

static void forget_irqs(void)
{
	fk.edges = 0;
}

/* A fresh edge is a 0 immediately followed by a 1. */
static int count_edges(void)
{
	return fk.edges;
}

static int last_level(void)
{
	return fk.level;
}

START_TEST(test_ier_readback)
{
	out8(IER, 0);
	ck_assert_uint_eq(in8(IER), 0);
	out8(IER, 0x0f);
	ck_assert_uint_eq(in8(IER), 0x0f);
	out8(IER, 0xff); /* the Xscale UUE probe must fail */
	ck_assert_uint_eq(in8(IER), 0x0f);
}
END_TEST

START_TEST(test_reset_state)
{
	ck_assert_uint_eq(in8(LSR), 0x60);
	ck_assert_uint_eq(in8(IIR), 0x01);
	ck_assert_uint_eq(in8(MSR), 0xb0);
	ck_assert_uint_eq(fk.nr_sets, 0);
}
END_TEST

START_TEST(test_scratch)
{
	out8(SCR, 0x5a);
	ck_assert_uint_eq(in8(SCR), 0x5a);
	out8(LCR, 0x03);
	ck_assert_uint_eq(in8(LCR), 0x03);
}
END_TEST

START_TEST(test_thr_output)
{
	const char *msg = "hello\n";

	for (const char *p = msg; *p; p++)
		out8(THR, *p);
	ck_assert_uint_eq(fk.out_len, strlen(msg));
	ck_assert_mem_eq(fk.out, msg, strlen(msg));
	ck_assert_uint_eq(in8(LSR) & 0x60, 0x60);
}
END_TEST

START_TEST(test_iir_thre)
{
	out8(IER, 0x02);
	ck_assert_uint_eq(in8(IIR), 0x02);
	ck_assert_uint_eq(in8(IIR), 0x01);
	out8(THR, 'x');
	ck_assert_uint_eq(in8(IIR), 0x02);
	ck_assert_uint_eq(in8(IIR), 0x01);
	/* The driver's UART_BUG_THRE test: re-enabling re-asserts THRE. */
	out8(IER, 0);
	out8(IER, 0x02);
	ck_assert_uint_eq(in8(IIR), 0x02);
}
END_TEST

START_TEST(test_edge_per_thr_write)
{
	out8(MCR, MCR_OUT2);
	out8(IER, 0x02);
	ck_assert_int_eq(count_edges(), 1);
	ck_assert_int_eq(last_level(), 1);
	ck_assert_uint_eq(fk.gsi, SERIAL_COM1_IRQ);

	/* Each byte gets its own edge, whether or not IIR was read. */
	forget_irqs();
	out8(THR, 'a');
	ck_assert_int_eq(count_edges(), 1);
	out8(THR, 'b');
	ck_assert_int_eq(count_edges(), 2);
	ck_assert_uint_eq(in8(IIR), 0x02);
	ck_assert_int_eq(last_level(), 0); /* nothing pending any more */
	out8(THR, 'c');
	ck_assert_int_eq(count_edges(), 3);
	ck_assert_int_eq(last_level(), 1);

	/* Turning ETBEI off with nothing else pending lowers the line. */
	out8(IER, 0);
	ck_assert_int_eq(last_level(), 0);
}
END_TEST

START_TEST(test_no_irq_without_out2)
{
	out8(IER, 0x0f);
	out8(THR, 'a');
	serial8250_receive(&uart, (const uint8_t *)"x", 1);
	ck_assert_uint_eq(in8(IIR), 0x04);
	ck_assert_int_eq(count_edges(), 0);
	ck_assert_int_ne(last_level(), 1);

	/* Setting OUT2 with an interrupt pending raises it; clearing drops it. */
	out8(MCR, MCR_OUT2);
	ck_assert_int_eq(count_edges(), 1);
	out8(MCR, 0);
	ck_assert_int_eq(last_level(), 0);
}
END_TEST

START_TEST(test_rx)
{
	const uint8_t msg[] = "abc";

	out8(FCR, 0x01);
	out8(MCR, MCR_OUT2);
	out8(IER, 0x01);
	ck_assert_uint_eq(serial8250_receive(&uart, msg, 3), 3);
	ck_assert_uint_eq(in8(LSR) & 0x01, 0x01);
	ck_assert_uint_eq(in8(IIR), 0xc4);
	ck_assert_int_eq(count_edges(), 1);
	ck_assert_uint_eq(in8(RBR), 'a');
	ck_assert_uint_eq(in8(RBR), 'b');
	ck_assert_uint_eq(in8(RBR), 'c');
	ck_assert_uint_eq(in8(LSR) & 0x01, 0);
	ck_assert_uint_eq(in8(IIR), 0xc1);
	ck_assert_int_eq(last_level(), 0);
	ck_assert_uint_eq(in8(RBR), 0); /* empty FIFO doesn't underflow */
}
END_TEST

START_TEST(test_rx_priority_over_thre)
{
	out8(IER, 0x03);
	serial8250_receive(&uart, (const uint8_t *)"z", 1);
	ck_assert_uint_eq(in8(IIR), 0x04);
	ck_assert_uint_eq(in8(RBR), 'z');
	ck_assert_uint_eq(in8(IIR), 0x02);
	ck_assert_uint_eq(in8(IIR), 0x01);
}
END_TEST

START_TEST(test_rx_fifo_limit)
{
	uint8_t buf[20];

	for (int i = 0; i < 20; i++)
		buf[i] = 'A' + i;
	out8(FCR, 0x01);
	ck_assert_uint_eq(serial8250_rx_room(&uart), 16);
	ck_assert_uint_eq(serial8250_receive(&uart, buf, 20), 16);
	ck_assert_uint_eq(serial8250_rx_room(&uart), 0);
	ck_assert_uint_eq(serial8250_receive(&uart, buf + 16, 4), 0);
	ck_assert_int_eq(fk.notified, 0);

	ck_assert_uint_eq(in8(RBR), 'A');
	ck_assert_int_eq(fk.notified, 1);
	ck_assert_uint_eq(serial8250_rx_room(&uart), 1);
	ck_assert_uint_eq(serial8250_receive(&uart, buf + 16, 4), 1);
	for (int i = 1; i < 17; i++)
		ck_assert_uint_eq(in8(RBR), 'A' + i);
	ck_assert_uint_eq(in8(LSR) & 0x01, 0);
}
END_TEST

START_TEST(test_rx_no_fifo)
{
	const uint8_t msg[] = "xy";

	ck_assert_uint_eq(serial8250_receive(&uart, msg, 2), 1);
	ck_assert_uint_eq(in8(RBR), 'x');
	ck_assert_int_eq(fk.notified, 1);
	ck_assert_uint_eq(serial8250_receive(&uart, msg + 1, 1), 1);
	ck_assert_uint_eq(in8(RBR), 'y');
}
END_TEST

START_TEST(test_fcr_clear_rx)
{
	uint8_t buf[16] = { 0 };

	out8(FCR, 0x01);
	ck_assert_uint_eq(serial8250_receive(&uart, buf, 16), 16);
	out8(FCR, 0x03);
	ck_assert_uint_eq(in8(LSR) & 0x01, 0);
	ck_assert_uint_eq(serial8250_rx_room(&uart), 16);
	ck_assert_int_eq(fk.notified, 1);
}
END_TEST

START_TEST(test_fcr_fifo_bits)
{
	ck_assert_uint_eq(in8(IIR) & 0xc0, 0);
	out8(FCR, 0x01);
	ck_assert_uint_eq(in8(IIR), 0xc1);
	out8(IER, 0x02);
	ck_assert_uint_eq(in8(IIR), 0xc2);
	out8(FCR, 0);
	ck_assert_uint_eq(in8(IIR), 0x01);
	/* Without FCR0 the other bits are not programmed. */
	out8(FCR, 0xc6);
	ck_assert_uint_eq(in8(IIR) & 0xc0, 0);
}
END_TEST

START_TEST(test_dlab)
{
	out8(IER, 0x05);
	out8(LCR, 0x83);
	out8(DLL, 0x01);
	out8(DLM, 0x02);
	ck_assert_uint_eq(in8(DLL), 0x01);
	ck_assert_uint_eq(in8(DLM), 0x02);
	out8(LCR, 0x03);
	ck_assert_uint_eq(fk.out_len, 0);
	ck_assert_uint_eq(in8(IER), 0x05);
	out8(LCR, 0x83);
	ck_assert_uint_eq(in8(DLL), 0x01);
}
END_TEST

/* What the driver's autoconfig checks before believing in a UART. */
START_TEST(test_loopback_msr)
{
	out8(MCR, MCR_LOOP | 0x0a);
	ck_assert_uint_eq(in8(MSR) & 0xf0, 0x90);
	out8(MCR, MCR_LOOP | 0x05);
	ck_assert_uint_eq(in8(MSR) & 0xf0, 0x60);
	out8(MCR, MCR_LOOP);
	/* RI fell: TERI; DSR fell: DDSR. */
	ck_assert_uint_eq(in8(MSR), 0x06);
	ck_assert_uint_eq(in8(MSR), 0x00);
	out8(MCR, 0);
	ck_assert_uint_eq(in8(MSR) & 0xf0, 0xb0);
}
END_TEST

START_TEST(test_loopback_data)
{
	out8(FCR, 0x07);
	out8(MCR, MCR_LOOP | MCR_OUT2);
	out8(IER, 0x01);
	for (int i = 0; i < 20; i++)
		out8(THR, i);
	ck_assert_uint_eq(fk.out_len, 0);
	ck_assert_int_eq(count_edges(), 0); /* loopback gates the IRQ pin */
	ck_assert_uint_eq(in8(IIR), 0xc4);
	/* Outside input is cut off in loopback. */
	ck_assert_uint_eq(serial8250_rx_room(&uart), 0);
	ck_assert_uint_eq(serial8250_receive(&uart, (const uint8_t *)"q", 1), 0);

	int n = 0;

	while (in8(LSR) & 0x01)
		ck_assert_uint_eq(in8(RBR), n++);
	ck_assert_int_eq(n, 16);

	fk.notified = 0;
	out8(MCR, MCR_OUT2);
	ck_assert_int_eq(fk.notified, 1);
	ck_assert_uint_eq(serial8250_receive(&uart, (const uint8_t *)"q", 1), 1);
	ck_assert_int_eq(last_level(), 1);
}
END_TEST

START_TEST(test_bad_accesses)
{
	uint8_t big[16];
	uint32_t v32 = 0xffffffff;

	/* Wide reads see the register in the low byte, zeros above. */
	out8(SCR, 0xa5);
	ck_assert(bus_read(&pio, BASE + SCR, &v32, 4));
	ck_assert_uint_eq(v32, 0xa5);
	memset(big, 0x77, sizeof(big));
	ck_assert(bus_read(&pio, BASE + SCR, big, sizeof(big)));
	ck_assert_uint_eq(big[0], 0xa5);
	for (size_t i = 1; i < sizeof(big); i++)
		ck_assert_uint_eq(big[i], 0);

	/* Wide writes use the low byte. */
	v32 = 0x12345601;
	ck_assert(bus_write(&pio, BASE + IER, &v32, 4));
	ck_assert_uint_eq(in8(IER), 0x01);
	v32 = 'k' | 0xffffff00;
	ck_assert(bus_write(&pio, BASE + THR, &v32, 4));
	ck_assert_uint_eq(fk.out_len, 1);
	ck_assert_uint_eq(fk.out[0], 'k');

	/* Zero-sized accesses are no-ops. */
	ck_assert(bus_write(&pio, BASE + THR, big, 0));
	ck_assert(bus_read(&pio, BASE + RBR, big, 0));
	ck_assert_uint_eq(fk.out_len, 1);

	/* LSR and MSR are read-only. */
	out8(LSR, 0);
	out8(MSR, 0);
	ck_assert_uint_eq(in8(LSR), 0x60);
	ck_assert_uint_eq(in8(MSR), 0xb0);
}
END_TEST

/* Registered over more ports than it decodes, extra offsets are ignored. */
START_TEST(test_out_of_range)
{
	const struct bus_ops *ops;
	const struct bus_region *r = bus_find(&pio, BASE);
	uint8_t v = 0x42;
	uint64_t wide = 0;

	ck_assert_ptr_nonnull(r);
	ops = r->ops;
	ck_assert_int_eq(bus_register(&pio, 0x1000, 64, ops, &uart, "wide"), 0);
	for (unsigned off = 8; off < 64; off++) {
		ck_assert(bus_write(&pio, 0x1000 + off, &v, 1));
		ck_assert(bus_read(&pio, 0x1000 + off, &wide, 8));
	}
	ck_assert_uint_eq(fk.out_len, 0);
	ck_assert_uint_eq(in8(IER), 0);
	ck_assert_uint_eq(in8(SCR), 0);

	/* An access straddling the end of the ports reaches SCR only. */
	wide = 0x1111111111111111ull;
	ck_assert(bus_write(&pio, BASE + SCR, &wide, 8));
	ck_assert_uint_eq(in8(SCR), 0x11);
	ck_assert(bus_read(&pio, BASE + SCR, &wide, 8));
	ck_assert_uint_eq(wide, 0x11);
}
END_TEST

START_TEST(test_rx_edge_per_batch)
{
	out8(FCR, 0x01);
	out8(MCR, MCR_OUT2);
	out8(IER, 0x01);
	serial8250_receive(&uart, (const uint8_t *)"a", 1);
	ck_assert_int_eq(count_edges(), 1);
	/* More input while still pending re-arms the edge. */
	serial8250_receive(&uart, (const uint8_t *)"b", 1);
	ck_assert_int_eq(count_edges(), 2);
	ck_assert_int_eq(last_level(), 1);
}
END_TEST

#define NR_WRITERS 3
#define TX_PER_WRITER 2000
#define RX_BYTES 1000

static void *tx_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < TX_PER_WRITER; i++)
		out8(THR, 'w');
	return NULL;
}

static void *rx_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < RX_BYTES;) {
		uint8_t b = i & 0xff;

		if (serial8250_receive(&uart, &b, 1))
			i++;
		else
			sched_yield();
	}
	return NULL;
}

/* vCPUs and the console thread racing: bytes stay whole, the line settles. */
START_TEST(test_threads)
{
	pthread_t tx[NR_WRITERS], rx;
	int got = 0;

	out8(FCR, 0x01);
	out8(MCR, MCR_OUT2);
	out8(IER, 0x03);
	for (int i = 0; i < NR_WRITERS; i++)
		pthread_create(&tx[i], NULL, tx_thread, NULL);
	pthread_create(&rx, NULL, rx_thread, NULL);
	while (got < RX_BYTES) {
		if ((in8(IIR) & 0x0f) == 0x04 || (in8(LSR) & 0x01))
			ck_assert_uint_eq(in8(RBR), got++ & 0xff);
	}
	for (int i = 0; i < NR_WRITERS; i++)
		pthread_join(tx[i], NULL);
	pthread_join(rx, NULL);

	while ((in8(IIR) & 0x0f) != 0x01)
		;
	ck_assert_uint_eq(fk.out_len, NR_WRITERS * TX_PER_WRITER);
	ck_assert_int_eq(last_level(), 0);
	ck_assert_int_gt(fk.notified, 0);
}
END_TEST

static Suite *serial_suite(void)
{
	Suite *s = suite_create("serial8250");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ier_readback);
	tcase_add_test(tc, test_reset_state);
	tcase_add_test(tc, test_scratch);
	tcase_add_test(tc, test_thr_output);
	tcase_add_test(tc, test_iir_thre);
	tcase_add_test(tc, test_edge_per_thr_write);
	tcase_add_test(tc, test_no_irq_without_out2);
	tcase_add_test(tc, test_rx);
	tcase_add_test(tc, test_rx_priority_over_thre);
	tcase_add_test(tc, test_rx_fifo_limit);
	tcase_add_test(tc, test_rx_no_fifo);
	tcase_add_test(tc, test_fcr_clear_rx);
	tcase_add_test(tc, test_fcr_fifo_bits);
	tcase_add_test(tc, test_dlab);
	tcase_add_test(tc, test_loopback_msr);
	tcase_add_test(tc, test_loopback_data);
	tcase_add_test(tc, test_bad_accesses);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_rx_edge_per_batch);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(serial_suite());
}
