#!/usr/bin/env bash
# bench/blk: guest disk throughput for minivm and for QEMU's userspace
# virtio-blk, on the same raw image with the same cache mode, in one
# session (all inside one rig boot where this host's KVM cannot boot Linux).
# In the guest, bench/blkload.c runs with O_DIRECT and 4 requests in
# flight: sequential 1 MiB reads and writes, random 4 KiB reads and writes.
# RUNS boots per VMM (default 3), medians, and QEMU/minivm ratios.
# A benchmark, not a test: it asserts nothing.
. "$(dirname "$0")/lib.sh"
bench_setup 3072 3000 "$@"

bench_workdir 1100m
img=$work/disk.img
dd if=/dev/urandom of="$img" bs=1M count=512 status=none

APPEND=$(bench_append seqread seqwrite randread randwrite)
DRIVE="file=$img,if=virtio,format=raw,cache=$CACHE_MODE"

for vmm in minivm qemu; do
	for i in $(seq "$RUNS"); do
		echo "$vmm run $i:" >&2
		bench_boot "$vmm" "$vmm" "$APPEND" "$DRIVE"
	done
done

printf '\nbench/blk: %s runs each, %ss per test, cache=%s, 4 in flight, medians (%s)\n' \
	"$RUNS" "$SECS" "$CACHE_MODE" "$(bench_where)"
printf '%-10s %14s %14s %10s\n' test minivm qemu minivm/qemu
for mode in seqread seqwrite randread randwrite; do
	unit=$(bench_unit "$mode")
	m=$(bench_value minivm "$mode")
	q=$(bench_value qemu "$mode")
	printf '%-10s %9s %-4s %9s %-4s %10s\n' "$mode" "$m" "$unit" "$q" "$unit" "$(ratio "$m" "$q")"
done
bench_workdir_done
