# shellcheck shell=bash
# Shared by the integration tests: finds minivm and the guest kit, and runs a
# test body where KVM can boot Linux. On a host with hardware KVM that is
# here; on a PVM host (these development machines, CI) the test re-runs
# itself inside the rig (tests/rig/), where KVM is kvm_amd on emulated AMD-V.
#
# A test script does:   . lib.sh; need_kvm MEM_MIB "$@"; ...body...
# and exits 0 (pass), 1 (fail) or 77 (skip).

set -euo pipefail

MINIVM_SRC=${MINIVM_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MINIVM_BUILD=${MINIVM_BUILD:-$MINIVM_SRC/build}
MINIVM_CACHE=${MINIVM_CACHE:-/var/cache/minivm}
export MINIVM_SRC MINIVM_BUILD MINIVM_CACHE
MINIVM=$MINIVM_BUILD/minivm
KIT=$MINIVM_CACHE/kit
# shellcheck source=../rig/host-kvm.sh
. "$MINIVM_SRC/tests/rig/host-kvm.sh"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Runs the calling script again inside the rig unless KVM here can boot
# Linux. $1 is the memory the rig's machine needs (MiB).
need_kvm() {
	local mem=$1
	shift
	if [ -n "${MINIVM_RIG:-}" ] || host_has_hw_kvm; then
		return 0
	fi
	bash "$MINIVM_SRC/guests/build-kit.sh" >&2
	exec bash "$MINIVM_SRC/tests/rig/run.sh" --mem "$mem" --timeout 600 -- \
		env MINIVM_SRC="$MINIVM_SRC" MINIVM_BUILD="$MINIVM_BUILD" \
		MINIVM_CACHE="$MINIVM_CACHE" bash "$0" "$@"
}

SCRATCH_DIRS=()
cleanup_scratch() {
	[ "${#SCRATCH_DIRS[@]}" -eq 0 ] || rm -rf "${SCRATCH_DIRS[@]}"
}
trap cleanup_scratch EXIT

# A fresh directory, removed when the test exits. Sets $dir.
scratch_dir() {
	dir=$(mktemp -d "${TMPDIR:-/var/tmp}/minivm-test.XXXXXX")
	SCRATCH_DIRS+=("$dir")
}

# boot_guest OUTFILE [minivm args...]: boots the kit's kernel and initrd,
# with stdin from /dev/null unless redirected by the caller. Returns
# minivm's exit status; the console output is in OUTFILE.
boot_guest() {
	local out=$1
	shift
	local rc=0
	timeout -k 5 300 "$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" \
		-nographic "$@" >"$out" 2>&1 || rc=$?
	return "$rc"
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
