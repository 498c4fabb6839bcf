#!/usr/bin/env bash
# The network models (net/models/*.sh) and net/qemu-ifup / qemu-ifdown, with
# no guest and no KVM, entirely inside network namespaces made here and
# deleted at exit (each has its own interfaces, iptables, ip_forward): the
# machine's own interfaces and firewall are never touched.
#
#   R  the host running minivm: the model's bridge, iptables, dnsmasq;
#      its uplink up0 is a veth whose other end is in
#   O  a host beyond the uplink (198.51.100.2/24; R's end is 198.51.100.1);
#   G1, G2  guests: veths standing in for TAPs, their R ends g1, g2 put on
#      the bridge by net/qemu-ifup as minivm's script= would.
#
# Checked for each model: what the guests can and cannot reach, addresses by
# DHCP (busybox udhcpc), who the outside sees (tcpdump on the bridge and on
# the uplink), up twice = up once, down = before up (iptables-save,
# addresses, routes, links, ip_forward; no bridge, no dnsmasq, no state).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

MODELS=$MINIVM_SRC/net/models
IFUP=$MINIVM_SRC/net/qemu-ifup
IFDOWN=$MINIVM_SRC/net/qemu-ifdown
BR=mvbr0
OUT=198.51.100.2 # O
UP_IP=198.51.100.1

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for tool in ip iptables iptables-save dnsmasq tcpdump busybox; do
	command -v "$tool" >/dev/null || skip "no $tool (bash tests/install-deps.sh)"
done

ID=mvt$$
R=$ID-r O=$ID-o G1=$ID-g1 G2=$ID-g2
NSES=()
cleanup() {
	local ns pid
	for ns in "${NSES[@]}"; do
		# processes started here (dnsmasq, tcpdump) outlive a deleted netns
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	done
	cleanup_scratch
}
trap cleanup EXIT

for ns in "$R" "$O" "$G1" "$G2"; do
	ip netns add "$ns" 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
	NSES+=("$ns")
	ip -n "$ns" link set lo up
	# no duplicate address detection: addresses do not go from tentative to
	# not while the test compares them
	# shellcheck disable=SC2016 # expanded by that sh
	ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 >"$f"; done' 2>/dev/null || true
done
r() { ip netns exec "$R" "$@"; }
o() { ip netns exec "$O" "$@"; }
g1() { ip netns exec "$G1" "$@"; }
g2() { ip netns exec "$G2" "$@"; }

# The kernel's parts, tried where they do no harm.
r ip link add probe0 type bridge 2>/dev/null || skip "no bridge support in the kernel (CONFIG_BRIDGE)"
r ip link del probe0
r ip link add up0 type veth peer name eth0 netns "$O" 2>/dev/null || skip "no veth support in the kernel (CONFIG_VETH)"
r iptables -w -t nat -A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE 2>/dev/null ||
	skip "iptables cannot MASQUERADE here (nf_tables NAT: CONFIG_NFT_NAT, CONFIG_NFT_MASQ, CONFIG_NETFILTER_XT_TARGET_MASQUERADE)"
r iptables -w -t nat -D POSTROUTING -s 10.0.0.0/8 -j MASQUERADE
r iptables -w -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null ||
	skip "iptables has no conntrack match (CONFIG_NETFILTER_XT_MATCH_CONNTRACK)"
r iptables -w -D FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT

r ip link add g1 type veth peer name eth0 netns "$G1"
r ip link add g2 type veth peer name eth0 netns "$G2"
r ip addr add "$UP_IP/24" dev up0
o ip addr add "$OUT/24" dev eth0
for ns in "$R" "$O" "$G1" "$G2"; do
	# shellcheck disable=SC2016 # expanded by that sh
	ip netns exec "$ns" sh -c 'for i in /sys/class/net/*; do ip link set "${i##*/}" up; done'
done
# a route through the uplink, which the bridged model must carry over
r ip route add 203.0.113.0/24 via "$OUT"

scratch_dir
STATE=$dir/state
cat >"$dir/udhcpc.sh" <<'EOF'
#!/bin/sh
# busybox udhcpc's script: applies the lease and writes it to $LEASE_OUT.
case $1 in
deconfig) ip -4 addr flush dev "$interface" ;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	[ -z "$router" ] || ip route replace default via "${router%% *}" dev "$interface"
	echo "ip=$ip mask=$mask router=$router dns=$dns" >"$LEASE_OUT"
	;;
