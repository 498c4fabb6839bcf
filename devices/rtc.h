/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_RTC_H
#define MINIVM_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/irq.h"

#define RTC_PORT 0x70 /* index at 0x70, data at 0x71 */
#define RTC_IRQ 8
#define RTC_CMOS_SIZE 128
#define RTC_REG_CENTURY 0x32 /* boot/acpi.c names it in the FADT CENTURY field */

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;                /* selected CMOS byte, NMI bit dropped */
	uint8_t cmos[RTC_CMOS_SIZE];  /* time bytes unused: computed per read */
	int64_t offset;               /* guest time minus host time, seconds */
	struct tm frozen;             /* guest's time while register B SET is 1 */
	struct irq_line irq;          /* not raised yet: no alarm/periodic IRQs */
};

void rtc_init(struct rtc *rtc, struct irq_line irq);
void rtc_destroy(struct rtc *rtc);
int rtc_register(struct rtc *rtc, struct bus *pio);

#endif
