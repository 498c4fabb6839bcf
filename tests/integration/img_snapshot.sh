#!/usr/bin/env bash
# minivm-img snapshot: -c, -l, -a, -d with data changes (qemu-io) between,
# cross-checked with qemu-img snapshot -l and qemu-img check; snapshots
# that qemu-img made are listed, applied and deleted by minivm-img too.
# Runs on the host: no guest, no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

# same_list IMAGE: minivm-img snapshot -l prints qemu-img snapshot -l's table.
same_list() {
	qemu-img snapshot -l "$1" >q.txt || fail "qemu-img snapshot -l $1"
	img_ok snapshot -l "$1" >m.txt
	diff -u q.txt m.txt >&2 || fail "snapshot -l $1 differs from qemu-img's"
}

# expect_data IMAGE RAW: the disk IMAGE shows is RAW's content.
expect_data() {
	qemu-img convert -O raw "$1" now.raw || fail "qemu-img convert $1"
	cmp now.raw "$2" || fail "$1 does not hold what $2 holds"
}

for opts in "" "-o compat=0.10" "-o cluster_size=4k,refcount_bits=4" "-o lazy_refcounts=on"; do
	echo "== snapshot cycle ${opts:-(defaults)}"
	rm -f s.qcow2 ./*.raw
	# shellcheck disable=SC2086
	img_ok create -q -f qcow2 $opts s.qcow2 8M
	qio s.qcow2 'write -P 0x11 0 1M' 'write -P 0x12 6M 100k'
	qemu-img convert -O raw s.qcow2 state1.raw
	img_exit 0 snapshot -c one s.qcow2
	expect_eq "snapshot -c output" "$out" ""
	qemu_clean s.qcow2
	same_list s.qcow2
	grep -q ' one ' q.txt || fail "qemu-img does not list snapshot 'one'"

	# Writes after the snapshot copy-on-write: the snapshot keeps its data.
	qio s.qcow2 'write -P 0x21 512k 1M' 'write -z 6M 64k' 'write -P 0x22 7M 4k'
	qemu-img convert -O raw s.qcow2 state2.raw
	qemu_clean s.qcow2
	img_ok snapshot -c two s.qcow2
	qio s.qcow2 'write -P 0x31 0 8M'
	qemu_clean s.qcow2
	same_list s.qcow2
	[ "$(grep -c '^[0-9]' q.txt)" -eq 2 ] || fail "qemu-img lists $(grep -c '^[0-9]' q.txt) snapshots, not 2"

	img_ok snapshot -a one s.qcow2
	qemu_clean s.qcow2
	expect_data s.qcow2 state1.raw
	img_ok snapshot -a two s.qcow2
	expect_data s.qcow2 state2.raw
	# qemu-img applies what minivm-img took, and the other way round.
	qemu-img snapshot -a one s.qcow2
	expect_data s.qcow2 state1.raw
	qemu-img snapshot -c three s.qcow2
	qio s.qcow2 'write -P 0x41 1M 1M'
	img_ok snapshot -a three s.qcow2
	expect_data s.qcow2 state1.raw
	qemu_clean s.qcow2

	img_ok snapshot -d one s.qcow2
	qemu_clean s.qcow2
	same_list s.qcow2
	grep -q ' one ' q.txt && fail "snapshot 'one' still listed after -d"
	img_ok snapshot -d two s.qcow2
	img_ok snapshot -d three s.qcow2
	qemu_clean s.qcow2
	img_exit 0 snapshot -l s.qcow2
	expect_eq "snapshot -l with no snapshots" "$out" ""
	expect_data s.qcow2 state1.raw
	# Deleting every snapshot gave their clusters back: no leaks above.
done

echo "== snapshots made by qemu-img"
qemu-img create -q -f qcow2 q.qcow2 4M
qio q.qcow2 'write -P 1 0 1M'
qemu-img snapshot -c alpha q.qcow2
qemu-img convert -O raw q.qcow2 alpha.raw
qio q.qcow2 'write -P 2 0 2M'
qemu-img snapshot -c beta q.qcow2
same_list q.qcow2
img_ok info q.qcow2 | grep -q '^Snapshot list:$' || fail "info does not list the snapshots"
img_ok snapshot -a alpha q.qcow2
expect_data q.qcow2 alpha.raw
img_ok snapshot -d beta q.qcow2
qemu_clean q.qcow2
same_list q.qcow2
img_ok snapshot -a 1 q.qcow2 # by ID too
expect_data q.qcow2 alpha.raw

echo "== errors"
img_error snapshot -a nosuch q.qcow2
img_error snapshot -d nosuch q.qcow2
img_error snapshot -l -c x q.qcow2
img_error snapshot -c
img_error snapshot -c x missing.qcow2
qemu-img create -q -f raw r.raw 1M
img_error snapshot -c x r.raw
img_exit 0 snapshot -l r.raw
qemu_clean q.qcow2

echo "PASS"
