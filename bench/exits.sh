#!/usr/bin/env bash
# bench/exits: what exit statistics and tracing cost. A tiny real-mode
# guest (written out below as machine code, no toolchain needed) does
# EXITS outb to port 0x80 and powers off; minivm runs it with --no-stats,
# with statistics (the default), and with --trace io to a file, RUNS times
# each, interleaved so that a busy machine slows all modes alike. Prints the
# median CPU time per exit and exits per CPU-second, and each mode against
# --no-stats; then what the counting calls cost on their own
# (bench/stats-hotpath.c), which a busy machine blurs less. The guest needs
# no Linux, so this runs directly on any /dev/kvm (PVM included). A
# benchmark, not a test: it asserts nothing.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${MINIVM_BUILD:-$SRC/build}
RUNS=${RUNS:-5}
EXITS=${EXITS:-200000}

[ -x "$BUILD/minivm" ] || { cmake -S "$SRC" -B "$BUILD" >/dev/null && make -C "$BUILD" -j2 minivm >/dev/null; }
[ -w /dev/kvm ] || { echo "bench/exits: needs /dev/kvm" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-exits.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The guest, at 0x7c00 in real mode:
#   cli; mov ecx, EXITS; xor al, al
#   1: out 0x80, al; inc al; dec ecx; jnz 1b
#   mov dx, 0x604; mov ax, 0x3400; out dx, ax   (ACPI S5: power off)
#   hlt
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) \
	$(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# shellcheck disable=SC2059  # the format is the machine code
printf "\xfa\x66\xb9$(le32 "$EXITS")\x30\xc0\xe6\x80\xfe\xc0\x66\x49\x75\xf8\xba\x04\x06\xb8\x00\x34\xef\xf4" \
	>"$work/loop.bin"

declare -A ARGS=(
	[no-stats]="--no-stats"
	[stats]=""
	[trace]="--trace io,file=$work/trace.log"
)
ORDER=(no-stats stats trace)
declare -A TIMES

# One run: prints minivm's CPU time (user + system) in seconds, or "-" if
# it failed. CPU time rather than wall time: on a shared machine, waiting
# for a CPU is not what statistics cost.
one_run() {
	local t TIMEFORMAT='%U %S'
	# shellcheck disable=SC2086  # ARGS: words
	if ! t=$({ time "$BUILD/minivm" -kernel "$work/loop.bin" -kernel-format flat \
		-serial none $1 </dev/null >/dev/null 2>"$work/err"; } 2>&1); then
		echo -
		return
	fi
	awk '{ printf "%.4f\n", $1 + $2 }' <<<"$t"
}

median() {
	tr ' ' '\n' | grep -v -e '^-$' -e '^$' | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) { print "-"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for ((r = 0; r < RUNS; r++)); do
	for m in "${ORDER[@]}"; do
		TIMES[$m]+="$(one_run "${ARGS[$m]}") "
	done
done

echo "bench/exits: $EXITS port-I/O exits per run, median of $RUNS runs ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-10s %10s %12s %12s %10s\n' mode cpu_s us/exit exits/s vs_no-stats
base=$(median <<<"${TIMES[no-stats]}")
for m in "${ORDER[@]}"; do
	t=$(median <<<"${TIMES[$m]}")
	if [ "$t" = - ]; then
		printf '%-10s %10s\n' "$m" failed
		continue
	fi
	awk -v m="$m" -v t="$t" -v n="$EXITS" -v b="$base" 'BEGIN {
		printf "%-10s %10.3f %12.2f %12.0f %9.1f%%\n", m, t, t * 1e6 / n, n / t,
			(b == "-" ? 0 : (t / b - 1) * 100) }'
done
echo "runs (s): $(for m in "${ORDER[@]}"; do printf '%s: %s ' "$m" "${TIMES[$m]}"; done)"

# The same cost without KVM's noise: the counting calls alone, in a loop.
gcc -O2 -D_GNU_SOURCE -I"$SRC" -o "$work/stats-hotpath" "$SRC/bench/stats-hotpath.c" \
	"$BUILD/libminivm_core.a" -lpthread -lz
"$work/stats-hotpath"
