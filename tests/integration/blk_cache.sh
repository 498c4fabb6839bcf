#!/usr/bin/env bash
# Every cache mode works, in one boot with one disk per mode: the root disk
# vda (a copy of rootfs.ext4) uses cache=writethrough, and vdb..vde, fresh
# sparse raw files, use none, writeback, directsync and unsafe. The guest
# formats and mounts vdb..vde, writes files to all five, syncs, drops its
# page cache, reads them back and powers off; the host finds every file in
# every image with the guest's checksum and e2fsck -fn finds every file
# system clean. Each disk also shows the guest the write cache its mode
# implies (QEMU's meaning): "write back" for writeback, none and unsafe,
# "write through" for writethrough and directsync.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

# none and directsync open their image with O_DIRECT, which tmpfs cannot do;
# the others go where I/O is fast (in the rig, O_DIRECT means 9p, where every
# write is synchronous, and fast means tmpfs).
scratch_dir_for direct
direct_dir=$dir
scratch_dir_for fast
fast_dir=$dir

modes=(writethrough none writeback directsync unsafe)
devs=(vda vdb vdc vdd vde)
imgs=()
drives=()
for i in "${!modes[@]}"; do
	mode=${modes[$i]}
	case $mode in
	none | directsync) img=$direct_dir/$mode.img ;;
	*) img=$fast_dir/$mode.img ;;
	esac
	if [ "$i" -eq 0 ]; then
		copy_rootfs "$img"
	else
		truncate -s 16M "$img"
	fi
	imgs+=("$img")
	drives+=(-drive "file=$img,if=virtio,format=raw,cache=$mode")
done

script='sh /scenarios/blkinfo.sh && sh /scenarios/diskwrite.sh'
out=$fast_dir/cache.log
rc=0
boot_guest "$out" -m 256 "${drives[@]}" \
	-append "console=ttyS0 quiet root=/dev/vda rw mkfs=vdb,vdc,vdd,vde scenario64=$(printf '%s\n' "$script" | base64 -w0)" || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
expect_kv "$out" blk_count 5
expect_kv "$out" diskwrite ok

for i in "${!modes[@]}"; do
	mode=${modes[$i]} dev=${devs[$i]} img=${imgs[$i]}
	case $mode in
	writethrough | directsync) wc="write through" ;;
	*) wc="write back" ;;
	esac
	expect_kv "$out" "${dev}_write_cache" "$wc"
	expect_kv "$out" "readback:$dev" ok
	n=$(check_guest_sums "$out" "$dev" "$img")
	[ "$n" -eq 4 ] || fail "cache=$mode: expected 4 files on $dev, the guest reported $n"
	fsck_clean "$img"
	echo "ok: cache=$mode ($dev): '$wc', $n files written, read back, found by the host; fsck clean"
done