esac
EOF
chmod +x "$dir/udhcpc.sh"

step() { echo "--- $*"; }

# model NAME ACTION ARGS...: the script, in R, with this test's state dir.
model() {
	local name=$1 action=$2
	shift 2
	r bash "$MODELS/$name.sh" "$action" --state-dir "$STATE" "$@"
}

# R's network as the models may change it; counters and lifetimes left out.
snap() {
	echo "ip_forward=$(r cat /proc/sys/net/ipv4/ip_forward)"
	r iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	r ip -o addr show | sed 's/ *valid_lft.*//; s/ tentative//'
	r ip -4 route show
	r ip -o link show | sed 's/^[0-9]*: //; s/ state [A-Z]*//; s/<[^>]*>//'
}

same() { # WHAT BEFORE AFTER
	[ "$2" = "$3" ] || {
		diff <(echo "$2") <(echo "$3") >&2 || true
		fail "$1"
	}
}

dnsmasq_pids() { # NS
	local pid
	for pid in $(ip netns pids "$1"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != dnsmasq ] || echo "$pid"
	done
}

# dhcp NS: a lease for eth0 in NS by busybox udhcpc; sets LEASE_IP etc.
dhcp() {
	local lease=$dir/lease-$1
	rm -f "$lease"
	ip netns exec "$1" env LEASE_OUT="$lease" busybox udhcpc -i eth0 -n -q -t 5 -T 1 \
		-s "$dir/udhcpc.sh" >"$dir/udhcpc.log" 2>&1 || {
		cat "$dir/udhcpc.log" >&2
		fail "$1: no DHCP lease"
	}
	LEASE_IP=$(sed -n 's/^ip=\([0-9.]*\) .*/\1/p' "$lease")
	LEASE_LINE=$(cat "$lease")
	echo "$1: leased $LEASE_LINE"
}

can_ping() { # NS ADDR
	ip netns exec "$1" busybox ping -q -c 1 -W 2 "$2" >/dev/null 2>&1
}
cannot_ping() {
	! ip netns exec "$1" busybox ping -q -c 1 -W 1 "$2" >/dev/null 2>&1
}

# dump_start NAME IF: tcpdump of ICMP on R's IF; dump_stop NAME ends it.
declare -A DUMP_PID
dump_start() {
	local f=$dir/dump-$1
	# (not through r(): $! must be tcpdump, which ip netns exec becomes)
	ip netns exec "$R" tcpdump --immediate-mode -l -n -i "$2" icmp >"$f" 2>"$f.err" &
	DUMP_PID[$1]=$!
	for _ in $(seq 50); do
		! grep -q 'listening on' "$f.err" || return 0
		sleep 0.1
	done
	cat "$f.err" >&2
	fail "tcpdump on $2 did not start"
}
dump_stop() {
	sleep 0.2 # (what was captured printed)
	# TERM: a background job of a script ignores INT
	kill -TERM "${DUMP_PID[$1]}"
	wait "${DUMP_PID[$1]}" || true
}
dump_has() { # NAME PATTERN
	grep -q -- "$2" "$dir/dump-$1" || {
		cat "$dir/dump-$1" >&2
		fail "tcpdump $1: expected '$2'"
	}
}

# guest_on G: its veth end in R on the bridge, as minivm's script= does.
guest_on() {
	r env MINIVM_BRIDGE=$BR "$IFUP" "$1"
	[ "$(r cat "/sys/class/net/$1/master/ifindex")" = "$(r cat "/sys/class/net/$BR/ifindex")" ] ||
		fail "qemu-ifup did not put $1 on $BR"
}
# guest_off G NS: qemu-ifdown, and the guest forgets its address.
guest_off() {
	r "$IFDOWN" "$1"
	r ip link set "$1" up # (a TAP would be gone; this veth stays for the next model)
	ip netns exec "$2" sh -c 'ip -4 addr flush dev eth0; ip -4 route flush dev eth0'
	! r test -e "/sys/class/net/$1/master" || fail "$1 still on a bridge after qemu-ifdown"
}

