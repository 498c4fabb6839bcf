#!/usr/bin/env bash
# Run a command inside "the rig": an emulated machine (QEMU/TCG, -cpu max:
# AMD-V with nested paging) whose Debian kernel loads kvm_amd, so the command
# gets a hardware-style /dev/kvm even where the host's /dev/kvm is PVM.
# The command sees the host's root read-only (9p), at the same cwd; its
# stdout/stderr stream out through L1's serial console; run.sh exits with its
# exit status.  See docs/rig.md.
#
# Usage: tests/rig/run.sh [OPTIONS] -- COMMAND [ARGS...]
#   --mem MiB        L1 memory (default $MINIVM_RIG_MEM or 2048); give L1
#                    about 2.5 GiB more than the largest L2 guest
#   --smp N          L1 vCPUs (default 2)
#   --timeout SECS   kill the rig after SECS seconds of wall time (exit 124)
#                    (a rig whose L1 stops making progress for
#                    $MINIVM_RIG_STALL seconds, default 150, is killed
#                    sooner, also with exit 124)
#   --interactive    connect this terminal to L1's serial console; the command
#                    gets ttyS0 as controlling terminal (Ctrl-C, Ctrl-a pass through)
#   --rw DIR         also export host directory DIR writable, at the same path
#                    (repeatable; DIR must exist)
#   --verbose        show L1's kernel messages and the rig's boot progress
#   --append PARAMS  extra L1 kernel parameters (for experiments)
#
# Inside the rig: MINIVM_RIG=1; TMPDIR is a writable scratch directory (under
# /var/tmp on the host, deleted afterwards unless MINIVM_RIG_KEEP=1); PATH,
# HOME, TERM, LANG, LC_ALL, CI, MINIVM_CACHE and every MINIVM_* variable of
# the caller are passed through.  Everything else on the host is read-only.
#
# Exit status: the command's; 124 on --timeout; 125 when the rig itself failed
# (no status came back: L1 did not boot, crashed, or could not run the command).
set -euo pipefail

SCRIPT_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
readonly SCRIPT_DIR
readonly CACHE="${MINIVM_CACHE:-/var/cache/minivm}"
readonly RIG="$CACHE/rig"
# x86 COMMAND_LINE_SIZE is 2048; longer jobs travel in a file instead.
readonly MAX_CMDLINE=2000

mem=${MINIVM_RIG_MEM:-2048}
smp=2
timeout_s=
interactive=0
verbose=0
rw_dirs=()
append=
scratch=
qemu_pid=
stalled=0
stall_s=${MINIVM_RIG_STALL:-150}

