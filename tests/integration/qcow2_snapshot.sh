#!/usr/bin/env bash
# Internal qcow2 snapshots around a guest's writes, qemu-img as the judge.
# The host makes a qcow2 with known data (qemu-img convert from a raw file
# it wrote), takes snapshot "before" with minivm-img, and boots a guest on
# it (vda, format=qcow2) that overwrites known regions (scenario pattern):
# inside clusters the snapshot shares, in single 512-byte O_DIRECT writes
# (copy-on-write of part of a cluster), across the end of the data, and in
# clusters never written. Then:
#   - the image reads as the guest's writes over the original data
#     (qemu-img compare with a raw file the host built the same way);
#   - minivm-img snapshot -a before: it reads as it did before the boot;
#   - a snapshot "after" taken after the boot and applied gives the guest's
#     data back; deleting "before" leaves "after" and the data alone;
#   - qemu-img check finds the image clean after each step, and
#     qemu-img snapshot -l lists what minivm-img made.
#
# MINIVM_IMG=qemu-img makes qemu-img stand in for minivm-img.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

IMG=${MINIVM_IMG:-$MINIVM_BUILD/minivm-img}

# same_as RAW WHEN: the image reads exactly as RAW.
same_as() {
	local rc=0
	qemu-img compare -f raw -F qcow2 "$1" "$disk" >"$dir/compare.log" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$dir/compare.log" >&2; fail "$2: the image does not read as $(basename "$1") (qemu-img compare exit $rc)"; }
}

# snapshots_listed TOOL NAME...: TOOL snapshot -l names exactly these snapshots.
snapshots_listed() {
	local tool=$1 got want
	shift
	got=$("$tool" snapshot -l "$disk" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
	[ "$got" = "$want" ] || { "$tool" snapshot -l "$disk" >&2; fail "$tool snapshot -l lists '$got', expected '$want'"; }
}

scratch_dir_for fast
disk=$dir/disk.qcow2
# The original data: 1 MiB at 0, 2 MiB at 3 MiB, one cluster at 8 MiB.
truncate -s 16M "$dir/before.raw"
pat_apply "$dir/before.raw" base 0+1048576,3145728+2097152,8388608+65536
qemu-img convert -f raw -O qcow2 "$dir/before.raw" "$disk"
"$IMG" snapshot -c before "$disk" || fail "$IMG snapshot -c before failed"
qemu_check "$disk" "after snapshot -c"
snapshots_listed qemu-img before
echo "ok: minivm-img took snapshot 'before'; qemu-img lists it, the image is clean"

# The guest's writes: sectors 8-23 of the first (shared) cluster one by one;
# across the end of the first data; the middle of the second; the first
# cluster of the third; an empty area; the last 4 KiB.
regions=4096+8192+d,1048064+1024,4194304+1048576,8388608+4096,12582912+65536,16773120+4096
seed=snap$RANDOM
out=$dir/snapshot.log
rc=0
boot_guest "$out" -m 256 -drive "file=$disk,format=qcow2,if=virtio" \
	-append "console=ttyS0 quiet pat_dev=vda pat_seed=$seed pat_regions=$regions scenario=pattern" || rc=$?
expect_in "$out" "minivm-guest: scenario exit 0"
[ "$rc" -eq 0 ] || fail "$MINIVM_TEST_VMM exited $rc after poweroff"
expect_kv "$out" pattern:vda ok
echo "ok: the guest overwrote its regions and read them back"

cp --sparse=always "$dir/before.raw" "$dir/after.raw"
pat_apply "$dir/after.raw" "$seed" "$regions"
qemu_check "$disk" "after the boot"
same_as "$dir/after.raw" "after the boot"
snapshots_listed qemu-img before
echo "ok: the image holds the guest's writes over the original data; it is clean"

"$IMG" snapshot -c after "$disk" || fail "$IMG snapshot -c after failed"
snapshots_listed qemu-img after before
snapshots_listed "$IMG" after before
"$IMG" snapshot -a before "$disk" || fail "$IMG snapshot -a before failed"
qemu_check "$disk" "after snapshot -a before"
same_as "$dir/before.raw" "after snapshot -a before"
[ "$(qemu-img convert -f qcow2 -O raw "$disk" "$dir/now.raw" && sha256sum <"$dir/now.raw")" = \
	"$(sha256sum <"$dir/before.raw")" ] || fail "after snapshot -a before: the checksum differs from before the boot"
echo "ok: minivm-img snapshot -a before: the image reads as before the boot"

"$IMG" snapshot -a after "$disk" || fail "$IMG snapshot -a after failed"
qemu_check "$disk" "after snapshot -a after"
same_as "$dir/after.raw" "after snapshot -a after"
"$IMG" snapshot -d before "$disk" || fail "$IMG snapshot -d before failed"
qemu_check "$disk" "after snapshot -d before"
same_as "$dir/after.raw" "after snapshot -d before"
snapshots_listed qemu-img after
echo "ok: snapshot 'after' brings the guest's data back; deleting 'before' leaves it"
