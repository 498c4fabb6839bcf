#!/usr/bin/env bash
# Build "the rig": the L1 kernel and initramfs that tests/rig/run.sh boots
# under QEMU/TCG (-cpu max gives AMD-V with nested paging) so that a real,
# hardware-style kvm_amd /dev/kvm exists for minivm even where the host's
# /dev/kvm is PVM.  See docs/rig.md.
#
# Output (never inside the repo):
#   ${MINIVM_CACHE:-/var/cache/minivm}/rig/vmlinux     Debian generic kernel (linux-image-amd64's
#                                                      dependency), unpacked ELF for a PVH boot
#   ${MINIVM_CACHE:-/var/cache/minivm}/rig/initrd.img  busybox + kvm/9p/net modules + /init
#   ${MINIVM_CACHE:-/var/cache/minivm}/rig/version     kernel release
#   ${MINIVM_CACHE:-/var/cache/minivm}/rig/stamp       inputs' hash (re-runs are instant)
#
# Usage: tests/rig/build-rig.sh [--force]
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT_PATH
readonly CACHE="${MINIVM_CACHE:-/var/cache/minivm}"
readonly RIG="$CACHE/rig"
readonly META_PKG="linux-image-amd64"

# Modules /init loads, in three groups (modprobe adds each one's dependencies
# from modules.dep: kvm-amd pulls ccp, irqbypass and kvm; 9p pulls 9pnet,
# netfs and fscache; bridge pulls stp and llc).  The command cannot modprobe
# after the chroot (the host root has no modules for this kernel), so
# everything a test may want is in the initramfs.  '?' = may be missing.
readonly KVM_MODULES=(kvm_amd)
readonly FS_MODULES=(virtio_pci 9pnet_virtio 9p)
# Loaded on demand (see /init), not at boot:
readonly NET_MODULES=(tun bridge veth overlay loop vhost_net? vhost_vsock?
	# the network models' firewall and NAT (iptables is iptables-nft here):
	nfnetlink nf_tables nft_compat? nft_chain_nat? nft_nat? nft_masq? nft_ct?
	nf_nat nf_conntrack xt_MASQUERADE? xt_conntrack? xt_tcpudp? xt_state?
	ipt_REJECT? nft_reject_ipv4? nft_reject_inet?
	# libcrc32c (nf_tables needs it) asks the crypto API for crc32c when it
	# loads, a soft dependency modules.dep does not list:
	crc32c_generic? crc32c_intel?)

