#!/usr/bin/env bash
# The routed model: a bridge with the host's address (default
# 192.168.100.1/24) that the host routes to and from, no NAT; dnsmasq gives
# guests addresses by DHCP and forwards their DNS queries. The outside needs
# a route back to the guests' subnet via this host (docs/networking.md).
#
#   net/models/routed.sh up|down|status [--bridge mvbr0] [--host-addr CIDR]
#       [--dhcp-range START,END] [--uplink IF] [--dns IP[,IP]] [--state-dir DIR]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

model_up() {
	routed_setup routed
}

model_main routed "$@"
