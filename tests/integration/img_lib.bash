# shellcheck shell=bash
# Shared by the minivm-img tests (img_*.sh): they run on the host, need no
# KVM, and hold minivm-img against qemu-img, the oracle. (Named .bash so
# that the test glob, *.sh, does not take it for a test.)
#
# A test does:   . "$(dirname "$0")/img_lib.bash"   and gets $IMG (the
# binary), $dir (a scratch directory, removed at exit) and the helpers below.

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMG=$MINIVM_BUILD/minivm-img
[ -x "$IMG" ] || fail "no $IMG: build the minivm-img target"
for tool in qemu-img qemu-io python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool (apt install qemu-utils python3)" >&2; exit 77; }
done
scratch_dir
cd "$dir"
# Snapshot dates print in local time: both tools in one zone.
export TZ=UTC
# Under ASan/UBSan a report aborts (exit 134), which img() below catches
# even where an error exit was expected.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}abort_on_error=1:halt_on_error=1:print_stacktrace=1

# An error line: minivm-img's own, or the one the qcow2 driver (the minivm
# core, whose messages say "minivm: ") prints about a corrupt image.
ERR_LINE='^minivm(-img)?: '

# img ARGS...: minivm-img; a crash (signal, ASan) fails the test whatever
# the exit status the caller expected.
img() {
	local rc=0
	"$IMG" "$@" || rc=$?
	if [ "$rc" -ge 128 ]; then
		fail "minivm-img $*: killed by signal $((rc - 128))"
	fi
	return "$rc"
}

# img_ok ARGS...: minivm-img succeeds (output passes through).
img_ok() {
	img "$@" || fail "minivm-img $*: exit $?"
}

# img_exit RC ARGS...: minivm-img exits with RC; its stdout is in $out,
# its stderr in $errout.
img_exit() {
	local want=$1 rc=0
	shift
	img "$@" >"$dir/.out" 2>"$dir/.err" || rc=$?
	out=$(cat "$dir/.out")
	errout=$(cat "$dir/.err")
	[ "$rc" -eq "$want" ] || {
		printf '%s\n%s\n' "$out" "$errout" >&2
		fail "minivm-img $*: exit $rc, expected $want"
	}
}

# img_error ARGS...: minivm-img fails cleanly: exit 1..127, exactly one
# "minivm-img: " line on stderr, no sanitizer report. The line is in $errout.
img_error() {
	local rc=0 n
	img "$@" >"$dir/.out" 2>"$dir/.err" || rc=$?
	errout=$(cat "$dir/.err")
	[ "$rc" -ne 0 ] || fail "minivm-img $*: succeeded, expected an error"
	n=$(wc -l <"$dir/.err")
	if [ "$n" -ne 1 ] || ! grep -Eq "$ERR_LINE" "$dir/.err"; then
		cat "$dir/.err" >&2
		fail "minivm-img $*: expected one 'minivm-img: ' error line, got $n lines"
	fi
}

# img_no_crash ARGS...: minivm-img may succeed or fail, but fails cleanly
# (exit below 128, one "minivm-img: " line on stderr). Sets $rc.
img_no_crash() {
	local n
	rc=0
	img "$@" >"$dir/.out" 2>"$dir/.err" || rc=$?
	errout=$(cat "$dir/.err")
	[ "$rc" -eq 0 ] && return 0
	# compare's verdict "the images differ" is no error.
	[ "$1" = compare ] && [ "$rc" -eq 1 ] && [ ! -s "$dir/.err" ] && return 0
	n=$(wc -l <"$dir/.err")
	if [ "$n" -ne 1 ] || ! grep -Eq "$ERR_LINE" "$dir/.err"; then
		cat "$dir/.err" >&2
		fail "minivm-img $*: exit $rc with $n lines on stderr, expected one 'minivm-img: ' line"
	fi
}

