#!/usr/bin/env bash
# minivm-img convert against qemu-img: raw <-> qcow2 both ways round-trips
# byte for byte, output is sparse, -c writes compressed clusters that
# qemu-img reads, and images qemu-img made (backing chains, zero clusters,
# compressed clusters, snapshots, v2) convert to what qemu-img's own
# convert makes of them. Runs on the host: no guest, no KVM.
# shellcheck source=img_lib.bash
. "$(dirname "$0")/img_lib.bash"

# qcow2_stats IMAGE: "allocated compressed" clusters by qemu-img check.
qcow2_stats() {
	qemu-img check --output=json "$1" >st.json || fail "qemu-img check $1"
	jq_py st.json '"%d %d" % (j.get("allocated-clusters", 0), j.get("compressed-clusters", 0))'
}

echo "== raw -> qcow2 -> raw, byte for byte"
pattern_raw src.raw 24
img_ok convert -f raw -O qcow2 src.raw a.qcow2
qemu_clean a.qcow2
same_content src.raw a.qcow2
img_ok convert -O raw a.qcow2 back.raw
cmp src.raw back.raw || fail "raw -> qcow2 -> raw changed the data"
# Sparse: the zeros written into src.raw (5M..6M) and its holes are not
# written out, in the raw output or the qcow2 one.
[ "$(alloc_blocks back.raw)" -lt "$(alloc_blocks src.raw)" ] ||
	fail "convert wrote zeros: $(alloc_blocks back.raw) blocks vs $(alloc_blocks src.raw)"
[ "$(alloc_blocks back.raw)" -lt 4096 ] || fail "raw output not sparse: $(alloc_blocks back.raw) blocks"
read -r alloc _ <<<"$(qcow2_stats a.qcow2)"
# 1M + 4k + 2k (two clusters) + 512k of data: 16 + 1 + 1 + 8 = 26 clusters of 64k.
[ "$alloc" -le 28 ] || fail "qcow2 output has $alloc clusters allocated, expected about 26"
# And qemu-img makes the same.
qemu-img convert -O qcow2 src.raw q.qcow2
read -r qalloc _ <<<"$(qcow2_stats q.qcow2)"
expect_eq "allocated clusters vs qemu-img's convert" "$alloc" "$qalloc"
# -S 0: everything written.
img_ok convert -S 0 -O raw src.raw full.raw
cmp src.raw full.raw || fail "-S 0 changed the data"
[ "$(alloc_blocks full.raw)" -ge 49152 ] || fail "-S 0: output still sparse ($(alloc_blocks full.raw) blocks)"

echo "== qcow2 options on the output"
for opts in "cluster_size=512" "cluster_size=2M" "compat=0.10" "refcount_bits=1" "lazy_refcounts=on" \
	"preallocation=metadata" "cluster_size=4k,refcount_bits=64"; do
	img_ok convert -O qcow2 -o "$opts" src.raw o.qcow2
	qemu_clean o.qcow2
	same_content src.raw o.qcow2
	img_ok convert -f qcow2 -O raw o.qcow2 o.raw
	cmp src.raw o.raw || fail "round trip through qcow2 -o $opts changed the data"
	rm -f o.qcow2 o.raw
done

