// SPDX-License-Identifier: MIT
/* CMOS RTC through the port bus: host time, formats, guest-set offset. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/rtc.h"
#include "vmm/bus.h"
#include "tests/unit/unit.h"

static struct bus bus;
static struct rtc rtc;

static void setup(void)
{
	bus_init(&bus, "pio");
	rtc_init(&rtc, (struct irq_line){ 0 });
	ck_assert_int_eq(rtc_register(&rtc, &bus), 0);
}

static void teardown(void)
{
	rtc_destroy(&rtc);
	bus_destroy(&bus);
}

static uint8_t cmos_read(uint8_t idx)
{
	uint8_t v = 0;

	bus_write(&bus, 0x70, &idx, 1);
	bus_read(&bus, 0x71, &v, 1);
	return v;
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	bus_write(&bus, 0x70, &idx, 1);
	bus_write(&bus, 0x71, &v, 1);
}

static int from_bcd(uint8_t v, int binary)
{
	return binary ? v : (v >> 4) * 10 + (v & 0xf);
}

/* Reads the clock the way Linux does: again if the seconds moved meanwhile. */
static time_t guest_time(int binary, int h24, struct tm *tm)
{
	uint8_t sec, hour;
	struct tm copy;

	do {
		memset(tm, 0, sizeof(*tm));
		sec = cmos_read(0x00);
		tm->tm_min = from_bcd(cmos_read(0x02), binary);
		hour = cmos_read(0x04);
		tm->tm_mday = from_bcd(cmos_read(0x07), binary);
		tm->tm_mon = from_bcd(cmos_read(0x08), binary) - 1;
		tm->tm_year = from_bcd(cmos_read(0x32), binary) * 100 +
			      from_bcd(cmos_read(0x09), binary) - 1900;
		tm->tm_wday = from_bcd(cmos_read(0x06), binary) - 1;
	} while (sec != cmos_read(0x00));
	tm->tm_sec = from_bcd(sec, binary);
	if (h24) {
		tm->tm_hour = from_bcd(hour, binary);
	} else {
		tm->tm_hour = from_bcd(hour & 0x7f, binary) % 12;
		if (hour & 0x80)
			tm->tm_hour += 12;
	}
	copy = *tm;
	return timegm(&copy);
}

static void assert_near_host(time_t t, time_t expected)
{
	ck_assert_msg(t >= expected - 2 && t <= expected + 2,
		      "rtc %lld, expected %lld", (long long)t, (long long)expected);
}

START_TEST(defaults)
{
	ck_assert_uint_eq(cmos_read(0x0a), 0x26);
	ck_assert_uint_eq(cmos_read(0x0b), 0x02);
	ck_assert_uint_eq(cmos_read(0x0c), 0x00);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);
}
END_TEST

START_TEST(time_matches_host_bcd)
{
	struct tm tm, host;
	time_t now = time(NULL);
	time_t t = guest_time(0, 1, &tm);

	assert_near_host(t, now);
	gmtime_r(&t, &host);
	ck_assert_int_eq(tm.tm_wday, host.tm_wday);
}
END_TEST

START_TEST(time_matches_host_binary)
{
	struct tm tm;

	cmos_write(0x0b, 0x06); /* binary, 24 h */
	ck_assert_uint_eq(cmos_read(0x0b), 0x06);
	assert_near_host(guest_time(1, 1, &tm), time(NULL));
}
END_TEST

START_TEST(twelve_hour_mode)
{
	struct tm tm;

	cmos_write(0x0b, 0x00); /* BCD, 12 h */
	assert_near_host(guest_time(0, 0, &tm), time(NULL));
	cmos_write(0x0b, 0x04); /* binary, 12 h */
	assert_near_host(guest_time(1, 0, &tm), time(NULL));
}
END_TEST

START_TEST(uip_never_set)
{
	for (int i = 0; i < 10000; i++)
		ck_assert_uint_eq(cmos_read(0x0a) & 0x80, 0);
	cmos_write(0x0a, 0xa6); /* UIP is read-only */
	ck_assert_uint_eq(cmos_read(0x0a), 0x26);
}
END_TEST

START_TEST(register_d_and_c_read_only)
{
	cmos_write(0x0d, 0x00);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);
	cmos_write(0x0c, 0xff);
	ck_assert_uint_eq(cmos_read(0x0c), 0x00);
}
END_TEST

