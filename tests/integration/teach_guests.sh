#!/usr/bin/env bash
# The teaching guests (guests/teach/), each loaded both ways: as an ELF
# file (by its program headers) and as a flat binary (at 0x7c00), found by
# probing; then with -kernel-format forcing the choice. Each must print
# exactly its expected lines on the serial console and power off through
# ACPI, so minivm exits 0. They need no Linux, so this runs directly on any
# /dev/kvm, PVM included: the suite's fastest end-to-end test. Also checks
# that a bare-metal kernel refuses -initrd and -append, and that a forced
# format that does not fit is an error.
. "$(dirname "$0")/lib.sh"
need_any_kvm 1024 "$@"

TEACH=$MINIVM_BUILD/guests/teach
[ -x "$MINIVM" ] || fail "no $MINIVM: build first"
[ -f "$TEACH/count.elf" ] || fail "no teaching guests in $TEACH: run make in $MINIVM_BUILD"
scratch_dir

# run_guest LOG IMAGE [minivm args...]: runs minivm with the console on
# LOG.out (stderr in LOG.err); returns minivm's exit status.
run_guest() {
	local log=$1 image=$2
	shift 2
	timeout -k 5 "${MINIVM_GUEST_TIMEOUT:-60}" "$MINIVM" -kernel "$image" -nographic "$@" \
		</dev/null >"$log.out" 2>"$log.err"
}

# expect_guest NAME FILE [minivm args...]: FILE prints the lines in
# expected[NAME], exactly and nothing else, and exits 0.
expect_guest() {
	local name=$1 image=$2 log rc=0
	shift 2
	log=$dir/$name-$(basename "$image")$*
	log=${log// /_}
	run_guest "$log" "$image" "$@" || rc=$?
	printf '%s\n' "${expected[$name]}" >"$log.want" # (no <(...): the rig has no /dev/fd)
	if [ "$rc" -ne 0 ] || ! tr -d '\r' <"$log.out" | diff -u "$log.want" - >"$log.diff"; then
		echo "--- console ---" >&2
		cat "$log.out" >&2
		echo "--- stderr ---" >&2
		cat "$log.err" >&2
		[ -s "$log.diff" ] && { echo "--- expected vs. console ---" >&2; cat "$log.diff" >&2; }
		[ "$rc" -eq 0 ] || fail "$name ($(basename "$image")${*:+ $*}): minivm exited $rc"
		fail "$name ($(basename "$image")${*:+ $*}): the console differs from the expected lines"
	fi
	echo "ok: $name ($(basename "$image")${*:+ $*})"
}

# expect_error WHAT MESSAGE [minivm args...]: minivm exits 1 with MESSAGE.
expect_error() {
	local what=$1 msg=$2 rc=0
	shift 2
	timeout -k 5 60 "$MINIVM" -nographic "$@" </dev/null >"$dir/err.out" 2>"$dir/err.err" || rc=$?
	[ "$rc" -eq 1 ] || { cat "$dir/err.err" >&2; fail "$what: exit $rc, expected 1"; }
	grep -qF -- "$msg" "$dir/err.err" || { cat "$dir/err.err" >&2; fail "$what: no '$msg' on stderr"; }
	# One error line (a warning, such as PVM's for Linux kernels, aside).
	[ "$(grep -vc '^minivm: warning: ' "$dir/err.err")" -eq 1 ] ||
		{ cat "$dir/err.err" >&2; fail "$what: more than one error line"; }
	echo "ok: $what is refused"
}

declare -A expected
expected[count]='count: 1000 writes to port 0x80 done'
expected[realmode]='realmode: hello from 16-bit real mode
realmode: started at cs=0000 ip=7c00
realmode: powering off through ACPI PM1a_CNT'
expected[protected]='protected: hello from 16-bit real mode, switching to protected mode
protected: hello from 32-bit protected mode
protected: wrote and read back 0x600dc0de at 0x00200000'
expected[longmode]='longmode: hello from 16-bit real mode
longmode: in 32-bit protected mode, building page tables
longmode: hello from C in 64-bit long mode
longmode: 1 + 2 + ... + 100000 = 5000050000
longmode: EFER.LMA is set'
expected[timer]='timer: PIC and PIT programmed, 100 Hz
timer: tick 5
timer: tick 10
timer: tick 15
timer: tick 20
timer: 20 interrupts taken, done'

for name in count realmode protected longmode timer; do
	expect_guest "$name" "$TEACH/$name.elf"
	expect_guest "$name" "$TEACH/$name.bin" -kernel-format flat
done

# The choice forced rather than probed, and a second (idle) vCPU.
expect_guest realmode "$TEACH/realmode.elf" -kernel-format elf
expect_guest realmode "$TEACH/realmode.bin" -kernel-format flat -m 16
expect_guest count "$TEACH/count.bin" -kernel-format flat -smp 2

# The count guest's exact byte count on COM1, which exit statistics rely on.
[ "$(wc -c <"$dir/count-count.elf.out")" -eq 38 ] ||
	fail "count: $(wc -c <"$dir/count-count.elf.out") bytes on COM1, expected 38"
echo "ok: count prints exactly 38 bytes"

expect_error "-initrd with a bare-metal kernel" "takes no initrd" \
	-kernel "$TEACH/count.elf" -initrd "$TEACH/count.bin"
expect_error "-append with a bare-metal kernel" "takes no command line" \
	-kernel "$TEACH/count.bin" -kernel-format flat -append "console=ttyS0"
expect_error "-kernel-format elf on a flat binary" "not an ELF file" \
	-kernel "$TEACH/count.bin" -kernel-format elf
expect_error "-kernel-format linux on an ELF file" "not a Linux bzImage" \
	-kernel "$TEACH/count.elf" -kernel-format linux
expect_error "an unknown -kernel-format" "invalid argument" \
	-kernel "$TEACH/count.elf" -kernel-format coff
