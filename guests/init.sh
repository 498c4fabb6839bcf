#!/bin/sh
# shellcheck shell=sh
# minivm guest kit /init (busybox sh).  The same script is /init in the
# initramfs (initrd.img) and in the root file system image (rootfs.ext4), both
# built by guests/build-kit.sh.  Protocol (the kernel command line, read from
# /proc/cmdline):
#   root=DEV [rootfstype=T] [rootflags=OPTS] [rw]
#                     in the initramfs: mount DEV (read-only unless 'rw', as
#                     the kernel does) and switch_root into it; its /init (this
#                     script) prints "minivm-guest: root on DEV" and goes on
#                     below.  Without root= the initramfs is the root.
#   prints "minivm-guest: init reached" once the virtio modules are loaded;
#   scenario=NAME     runs /scenarios/NAME.sh
#   scenario64=B64    runs the base64-decoded shell script
#   after a scenario: prints "minivm-guest: scenario exit N", then powers off
#   otherwise: an interactive shell on the console; powers off when it exits.
# The ACPI power button powers off as above (acpid, then /init --power-button).
# Powering off syncs and, on a disk root, unmounts the other disks and
# remounts / read-only first, so the images are clean when the VMM exits.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root TERM="${TERM:-linux}"

# What "/" is: "DEVICE FSTYPE" from /proc/mounts (the last mount on / wins).
root_mount() { awk '$2 == "/" { m = $1 " " $3 } END { print m }' /proc/mounts; }
on_disk_root() {
	case "$(root_mount)" in
	*" rootfs" | *" ramfs" | *" tmpfs") return 1 ;;
	esac
	return 0
}

power_off() {
	sync
	if on_disk_root; then
		# Other disks first (innermost first), then / read-only: ext4 then
		# writes back its journal, so the host sees a clean image.
		awk '$1 ~ /^\/dev\// && $2 != "/" { print $2 }' /proc/mounts | sort -r |
			while read -r mp; do
				umount "$mp" 2>/dev/null || echo "minivm-guest: warning: cannot unmount $mp"
			done
		mount -o remount,ro / || echo "minivm-guest: warning: cannot remount / read-only"
	fi
	poweroff -f
}

# The ACPI power button (minivm's system_powerdown, or SIGTERM to minivm):
# acpid runs /etc/acpi/PWRF/00000080, which runs "/init --power-button".
if [ "${1:-}" = --power-button ]; then
	echo "minivm-guest: power button pressed, powering off" >/dev/console
	power_off
	exit 0
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
hostname minivm-guest

# Quietly: some of these may be built in, and a missing device is no error.
for m in virtio_pci virtio_mmio virtio_blk virtio_net virtio_console virtio_rng; do
	modprobe -q "$m" 2>/dev/null
done

scenario=
scenario64=
root=
rootfstype=
rootflags=
rootmode=ro
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	scenario=*) scenario=${arg#scenario=} ;;
	scenario64=*) scenario64=${arg#scenario64=} ;;
	root=*) root=${arg#root=} ;;
	rootfstype=*) rootfstype=${arg#rootfstype=} ;;
	rootflags=*) rootflags=${arg#rootflags=} ;;
	rw) rootmode=rw ;;
	ro) rootmode=ro ;;
	esac
done

# In the initramfs with root=DEV: mount it on /newroot and hand over to its
# /init.  Returns only when that failed.
switch_to_root() {
	# The disk appears as virtio_blk probes it; allow a few seconds.
	i=0
	while [ ! -b "$root" ] && [ "$i" -lt 50 ]; do
		case "$root" in /dev/*) ;; *) break ;; esac
		sleep 0.1
		i=$((i + 1))
	done
	mkdir -p /newroot
	opts=$rootmode
	[ -n "$rootflags" ] && opts=$opts,$rootflags
	if ! mount ${rootfstype:+-t "$rootfstype"} -o "$opts" "$root" /newroot; then
		# shellcheck disable=SC2012  # kernel device names
		echo "minivm-guest: error: cannot mount root=$root (block devices: $(ls /sys/block | tr '\n' ' '))"
		return 1
	fi
	if [ ! -x /newroot/init ]; then
		echo "minivm-guest: error: root=$root has no executable /init"
		umount /newroot
		return 1
	fi
	# The new /init mounts these itself.
	umount /dev/pts /dev/shm /dev /tmp /sys /proc 2>/dev/null
	exec switch_root /newroot /init
}

if [ -n "$root" ] && ! on_disk_root; then
	switch_to_root
	if [ -n "$scenario$scenario64" ]; then
		echo "minivm-guest: scenario exit 125"
		power_off
	fi
	echo "minivm-guest: staying in the initramfs"
fi
if on_disk_root; then
	echo "minivm-guest: root on $(root_mount | cut -d' ' -f1)"
fi

# The power button reaches userspace as a key press on an input device
# (button.ko, evdev.ko); busybox acpid watches /dev/input/event* for it.
modprobe -q button 2>/dev/null
modprobe -q evdev 2>/dev/null
acpid -c /etc/acpi -l /tmp/acpid.log -p /tmp/acpid.pid 2>/dev/null ||
	echo "minivm-guest: warning: no acpid: the power button does nothing"

echo "minivm-guest: init reached"

run_scenario() {
	sh "$1"
	rc=$?
	echo "minivm-guest: scenario exit $rc"
	power_off
}

if [ -n "$scenario64" ]; then
	if echo "$scenario64" | base64 -d >/tmp/scenario64.sh 2>/dev/null; then
		run_scenario /tmp/scenario64.sh
	else
		echo "minivm-guest: scenario64 is not valid base64"
		echo "minivm-guest: scenario exit 127"
		power_off
	fi
elif [ -n "$scenario" ]; then
	if [ -f "/scenarios/$scenario.sh" ]; then
		run_scenario "/scenarios/$scenario.sh"
	else
		# shellcheck disable=SC2012  # our own file names
		echo "minivm-guest: no scenario '$scenario' (have: $(cd /scenarios && ls | sed 's/\.sh$//' | tr '\n' ' '))"
		echo "minivm-guest: scenario exit 127"
		power_off
	fi
fi

echo "minivm-guest: interactive shell; type 'exit' or Ctrl-D to power off"
# cttyhack reopens the real console (ttyS0) as the controlling terminal, so
# job control and Ctrl-C work; setsid gives the shell its own session.
setsid cttyhack sh -l
echo "minivm-guest: shell exited, powering off"
power_off
