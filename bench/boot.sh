#!/usr/bin/env bash
# bench/boot: time from start to the guest's init, and to exit, for minivm
# and for QEMU (-M microvm and the default machine) booting the same kernel
# and initramfs, 3 runs each (RUNS=N to change), in one session: directly on
# hardware KVM, or all inside one rig boot otherwise. Prints medians and the
# ratio of each VMM to minivm. A benchmark, not a test: it asserts nothing.
# minivm-no-stats is minivm with exit statistics off (--no-stats): the
# statistics' overhead. VMMS="minivm minivm-no-stats" picks rows. The runs
# are interleaved (one of each VMM in turn), so that a change of load on
# the machine touches every VMM alike.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MINIVM_BUILD:-$SRC/build}
export MINIVM_CACHE=${MINIVM_CACHE:-/var/cache/minivm}
KIT=$MINIVM_CACHE/kit
RUNS=${RUNS:-3}
. "$SRC/tests/rig/host-kvm.sh"

if [ -z "${MINIVM_RIG:-}" ] && ! host_has_hw_kvm; then
	bash "$SRC/guests/build-kit.sh" >&2
	[ -x "$BUILD/minivm" ] || { cmake -S "$SRC" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 minivm >/dev/null; }
	exec bash "$SRC/tests/rig/run.sh" --mem 2048 -- env RUNS="$RUNS" VMMS="${VMMS:-}" MINIVM_BUILD="$BUILD" bash "$0" "$@"
fi

APPEND="console=ttyS0 quiet scenario=poweroff"
declare -A CMDS=(
	[minivm]="$BUILD/minivm -kernel $KIT/vmlinuz -initrd $KIT/initrd.img -m 256 -smp 1 -nographic -append"
	[minivm-no-stats]="$BUILD/minivm --no-stats -kernel $KIT/vmlinuz -initrd $KIT/initrd.img -m 256 -smp 1 -nographic -append"
	[qemu-microvm]="qemu-system-x86_64 -M microvm -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot -kernel $KIT/vmlinuz -initrd $KIT/initrd.img -append"
	[qemu-pc]="qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot -kernel $KIT/vmlinuz -initrd $KIT/initrd.img -append"
)
read -r -a ORDER <<<"${VMMS:-minivm minivm-no-stats qemu-microvm qemu-pc}"
for name in "${ORDER[@]}"; do
	[ -n "${CMDS[$name]:-}" ] || { echo "bench/boot: unknown VMM '$name' in VMMS" >&2; exit 2; }
done

# One boot: prints "T_INIT T_EXIT" in seconds, or "- -" if it failed.
one_boot() {
	local cmd=$1 start t_init=- t_exit line now
	start=$(date +%s.%N)
	while IFS= read -r line; do
		if [ "$t_init" = - ] && [[ $line == *"minivm-guest: init reached"* ]]; then
			now=$(date +%s.%N)
			t_init=$(echo "$now - $start" | bc)
		fi
	done < <(timeout -k 5 180 $cmd "$APPEND" </dev/null 2>&1)
	now=$(date +%s.%N)
	if [ "$t_init" = - ]; then
		echo "- -"
	else
		echo "$t_init $(echo "$now - $start" | bc)"
	fi
}

median() {
	sort -n | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) printf "%.2f\n", a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'
}

declare -A MED_INIT MED_EXIT INITS EXITS
for i in $(seq "$RUNS"); do
	for name in "${ORDER[@]}"; do
		read -r ti te < <(one_boot "${CMDS[$name]}")
		echo "  $name run $i: init ${ti}s exit ${te}s" >&2
		[ "$ti" = - ] || INITS[$name]+="$ti "
		[ "$te" = - ] || EXITS[$name]+="$te "
	done
done
for name in "${ORDER[@]}"; do
	MED_INIT[$name]=$(printf '%s\n' ${INITS[$name]:-} | grep . | median || echo -)
	MED_EXIT[$name]=$(printf '%s\n' ${EXITS[$name]:-} | grep . | median || echo -)
done

ratio() {
	if [ "$1" = - ] || [ "$2" = - ]; then echo -; else echo "scale=2; $1 / $2" | bc; fi
}
printf '\nbench/boot: %s runs each, medians in seconds (%s)\n' "$RUNS" \
	"$([ -n "${MINIVM_RIG:-}" ] && echo "inside the rig" || echo "hardware KVM")"
printf '%-16s %10s %10s %14s %14s\n' VMM to-init to-exit init/minivm exit/minivm
for name in "${ORDER[@]}"; do
	printf '%-16s %10s %10s %14s %14s\n' "$name" "${MED_INIT[$name]}" "${MED_EXIT[$name]}" \
		"$(ratio "${MED_INIT[$name]}" "${MED_INIT[minivm]:--}")" \
		"$(ratio "${MED_EXIT[$name]}" "${MED_EXIT[minivm]:--}")"
done
