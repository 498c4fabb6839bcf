#!/usr/bin/env bash
# Power off ends minivm with 0; reboot under -no-reboot ends it with 0;
# reboot without it boots the guest again; SIGTERM ends it cleanly.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

scratch_dir

rc=0
boot_guest "$dir/poweroff.log" -m 256 -append "console=ttyS0 quiet scenario=poweroff" || rc=$?
expect_in "$dir/poweroff.log" "minivm-guest: init reached"
[ "$rc" -eq 0 ] || fail "poweroff: minivm exited $rc"
echo "ok: poweroff exits 0"

rc=0
boot_guest "$dir/noreboot.log" -m 256 -no-reboot -append "console=ttyS0 quiet scenario=reboot" || rc=$?
[ "$rc" -eq 0 ] || fail "reboot with -no-reboot: minivm exited $rc"
[ "$(grep -c 'minivm-guest: init reached' "$dir/noreboot.log")" -eq 1 ] ||
	fail "reboot with -no-reboot: expected exactly one boot"
echo "ok: reboot with -no-reboot exits 0 after one boot"

# Without -no-reboot the guest comes back; after the second boot we stop it
# with SIGTERM, which must end minivm with status 0.
log=$dir/reboot.log
"$MINIVM" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img" -nographic -m 256 \
	-append "console=ttyS0 quiet scenario=reboot" </dev/null >"$log" 2>&1 &
pid=$!
WAIT_PIDS=("$pid")
FAIL_LOGS=("$log")
wait_for "$log" 'minivm-guest: init reached' 2
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
WAIT_PIDS=() FAIL_LOGS=()
[ "$rc" -eq 0 ] || fail "SIGTERM: minivm exited $rc"
expect_in "$log" "terminating on signal 15"
echo "ok: reboot boots again; SIGTERM exits 0"

# -serial file:PATH puts the console in the file, not on stdout.
rc=0
boot_guest "$dir/stdout.log" -m 256 -serial "file:$dir/serial.log" \
	-append "console=ttyS0 quiet scenario=poweroff" || rc=$?
[ "$rc" -eq 0 ] || fail "-serial file: minivm exited $rc"
expect_in "$dir/serial.log" "minivm-guest: init reached"
! grep -q "minivm-guest" "$dir/stdout.log" || fail "-serial file: console output leaked to stdout"
echo "ok: -serial file: writes the console to the file"

# A triple fault (reboot=t makes Linux reboot by one) is an unrecoverable
# vCPU error: minivm names it, shows the registers and exits non-zero.
rc=0
boot_guest "$dir/triple.log" -m 256 -append "console=ttyS0 quiet reboot=t scenario=reboot" || rc=$?
[ "$rc" -eq 1 ] || { tail -n 20 "$dir/triple.log" >&2; fail "triple fault: minivm exited $rc, expected 1"; }
expect_in "$dir/triple.log" "triple fault"
expect_in "$dir/triple.log" "rip "
echo "ok: a triple fault ends minivm with status 1 and a register dump"
