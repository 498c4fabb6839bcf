# shellcheck shell=bash
# Shared by the integration tests: finds minivm and the guest kit, and runs a
# test body where KVM can boot Linux. On a host with hardware KVM that is
# here; on a PVM host (these development machines, CI) the test re-runs
# itself inside the rig (tests/rig/), where KVM is kvm_amd on emulated AMD-V.
#
# A test script does:   . lib.sh; need_kvm MEM_MIB "$@"; ...body...
# and exits 0 (pass), 1 (fail) or 77 (skip).
#
# MINIVM_TEST_VMM=qemu makes boot_guest run QEMU (-accel kvm -cpu host) with
# the same arguments instead of minivm: QEMU is the reference, so a test can
# be proven right before minivm has the feature it tests.

set -euo pipefail

MINIVM_SRC=${MINIVM_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MINIVM_BUILD=${MINIVM_BUILD:-$MINIVM_SRC/build}
MINIVM_CACHE=${MINIVM_CACHE:-/var/cache/minivm}
export MINIVM_SRC MINIVM_BUILD MINIVM_CACHE
MINIVM=$MINIVM_BUILD/minivm
KIT=$MINIVM_CACHE/kit
ROOTFS=$KIT/rootfs.ext4 # built with the kit (guests/build-rootfs.sh)
MINIVM_TEST_VMM=${MINIVM_TEST_VMM:-minivm}
export MINIVM_TEST_VMM
case $MINIVM_TEST_VMM in
minivm | qemu) ;;
*) echo "FAIL: MINIVM_TEST_VMM must be minivm or qemu, not '$MINIVM_TEST_VMM'" >&2; exit 1 ;;
esac
# shellcheck source=../rig/host-kvm.sh
. "$MINIVM_SRC/tests/rig/host-kvm.sh"

# A failure shows the end of each guest log in FAIL_LOGS (which a test
# fills as it starts guests), and what fail_hook prints if the test has
# one (say, a live VM's state), before it says what went wrong. A guest
# that triple-faulted inside the rig makes it a rig fault (rig_fault).
FAIL_LOGS=()
fail() {
	local f
	if declare -F fail_hook >/dev/null; then
		fail_hook || true
	fi
	for f in "${FAIL_LOGS[@]}"; do
		[ -f "$f" ] || continue
		echo "--- the end of $(basename "$f") ---" >&2
		tail -n 30 "$f" >&2
		rig_fault "$f"
	done
	echo "FAIL: $*" >&2
	exit 1
}

# Runs the calling script again inside the rig unless KVM here can boot
# Linux. $1 is the memory the rig's machine needs (MiB).
need_kvm() {
	local mem=$1 rc=0 try
	shift
	if [ -n "${MINIVM_RIG:-}" ] || host_has_hw_kvm; then
		return 0
	fi
	bash "$MINIVM_SRC/guests/build-kit.sh" >&2
	# Hangs of a guest or of minivm are caught inside the rig, by each
	# boot's own timeout (MINIVM_GUEST_TIMEOUT), and fail the test. run.sh
	# exits 124 only when the emulated machine itself stops making progress
	# (its heartbeat stops, or --timeout passes): TCG running nested SVM
	# has been seen to stall so, rarely, with both its CPUs busy. That is
	# the emulator, not the test, so it gets one more try, said out loud. So does a rig whose
	# L1 kernel died (run.sh exits 125 and shows L1's last messages): seen
	# as "BUG: TASK stack guard page was hit" in qemu-system-x86 after
	# several guest boots, which is TCG's nested SVM, not minivm.
	for try in 1 2; do
		rc=0
		bash "$MINIVM_SRC/tests/rig/run.sh" --mem "$mem" \
			--timeout "${MINIVM_RIG_TIMEOUT:-900}" -- \
			env MINIVM_SRC="$MINIVM_SRC" MINIVM_BUILD="$MINIVM_BUILD" \
			MINIVM_CACHE="$MINIVM_CACHE" bash "$0" "$@" || rc=$?
		[ "$try" -eq 1 ] || exit "$rc"
		case $rc in
		124) echo "RIG STALL: the rig stopped making progress (no heartbeat for ${MINIVM_RIG_STALL:-150} s, or no end in ${MINIVM_RIG_TIMEOUT:-900} s), a guest's vCPUs could not be stopped, or a guest vCPU faulted or locked up (see above); running $(basename "$0") again" >&2 ;;
		125) echo "RIG CRASH: the rig's L1 machine died (see above); running $(basename "$0") again" >&2 ;;
		*) exit "$rc" ;;
		esac
	done
}

