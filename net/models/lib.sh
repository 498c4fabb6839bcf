# shellcheck shell=bash
# Shared by the network model scripts (isolated.sh, routed.sh, nat.sh,
# bridged.sh; docs/networking.md). A model script defines model_up and ends
# with:   model_main MODEL "$@"
#
# Every change that up makes is done only if it is not there yet, and is
# written, right after it is made, as one line of STATE/journal saying how
# to undo it. down undoes the journal's lines last first and removes STATE.
# So up twice changes nothing the second time, down undoes exactly what up
# did (and nothing that was there before), and down without a journal has
# nothing to do. STATE is STATE_BASE/BRIDGE (default /run/minivm-net/BRIDGE).

set -euo pipefail
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

BRIDGE=mvbr0
HOST_ADDR=         # CIDR, e.g. 192.168.100.1/24
DHCP_RANGE=        # START,END
UPLINK=
DNS_SERVERS=       # IP[,IP...]: where dnsmasq forwards queries
STATE_BASE=/run/minivm-net
BRIDGE_MAC=        # the bridge's MAC (bridged.sh: the uplink's)
MODEL=
STATE=
JOURNAL=

say() { echo "$MODEL: $*"; }
die() {
	echo "$MODEL: error: $*" >&2
	exit 1
}

usage() {
	cat <<EOF
usage: $0 up|down|status [options]

  --bridge NAME         the bridge (default mvbr0)
  --host-addr CIDR      the host's address on the bridge, e.g. 192.168.100.1/24
  --subnet CIDR         the same as --host-addr
  --dhcp-range S,E      addresses dnsmasq hands out (default: the subnet's larger
                        part beside the host address)
  --uplink IF           the interface towards the outside
  --dns IP[,IP]         upstream DNS servers for dnsmasq (default: the nameservers
                        in /etc/resolv.conf, read once at up)
  --state-dir DIR       where the state of each bridge is kept (default
                        /run/minivm-net; this bridge's is DIR/NAME)

up sets the model up (again: no change), down undoes what up did, status
shows what is there. See docs/networking.md.
EOF
}

# ---- IPv4 arithmetic ----

ip2int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	echo $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}

int2ip() {
	echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"
}

valid_cidr() {
	[[ $1 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$ ]] || return 1
	local o
	IFS=. read -ra o <<<"${1%/*}"
	[ "$((10#${o[0]}))" -le 255 ] && [ "$((10#${o[1]}))" -le 255 ] && [ "$((10#${o[2]}))" -le 255 ] && [ "$((10#${o[3]}))" -le 255 ]
}

# Sets HOST_IP, PREFIX, SUBNET (network/prefix), NET_INT and BCAST_INT.
parse_host_addr() {
	valid_cidr "$HOST_ADDR" || die "--host-addr: '$HOST_ADDR' is not an IPv4 address/prefix"
	HOST_IP=${HOST_ADDR%/*}
	PREFIX=${HOST_ADDR#*/}
	local ip mask
	ip=$(ip2int "$HOST_IP")
	mask=$(((0xffffffff << (32 - PREFIX)) & 0xffffffff))
	NET_INT=$((ip & mask))
	BCAST_INT=$((NET_INT | (~mask & 0xffffffff)))
	SUBNET=$(int2ip "$NET_INT")/$PREFIX
	if [ "$PREFIX" -gt 30 ] || [ "$ip" -eq "$NET_INT" ] || [ "$ip" -eq "$BCAST_INT" ]; then
		die "--host-addr: '$HOST_ADDR' is not a host address in a /30 or larger"
	fi
}

# The larger part of the subnet beside the host address, unless given.
default_dhcp_range() {
	[ -z "$DHCP_RANGE" ] || return 0
	local ip
	ip=$(ip2int "$HOST_IP")
	if [ $((ip - NET_INT)) -le $((BCAST_INT - ip)) ]; then
		DHCP_RANGE=$(int2ip $((ip + 1))),$(int2ip $((BCAST_INT - 1)))
	else
		DHCP_RANGE=$(int2ip $((NET_INT + 1))),$(int2ip $((ip - 1)))
	fi
}

