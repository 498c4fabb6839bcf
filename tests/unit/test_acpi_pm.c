// SPDX-License-Identifier: MIT
/* ACPI PM1 registers and PM timer through the port bus. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "vmm/bus.h"
#include "tests/unit/unit.h"

#define PWRBTN 0x0100
#define SLP_EN 0x2000

static struct bus bus;
static struct acpi_pm pm;
static struct recorder rec;

static void setup(void)
{
	memset(&rec, 0, sizeof(rec));
	bus_init(&bus, "pio");
	acpi_pm_init(&pm, (struct event_sink){ recorder_event, &rec },
		     (struct irq_line){ recorder_irq, &rec, ACPI_SCI_IRQ });
	ck_assert_int_eq(acpi_pm_register(&pm, &bus), 0);
}

static void teardown(void)
{
	/* The PM block owns the SCI and no other line. */
	ck_assert_int_eq(recorder_sets_except(&rec, ACPI_SCI_IRQ), 0);
	acpi_pm_destroy(&pm);
	bus_destroy(&bus);
}

static uint32_t in(uint16_t port, unsigned size)
{
	uint32_t v = 0;

	bus_read(&bus, port, &v, size);
	return v;
}

static void out(uint16_t port, unsigned size, uint32_t v)
{
	bus_write(&bus, port, &v, size);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

	nanosleep(&ts, NULL);
}

START_TEST(s5_powers_off)
{
	out(ACPI_PM1A_CNT_BLK, 2, ACPI_S5_SLP_TYP << 10 | SLP_EN);
	ck_assert_int_eq(rec.events[VM_EVENT_POWEROFF], 1);
	/* The same as a byte write of the high half. */
	out(ACPI_PM1A_CNT_BLK + 1, 1, (ACPI_S5_SLP_TYP << 2) | 0x20);
	ck_assert_int_eq(rec.events[VM_EVENT_POWEROFF], 2);
	ck_assert_int_eq(recorder_events_except(&rec, VM_EVENT_POWEROFF), 0);
}
END_TEST

START_TEST(other_sleep_types_ignored)
{
	for (uint32_t typ = 0; typ < 8; typ++)
		if (typ != ACPI_S5_SLP_TYP)
			out(ACPI_PM1A_CNT_BLK, 2, typ << 10 | SLP_EN);
	out(ACPI_PM1A_CNT_BLK, 2, ACPI_S5_SLP_TYP << 10); /* no SLP_EN */
	ck_assert_int_eq(recorder_events_except(&rec, VM_EVENT_NONE), 0);
}
END_TEST

START_TEST(sci_en_always_set)
{
	ck_assert_uint_eq(in(ACPI_PM1A_CNT_BLK, 2), 0x0001);
	out(ACPI_PM1A_CNT_BLK, 2, 0);
	ck_assert_uint_eq(in(ACPI_PM1A_CNT_BLK, 2) & 1, 1);
	out(ACPI_PM1A_CNT_BLK, 2, 3 << 10);
	ck_assert_uint_eq(in(ACPI_PM1A_CNT_BLK, 2), 3 << 10 | 1);
	out(ACPI_PM1A_CNT_BLK, 2, 0xffff & ~SLP_EN);
	ck_assert_uint_eq(in(ACPI_PM1A_CNT_BLK, 2) & SLP_EN, 0);
	ck_assert_uint_eq(in(ACPI_PM1A_CNT_BLK, 1), 0x03); /* SCI_EN, BM_RLD */
}
END_TEST

START_TEST(timer_runs_at_3_58_mhz)
{
	uint32_t a, b, delta;

	a = in(ACPI_PM_TMR_BLK, 4);
	sleep_ms(20);
	b = in(ACPI_PM_TMR_BLK, 4);
	ck_assert_uint_lt(a, 1u << 24);
	ck_assert_uint_lt(b, 1u << 24);
	delta = (b - a) & 0xffffff;
	/* 20 ms is 71591 ticks; allow a slow (sanitised, loaded) host. */
	ck_assert_uint_ge(delta, 71000);
	ck_assert_uint_le(delta, 71591 * 20);
	out(ACPI_PM_TMR_BLK, 4, 0); /* read-only: no effect */
	ck_assert_uint_ge((in(ACPI_PM_TMR_BLK, 4) - a) & 0xffffff, delta);
	ck_assert_uint_eq(in(ACPI_PM_TMR_BLK + 3, 1), 0); /* bits 24-31 */
}
END_TEST