SCRATCH_DIRS=()
cleanup_scratch() {
	local p
	# No guest outlives its test (a failed one may leave it running).
	for p in "${WAIT_PIDS[@]}"; do
		kill -KILL "$(minivm_of "$p")" "$p" 2>/dev/null || true
	done
	[ "${#SCRATCH_DIRS[@]}" -eq 0 ] || rm -rf "${SCRATCH_DIRS[@]}"
}
trap cleanup_scratch EXIT

# A fresh directory, removed when the test exits. Sets $dir.
scratch_dir() {
	dir=$(mktemp -d "${TMPDIR:-/var/tmp}/minivm-test.XXXXXX")
	SCRATCH_DIRS+=("$dir")
}

# scratch_dir_for fast|direct|punch: like scratch_dir, on a file system
# that suits disk images: fast (local, not 9p/NFS/FUSE), direct (O_DIRECT, for
# cache=none and directsync) or punch (punching holes, for discard). Tries
# $TMPDIR, /var/tmp, /dev/shm and /run in turn; skips the test when none
# will do. In the rig $TMPDIR is 9p: slow (every write is synchronous to the
# host), O_DIRECT works, punching holes does not; tmpfs is the reverse.
scratch_dir_for() {
	local need=$1 base
	for base in "${TMPDIR:-/var/tmp}" /var/tmp /dev/shm /run; do
		if [ ! -d "$base" ] || [ ! -w "$base" ]; then
			continue
		fi
		dir=$(mktemp -d "$base/minivm-test.XXXXXX" 2>/dev/null) || continue
		SCRATCH_DIRS+=("$dir")
		if fs_can "$need" "$dir"; then
			return 0
		fi
	done
	echo "SKIP: no writable scratch directory can do '$need'" >&2
	exit 77
}

# fs_can fast|direct|punch DIR: whether DIR's file system will do.
fs_can() {
	local f=$2/.probe rc=0
	case $1 in
	fast)
		case $(stat -f -c %T "$2") in
		*9p* | nfs* | fuse* | cifs | smb*) rc=1 ;;
		esac
		;;
	direct) dd if=/dev/zero of="$f" bs=4096 count=1 oflag=direct status=none 2>/dev/null || rc=1 ;;
	punch)
		{ head -c 8192 /dev/zero >"$f" && fallocate -p -o 0 -l 4096 "$f"; } 2>/dev/null || rc=1 ;;
	*) fail "fs_can: unknown feature '$1'" ;;
	esac
	rm -f "$f"
	return "$rc"
}

GUEST_WRAP=()
# How long one guest may run before it counts as hung. Guests in the rig
# boot to init in 15-40 s (ASan builds the slower), and no test's guest
# runs longer than about 3 minutes.
GUEST_TIMEOUT=${MINIVM_GUEST_TIMEOUT:-300}