# ---- the journal ----

journal() { echo "$*" >>"$JOURNAL"; }

link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# Runs one journal line: the undo of one change.
undo() {
	local what=$1
	shift
	case $what in
	link-del) ! link_exists "$1" || ip link del dev "$1" ;;
	addr-del) ip addr del "$1" dev "$2" 2>/dev/null || true ;;
	addr-add) ! link_exists "$2" || ip addr replace "$1" dev "$2" ;;
	route-add) ip route replace "$@" 2>/dev/null || echo "$MODEL: warning: could not restore route: $*" >&2 ;;
	nomaster) ! link_exists "$1" || ip link set dev "$1" nomaster ;;
	link-down) ! link_exists "$1" || ip link set dev "$1" down ;;
	ipt)
		local table=$1
		shift
		while iptables -w -t "$table" -C "$@" 2>/dev/null; do
			iptables -w -t "$table" -D "$@"
		done
		;;
	sysctl) restore_sysctl "$1" "$2" ;;
	dnsmasq) stop_dnsmasq "$1" ;;
	*) echo "$MODEL: warning: unknown journal line '$what $*'" >&2 ;;
	esac
}

# ---- the steps of up, each done only if needed ----

# A bridge, its MAC pinned (to BRIDGE_MAC if set, else the random one it
# gets) so that ports joining or leaving do not change it (the kernel
# otherwise takes the lowest of its ports').
bridge_create() {
	if ! link_exists "$BRIDGE"; then
		ip link add name "$BRIDGE" type bridge stp_state 0 forward_delay 0
		journal link-del "$BRIDGE"
		ip link set dev "$BRIDGE" address "${BRIDGE_MAC:-$(cat "/sys/class/net/$BRIDGE/address")}"
	fi
	[ -d "/sys/class/net/$BRIDGE/bridge" ] || die "$BRIDGE exists and is not a bridge"
	ip link set dev "$BRIDGE" up
}

# No address at all, IPv6 link-local included (isolated).
bridge_no_ipv6() {
	[ ! -e "/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6" ] ||
		sysctl_set "net/ipv6/conf/$BRIDGE/disable_ipv6" 1
}

addr_add() { # CIDR DEV
	if ! ip -4 -o addr show dev "$2" | grep -qF " inet $1 "; then
		ip addr add "$1" dev "$2"
		journal addr-del "$1" "$2"
	fi
}

# ipt TABLE CHAIN SPEC...: the rule, inserted at the top of CHAIN (so that
# it comes before a host's own REJECT or DROP rules) unless it is there.
# Rules of one model go in the reverse of the order they should have.
ipt() {
	local table=$1
	shift
	if ! iptables -w -t "$table" -C "$@" 2>/dev/null; then
		iptables -w -t "$table" -I "$1" 1 "${@:2}"
		journal ipt "$table" "$@"
	fi
}

# ipt_append TABLE CHAIN SPEC...: the same, at the end of CHAIN.
ipt_append() {
	local table=$1
	shift
	if ! iptables -w -t "$table" -C "$@" 2>/dev/null; then
		iptables -w -t "$table" -A "$@"
		journal ipt "$table" "$@"
	fi
}