START_TEST(timer_24_bits_wrap)
{
	uint32_t v;

	/* Move the origin back so the counter is about to wrap. */
	pm.tmr_origin.tv_sec -= (1 << 24) / ACPI_PM_TMR_HZ + 3600;
	for (int i = 0; i < 1000; i++) {
		v = in(ACPI_PM_TMR_BLK, 4);
		ck_assert_uint_lt(v, 1u << 24);
	}
}
END_TEST

START_TEST(power_button_disabled)
{
	acpi_pm_power_button(&pm);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK, 2), PWRBTN);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
	/* Enabling with the status pending raises the SCI at once. */
	out(ACPI_PM1A_EVT_BLK + 2, 2, PWRBTN);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 1);
	out(ACPI_PM1A_EVT_BLK, 2, PWRBTN);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
}
END_TEST

START_TEST(power_button_raises_sci_until_cleared)
{
	out(ACPI_PM1A_EVT_BLK + 2, 2, PWRBTN);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK + 2, 2), PWRBTN);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
	acpi_pm_power_button(&pm);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 1);
	out(ACPI_PM1A_EVT_BLK, 2, 0); /* writing 0 clears nothing */
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 1);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK, 2), PWRBTN);
	out(ACPI_PM1A_EVT_BLK, 2, PWRBTN);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK, 2), 0);
	/* A second press while still pending changes nothing on the line. */
	acpi_pm_power_button(&pm);
	acpi_pm_power_button(&pm);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 1);
	ck_assert_int_eq(rec.sets[ACPI_SCI_IRQ], 3);
	/* Disabling lowers it too. */
	out(ACPI_PM1A_EVT_BLK + 2, 2, 0);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
}
END_TEST

/* A dword at PM1a_EVT_BLK covers STS and EN, as some OSes access it. */
START_TEST(dword_event_block)
{
	acpi_pm_power_button(&pm);
	out(ACPI_PM1A_EVT_BLK, 4, PWRBTN << 16 | PWRBTN);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK, 4), PWRBTN << 16);
	ck_assert_int_eq(rec.level[ACPI_SCI_IRQ], 0);
	out(ACPI_PM1A_EVT_BLK + 2, 2, 0xffff);
	ck_assert_uint_eq(in(ACPI_PM1A_EVT_BLK + 2, 2), 0x4721);
}
END_TEST

START_TEST(odd_accesses)
{
	uint64_t q = 0;

	bus_read(&bus, ACPI_PM1A_CNT_BLK + 1, &q, 8);
	ck_assert_uint_eq(q, 0xffffffffffffff00ULL);
	bus_read(&bus, ACPI_PM_TMR_BLK + 3, &q, 4);
	ck_assert_uint_eq(q >> 8 & 0xffffff, 0xffffff);
	out(ACPI_PM1A_EVT_BLK + 3, 4, 0xffffffff);
	out(ACPI_PM1A_CNT_BLK + 1, 4, 0);
	out(ACPI_PM_TMR_BLK + 2, 2, 0xffff);
	q = ~0ULL;
	bus_write(&bus, ACPI_PM1A_EVT_BLK, &q, 8);
	ck_assert_int_eq(recorder_events_except(&rec, VM_EVENT_NONE), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acpi_pm");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, s5_powers_off);
	tcase_add_test(tc, other_sleep_types_ignored);
	tcase_add_test(tc, sci_en_always_set);
	tcase_add_test(tc, timer_runs_at_3_58_mhz);
	tcase_add_test(tc, timer_24_bits_wrap);
	tcase_add_test(tc, power_button_disabled);
	tcase_add_test(tc, power_button_raises_sci_until_cleared);
	tcase_add_test(tc, dword_event_block);
	tcase_add_test(tc, odd_accesses);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
