#!/usr/bin/env bash
# minivm-img on bad input: malformed qcow2 images (truncated header, bad
# magic or version, absurd sizes, tables past the end of the file,
# backing-file cycles, random damage) and bad command lines. Every case
# ends in a non-zero exit and one error line: never a crash, a hang or a
# sanitizer report. Runs on the host: no guest, no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

# check_rc ARGS...: minivm-img check; its per-problem lines on stderr are
# qemu-img's habit, so only the exit status is looked at. Sets $rc.
check_rc() {
	rc=0
	img check "$@" >/dev/null 2>&1 || rc=$?
}

# compare_no_crash A B: 0 or 1 (a verdict) with no error, or a clean error.
compare_no_crash() {
	img_no_crash compare "$@"
	if [ "$rc" -eq 1 ]; then
		grep -q '^Content mismatch at offset' "$dir/.out" ||
			fail "compare $*: exit 1 without saying where the images differ"
	fi
}

# good NAME: a fresh, valid qcow2 image with data, to damage.
good() {
	rm -f "$1"
	qemu-img create -q -f qcow2 "$1" 8M
	qio "$1" 'write -P 0x5a 0 256k' 'write -P 0xa5 4M 64k'
}

# refused IMAGE: every command that reads IMAGE as qcow2 fails cleanly.
refused() {
	local f=$1
	img_error info -f qcow2 "$f"
	img_error convert -f qcow2 -O raw "$f" out.raw
	img_error map -f qcow2 "$f"
	img_error compare -f qcow2 -F raw "$f" ref.raw
	img_error check -f qcow2 "$f"
	img_error snapshot -l "$f"
	rm -f out.raw
}

qemu-img create -q -f raw ref.raw 8M

echo "== malformed headers"
good h.qcow2
head -c 50 h.qcow2 >trunc.qcow2
refused trunc.qcow2
: >empty.qcow2
img_error info -f qcow2 empty.qcow2
good magic.qcow2
qcow2_poke magic.qcow2 header magic 0x12345678
img_error info -f qcow2 magic.qcow2
for v in 1 4 0xffffffff; do
	good ver.qcow2
	qcow2_poke ver.qcow2 header version "$v"
	refused ver.qcow2
	# Probed, it is still a qcow2 file (the magic says so): refused, not raw.
	img_error info ver.qcow2
done
for cb in 0 8 22 63 200; do
	good cb.qcow2
	qcow2_poke cb.qcow2 header cluster_bits "$cb"
	refused cb.qcow2
done
good huge.qcow2
qcow2_poke huge.qcow2 header size 0x4000000000000000
refused huge.qcow2
good l1.qcow2
qcow2_poke l1.qcow2 header l1_size 0xffffffff
refused l1.qcow2
good l1b.qcow2
qcow2_poke l1b.qcow2 header l1_size 0x00ffffff
refused l1b.qcow2
good l1off.qcow2
qcow2_poke l1off.qcow2 header l1_offset 0x4000000000000
refused l1off.qcow2
good l1u.qcow2
qcow2_poke l1u.qcow2 header l1_offset 0x30001
refused l1u.qcow2
good rt.qcow2
qcow2_poke rt.qcow2 header rt_offset 0x4000000000000
img_error check -f qcow2 rt.qcow2
img_no_crash info rt.qcow2
good rtc.qcow2
qcow2_poke rtc.qcow2 header rt_clusters 0xffffffff
img_no_crash info rtc.qcow2
img_error check rtc.qcow2
good bk.qcow2
qcow2_poke bk.qcow2 header backing_offset 0x4000000000
qcow2_poke bk.qcow2 header backing_size 0xffff
refused bk.qcow2
good sn.qcow2
qcow2_poke sn.qcow2 header nb_snapshots 0xffffffff
refused sn.qcow2
good ic.qcow2
qcow2_poke ic.qcow2 header incompat 0x10000000000
refused ic.qcow2
grep -qi 'feature' <<<"$errout" || fail "an unknown incompatible feature should be named: '$errout'"

echo "== a data cluster past the end of the file"
good l2.qcow2
python3 - <<'EOF'
import struct
with open("l2.qcow2", "r+b") as f:
    f.seek(40)
    l1 = struct.unpack(">Q", f.read(8))[0]
    f.seek(l1)
    l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2)
    f.write(struct.pack(">Q", (1 << 63) | (1 << 45)))
