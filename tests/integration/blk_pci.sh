#!/usr/bin/env bash
# The guest's view of the PCI bus, and both interrupt paths of virtio-pci.
# 1. Two drives: the guest's PCI bus (what lspci reads, /sys/bus/pci) lists
#    the host bridge and two virtio-blk functions with the right IDs and
#    class, bound to virtio-pci, interrupting through MSI-X.
# 2. The same with pci=nomsi: the devices fall back to INTx through the
#    IOAPIC, and data still crosses both ways.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"

scratch_dir
truncate -s 32M "$dir/a.img" "$dir/b.img"
token=token-$RANDOM-$RANDOM
printf '%s' "$token" | dd of="$dir/a.img" bs=1 seek=4096 conv=notrunc status=none

script=$(cat <<'GUEST'
for d in /sys/bus/pci/devices/*; do
	echo "pci=${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class) $(basename "$(readlink $d/driver 2>/dev/null)")"
done
echo "host_token=$(dd if=/dev/vda bs=1 skip=4096 count=22 2>/dev/null | tr -dc 'a-z0-9-')"
echo guest-token-ok | dd of=/dev/vdb bs=512 seek=8 conv=fsync 2>/dev/null
grep virtio /proc/interrupts | while read -r n c0 c1 rest; do echo "irq=$rest count=$((c0 + c1))"; done
GUEST
)
b64=$(printf '%s\n' "$script" | base64 -w0)

run() {
	local out=$1
	shift
	local rc=0
	boot_guest "$out" -m 256 -smp 2 -drive "file=$dir/a.img,format=raw" \
		-drive "file=$dir/b.img,format=raw" "$@" || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 30 "$out" >&2; fail "minivm exited $rc"; }
	expect_in "$out" "pci=0000:00:00.0 0x8086 0x1237 0x060000"
	expect_in "$out" "pci=0000:00:01.0 0x1af4 0x1042 0x018000 virtio-pci"
	expect_in "$out" "pci=0000:00:02.0 0x1af4 0x1042 0x018000 virtio-pci"
	expect_kv "$out" host_token "$token"
	dd if="$dir/b.img" bs=512 skip=8 count=1 status=none | grep -q guest-token-ok ||
		fail "the guest's write to vdb is not in the image"
}

run "$dir/msix.log" -append "console=ttyS0 quiet scenario64=$b64"
grep -q "PCI-MSI.*virtio0-req.0" "$dir/msix.log" || fail "virtio0 does not use MSI-X"
echo "ok: PCI bus lists the bridge and two virtio-blk functions; MSI-X in use"

: >"$dir/b.img" && truncate -s 32M "$dir/b.img"
run "$dir/intx.log" -append "console=ttyS0 quiet pci=nomsi scenario64=$b64"
grep -q "IO-APIC.*virtio" "$dir/intx.log" || fail "with pci=nomsi, virtio does not use the IOAPIC"
grep "IO-APIC.*virtio" "$dir/intx.log" | grep -qv "count=0" || fail "no INTx interrupts arrived"
! grep -q "PCI-MSI" "$dir/intx.log" || fail "MSI in use despite pci=nomsi"
echo "ok: with pci=nomsi, INTx through the IOAPIC carries the requests"
