#!/usr/bin/env bash
# A command typed on the serial console runs in the guest and its output
# comes back. Input goes through a pipe, as from a user's terminal: once the
# guest's shell is up, we send a command whose output cannot appear unless
# the shell ran it (the arithmetic), then power off from the shell.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

dir=$(scratch)
out=$dir/console.log
mkfifo "$dir/in"
rc=0
boot_guest "$out" -m 256 -append "console=ttyS0 quiet" <"$dir/in" &
pid=$!
exec 3>"$dir/in"
for _ in $(seq 300); do
	grep -q "minivm-guest: init reached" "$out" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.5
done
sleep 2 # let the shell print its prompt and read the terminal
printf 'echo typed-$((6*7))-ok\n' >&3
for _ in $(seq 120); do
	grep -q "typed-42-ok" "$out" && break
	sleep 0.5
done
printf 'poweroff -f\n' >&3
wait "$pid" || rc=$?
exec 3>&-
expect_in "$out" "typed-42-ok"
[ "$rc" -eq 0 ] || fail "minivm exited $rc after poweroff"
echo "ok: typed command ran and poweroff exited 0"
