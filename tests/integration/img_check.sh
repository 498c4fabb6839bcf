#!/usr/bin/env bash
# minivm-img check against qemu-img check: a clean image exits 0, leaked
# clusters 3, corruption 2, raw 63; -r leaks and -r all repair so that
# qemu-img check finds nothing and the data is unchanged; human output is
# qemu-img's line for line and the JSON carries the same data.
# Runs on the host: no guest, no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

# same_check RC IMAGE: minivm-img check exits RC and prints what qemu-img
# check prints (stdout; the per-cluster messages on stderr may differ),
# human and JSON.
same_check() {
	local want=$1 f=$2 rc=0
	qemu-img check "$f" >q.txt 2>/dev/null || rc=$?
	expect_eq "qemu-img check $f exit" "$rc" "$want"
	img_exit "$want" check "$f"
	printf '%s\n' "$out" >m.txt
	diff -u q.txt m.txt >&2 || fail "check $f: output differs from qemu-img's"
	rc=0
	qemu-img check --output=json "$f" >q.json 2>/dev/null || rc=$?
	img_exit "$want" check --output=json "$f"
	printf '%s\n' "$out" >m.json
	python3 -c 'import json, sys; sys.exit(json.load(open("q.json")) != json.load(open("m.json")))' || {
		diff -u q.json m.json >&2
		fail "check --output=json $f: differs from qemu-img's"
	}
}

echo "== clean images"
img_ok create -q -f qcow2 m.qcow2 64M
same_check 0 m.qcow2
qio m.qcow2 'write -P 1 0 3M' 'write -P 2 60M 100k' 'write -z 1M 64k'
same_check 0 m.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=8 q.qcow2 16M
qio q.qcow2 'write -P 1 0 1M' 'write -P 2 10M 64k'
same_check 0 q.qcow2
qemu-img convert -c -O qcow2 q.qcow2 qc.qcow2
same_check 0 qc.qcow2
qemu-img snapshot -c s q.qcow2
qio q.qcow2 'write -P 3 0 512k'
same_check 0 q.qcow2
qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 16M
qio v2.qcow2 'write -P 1 0 1M'
same_check 0 v2.qcow2

echo "== raw: no checks"
qemu-img create -q -f raw r.raw 1M
img_exit 63 check r.raw
grep -q 'does not support checks' <<<"$errout" || fail "raw check: '$errout'"

echo "== a leaked cluster: exit 3, -r leaks repairs"
qemu-img create -q -f qcow2 leak.qcow2 16M
qio leak.qcow2 'write -P 7 0 128k'
qemu-img convert -O raw leak.qcow2 leak-data.raw
end=$(stat -c %s leak.qcow2)
truncate -s $((end + 65536)) leak.qcow2
qcow2_poke leak.qcow2 refcount $((end / 65536)) 1
same_check 3 leak.qcow2
cp leak.qcow2 leak2.qcow2
img_exit 0 check -r leaks leak.qcow2
grep -q '^    1 leaked clusters$' <<<"$out" || fail "-r leaks: no repair summary: $out"
grep -q '^No errors were found on the image.$' <<<"$out" || fail "-r leaks: not clean after: $out"
qemu_clean leak.qcow2
same_content leak-data.raw leak.qcow2
img_exit 0 check -r all --output=json leak2.qcow2
printf '%s\n' "$out" >fixed.json
expect_eq "leaks-fixed" "$(jq_py fixed.json 'j["leaks-fixed"]')" 1
qemu_clean leak2.qcow2

echo "== corruption: a referenced cluster with refcount 0: exit 2, -r all repairs"
qemu-img create -q -f qcow2 bad.qcow2 16M
qio bad.qcow2 'write -P 8 0 128k' 'write -P 9 8M 64k'
qemu-img convert -O raw bad.qcow2 bad-data.raw
qcow2_poke bad.qcow2 refcount "$(qcow2_poke bad.qcow2 data-cluster 0)" 0
img_exit 2 check bad.qcow2
grep -q 'errors were found on the image' <<<"$out" || fail "corruption not reported: $out"
img_exit 2 check --output=json bad.qcow2
printf '%s\n' "$out" >bad.json
[ "$(jq_py bad.json 'j["corruptions"] > 0')" = True ] || fail "JSON has no corruptions: $out"
rc=0
qemu-img check bad.qcow2 >/dev/null 2>&1 || rc=$?
expect_eq "qemu-img check of the damaged image" "$rc" 2
img_exit 0 check -r all bad.qcow2
grep -q 'corruptions$' <<<"$out" || fail "-r all: no repair summary: $out"
qemu_clean bad.qcow2
same_content bad-data.raw bad.qcow2
img_exit 0 check bad.qcow2

echo "== refcount too high on a data cluster (a leak qemu-img also calls one)"
qemu-img create -q -f qcow2 hi.qcow2 16M
qio hi.qcow2 'write -P 8 0 64k'
qcow2_poke hi.qcow2 refcount "$(qcow2_poke hi.qcow2 data-cluster 0)" 2
rc=0
qemu-img check hi.qcow2 >/dev/null 2>&1 || rc=$?
img_exit "$rc" check hi.qcow2
img_exit 0 check -r all hi.qcow2
qemu_clean hi.qcow2

echo "== the corrupt bit: refused for writing, cleared by -r all"
qemu-img create -q -f qcow2 cb.qcow2 8M
qio cb.qcow2 'write -P 3 0 64k'
# Incompatible feature bit 1, "corrupt" (byte 79 of the header).
printf '\x02' | dd of=cb.qcow2 bs=1 seek=79 conv=notrunc status=none
img_ok info cb.qcow2 | grep -q '^    corrupt: true$' || fail "info does not show the corrupt bit"
img_error resize cb.qcow2 16M
img_exit 0 check -r all cb.qcow2
img_ok info cb.qcow2 | grep -q '^    corrupt: false$' || fail "check -r all left the corrupt bit set"
qemu_clean cb.qcow2

echo "== errors"
img_error check
img_error check -r some m.qcow2
img_error check missing.qcow2
img_error check --output=yaml m.qcow2

echo "PASS"
