// SPDX-License-Identifier: MIT
/* i8042 through the port bus: what Linux's probe and reboot paths rely on. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/i8042.h"
#include "vmm/bus.h"
#include "tests/unit/unit.h"

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_CMDDAT 0x08
#define STR_AUXDATA 0x20

static struct bus bus;
static struct i8042 kbd;
static struct recorder rec;

static void setup(void)
{
	memset(&rec, 0, sizeof(rec));
	bus_init(&bus, "pio");
	i8042_init(&kbd, (struct event_sink){ recorder_event, &rec },
		   (struct irq_line){ recorder_irq, &rec, 1 },
		   (struct irq_line){ recorder_irq, &rec, 12 });
	ck_assert_int_eq(i8042_register(&kbd, &bus), 0);
}

static void teardown(void)
{
	i8042_destroy(&kbd);
	bus_destroy(&bus);
}

static uint8_t status(void)
{
	uint8_t v = 0;

	bus_read(&bus, 0x64, &v, 1);
	return v;
}

static uint8_t data(void)
{
	uint8_t v = 0;

	bus_read(&bus, 0x60, &v, 1);
	return v;
}

static void command(uint8_t c)
{
	bus_write(&bus, 0x64, &c, 1);
}

static void put_data(uint8_t d)
{
	bus_write(&bus, 0x60, &d, 1);
}

static uint8_t expect_byte(int aux)
{
	uint8_t s = status();

	ck_assert_uint_eq(s & STR_OBF, STR_OBF);
	ck_assert_uint_eq(!!(s & STR_AUXDATA), aux);
	return data();
}

static void expect_empty(void)
{
	ck_assert_uint_eq(status() & (STR_OBF | STR_AUXDATA), 0);
}

START_TEST(status_idle)
{
	uint8_t s = status();

	ck_assert_uint_ne(s, 0x00);
	ck_assert_uint_ne(s, 0xff);
	ck_assert_uint_eq(s & (STR_OBF | STR_IBF), 0);
	ck_assert_uint_eq(s & 0x10, 0x10); /* keylock off */
}
END_TEST

START_TEST(self_test)
{
	command(0xaa);
	ck_assert_uint_eq(status() & (STR_IBF | STR_CMDDAT), STR_CMDDAT);
	ck_assert_uint_eq(expect_byte(0), 0x55);
	expect_empty();
	command(0xab);
	ck_assert_uint_eq(expect_byte(0), 0x00);
	command(0xa9);
	ck_assert_uint_eq(expect_byte(0), 0x00);
	expect_empty();
}
END_TEST

START_TEST(ctr_round_trip)
{
	command(0x20);
	ck_assert_uint_eq(expect_byte(0), 0x07);
	command(0x60);
	put_data(0x65);
	ck_assert_uint_eq(status() & STR_CMDDAT, 0);
	command(0x20);
	ck_assert_uint_eq(expect_byte(0), 0x65);
	ck_assert_uint_eq(status() & 0x04, 0x04); /* SYS follows the CTR */
	command(0x60);
	put_data(0x00);
	ck_assert_uint_eq(status() & 0x04, 0);
}
END_TEST

START_TEST(port_enable_bits)
{
	command(0xad);
	command(0xa7);
	command(0x20);
	ck_assert_uint_eq(expect_byte(0) & 0x30, 0x30);
	command(0xae);
	command(0xa8);
	command(0x20);
	ck_assert_uint_eq(expect_byte(0) & 0x30, 0x00);
}
END_TEST

START_TEST(pulse_reset)
{
	command(0xff); /* pulses nothing */
	ck_assert_int_eq(rec.events[VM_EVENT_RESET], 0);
	command(0xfe);
	ck_assert_int_eq(rec.events[VM_EVENT_RESET], 1);
	ck_assert_int_eq(recorder_events_except(&rec, VM_EVENT_RESET), 0);
	ck_assert_uint_eq(status() & STR_IBF, 0);
}
END_TEST

START_TEST(output_port_reset)
{
	command(0xd1);
	put_data(0xdf); /* A20 on, reset line high */
	ck_assert_int_eq(rec.events[VM_EVENT_RESET], 0);
	command(0xd0);
	ck_assert_uint_eq(expect_byte(0), 0xdf);
	command(0xd1);
	put_data(0xfe);
	ck_assert_int_eq(rec.events[VM_EVENT_RESET], 1);
}
END_TEST

START_TEST(keyboard_reset_and_id)
{
	put_data(0xff);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	ck_assert_uint_eq(expect_byte(0), 0xaa);
	expect_empty();
	put_data(0xf2);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	ck_assert_uint_eq(expect_byte(0), 0xab);
	ck_assert_uint_eq(expect_byte(0), 0x83);
	expect_empty();
}
END_TEST

START_TEST(keyboard_commands_with_args)
{
	put_data(0xed);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0x07);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0xf3);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0x20);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0xf0);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0x00);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	ck_assert_uint_eq(expect_byte(0), 0x02);
	put_data(0xf5);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0xf4);
	ck_assert_uint_eq(expect_byte(0), 0xfa);
	put_data(0xee);
	ck_assert_uint_eq(expect_byte(0), 0xee);
	put_data(0x12); /* not a command */
	ck_assert_uint_eq(expect_byte(0), 0xfe);
	expect_empty();
}
END_TEST

