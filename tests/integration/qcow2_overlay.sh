#!/usr/bin/env bash
# qcow2 as a guest's disks, with qemu-img as the judge. One boot, two disks:
#   vda  a qcow2 overlay (made by minivm-img, backing file a copy of
#        rootfs.ext4, named relative to the overlay, backing_fmt raw),
#        given with format=qcow2, and the root file system: the guest
#        (scenario diskwrite) writes files to /data;
#   vdb  a qcow2 without backing file, preallocation=metadata, given
#        WITHOUT format= so that minivm must probe it; the guest (scenario
#        pattern) writes known bytes at known offsets, some in single
#        512-byte O_DIRECT requests.
# Afterwards: the base image is bit-for-bit unchanged; qemu-img check finds
# both qcow2 images clean; the overlay, converted to raw by qemu-img, holds
# the guest's files with the guest's checksums and a clean ext4; and
# qemu-img compare finds vdb equal to a raw image the host built with the
# same bytes at the same offsets (zeros everywhere else).
#
# MINIVM_IMG=qemu-img makes qemu-img stand in for minivm-img (to check the
# test itself, with MINIVM_TEST_VMM=qemu).
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

IMG=${MINIVM_IMG:-$MINIVM_BUILD/minivm-img}

# Images on a local file system (tmpfs in the rig): 9p makes every write
# synchronous, which doubles the guest's time.
scratch_dir_for fast
copy_rootfs "$dir/base.raw"
base_sum=$(sha256sum <"$dir/base.raw")
# A relative backing file name: minivm must find it next to the overlay,
# not in its own working directory.
(cd "$dir" && "$IMG" create -f qcow2 -b base.raw -F raw overlay.qcow2 >/dev/null) ||
	fail "$IMG create of the overlay failed"
"$IMG" create -f qcow2 -o preallocation=metadata "$dir/data.qcow2" 16M >/dev/null ||
	fail "$IMG create -o preallocation=metadata failed"

# Regions on vdb: the first cluster, an unaligned start and length, 256 KiB
# in 512-byte direct writes (each a partial cluster), 2 MiB across many
# clusters, and the disk's last 4 KiB.
regions=0+65536,1049088+100000,4194304+262144+d,7340032+2097152,16773120+4096
script="sh /scenarios/diskwrite.sh && sh /scenarios/pattern.sh"
seed=ov$RANDOM
out=$dir/overlay.log
rc=0
# From /, so that a backing name resolved against the VMM's working
# directory instead of the overlay's is not found.
(cd / && boot_guest "$out" -m 256 \
	-drive "file=$dir/overlay.qcow2,format=qcow2,if=virtio" \
	-drive "file=$dir/data.qcow2,if=virtio" \
	-append "console=ttyS0 quiet root=/dev/vda rw pat_dev=vdb pat_seed=$seed pat_regions=$regions scenario64=$(printf '%s' "$script" | base64 -w0)") || rc=$?
expect_in "$out" "minivm-guest: root on /dev/vda"
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
expect_kv "$out" diskwrite ok
expect_kv "$out" readback:vda ok
expect_kv "$out" pattern:vdb ok
echo "ok: the guest booted from the qcow2 overlay, wrote its files and the pattern, read them back"

[ "$(sha256sum <"$dir/base.raw")" = "$base_sum" ] || fail "the base image changed"
echo "ok: the base image is unchanged"

qemu_check "$dir/overlay.qcow2"
qemu_check "$dir/data.qcow2"
echo "ok: qemu-img check finds both qcow2 images clean"

qemu-img convert -f qcow2 -O raw "$dir/overlay.qcow2" "$dir/merged.raw"
n=$(check_guest_sums "$out" vda "$dir/merged.raw")
[ "$n" -eq 4 ] || fail "expected 4 files on vda, the guest reported $n"
seq_sum=$(seq 1 20000 | sha256sum | cut -d' ' -f1)
[ "$(image_sha "$dir/merged.raw" /data/seq.txt)" = "$seq_sum" ] || fail "vda:/data/seq.txt is not 'seq 1 20000'"
[ "$(image_sha "$dir/base.raw" /data/seq.txt)" != "$seq_sum" ] || fail "the base image has the guest's file"
fsck_clean "$dir/merged.raw"
echo "ok: the overlay holds the guest's files, with the guest's checksums; its ext4 is clean"

# vdb: the host writes the same bytes into a raw file of the same size.
truncate -s 16M "$dir/expected.raw"
pat_apply "$dir/expected.raw" "$seed" "$regions"
for r in ${regions//,/ }; do
	off=${r%%+*}
	len=${r#*+} len=${len%%+*}
	want=$(dd if="$dir/expected.raw" bs=64k iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none |
		sha256sum | cut -d' ' -f1)
	expect_kv "$out" "pattern:vdb:$off" "$want"
done
rc=0
qemu-img compare -f raw -F qcow2 "$dir/expected.raw" "$dir/data.qcow2" >"$dir/compare.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/compare.log" >&2; fail "qemu-img compare: vdb is not what the guest wrote (exit $rc)"; }
echo "ok: qemu-img compare finds vdb byte-exact: the guest's pattern, zeros elsewhere"
