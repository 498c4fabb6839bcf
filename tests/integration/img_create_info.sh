#!/usr/bin/env bash
# minivm-img create and info against qemu-img: every create option both
# ways. Images minivm-img creates pass qemu-img check and qemu-img info
# agrees with what was asked; images qemu-img creates print the same with
# minivm-img info as with qemu-img info (human output line for line, JSON
# as the same data). Runs on the host: no guest, no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

# same_info IMAGE [info options]: minivm-img info prints what qemu-img info
# prints, in both output formats.
same_info() {
	local f=$1
	shift
	qemu-img info "$@" "$f" >q.txt || fail "qemu-img info $f"
	img_ok info "$@" "$f" >m.txt
	diff -u q.txt m.txt >&2 || fail "info $* $f: the human output differs from qemu-img's"
	qemu-img info --output=json "$@" "$f" >q.json || fail "qemu-img info --output=json $f"
	img_ok info --output=json "$@" "$f" >m.json
	python3 -c 'import json, sys; sys.exit(json.load(open("q.json")) != json.load(open("m.json")))' || {
		diff -u q.json m.json >&2
		fail "info --output=json $* $f: the JSON differs from qemu-img's"
	}
}

# qinfo IMAGE EXPR: a value from qemu-img's JSON info of IMAGE.
qinfo() {
	qemu-img info --output=json "$1" >qi.json || fail "qemu-img info $1"
	jq_py qi.json "$2"
}

