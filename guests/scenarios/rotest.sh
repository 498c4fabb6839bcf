#!/bin/sh
# A read-only disk (-drive ...,readonly=on): the guest can read it, and every
# way of writing to it fails.  Kernel parameter rodisk=vdX (default vdb).
# Prints, for the read-only disk:
#   ro:sysfs=0|1               /sys/block/vdX/ro
#   ro:mount_opts=OPTS         how a plain `mount` (busybox falls back to ro) mounted it
#   sha256:vdX:/PATH=HEX       each regular file in its top directory, read back
#   ro:fs_write=ok|failed      creating a file on it
#   ro:remount_rw=ok|failed    mount -o remount,rw
#   ro:raw_write=ok|failed     dd to the block device
#   ro:setrw_write=ok|failed   blockdev --setrw, then dd with O_DIRECT
# and, as a control, the same writes on the root disk (rw):
#   rw:fs_write=ok|failed  rw:raw_read=ok|failed
param() {
	read -r cmdline </proc/cmdline
	for a in $cmdline; do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
	echo "$2"
}
result() { if "$@" >/dev/null 2>&1; then echo ok; else echo failed; fi; }

d=$(param rodisk vdb)
dev=/dev/$d
[ -b "$dev" ] || { echo "ro:error=no $dev"; exit 1; }
echo "ro:sysfs=$(cat "/sys/block/$d/ro")"

mkdir -p /mnt/ro
mount "$dev" /mnt/ro 2>/tmp/mount.err || { echo "ro:mount=failed"; cat /tmp/mount.err; exit 1; }
echo "ro:mount_opts=$(awk '$2 == "/mnt/ro" { print $4 }' /proc/mounts)"
for f in /mnt/ro/*; do
	[ -f "$f" ] && echo "sha256:$d:${f#/mnt/ro}=$(sha256sum <"$f" | cut -d' ' -f1)"
done
echo "ro:fs_write=$(result sh -c 'echo x >/mnt/ro/written-by-guest && sync -f /mnt/ro/written-by-guest')"
echo "ro:remount_rw=$(result mount -o remount,rw /mnt/ro)"
umount /mnt/ro
# The first 4 KiB hold the ext4 superblock's neighbourhood: writing them
# back unchanged proves nothing, so write zeros.
echo "ro:raw_write=$(result dd if=/dev/zero of="$dev" bs=4096 count=1 seek=1 conv=fsync)"
blockdev --setrw "$dev" 2>/dev/null
echo "ro:setrw_write=$(result dd if=/dev/zero of="$dev" bs=4096 count=1 seek=1 oflag=direct)"

# Control: the root disk takes writes the same way.
echo "rw:fs_write=$(result sh -c 'echo x >/rw-probe && sync && rm /rw-probe && sync')"
rootdev=$(awk '$2 == "/" { d = $1 } END { print d }' /proc/mounts)
echo "rw:raw_read=$(result dd if="$rootdev" of=/dev/null bs=4096 count=1 iflag=direct)"
exit 0