START_TEST(nmi_bit_masked)
{
	uint8_t idx = 0x80 | 0x0d, v = 0;

	bus_write(&bus, 0x70, &idx, 1);
	bus_read(&bus, 0x71, &v, 1);
	ck_assert_uint_eq(v, 0x80);
	cmos_write(0x80 | 0x40, 0x5a);
	ck_assert_uint_eq(cmos_read(0x40), 0x5a);
}
END_TEST

START_TEST(cmos_ram_round_trip)
{
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(i, i ^ 0xa5);
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			ck_assert_uint_eq(cmos_read(i), i ^ 0xa5);
}
END_TEST

/* What Linux's mc146818_set_time() does for hwclock -w. */
START_TEST(set_time_with_set_bit)
{
	struct tm tm = { .tm_year = 130, .tm_mon = 5, .tm_mday = 15,
			 .tm_hour = 12, .tm_min = 34, .tm_sec = 56 };
	time_t want = timegm(&tm);
	struct tm got;

	cmos_write(0x0b, 0x82);
	cmos_write(0x32, 0x20);
	cmos_write(0x09, 0x30);
	cmos_write(0x08, 0x06);
	cmos_write(0x07, 0x15);
	cmos_write(0x04, 0x12);
	cmos_write(0x02, 0x34);
	cmos_write(0x00, 0x56);
	ck_assert_uint_eq(cmos_read(0x00), 0x56); /* frozen while SET */
	cmos_write(0x0b, 0x02);
	assert_near_host(guest_time(0, 1, &got), want);
	ck_assert_int_eq(got.tm_wday, 6); /* a Saturday */
	ck_assert_int_eq(got.tm_year, 130);

	/* The offset persists: the clock keeps running from the new time. */
	sleep(1);
	assert_near_host(guest_time(0, 1, &got), want + 1);
}
END_TEST

/* Day 31 written before the month must not be normalised away meanwhile. */
START_TEST(set_time_day_before_month)
{
	struct tm tm = { .tm_year = 131, .tm_mon = 2, .tm_mday = 31,
			 .tm_hour = 1, .tm_min = 2, .tm_sec = 3 };
	time_t want = timegm(&tm);
	struct tm got;

	cmos_write(0x0b, 0x82);
	cmos_write(0x09, 0x31);
	cmos_write(0x08, 0x02);
	cmos_write(0x07, 0x31); /* "Feb 31" for a moment */
	cmos_write(0x08, 0x03);
	cmos_write(0x04, 0x01);
	cmos_write(0x02, 0x02);
	cmos_write(0x00, 0x03);
	cmos_write(0x0b, 0x02);
	assert_near_host(guest_time(0, 1, &got), want);
}
END_TEST

START_TEST(direct_write_takes_effect)
{
	struct tm before, after;

	guest_time(0, 1, &before);
	cmos_write(0x09, 0x99);
	ck_assert_uint_eq(cmos_read(0x09), 0x99);
	guest_time(0, 1, &after);
	ck_assert_int_eq(after.tm_year % 100, 99);
	ck_assert_int_eq(after.tm_mon, before.tm_mon);
}
END_TEST

START_TEST(odd_accesses)
{
	uint32_t v = 0;
	uint64_t q = ~0ULL;

	/* One word write: index to 0x70, data to 0x71. */
	v = 0x7700 | 0x50;
	bus_write(&bus, 0x70, &v, 2);
	ck_assert_uint_eq(cmos_read(0x50), 0x77);
	v = 0xdeadbe51;
	bus_write(&bus, 0x70, &v, 4);
	ck_assert_uint_eq(cmos_read(0x51), 0xbe);
	bus_write(&bus, 0x71, &q, 8);
	bus_read(&bus, 0x70, &q, 8);
	bus_read(&bus, 0x71, &v, 4);
	ck_assert_uint_eq(v >> 8, 0xffffff);
	v = 0;
	bus_read(&bus, 0x70, &v, 1);
	ck_assert_uint_eq(v, 0xff); /* the index is write-only */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rtc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, time_matches_host_bcd);
	tcase_add_test(tc, time_matches_host_binary);
	tcase_add_test(tc, twelve_hour_mode);
	tcase_add_test(tc, uip_never_set);
	tcase_add_test(tc, register_d_and_c_read_only);
	tcase_add_test(tc, nmi_bit_masked);
	tcase_add_test(tc, cmos_ram_round_trip);
	tcase_add_test(tc, set_time_with_set_bit);
	tcase_add_test(tc, set_time_day_before_month);
	tcase_add_test(tc, direct_write_takes_effect);
	tcase_add_test(tc, odd_accesses);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
