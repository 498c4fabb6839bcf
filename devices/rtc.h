/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_RTC_H
#define MINIVM_RTC_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/irq.h"

#define RTC_PORT 0x70 /* index at 0x70, data at 0x71 */
#define RTC_IRQ 8

struct rtc {
	pthread_mutex_t lock;
	/* TODO(helper): index register, CMOS bytes, ... */
	struct irq_line irq;
};

void rtc_init(struct rtc *rtc, struct irq_line irq);
void rtc_destroy(struct rtc *rtc);
int rtc_register(struct rtc *rtc, struct bus *pio);

#endif