# up_twice MODEL ARGS...: up, and up again changes nothing.
up_twice() {
	local s1 s2
	model "$@" >/dev/null # (model NAME up ARGS)
	s1=$(snap)
	model "$@" >/dev/null
	s2=$(snap)
	same "$1: up twice differs from up once" "$s1" "$s2"
}

# down_clean MODEL BEFORE: down gives back BEFORE, and down again is no error.
down_clean() {
	model "$1" down >/dev/null
	same "$1: down did not undo up" "$2" "$(snap)"
	! r ip link show "$BR" >/dev/null 2>&1 || fail "$1: $BR still there after down"
	[ -z "$(dnsmasq_pids "$R")" ] || fail "$1: dnsmasq still running after down"
	[ ! -e "$STATE/$BR" ] || fail "$1: $STATE/$BR still there after down"
	model "$1" down >/dev/null || fail "$1: down twice failed"
}

SECONDS=0

step "NAT (no --uplink: MASQUERADE ! -o $BR)"
before=$(snap)
up_twice nat up --dns "$OUT"
[ "$(dnsmasq_pids "$R" | wc -l)" -eq 1 ] || fail "nat: not one dnsmasq after up twice"
if model nat up --host-addr 10.1.1.1/24 >/dev/null 2>&1; then
	fail "nat: up with other options on an up bridge was accepted"
fi
r iptables -w -t nat -C POSTROUTING -s 192.168.100.0/24 ! -o "$BR" -j MASQUERADE ||
	fail "nat: no MASQUERADE rule"
if r env MINIVM_BRIDGE=nobr0 "$IFUP" g1 2>/dev/null; then
	fail "qemu-ifup: put a TAP on a bridge that does not exist"
fi
guest_on g1
dhcp "$G1"
[[ $LEASE_IP == 192.168.100.* ]] || fail "nat: leased $LEASE_IP, not in 192.168.100.0/24"
[[ $LEASE_LINE == *"router=192.168.100.1 dns=192.168.100.1"* ]] || fail "nat: lease without router/DNS 192.168.100.1"
dump_start nat-up0 up0
dump_start nat-br "$BR"
can_ping "$G1" "$OUT" || fail "nat: the guest cannot ping the outside"
dump_stop nat-up0
dump_stop nat-br
dump_has nat-up0 "IP $UP_IP > $OUT: ICMP echo request"
dump_has nat-up0 "IP $OUT > $UP_IP: ICMP echo reply"
! grep -q "$LEASE_IP" "$dir/dump-nat-up0" || fail "nat: the guest's own address $LEASE_IP went out on the uplink"
dump_has nat-br "IP $LEASE_IP > $OUT: ICMP echo request"
dump_has nat-br "IP $OUT > $LEASE_IP: ICMP echo reply"
echo "nat: uplink sees $(grep -m1 'echo request' "$dir/dump-nat-up0" | sed 's/.*IP //; s/:.*//'), bridge sees $(grep -m1 'echo request' "$dir/dump-nat-br" | sed 's/.*IP //; s/:.*//')"
o ip route add 192.168.100.0/24 via "$UP_IP"
cannot_ping "$O" "$LEASE_IP" || fail "nat: the outside reached the guest with a new connection"
o ip route del 192.168.100.0/24
model nat status >"$dir/status" || fail "nat: status failed"
grep -q "^model: nat" "$dir/status" || fail "nat: status does not say nat"
guest_off g1 "$G1"
down_clean nat "$before"
echo "nat: ok (at $SECONDS s)"

step "routed (--uplink up0)"
before=$(snap)
up_twice routed up --uplink up0
if r iptables -w -t nat -S POSTROUTING | grep -q MASQUERADE; then
	fail "routed: a MASQUERADE rule"
fi
guest_on g1
dhcp "$G1"
[[ $LEASE_IP == 192.168.100.* ]] || fail "routed: leased $LEASE_IP"
o ip route add 192.168.100.0/24 via "$UP_IP" # the route back (docs/networking.md)
dump_start routed-up0 up0
can_ping "$G1" "$OUT" || fail "routed: the guest cannot ping the outside"
can_ping "$O" "$LEASE_IP" || fail "routed: the outside cannot ping the guest"
dump_stop routed-up0
dump_has routed-up0 "IP $LEASE_IP > $OUT: ICMP echo request"
dump_has routed-up0 "IP $OUT > $LEASE_IP: ICMP echo request"
echo "routed: uplink sees $(grep -m1 'echo request' "$dir/dump-routed-up0" | sed 's/.*IP //; s/:.*//')"
o ip route del 192.168.100.0/24
guest_off g1 "$G1"
down_clean routed "$before"
echo "routed: ok (at $SECONDS s)"

