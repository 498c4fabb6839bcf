#!/usr/bin/env bash
# Writes small, valid qcow2 images into DIR as seeds for fuzz_qcow2, made by
# qemu-img and qemu-io (the reference), so the fuzzer starts from every
# structure the driver reads: versions 2 and 3, 512-byte and 4 KiB
# clusters, odd refcount widths, compressed clusters, zero clusters, an
# internal snapshot, a backing file ("base", or "img": itself), the dirty
# bit. Tiny virtual sizes keep each seed a few KiB. Without qemu-img it
# writes none and says so (the fuzzer still runs).
#
#   tests/fuzz/gen_qcow2_seeds.sh DIR
set -euo pipefail

out=$1
mkdir -p "$out"
if ! command -v qemu-img >/dev/null || ! command -v qemu-io >/dev/null; then
	echo "gen_qcow2_seeds: no qemu-img/qemu-io (qemu-utils): no seeds" >&2
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 16 KiB of guest data: text (compresses), zeros, more text, 0xff.
{
	awk 'BEGIN { for (i = 0; i < 512; i++) printf "%07d\n", i }'
	head -c 4096 /dev/zero
	awk 'BEGIN { for (i = 0; i < 512; i++) printf "%07d\n", i * 7 }'
	head -c 4096 /dev/zero | tr '\0' '\377'
} >"$tmp/data.raw"
head -c 65536 /dev/zero | tr '\0' 'b' >"$tmp/base"

img() { qemu-img "$@" >/dev/null; }
io() { qemu-io -f qcow2 "$@" >/dev/null; }
convert() { # NAME OPTIONS [convert flags]: data.raw as qcow2
	local name=$1 opts=$2
	shift 2
	img convert "$@" -f raw -O qcow2 -o "$opts" "$tmp/data.raw" "$tmp/$name"
}

img create -f qcow2 -o cluster_size=512 "$tmp/v3-empty" 64K
convert v3-512 cluster_size=512
convert v2-512 compat=0.10,cluster_size=512
convert v3-4k cluster_size=4096
convert compressed cluster_size=4096 -c
convert refcount1 cluster_size=512,refcount_bits=1
convert refcount64 cluster_size=512,refcount_bits=64
convert lazy cluster_size=512,lazy_refcounts=on

cp "$tmp/v3-512" "$tmp/zero"
io -c 'write -z 1k 2k' -c 'write -z -u 8k 1k' "$tmp/zero"
cp "$tmp/v3-512" "$tmp/snapshot"
img snapshot -c s1 "$tmp/snapshot"
io -c 'write -P 0x5a 0 1k' "$tmp/snapshot"

# Backing names are relative, as the harness wants them.
(cd "$tmp" && img create -f qcow2 -o cluster_size=512 -b base -F raw backing 64K &&
	io -c 'write -P 0x11 1536 1k' backing)
(cd "$tmp" && img create -f qcow2 -o cluster_size=512 -b img -F qcow2 -u self 64K)

# The dirty bit (incompatible feature bit 0, the header's byte 79).
cp "$tmp/lazy" "$tmp/dirty"
printf '\001' | dd of="$tmp/dirty" bs=1 seek=79 conv=notrunc status=none

for f in v3-empty v3-512 v2-512 v3-4k compressed refcount1 refcount64 lazy zero \
	snapshot backing self dirty; do
	cp "$tmp/$f" "$out/$f.qcow2"
done
