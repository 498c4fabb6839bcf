#!/usr/bin/env bash
# minivm-img resize, commit, rebase, map and compare, against qemu-img:
# the images they leave pass qemu-img check and hold, by qemu-img compare,
# what they should; map prints qemu-img map's extents; compare gives
# qemu-img compare's verdicts and exit codes. Runs on the host: no guest,
# no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

qsize() {
	qemu-img info --output=json "$1" >sz.json || fail "qemu-img info $1"
	jq_py sz.json 'j["virtual-size"]'
}

echo "== resize: raw and qcow2, grow, relative sizes, --shrink"
qemu-img create -q -f raw r.raw 1M
img_exit 0 resize -f raw r.raw 2M
expect_eq "resize output" "$out" "Image resized."
expect_eq "raw grown" "$(stat -c %s r.raw)" 2097152
img_ok resize -q -f raw r.raw +1.5M
expect_eq "raw +1.5M" "$(stat -c %s r.raw)" 3670016
img_error resize -f raw r.raw 1M
grep -q 'Use the --shrink option' <<<"$errout" || fail "shrink without --shrink: '$errout'"
expect_eq "raw not shrunk" "$(stat -c %s r.raw)" 3670016
img_ok resize -q -f raw --shrink r.raw -512K
expect_eq "raw -512K" "$(stat -c %s r.raw)" 3145728
img_error resize -f raw --shrink r.raw -100M

img_ok create -q -f qcow2 q.qcow2 10M
qio q.qcow2 'write -P 1 0 1M' 'write -P 2 9M 1M'
qemu-img convert -O raw q.qcow2 q10.raw
img_ok resize q.qcow2 +10M
expect_eq "qcow2 grown" "$(qsize q.qcow2)" 20971520
qemu_clean q.qcow2
qio q.qcow2 'write -P 3 19M 1M'
qemu_clean q.qcow2
img_error resize q.qcow2 10M
expect_eq "qcow2 not shrunk" "$(qsize q.qcow2)" 20971520
img_ok resize -q --shrink q.qcow2 10M
expect_eq "qcow2 shrunk" "$(qsize q.qcow2)" 10485760
qemu_clean q.qcow2
same_content q10.raw q.qcow2
img_ok resize -q q.qcow2 5G
expect_eq "qcow2 5G" "$(qsize q.qcow2)" 5368709120
qemu_clean q.qcow2
img_error resize q.qcow2
img_error resize q.qcow2 10Q
img_error resize missing.qcow2 1G

echo "== commit: the overlay's data goes down; the overlay empties (not with -d)"
pattern_raw base.raw 8
cp base.raw base-orig.raw
qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2
qio ov.qcow2 'write -P 0x51 64k 200k' 'write -z 0 64k' 'write -P 0x52 7M 1M'
qemu-img convert -O raw ov.qcow2 ov-view.raw
img_exit 0 commit ov.qcow2
expect_eq "commit output" "$out" "Image committed."
cmp base.raw ov-view.raw || fail "after commit the base does not hold the overlay's view"
qemu_clean ov.qcow2
same_content ov.qcow2 ov-view.raw
qemu-img map --output=json ov.qcow2 >map.json
[ "$(jq_py map.json 'all(e["depth"] == 1 for e in j)')" = True ] || fail "the overlay still allocates after commit: $(cat map.json)"
# -d: the overlay keeps its clusters. Into a qcow2 base of a chain of three.
qemu-img create -q -f qcow2 b2.qcow2 8M
qio b2.qcow2 'write -P 0x61 0 8M'
qemu-img create -q -f qcow2 -b b2.qcow2 -F qcow2 mid.qcow2
qio mid.qcow2 'write -P 0x62 1M 1M'
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qio top.qcow2 'write -P 0x63 1536k 1M' 'write -z 4M 100k'
qemu-img convert -O raw top.qcow2 top-view.raw
img_ok commit -q -d top.qcow2
qemu_clean top.qcow2
qemu_clean mid.qcow2
same_content mid.qcow2 top-view.raw
same_content top.qcow2 top-view.raw
qemu-img map --output=json top.qcow2 >map.json
[ "$(jq_py map.json 'any(e["depth"] == 0 for e in j)')" = True ] || fail "commit -d emptied the overlay"
img_error commit base.raw
img_error commit missing.qcow2

echo "== rebase: safe mode keeps the guest's view, -u only renames"
rm -f base.raw ov.qcow2
pattern_raw base.raw 8
qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2
qio ov.qcow2 'write -P 0x71 2M 64k'
qemu-img convert -O raw ov.qcow2 view.raw
qemu-img create -q -f raw other.raw 8M
QIO_FMT=raw qio other.raw 'write -P 0x72 0 3M' 'write -P 0x11 6M 2M'
img_ok rebase -b other.raw -F raw ov.qcow2
qemu_clean ov.qcow2
same_content ov.qcow2 view.raw
qemu-img info --output=json ov.qcow2 >i.json
expect_eq "new backing" "$(jq_py i.json 'j["backing-filename"]')" other.raw
# Onto a qcow2 copy of the same content: nothing needs copying.
qemu-img convert -O qcow2 other.raw other.qcow2
before=$(stat -c %s ov.qcow2)
img_ok rebase -b other.qcow2 -F qcow2 ov.qcow2
same_content ov.qcow2 view.raw
expect_eq "image grew on a rebase onto identical content" "$(stat -c %s ov.qcow2)" "$before"
# -b "": no backing file any more, everything copied in.
img_ok rebase -b "" ov.qcow2
qemu_clean ov.qcow2
same_content ov.qcow2 view.raw
qemu-img info --output=json ov.qcow2 >i.json
expect_eq "backing after -b ''" "$(jq_py i.json '"backing-filename" in j')" False
# -u: the name changes, the data does not move (unsafe on purpose).
qemu-img create -q -f qcow2 -b base.raw -F raw u.qcow2
img_ok rebase -u -b other.raw -F raw u.qcow2
qemu-img info --output=json u.qcow2 >i.json
expect_eq "-u backing" "$(jq_py i.json 'j["backing-filename"]')" other.raw
expect_eq "-u backing format" "$(jq_py i.json 'j["backing-filename-format"]')" raw
qemu_clean u.qcow2
same_content u.qcow2 other.raw
img_ok rebase -u -b nonexistent.qcow2 -F qcow2 u.qcow2
img_ok rebase -u -b "" u.qcow2
qemu_clean u.qcow2
img_error rebase -b other.raw u.qcow2
img_error rebase -u u.qcow2
img_error rebase -b missing.raw -F raw ov.qcow2
img_error rebase -b other.raw -F raw base.raw

