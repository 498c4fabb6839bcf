#!/usr/bin/env bash
# Exit statistics (--stats) and tracing (--trace) against the count teaching
# guest (guests/teach/count.S), whose exits are known in advance: 1000
# outb to port 0x80 (values 0, 1, 2, ... mod 256, no device), 38 outb to
# COM1 (its one line), one outw of 0x3400 to PM1a_CNT (0x604), and nothing
# else from the guest. It needs no Linux, so it runs directly on any
# /dev/kvm, PVM included.
. "$(dirname "$0")/lib.sh"
need_any_kvm 1024 "$@"

COUNT=$MINIVM_BUILD/guests/teach/count.elf
[ -x "$MINIVM" ] || fail "no $MINIVM: build first"
[ -f "$COUNT" ] || fail "no $COUNT: run make in $MINIVM_BUILD"
scratch_dir
LINE='count: 1000 writes to port 0x80 done'

# run NAME [minivm args...]: runs the count guest; console in $dir/NAME.out,
# stderr in $dir/NAME.err. It must print its line and exit 0.
run() {
	local name=$1 rc=0
	shift
	timeout -k 5 "${MINIVM_GUEST_TIMEOUT:-120}" "$MINIVM" -kernel "$COUNT" -nographic "$@" \
		</dev/null >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
	if [ "$rc" -ne 0 ] || [ "$(tr -d '\r' <"$dir/$name.out")" != "$LINE" ]; then
		cat "$dir/$name.out" "$dir/$name.err" >&2
		fail "$name: minivm exited $rc, or the guest did not print its line"
	fi
}

# stat_addr FILE BUS ADDRESS DIR: the count in the by-address table, or 0.
stat_addr() {
	awk -v b="$2" -v a="$3" -v d="$4" '
		/^accesses by address:/ { t = 1; next }
		/^[a-z]/ { t = 0 }
		t && $1 == b && $2 == a && $3 == d { n = $4 }
		END { print n + 0 }' "$1"
}

# stat_reason FILE REASON: the total column of the exits-by-reason table.
stat_reason() {
	awk -v r="$2" '
		/^exits by reason:/ { t = 1; next }
		/^[a-z]/ { t = 0 }
		t && $1 == r { n = $(NF - 2) }
		END { print n + 0 }' "$1"
}

# An awk function: the value of a 0x hex field (mawk has no strtonum).
HEX='function hex(s,  i, v) { v = 0; s = tolower(substr(s, 3))
	for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
	return v }'

# trace_events FILE: the trace without its header line.
trace_events() {
	grep -v '^#' "$1" || true
}

expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
	echo "ok: $1 = $3"
}

# --- statistics ---
run stats --stats
s=$dir/stats.err
expect_eq "writes to port 0x80" "$(stat_addr "$s" pio 0x0080 out)" 1000
expect_eq "writes to COM1 (0x3f8)" "$(stat_addr "$s" pio 0x03f8 out)" 38
expect_eq "writes to PM1a_CNT (0x604)" "$(stat_addr "$s" pio 0x0604 out)" 1
expect_eq "reads from port 0x80" "$(stat_addr "$s" pio 0x0080 in)" 0
expect_eq "port I/O exits" "$(stat_reason "$s" io)" 1039
expect_eq "MMIO exits" "$(stat_reason "$s" mmio)" 0
# Accesses no device takes are "unassigned"; 0x3f8 is the UART's.
expect_eq "device of port 0x80" "$(awk '$1 == "pio" && $2 == "0x0080" { print $NF }' "$s")" unassigned
expect_eq "unassigned writes" "$(awk '$1 == "unassigned" && $2 == "pio" { print $4 }' "$s")" 1000
grep -q '^exit statistics: 1 vCPU, 1 boot,' "$s" || { cat "$s" >&2; fail "no summary title"; }

# A second vCPU that never runs guest code does no I/O.
run smp2 --stats -smp 2
expect_eq "-smp 2: writes to port 0x80" "$(stat_addr "$dir/smp2.err" pio 0x0080 out)" 1000
expect_eq "-smp 2: vcpu1's port I/O exits" \
	"$(awk '/^exits by reason:/ { t = 1 } t && $1 == "io" { print $3; exit }' "$dir/smp2.err")" 0

