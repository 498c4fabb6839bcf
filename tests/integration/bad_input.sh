#!/usr/bin/env bash
# Bad input: each case gives one line on stderr and exit status 1, never a
# crash. These fail before any guest runs, so they need no rig.
. "$(dirname "$0")/lib.sh"

scratch_dir
printf 'this is not a kernel\n' >"$dir/notakernel"
head -c 4096 /dev/zero >"$dir/zeros"
bash "$MINIVM_SRC/guests/build-kit.sh" >/dev/null
kernel=$KIT/vmlinuz

check() {
	local what=$1 pattern=$2
	shift 2
	local rc=0 err
	err=$("$MINIVM" "$@" </dev/null 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq 1 ] || fail "$what: exit status $rc, expected 1 (stderr: $err)"
	[ "$(printf '%s\n' "$err" | grep -c .)" -ge 1 ] || fail "$what: no error message"
	# One line, possibly after the PVM warning that this host may print.
	[ "$(printf '%s\n' "$err" | grep -vc 'warning: /dev/kvm is PVM')" -eq 1 ] ||
		fail "$what: expected one error line, got: $err"
	printf '%s\n' "$err" | grep -q -- "$pattern" || fail "$what: '$err' does not match '$pattern'"
	echo "ok: $what -> $(printf '%s\n' "$err" | grep -v 'PVM' )"
}

check "unknown flag" "unknown option" -kernel "$kernel" -bogus
check "flag without argument" "missing argument" -kernel
check "-m 0" "at least" -kernel "$kernel" -m 0
check "-m garbage" "invalid argument" -kernel "$kernel" -m lots
check "-smp 0" "vCPUs" -kernel "$kernel" -smp 0
check "-smp garbage" "invalid argument" -kernel "$kernel" -smp x
check "more memory than the host" "host has only" -kernel "$kernel" -m 64T
check "no kernel" "no kernel" -m 256
check "missing kernel" "No such file" -kernel "$dir/nonexistent"
check "missing initrd" "No such file" -kernel "$kernel" -initrd "$dir/nonexistent"
check "kernel is a directory" "" -kernel "$dir"
# Probed, a file that is neither a bzImage, an ELF file nor a boot sector
# is refused (guests/teach/README.md); so it is when said to be Linux.
check "kernel is text" "bzImage" -kernel "$dir/notakernel"
check "kernel is zeros" "bzImage" -kernel "$dir/zeros"
check "kernel is zeros, said to be Linux" "bzImage" -kernel "$dir/zeros" -kernel-format linux
check "-kernel-format unknown" "invalid argument" -kernel "$kernel" -kernel-format pe
check "-initrd with a flat binary" "takes no initrd" -kernel "$dir/zeros" -kernel-format flat -initrd "$KIT/initrd.img"
check "bad -serial" "invalid argument" -kernel "$kernel" -serial tcp:1
check "too little memory for the kernel" "RAM" -kernel "$kernel" -m 16

# -drive: each bad option or image is one line and status 1.
truncate -s 16M "$dir/disk.img"
check "-drive without file" "file" -kernel "$kernel" -drive format=raw
check "-drive unknown option" "bogus" -kernel "$kernel" -drive "file=$dir/disk.img,bogus=1"
check "-drive bad cache mode" "cache" -kernel "$kernel" -drive "file=$dir/disk.img,cache=sometimes"
check "-drive unknown interface" "if" -kernel "$kernel" -drive "file=$dir/disk.img,if=ide"
check "-drive missing image" "No such file" -kernel "$kernel" -drive "file=$dir/nonexistent.img"
check "-drive a directory" "" -kernel "$kernel" -drive "file=$dir"

# An image in use by another minivm is refused, as QEMU refuses it. The
# first minivm only needs to hold its drive open, so a kernel that never
# gets far is enough; it is stopped with SIGTERM afterwards.
"$MINIVM" -kernel "$kernel" -initrd "$KIT/initrd.img" -m 256 -serial none \
	-drive "file=$dir/disk.img,format=raw" </dev/null >"$dir/holder.log" 2>&1 &
holder=$!
# Wait until it has the image open (and so locked).
for _ in $(seq 100); do
	ls -l "/proc/$holder/fd" 2>/dev/null | grep -q "$dir/disk.img" && break
	sleep 0.1
done
check "-drive image in use" "in use" -kernel "$kernel" -m 256 -drive "file=$dir/disk.img,format=raw"
kill -TERM "$holder"
wait "$holder" || true