START_TEST(irqs_follow_ctr)
{
	command(0x60);
	put_data(0x00); /* both interrupts off */
	command(0xaa);
	ck_assert_int_eq(rec.edges[1], 0);
	data();
	command(0x60);
	put_data(0x03);
	put_data(0xf2); /* three bytes: one edge each as they reach the buffer */
	ck_assert_int_eq(rec.edges[1], 1);
	data();
	data();
	ck_assert_int_eq(rec.edges[1], 3);
	data();
	ck_assert_int_eq(rec.edges[1], 3);
	ck_assert_int_eq(rec.edges[12], 0);
}
END_TEST

START_TEST(late_enable_delivers)
{
	command(0x60);
	put_data(0x00);
	command(0xd2);
	put_data(0x42);
	ck_assert_int_eq(rec.edges[1], 0);
	command(0x60);
	put_data(0x01);
	ck_assert_int_eq(rec.edges[1], 1);
	ck_assert_uint_eq(expect_byte(0), 0x42);
}
END_TEST

/* Linux's i8042_check_aux(): loopback with AUXDATA and IRQ 12. */
START_TEST(aux_loopback)
{
	command(0xd3);
	put_data(0x5a);
	ck_assert_int_eq(rec.edges[12], 1);
	ck_assert_int_eq(rec.edges[1], 0);
	ck_assert_uint_eq(expect_byte(1), 0x5a);
	expect_empty();
}
END_TEST

START_TEST(aux_device_absent)
{
	command(0xd4);
	put_data(0xf2);
	ck_assert_uint_eq(expect_byte(1), 0xfe);
	ck_assert_int_eq(rec.edges[12], 1);
	expect_empty();
}
END_TEST

START_TEST(new_command_cancels_pending)
{
	command(0x60);
	command(0x20); /* the CTR write never got its byte */
	ck_assert_uint_eq(expect_byte(0), 0x07);
	put_data(0xf4); /* so this goes to the keyboard */
	ck_assert_uint_eq(expect_byte(0), 0xfa);
}
END_TEST

START_TEST(queue_overflow_and_stale_read)
{
	command(0x60);
	put_data(0x00);
	for (int i = 0; i < 40; i++) {
		command(0xd2);
		put_data(i);
	}
	for (int i = 0; i < I8042_QUEUE_LEN; i++)
		ck_assert_uint_eq(expect_byte(0), i);
	expect_empty();
	ck_assert_uint_eq(data(), I8042_QUEUE_LEN - 1); /* stale byte */
}
END_TEST

START_TEST(odd_accesses)
{
	uint64_t q = 0;
	uint32_t v = 0xaaaa;

	command(0xaa);
	bus_read(&bus, 0x60, &q, 4); /* one byte consumed, rest floats */
	ck_assert_uint_eq(q, 0xffffff55);
	bus_write(&bus, 0x64, &v, 2); /* low byte: 0xaa */
	bus_read(&bus, 0x64, &q, 8);
	ck_assert_uint_eq(q & STR_OBF, STR_OBF);
	ck_assert_uint_eq(q >> 8, 0xffffffffffffffULL);
	ck_assert_uint_eq(data(), 0x55);
	bus_write(&bus, 0x60, &q, 8);
	bus_read(&bus, 0x61, &v, 1); /* not ours */
	ck_assert_ptr_eq(bus_find(&bus, 0x61), NULL);
}
END_TEST

/* Linux's probe: flush, self-test, read CTR twice, write it, flush. */
START_TEST(linux_probe_sequence)
{
	uint8_t ctr;
	int n = 0;

	while (status() & STR_OBF && n++ < 16)
		data();
	ck_assert_int_lt(n, 16);
	command(0xaa);
	ck_assert_uint_eq(expect_byte(0), 0x55);
	command(0x20);
	ctr = expect_byte(0);
	command(0x20);
	ck_assert_uint_eq(expect_byte(0), ctr);
	command(0x60);
	put_data((ctr | 0x10) & ~0x01);
	expect_empty();
	ck_assert_int_eq(rec.events[VM_EVENT_RESET] + recorder_events_except(&rec, VM_EVENT_RESET), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("i8042");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, status_idle);
	tcase_add_test(tc, self_test);
	tcase_add_test(tc, ctr_round_trip);
	tcase_add_test(tc, port_enable_bits);
	tcase_add_test(tc, pulse_reset);
	tcase_add_test(tc, output_port_reset);
	tcase_add_test(tc, keyboard_reset_and_id);
	tcase_add_test(tc, keyboard_commands_with_args);
	tcase_add_test(tc, irqs_follow_ctr);
	tcase_add_test(tc, late_enable_delivers);
	tcase_add_test(tc, aux_loopback);
	tcase_add_test(tc, aux_device_absent);
	tcase_add_test(tc, new_command_cancels_pending);
	tcase_add_test(tc, queue_overflow_and_stale_read);
	tcase_add_test(tc, odd_accesses);
	tcase_add_test(tc, linux_probe_sequence);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