echo "== -c: compressed clusters"
# Compressible data: text.
python3 -c '
import sys
with open("text.raw", "wb") as f:
    line = b"minivm-img compresses this line, again and again. "
    f.write((line * (6 * 1024 * 1024 // len(line) + 1))[:6 * 1024 * 1024])
    f.truncate(8 * 1024 * 1024)'
img_ok convert -c -O qcow2 text.raw c.qcow2
qemu_clean c.qcow2
same_content text.raw c.qcow2
read -r alloc comp <<<"$(qcow2_stats c.qcow2)"
[ "$comp" -ge 90 ] || fail "-c: $comp of $alloc clusters compressed, expected the 96 data clusters"
[ "$(stat -c %s c.qcow2)" -lt $((1 << 20)) ] || fail "-c: image of $(stat -c %s c.qcow2) bytes, not compressed"
img_ok convert -O raw c.qcow2 c.raw
cmp text.raw c.raw || fail "-c round trip changed the data"
img_ok convert -c -O qcow2 -o cluster_size=4k,compat=0.10 text.raw c4k.qcow2
qemu_clean c4k.qcow2
same_content text.raw c4k.qcow2
# Random data does not shrink: written uncompressed, still right.
head -c 3M /dev/urandom >rand.raw
truncate -s 3100k rand.raw
img_ok convert -c -O qcow2 rand.raw crand.qcow2
qemu_clean crand.qcow2
same_content rand.raw crand.qcow2
img_error convert -c -O raw text.raw c.raw

echo "== images made by qemu-img, converted by both"
# convert_like_qemu SRC [convert options]: minivm-img's raw output equals qemu-img's.
convert_like_qemu() {
	local src=$1
	shift
	qemu-img convert "$@" -O raw "$src" want.raw || fail "qemu-img convert $src"
	img_ok convert "$@" -O raw "$src" got.raw
	cmp want.raw got.raw || fail "convert $* $src: differs from qemu-img's convert"
	img_ok convert "$@" -O qcow2 "$src" got.qcow2
	qemu_clean got.qcow2
	same_content want.raw got.qcow2
	rm -f want.raw got.raw got.qcow2
}
# A chain raw <- qcow2 <- qcow2, with zero clusters and a discard in the top.
pattern_raw base.raw 8
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2
qio mid.qcow2 'write -P 0x55 512k 100k' 'write -z 0 64k' 'write -P 0x66 7M 64k'
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 12M
qio top.qcow2 'write -P 0x77 600k 8k' 'write -z 7M 32k' 'discard 3M 64k' 'write -P 0x78 10M 4k'
convert_like_qemu top.qcow2
convert_like_qemu mid.qcow2
# Zero clusters in a v3 image with no backing file; a v2 image.
qemu-img create -q -f qcow2 zeros.qcow2 4M
qio zeros.qcow2 'write -P 0x12 0 1M' 'write -z 128k 256k' 'write -z -u 512k 64k'
convert_like_qemu zeros.qcow2
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 4M
qio v2.qcow2 'write -P 0x12 0 1M' 'write -z 128k 256k'
convert_like_qemu v2.qcow2
# Compressed clusters written by qemu-img.
qemu-img convert -c -O qcow2 text.raw qc.qcow2
convert_like_qemu qc.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=2M text.raw qc2m.qcow2
convert_like_qemu qc2m.qcow2
# Internal snapshots: convert reads the current state, not a snapshot's.
qemu-img create -q -f qcow2 snap.qcow2 4M
qio snap.qcow2 'write -P 1 0 1M'
qemu-img snapshot -c s1 snap.qcow2
qio snap.qcow2 'write -P 2 256k 64k'
convert_like_qemu snap.qcow2
# Odd sizes: not a multiple of the cluster size, or of 512 for raw.
qemu-img create -q -f qcow2 odd.qcow2 1000000
qio odd.qcow2 'write -P 9 999000 1000'
convert_like_qemu odd.qcow2
img_ok convert -c -O qcow2 odd.qcow2 oddc.qcow2
qemu_clean oddc.qcow2
same_content odd.qcow2 oddc.qcow2

echo "== -B: the output gets a backing file, and what the source's top image holds"
# As qemu-img does, -B takes the source's own backing content as given.
img_ok convert -O qcow2 -B mid.qcow2 -F qcow2 top.qcow2 on-mid.qcow2
qemu_clean on-mid.qcow2
same_content top.qcow2 on-mid.qcow2
img_ok info --output=json on-mid.qcow2 >b.json
expect_eq "-B backing file" "$(jq_py b.json 'j["backing-filename"]')" mid.qcow2
expect_eq "-B backing format" "$(jq_py b.json 'j["backing-filename-format"]')" qcow2
qemu-img convert -O qcow2 -B mid.qcow2 -F qcow2 top.qcow2 q-on-mid.qcow2
qemu-img map --output=json on-mid.qcow2 | python3 -c 'import json, sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0))' >m.n
qemu-img map --output=json q-on-mid.qcow2 | python3 -c 'import json, sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0))' >q.n
expect_eq "bytes the -B output allocates, vs qemu-img's" "$(cat m.n)" "$(cat q.n)"

echo "== several sources are joined"
pattern_raw p1.raw 7
head -c 1M /dev/urandom >p2.raw
img_ok convert -O qcow2 p1.raw p2.raw top.qcow2 joined.qcow2
qemu_clean joined.qcow2
qemu-img convert -O raw p1.raw p2.raw top.qcow2 joined-want.raw
same_content joined-want.raw joined.qcow2
img_ok convert -O raw p1.raw p2.raw top.qcow2 joined.raw
cmp joined-want.raw joined.raw || fail "joined raw output differs from qemu-img's"

echo "== -n: into an existing image, zeros written"
qemu-img create -q -f qcow2 existing.qcow2 24M
qio existing.qcow2 'write -P 0xee 0 24M'
img_ok convert -n -O qcow2 src.raw existing.qcow2
same_content src.raw existing.qcow2
qemu_clean existing.qcow2
qemu-img create -q -f raw small.raw 1M
img_error convert -n -O raw src.raw small.raw

echo "== -p: progress on stdout, ending at 100%"
img_ok convert -p -O qcow2 src.raw p.qcow2 >progress.txt
tr '\r' '\n' <progress.txt | grep -q '^    (100.00/100%)$' || fail "no 100% progress line: $(od -c progress.txt | head)"
tr '\r' '\n' <progress.txt | grep -q '^    (0.00/100%)$' || fail "no 0% progress line"
img_exit 0 convert -O qcow2 src.raw quiet.qcow2
expect_eq "convert output without -p" "$out" ""

echo "== errors"
img_error convert src.raw
img_error convert -O vmdk src.raw x.vmdk
img_error convert -O qcow2 -o cluster_size=3k src.raw x.qcow2
img_error convert -O qcow2 missing.raw x.qcow2
img_error convert -f qcow2 -O raw src.raw x.raw
img_error convert -O qcow2 -S 1000 src.raw x.qcow2

echo "PASS"
