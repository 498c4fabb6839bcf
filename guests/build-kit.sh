#!/usr/bin/env bash
# Build the guest kit: a Debian cloud kernel and a busybox initramfs that
# minivm (or QEMU, for comparison) boots as a test guest.
#
# Output (never inside the repo):
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/vmlinuz      bzImage of linux-image-cloud-amd64
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/vmlinux      the same kernel unpacked: ELF with a PVH entry note
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/initrd.img   gzip'd newc cpio (busybox, virtio modules, /init)
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/version      kernel release, e.g. 6.1.0-56-cloud-amd64
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/stamp        inputs' hash; a matching stamp makes re-runs instant
#
# and, by guests/build-rootfs.sh (run at the end, with its own stamp):
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/rootfs.ext4  ext4 root file system for root=/dev/vda
#
# The /init protocol (guests/init.sh, shared by both) is documented in
# docs/rig.md.
#
# Usage: guests/build-kit.sh [--force]
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT_PATH
readonly SCRIPT_DIR="${SCRIPT_PATH%/*}"
readonly SCENARIO_DIR="$SCRIPT_DIR/scenarios"
readonly INIT_SCRIPT="$SCRIPT_DIR/init.sh"
readonly CACHE="${MINIVM_CACHE:-/var/cache/minivm}"
readonly KIT="$CACHE/kit"
readonly UDHCPC_SCRIPT="$SCRIPT_DIR/udhcpc.script"
readonly META_PKG="linux-image-cloud-amd64"

# Modules the guest loads.  A trailing '?' marks modules that may be missing
# (not every kernel splits virtio_pci into the *_dev helpers).  Dependencies
# (virtio_ring, failover, ...) are added from modules.dep automatically.
readonly MODULES=(
	virtio_ring virtio virtio_pci virtio_pci_modern_dev? virtio_pci_legacy_dev?
	virtio_blk virtio_net net_failover failover
	virtio_mmio? virtio_console? virtio_rng?
	button? evdev?
)