# boot_guest OUTFILE [minivm args...]: boots the kit's kernel and initrd,
# with stdin from /dev/null unless redirected by the caller. Returns
# minivm's exit status; the console output is in OUTFILE. A guest still
# running after GUEST_TIMEOUT seconds is hung (see guest_hung): then the
# status is 124, as from timeout(1). A test may set GUEST_WRAP to a command
# that runs minivm (say, ip netns exec NS); it must exec its arguments, so
# that the process watched is timeout(1).
# With MINIVM_TEST_VMM=qemu, QEMU runs instead (see qemu_args).
boot_guest() {
	local out=$1
	shift
	local rc=0 pid
	if [ "$MINIVM_TEST_VMM" = qemu ]; then
		qemu_args "$@"
		"${GUEST_WRAP[@]}" timeout -k 5 "$GUEST_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host -nographic -no-reboot \
			-nic none -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" \
			"${QEMU_ARGS[@]}" >"$out" 2>&1 || rc=$?
		return "$rc"
	fi
	# In the background so that watch_guest can look on; <&0 keeps the
	# caller's stdin (a background job would get /dev/null). timeout(1)
	# is only the backstop: watch_guest ends a hung guest first.
	"${GUEST_WRAP[@]}" timeout -k 5 $((GUEST_TIMEOUT + 120)) "$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" \
		-nographic "$@" <&0 >"$out" 2>&1 &
	pid=$!
	if watch_guest "$pid" "$out"; then
		wait "$pid" || rc=$?
	else
		wait "$pid" || true
		rc=124 # hung: whatever minivm's status after the SIGTERM
	fi
	return "$rc"
}

# watch_guest PID OUTFILE: returns when PID (timeout running minivm) ends,
# or ends it and returns 1.
# - A guest whose kernel printed "reboot: Power down" leaves minivm nothing
#   to wait for, so minivm still there MINIVM_POWEROFF_GRACE seconds later
#   means a vCPU cannot be stopped. That has been seen only inside the rig,
#   with the vCPU threads deaf to minivm's kick signal as well: the emulated
#   machine losing the interrupts that take a CPU out of guest mode, like
#   the rig stalls in docs/rig.md. So it counts as a rig stall: exit 124,
#   which makes need_kvm run the test once more, out loud. (Guests that
#   reboot print "Restarting system" instead, and are not watched.)
# - A guest still running after GUEST_TIMEOUT seconds is hung: guest_hung
#   says what its vCPUs were doing and ends it.
watch_guest() {
	local pid=$1 out=$2 since= start=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		if [ -z "$since" ] && grep -q "reboot: Power down" "$out" 2>/dev/null; then
			since=$SECONDS
		fi
		if [ -n "$since" ] && [ $((SECONDS - since)) -ge "${MINIVM_POWEROFF_GRACE:-120}" ]; then
			pkill -KILL -P "$pid" 2>/dev/null || true
			kill -KILL "$pid" 2>/dev/null || true
			tail -n 5 "$out" >&2
			echo "RIG STALL: the guest powered off $((SECONDS - since)) s ago and minivm has not exited (a vCPU that cannot be stopped); giving up on this run" >&2
			exit 124
		fi
		if [ $((SECONDS - start)) -ge "$GUEST_TIMEOUT" ]; then
			guest_hung "$pid" "$out"
			return 1
		fi
		sleep 1
	done
}

# guest_hung PID OUTFILE: a guest ran past its time. Appends to OUTFILE
# what minivm says its vCPUs are doing (vm_report) and ends it: SIGTERM,
# then SIGKILL 30 s later (minivm gives the guest 10 s to power off, then
# says which vCPUs will not stop). When a vCPU would not even leave KVM_RUN
# for the monitor ("did not leave KVM_RUN"), rig_fault makes it a rig
# fault, as for the deaf vCPUs above; otherwise the hang fails the test.
guest_hung() {
	local pid=$1 out=$2 t
	echo "HUNG: the guest was still running after $GUEST_TIMEOUT s" >>"$out"
	vm_report "$pid" >>"$out" 2>&1
	kill -TERM "$(minivm_of "$pid")" 2>/dev/null || true
	for t in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 1
	done
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
}

# ctl ARGS...: minivm ctl, bounded (a monitor that cannot stop a vCPU
# answers within 10 s; a test must not wait for ever on one that is wedged).
ctl() { timeout 60 "$MINIVM" ctl "$@"; }

# minivm_of PID: the minivm that timeout(1) (PID) runs, or PID itself.
# (Signal minivm, not timeout, which passes a signal on to its whole
# process group.)
minivm_of() { pgrep -P "$1" -x minivm || echo "$1"; }

