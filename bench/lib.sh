# shellcheck shell=bash
# Shared by the disk benchmarks (bench/blk.sh, bench/qcow2.sh): the load
# generator in the guest, re-running inside the rig, booting minivm and
# QEMU the same way, collecting blkload's lines and taking medians.
#
# A benchmark sets RUNS, SECS and CACHE_MODE (defaults below) before
# sourcing this, then calls bench_setup NAME MEM_MIB "$@" first thing.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${MINIVM_BUILD:-$SRC/build}
export MINIVM_CACHE=${MINIVM_CACHE:-/var/cache/minivm}
KIT=$MINIVM_CACHE/kit
RUNS=${RUNS:-3}
SECS=${SECS:-5}
CACHE_MODE=${CACHE_MODE:-writeback}
# shellcheck source=../tests/rig/host-kvm.sh
. "$SRC/tests/rig/host-kvm.sh"

# On the host: the load generator, appended to the kit's initramfs as a
# second cpio archive (the kernel unpacks them one after the other).
bench_prepare() {
	local stage=$BUILD/bench-blk
	mkdir -p "$stage/root/bin"
	gcc -O2 -static -pthread -o "$stage/root/bin/blkload" "$SRC/bench/blkload.c"
	(cd "$stage/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$stage/extra.cpio.gz"
	cat "$KIT/initrd.img" "$stage/extra.cpio.gz" >"$stage/initrd.img"
}

# bench_setup MEM_MIB TIMEOUT "$@": on the host, builds what the run needs
# (TARGETS: make targets besides minivm) and, where this host's KVM cannot
# boot Linux, runs the calling script again inside the rig. Exported
# BENCH_ENV variables go along.
bench_setup() {
	local mem=$1 timeout=$2 targets t
	shift 2
	read -ra targets <<<"minivm ${BENCH_TARGETS:-}"
	[ -z "${MINIVM_RIG:-}" ] || return 0
	bash "$SRC/guests/build-kit.sh" >&2
	for t in "${targets[@]}"; do
		[ -x "$BUILD/$t" ] || { cmake -S "$SRC" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 "$t" >/dev/null; }
	done
	bench_prepare
	host_has_hw_kvm && return 0
	# shellcheck disable=SC2086  # MINIVM_RIG_ARGS: words, as run_with_kvm takes them
	exec bash "$SRC/tests/rig/run.sh" --mem "$mem" --timeout "$timeout" ${MINIVM_RIG_ARGS:-} -- \
		env RUNS="$RUNS" SECS="$SECS" CACHE_MODE="$CACHE_MODE" MINIVM_BUILD="$BUILD" \
		bash "$0" "$@"
}

INITRD=$BUILD/bench-blk/initrd.img

# bench_workdir: $work, a fresh directory for images; a tmpfs inside the
# rig, where $TMPDIR is the 9p export (every write synchronous to the host).
bench_workdir() {
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-disk.XXXXXX")
	if [ -n "${MINIVM_RIG:-}" ]; then
		mount -t tmpfs -o "size=${1:-1100m}" tmpfs "$work"
	fi
}
bench_workdir_done() {
	[ -z "${MINIVM_RIG:-}" ] || umount "$work"
	rm -rf "$work"
}

# bench_append MODE...: the kernel command line running blkload on
# /dev/vda in each MODE for SECS seconds, 4 requests in flight.
bench_append() {
	local script
	# shellcheck disable=SC2016  # $m is the guest's
	script=$(printf 'for m in %s; do blkload /dev/vda $m %s 4; done\n' "$*" "$SECS" | base64 -w0)
	echo "console=ttyS0 quiet scenario64=$script"
}

# run_minivm|run_qemu APPEND DRIVE: one boot, the console on stdout.
run_minivm() {
	timeout -k 10 300 "$BUILD/minivm" -kernel "$KIT/vmlinuz" -initrd "$INITRD" -m 512 -smp 2 \
		-nographic -append "$1" -drive "$2" </dev/null
}
run_qemu() {
	timeout -k 10 300 qemu-system-x86_64 -accel kvm -cpu host -m 512 -smp 2 -nographic -no-reboot \
		-kernel "$KIT/vmlinuz" -initrd "$INITRD" -append "$1" -drive "$2" </dev/null
}

# bench_boot VMM KEY APPEND DRIVE: boots once and adds blkload's numbers to
# VALS[KEY/MODE/mbs] and VALS[KEY/MODE/iops]. Its lines go to stderr as
# they are.
declare -A VALS
bench_boot() {
	local vmm=$1 key=$2 all out mode mbs iops rc=0
	all=$("run_$vmm" "$3" "$4" 2>&1 | tr -d '\r') || rc=$?
	out=$(printf '%s\n' "$all" | grep '^blkload ' || true)
	printf '%s\n' "$out" | sed 's/^/  /' >&2
	# A run without numbers is left out of the medians; say why it failed.
	[ -n "$out" ] || { echo "  no numbers ($vmm exit $rc); its last words:" >&2
		printf '%s\n' "$all" | tail -n 5 | sed 's/^/    /' >&2; }
	while read -r _ mode mbs _ iops _; do
		[ -n "${mode:-}" ] || continue
		VALS[$key/$mode/mbs]+="$mbs "
		VALS[$key/$mode/iops]+="$iops "
	done <<<"$out"
}

median() {
	sort -n | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'
}

# bench_value KEY MODE: the median of what bench_boot collected (MB/s for
# sequential modes, IOPS for random ones), or "-".
bench_value() {
	local k=mbs
	case $2 in rand*) k=iops ;; esac
	# (A run that printed nothing, a crashed VMM say, leaves no values: "-".)
	echo "${VALS[$1/$2/$k]:-}" | tr ' ' '\n' | { grep . || true; } | median
}

bench_unit() {
	case $1 in rand*) echo IOPS ;; *) echo MB/s ;; esac
}

# ratio A B: A / B with two decimals, or "-".
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

bench_where() {
	if [ -n "${MINIVM_RIG:-}" ]; then echo "inside the rig"; else echo "hardware KVM"; fi
}
