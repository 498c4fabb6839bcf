#!/usr/bin/env bash
# Sets up everything on a fresh Debian 12 machine and boots the demo guest:
# a busybox Linux with an interactive shell on the serial console. On a host
# whose KVM cannot boot Linux (PVM), it boots inside the rig. Run as root.
# In the guest, `poweroff` ends minivm; Ctrl-a x quits at any time.
set -euo pipefail
cd "$(dirname "$0")"
SRC=$PWD

bash tests/install-deps.sh
cmake -S "$SRC" -B "$SRC/build" >/dev/null
make -C "$SRC/build" -j"$(nproc)" --no-print-directory minivm >/dev/null
bash guests/build-kit.sh
KIT=${MINIVM_CACHE:-/var/cache/minivm}/kit
cmd=("$SRC/build/minivm" -kernel "$KIT/vmlinuz" -initrd "$KIT/initrd.img"
	-append "console=ttyS0 quiet" -m 256 -smp 2 -nographic)

. tests/rig/host-kvm.sh
if host_has_hw_kvm; then
	exec "${cmd[@]}"
fi
echo "This host's /dev/kvm cannot boot Linux; booting the demo inside the rig (about a minute)."
bash tests/rig/build-rig.sh
exec bash tests/rig/run.sh --interactive --mem 2048 -- "${cmd[@]}"