# vm_report PID: what a live minivm (or the timeout(1) running it) says of
# its vCPUs over its control socket (named by its -name, else minivm-PID),
# and where its threads wait in the host kernel: so that a guest that
# stopped making progress can be told from one that crashed, and a vCPU
# stuck inside KVM_RUN from one the guest left idle.
vm_report() {
	local vmm name c t
	vmm=$(minivm_of "$1")
	kill -0 "$vmm" 2>/dev/null || return 0
	name=$(tr '\0' '\n' <"/proc/$vmm/cmdline" | sed -n '/^-name$/{n;s/,.*//;p;q}')
	name=${name:-minivm-$vmm}
	echo "--- what minivm $vmm ($name) says ---"
	for c in "info status" "info cpus" "info registers -a" "info stats"; do
		echo "--- $c"
		# shellcheck disable=SC2086 # the command's words
		timeout 15 "$MINIVM" ctl "$name" $c 2>&1 | head -n 80 || true
	done
	for t in /proc/"$vmm"/task/*; do
		[ -r "$t/stat" ] || continue
		echo "thread $(cat "$t/comm"): state $(cut -d' ' -f3 "$t/stat"), waiting in $(cat "$t/wchan" 2>/dev/null)"
	done
}

# wait_for FILE PATTERN [COUNT [SECS]]: until FILE has COUNT (1) lines
# matching PATTERN (carriage returns ignored). Fails the test if one of the
# processes in WAIT_PIDS (the guests' minivms, or the timeout(1)s running
# them) ends first, or SECS (GUEST_TIMEOUT) pass: then each live one's
# vm_report is shown, and added to FILE for rig_fault. (A deadline, not a
# count of tries: in the rig each try takes a while.)
WAIT_PIDS=()
wait_for() {
	local file=$1 pattern=$2 count=${3:-1} end=$((SECONDS + ${4:-$GUEST_TIMEOUT})) p n
	while [ "$SECONDS" -lt "$end" ]; do
		n=$(tr -d '\r' <"$file" 2>/dev/null | grep -c -- "$pattern") || true
		[ "${n:-0}" -ge "$count" ] && return 0
		for p in "${WAIT_PIDS[@]}"; do
			kill -0 "$p" 2>/dev/null && continue
			rig_fault "$file"
			fail "minivm ($p) ended while waiting for '$pattern' in $(basename "$file")"
		done
		sleep 0.2
	done
	echo "HUNG: no '$pattern' (x$count) after ${4:-$GUEST_TIMEOUT} s" >>"$file"
	for p in "${WAIT_PIDS[@]}"; do
		vm_report "$p" 2>&1 | tee -a "$file" >&2
	done
	rig_fault "$file"
	fail "waiting for '$pattern' (x$count) in $(basename "$file")"
}

# Sets QEMU_ARGS to minivm's arguments as QEMU takes them. They mostly are
# QEMU's already; but QEMU's -drive has no serial=, so each
# "-drive ...,if=virtio,..." becomes "-drive ...,if=none,id=ID" plus
# "-device virtio-blk-pci,drive=ID[,serial=S]", in the same order (PCI slots,
# hence vda, vdb, ..., follow the command line either way).
qemu_args() {
	QEMU_ARGS=()
	local n=0 part parts serial virtio opts
	while [ "$#" -gt 0 ]; do
		# (A file name with a comma, written ",,", is passed on as it is.)
		if [ "$1" = -drive ] && [ "$#" -ge 2 ] && [[ $2 != *,,* ]]; then
			serial='' virtio=0 opts=''
			IFS=, read -ra parts <<<"$2"
			for part in "${parts[@]}"; do
				case $part in
				if=virtio) virtio=1 ;;
				serial=*) serial=${part#serial=} ;;
				*) opts+=${opts:+,}$part ;;
				esac
			done
			if [ "$virtio" = 1 ]; then
				QEMU_ARGS+=(-drive "$opts,if=none,id=minivm-drive$n"
					-device "virtio-blk-pci,drive=minivm-drive$n${serial:+,serial=$serial}")
				n=$((n + 1))
			else
				QEMU_ARGS+=("$1" "$2")
			fi
			shift 2
			continue
		fi
		QEMU_ARGS+=("$1")
		shift
	done
}

expect_in() {
	local file=$1 pattern=$2
	grep -q -- "$pattern" "$file" || {
		echo "--- console output ($file) ---" >&2
		tail -n 60 "$file" >&2
		fail "expected '$pattern' in the output"
	}
}

# The value of key=value that a scenario printed, e.g. nproc.
guest_value() {
	sed -n "s/^$2=\\([0-9]*\\).*/\\1/p" "$1" | tr -d '\r' | tail -n 1
}