die() { echo "build-kit: error: $*" >&2; exit 1; }
log() { echo "build-kit: $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=debian.sh
. "$(dirname "$SCRIPT_PATH")/debian.sh"

check_tools() {
	need apt-get apt
	need dpkg-deb dpkg
	need depmod kmod
	need cpio cpio
	need gzip gzip
	need xz xz-utils
	need flock util-linux
	need sha256sum coreutils
	# busybox-static, not busybox: the initramfs has no libc.
	if [[ ! -x /bin/busybox ]] || ! dpkg -s busybox-static >/dev/null 2>&1; then
		[[ $EUID -eq 0 ]] || die "busybox-static is missing (needs root to install)"
		log "installing busybox-static"
		apt-get install -y -q busybox-static >&2 || die "apt-get install busybox-static failed"
	fi
}

# Re-running must be fast, and apt-cache costs a second, so there are two
# stamps.  The quick one covers this script, the scenarios, busybox and the
# apt lists' state (which decides what the metapackage resolves to); when it
# matches, nothing is asked of apt.  The full one replaces the apt lists by
# the resolved kernel package, so an apt-get update that changed no kernel
# costs one apt-cache call, not a rebuild.
local_inputs() {
	hash_files "$SCRIPT_PATH" "$INIT_SCRIPT" "$(dirname "$SCRIPT_PATH")/debian.sh" "$UDHCPC_SCRIPT"
	local scenarios
	mapfile -t scenarios < <(find "$SCENARIO_DIR" -maxdepth 1 -name '*.sh' -type f | sort)
	hash_files "${scenarios[@]}"
	echo "busybox $(dpkg-query -W -f='${Version}' busybox-static)"
	echo "iperf3 $(dpkg-query -W -f='${Version}' iperf3 2>/dev/null)"
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

# Is the kit complete, with line N of its stamp equal to STAMP?
kit_matches() {
	[[ -f $KIT/vmlinuz && -f $KIT/initrd.img && -f $KIT/stamp ]] &&
		[[ $(sed -n "$1p" "$KIT/stamp") == "$2" ]]
}

# /init, the same script in the initramfs and in rootfs.ext4 (see guests/init.sh
# for its protocol).
write_init() {
	install -m 755 "$INIT_SCRIPT" "$1"
}

# initrd-net.img: initrd.img with iperf3 and the libraries it links to
# appended as a second cpio archive (the kernel unpacks them in turn), for
# bench/net. Kept apart so that every other boot unpacks 2 MiB less.
build_net_extra() {
	local stage=$1 extra="$1/net" f
	if [[ ! -x /usr/bin/iperf3 ]]; then
		log "no /usr/bin/iperf3 (package iperf3): no initrd-net.img"
		return 0
	fi
	mkdir -p "$extra/usr/bin"
	cp /usr/bin/iperf3 "$extra/usr/bin/"
	# The program's shared libraries and the dynamic loader, at the paths
	# ldd names (the guest is the same architecture and libc).
	for f in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
		install -D -m 755 "$(readlink -f "$f")" "$extra$f"
	done
	(cd "$extra" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$stage/net.cpio.gz" ||
		die "creating the network extra failed"
	cat "$stage/initrd.img" "$stage/net.cpio.gz" >"$stage/initrd-net.img"
}

build() {
	local kpkg=$1 tree=$2 kver=$3 stamp=$4
	local moddir="$tree/lib/modules/$kver"
	local stage="$CACHE/kit.stage.$$"
	# shellcheck disable=SC2064  # expand now: the path is fixed
	trap "rm -rf '$stage'" EXIT
	rm -rf "$stage"
	mkdir -p "$stage"/root/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,scenarios,lib/modules/"$kver"}

	# busybox and one symlink per applet (busybox --install needs /proc of a
	# running system; a list is simpler and works on any build host).
	cp /bin/busybox "$stage/root/bin/busybox"
	local applet
	while IFS= read -r applet; do
		[[ $applet == busybox ]] && continue
		ln -sf busybox "$stage/root/bin/$applet"
	done < <(/bin/busybox --list)
	mknod -m 600 "$stage/root/dev/console" c 5 1 2>/dev/null || true
	echo "root:x:0:0:root:/root:/bin/sh" >"$stage/root/etc/passwd"
	echo "root:x:0:" >"$stage/root/etc/group"
	echo 'PS1="minivm-guest:\w# "' >"$stage/root/etc/profile"
	# busybox acpid runs this on a power button press (see init.sh).
	mkdir -p "$stage/root/etc/acpi/PWRF"
	printf '#!/bin/sh\nexec /init --power-button\n' >"$stage/root/etc/acpi/PWRF/00000080"
	chmod 755 "$stage/root/etc/acpi/PWRF/00000080"
	install -D -m 755 "$UDHCPC_SCRIPT" "$stage/root/usr/share/udhcpc/default.script"

	# Kernel modules with their dependencies, then depmod over the staging tree
	# so busybox modprobe resolves the load order itself.
	[[ -f $moddir/modules.dep ]] || depmod -b "$tree" "$kver" || die "depmod over $tree failed"
	local mods m
	mods=$(module_closure "$moddir" "${MODULES[@]}")
	for m in $mods; do
		install -D -m 644 "$moddir/$m" "$stage/root/lib/modules/$kver/$m"
	done
	cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$stage/root/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$stage/root" "$kver" || die "depmod over the staging tree failed"

	# Scenarios.
	local s
	for s in "$SCENARIO_DIR"/*.sh; do
		[[ -f $s ]] || continue
		install -m 755 "$s" "$stage/root/scenarios/"
	done
	write_init "$stage/root/init"

	# newc cpio with root ownership, gzip'd (the kernel unpacks it itself).
	(cd "$stage/root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -9n >"$stage/initrd.img" ||
		die "creating the initramfs failed"

	build_net_extra "$stage"
	extract_vmlinux "$tree/boot/vmlinuz-$kver" "$stage/vmlinux"

	mkdir -p "$KIT"
	install -m 644 "$tree/boot/vmlinuz-$kver" "$stage/vmlinuz"
	mv "$stage/vmlinuz" "$KIT/vmlinuz"
	mv "$stage/vmlinux" "$KIT/vmlinux"
	mv "$stage/initrd.img" "$KIT/initrd.img"
	rm -f "$KIT/initrd-net.img"
	[[ ! -f $stage/initrd-net.img ]] || mv "$stage/initrd-net.img" "$KIT/initrd-net.img"
	echo "$kver" >"$KIT/version"
	echo "$stamp" >"$KIT/stamp"
	log "kit ready in $KIT: vmlinuz, vmlinux ($kpkg), initrd.img ($(du -k "$KIT/initrd.img" | cut -f1) KiB, $(wc -w <<<"$mods") modules)"
}

build_kit() {
	local force=0
	case "${1:-}" in
	--force) force=1 ;;
	"") ;;
	-h | --help) sed -n '2,/^set -euo/p' "$SCRIPT_PATH" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (usage: build-kit.sh [--force])" ;;
	esac
	# The quick check first, before anything that writes: inside the rig the
	# cache is read-only, and an up-to-date kit must still pass.
	local quick full pv kpkg kver_pkg
	quick=$(quick_stamp)
	if ((!force)) && kit_matches 1 "$quick"; then
		log "kit up to date in $KIT"
		return 0
	fi
	if [[ ${MINIVM_RIG:-} == 1 ]]; then
		die "the kit in $KIT is missing or stale, and the cache is read-only inside the rig: run guests/build-kit.sh on the host first"
	fi
	check_tools
	mkdir -p "$CACHE" || die "cannot create $CACHE"
	# One builder at a time (parallel CI jobs share the cache); whoever waited
	# may find the kit built meanwhile.
	exec 9>"$CACHE/.build-kit.lock"
	flock 9
	if ((!force)) && kit_matches 1 "$quick"; then
		log "kit up to date in $KIT"
		return 0
	fi
	pv=$(resolve_kernel_pkg "$META_PKG")
	kpkg=${pv% *} kver_pkg=${pv#* }
	full=$(full_stamp "$pv")
	if ((!force)) && kit_matches 2 "$full"; then
		printf '%s\n%s\n' "$quick" "$full" >"$KIT/stamp"
		log "kit up to date in $KIT"
		return 0
	fi
	local tree kver
	tree=$(fetch_unpack "$kpkg" "$kver_pkg")
	kver=$(ls "$tree/lib/modules")
	[[ -n $kver && -f $tree/boot/vmlinuz-$kver ]] || die "unexpected layout in $tree (no boot/vmlinuz-<release>)"
	build "$kpkg" "$tree" "$kver" "$(printf '%s\n%s' "$quick" "$full")"
}

main() {
	build_kit "$@"
	bash "$SCRIPT_DIR/build-rootfs.sh" "$@"
}

main "$@"