# qemu_clean IMAGE: qemu-img check finds nothing wrong (leaks included).
qemu_clean() {
	local log rc=0
	log=$(qemu-img check "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || { printf '%s\n' "$log" >&2; fail "qemu-img check $*: exit $rc"; }
}

# same_content A B [qemu-img compare options]: qemu-img sees the same disk.
same_content() {
	local log rc=0
	log=$(qemu-img compare "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || { printf '%s\n' "$log" >&2; fail "qemu-img compare $*: exit $rc"; }
}

# jq_py FILE EXPR: EXPR evaluated in Python with the JSON of FILE as j.
jq_py() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# qio IMAGE COMMANDS...: qemu-io on a qcow2 image, each argument one -c.
qio() {
	local image=$1 a=()
	shift
	for c in "$@"; do
		a+=(-c "$c")
	done
	qemu-io -f "${QIO_FMT:-qcow2}" "${a[@]}" "$image" >/dev/null || fail "qemu-io $image $*"
}

# pattern_raw FILE SIZE_MIB: a raw file (of 7 MiB or more) with data, holes
# and zeros in it.
pattern_raw() {
	qemu-img create -q -f raw "$1" "$2M"
	QIO_FMT=raw qio "$1" 'write -P 0x11 0 1M' 'write -P 0x22 3M 4k' 'write -P 0 5M 1M' \
		"write -P 0x33 $(($2 - 1))M 512k" 'write -P 0x44 2047k 2k'
}

# qcow2_poke IMAGE OP ARGS...: edits a qcow2 image's metadata in place, to
# make the damage check and bad-input tests need. OPs:
#   refcount CLUSTER VALUE   set a refcount (any refcount width)
#   data-cluster GUEST_OFF   print the cluster index guest offset maps to
#   header FIELD VALUE       set a header field (magic version cluster_bits
#                            size l1_size l1_offset rt_offset rt_clusters
#                            backing_offset backing_size nb_snapshots
#                            incompat)
qcow2_poke() {
	python3 - "$@" <<'PYEOF'
import struct, sys
path, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
FIELDS = {  # offset, struct format
    "magic": (0, ">I"), "version": (4, ">I"), "backing_offset": (8, ">Q"),
    "backing_size": (16, ">I"), "cluster_bits": (20, ">I"), "size": (24, ">Q"),
    "l1_size": (36, ">I"), "l1_offset": (40, ">Q"), "rt_offset": (48, ">Q"),
    "rt_clusters": (56, ">I"), "nb_snapshots": (60, ">I"), "incompat": (72, ">Q"),
}
with open(path, "r+b") as f:
    def get(name):
        off, fmt = FIELDS[name]
        f.seek(off)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    def u64(off):
        f.seek(off)
        return struct.unpack(">Q", f.read(8))[0]
    cb = get("cluster_bits")
    cs = 1 << cb
    if op == "header":
        off, fmt = FIELDS[args[0]]
        f.seek(off)
        f.write(struct.pack(fmt, int(args[1], 0)))
    elif op == "data-cluster":
        guest = int(args[0], 0)
        per_l2 = cs // 8
        l2 = u64(get("l1_offset") + 8 * (guest // cs // per_l2)) & 0x00fffffffffffe00
        e = u64(l2 + 8 * (guest // cs % per_l2)) & 0x00fffffffffffe00
        print(e >> cb)
    elif op == "refcount":
        cluster, value = int(args[0]), int(args[1])
        order = 4
        if get("version") >= 3:
            f.seek(96)
            order = struct.unpack(">I", f.read(4))[0]
        bits = 1 << order
        per_block = cs * 8 // bits
        rb = u64(get("rt_offset") + 8 * (cluster // per_block)) & ~0x1ff
        assert rb, "no refcount block for that cluster"
        idx = cluster % per_block
        if bits >= 8:
            f.seek(rb + idx * bits // 8)
            f.write(value.to_bytes(bits // 8, "big"))
        else:
            byte = rb + idx * bits // 8
            shift = idx * bits % 8
            f.seek(byte)
            b = f.read(1)[0]
            b = (b & ~(((1 << bits) - 1) << shift)) | (value << shift)
            f.seek(byte)
            f.write(bytes([b]))
    else:
        sys.exit("qcow2_poke: unknown op " + op)
PYEOF
}
