#!/usr/bin/env bash
# bench/qcow2: is qcow2 slower than raw, and by how much? Guest disk
# throughput (bench/blkload.c, as bench/blk.sh: O_DIRECT, 4 in flight,
# 1 MiB sequential and 4 KiB random requests) on three 512 MiB disks, each
# made afresh before every boot, so that every run starts equal:
#   raw        a sparse raw file
#   qcow2      qcow2, preallocation=off: every first write to a cluster
#              allocates it (and writes its L2 entry and refcount)
#   qcow2-meta qcow2, preallocation=metadata: L2 tables and clusters are
#              there already, writes only fill them
# with minivm and with QEMU on the same images, in one rig session. In
# each boot the writes come first, so the reads find data the writes
# allocated where they reached and unallocated clusters elsewhere.
# RUNS boots per VMM and image (default 3), medians; the table gives
# minivm/QEMU for each image and each image against raw for each VMM.
# A benchmark, not a test: it asserts nothing.
#
# The images are made by minivm-img (MINIVM_IMG=qemu-img: by qemu-img).
BENCH_TARGETS=minivm-img
. "$(dirname "$0")/lib.sh"
bench_setup 3072 5000 "$@"

IMG=${MINIVM_IMG:-$BUILD/minivm-img}
IMAGES=(raw qcow2 qcow2-meta)
MODES=(seqwrite seqread randwrite randread)

bench_workdir 1200m
# make_image KIND PATH: a fresh 512 MiB disk of that kind.
make_image() {
	rm -f "$2"
	case $1 in
	raw) truncate -s 512M "$2" ;;
	qcow2) "$IMG" create -f qcow2 "$2" 512M >/dev/null ;;
	qcow2-meta) "$IMG" create -f qcow2 -o preallocation=metadata "$2" 512M >/dev/null ;;
	esac
}

APPEND=$(bench_append "${MODES[@]}")
for kind in "${IMAGES[@]}"; do
	fmt=${kind%-meta}
	for vmm in minivm qemu; do
		for i in $(seq "$RUNS"); do
			make_image "$kind" "$work/disk.$fmt"
			echo "$vmm $kind run $i:" >&2
			bench_boot "$vmm" "$vmm/$kind" "$APPEND" \
				"file=$work/disk.$fmt,if=virtio,format=$fmt,cache=$CACHE_MODE"
		done
	done
done
rm -f "$work"/disk.*

printf '\nbench/qcow2: %s runs each, %ss per test, 512 MiB fresh images, cache=%s, 4 in flight, medians (%s)\n' \
	"$RUNS" "$SECS" "$CACHE_MODE" "$(bench_where)"
printf '%-10s %-11s %14s %14s %12s %12s %12s\n' test image minivm qemu minivm/qemu \
	"minivm/raw" "qemu/raw"
for mode in "${MODES[@]}"; do
	unit=$(bench_unit "$mode")
	mraw=$(bench_value minivm/raw "$mode")
	qraw=$(bench_value qemu/raw "$mode")
	for kind in "${IMAGES[@]}"; do
		m=$(bench_value "minivm/$kind" "$mode")
		q=$(bench_value "qemu/$kind" "$mode")
		printf '%-10s %-11s %9s %-4s %9s %-4s %12s %12s %12s\n' "$mode" "$kind" \
			"$m" "$unit" "$q" "$unit" "$(ratio "$m" "$q")" "$(ratio "$m" "$mraw")" "$(ratio "$q" "$qraw")"
	done
done
bench_workdir_done