die() { echo "build-rig: error: $*" >&2; exit 1; }
log() { echo "build-rig: $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../../guests/debian.sh
. "$(dirname "$SCRIPT_PATH")/../../guests/debian.sh"

check_tools() {
	need apt-get apt
	need dpkg-deb dpkg
	need depmod kmod
	need cpio cpio
	need flock util-linux
	need sha256sum coreutils
	need qemu-system-x86_64 qemu-system-x86
	need xz xz-utils
	need readelf binutils
	if [[ ! -x /bin/busybox ]] || ! dpkg -s busybox-static >/dev/null 2>&1; then
		[[ $EUID -eq 0 ]] || die "busybox-static is missing (needs root to install)"
		log "installing busybox-static"
		apt-get install -y -q busybox-static >&2 || die "apt-get install busybox-static failed"
	fi
}

# Two stamps, as in guests/build-kit.sh: the quick one (this script, busybox,
# the apt lists' state) avoids apt-cache entirely on a re-run; the full one
# (resolved kernel package instead of the lists) avoids a rebuild after an
# apt-get update that brought no new kernel.
local_inputs() {
	hash_files "$SCRIPT_PATH" "$(dirname "$SCRIPT_PATH")/../../guests/debian.sh"
	echo "busybox $(dpkg-query -W -f='${Version}' busybox-static)"
}
quick_stamp() {
	{
		local_inputs
		find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -printf '%f %T@ %s\n' 2>/dev/null | sort
	} | sha256sum | cut -d' ' -f1
}
full_stamp() {
	{ local_inputs; echo "kernel $1"; } | sha256sum | cut -d' ' -f1
}

# Is the rig complete, with line N of its stamp equal to STAMP?
rig_matches() {
	[[ -f $RIG/vmlinux && -f $RIG/initrd.img && -f $RIG/stamp ]] &&
		[[ $(sed -n "$1p" "$RIG/stamp") == "$2" ]]
}

# The L1 /init.  Kernel command line protocol (all written by run.sh):
#   minivm_rig_out=DIR        host path of the writable export (mount tag rigout)
#   minivm_rig_job=B64|file   the job script, base64; "file": DIR/.job.sh already holds it
#   minivm_rig_interactive=1  give the job /dev/ttyS0 as its controlling terminal
#   minivm_rig_tty=ROWSxCOLS  window size for ttyS0 (interactive mode)
#   minivm_rig_verbose=1      print progress with timestamps
# It writes the job's exit status to DIR/status, then powers L1 off; while
# the job runs, DIR/heartbeat changes every 5 s.
write_init() {
	local out=$1 kvm=$2 fs=$3
	{
		echo '#!/bin/sh'
		echo "RIG_KVM_MODULES='$kvm'"
		echo "RIG_FS_MODULES='$fs'"
		cat <<'EOF'
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

out= job= interactive=0 tty= verbose=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	minivm_rig_out=*) out=${arg#*=} ;;
	minivm_rig_job=*) job=${arg#*=} ;;
	minivm_rig_interactive=1) interactive=1 ;;
	minivm_rig_tty=*) tty=${arg#*=} ;;
	minivm_rig_verbose=1) verbose=1 ;;
	esac
done

say() {
	[ "$verbose" = 1 ] && echo "minivm-rig: [$(cut -d' ' -f1 /proc/uptime)] $*"
	return 0
}
# On any failure: say why on the console (run.sh shows it) and power off
# without a status file, which run.sh reports as a rig failure.
fail() {
	echo "minivm-rig: error: $*"
	sync
	poweroff -f
	sleep 10
}

say "init started"
# kvm_amd is the slowest module to load under TCG (about 1 s); load it on
# the other vCPU while the 9p stack comes up and the host root is mounted.
load_modules() {
	for m in "$@"; do
		modprobe "$m" || { echo "minivm-rig: error: modprobe $m failed"; return 1; }
		say "loaded $m"
	done
}
load_modules $RIG_KVM_MODULES &
kvm_loader=$!
load_modules $RIG_FS_MODULES || fail "cannot load the 9p modules"

# The host's root, read-only.  cache=loose: nothing changes it behind our back
# that we care about, and it makes exec and path lookups much faster.
mkdir -p /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot ||
	fail "cannot mount the host root (9p tag hostroot)"
mount -t proc proc /newroot/proc || fail "mount proc"
mount -t sysfs sysfs /newroot/sys || fail "mount sys"
mount -t devtmpfs devtmpfs /newroot/dev || fail "mount dev"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,gid=5,mode=620,ptmxmode=666 devpts /newroot/dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm || fail "mount /dev/shm"
# What udev would add: bash's <(...) needs /dev/fd.
ln -sf /proc/self/fd /newroot/dev/fd
ln -sf /proc/self/fd/0 /newroot/dev/stdin
ln -sf /proc/self/fd/1 /newroot/dev/stdout
ln -sf /proc/self/fd/2 /newroot/dev/stderr
# /run is the host's otherwise, read-only and full of the host's sockets.
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "mount /run"
[ -n "$out" ] || fail "no minivm_rig_out= on the kernel command line"
# The writable export.  cache=none (the default): every write reaches the host
# at once, so output files are complete even if L1 dies.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 rigout "/newroot$out" ||
	fail "cannot mount the writable export (tag rigout) at $out"
say "filesystems mounted"
# Loopback, as on any machine: tests reach servers on 127.0.0.1 (hostfwd).
ip link set lo up || fail "cannot bring up lo"
# The other modules (tun, bridge, veth, overlay, loop, vhost) load on demand,
# which saves about a second per boot: the kernel runs /sbin/modprobe (this
# initramfs's busybox: kernel threads keep the initramfs as their root) for
# "ip link add ... type bridge", "mount -t overlay" and, through the static
# device nodes made here from modules.devname (what kmod static-nodes does),
# for opening /dev/net/tun, /dev/loop-control or /dev/vhost-net.
while read -r mod name spec; do
	case "$mod" in "#"* | "") continue ;; esac
	majmin=${spec#?}
	case "$name" in */*) mkdir -p "/newroot/dev/${name%/*}" ;; esac
	[ -e "/newroot/dev/$name" ] || mknod "/newroot/dev/$name" "${spec%"${majmin}"}" "${majmin%:*}" "${majmin#*:}"
done <"/lib/modules/$(uname -r)/modules.devname"
wait "$kvm_loader" || fail "cannot load the kvm modules"
[ -e /dev/kvm ] || fail "no /dev/kvm after loading kvm_amd (does the CPU model have svm?)"
say "modules loaded"

case "$job" in
"") fail "no minivm_rig_job= on the kernel command line" ;;
file) [ -f "/newroot$out/.job.sh" ] || fail "minivm_rig_job=file but $out/.job.sh is missing" ;;
*) echo "$job" | base64 -d >"/newroot$out/.job.sh" || fail "minivm_rig_job is not valid base64" ;;
esac

# The job runs under the host's bash (its quoting is bash's printf %q) in a
# clean environment: the job script sets the caller's variables itself.
run_job() {
	env -i chroot /newroot /bin/bash --noprofile --norc "$out/.job.sh"
}
# A heartbeat for run.sh: a file in the writable export that changes every
# 5 s while L1 runs at all. When TCG stops making progress (docs/rig.md,
# "When the rig itself stalls") it stops changing, and run.sh ends the rig
# after a couple of minutes instead of waiting for --timeout.
(while :; do cut -d' ' -f1 /proc/uptime >"/newroot$out/heartbeat"; sleep 5; done) &
heartbeat=$!
say "starting the job"
if [ "$interactive" = 1 ]; then
	[ -n "$tty" ] && stty -F /dev/ttyS0 rows "${tty%x*}" cols "${tty#*x}"
	# setsid -c: a new session whose controlling terminal is ttyS0 (its
	# stdin), so Ctrl-C, Ctrl-Z and full-screen programs work inside.
	run_job() {
		setsid -c env -i chroot /newroot /bin/bash --noprofile --norc "$out/.job.sh"
	}
	run_job <>/dev/ttyS0 >&0 2>&1
	rc=$?
else
	# No \r\n: the host sees the job's output as a plain byte stream.
	stty -F /dev/ttyS0 -onlcr
	run_job </dev/null >/dev/ttyS0 2>&1
	rc=$?
fi
say "job exited with status $rc"
kill "$heartbeat" 2>/dev/null
echo "$rc" >"/newroot$out/status" || fail "cannot write $out/status"
sync
umount "/newroot$out" 2>/dev/null
poweroff -f
EOF
	} >"$out"
	chmod 755 "$out"
}

# Print those of the named modules that exist as files in the staging tree
# (optional ones may not); /init loads only these.
present() {
	local kver=$1 m; shift
	for m in "$@"; do
		m=${m%'?'}
		if grep -qE "/${m//_/[-_]}\.ko:" "$stage/root/lib/modules/$kver/modules.dep"; then
			printf '%s ' "$m"
		fi
	done
}

build() {
	local kpkg=$1 tree=$2 kver=$3 stamp=$4
	local moddir="$tree/lib/modules/$kver"
	local stage="$CACHE/rig.stage.$$"
	# shellcheck disable=SC2064  # expand now: the path is fixed
	trap "rm -rf '$stage'" EXIT
	rm -rf "$stage"
	mkdir -p "$stage"/root/{bin,sbin,proc,sys,dev,newroot,lib/modules/"$kver"}

	cp /bin/busybox "$stage/root/bin/busybox"
	local applet
	while IFS= read -r applet; do
		[[ $applet == busybox ]] && continue
		ln -sf busybox "$stage/root/bin/$applet"
	done < <(/bin/busybox --list)
	# The kernel runs /sbin/modprobe for on-demand module loads; kernel
	# threads keep the initramfs as their root, so this one is used.
	ln -sf ../bin/busybox "$stage/root/sbin/modprobe"
	mknod -m 600 "$stage/root/dev/console" c 5 1 2>/dev/null || true

	[[ -f $moddir/modules.dep ]] || depmod -b "$tree" "$kver" || die "depmod over $tree failed"
	local mods m
	mods=$(module_closure "$moddir" "${KVM_MODULES[@]}" "${FS_MODULES[@]}" "${NET_MODULES[@]}")
	for m in $mods; do
		install -D -m 644 "$moddir/$m" "$stage/root/lib/modules/$kver/$m"
	done
	cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$stage/root/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$stage/root" "$kver" || die "depmod over the staging tree failed"
	write_init "$stage/root/init" "$(present "$kver" "${KVM_MODULES[@]}")" "$(present "$kver" "${FS_MODULES[@]}")"

	# Uncompressed cpio: the kernel unpacks it faster under TCG than a gzip'd
	# one, and QEMU loads either with fast fw_cfg DMA.
	(cd "$stage/root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --quiet) >"$stage/initrd.img" ||
		die "creating the initramfs failed"

	# QEMU boots an unpacked ELF vmlinux through its PVH entry (CONFIG_PVH=y),
	# which saves the emulated CPU about 5 s of xz decompression on every boot.
	extract_vmlinux "$tree/boot/vmlinuz-$kver" "$stage/vmlinux"

	mkdir -p "$RIG"
	rm -f "$RIG/vmlinuz"  # older layout
	mv "$stage/vmlinux" "$RIG/vmlinux"
	mv "$stage/initrd.img" "$RIG/initrd.img"
	echo "$kver" >"$RIG/version"
	echo "$stamp" >"$RIG/stamp"
	log "rig ready in $RIG: vmlinux ($kpkg), initrd.img ($(du -k "$RIG/initrd.img" | cut -f1) KiB, $(wc -w <<<"$mods") modules)"
}

main() {
	local force=0
	case "${1:-}" in
	--force) force=1 ;;
	"") ;;
	-h | --help) sed -n '2,/^set -euo/p' "$SCRIPT_PATH" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (usage: build-rig.sh [--force])" ;;
	esac
	# The quick check first: run.sh calls this on every run.
	local quick full pv kpkg kver_pkg
	quick=$(quick_stamp)
	((!force)) && rig_matches 1 "$quick" && return 0
	check_tools
	mkdir -p "$CACHE" || die "cannot create $CACHE"
	# One builder at a time (parallel CI jobs share the cache); whoever waited
	# may find the rig built meanwhile.
	exec 9>"$CACHE/.build-rig.lock"
	flock 9
	((!force)) && rig_matches 1 "$quick" && return 0
	pv=$(resolve_kernel_pkg "$META_PKG")
	kpkg=${pv% *} kver_pkg=${pv#* }
	full=$(full_stamp "$pv")
	if ((!force)) && rig_matches 2 "$full"; then
		printf '%s\n%s\n' "$quick" "$full" >"$RIG/stamp"
		return 0
	fi
	local tree kver
	tree=$(fetch_unpack "$kpkg" "$kver_pkg")
	kver=$(ls "$tree/lib/modules")
	[[ -n $kver && -f $tree/boot/vmlinuz-$kver ]] || die "unexpected layout in $tree (no boot/vmlinuz-<release>)"
	build "$kpkg" "$tree" "$kver" "$(printf '%s\n%s' "$quick" "$full")"
}

main "$@"
