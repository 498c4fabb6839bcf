#!/usr/bin/env bash
# The guest sees the vCPUs and memory it was given: -smp 1/2/4 with
# -m 128/1024/3584. 3584 MiB crosses the PCI hole below 4 GiB, so the guest
# only sees it all if the memory above 4 GiB is mapped and in the e820 map.
# (-smp 4 -m 3584 made the rig fault in 3 boots of 6 while its CPU model
# had 5-level paging; 10 of 10 have passed since: docs/rig.md.)
. "$(dirname "$0")/lib.sh"
need_kvm 7168 "$@"

scratch_dir
check() {
	local smp=$1 mem=$2 out rc=0
	out=$dir/smp$smp-m$mem.log
	boot_guest "$out" -smp "$smp" -m "$mem" -append "console=ttyS0 quiet scenario=info" || rc=$?
	[ "$rc" -eq 0 ] || { tail -n 40 "$out" >&2; rig_fault "$out"; fail "-smp $smp -m $mem: minivm exited $rc"; }
	expect_in "$out" "minivm-guest: init reached"
	local nproc memkb
	nproc=$(guest_value "$out" nproc)
	memkb=$(guest_value "$out" memtotal_kb)
	[ "$nproc" = "$smp" ] || fail "-smp $smp: guest nproc=$nproc"
	# MemTotal is RAM less what the kernel keeps for itself: its image and
	# initramfs (about 35 MiB) and its page tables and page structs (about
	# 4% of RAM). Allow 80 MiB plus 3%.
	local want=$((mem * 1024))
	[ -n "$memkb" ] && [ "$memkb" -le "$want" ] &&
		[ "$memkb" -ge $((want - 80 * 1024 - want * 3 / 100)) ] ||
		fail "-m $mem: guest MemTotal=${memkb} kB, expected close to $want kB"
	# Above 3 GiB, the guest can only have it all if it uses the RAM that
	# minivm put above 4 GiB.
	if [ "$mem" -gt 3072 ] && [ "$memkb" -le $((3072 * 1024)) ]; then
		fail "-m $mem: guest sees no memory above the PCI hole"
	fi
	echo "ok: -smp $smp -m $mem -> nproc=$nproc MemTotal=$memkb kB"
}
check 1 128
check 2 1024
check 4 3584