echo "== map: qemu-img's extents"
# same_map IMAGE: both outputs as qemu-img map prints them.
same_map() {
	qemu-img map --output=json "$1" >q.json || fail "qemu-img map $1"
	img_ok map --output=json "$1" >m.json
	python3 -c 'import json, sys; sys.exit(json.load(open("q.json")) != json.load(open("m.json")))' || {
		diff -u q.json m.json >&2
		fail "map --output=json $1 differs from qemu-img's"
	}
	qemu-img map "$1" >q.txt
	img_ok map "$1" >m.txt
	diff -u q.txt m.txt >&2 || fail "map $1 differs from qemu-img's"
}
rm -f base.raw
pattern_raw base.raw 8
same_map base.raw
qemu-img create -q -f qcow2 -b base.raw -F raw m1.qcow2
qio m1.qcow2 'write -P 1 1M 128k' 'write -z 2M 64k' 'write -P 2 7M 64k'
same_map m1.qcow2
qemu-img create -q -f qcow2 -b m1.qcow2 -F qcow2 m2.qcow2 12M
qio m2.qcow2 'write -P 3 1088k 64k' 'write -P 4 10M 4k'
same_map m2.qcow2
qemu-img create -q -f qcow2 lone.qcow2 4M
qio lone.qcow2 'write -P 5 0 64k' 'write -P 6 64k 64k' 'write -z 1M 1M' 'write -P 7 3M 64k'
same_map lone.qcow2
img_ok create -q -f qcow2 -o preallocation=metadata pre.qcow2 4M
same_map pre.qcow2
img_error map missing.qcow2
img_error map --output=yaml lone.qcow2

echo "== compare: identical, different, sizes, strict"
pattern_raw c1.raw 8
img_ok convert -O qcow2 c1.raw c1.qcow2
img_exit 0 compare c1.raw c1.qcow2
expect_eq "compare output" "$out" "Images are identical."
img_exit 0 compare -f raw -F qcow2 c1.raw c1.qcow2
qio c1.qcow2 'write -P 0x99 1000001 1'
img_exit 1 compare c1.raw c1.qcow2
rc=0
want=$(qemu-img compare c1.raw c1.qcow2) || rc=$?
expect_eq "mismatch report" "$out" "$want"
expect_eq "qemu-img's exit" "$rc" 1
# A larger image whose extra part is zero is the same disk; not with -s.
qemu-img create -q -f qcow2 -b c1.raw -F raw big.qcow2 12M
img_exit 0 compare c1.raw big.qcow2
expect_eq "size warning" "$out" "$(printf 'Warning: Image size mismatch!\nImages are identical.')"
img_exit 1 compare -s c1.raw big.qcow2
qio big.qcow2 'write -P 1 10M 512'
img_exit 1 compare big.qcow2 c1.raw
expect_eq "tail mismatch" "$out" "$(qemu-img compare big.qcow2 c1.raw 2>&1)"
# Zero clusters against holes and against zeros written as data.
qemu-img create -q -f qcow2 z.qcow2 4M
qio z.qcow2 'write -z 0 4M'
head -c 4M /dev/zero >zeros.raw
img_exit 0 compare z.qcow2 zeros.raw
img_exit 2 compare c1.raw missing.qcow2
img_exit 2 compare c1.raw
img_exit 0 compare -q c1.raw c1.raw
expect_eq "compare -q output" "$out" ""

echo "== resize: small clusters, a long way"
# Small clusters: the L1 table grows from one entry to 64k of them (a
# timeout, so that a resize that loops fails the test instead of hanging it).
qemu-img create -q -f qcow2 -o cluster_size=512 small.qcow2 1M
timeout 60 "$IMG" resize -q small.qcow2 2G || fail "resize of a 512-byte-cluster image to 2G: exit $?"
expect_eq "small clusters grown" "$(qsize small.qcow2)" 2147483648
qio small.qcow2 'write -P 4 2047M 1M'
qemu_clean small.qcow2
# Further: the L1 table (16 MiB) outgrows what the refcount table covers.
timeout 60 "$IMG" resize -q small.qcow2 64G || fail "resize of a 512-byte-cluster image to 64G: exit $?"
expect_eq "small clusters grown to 64G" "$(qsize small.qcow2)" 68719476736
qemu_clean small.qcow2
qio small.qcow2 'read -P 4 2047M 1M' 'write -P 5 63G 1M' 'read -P 5 63G 1M'
qemu_clean small.qcow2

echo "PASS"
