#!/bin/sh
# List the virtio devices the guest found, with their driver and, for block
# and network devices, what they became.  One line per device:
#   virtio-dev NAME device=0xID driver=DRIVER
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || continue
	drv=none
	[ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
	echo "virtio-dev $(basename "$d") device=$(cat "$d/device") driver=$drv"
done
for b in /sys/block/vd*; do
	[ -e "$b" ] && echo "virtio-blk $(basename "$b") sectors=$(cat "$b/size")"
done
for n in /sys/class/net/*; do
	case "$(basename "$n")" in lo) continue ;; esac
	echo "net $(basename "$n") mac=$(cat "$n/address")"
done
exit 0