# Counting is on without --stats (nothing printed), and off with --no-stats.
run quiet
[ ! -s "$dir/quiet.err" ] || fail "without --stats, stderr has: $(cat "$dir/quiet.err")"
run nostats --no-stats --trace io,addr=0x604,file="$dir/nostats.trace"
expect_eq "--no-stats still traces" "$(trace_events "$dir/nostats.trace" | wc -l)" 1
echo "ok: no summary without --stats, and --no-stats still traces"

# --- tracing ---
# Port 0x80 only: exactly the guest's 1000 writes, values counting up.
run t80 --trace io,addr=0x80,file="$dir/t80.trace"
trace_events "$dir/t80.trace" | awk "$HEX"'
	NF != 8 { print "line " NR ": " NF " fields: " $0; bad = 1; exit }
	$2 != 0 || $3 != "io" || $4 != "out" || $5 != "0x0080" || $6 != 1 || $8 != "unassigned" {
		print "line " NR ": " $0; bad = 1; exit }
	hex($7) != (NR - 1) % 256 { print "line " NR ": value " $7; bad = 1; exit }
	$1 + 0 < last { print "line " NR ": time goes back"; bad = 1; exit }
	{ last = $1 + 0; n++ }
	END { if (!bad && n != 1000) { print n " lines, expected 1000"; bad = 1 } exit bad }' >&2 ||
	fail "the port 0x80 trace is not the guest's 1000 writes (see above)"
echo "ok: trace of port 0x80: 1000 writes, values 0x00, 0x01, ... in order"

# The UART's writes, by device name: the values spell the line.
dev=$(awk '$1 == "pio" && $2 == "0x03f8" { print $NF }' "$s")
run tcom --trace "io,dev=$dev,file=$dir/tcom.trace"
got=$(trace_events "$dir/tcom.trace" | awk "$HEX"'{ printf "%c", hex($7) }' | tr -d '\r\n')
expect_eq "COM1 trace as text" "$got" "$LINE"
expect_eq "COM1 trace lines" "$(trace_events "$dir/tcom.trace" | wc -l)" 38

# Every exit: 1039 port writes, the last the power-off, nothing but
# interrupts (minivm's kick once the guest is off) besides.
run tall --trace exits,irq,file="$dir/tall.trace"
expect_eq "exits traced as io" "$(trace_events "$dir/tall.trace" | awk '$3 == "io"' | wc -l)" 1039
expect_eq "the last write" \
	"$(trace_events "$dir/tall.trace" | awk '$3 == "io" { l = $4 " " $5 " " $6 " " $7 } END { print l }')" \
	"out 0x0604 2 0x3400"
expect_eq "other exits" \
	"$(trace_events "$dir/tall.trace" | awk '$3 != "io" && $3 != "intr"' | wc -l)" 0

# A time window: one that opens in an hour holds nothing (the guest is
# long gone); one that closes in an hour holds everything.
run tlate --trace io,from=3600,file="$dir/tlate.trace"
expect_eq "trace from=3600" "$(trace_events "$dir/tlate.trace" | wc -l)" 0
grep -q '^#   time_us cpu event' "$dir/tlate.trace" || fail "the trace has no header"
run twin --trace io,from=0,to=3600,file="$dir/twin.trace"
expect_eq "trace from=0,to=3600" "$(trace_events "$dir/twin.trace" | wc -l)" 1039

# --- bad flags: one line naming the flag, exit 1 ---
bad() {
	local what=$1 pattern=$2 rc=0 err
	shift 2
	err=$("$MINIVM" -kernel "$COUNT" -nographic "$@" </dev/null 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1"
	[ "$(printf '%s\n' "$err" | grep -c .)" -eq 1 ] || fail "$what: expected one line, got: $err"
	printf '%s\n' "$err" | grep -q -- "$pattern" || fail "$what: '$err' lacks '$pattern'"
	echo "ok: $what -> $err"
}
bad "unknown trace word" "^minivm: --trace exits,kvm_run: unknown trace word 'kvm_run'" \
	--trace exits,kvm_run
bad "bad trace window" "^minivm: --trace from=2,to=1: to= must come after from=" \
	--trace from=2,to=1
bad "bad trace address" "^minivm: --trace addr=0x80-0x10: invalid value" --trace addr=0x80-0x10
bad "unwritable trace file" "^minivm: --trace file=$dir/no/such/dir: No such file" \
	--trace file="$dir/no/such/dir"
bad "--stats with --no-stats" "^minivm: --stats: " --stats --no-stats
bad "--trace without its argument" "^minivm: --trace: missing argument" --trace
