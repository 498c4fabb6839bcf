#!/bin/sh
# Discard (-drive ...,discard=unmap): freed blocks go back to the host, so
# the image file gets sparser.  Kernel parameters:
#   discard_rm=/a[,/b]  files on the root file system to delete first
#                       (the host put them there, so it can compare)
#   blkdiscard=vdX[,..] whole disks to discard with blkdiscard
# The scenario also writes a 16 MiB file of its own and deletes it: with
# discard working that leaves no trace in the image.  Prints:
#   vdX_discard_max_bytes=N  vdX_discard_granularity=N   (0: no discard)
#   fstrim:/=N               bytes fstrim reported trimmed on /
#   blkdiscard:vdX=ok|failed
param() {
	read -r cmdline </proc/cmdline
	for a in $cmdline; do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
	echo "$2"
}
rc=0
for b in /sys/block/vd*; do
	[ -e "$b" ] || continue
	echo "${b##*/}_discard_max_bytes=$(cat "$b/queue/discard_max_bytes")"
	echo "${b##*/}_discard_granularity=$(cat "$b/queue/discard_granularity")"
done

dd if=/dev/urandom of=/big.bin bs=64k count=256 2>/dev/null
sync
for f in $(param discard_rm "" | tr ',' ' ') /big.bin; do
	rm -f "$f" || rc=1
done
sync
# busybox fstrim -v: "/: 12345 bytes trimmed"
out=$(fstrim -v / 2>&1) || { echo "fstrim:error=$out"; rc=1; }
echo "fstrim:/=$(echo "$out" | sed -n 's/.*: \([0-9]*\) bytes.*/\1/p')"

for d in $(param blkdiscard "" | tr ',' ' '); do
	if blkdiscard "/dev/$d" 2>/tmp/blkdiscard.err; then
		echo "blkdiscard:$d=ok"
	else
		echo "blkdiscard:$d=failed $(cat /tmp/blkdiscard.err)"
		rc=1
	fi
done
exit $rc
