#!/usr/bin/env bash
# The NAT model, libvirt's "default" network: as routed.sh, and what leaves
# the host from the guests' subnet is masqueraded (takes the address of the
# interface it leaves by), so the outside needs no route back; from the
# outside only replies come in.
#
#   net/models/nat.sh up|down|status [--bridge mvbr0] [--host-addr CIDR]
#       [--dhcp-range START,END] [--uplink IF] [--dns IP[,IP]] [--state-dir DIR]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

model_up() {
	routed_setup nat
}

model_main nat "$@"
