#!/bin/sh
# What the guest sees of its virtio block devices, one key=value a line:
#   blk_count=N
#   vdX_sectors=N  vdX_ro=0|1  vdX_serial=S  vdX_write_cache=write back|write through
#   vdX_logical_block_size=N  vdX_discard_max_bytes=N  vdX_discard_granularity=N
#   root_dev=DEV  root_fstype=T  root_opts=OPTS     (what / is, from /proc/mounts)
n=0
for b in /sys/block/vd*; do
	[ -e "$b" ] || continue
	d=${b##*/}
	n=$((n + 1))
	echo "${d}_sectors=$(cat "$b/size")"
	echo "${d}_ro=$(cat "$b/ro")"
	# virtio_blk asks the device for its ID (VIRTIO_BLK_T_GET_ID) on each read.
	echo "${d}_serial=$(cat "$b/serial" 2>/dev/null)"
	echo "${d}_write_cache=$(cat "$b/queue/write_cache")"
	echo "${d}_logical_block_size=$(cat "$b/queue/logical_block_size")"
	echo "${d}_discard_max_bytes=$(cat "$b/queue/discard_max_bytes")"
	echo "${d}_discard_granularity=$(cat "$b/queue/discard_granularity")"
done
echo "blk_count=$n"
awk '$2 == "/" { d = $1; t = $3; o = $4 } END { print "root_dev=" d; print "root_fstype=" t; print "root_opts=" o }' /proc/mounts
exit 0
