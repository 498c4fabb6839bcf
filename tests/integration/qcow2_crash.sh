#!/usr/bin/env bash
# Crash safety of the qcow2 driver: kill -9 the VMM while a guest writes.
# The guest (scenario crashwrite) writes 80 KiB chunks of random data all
# over a fresh, thin qcow2 disk, so every chunk allocates clusters (and,
# with small clusters, L2 tables and refcount blocks), and fsyncs each one
# before printing its checksum. Once it has started, the host waits a
# little and kills the VMM with SIGKILL. Then:
#   - qemu-img check finds no corruption (exit 0, or 3: leaked clusters
#     are allowed; 2 is corruption and fails);
#   - every chunk the guest reported (hence flushed) is in the image;
#   - minivm-img check -r all repairs the leaks: qemu-img check then exits
#     0, and the chunks are still there.
# Twice: 64 KiB clusters, killed 2 s in; 4 KiB clusters, killed 5 s in.
#
# MINIVM_IMG=qemu-img makes qemu-img stand in for minivm-img.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

IMG=${MINIVM_IMG:-$MINIVM_BUILD/minivm-img}

# start_vmm OUTFILE ARGS...: boot_guest, but in the background, with
# $vmm_pid the VMM's own process (no timeout wrapper: SIGKILL must hit it).
start_vmm() {
	local out=$1
	shift
	if [ "$MINIVM_TEST_VMM" = qemu ]; then
		qemu_args "$@"
		qemu-system-x86_64 -accel kvm -cpu host -nographic -no-reboot -nic none \
			-kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" "${QEMU_ARGS[@]}" \
			>"$out" 2>&1 </dev/null &
	else
		"$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" -nographic "$@" \
			>"$out" 2>&1 </dev/null &
	fi
	vmm_pid=$!
	WAIT_PIDS=("$vmm_pid")
}

# qemu_check_exit IMAGE OK_CODES WHEN: qemu-img check's exit status is one of
# OK_CODES (e.g. "0 3"). Prints its summary line.
qemu_check_exit() {
	local rc=0 log
	log=$(qemu-img check "$1" 2>&1) || rc=$?
	case " $2 " in
	*" $rc "*) ;;
	*) printf '%s\n' "$log" >&2; fail "$3: qemu-img check $(basename "$1"): exit $rc" ;;
	esac
	echo "  qemu-img check, $3: exit $rc; $(printf '%s\n' "$log" | grep -E 'leaked|No errors' | head -n 1)"
}

# chunks_present OUTFILE IMAGE WHEN: every chunk the guest reported is in
# the image, with its checksum. Prints how many.
chunks_present() {
	local out=$1 disk=$2 raw=$dir/chunks.raw off sum got n=0 lines
	qemu-img convert -f qcow2 -O raw "$disk" "$raw"
	# A line the kill cut short has fewer than 64 hex digits: not counted.
	# (No <(...): the rig has no /dev/fd.)
	lines=$(tr -d '\r' <"$out" | sed -n 's/^crash:chunk:\([0-9]*=[0-9a-f]\{64\}\)$/\1/p')
	[ -n "$lines" ] || fail "$3: the guest reported no chunks"
	while IFS='=' read -r off sum; do
		got=$(dd if="$raw" bs=4k iflag=skip_bytes skip="$off" count=20 status=none |
			sha256sum | cut -d' ' -f1)
		[ "$got" = "$sum" ] || fail "$3: the chunk at $off was flushed but is not in the image"
		n=$((n + 1))
	done <<<"$lines"
	rm -f "$raw"
	echo "$n"
}

# crash_run NAME CLUSTER_SIZE FIRST_SLOT DELAY
crash_run() {
	local name=$1 cluster=$2 start=$3 delay=$4 disk=$dir/$1.qcow2 out=$dir/$1.log n rc=0
	"$IMG" create -f qcow2 -o cluster_size="$cluster" "$disk" 64M >/dev/null ||
		fail "$IMG create -o cluster_size=$cluster failed"
	start_vmm "$out" -m 256 -drive "file=$disk,format=qcow2,if=virtio" \
		-append "console=ttyS0 quiet cw_dev=vda cw_start=$start scenario=crashwrite"
	wait_for "$out" crash:writing
	sleep "$delay"
	kill -9 "$vmm_pid" 2>/dev/null || fail "$name: the VMM had exited before the kill"
	wait "$vmm_pid" 2>/dev/null || true
	expect_in "$out" crash:chunk:
	! grep -q crash:alldone "$out" ||
		echo "  warning: the guest had written every slot before the kill: raise the disk size"
	echo "$name: killed $MINIVM_TEST_VMM ${delay} s after the guest started writing"

	qemu_check_exit "$disk" "0 3" "$name, after the kill"
	n=$(chunks_present "$out" "$disk" "$name, after the kill")
	echo "ok: $name: no corruption; all $n chunks the guest flushed are in the image"

	"$IMG" check -r all "$disk" >"$dir/repair.log" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$dir/repair.log" >&2; fail "$name: $IMG check -r all: exit $rc"; }
	qemu_check_exit "$disk" 0 "$name, after check -r all"
	n=$(chunks_present "$out" "$disk" "$name, after check -r all")
	echo "ok: $name: check -r all left a clean image, with all $n chunks"
}

scratch_dir_for fast
crash_run big-clusters 65536 0 2
crash_run small-clusters 4096 100 5
