#!/usr/bin/env bash
# Installs what building, testing and the rig need, from Debian's packages.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config check linux-libc-dev zlib1g-dev  # build, unit tests, qcow2 compression
	clang libclang-rt-14-dev                                # fuzzing (libFuzzer)
	qemu-system-x86 qemu-utils                              # the rig, and the reference VMM
	busybox-static kmod cpio zstd xz-utils e2fsprogs        # guest kits
	ca-certificates procps psmisc tmux bc python3              # test plumbing
	libslirp-dev                                            # -netdev user
	iproute2 iptables dnsmasq-base tcpdump iperf3           # network models, their tests, bench/net
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
