#!/bin/sh
# Write files with known content, sync, drop the page cache, read them back
# from the disk, and report their SHA-256 so the host can compare with what
# it finds in the image.  Kernel parameters:
#   dw_root=DIR      directory on the root file system (default /data; "none": skip)
#   mkfs=vdb[,vdc]   also format each disk with busybox mke2fs, mount it on
#                    /mnt/vdX and write the same files to its top directory
# For each file:   sha256:DEV:PATH=HEX   (DEV: vda for the root disk, PATH inside that fs)
# For each fs:     written:DEV=N files  readback:DEV=ok|mismatch
# At the end:      diskwrite=ok|failed
# The disks are unmounted at the end; /init remounts / read-only before
# powering off, so the host sees clean file systems.
param() {
	read -r cmdline </proc/cmdline
	for a in $cmdline; do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
	echo "$2"
}
status=ok
sum() { sha256sum <"$1" | cut -d' ' -f1; }

# write_set DEV DIR PREFIX: PREFIX is DIR's path inside DEV's file system.
write_set() {
	dev=$1 dir=$2 prefix=$3
	mkdir -p "$dir" || { status=failed; return; }
	seq 1 20000 >"$dir/seq.txt"
	echo "hello from the minivm guest on $dev" >"$dir/hello.txt"
	# 4 MiB of random data: many requests, some of them large.
	dd if=/dev/urandom of="$dir/rand.bin" bs=64k count=64 2>/dev/null
	# A sparse file with data at 1 MiB and 3 MiB: writes at offsets.
	dd if=/dev/urandom of="$dir/holes.bin" bs=4k count=3 seek=256 conv=notrunc 2>/dev/null
	dd if=/dev/urandom of="$dir/holes.bin" bs=512 count=1 seek=6144 conv=notrunc 2>/dev/null
	sync
	n=0
	for f in seq.txt hello.txt rand.bin holes.bin; do
		s=$(sum "$dir/$f")
		eval "sum_${dev}_$n=$s"
		echo "sha256:$dev:$prefix/$f=$s"
		n=$((n + 1))
	done
	echo "written:$dev=$n files"
}

# check_set DEV DIR: the same sums again, after the page cache was dropped.
check_set() {
	dev=$1 dir=$2 n=0 r=ok want=
	for f in seq.txt hello.txt rand.bin holes.bin; do
		eval "want=\$sum_${dev}_$n"
		[ "$(sum "$dir/$f")" = "$want" ] || { r=mismatch; echo "readback:$dev:$f differs"; }
		n=$((n + 1))
	done
	echo "readback:$dev=$r"
	[ "$r" = ok ] || status=failed
}

root_dir=$(param dw_root /data)
disks=$(param mkfs "" | tr ',' ' ')
rootdev=$(awk '$2 == "/" { d = $1 } END { print d }' /proc/mounts)
rootdev=${rootdev#/dev/}

for d in $disks; do
	if ! mke2fs -F -L "$d" "/dev/$d" >"/tmp/mke2fs.$d.log" 2>&1; then
		echo "mkfs:$d=failed"
		cat "/tmp/mke2fs.$d.log"
		status=failed
		continue
	fi
	mkdir -p "/mnt/$d"
	if mount -t ext2 "/dev/$d" "/mnt/$d"; then
		echo "mkfs:$d=ok"
		write_set "$d" "/mnt/$d" ""
	else
		echo "mkfs:$d=mount-failed"
		status=failed
	fi
done
[ "$root_dir" != none ] && write_set "$rootdev" "$root_dir" "$root_dir"

echo 3 >/proc/sys/vm/drop_caches
for d in $disks; do
	grep -q " /mnt/$d " /proc/mounts && check_set "$d" "/mnt/$d"
done
[ "$root_dir" != none ] && check_set "$rootdev" "$root_dir"

for d in $disks; do
	grep -q " /mnt/$d " /proc/mounts || continue
	umount "/mnt/$d" || { echo "umount:$d=failed"; status=failed; }
done
echo "diskwrite=$status"
[ "$status" = ok ]
