#!/usr/bin/env bash
# The monitor against a teaching guest (guests/teach/timer: real mode, PIT
# interrupts, then ACPI power-off), started with -S so that it waits for the
# monitor. Needs no Linux, so it runs right here on any /dev/kvm (PVM too):
# the fast monitor test. Checks, over the control socket: info status, info
# cpus (the vCPU at the guest's first instruction), info registers (text
# and JSON), info mtree, info stats, bad commands, cont (the guest then runs to its
# end, exit 0) and quit; -monitor stdio, on its own and next to the console
# (Ctrl-a c); -daemonize with -pidfile; SIGTERM on a stopped VM.
. "$(dirname "$0")/lib.sh"
need_any_kvm 1024 "$@"

GUEST=$MINIVM_BUILD/guests/teach/timer.elf
[ -f "$GUEST" ] || { echo "SKIP: no $GUEST (no teaching guests in this build)" >&2; exit 77; }
scratch_dir
runtime_dir # sets $run and XDG_RUNTIME_DIR
T=${MINIVM_GUEST_TIMEOUT:-60}
ctl() { "$MINIVM" ctl "$@"; }
wait_sock() {
	for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	fail "no socket $1"
}

# --- the control socket ---
timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -name teach -serial "file:$dir/con.log" \
	</dev/null >"$dir/err.log" 2>&1 &
pid=$!
wait_sock "$run/minivm/teach.sock"
[ "$(ctl teach info status)" = "VM status: paused" ] || fail "-S: info status"
cpus=$(ctl teach info cpus)
[[ $cpus == "* CPU #0: thread_id="[1-9]*" state=paused "*"rip=0x0000000000007c00" ]] ||
	fail "info cpus: '$cpus'"
ctl teach info registers | grep -q ' rip=0000000000007c00' || fail "info registers: no rip"
ctl teach -j info registers | grep -q '^{"return": \[{"cpu": 0, "rip": 31744, ' || fail "-j info registers"
ctl teach info mtree | grep -q '00000000000003f8-00000000000003ff serial8250' || fail "info mtree: no serial port"
ctl teach info kvm | grep -q '^kvm support: enabled' || fail "info kvm"
ctl teach info stats | grep -q '^exit statistics: 1 vCPU' || fail "info stats"
ctl teach -j info stats | grep -q '^{"return": {"vcpus":1,' || fail "-j info stats"
rc=0; ctl teach info bogus >/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "info bogus: rc $rc"
[ ! -s "$dir/con.log" ] || fail "-S: the guest ran before cont"
ctl teach stop || fail "stop on a stopped VM"
ctl teach cont || fail "cont"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/err.log" >&2; fail "after cont: minivm exited $rc"; }
grep -q "timer: 20 interrupts taken, done" "$dir/con.log" || fail "after cont: the guest did not finish"
[ ! -e "$run/minivm/teach.sock" ] || fail "the control socket is left behind"
echo "ok: control socket: info status, cpus, registers, mtree, kvm, stats; cont runs the guest to its end"

timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -name teach -serial none </dev/null >/dev/null 2>&1 &
pid=$!
wait_sock "$run/minivm/teach.sock"
[ "$(ctl teach -j quit)" = '{"return": {}}' ] || fail "-j quit"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "quit: minivm exited $rc"
echo "ok: quit exits 0"

# --- -monitor stdio: alone (the console in a file), and next to the console ---
out=$(printf 'info status\n-j info status\ncont\n' |
	timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -monitor stdio -serial "file:$dir/con2.log" 2>&1) ||
	fail "-monitor stdio: minivm failed: $out"
grep -q '(minivm) VM status: paused' <<<"$out" || fail "-monitor stdio: '$out'"
grep -q '{"return": {"running": false, "status": "paused"}}' <<<"$out" || fail "-monitor stdio: JSON"
grep -q "timer: 20 interrupts taken, done" "$dir/con2.log" || fail "-monitor stdio: cont"
out=$(printf '\001cinfo status\ncont\n\001c' |
	timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -monitor stdio 2>&1 | tr -d '\r') ||
	fail "-monitor stdio with the console: minivm failed: $out"
