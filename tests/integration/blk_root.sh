#!/usr/bin/env bash
# virtio-blk as the root disk: the kit boots with root=/dev/vda from a copy of
# rootfs.ext4 (the initramfs loads virtio_blk, mounts it and switch_root's
# into it). Two drives in command-line order become vda and vdb with their
# sizes and serials, writable; the guest reads a token that the host put
# into its copy of the image, so the root really is that file.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

# Images on a local file system (tmpfs in the rig): 9p makes every write
# synchronous, which doubles the guest's time.
scratch_dir_for fast
copy_rootfs "$dir/root.img"
truncate -s 32M "$dir/second.img"
token=token-$RANDOM$RANDOM
printf '%s\n' "$token" >"$dir/token"
debugfs -w -R "write $dir/token /etc/token" "$dir/root.img" >/dev/null 2>&1
[ "$(image_sha "$dir/root.img" /etc/token)" = "$(sha256sum <"$dir/token" | cut -d' ' -f1)" ] ||
	fail "could not put the token into the image"

# The scenario: blkinfo, then what only the disk has.
# shellcheck disable=SC2016  # expanded by the guest
script='sh /scenarios/blkinfo.sh
echo "token=$(cat /etc/token)"
echo "rootfs_marker=$(cat /etc/minivm-rootfs)"
'
out=$dir/root.log
rc=0
boot_guest "$out" -m 256 \
	-drive "file=$dir/root.img,if=virtio,format=raw,serial=minivm-root" \
	-drive "file=$dir/second.img,if=virtio,format=raw,serial=second-disk" \
	-append "console=ttyS0 quiet root=/dev/vda rw scenario64=$(printf '%s' "$script" | base64 -w0)" || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
[ "$(grep -c 'minivm-guest: init reached' "$out")" -eq 1 ] || fail "expected exactly one 'init reached'"
echo "ok: booted with root on /dev/vda"

expect_kv "$out" root_dev /dev/vda
expect_kv "$out" root_fstype ext4
[[ $(guest_kv "$out" root_opts) == rw,* ]] || fail "root not mounted rw: $(guest_kv "$out" root_opts)"
expect_kv "$out" token "$token"
[[ $(guest_kv "$out" rootfs_marker) == "minivm guest kit rootfs.ext4 "* ]] ||
	fail "no /etc/minivm-rootfs: / is not the kit's rootfs.ext4"
echo "ok: / is the ext4 image, mounted rw; the guest read the host's token from it"

expect_kv "$out" blk_count 2
expect_kv "$out" vda_sectors $(($(stat -c %s "$dir/root.img") / 512))
expect_kv "$out" vdb_sectors $((32 * 1024 * 2))
expect_kv "$out" vda_serial minivm-root
expect_kv "$out" vdb_serial second-disk
expect_kv "$out" vda_ro 0
expect_kv "$out" vdb_ro 0
expect_kv "$out" vda_logical_block_size 512
echo "ok: vda and vdb in command-line order, with their sizes and serials, writable"

# The guest remounted / read-only before powering off: the image is clean.
fsck_clean "$dir/root.img"
echo "ok: e2fsck -fn finds the root image clean after the boot"
