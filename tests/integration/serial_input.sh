#!/usr/bin/env bash
# A command typed on the serial console runs in the guest and its output
# comes back. Input goes through a pipe, as from a user's terminal: once the
# guest's shell is up, we send a command whose output cannot appear unless
# the shell ran it (the arithmetic), then power off from the shell.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

scratch_dir
out=$dir/console.log
: >"$out"

wait_for() {
	for _ in $(seq 240); do
		grep -q -- "$1" "$out" && return 0
		sleep 0.5
	done
	return 1
}

# The typist: waits for the guest's shell, types, waits for the answer.
typist() {
	wait_for "minivm-guest: init reached" || return 0
	sleep 2 # let the shell start and print its prompt
	printf 'echo typed-$((6*7))-ok\n'
	wait_for "typed-42-ok" || return 0
	printf 'poweroff -f\n'
	# Keep minivm's stdin open until it is gone, as a terminal would.
	while [ ! -e "$dir/done" ]; do sleep 0.5; done
}

# A pipeline rather than <(...): it needs no /dev/fd.
typist | {
	rc=0
	boot_guest "$out" -m 256 -append "console=ttyS0 quiet" || rc=$?
	echo "$rc" >"$dir/rc"
	touch "$dir/done"
}
rc=$(cat "$dir/rc")
expect_in "$out" "typed-42-ok"
[ "$rc" -eq 0 ] || fail "minivm exited $rc after poweroff"
echo "ok: typed command ran and poweroff exited 0"