grep -q 'monitor - type .help.' <<<"$out" && grep -q 'VM status: paused' <<<"$out" &&
	grep -q "timer: 20 interrupts taken, done" <<<"$out" || fail "Ctrl-a c: '$out'"
echo "ok: -monitor stdio, alone and behind Ctrl-a c"

# --- -daemonize, -pidfile, -D; SIGTERM on a stopped VM ends it at once ---
rc=0
echo "an earlier line" >"$dir/d.log"
timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -daemonize -name teachd -pidfile "$dir/pid" \
	-D "$dir/d.log" -serial none </dev/null >"$dir/d.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/d.out" >&2; fail "-daemonize: parent exited $rc"; }
dpid=$(cat "$dir/pid")
[ "$(ctl teachd info status)" = "VM status: paused" ] || fail "-daemonize: not reachable"
kill -TERM "$dpid"
for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$dpid" 2>/dev/null || fail "SIGTERM: a stopped VM did not end at once"
[ ! -e "$dir/pid" ] || fail "-pidfile: left behind"
[ ! -s "$dir/d.out" ] || { cat "$dir/d.out" >&2; fail "-daemonize: printed on the terminal"; }
# -D: what the daemon said after it detached is in the log, after what
# was there (appended).
[ "$(head -n 1 "$dir/d.log")" = "an earlier line" ] || fail "-D: the log was not appended to"
grep -q "terminating on signal 15" "$dir/d.log" || { cat "$dir/d.log" >&2; fail "-D: the daemon's messages are not in the log"; }
echo "ok: -daemonize, -pidfile and -D; SIGTERM ends a stopped VM at once"

# --- -daemonize with -monitor unix: and the console in a file; cont, quit ---
rc=0
timeout -k 5 "$T" "$MINIVM" -kernel "$GUEST" -S -daemonize -pidfile "$dir/pid2" \
	-serial "file:$dir/con3.log" -monitor "unix:$run/m.sock,server,nowait" </dev/null >"$dir/d2.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$dir/d2.out" >&2; fail "-daemonize -monitor unix: parent exited $rc"; }
dpid=$(cat "$dir/pid2")
[ "$(stat -c %a "$run/m.sock")" = 600 ] || fail "-monitor unix: socket mode $(stat -c %a "$run/m.sock")"
[ "$(ctl "$run/m.sock" info status)" = "VM status: paused" ] || fail "-monitor unix: -S not paused"
ctl "$run/m.sock" cont || fail "-monitor unix: cont"
for _ in $(seq 300); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$dpid" 2>/dev/null || fail "the daemon did not end with its guest"
grep -q "timer: 20 interrupts taken, done" "$dir/con3.log" || fail "-daemonize: the guest did not run after cont"
[ ! -e "$dir/pid2" ] && [ ! -e "$run/m.sock" ] || fail "pid file or socket left behind"
echo "ok: -daemonize -S -monitor unix: with the console in a file: cont runs the guest to its end"

# --- bad flags and ctl usage: one line on stderr, exit 1 ---
bad() {
	local what=$1 rc=0 err
	shift
	err=$("$MINIVM" "$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" -eq 1 ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "$what" <<<"$err" ||
		fail "minivm $*: rc $rc, '$err' (expected one line about '$what')"
}
bad "-monitor tcp:1" -kernel "$GUEST" -monitor tcp:1
bad "-monitor unix:/x,client" -kernel "$GUEST" -monitor unix:/x,client
bad "-daemonize: the serial console" -kernel "$GUEST" -daemonize
bad "-daemonize: the monitor" -kernel "$GUEST" -daemonize -serial none -monitor stdio
bad "-shutdown-timeout" -kernel "$GUEST" -shutdown-timeout soon
bad "-name a/b" -kernel "$GUEST" -name a/b
bad "-D $dir/nosuch/log: No such file" -kernel "$GUEST" -D "$dir/nosuch/log"
bad "usage: minivm ctl" ctl
bad "usage: minivm ctl" ctl teach
bad "no VM named nosuch" ctl nosuch info status
echo "ok: bad process-control flags and ctl usage give one-line errors"
