#!/usr/bin/env bash
# The network models with real guests: minivm on a TAP that net/qemu-ifup
# puts on the model's bridge (script=, as users set it up), all inside
# network namespaces made here. (tests/integration/net_models.sh checks the
# scripts themselves in depth, with veths for guests and no KVM.)
#   R  the host running minivm: the model's bridge, iptables, dnsmasq;
#      its uplink up0 is a veth to
#   O  a host outside (198.51.100.2/24; R's end is 198.51.100.1).
# NAT: the guest gets its address from dnsmasq by DHCP and pings O; tcpdump
# on the bridge shows the guest's own address, on the uplink R's (the
# translation). Routed: O sees the guest's own address. Isolated: the guest
# cannot reach O.
. "$(dirname "$0")/lib.sh"
need_kvm 2048 "$@"
for tool in ip iptables dnsmasq tcpdump; do
	command -v "$tool" >/dev/null || { echo "SKIP: no $tool (tests/install-deps.sh)" >&2; exit 77; }
done

scratch_dir
runtime_dir
MODELS=$MINIVM_SRC/net/models
OUT=198.51.100.2 UP_IP=198.51.100.1
netns_new r
R=$ns
netns_new o
O=$ns
ip link add up0 netns "$R" type veth peer name eth0 netns "$O"
ip -n "$R" addr add "$UP_IP/24" dev up0
ip -n "$R" link set up0 up
ip -n "$O" addr add "$OUT/24" dev eth0
ip -n "$O" link set eth0 up
STATE=$run/state
log=
fail_hook() { FAIL_LOGS=(${log:+"$log"}); }
model() { ip netns exec "$R" bash "$MODELS/$1.sh" "$2" --state-dir "$STATE" "${@:3}" >"$dir/model.log" 2>&1 ||
	{ cat "$dir/model.log" >&2; fail "$1.sh $2 failed"; }; }

# guest NAME APPEND...: boots a guest on R's bridge mvbr0 through
# net/qemu-ifup, waits for its scenario to end; its log is $dir/NAME.log.
guest() {
	local name=$1 rc=0
	shift
	log=$dir/$name.log
	GUEST_WRAP=(ip netns exec "$R" env MINIVM_BRIDGE=mvbr0)
	boot_guest "$log" -m 256 -no-reboot \
		-netdev "tap,id=n0,script=$MINIVM_SRC/net/qemu-ifup,downscript=$MINIVM_SRC/net/qemu-ifdown" \
		-device virtio-net-pci,netdev=n0 \
		-append "console=ttyS0 quiet scenario=net $*" </dev/null || rc=$?
	[ "$rc" -eq 0 ] || fail "$name: minivm exited $rc"
	grep -q "minivm-guest: scenario exit 0" "$log" || fail "$name: the guest's scenario failed"
}
# dump NS IF FILE: tcpdump of ICMP echo requests on IF in NS, in the background.
dump() {
	ip netns exec "$1" tcpdump --immediate-mode -l -n -i "$2" 'icmp[icmptype] == icmp-echo' >"$3" 2>"$3.err" &
	dumps+=($!)
	for _ in $(seq 100); do grep -q "listening on" "$3.err" && return 0; sleep 0.1; done
	fail "tcpdump on $2 did not start"
}
dumps_stop() { kill "${dumps[@]}" 2>/dev/null || true; wait "${dumps[@]}" 2>/dev/null || true; dumps=(); }
dumps=()

# --- NAT ---
model nat up --uplink up0
dump "$R" mvbr0 "$dir/nat-br.txt"
dump "$R" up0 "$dir/nat-up.txt"
guest nat "net_dhcp=1 net_ping=$OUT"
dumps_stop
lease=$(sed -n 's/.*minivm-guest: dhcp eth0 \([0-9.]*\)\/24 router 192.168.100.1 .*/\1/p' "$log")
[ -n "$lease" ] || fail "NAT: no DHCP lease from dnsmasq with router 192.168.100.1"
grep -q "minivm-guest: ping $OUT ok" "$log" || fail "NAT: the guest cannot reach the outside host"
grep -q "IP $lease > $OUT: ICMP echo request" "$dir/nat-br.txt" || fail "NAT: the bridge does not show the guest's address"
grep -q "IP $UP_IP > $OUT: ICMP echo request" "$dir/nat-up.txt" || fail "NAT: the uplink does not show the translated address"
! grep -q "IP $lease >" "$dir/nat-up.txt" || fail "NAT: the guest's own address left by the uplink"
echo "ok: NAT: DHCP lease $lease from dnsmasq; bridge: $(grep -m1 -o "IP $lease > $OUT" "$dir/nat-br.txt"), uplink: $(grep -m1 -o "IP $UP_IP > $OUT" "$dir/nat-up.txt")"
model nat down

# --- routed ---
model routed up --uplink up0
ip -n "$O" route add 192.168.100.0/24 via "$UP_IP"
dump "$O" eth0 "$dir/routed-o.txt"
guest routed "net_dhcp=1 net_ping=$OUT"
dumps_stop
lease=$(sed -n 's/.*minivm-guest: dhcp eth0 \([0-9.]*\)\/24 .*/\1/p' "$log")
grep -q "minivm-guest: ping $OUT ok" "$log" || fail "routed: the guest cannot reach the outside host"
grep -q "IP $lease > $OUT: ICMP echo request" "$dir/routed-o.txt" || fail "routed: the outside does not see the guest's own address"
echo "ok: routed: the outside host sees the guest's own address $lease"
model routed down
ip -n "$O" route del 192.168.100.0/24

# --- isolated ---
model isolated up
guest isolated "net_addr=192.168.100.20/24 net_gw=192.168.100.1 net_noping=$OUT"
grep -q "minivm-guest: ping $OUT unreachable" "$log" || fail "isolated: the guest reached the outside"
echo "ok: isolated: the guest cannot reach the outside host"
model isolated down
[ -z "$(ip -n "$R" -o link show type bridge)" ] || fail "a bridge is left after down"
[ -z "$(ip -n "$R" -o link show type tun)" ] || fail "a TAP is left after the guests"
echo "ok: every model down again: no bridge, no TAP"
