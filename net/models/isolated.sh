#!/usr/bin/env bash
# The isolated model: a bridge with no uplink. Guests on it reach each
# other and nothing else; the host has no address on it unless --host-addr
# gives it one, and routes nothing to or from it even when it forwards.
#
#   net/models/isolated.sh up|down|status [--bridge mvbr0] [--host-addr CIDR]
#
# Guests join with -netdev bridge,br=mvbr0 or script=net/qemu-ifup. No DHCP:
# guests take static addresses (docs/networking.md).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

model_up() {
	[ -z "$UPLINK" ] || die "an isolated bridge has no uplink"
	bridge_create
	if [ -n "$HOST_ADDR" ]; then
		parse_host_addr
		addr_add "$HOST_ADDR" "$BRIDGE"
	else
		bridge_no_ipv6
	fi
	# (ipt inserts at the top: last first)
	ipt filter FORWARD -o "$BRIDGE" -j REJECT --reject-with icmp-port-unreachable
	ipt filter FORWARD -i "$BRIDGE" -j REJECT --reject-with icmp-port-unreachable
	forward_within_bridge
}

model_main isolated "$@"