# The whole value of a KEY=VALUE line that a scenario printed (the last one;
# KEY is matched literally, so it may contain ':' and '/').
guest_kv() {
	tr -d '\r' <"$1" | awk -v k="$2=" 'index($0, k) == 1 { v = substr($0, length(k) + 1) } END { print v }'
}

# expect_kv OUTFILE KEY VALUE: the guest printed KEY=VALUE.
expect_kv() {
	local got
	got=$(guest_kv "$1" "$2")
	[ "$got" = "$3" ] || {
		echo "--- console output ($1) ---" >&2
		tail -n 60 "$1" >&2
		fail "guest reported $2='$got', expected '$3'"
	}
}

# --- disk images (virtio-blk tests); e2fsprogs reads them, nothing mounts ---

# A private, sparse copy of the kit's root file system image.
copy_rootfs() {
	[ -f "$ROOTFS" ] || fail "no $ROOTFS: run guests/build-kit.sh"
	cp --sparse=always "$ROOTFS" "$1"
}

# image_sha IMAGE PATH: SHA-256 of a file inside an ext2/3/4 image (debugfs,
# read-only; a missing file gives the hash of nothing).
image_sha() {
	debugfs -R "cat $2" "$1" 2>/dev/null | sha256sum | cut -d' ' -f1
}

