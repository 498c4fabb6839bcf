// SPDX-License-Identifier: MIT
/*
 * ACPI fixed hardware: the PM1a event block (PM1_STS, PM1_EN), the PM1a
 * control block (PM1_CNT) and the 24-bit power-management timer, at the
 * ports acpi_pm.h shares with the FADT. Follows ACPI 6.x §4.8 "ACPI Hardware
 * Specification": fixed-feature registers §4.8.3 and the PM timer §4.8.3.3.
 *
 * There is no legacy (SMI) mode: the FADT has SMI_CMD = 0, so SCI_EN always
 * reads 1. The only event source is the power button; the only sleep state
 * is S5, which powers the VM off.
 */
#include <errno.h>
#include <string.h>

#include "devices/acpi_pm.h"

/* PM1_STS and PM1_EN share bit positions for each event. */
#define PM1_TMR 0x0001
#define PM1_GBL 0x0020
#define PM1_PWRBTN 0x0100
#define PM1_SLPBTN 0x0200
#define PM1_RTC 0x0400
#define PM1_PCIEXP_WAKE_DIS 0x4000 /* PM1_EN only */
#define PM1_SCI_EVENTS (PM1_TMR | PM1_GBL | PM1_PWRBTN | PM1_SLPBTN | PM1_RTC)
#define PM1_EN_MASK (PM1_SCI_EVENTS | PM1_PCIEXP_WAKE_DIS)

#define CNT_SCI_EN 0x0001
#define CNT_BM_RLD 0x0002
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP (7 << CNT_SLP_TYP_SHIFT)
#define CNT_SLP_EN 0x2000
/* GBL_RLS and SLP_EN are write-only; the rest of the byte is reserved. */
#define CNT_STORED (CNT_BM_RLD | CNT_SLP_TYP)

#define TMR_MASK 0xffffff
#define NSEC_PER_SEC 1000000000LL

/* The SCI is level-triggered: high for as long as an enabled event is set. */
static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	int level = (pm->sts & pm->en & PM1_SCI_EVENTS) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_set(&pm->sci, level);
	}
}

static uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
	struct timespec now;
	int64_t ns, ticks;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (now.tv_sec - pm->tmr_origin.tv_sec) * NSEC_PER_SEC +
	     (now.tv_nsec - pm->tmr_origin.tv_nsec);
	/* Split so ns * 3.58 MHz cannot overflow however long the VM runs. */
	ticks = ns / NSEC_PER_SEC * ACPI_PM_TMR_HZ +
		ns % NSEC_PER_SEC * ACPI_PM_TMR_HZ / NSEC_PER_SEC;
	return ticks & TMR_MASK;
}

/* Registers are little-endian; bytes past the block read as a floating bus. */
static void acpi_pm_put_bytes(uint32_t block, unsigned len, uint64_t offset,
			      void *data, unsigned size)
{
	uint8_t *p = data;

	for (unsigned i = 0; i < size; i++)
		p[i] = offset + i < len ? block >> (8 * (offset + i)) : 0xff;
}

static void pm1_evt_write_byte(struct acpi_pm *pm, unsigned byte, uint8_t v)
{
	unsigned shift = 8 * (byte & 1);

	if (byte < 2)
		pm->sts &= ~(v << shift);
	else
		pm->en = ((pm->en & ~(0xff << shift)) | (v << shift)) &
			 PM1_EN_MASK;
}

static void pm1_evt_read(void *opaque, uint64_t offset, void *data,
			 unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint32_t block;

	pthread_mutex_lock(&pm->lock);
	block = pm->sts | (uint32_t)pm->en << 16;
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_put_bytes(block, ACPI_PM1_EVT_LEN, offset, data, size);
}

static void pm1_evt_write(void *opaque, uint64_t offset, const void *data,
			  unsigned size)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *p = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM1_EVT_LEN; i++)
		pm1_evt_write_byte(pm, offset + i, p[i]);
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void pm1_cnt_read(void *opaque, uint64_t offset, void *data,
			 unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint32_t block;

	pthread_mutex_lock(&pm->lock);
	block = pm->cnt | CNT_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_put_bytes(block, ACPI_PM1_CNT_LEN, offset, data, size);
}

/*
 * SLP_TYP and SLP_EN share the high byte, so the guest's one write of both
 * arrives together whatever its access size. Sleep types other than S5 are
 * not offered in the DSDT and are ignored.
 */
static void pm1_cnt_write(void *opaque, uint64_t offset, const void *data,
			  unsigned size)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *p = data;
	bool poweroff = false;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM1_CNT_LEN; i++) {
		unsigned shift = 8 * (offset + i);
		uint16_t v = p[i] << shift;
		unsigned slp_typ;

		pm->cnt = ((pm->cnt & ~(0xff << shift)) | v) & CNT_STORED;
		slp_typ = (pm->cnt & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT;
		if ((v & CNT_SLP_EN) && slp_typ == ACPI_S5_SLP_TYP)
			poweroff = true;
	}
	pthread_mutex_unlock(&pm->lock);
	/* Unlocked: the VM's handler may stop the vCPU that is calling. */
	if (poweroff)
		event_fire(&pm->events, VM_EVENT_POWEROFF);
}

/* The timer needs no lock: its origin never changes after init. */
static void pm_tmr_read(void *opaque, uint64_t offset, void *data,
			unsigned size)
{
	acpi_pm_put_bytes(acpi_pm_timer(opaque), ACPI_PM_TMR_LEN, offset, data,
			  size);
}

/* The timer is read-only. */
static void pm_tmr_write(void *opaque, uint64_t offset, const void *data,
			 unsigned size)
{
	(void)opaque, (void)offset, (void)data, (void)size;
}

static const struct bus_ops pm1_evt_ops = {
	.read = pm1_evt_read,
	.write = pm1_evt_write,
};

static const struct bus_ops pm1_cnt_ops = {
	.read = pm1_cnt_read,
	.write = pm1_cnt_write,
};

static const struct bus_ops pm_tmr_ops = {
	.read = pm_tmr_read,
	.write = pm_tmr_write,
};

void acpi_pm_init(struct acpi_pm *pm, struct event_sink events, struct irq_line sci)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->events = events;
	pm->sci = sci;
	clock_gettime(CLOCK_MONOTONIC, &pm->tmr_origin);
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

int acpi_pm_register(struct acpi_pm *pm, struct bus *pio)
{
	int ret;

	ret = bus_register(pio, ACPI_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN,
			   &pm1_evt_ops, pm, "acpi-pm1-evt");
	if (ret)
		return ret;
	ret = bus_register(pio, ACPI_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN,
			   &pm1_cnt_ops, pm, "acpi-pm1-cnt");
	if (ret)
		goto err_evt;
	ret = bus_register(pio, ACPI_PM_TMR_BLK, ACPI_PM_TMR_LEN,
			   &pm_tmr_ops, pm, "acpi-pm-tmr");
	if (ret)
		goto err_cnt;
	return 0;
err_cnt:
	bus_unregister(pio, ACPI_PM1A_CNT_BLK);
err_evt:
	bus_unregister(pio, ACPI_PM1A_EVT_BLK);
	return ret;
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_PWRBTN;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}