# Bridged frames go through iptables' FORWARD too where br_netfilter is on
# (bridge-nf-call-iptables): let guests on the bridge reach each other even
# on a host whose FORWARD policy is DROP (Docker sets it so).
forward_within_bridge() {
	ipt filter FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

# routed_setup routed|nat: what routed and NAT share, as libvirt sets its
# networks up: the bridge with the host's address, forwarding on, FORWARD
# rules letting the subnet out (by --uplink only, if given) and back in (for
# NAT only replies), anything else to or from the bridge rejected, DHCP and
# DNS let in from the bridge, and dnsmasq.
routed_setup() {
	local kind=$1 in=() out=() back=()
	HOST_ADDR=${HOST_ADDR:-192.168.100.1/24}
	parse_host_addr
	default_dhcp_range
	if [ -n "$UPLINK" ]; then
		in=(-i "$UPLINK")
		out=(-o "$UPLINK")
	fi
	[ "$kind" = routed ] || back=(-m conntrack --ctstate "RELATED,ESTABLISHED")
	bridge_create
	addr_add "$HOST_ADDR" "$BRIDGE"
	sysctl_set net/ipv4/ip_forward 1
	# (ipt inserts at the top: last first)
	ipt filter FORWARD -o "$BRIDGE" -j REJECT --reject-with icmp-port-unreachable
	ipt filter FORWARD -i "$BRIDGE" -j REJECT --reject-with icmp-port-unreachable
	ipt filter FORWARD "${in[@]}" -o "$BRIDGE" -d "$SUBNET" "${back[@]}" -j ACCEPT
	ipt filter FORWARD -i "$BRIDGE" "${out[@]}" -s "$SUBNET" -j ACCEPT
	forward_within_bridge
	ipt filter INPUT -i "$BRIDGE" -p tcp -m tcp --dport 53 -j ACCEPT
	ipt filter INPUT -i "$BRIDGE" -p udp -m udp --dport 53 -j ACCEPT
	ipt filter INPUT -i "$BRIDGE" -p udp -m udp --dport 67 -j ACCEPT
	if [ "$kind" = nat ]; then
		if [ -n "$UPLINK" ]; then
			ipt_append nat POSTROUTING -s "$SUBNET" -o "$UPLINK" -j MASQUERADE
		else
			ipt_append nat POSTROUTING -s "$SUBNET" ! -o "$BRIDGE" -j MASQUERADE
		fi
	fi
	start_dnsmasq
}

# sysctl_set NAME VALUE (NAME as a path under /proc/sys); the old value is
# journaled only when it changes.
sysctl_set() {
	local f=/proc/sys/$1 old
	old=$(cat "$f")
	if [ "$old" != "$2" ]; then
		echo "$2" >"$f"
		journal sysctl "$1" "$old"
	fi
}

# ip_forward: another routed or NAT bridge set up from the same STATE_BASE
# may still need it; that one then takes over the undo of the change.
restore_sysctl() {
	local m
	if [ "$1" = net/ipv4/ip_forward ]; then
		for m in "$STATE_BASE"/*/model; do
			if [ "$m" != "$STATE/model" ] && grep -qE '^(routed|nat) ' "$m" 2>/dev/null; then
				echo "sysctl $1 $2" >>"$(dirname "$m")/journal"
				say "$1 left at $(cat "/proc/sys/$1"): $(basename "$(dirname "$m")") is up"
				return 0
			fi
		done
	fi
	[ ! -e "/proc/sys/$1" ] || echo "$2" >"/proc/sys/$1"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# DHCP (and DNS, forwarded to --dns or resolv.conf's servers) on the bridge
# only: bound to its address, reading no configuration, hosts file or
# resolv.conf of its own, writing nothing but its pid and lease files.
start_dnsmasq() {
	local pid=$STATE/dnsmasq.pid servers=() s
	if pid_alive "$pid"; then
		return 0
	fi
	if [ -z "$DNS_SERVERS" ] && [ -r /etc/resolv.conf ]; then
		DNS_SERVERS=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { printf "%s%s", s, $2; s = "," }' /etc/resolv.conf)
	fi
	for s in ${DNS_SERVERS//,/ }; do
		servers+=(--server="$s")
	done
	dnsmasq --conf-file=/dev/null --bind-interfaces --interface="$BRIDGE" \
		--except-interface=lo --listen-address="$HOST_IP" \
		--dhcp-range="$DHCP_RANGE,1h" --dhcp-authoritative --dhcp-no-override \
		--pid-file="$pid" --dhcp-leasefile="$STATE/dnsmasq.leases" \
		--no-resolv --no-hosts --strict-order "${servers[@]}"
	journal dnsmasq "$pid"
}

stop_dnsmasq() {
	local pid
	if pid_alive "$1"; then
		pid=$(cat "$1")
		# a pid file can outlive its process: only a dnsmasq is stopped
		if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dnsmasq ]; then
			kill "$pid"
			for _ in $(seq 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$1"
}

# ---- the actions ----

model_status() {
	echo "model: $(cat "$STATE/model" 2>/dev/null || echo "not up (no $STATE/journal)")"
	if link_exists "$BRIDGE"; then
		ip -br link show dev "$BRIDGE"
		ip -br addr show dev "$BRIDGE"
		local p ports=
		for p in "/sys/class/net/$BRIDGE/brif"/*; do
			[ ! -e "$p" ] || ports+=" ${p##*/}"
		done
		echo "ports:${ports:- none}"
	else
		echo "no bridge $BRIDGE"
	fi
	echo "ip_forward: $(cat /proc/sys/net/ipv4/ip_forward)"
	if pid_alive "$STATE/dnsmasq.pid"; then
		echo "dnsmasq: pid $(cat "$STATE/dnsmasq.pid")"
		[ ! -s "$STATE/dnsmasq.leases" ] || sed 's/^/  lease: /' "$STATE/dnsmasq.leases"
	fi
	if [ -f "$JOURNAL" ]; then
		echo "iptables rules:"
		sed -n 's/^ipt \([a-z]*\) /  -t \1 -A /p' "$JOURNAL"
	fi
}