# fsck_clean IMAGE: e2fsck -fn finds nothing to fix.
fsck_clean() {
	local log rc=0
	log=$(e2fsck -fn "$1" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || { printf '%s\n' "$log" >&2; fail "e2fsck -fn $1: exit $rc"; }
}

# check_guest_sums OUTFILE DEV IMAGE: every "sha256:DEV:PATH=HEX" the guest
# printed matches the file at PATH in IMAGE. Prints how many matched. One
# debugfs run dumps them all (each run costs about half a second in the rig).
check_guest_sums() {
	local out=$1 dev=$2 img=$3 line path want got n=0 lines tmp
	# (No <(...): the rig has no /dev/fd.)
	lines=$(tr -d '\r' <"$out" | grep "^sha256:$dev:/") || true
	[ -n "$lines" ] || { tail -n 40 "$out" >&2; fail "the guest reported no files on $dev"; }
	tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/minivm-sums.XXXXXX")
	while IFS= read -r line; do
		path=${line#"sha256:$dev:"}
		printf 'dump "%s" "%s/%d"\n' "${path%=*}" "$tmp" "$n"
		n=$((n + 1))
	done <<<"$lines" >"$tmp/cmds"
	debugfs -f "$tmp/cmds" "$img" >/dev/null 2>&1 || true
	n=0
	while IFS= read -r line; do
		path=${line#"sha256:$dev:"}
		want=${path##*=}
		path=${path%=*}
		got=none
		[ -f "$tmp/$n" ] && got=$(sha256sum <"$tmp/$n" | cut -d' ' -f1)
		[ "$got" = "$want" ] || { rm -rf "$tmp"; fail "$dev:$path: the guest wrote sha256 $want, the image has $got"; }
		n=$((n + 1))
	done <<<"$lines"
	rm -rf "$tmp"
	echo "$n"
}

# Blocks (512 bytes) allocated to a file.
alloc_blocks() {
	stat -c %b "$1"
}

# pat_gen SEED INDEX LEN: the bytes guests/scenarios/pattern.sh writes
# (qcow2 tests: the host builds the same bytes and compares whole images).
pat_gen() {
	awk -v s="$1" -v r="$2" -v n="$3" 'BEGIN {
		for (i = 0; t < n; i++) {
			l = sprintf("%s-%d-%08d\n", s, r, i)
			if (t + length(l) > n)
				l = substr(l, 1, n - t)
			printf "%s", l
			t += length(l)
		}
	}'
}

# pat_apply RAW SEED REGIONS: the same writes into a raw file on the host.
pat_apply() {
	local raw=$1 seed=$2 r rest off len i=0
	for r in ${3//,/ }; do
		off=${r%%+*} rest=${r#*+}
		len=${rest%%+*}
		pat_gen "$seed" "$i" "$len" |
			dd of="$raw" bs=64k oflag=seek_bytes seek="$off" conv=notrunc status=none
		i=$((i + 1))
	done
}

# qemu_check IMAGE [WHEN]: qemu-img check finds nothing wrong (exit 0).
qemu_check() {
	local rc=0 log
	log=$(qemu-img check "$1" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || { printf '%s\n' "$log" >&2; fail "qemu-img check $(basename "$1")${2:+ $2}: exit $rc"; }
}

# need_any_kvm MEM_MIB "$@": like need_kvm, for guests that need no Linux
# (guests/teach/): any /dev/kvm will run them, PVM included, so the test
# runs right here whenever this host has one, and re-runs itself inside the
# rig only on a host with none at all. No guest kit is needed.
need_any_kvm() {
	local mem=$1
	shift
	if [ -n "${MINIVM_RIG:-}" ] || { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
		return 0
	fi
	exec bash "$MINIVM_SRC/tests/rig/run.sh" --mem "$mem" \
		--timeout "${MINIVM_RIG_TIMEOUT:-900}" -- \
		env MINIVM_SRC="$MINIVM_SRC" MINIVM_BUILD="$MINIVM_BUILD" \
		MINIVM_CACHE="$MINIVM_CACHE" bash "$0" "$@"
}

# rig_fault LOG: inside the rig, a guest vCPU that triple-faulted, hit a
# KVM internal error, would not leave KVM_RUN when kicked, or that the
# guest's kernel saw locked up (one vCPU re-running a faulting instruction
# fetch for ever has been seen) is as likely the emulator's doing (TCG
# emulating nested SVM, docs/rig.md) as minivm's. Such a run exits 124,
# which makes need_kvm run the test once more, out loud; a second one
# fails. Directly on hardware KVM it stays a plain failure.
rig_fault() {
	[ -n "${MINIVM_RIG:-}" ] && [ -f "$1" ] || return 0
	if grep -q -e 'triple fault (KVM_EXIT_SHUTDOWN)' -e 'KVM internal error' \
		-e 'did not leave KVM_RUN' -e 'after it was told to (inside KVM_RUN' \
		-e 'watchdog: BUG: soft lockup' "$1"; then
		echo "RIG FAULT: a guest vCPU triple-faulted, hit a KVM internal error, locked up or could not be taken out of KVM_RUN inside the rig (see above); giving up on this run" >&2
		exit 124
	fi
}

# runtime_dir: a private XDG_RUNTIME_DIR for minivm's control sockets, on a
# tmpfs (sockets and FIFOs cannot live on 9p, the rig's $TMPDIR), mode
# 0700 as minivm requires, removed when the test exits. Sets $run.
runtime_dir() {
	local base
	run=
	for base in /dev/shm /run /tmp; do
		run=$(mktemp -d "$base/minivm-mon.XXXXXX" 2>/dev/null) && break
	done
	[ -n "$run" ] || fail "no tmpfs for the sockets"
	SCRATCH_DIRS+=("$run")
	chmod 700 "$run"
	export XDG_RUNTIME_DIR=$run
}

# netns_new TAG: a fresh network namespace for this test, deleted at exit
# with everything in it (bridges, TAPs, veths). The network tests never
# touch the machine's own interfaces. Sets $ns to its name (not printed:
# $(netns_new) would run in a subshell, and the cleanup list would lose it).
NETNS_LIST=()
cleanup_netns() {
	local ns
	for ns in "${NETNS_LIST[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	cleanup_scratch
}
trap cleanup_netns EXIT
netns_new() {
	ns=mvt-$1-$$
	ip netns add "$ns" || fail "cannot create network namespace $ns"
	NETNS_LIST+=("$ns")
	ip -n "$ns" link set lo up
}