EOF
img_error convert -O raw l2.qcow2 out.raw
img_error compare l2.qcow2 ref.raw
check_rc l2.qcow2
expect_eq "check of a cluster past the end of the file" "$rc" 2

echo "== backing chains: cycles, missing files, too deep"
qemu-img create -q -f qcow2 cyc-a.qcow2 8M
qemu-img create -q -f qcow2 -b cyc-a.qcow2 -F qcow2 cyc-b.qcow2
qemu-img rebase -u -b cyc-b.qcow2 -F qcow2 cyc-a.qcow2
img_error convert -O raw cyc-a.qcow2 out.raw
img_error info --backing-chain cyc-b.qcow2
img_error map cyc-a.qcow2
img_error compare cyc-a.qcow2 ref.raw
img_ok info cyc-a.qcow2 >/dev/null # the top alone is fine
qemu-img create -q -f qcow2 self.qcow2 8M
qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2
img_error convert -O raw self.qcow2 out.raw
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 8M
img_error convert -O raw orphan.qcow2 out.raw
img_ok info orphan.qcow2 >/dev/null
prev=ref.raw
pfmt=raw
for i in $(seq 1 70); do
	qemu-img create -q -f qcow2 -u -b "$prev" -F "$pfmt" "deep$i.qcow2" 8M
	prev=deep$i.qcow2
	pfmt=qcow2
done
img_error convert -O raw deep70.qcow2 out.raw
img_ok convert -O raw deep50.qcow2 out.raw
# A raw image that looks like qcow2 is not opened as qcow2 behind a raw backing_fmt.
good looks.qcow2
qemu-img create -q -f qcow2 -b looks.qcow2 -F raw asraw.qcow2
img_ok convert -O raw asraw.qcow2 out.raw
cmp -n "$(stat -c %s looks.qcow2)" looks.qcow2 out.raw || fail "backing_fmt=raw was not honoured"

echo "== random damage to the metadata"
good fz.qcow2
for i in $(seq 1 40); do
	cp fz.qcow2 f.qcow2
	python3 - "$i" <<'EOF'
import random, sys
r = random.Random(int(sys.argv[1]))
data = bytearray(open("f.qcow2", "rb").read())
# The header, the L1 and refcount tables and the first L2 table all live
# in the first 5 clusters of a fresh qemu-img image.
for _ in range(r.randint(1, 8)):
    pos = r.randrange(0, 5 * 65536) if r.random() < 0.7 else r.randrange(0, 112)
    data[pos] = r.randrange(256)
open("f.qcow2", "wb").write(data)
EOF
	img_no_crash info f.qcow2
	img_no_crash convert -O raw f.qcow2 out.raw
	img_no_crash map f.qcow2
	check_rc f.qcow2
	compare_no_crash f.qcow2 ref.raw
	check_rc -r all f.qcow2
	img_no_crash convert -O raw f.qcow2 out.raw
done

echo "== bad command lines"
good ok.qcow2
img_error
img_error frobnicate ok.qcow2
img_error --frobnicate
img_error info --frobnicate ok.qcow2
img_error info -Z ok.qcow2
img_error info -f
img_error info -f vhdx ok.qcow2
img_error convert -O
img_error convert -O qcow2 -o cluster_size ok.qcow2 x.qcow2
img_error check -r
img_error map --output ok.qcow2
img_error resize ok.qcow2 -- -1T
img_error resize ok.qcow2 +-1M
img_error resize ok.qcow2 abc
img_error snapshot -x s ok.qcow2
img_error commit -x ok.qcow2
img_error rebase -x ok.qcow2
img_error compare -x ok.qcow2 ok.qcow2
img_error create -f qcow2 -o size=abc x.qcow2
img_error create -f qcow2 -o ,,,=, x.qcow2 1M
img_exit 0 --version
grep -q '^minivm-img version' <<<"$out" || fail "--version: '$out'"
img_exit 0 --help
grep -q 'convert' <<<"$out" || fail "--help does not list the commands"
qemu_clean ok.qcow2

echo "PASS"
