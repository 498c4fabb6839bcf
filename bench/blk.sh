#!/usr/bin/env bash
# bench/blk: guest disk throughput for minivm and for QEMU's userspace
# virtio-blk, on the same raw image with the same cache mode, in one
# session (all inside one rig boot where this host's KVM cannot boot Linux).
# In the guest, bench/blkload.c runs with O_DIRECT and 4 requests in
# flight: sequential 1 MiB reads and writes, random 4 KiB reads and writes.
# RUNS boots per VMM (default 3), medians, and QEMU/minivm ratios.
# A benchmark, not a test: it asserts nothing.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MINIVM_BUILD:-$SRC/build}
export MINIVM_CACHE=${MINIVM_CACHE:-/var/cache/minivm}
KIT=$MINIVM_CACHE/kit
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CACHE_MODE=${CACHE_MODE:-writeback}
. "$SRC/tests/rig/host-kvm.sh"

# On the host: the load generator, appended to the kit's initramfs as a
# second cpio archive (the kernel unpacks them one after the other).
prepare() {
	local stage=$BUILD/bench-blk
	mkdir -p "$stage/root/bin"
	gcc -O2 -static -pthread -o "$stage/root/bin/blkload" "$SRC/bench/blkload.c"
	(cd "$stage/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$stage/extra.cpio.gz"
	cat "$KIT/initrd.img" "$stage/extra.cpio.gz" >"$stage/initrd.img"
}

if [ -z "${MINIVM_RIG:-}" ]; then
	bash "$SRC/guests/build-kit.sh" >&2
	[ -x "$BUILD/minivm" ] || { cmake -S "$SRC" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 minivm >/dev/null; }
	prepare
	if ! host_has_hw_kvm; then
		exec bash "$SRC/tests/rig/run.sh" --mem 3072 --timeout 3000 -- \
			env RUNS="$RUNS" SECS="$SECS" CACHE_MODE="$CACHE_MODE" MINIVM_BUILD="$BUILD" \
			bash "$0" "$@"
	fi
fi

INITRD=$BUILD/bench-blk/initrd.img
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-blk.XXXXXX")
# A tmpfs inside the rig: the image must not sit on the 9p export.
if [ -n "${MINIVM_RIG:-}" ]; then
	mount -t tmpfs -o size=1100m tmpfs "$work"
fi
img=$work/disk.img
dd if=/dev/urandom of="$img" bs=1M count=512 status=none

SCRIPT=$(printf 'for m in seqread seqwrite randread randwrite; do blkload /dev/vda $m %s 4; done\n' "$SECS" | base64 -w0)
APPEND="console=ttyS0 quiet scenario64=$SCRIPT"
DRIVE="file=$img,if=virtio,format=raw,cache=$CACHE_MODE"

run_minivm() {
	timeout 300 "$BUILD/minivm" -kernel "$KIT/vmlinuz" -initrd "$INITRD" -m 512 -smp 2 \
		-nographic -append "$APPEND" -drive "$DRIVE" </dev/null
}
run_qemu() {
	timeout 300 qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 2 -nographic -no-reboot \
		-kernel "$KIT/vmlinuz" -initrd "$INITRD" -append "$APPEND" -drive "$DRIVE" </dev/null
}

median() {
	sort -n | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'
}

declare -A VALS
for vmm in minivm qemu; do
	for i in $(seq "$RUNS"); do
		out=$("run_$vmm" 2>&1 | tr -d '\r' | grep '^blkload ' || true)
		echo "$vmm run $i:" >&2
		echo "$out" | sed 's/^/  /' >&2
		while read -r _ mode mbs _ iops _; do
			[ -n "${mode:-}" ] || continue
			VALS[$vmm/$mode/mbs]+="$mbs "
			VALS[$vmm/$mode/iops]+="$iops "
		done <<<"$out"
	done
done

printf '\nbench/blk: %s runs each, %ss per test, cache=%s, 4 in flight, medians (%s)\n' \
	"$RUNS" "$SECS" "$CACHE_MODE" "$([ -n "${MINIVM_RIG:-}" ] && echo "inside the rig" || echo "hardware KVM")"
printf '%-10s %14s %14s %10s\n' test minivm qemu minivm/qemu
for mode in seqread seqwrite randread randwrite; do
	unit=MB/s key=mbs
	case $mode in rand*) unit=IOPS key=iops ;; esac
	m=$(echo "${VALS[minivm/$mode/$key]:-}" | tr ' ' '\n' | grep . | median)
	q=$(echo "${VALS[qemu/$mode/$key]:-}" | tr ' ' '\n' | grep . | median)
	r=-
	[ "$m" = - ] || [ "$q" = - ] || r=$(echo "scale=2; $m / $q" | bc)
	printf '%-10s %9s %-4s %9s %-4s %10s\n' "$mode" "$m" "$unit" "$q" "$unit" "$r"
done
[ -z "${MINIVM_RIG:-}" ] || umount "$work"
rm -rf "$work"
