#!/usr/bin/env bash
# readonly=on: the guest sees a read-only disk (/sys/block/vdb/ro = 1), can
# mount it read-only and read its files (checked against the host's), and
# every write fails: a file on the mounted fs, a remount rw, dd to the block
# device, and dd with O_DIRECT after blockdev --setrw. The image file stays
# byte-identical. As a control, the same writes succeed on the rw root disk.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

# Images on a local file system (tmpfs in the rig): 9p makes every write
# synchronous, which doubles the guest's time.
scratch_dir_for fast
copy_rootfs "$dir/root.img"
mkdir "$dir/ro"
printf 'read-only data %s\n' "$RANDOM$RANDOM" >"$dir/ro/hello.txt"
head -c 300000 /dev/urandom >"$dir/ro/rand.bin"
truncate -s 16M "$dir/ro.img"
mke2fs -q -F -t ext4 -L ro-disk -d "$dir/ro" "$dir/ro.img"
before=$(sha256sum <"$dir/ro.img")

out=$dir/ro.log
rc=0
boot_guest "$out" -m 256 \
	-drive "file=$dir/root.img,if=virtio,format=raw" \
	-drive "file=$dir/ro.img,if=virtio,format=raw,readonly=on" \
	-append "console=ttyS0 quiet root=/dev/vda rw scenario=rotest rodisk=vdb" || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"

expect_kv "$out" ro:sysfs 1
[[ $(guest_kv "$out" ro:mount_opts) == ro,* ]] || fail "vdb was mounted '$(guest_kv "$out" ro:mount_opts)', not ro"
for f in hello.txt rand.bin; do
	expect_kv "$out" "sha256:vdb:/$f" "$(sha256sum <"$dir/ro/$f" | cut -d' ' -f1)"
done
echo "ok: the guest sees vdb read-only and reads the host's files from it"

expect_kv "$out" ro:fs_write failed
expect_kv "$out" ro:remount_rw failed
expect_kv "$out" ro:raw_write failed
expect_kv "$out" ro:setrw_write failed
expect_kv "$out" rw:fs_write ok
expect_kv "$out" rw:raw_read ok
echo "ok: every write to vdb fails; the same writes work on the rw root disk"

[ "$(sha256sum <"$dir/ro.img")" = "$before" ] || fail "the read-only image changed"
echo "ok: the read-only image is byte-identical after the boot"