model_down() {
	local line words
	if [ ! -f "$JOURNAL" ]; then
		say "$BRIDGE is not up (no $JOURNAL): nothing to do"
		rm -rf "$STATE"
		return 0
	fi
	while IFS= read -r line; do
		read -ra words <<<"$line"
		[ "${#words[@]}" -eq 0 ] || undo "${words[@]}"
	done < <(tac "$JOURNAL")
	rm -rf "$STATE"
	say "$BRIDGE is down"
}

model_main() {
	MODEL=$1
	shift
	local action=${1:-} config
	[ "$#" -eq 0 ] || shift
	config="$MODEL $*"
	case $action in
	up | down | status) ;;
	-h | --help | help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	while [ "$#" -gt 0 ]; do
		[ "$#" -ge 2 ] || die "$1: a value is missing"
		case $1 in
		--bridge) BRIDGE=$2 ;;
		--host-addr | --subnet) HOST_ADDR=$2 ;;
		--dhcp-range) DHCP_RANGE=$2 ;;
		--uplink) UPLINK=$2 ;;
		--dns) DNS_SERVERS=$2 ;;
		--state-dir) STATE_BASE=$2 ;;
		*) die "unknown option '$1' (see $0 --help)" ;;
		esac
		shift 2
	done
	[[ $BRIDGE =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--bridge: '$BRIDGE' is not an interface name"
	STATE=$STATE_BASE/$BRIDGE
	JOURNAL=$STATE/journal
	case $action in
	status) model_status; return 0 ;;
	down) model_down; return 0 ;;
	esac
	[ "$(id -u)" -eq 0 ] || die "needs root (CAP_NET_ADMIN)"
	[ -z "$UPLINK" ] || link_exists "$UPLINK" || die "--uplink: no interface '$UPLINK'"
	[ -z "$DHCP_RANGE" ] || [[ $DHCP_RANGE =~ ^[0-9.]+,[0-9.]+$ ]] ||
		die "--dhcp-range: '$DHCP_RANGE' is not START,END"
	mkdir -p "$STATE"
	# Up again must mean the same up: another model or other options on
	# this bridge need a down first.
	if [ -f "$STATE/model" ] && [ "$(cat "$STATE/model")" != "$config" ]; then
		die "$BRIDGE is up as '$(cat "$STATE/model")': run its down first"
	fi
	echo "$config" >"$STATE/model"
	touch "$JOURNAL"
	trap up_failed EXIT
	model_up
	trap - EXIT
	say "$BRIDGE is up"
}

# An up that stopped before changing anything leaves no state behind; one
# that stopped halfway leaves its journal, for down.
up_failed() {
	local rc=$?
	[ "$rc" -ne 0 ] || return 0
	if [ -s "$JOURNAL" ]; then
		echo "$MODEL: up failed halfway: '$0 down${STATE_BASE:+ --state-dir $STATE_BASE} --bridge $BRIDGE' undoes what it did" >&2
	else
		rm -rf "$STATE"
	fi
	exit "$rc"
}
