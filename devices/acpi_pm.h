/* SPDX-License-Identifier: MIT */
#ifndef MINIVM_ACPI_PM_H
#define MINIVM_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/events.h"
#include "vmm/irq.h"

/*
 * Fixed-hardware ACPI register blocks. boot/acpi.c puts these same numbers
 * in the FADT and the DSDT's \_S5 package, so they are defined once, here.
 */
#define ACPI_PM1A_EVT_BLK 0x600 /* PM1a_STS (2 bytes) + PM1a_EN (2 bytes) */
#define ACPI_PM1A_CNT_BLK 0x604 /* 2 bytes */
#define ACPI_PM_TMR_BLK 0x608   /* 4 bytes, 3.579545 MHz, 24 bits */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR_LEN 4
#define ACPI_PM_TMR_HZ 3579545
#define ACPI_SCI_IRQ 9
#define ACPI_S5_SLP_TYP 5       /* value of SLP_TYP that means soft-off */
#define ACPI_RESET_PORT 0x64    /* FADT RESET_REG: the i8042 command port ... */
#define ACPI_RESET_VALUE 0xFE   /* ... and its pulse-reset command */

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t sts;               /* PM1a_STS, write-1-to-clear */
	uint16_t en;                /* PM1a_EN */
	uint16_t cnt;               /* PM1a_CNT but SCI_EN and write-only bits */
	struct timespec tmr_origin; /* CLOCK_MONOTONIC time when PM_TMR was 0 */
	int sci_level;              /* level last driven on the SCI line */
	struct event_sink events;   /* VM_EVENT_POWEROFF on SLP_EN with S5 */
	struct irq_line sci;
};

void acpi_pm_init(struct acpi_pm *pm, struct event_sink events, struct irq_line sci);
void acpi_pm_destroy(struct acpi_pm *pm);
int acpi_pm_register(struct acpi_pm *pm, struct bus *pio);
/* Presses the power button: sets PWRBTN_STS and raises the SCI if enabled. */
void acpi_pm_power_button(struct acpi_pm *pm);

#endif