echo "== raw: sizes, suffixes and preallocation"
for spec in 1M:1048576 1.5G:1610612736 512b:512 0x1000:4096 1.7k:2048 1000:1024 1.2345G:1325534720 \
	2T:2199023255552 64K:65536; do
	arg=${spec%%:*} want=${spec#*:}
	img_ok create -q -f raw "r-$arg.raw" "$arg"
	expect_eq "raw size of $arg" "$(stat -c %s "r-$arg.raw")" "$want"
	qemu-img create -q -f qcow2 "q-$arg.qcow2" "$arg"
	img_ok create -q -f qcow2 "m-$arg.qcow2" "$arg"
	expect_eq "qcow2 size of $arg" "$(qinfo "m-$arg.qcow2" 'j["virtual-size"]')" \
		"$(qinfo "q-$arg.qcow2" 'j["virtual-size"]')"
	rm -f "r-$arg.raw" "q-$arg.qcow2" "m-$arg.qcow2"
done
img_exit 0 create -f raw plain.raw 10M
expect_eq "Formatting line" "$out" "Formatting 'plain.raw', fmt=raw size=10485760"
[ "$(alloc_blocks plain.raw)" -lt 64 ] || fail "preallocation=off allocated $(alloc_blocks plain.raw) blocks"
for p in falloc full; do
	img_ok create -q -f raw -o preallocation=$p "p-$p.raw" 10M
	[ "$(alloc_blocks "p-$p.raw")" -ge 20480 ] || fail "raw preallocation=$p: only $(alloc_blocks "p-$p.raw") blocks"
	same_info "p-$p.raw"
done
same_info plain.raw
same_info plain.raw -f raw
img_error create -f raw -o preallocation=metadata x.raw 1M
img_error create -f raw -o cluster_size=4k x.raw 1M
img_error create -f raw -b plain.raw -F raw x.raw 1M

echo "== qcow2 created by minivm-img: qemu-img check and info agree"
pattern_raw base.raw 8
# name|create options|python checks on qemu-img's JSON
cases=(
	"default||j['cluster-size'] == 65536 and j['format-specific']['data']['compat'] == '1.1' and j['format-specific']['data']['refcount-bits'] == 16 and not j['format-specific']['data']['lazy-refcounts']"
	"c512|-o cluster_size=512|j['cluster-size'] == 512"
	"c4k|-o cluster_size=4k|j['cluster-size'] == 4096"
	"c2m|-o cluster_size=2M|j['cluster-size'] == 2097152"
	"v2|-o compat=0.10|j['format-specific']['data']['compat'] == '0.10'"
	"v2b|-o compat=v2,cluster_size=16k|j['format-specific']['data']['compat'] == '0.10' and j['cluster-size'] == 16384"
	"v3|-o compat=v3|j['format-specific']['data']['compat'] == '1.1'"
	"lazy|-o compat=1.1,lazy_refcounts=on|j['format-specific']['data']['lazy-refcounts']"
	"rc1|-o refcount_bits=1|j['format-specific']['data']['refcount-bits'] == 1"
	"rc8|-o refcount_bits=8|j['format-specific']['data']['refcount-bits'] == 8"
	"rc64|-o refcount_bits=64|j['format-specific']['data']['refcount-bits'] == 64"
	"meta|-o preallocation=metadata|True"
	"falloc|-o preallocation=falloc|j['actual-size'] >= 64 << 20"
	"full|-o preallocation=full,cluster_size=128k|j['actual-size'] >= 64 << 20 and j['cluster-size'] == 131072"
	"multi|-o cluster_size=8k -o refcount_bits=32|j['cluster-size'] == 8192 and j['format-specific']['data']['refcount-bits'] == 32"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name opts check <<<"$c"
	# shellcheck disable=SC2086 # opts is a list of options
	img_ok create -q -f qcow2 $opts "$name.qcow2" 64M
	qemu_clean "$name.qcow2"
	expect_eq "$name: virtual size" "$(qinfo "$name.qcow2" 'j["virtual-size"]')" 67108864
	[ "$(qinfo "$name.qcow2" "$check")" = True ] || {
		qemu-img info "$name.qcow2" >&2
		fail "$name: qemu-img info does not show $opts"
	}
	if [ "$name" = meta ]; then
		[ "$(stat -c %s meta.qcow2)" -ge 67108864 ] || fail "preallocation=metadata: file of $(stat -c %s meta.qcow2) bytes"
	fi
	same_info "$name.qcow2"
	# Data written by qemu-io lands and reads back on both sides.
	qio "$name.qcow2" 'write -P 0x5a 1M 192k' 'write -P 0xa5 63M 1M'
	qemu_clean "$name.qcow2"
	rm -f "$name.qcow2"
done
for opts in "" "-o compat=0.10,refcount_bits=16" "-o cluster_size=4k,preallocation=metadata,lazy_refcounts=on"; do
	# shellcheck disable=SC2086
	want=$(qemu-img create -f qcow2 $opts fmt.qcow2 1G)
	# shellcheck disable=SC2086
	img_exit 0 create -f qcow2 $opts fmt.qcow2 1G
	expect_eq "Formatting line" "$out" "$want"
done
want=$(qemu-img create -f qcow2 -b base.raw -F raw fmt.qcow2 1G)
img_exit 0 create -f qcow2 -b base.raw -F raw fmt.qcow2 1G
expect_eq "Formatting line" "$out" "$want"

echo "== qcow2 created by qemu-img: minivm-img info prints the same"
qcases=(
	"-o cluster_size=512"
	"-o cluster_size=2M"
	"-o compat=0.10"
	"-o lazy_refcounts=on"
	"-o refcount_bits=1"
	"-o refcount_bits=64"
	"-o preallocation=metadata"
	"-o preallocation=falloc"
	"-o preallocation=full"
)
n=0
for opts in "${qcases[@]}"; do
	# shellcheck disable=SC2086
	qemu-img create -q -f qcow2 $opts "qq$n.qcow2" 32M
	same_info "qq$n.qcow2"
	n=$((n + 1))
done

echo "== backing files: -b/-F, -o backing_file, size from the backing file, chains"
img_exit 0 create -f qcow2 -b base.raw -F raw ov1.qcow2
expect_eq "overlay size from its backing file" "$(qinfo ov1.qcow2 'j["virtual-size"]')" 8388608
expect_eq "backing file" "$(qinfo ov1.qcow2 'j["backing-filename"]')" base.raw
expect_eq "backing format" "$(qinfo ov1.qcow2 'j["backing-filename-format"]')" raw
grep -q "backing_file=base.raw backing_fmt=raw" <<<"$out" || fail "Formatting line without the backing file: $out"
qemu_clean ov1.qcow2
same_content base.raw ov1.qcow2
img_ok create -q -f qcow2 -o backing_file=ov1.qcow2,backing_fmt=qcow2 ov2.qcow2 16M
expect_eq "overlay size" "$(qinfo ov2.qcow2 'j["virtual-size"]')" 16777216
qemu_clean ov2.qcow2
same_info ov2.qcow2
same_info ov2.qcow2 --backing-chain
mkdir sub
img_ok create -q -f qcow2 -b ../base.raw -F raw sub/rel.qcow2
same_info sub/rel.qcow2
same_info sub/rel.qcow2 --backing-chain
img_ok create -q -f qcow2 -b "$dir/base.raw" -F raw abs.qcow2
same_info abs.qcow2 --backing-chain
img_ok create -q -f qcow2 -o compat=0.10 -b base.raw -F raw ov-v2.qcow2
qemu_clean ov-v2.qcow2
same_content base.raw ov-v2.qcow2
# -u: the backing file need not exist, but then the size must be given.
img_ok create -q -f qcow2 -u -b nowhere.qcow2 -F qcow2 unsafe.qcow2 4M
expect_eq "-u backing" "$(qinfo unsafe.qcow2 'j["backing-filename"]')" nowhere.qcow2
same_info unsafe.qcow2
img_error create -f qcow2 -u -b nowhere.qcow2 -F qcow2 unsafe2.qcow2
img_error create -f qcow2 -b nowhere.qcow2 -F qcow2 nb.qcow2
img_error create -f qcow2 -b base.raw nofmt.qcow2
img_error create -f qcow2 -b base.raw -F vmdk badfmt.qcow2
qemu-img create -q -f qcow2 -b base.raw -F raw qov.qcow2
same_info qov.qcow2 --backing-chain

echo "== snapshots and the dirty bit show in info"
qemu-img create -q -f qcow2 snaps.qcow2 16M
qio snaps.qcow2 'write -P 1 0 64k'
qemu-img snapshot -c first snaps.qcow2
qio snaps.qcow2 'write -P 2 0 64k'
qemu-img snapshot -c "second one" snaps.qcow2
same_info snaps.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 16M
# The dirty bit (incompatible feature bit 0, byte 79 of the header).
printf '\x01' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc status=none
img_ok info dirty.qcow2 | grep -q '^cleanly shut down: no$' || fail "info does not show the dirty bit"
img_ok info --output=json dirty.qcow2 >d.json
expect_eq "dirty-flag" "$(jq_py d.json 'j["dirty-flag"]')" True

echo "== bad create options: one line, non-zero exit"
img_error create -f qcow2 -o cluster_size=1000 x.qcow2 1M
img_error create -f qcow2 -o cluster_size=256 x.qcow2 1M
img_error create -f qcow2 -o cluster_size=4M x.qcow2 1M
img_error create -f qcow2 -o compat=0.10,lazy_refcounts=on x.qcow2 1M
img_error create -f qcow2 -o compat=0.10,refcount_bits=8 x.qcow2 1M
img_error create -f qcow2 -o refcount_bits=3 x.qcow2 1M
img_error create -f qcow2 -o refcount_bits=128 x.qcow2 1M
img_error create -f qcow2 -o lazy_refcounts=maybe x.qcow2 1M
img_error create -f qcow2 -o compat=2 x.qcow2 1M
img_error create -f qcow2 -o preallocation=some x.qcow2 1M
img_error create -f qcow2 -o foo=bar x.qcow2 1M
img_error create -f qcow2 -o preallocation=full -b base.raw -F raw x.qcow2
img_error create -f vmdk x.img 1M
img_error create -f qcow2 x.qcow2
img_error create -f qcow2 x.qcow2 1Q
img_error create -f qcow2 x.qcow2 1.5
img_error create -f qcow2 x.qcow2 8E
img_error create -f qcow2 x.qcow2 1M extra
img_error create -f qcow2
img_error create --bogus x.qcow2 1M
img_error create -f
img_exit 0 create -f qcow2 -o help
grep -q '^  cluster_size=' <<<"$out" || fail "-o help does not list cluster_size"
img_exit 0 create -f raw -o help
grep -q '^  preallocation=' <<<"$out" || fail "raw -o help does not list preallocation"

echo "== info on what is not an image of ours"
img_error info nonexistent.qcow2
img_error info -f qcow2 base.raw
img_error info --output=xml base.raw
img_error info
img_error info a b

echo "PASS"