die() { echo "rig: error: $*" >&2; exit 125; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

parse_args() {
	while (($#)); do
		case "$1" in
		--mem) mem=${2:?--mem needs MiB}; shift 2 ;;
		--smp) smp=${2:?--smp needs a count}; shift 2 ;;
		--timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
		--interactive) interactive=1; shift ;;
		--verbose) verbose=1; shift ;;
		--append) append+=" ${2:?--append needs parameters}"; shift 2 ;;
		--rw)
			[[ -d ${2:-} ]] || die "--rw needs an existing directory, got '${2:-}'"
			rw_dirs+=("$(readlink -f "$2")"); shift 2 ;;
		-h | --help) usage; exit 0 ;;
		--) shift; break ;;
		-*) die "unknown option '$1' (see --help)" ;;
		*) break ;;
		esac
	done
	(($#)) || die "no command given (usage: run.sh [OPTIONS] -- COMMAND [ARGS...])"
	[[ $mem =~ ^[0-9]+$ && $smp =~ ^[0-9]+$ ]] || die "--mem and --smp take numbers"
	[[ -z $timeout_s || $timeout_s =~ ^[0-9]+$ ]] || die "--timeout takes whole seconds"
	if ((interactive)) && [[ ! -t 0 || ! -t 1 ]]; then
		die "--interactive needs a terminal on stdin and stdout"
	fi
	cmd=("$@")
}

# The script L1 runs in the chroot (under the host's bash, which reads the
# %q quoting back exactly).
make_job() {
	local v d i=0
	echo "# minivm rig job"
	for v in PATH HOME TERM LANG LC_ALL CI $(compgen -e | grep '^MINIVM_' || true); do
		[[ -v $v ]] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'export TMPDIR=%q MINIVM_RIG=1 MINIVM_CACHE=%q\n' "$scratch/tmp" "$CACHE"
	[[ -v TERM ]] || echo "export TERM=dumb"
	for d in "${rw_dirs[@]}"; do
		printf 'mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 rigrw%d %q || exit 125\n' "$i" "$d"
		i=$((i + 1))
	done
	printf 'cd -- %q || { echo "rig: cannot cd to %q inside the rig" >&2; exit 125; }\n' "$PWD" "$PWD"
	printf 'exec'
	printf ' %q' "${cmd[@]}"
	echo
}

kernel_cmdline() {
	local job64=$1 c="panic=-1"
	# Only the command's own output shows on ttyS0. L1's kernel messages,
	# warnings and worse (loglevel=5), go to ttyS1, a file run.sh shows when
	# the rig dies or stalls (an L1 panic is otherwise silent); --verbose
	# shows them all on ttyS0.
	# mitigations=off: nothing to protect in a throwaway VM, and TCG runs the
	# kernel's speculation barriers slowly.
	if ((verbose)); then
		c+=" console=ttyS0 minivm_rig_verbose=1"
	else
		c+=" console=ttyS1 loglevel=5"
	fi
	c+=" mitigations=off$append minivm_rig_out=$scratch"
	if ((interactive)); then
		c+=" minivm_rig_interactive=1"
		local size
		size=$(stty size 2>/dev/null </dev/tty) && c+=" minivm_rig_tty=${size/ /x}"
	fi
	if ((${#c} + ${#job64} + 20 > MAX_CMDLINE)); then
		c+=" minivm_rig_job=file"
	else
		c+=" minivm_rig_job=$job64"
	fi
	echo "$c"
}

# When the rig died or stalled: the end of what L1's kernel said.
show_l1_log() {
	local log=$scratch/l1-console.log
	if [[ -s $log ]]; then
		# The headlines first: a panic's own line scrolls away behind its trace.
		# (|| true: no headline is no error, and set -e would end run.sh here.)
		grep -E -m 5 'Kernel panic|BUG:|Oops|general protection|Out of memory|watchdog' "$log" |
			sed 's/^/rig: L1 said: /' >&2 || true
		echo "rig: the last of L1's kernel messages (warnings and worse):" >&2
		tail -n 30 "$log" | sed 's/^/rig: L1: /' >&2
	else
		echo "rig: L1's kernel printed no warnings" >&2
	fi
	if grep -qi 'triple fault' "$scratch/qemu-debug.log" 2>/dev/null; then
		echo "rig: QEMU says L1 triple-faulted (a CPU of the emulated machine reset itself; TCG's nested SVM, not the command)" >&2
	fi
}

# Waits for QEMU to end, or ends it (stalled=1) when L1's heartbeat (a file
# its /init rewrites every 5 s, see build-rig.sh) has not changed for
# $stall_s seconds: the emulated machine has stopped making progress, and
# waiting for --timeout would only waste the time that is left.
watch_heartbeat() {
	local hb=$scratch/heartbeat age
	while kill -0 "$qemu_pid" 2>/dev/null; do
		sleep 2
		[[ -f $hb ]] || continue # L1 still booting: --timeout covers that
		age=$(($(date +%s) - $(stat -c %Y "$hb" 2>/dev/null || date +%s)))
		((age >= stall_s)) || continue
		echo "rig: L1 stalled: its heartbeat stopped ${age} s ago; killed the rig" >&2
		l1_cpus >&2
		stalled=1
		kill "$qemu_pid" 2>/dev/null
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$qemu_pid" 2>/dev/null || return 0
			sleep 1
		done
		pkill -KILL -P "$qemu_pid" 2>/dev/null
		kill -KILL "$qemu_pid" 2>/dev/null
		return 0
	done
}

# What L1's CPUs are doing, twice, 2 s apart, from QEMU's monitor: the
# instruction pointers show whether a CPU is stuck in one place, and in
# which mode (with nested SVM, TCG shows the L2 guest's registers while a
# CPU runs it).
l1_cpus() {
	command -v python3 >/dev/null || return 0
	python3 - "$scratch/qemu-monitor.sock" <<'PY' || true
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
def ask(cmd=None):
    if cmd:
        s.sendall((cmd + "\n").encode())
    out, end = b"", time.time() + 5
    while time.time() < end and not out.rstrip().endswith(b"(qemu)"):
        try:
            out += s.recv(65536)
        except socket.timeout:
            break
    return out.decode(errors="replace")
ask()  # the greeting, up to the first prompt
for i in range(2):
    if i:
        time.sleep(2)
    for line in ask("info registers -a").splitlines():
        if re.match(r"(CPU#|RIP|CR0|EFER|ES |CS |SS |DS )", line.strip()):
            print("rig: L1: " + line.strip())
PY
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	local rc=$?
	# Best effort from here on: a failing step (the terminal already gone)
	# must not skip the rest.
	set +e
	[[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null
	[[ -n ${saved_tty:-} ]] && stty "$saved_tty" </dev/tty 2>/dev/null
	if [[ -n $scratch && -d $scratch ]]; then
		if [[ ${MINIVM_RIG_KEEP:-0} == 1 ]]; then
			echo "rig: kept $scratch" >&2
		else
			rm -rf "$scratch"
		fi
	fi
	exit "$rc"
}

main() {
	parse_args "$@"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
	bash "$SCRIPT_DIR/build-rig.sh" || die "building the rig failed"

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	# /var/tmp, not /tmp: L1 sees the host's /tmp read-only anyway, and CI
	# may clone the project under /tmp.
	scratch=$(mktemp -d /var/tmp/minivm-rig.XXXXXX) || die "cannot create a scratch directory in /var/tmp"
	mkdir "$scratch/tmp"
	chmod 1777 "$scratch/tmp"

	local job job64 cmdline
	job=$(make_job)
	job64=$(base64 -w0 <<<"$job")
	cmdline=$(kernel_cmdline "$job64")
	[[ $cmdline == *minivm_rig_job=file* ]] && printf '%s\n' "$job" >"$scratch/.job.sh"

	# shellcheck disable=SC2054  # commas inside QEMU option values
	local qemu=(qemu-system-x86_64
		-accel tcg,thread=multi -cpu "${MINIVM_RIG_CPU:-max,la57=off}" -M q35 -m "$mem" -smp "$smp"
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$RIG/vmlinux" -initrd "$RIG/initrd.img" -append "$cmdline"
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
		-virtfs "local,path=$scratch,mount_tag=rigout,security_model=none,multidevs=remap")
	local i
	for i in "${!rw_dirs[@]}"; do
		qemu+=(-virtfs "local,path=${rw_dirs[$i]},mount_tag=rigrw$i,security_model=none,multidevs=remap")
	done
	# Serial on stdio, no monitor mux (so Ctrl-a is just a byte) and, when
	# interactive, signal=off (so Ctrl-C reaches the program inside).
	# shellcheck disable=SC2054
	if ((interactive)); then
		qemu+=(-chardev stdio,id=con,signal=off -serial chardev:con)
	else
		qemu+=(-chardev stdio,id=con -serial chardev:con)
	fi
	qemu+=(-chardev "file,id=l1log,path=$scratch/l1-console.log" -serial chardev:l1log)
	# TCG logs an L1 triple fault here: L1 then resets, which -no-reboot
	# turns into a silent QEMU exit 0.
	# shellcheck disable=SC2054
	qemu+=(-d cpu_reset,guest_errors -D "$scratch/qemu-debug.log")
	# QEMU's own monitor, for a look at L1's CPUs when it stalls.
	qemu+=(-monitor "unix:$scratch/qemu-monitor.sock,server=on,wait=off")
	[[ -n $timeout_s ]] && qemu=(timeout --foreground -k 5 "$timeout_s" "${qemu[@]}")

	local t0 qrc=0
	t0=$EPOCHREALTIME
	if ((interactive)); then
		saved_tty=$(stty -g </dev/tty)
		# Explicit stdin: bash gives background jobs /dev/null otherwise.
		"${qemu[@]}" </dev/tty &
	else
		# QEMU's stdio chardev fails on a closed stdin: give it /dev/null.
		"${qemu[@]}" </dev/null &
	fi
	qemu_pid=$!
	watch_heartbeat
	wait "$qemu_pid" || qrc=$?
	qemu_pid=
	((verbose)) && echo "rig: qemu exited with $qrc after $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s" >&2

	if ((stalled)); then
		show_l1_log
		exit 124
	fi
	if [[ -n $timeout_s && $qrc -eq 124 ]]; then
		echo "rig: timed out after ${timeout_s}s; killed the rig" >&2
		show_l1_log
		exit 124
	fi
	if [[ ! -s $scratch/status ]]; then
		echo "rig: error: the rig ended without the command's exit status (qemu exit $qrc): L1 failed to boot, crashed or ran out of memory" >&2
		show_l1_log
		exit 125
	fi
	local rc
	rc=$(<"$scratch/status")
	[[ $rc =~ ^[0-9]+$ ]] || die "bad status file content '$rc'"
	exit "$rc"
}

main "$@"
