#!/usr/bin/env bash
# Decide where KVM tests run: directly on a host with hardware KVM, or inside
# the rig (tests/rig/run.sh) where the host's /dev/kvm is PVM or missing.
#
# Source it:    . tests/rig/host-kvm.sh
#   host_has_hw_kvm        true when /dev/kvm exists, kvm_intel or kvm_amd is
#                          loaded, and kvm_pvm is not
#   run_with_kvm CMD...    run CMD directly when host_has_hw_kvm, else through
#                          tests/rig/run.sh (--mem from $MINIVM_RIG_MEM, extra
#                          run.sh options from $MINIVM_RIG_ARGS, split on
#                          spaces); returns CMD's exit status
#   Inside the rig (MINIVM_RIG=1) host_has_hw_kvm is true, so nothing nests twice.
# Or run it:    tests/rig/host-kvm.sh CMD...   (same as run_with_kvm CMD...)

# Not `set -euo pipefail` at file level: this file is sourced into callers
# that choose their own shell options.

HOST_KVM_RIG_RUN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.sh"

host_has_hw_kvm() {
	[[ -e /dev/kvm ]] || return 1
	[[ -d /sys/module/kvm_pvm ]] && return 1
	[[ -d /sys/module/kvm_intel || -d /sys/module/kvm_amd ]]
}

run_with_kvm() {
	if (($# == 0)); then
		echo "run_with_kvm: no command given" >&2
		return 2
	fi
	if host_has_hw_kvm; then
		"$@"
		return
	fi
	local opts=()
	[[ -n ${MINIVM_RIG_MEM:-} ]] && opts+=(--mem "$MINIVM_RIG_MEM")
	# shellcheck disable=SC2206  # word splitting of the option list is intended
	[[ -n ${MINIVM_RIG_ARGS:-} ]] && opts+=(${MINIVM_RIG_ARGS})
	bash "$HOST_KVM_RIG_RUN" "${opts[@]}" -- "$@"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	run_with_kvm "$@"
fi
