#!/bin/sh
# Write random data across a raw disk in a loop, each chunk made durable
# (fsync) before it is reported, until the host kills the VMM. The host
# then checks the image's metadata and that every reported chunk is there.
# Kernel parameters:
#   cw_dev=vdX     the disk (default vda)
#   cw_start=N     first slot (default 0), so two runs can use different slots
# The disk is cut into 128 KiB slots; iteration I writes 80 KiB of fresh
# random data into slot (cw_start + 37 I) mod SLOTS, at (I mod 12) * 4 KiB
# inside it, so chunks straddle cluster boundaries and no two chunks of a
# run overlap (37 is prime to SLOTS, a power of two, for a power-of-two
# disk). Even iterations write through the page cache, odd ones O_DIRECT;
# both end with fsync, i.e. a flush request. Prints:
#   crash:writing              once the first chunk is durable
#   crash:chunk:OFF=SHA256     after each chunk's fsync returned
#   crash:alldone              every slot written once (then it waits)
param() {
	read -r cmdline </proc/cmdline
	for a in $cmdline; do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
	echo "$2"
}
dev=/dev/$(param cw_dev vda)
start=$(param cw_start 0)
[ -b "$dev" ] || { echo "crash:error=no $dev"; exit 1; }
slots=$(($(cat "/sys/block/${dev#/dev/}/size") * 512 / 131072))
[ "$slots" -ge 2 ] || { echo "crash:error=disk too small"; exit 1; }

i=0
while [ "$i" -lt "$slots" ]; do
	off=$((((start + 37 * i) % slots) * 131072 + (i % 12) * 4096))
	dd if=/dev/urandom of=/tmp/chunk bs=4k count=20 2>/dev/null
	if [ $((i % 2)) -eq 0 ]; then
		flags=seek_bytes
	else
		flags=seek_bytes,direct
	fi
	dd if=/tmp/chunk of="$dev" bs=4k oflag="$flags" seek="$off" conv=notrunc,fsync \
		2>/dev/null || { echo "crash:error=write at $off failed"; exit 1; }
	[ "$i" -eq 0 ] && echo "crash:writing"
	echo "crash:chunk:$off=$(sha256sum </tmp/chunk | cut -d' ' -f1)"
	i=$((i + 1))
done
echo "crash:alldone"
# The host kills the VMM while this waits: an exit here would power off.
sleep 600
