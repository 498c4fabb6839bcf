// SPDX-License-Identifier: MIT
/*
 * Motorola MC146818A real-time clock with 128 bytes of CMOS RAM, at ports
 * 0x70 (index) and 0x71 (data) as on every PC. Register layout and the
 * meaning of registers A-D follow the MC146818A datasheet ("Address Map",
 * "Register A" to "Register D"); byte 0x32 is the century by IBM convention.
 *
 * Nothing ticks here: each read of a time byte converts host UTC plus an
 * offset the guest set, so the clock never drifts and is never caught in the
 * middle of an update. Alarm and periodic interrupts are not modelled yet.
 */
#include <errno.h>
#include <string.h>

#include "devices/rtc.h"

#define REG_SEC 0x00
#define REG_MIN 0x02
#define REG_HOUR 0x04
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d

#define A_UIP 0x80
#define B_SET 0x80
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define D_VRT 0x80
#define HOUR_PM 0x80
#define NMI_DISABLE 0x80

static void rtc_host_time(const struct rtc *rtc, struct tm *tm)
{
	time_t t = time(NULL) + rtc->offset;

	gmtime_r(&t, tm);
}

/* While SET is held the guest edits a frozen copy, as the datasheet says. */
static void rtc_guest_time(const struct rtc *rtc, struct tm *tm)
{
	if (rtc->cmos[REG_B] & B_SET)
		*tm = rtc->frozen;
	else
		rtc_host_time(rtc, tm);
}

static void rtc_commit(struct rtc *rtc, const struct tm *tm)
{
	struct tm copy = *tm; /* timegm() normalises its argument */

	rtc->offset = (int64_t)timegm(&copy) - (int64_t)time(NULL);
}

static uint8_t rtc_to_guest(const struct rtc *rtc, int v)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return v;
	return ((v / 10) << 4) | (v % 10);
}

/* Garbage BCD digits from the guest just yield odd values; timegm copes. */
static int rtc_from_guest(const struct rtc *rtc, uint8_t v)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_hour_to_guest(const struct rtc *rtc, int hour)
{
	int h12 = hour % 12 ? hour % 12 : 12;

	if (rtc->cmos[REG_B] & B_24H)
		return rtc_to_guest(rtc, hour);
	return rtc_to_guest(rtc, h12) | (hour >= 12 ? HOUR_PM : 0);
}

static int rtc_hour_from_guest(const struct rtc *rtc, uint8_t v)
{
	int h;

	if (rtc->cmos[REG_B] & B_24H)
		return rtc_from_guest(rtc, v);
	h = rtc_from_guest(rtc, v & ~HOUR_PM) % 12;
	return v & HOUR_PM ? h + 12 : h;
}

static bool rtc_is_time_reg(uint8_t idx)
{
	switch (idx) {
	case REG_SEC:
	case REG_MIN:
	case REG_HOUR:
	case REG_WDAY:
	case REG_MDAY:
	case REG_MONTH:
	case REG_YEAR:
	case RTC_REG_CENTURY:
		return true;
	}
	return false;
}

