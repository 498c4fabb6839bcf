#!/usr/bin/env bash
# Build the guest kit's root file system image, for booting with a disk root
# (root=/dev/vda): an ext4 image made with `mke2fs -d` (no loop mount, no
# privileges beyond writing the cache) from the kit's initramfs contents:
# busybox-static, the virtio modules, the same /init (guests/init.sh) and the
# scenarios.  build-kit.sh runs this at its end, so one command builds the
# whole kit.
#
# Output (never inside the repo):
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/rootfs.ext4        64 MiB sparse ext4 image, 4 KiB blocks
#   ${MINIVM_CACHE:-/var/cache/minivm}/kit/rootfs.ext4.stamp  inputs' hash
#
# Boot it as the first disk with the kit's kernel and initramfs:
#   -drive file=COPY,if=virtio,format=raw -append "console=ttyS0 root=/dev/vda rw ..."
# The initramfs loads virtio_blk, mounts root= and switch_root's into the
# image, whose /init prints "minivm-guest: root on /dev/vda" and then runs
# scenario= / scenario64= as usual.  Boot a copy: the guest writes to it.
#
# Usage: guests/build-rootfs.sh [--force]
set -euo pipefail

SCRIPT_PATH=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT_PATH
readonly CACHE="${MINIVM_CACHE:-/var/cache/minivm}"
readonly KIT="$CACHE/kit"
readonly IMAGE="$KIT/rootfs.ext4"
readonly STAMP="$KIT/rootfs.ext4.stamp"
readonly SIZE=64M
readonly LABEL=minivm-root

die() { echo "build-rootfs: error: $*" >&2; exit 1; }
log() { echo "build-rootfs: $*" >&2; }

# The image depends on the initramfs (which covers /init, the scenarios,
# busybox and the modules), this script and mke2fs.  Hashing the 1-2 MB
# initramfs takes a few milliseconds.
stamp() {
	{
		sha256sum "$SCRIPT_PATH" "$KIT/initrd.img" | cut -d' ' -f1
		dpkg-query -W -f='e2fsprogs ${Version}\n' e2fsprogs 2>/dev/null || true
	} | sha256sum | cut -d' ' -f1
}

up_to_date() {
	[[ -f $IMAGE && -f $STAMP && $(<"$STAMP") == "$1" ]]
}

build() {
	local stamp=$1 stage="$KIT/rootfs.stage.$$"
	# shellcheck disable=SC2064  # expand now: the path is fixed
	trap "rm -rf '$stage'" EXIT
	rm -rf "$stage"
	mkdir -p "$stage/root"

	# Everything the initramfs has (device nodes need root, which the kit
	# build has anyway), then what a disk root adds.
	gzip -dc "$KIT/initrd.img" | (cd "$stage/root" && cpio -idm --quiet --no-absolute-filenames) ||
		die "unpacking $KIT/initrd.img failed"
	[[ -x $stage/root/init && -x $stage/root/bin/busybox ]] || die "$KIT/initrd.img has no /init or busybox"
	mkdir -p "$stage/root"/{mnt,data,run,var/tmp}
	# For a boot without the initramfs (a kernel with virtio_blk built in).
	ln -sfn ../init "$stage/root/sbin/init"
	echo "minivm guest kit rootfs.ext4 ($(cat "$KIT/version" 2>/dev/null || echo unknown kernel))" \
		>"$stage/root/etc/minivm-rootfs"

	truncate -s "$SIZE" "$stage/rootfs.ext4"
	mke2fs -q -F -t ext4 -b 4096 -L "$LABEL" -E root_owner=0:0 -d "$stage/root" "$stage/rootfs.ext4" ||
		die "mke2fs -d failed"
	e2fsck -fn "$stage/rootfs.ext4" >/dev/null 2>&1 || die "the new image does not pass e2fsck -fn"

	mv "$stage/rootfs.ext4" "$IMAGE"
	echo "$stamp" >"$STAMP"
	log "rootfs ready: $IMAGE ($SIZE, $(du -k "$IMAGE" | cut -f1) KiB allocated)"
}

main() {
	local force=0
	case "${1:-}" in
	--force) force=1 ;;
	"") ;;
	-h | --help) sed -n '2,/^set -euo/p' "$SCRIPT_PATH" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (usage: build-rootfs.sh [--force])" ;;
	esac
	[[ -f $KIT/initrd.img ]] || die "no $KIT/initrd.img: run guests/build-kit.sh"
	local st
	st=$(stamp)
	if ((!force)) && up_to_date "$st"; then
		log "rootfs up to date: $IMAGE"
		return 0
	fi
	if [[ ${MINIVM_RIG:-} == 1 ]]; then
		die "$IMAGE is missing or stale, and the cache is read-only inside the rig: run guests/build-kit.sh on the host first"
	fi
	if ! command -v mke2fs >/dev/null || ! command -v e2fsck >/dev/null; then
		die "mke2fs/e2fsck missing (apt-get install e2fsprogs)"
	fi
	command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"
	exec 8>"$CACHE/.build-rootfs.lock"
	flock 8
	st=$(stamp) # the kit may have changed while we waited
	if ((!force)) && up_to_date "$st"; then
		log "rootfs up to date: $IMAGE"
		return 0
	fi
	build "$st"
}

main "$@"
