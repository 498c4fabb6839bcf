#!/usr/bin/env bash
# discard=unmap: blocks the guest frees go back to the host as holes in the
# image files. The host puts a 24 MiB file of random data into the root
# image (vda); the guest writes and deletes 16 MiB of its own, deletes the
# host's file and runs fstrim on /; it also runs blkdiscard on vdb, an 8 MiB
# raw file full of random data. Afterwards the root image must have at least
# 20 MiB fewer blocks allocated than before the boot (without discard it
# would have as many or more), vdb almost none, and the root file system must
# still be clean, without the deleted file.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

# The VMM punches holes in the image files (not on 9p, so not in the rig's
# $TMPDIR: tmpfs there).
scratch_dir_for punch
copy_rootfs "$dir/root.img"
head -c 24M /dev/urandom >"$dir/fill.bin"
debugfs -w -R "write $dir/fill.bin /fill.bin" "$dir/root.img" >/dev/null 2>&1
[ "$(image_sha "$dir/root.img" /fill.bin)" = "$(sha256sum <"$dir/fill.bin" | cut -d' ' -f1)" ] ||
	fail "could not put /fill.bin into the image"
rm "$dir/fill.bin"
fsck_clean "$dir/root.img"
head -c 8M /dev/urandom >"$dir/raw.img"
root_before=$(alloc_blocks "$dir/root.img")
raw_before=$(alloc_blocks "$dir/raw.img")

out=$dir/discard.log
rc=0
boot_guest "$out" -m 256 \
	-drive "file=$dir/root.img,if=virtio,format=raw,discard=unmap" \
	-drive "file=$dir/raw.img,if=virtio,format=raw,discard=unmap" \
	-append "console=ttyS0 quiet root=/dev/vda rw scenario=discard discard_rm=/fill.bin blkdiscard=vdb" || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
for d in vda vdb; do
	[ "$(guest_kv "$out" "${d}_discard_max_bytes")" -gt 0 ] || fail "$d: the guest sees no discard support"
done
trimmed=$(guest_kv "$out" fstrim:/)
[ "${trimmed:-0}" -ge $((20 * 1024 * 1024)) ] || fail "fstrim trimmed only '${trimmed}' bytes"
expect_kv "$out" blkdiscard:vdb ok
echo "ok: the guest sees discard on vda and vdb; fstrim trimmed $trimmed bytes; blkdiscard worked"

root_after=$(alloc_blocks "$dir/root.img")
raw_after=$(alloc_blocks "$dir/raw.img")
echo "root image: $((root_before / 2)) KiB -> $((root_after / 2)) KiB allocated; vdb: $((raw_before / 2)) KiB -> $((raw_after / 2)) KiB"
[ "$root_after" -le $((root_before - 20 * 1024 * 2)) ] ||
	fail "the root image did not get sparser by 20 MiB after fstrim"
[ "$raw_after" -le $((raw_before / 8)) ] || fail "vdb's image did not get sparse after blkdiscard"
echo "ok: both image files got sparser"

fsck_clean "$dir/root.img"
if debugfs -R 'ls /' "$dir/root.img" 2>/dev/null | grep -qw 'fill\.bin'; then
	fail "/fill.bin is still in the root image"
fi
echo "ok: the root file system is clean and /fill.bin is gone"