static uint8_t rtc_read_time(const struct rtc *rtc, uint8_t idx)
{
	struct tm tm;
	int year;

	rtc_guest_time(rtc, &tm);
	year = tm.tm_year + 1900;
	switch (idx) {
	case REG_SEC:
		return rtc_to_guest(rtc, tm.tm_sec);
	case REG_MIN:
		return rtc_to_guest(rtc, tm.tm_min);
	case REG_HOUR:
		return rtc_hour_to_guest(rtc, tm.tm_hour);
	case REG_WDAY:
		return rtc_to_guest(rtc, tm.tm_wday + 1); /* Sunday is 1 */
	case REG_MDAY:
		return rtc_to_guest(rtc, tm.tm_mday);
	case REG_MONTH:
		return rtc_to_guest(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return rtc_to_guest(rtc, year % 100);
	default: /* century */
		return rtc_to_guest(rtc, year / 100 % 100);
	}
}

/*
 * Writes land in the guest's view of the time; outside a SET window each one
 * takes effect at once, as on the chip. The weekday is always derived from
 * the date, so writes to it are dropped.
 */
static void rtc_write_time(struct rtc *rtc, uint8_t idx, uint8_t v)
{
	struct tm tm;
	int year;

	rtc_guest_time(rtc, &tm);
	year = tm.tm_year + 1900;
	switch (idx) {
	case REG_SEC:
		tm.tm_sec = rtc_from_guest(rtc, v);
		break;
	case REG_MIN:
		tm.tm_min = rtc_from_guest(rtc, v);
		break;
	case REG_HOUR:
		tm.tm_hour = rtc_hour_from_guest(rtc, v);
		break;
	case REG_MDAY:
		tm.tm_mday = rtc_from_guest(rtc, v);
		break;
	case REG_MONTH:
		tm.tm_mon = rtc_from_guest(rtc, v) - 1;
		break;
	case REG_YEAR:
		tm.tm_year = year / 100 * 100 + rtc_from_guest(rtc, v) - 1900;
		break;
	case RTC_REG_CENTURY:
		tm.tm_year = rtc_from_guest(rtc, v) * 100 + year % 100 - 1900;
		break;
	default:
		return;
	}
	if (rtc->cmos[REG_B] & B_SET)
		rtc->frozen = tm;
	else
		rtc_commit(rtc, &tm);
}

static void rtc_write_b(struct rtc *rtc, uint8_t v)
{
	uint8_t old = rtc->cmos[REG_B];

	if (!(old & B_SET) && (v & B_SET))
		rtc_host_time(rtc, &rtc->frozen);
	if ((old & B_SET) && !(v & B_SET))
		rtc_commit(rtc, &rtc->frozen);
	rtc->cmos[REG_B] = v;
}

static uint8_t rtc_read_data(struct rtc *rtc)
{
	uint8_t idx = rtc->index, v;

	if (rtc_is_time_reg(idx))
		return rtc_read_time(rtc, idx);
	v = rtc->cmos[idx];
	if (idx == REG_C)
		rtc->cmos[REG_C] = 0; /* reading C acknowledges its flags */
	return v;
}

static void rtc_write_data(struct rtc *rtc, uint8_t v)
{
	uint8_t idx = rtc->index;

	if (rtc_is_time_reg(idx))
		rtc_write_time(rtc, idx, v);
	else if (idx == REG_A)
		rtc->cmos[REG_A] = v & ~A_UIP;
	else if (idx == REG_B)
		rtc_write_b(rtc, v);
	else if (idx != REG_C && idx != REG_D) /* C and D are read-only */
		rtc->cmos[idx] = v;
}

/* A wide access acts as consecutive byte accesses to 0x70, 0x71, ... */
static void rtc_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct rtc *rtc = opaque;
	uint8_t *p = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size; i++)
		p[i] = offset + i == 1 ? rtc_read_data(rtc) : 0xff;
	pthread_mutex_unlock(&rtc->lock);
}

static void rtc_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	struct rtc *rtc = opaque;
	const uint8_t *p = data;

	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size; i++) {
		if (offset + i == 0)
			rtc->index = p[i] & ~NMI_DISABLE; /* NMIs are not gated */
		else if (offset + i == 1)
			rtc_write_data(rtc, p[i]);
	}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct bus_ops rtc_ops = {
	.read = rtc_read,
	.write = rtc_write,
};

void rtc_init(struct rtc *rtc, struct irq_line irq)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->irq = irq;
	rtc->cmos[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	rtc->cmos[REG_B] = B_24H; /* BCD, 24 hours, no interrupts */
	rtc->cmos[REG_D] = D_VRT; /* RAM and time are valid */
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

int rtc_register(struct rtc *rtc, struct bus *pio)
{
	return bus_register(pio, RTC_PORT, 2, &rtc_ops, rtc, "rtc");
}