step "isolated"
before=$(snap)
up_twice isolated up
[ -z "$(r ip -o addr show dev "$BR")" ] || fail "isolated: the bridge has an address: $(r ip -o addr show dev "$BR")"
guest_on g1
guest_on g2
g1 ip addr add 10.9.0.1/24 dev eth0
g2 ip addr add 10.9.0.2/24 dev eth0
can_ping "$G1" 10.9.0.2 || fail "isolated: guest 1 cannot ping guest 2"
can_ping "$G2" 10.9.0.1 || fail "isolated: guest 2 cannot ping guest 1"
g1 ip route add default dev eth0
cannot_ping "$G1" "$UP_IP" || fail "isolated: a guest reached the host's uplink address"
cannot_ping "$G1" "$OUT" || fail "isolated: a guest reached the outside"
guest_off g1 "$G1"
guest_off g2 "$G2"
down_clean isolated "$before"
# With a host address, on a host that forwards anyway: still no way out.
r sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
o ip route add 10.9.0.0/24 via "$UP_IP"
before=$(snap)
up_twice isolated up --host-addr 10.9.0.254/24
guest_on g1
g1 ip addr add 10.9.0.1/24 dev eth0
g1 ip route add default via 10.9.0.254
can_ping "$G1" 10.9.0.254 || fail "isolated: a guest cannot ping the host's address on the bridge"
cannot_ping "$G1" "$OUT" || fail "isolated: a guest got out through a forwarding host"
guest_off g1 "$G1"
down_clean isolated "$before"
[ "$(r cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "isolated: down changed an ip_forward it did not set"
r sh -c 'echo 0 >/proc/sys/net/ipv4/ip_forward'
o ip route del 10.9.0.0/24
echo "isolated: ok (at $SECONDS s)"

step "bridged (--uplink up0; the LAN's DHCP server in O)"
o dnsmasq --conf-file=/dev/null --bind-interfaces --interface=eth0 --except-interface=lo \
	--dhcp-range=198.51.100.100,198.51.100.150,1h --pid-file="$dir/lan-dnsmasq.pid" \
	--dhcp-leasefile="$dir/lan-dnsmasq.leases" --no-resolv --no-hosts --port=0
before=$(snap)
up_mac=$(r cat /sys/class/net/up0/address)
up_twice bridged up --uplink up0
[ -z "$(r ip -4 -o addr show dev up0)" ] || fail "bridged: up0 kept its address"
r ip -4 -o addr show dev "$BR" | grep -q " $UP_IP/24 " || fail "bridged: $UP_IP/24 not on $BR"
r ip route show 203.0.113.0/24 | grep -q "via $OUT dev $BR" || fail "bridged: the route via $OUT did not move to $BR"
[ "$(r cat "/sys/class/net/$BR/address")" = "$up_mac" ] || fail "bridged: $BR does not have up0's MAC"
can_ping "$R" "$OUT" || fail "bridged: the host lost the LAN"
guest_on g1
dhcp "$G1"
[[ $LEASE_IP == 198.51.100.1[0-5]? ]] || fail "bridged: the LAN's DHCP server did not lease ($LEASE_IP)"
dump_start bridged-up0 up0
can_ping "$G1" "$OUT" || fail "bridged: the guest cannot ping the LAN"
can_ping "$G1" "$UP_IP" || fail "bridged: the guest cannot ping the host"
dump_stop bridged-up0
dump_has bridged-up0 "IP $LEASE_IP > $OUT: ICMP echo request"
echo "bridged: uplink sees $(grep -m1 'echo request' "$dir/dump-bridged-up0" | sed 's/.*IP //; s/:.*//')"
guest_off g1 "$G1"
down_clean bridged "$before"
can_ping "$R" "$OUT" || fail "bridged: the host lost the LAN after down"
kill "$(cat "$dir/lan-dnsmasq.pid")"
echo "bridged: ok (at $SECONDS s)"

echo "PASS: the four network models, in $SECONDS s"
