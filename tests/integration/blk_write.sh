#!/usr/bin/env bash
# Guest writes reach the image files: the guest (scenario diskwrite) writes
# files to its root file system (vda, a copy of rootfs.ext4) and to a second
# drive (vdb, a fresh sparse raw file) that it formats with busybox mke2fs
# and mounts; it syncs, drops its page cache, reads them back and powers off.
# The host then reads every file out of both images with debugfs (no mount):
# each SHA-256 must be what the guest computed, the files with predictable
# content must be byte-exact, and e2fsck -fn must find both file systems
# clean.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

# Images on a local file system (tmpfs in the rig): 9p makes every write
# synchronous, which doubles the guest's time.
scratch_dir_for fast
copy_rootfs "$dir/root.img"
truncate -s 16M "$dir/data.img"

out=$dir/write.log
rc=0
boot_guest "$out" -m 256 \
	-drive "file=$dir/root.img,if=virtio,format=raw" \
	-drive "file=$dir/data.img,if=virtio,format=raw" \
	-append "console=ttyS0 quiet root=/dev/vda rw scenario=diskwrite mkfs=vdb" || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
expect_kv "$out" mkfs:vdb ok
expect_kv "$out" readback:vda ok
expect_kv "$out" readback:vdb ok
expect_kv "$out" diskwrite ok
echo "ok: the guest wrote, synced and read back its files on vda and vdb"

# What the guest wrote is in the images.
n=$(check_guest_sums "$out" vda "$dir/root.img")
[ "$n" -eq 4 ] || fail "expected 4 files on vda, the guest reported $n"
n=$(check_guest_sums "$out" vdb "$dir/data.img")
[ "$n" -eq 4 ] || fail "expected 4 files on vdb, the guest reported $n"
echo "ok: debugfs finds the guest's files in both images, with the guest's checksums"

# Independently of the guest's checksums: the predictable files, exactly.
seq_sum=$(seq 1 20000 | sha256sum | cut -d' ' -f1)
[ "$(image_sha "$dir/root.img" /data/seq.txt)" = "$seq_sum" ] || fail "vda:/data/seq.txt is not 'seq 1 20000'"
[ "$(image_sha "$dir/data.img" /seq.txt)" = "$seq_sum" ] || fail "vdb:/seq.txt is not 'seq 1 20000'"
[ "$(debugfs -R 'cat /hello.txt' "$dir/data.img" 2>/dev/null)" = "hello from the minivm guest on vdb" ] ||
	fail "vdb:/hello.txt does not hold the expected text"
[ "$(debugfs -R 'cat /data/holes.bin' "$dir/root.img" 2>/dev/null | wc -c)" -eq $((3 * 1024 * 1024 + 512)) ] ||
	fail "vda:/data/holes.bin has the wrong size"
echo "ok: the files with known content are byte-exact"

fsck_clean "$dir/root.img"
fsck_clean "$dir/data.img"
echo "ok: e2fsck -fn finds both file systems clean"
