#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine and runs every test:
# unit tests and integration tests (booting real guests, inside the rig on
# hosts whose KVM cannot boot Linux), once with a normal build and once with
# ASan+UBSan. Run as root. Ends with a line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"
SRC=$PWD

bash tests/install-deps.sh
bash guests/build-kit.sh
if ! { . tests/rig/host-kvm.sh && host_has_hw_kvm; }; then
	bash tests/rig/build-rig.sh
fi

# The rig mounts this machine's root read-only at the same paths, so build
# trees must live where the rig can see them (not on a tmpfs of the host).
passed=0
failed=0
run_suite() {
	local dir=$1
	shift
	cmake -S "$SRC" -B "$dir" "$@" >/dev/null
	make -C "$dir" -j"$(nproc)" --no-print-directory >/dev/null
	local log=$dir/ctest.log rc=0
	(cd "$dir" && ctest --output-on-failure "${CTEST_ARGS[@]}") 2>&1 | tee "$log" || rc=$?
	local total fails
	total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
	total=${total:-0}
	fails=${fails:-0}
	[ "$rc" -eq 0 ] || [ "$fails" -gt 0 ] || fails=1
	passed=$((passed + total - fails))
	failed=$((failed + fails))
}

CTEST_ARGS=(${MINIVM_CTEST_ARGS:-})
echo "=== normal build ==="
run_suite "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "=== ASan+UBSan build ==="
run_suite "$SRC/build-asan" -DCMAKE_BUILD_TYPE=Debug -DMINIVM_SANITIZE=ON

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
