#!/usr/bin/env bash
# The bridged model: the uplink becomes a port of the bridge, so guests are
# on the uplink's LAN, and take addresses from its DHCP server. The host's
# IPv4 addresses and routes move from the uplink to the bridge (and back on
# down); the bridge takes the uplink's MAC, so the LAN sees the host as
# before. Caveats (a connection over the uplink drops for a moment, DHCP
# clients and network managers on the uplink): docs/networking.md.
#
#   net/models/bridged.sh up|down|status --uplink IF [--bridge mvbr0] [--state-dir DIR]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

model_up() {
	local a r routes=()
	[ -n "$UPLINK" ] || die "--uplink IF is required"
	[ -z "$HOST_ADDR$DHCP_RANGE" ] || die "--host-addr and --dhcp-range belong to the LAN here"
	[ ! -d "/sys/class/net/$UPLINK/bridge" ] || die "--uplink: $UPLINK is a bridge itself"
	BRIDGE_MAC=$(cat "/sys/class/net/$UPLINK/address")
	bridge_create
	forward_within_bridge
	if [ "$(basename "$(readlink "/sys/class/net/$UPLINK/master" 2>/dev/null)")" != "$BRIDGE" ]; then
		ip link set dev "$UPLINK" master "$BRIDGE"
		journal nomaster "$UPLINK"
	fi
	if ((($(cat "/sys/class/net/$UPLINK/flags") & 1) == 0)); then # not IFF_UP
		ip link set dev "$UPLINK" up
		journal link-down "$UPLINK"
	fi
	# The routes go with the addresses they depend on: saved first.
	while IFS= read -r r; do
		[ -n "$r" ] || continue
		routes+=("$r")
		# shellcheck disable=SC2086 # a route is words
		journal route-add $r dev "$UPLINK"
	done < <(ip -4 route show dev "$UPLINK" | grep -v 'proto kernel' | sed 's/ linkdown//')
	for a in $(ip -4 -o addr show dev "$UPLINK" scope global | awk '{ print $4 }'); do
		ip addr del "$a" dev "$UPLINK"
		journal addr-add "$a" "$UPLINK"
		addr_add "$a" "$BRIDGE"
	done
	for r in "${routes[@]}"; do
		# shellcheck disable=SC2086
		ip route replace $r dev "$BRIDGE"
	done
}

model_main bridged "$@"
